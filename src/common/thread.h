/*
 * common/thread.h: names for the server's threads (internal).
 *
 * Ownership: nothing is allocated; the name is copied by the kernel.
 *
 * `top -H`, `ps -L`, perf and gdb show a thread's name, so an operator can tell which part of the
 * server is busy (the outbox writer, the dispatcher, the folder reader) without a debugger.
 */
#ifndef TW_COMMON_THREAD_H
#define TW_COMMON_THREAD_H

#include <pthread.h>
#include <stdio.h>

/* Names the calling thread; name is at most 15 bytes (the kernel's limit) or is cut there. */
static inline void tw__thread_name(const char *name)
{
    char cut[16];
    snprintf(cut, sizeof cut, "%s", name);
    (void)pthread_setname_np(pthread_self(), cut); /* a name is a convenience: failing costs nothing */
}

#endif
