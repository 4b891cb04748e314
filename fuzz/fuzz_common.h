/*
 * fuzz/fuzz_common.h: what every fuzz target body shares: the failure hook, rule-set building, and
 * small checks on match results.
 *
 * Ownership: helpers return handles the caller frees; nothing here keeps state.
 *
 * Each fuzz/<target>_body.h defines fuzz_<target>_init() / _check(data, size) / _fini(). They are
 * included both by fuzz/<target>.c (the libFuzzer entry points) and by
 * tests/unit/test_fuzz_regressions.c (which replays tests/fuzz-regressions/<target>/), so a
 * reproducer is checked by exactly the code that found it. A failed FUZZ_CHECK prints what and
 * calls FUZZ_FAIL_HOOK(): abort() in the fuzzer (libFuzzer saves the input), a recorded test failure
 * in the unit test (which defines the hook before including the bodies). Checks never guard memory
 * accesses, so carrying on after one is safe.
 */
#ifndef TW_FUZZ_COMMON_H
#define TW_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trailwatch/error.h"
#include "trailwatch/limits.h"
#include "trailwatch/pattern.h"

#ifndef FUZZ_FAIL_HOOK
#define FUZZ_FAIL_HOOK() abort()
#endif

/* Known open findings (reported, not fixed yet; their reproducers are tests/fuzz-regressions/<target>/
 * open-*): the fuzzers step over them so that a long run looks for new ones. FUZZ_STRICT=1 (make -f
 * fuzz/Makefile STRICT=1, and the unit test) checks them like everything else. */
#ifndef FUZZ_STRICT
#define FUZZ_STRICT 0
#endif
#define FUZZ_KNOWN(cond) (!FUZZ_STRICT && (cond))

/* Every body function is static and may go unused in one of the two includers. */
#define FUZZ_FN static __attribute__((unused))

#define FUZZ_CHECK(cond, ...)                                                                     \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "FUZZ CHECK FAILED at %s:%d: %s\n    ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
            FUZZ_FAIL_HOOK();                                                                     \
        }                                                                                         \
    } while (0)

/* A setup step that cannot fail unless the library or the body is broken. */
#define FUZZ_SETUP(cond, what)                                                                    \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "fuzz setup failed at %s:%d: %s\n", __FILE__, __LINE__, what);        \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

/* Limits of the fuzz targets: the defaults with the depth and counted limits lowered so that
 * inputs of a few KB reach them. */
FUZZ_FN void fuzz_limits(tw_limits *lim)
{
    tw_limits_default(lim);
    lim->json_depth = 64;
    lim->event_values = 64;
    lim->match_steps = 4096;
    lim->or_combinations = 64;
}

/* Builds a rule set from pattern texts named r0, r1, ...; aborts on an invalid one (a broken body). */
FUZZ_FN tw_ruleset *fuzz_build_rules(const tw_limits *lim, const char *const *patterns, size_t n)
{
    tw_ruleset_builder *b = NULL;
    tw_ruleset *rs = NULL;
    tw_error err;
    FUZZ_SETUP(tw_ruleset_builder_new(lim, &b) == TW_OK, "tw_ruleset_builder_new");
    for (size_t i = 0; i < n; i++) {
        tw_pattern *p = NULL;
        char name[32];
        if (tw_pattern_parse(patterns[i], strlen(patterns[i]), lim, &p, &err) != TW_OK) {
            fprintf(stderr, "fixed pattern %zu is invalid: %s\n  %s\n", i, err.msg, patterns[i]);
            abort();
        }
        snprintf(name, sizeof name, "r%zu", i);
        FUZZ_SETUP(tw_ruleset_builder_add(b, name, p, NULL, &err) == TW_OK, err.msg);
    }
    FUZZ_SETUP(tw_ruleset_build(b, &rs, &err) == TW_OK, err.msg);
    tw_ruleset_builder_free(b);
    return rs;
}

/* The rule indexes of a result are ascending, distinct and name rules of the set. */
FUZZ_FN int fuzz_result_sane(const tw_match_result *res, size_t nrules)
{
    if (res->count > nrules || (res->count && !res->rules))
        return 0;
    for (size_t i = 0; i < res->count; i++) {
        if (res->rules[i] >= nrules || (i && res->rules[i] <= res->rules[i - 1]))
            return 0;
    }
    return 1;
}

/* A result as a bit set over at most 64 rules (the fixed sets are smaller). */
FUZZ_FN uint64_t fuzz_result_bits(const tw_match_result *res)
{
    uint64_t bits = 0;
    for (size_t i = 0; i < res->count; i++)
        if (res->rules[i] < 64)
            bits |= (uint64_t)1 << res->rules[i];
    return bits;
}

/* Errors that say "this text is not acceptable JSON" (as opposed to limits of matching). */
FUZZ_FN int fuzz_is_syntax_error(tw_status rc)
{
    return rc == TW_EJSON || rc == TW_EUTF8 || rc == TW_EDEPTH || rc == TW_ETOOBIG;
}

/* The first byte that is not JSON whitespace, or -1. */
FUZZ_FN int fuzz_first_byte(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (data[i] != ' ' && data[i] != '\t' && data[i] != '\n' && data[i] != '\r')
            return data[i];
    return -1;
}

#endif
