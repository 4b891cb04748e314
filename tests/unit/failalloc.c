/* tests/unit/failalloc.c: the allocation wrappers behind failalloc.h (linked with -Wl,--wrap=...). */
#include "failalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static _Atomic int armed;
static _Atomic unsigned long counted, failures;
static unsigned long fail_at;
static tw_failalloc_mode fail_mode;
static int every_thread;
static pthread_t owner;

void tw_failalloc_start(unsigned long nth, tw_failalloc_mode mode, int all_threads)
{
    atomic_store(&armed, 0);
    counted = 0;
    failures = 0;
    fail_at = nth;
    fail_mode = mode;
    every_thread = all_threads;
    owner = pthread_self();
    atomic_store(&armed, 1);
}

unsigned long tw_failalloc_stop(void)
{
    atomic_store(&armed, 0);
    return counted;
}

unsigned long tw_failalloc_failures(void) { return failures; }

/* 1 when this allocation is to fail. */
static int fail_now(void)
{
    if (!atomic_load_explicit(&armed, memory_order_acquire))
        return 0;
    if (!every_thread && !pthread_equal(pthread_self(), owner))
        return 0;
    unsigned long n = atomic_fetch_add(&counted, 1) + 1;
    if (!fail_at || n < fail_at || (n > fail_at && fail_mode == TW_FAIL_ONCE))
        return 0;
    atomic_fetch_add(&failures, 1);
    return 1;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { return fail_now() ? NULL : __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fail_now() ? NULL : __real_strndup(s, n); }
