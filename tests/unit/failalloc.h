/*
 * tests/unit/failalloc.h: makes the library's allocations fail on demand, for allocation-failure
 * ("torture") tests in the manner of curl's torture tests and SQLite's malloc tests.
 *
 * How: a test binary that links tests/unit/failalloc.c with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc,--wrap=strdup,--wrap=strndup (see the Makefile's TORTURE_BIN) has every call to
 * those from its own objects and from libtrailwatch.a routed through here. The real allocator is
 * still the one underneath (ASan's under SAN=1, valgrind's under valgrind), so sanitizers and leak
 * checks see everything. Allocations inside shared libraries (SQLite, libyaml, curl) are not
 * wrapped: their own out-of-memory handling is theirs.
 *
 * Ownership: all state is global; one sweep runs at a time.
 */
#ifndef TW_TESTS_FAILALLOC_H
#define TW_TESTS_FAILALLOC_H

#include <stddef.h>

typedef enum tw_failalloc_mode {
    TW_FAIL_ONCE = 0,              /* only the nth allocation fails (curl) */
    TW_FAIL_FROM,                  /* the nth and every later one fail (SQLite's "persistent") */
} tw_failalloc_mode;

/* Starts counting allocations made by the calling thread (all threads when all_threads); the nth
 * of them fails (1 = the next one; 0 = none fails, just count). */
void tw_failalloc_start(unsigned long nth, tw_failalloc_mode mode, int all_threads);
/* Stops counting; returns how many allocations were counted since start. */
unsigned long tw_failalloc_stop(void);
/* How many allocations were made to fail since start. */
unsigned long tw_failalloc_failures(void);

#endif
