/*
 * tests/unit/tw_test.h: a minimal unit-test harness printing TAP ("ok 3 - name").
 *
 * Each test file defines tests with TW_TEST(name) { ... } and ends with TW_TEST_MAIN(). A failed
 * CHECK records the failure (file:line and the expression) and the test carries on; REQUIRE returns.
 */
#ifndef TW_TEST_H
#define TW_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tw_test_case {
    const char *name;
    void (*fn)(void);
} tw_test_case;

#define TW_TEST_MAX 512
static tw_test_case tw_tests_[TW_TEST_MAX];
static int tw_ntests_;
static int tw_failed_now_;

#define TW_TEST(name)                                                                     \
    static void test_##name(void);                                                        \
    __attribute__((constructor)) static void register_##name(void)                        \
    {                                                                                     \
        if (tw_ntests_ < TW_TEST_MAX)                                                     \
            tw_tests_[tw_ntests_++] = (tw_test_case){#name, test_##name};                 \
    }                                                                                     \
    static void test_##name(void)

#define TW_FAIL_(...)                                                                     \
    do {                                                                                  \
        printf("#   %s:%d: ", __FILE__, __LINE__);                                        \
        printf(__VA_ARGS__);                                                              \
        printf("\n");                                                                     \
        tw_failed_now_ = 1;                                                               \
    } while (0)

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond))                                                                      \
            TW_FAIL_("CHECK(%s) failed", #cond);                                          \
    } while (0)

#define REQUIRE(cond)                                                                     \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            TW_FAIL_("REQUIRE(%s) failed", #cond);                                        \
            return;                                                                       \
        }                                                                                 \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                \
    do {                                                                                  \
        long long a_ = (long long)(a), b_ = (long long)(b);                               \
        if (a_ != b_)                                                                     \
            TW_FAIL_("%s == %lld, expected %s == %lld", #a, a_, #b, b_);                  \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                \
    do {                                                                                  \
        const char *a_ = (a), *b_ = (b);                                                  \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                            \
            TW_FAIL_("%s == \"%s\", expected \"%s\"", #a, a_ ? a_ : "(null)",             \
                     b_ ? b_ : "(null)");                                                 \
    } while (0)

#define CHECK_CONTAINS(hay, needle)                                                       \
    do {                                                                                  \
        const char *h_ = (hay), *n_ = (needle);                                           \
        if (!h_ || !strstr(h_, n_))                                                       \
            TW_FAIL_("%s == \"%s\" does not contain \"%s\"", #hay, h_ ? h_ : "(null)", n_); \
    } while (0)

/* The shared data folder (../shared/data's parent): $TW_SHARED_DIR, ../shared, /work/shared (as
 * tests/e2e/twtest.py), or NULL when none has a data/ folder. */
#include <sys/stat.h>
static __attribute__((unused)) const char *tw_test_shared_dir(void)
{
    static char found[1024];
    const char *cands[] = {getenv("TW_SHARED_DIR"), "../shared", "/work/shared"};
    for (size_t i = 0; i < 3; i++) {
        char probe[1100];
        struct stat st;
        if (!cands[i] || !*cands[i])
            continue;
        snprintf(probe, sizeof probe, "%s/data", cands[i]);
        if (stat(probe, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(found, sizeof found, "%s", cands[i]);
            return found;
        }
    }
    return NULL;
}

#define TW_TEST_MAIN()                                                                    \
    int main(int argc, char **argv)                                                       \
    {                                                                                     \
        int failed = 0;                                                                   \
        const char *only = argc > 1 ? argv[1] : NULL;                                     \
        printf("1..%d\n", tw_ntests_);                                                    \
        for (int i = 0; i < tw_ntests_; i++) {                                            \
            if (only && strcmp(only, tw_tests_[i].name) != 0) {                           \
                printf("ok %d - %s # SKIP\n", i + 1, tw_tests_[i].name);                  \
                continue;                                                                 \
            }                                                                             \
            tw_failed_now_ = 0;                                                           \
            tw_tests_[i].fn();                                                            \
            fflush(stdout);                                                               \
            printf("%s %d - %s\n", tw_failed_now_ ? "not ok" : "ok", i + 1,               \
                   tw_tests_[i].name);                                                    \
            fflush(stdout); /* nothing buffered when a later test forks */                \
            failed += tw_failed_now_;                                                     \
        }                                                                                 \
        return failed ? 1 : 0;                                                            \
    }

#endif
