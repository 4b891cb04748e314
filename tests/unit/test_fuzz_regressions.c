/* Unit tests: every input under tests/fuzz-regressions/<target>/ replayed through the checks of that
 * fuzz target (fuzz/<target>_body.h, the very code the fuzzer runs), so that what a fuzzer found once
 * stays fixed. The folder is found through $TW_SOURCE_DIR (tests/run.py sets it), else the current
 * directory. Files named "open-*" are findings not fixed yet: listed, not run (they may crash). */
#include <dirent.h>
#include <errno.h>

#include "tw_test.h"

/* A failed fuzz check is a failed test (the check prints what went wrong). */
#define FUZZ_FAIL_HOOK() (tw_failed_now_ = 1)
#define FUZZ_STRICT 1

#include "../../fuzz/fuzz_archive_body.h"
#include "../../fuzz/fuzz_aws_body.h"
#include "../../fuzz/fuzz_event_body.h"
#include "../../fuzz/fuzz_json_body.h"
#include "../../fuzz/fuzz_pattern_body.h"
#include "../../fuzz/fuzz_reader_body.h"
#include "../../fuzz/fuzz_regex_lit_body.h"
#include "../../fuzz/fuzz_sigma_body.h"
#include "../../fuzz/fuzz_sigma_cond_body.h"
#include "../../fuzz/fuzz_sigv4_body.h"
#include "../../fuzz/fuzz_yaml_body.h"

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            unsigned char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Runs check on every file of tests/fuzz-regressions/<target>/, in name order. */
static void replay(const char *target, void (*check)(const uint8_t *, size_t))
{
    const char *root = getenv("TW_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz-regressions/%s", root && *root ? root : ".", target);
    DIR *d = opendir(dir);
    if (!d) {
        printf("# %s: no %s (%s): nothing to replay\n", target, dir, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **p = realloc(names, cap * sizeof *p);
            if (!p)
                break;
            names = p;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    size_t ran = 0, open = 0;
    for (size_t i = 0; i < n; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (strncmp(names[i], "open-", 5) == 0) {
            printf("# %s: %s is an open finding (not replayed)\n", target, names[i]);
            open++;
            free(names[i]);
            continue;
        }
        size_t len = 0;
        unsigned char *data = slurp(path, &len);
        if (!data) {
            TW_FAIL_("cannot read %s", path);
        } else {
            int before = tw_failed_now_;
            tw_failed_now_ = 0;
            check(data, len);
            if (tw_failed_now_)
                printf("#   %s: %s fails its fuzz checks (see stderr)\n", target, names[i]);
            tw_failed_now_ |= before;
            ran++;
        }
        free(data);
        free(names[i]);
    }
    free(names);
    printf("# %s: %zu reproducers replayed, %zu open\n", target, ran, open);
}

TW_TEST(fuzz_archive_regressions)
{
    fuzz_archive_init();
    replay("fuzz_archive", fuzz_archive_check);
    fuzz_archive_fini();
}

TW_TEST(fuzz_aws_regressions)
{
    fuzz_aws_init();
    replay("fuzz_aws", fuzz_aws_check);
    fuzz_aws_fini();
}

TW_TEST(fuzz_json_regressions)
{
    fuzz_json_init();
    replay("fuzz_json", fuzz_json_check);
    fuzz_json_fini();
}

TW_TEST(fuzz_pattern_regressions)
{
    fuzz_pattern_init();
    replay("fuzz_pattern", fuzz_pattern_check);
    fuzz_pattern_fini();
}

TW_TEST(fuzz_event_regressions)
{
    fuzz_event_init();
    replay("fuzz_event", fuzz_event_check);
    fuzz_event_fini();
}

TW_TEST(fuzz_yaml_regressions)
{
    fuzz_yaml_init();
    replay("fuzz_yaml", fuzz_yaml_check);
    fuzz_yaml_fini();
}

TW_TEST(fuzz_reader_regressions)
{
    fuzz_reader_init();
    replay("fuzz_reader", fuzz_reader_check);
    fuzz_reader_fini();
}

TW_TEST(fuzz_sigv4_regressions)
{
    fuzz_sigv4_init();
    replay("fuzz_sigv4", fuzz_sigv4_check);
    fuzz_sigv4_fini();
}

TW_TEST(fuzz_sigma_regressions)
{
    fuzz_sigma_init();
    replay("fuzz_sigma", fuzz_sigma_check);
    fuzz_sigma_fini();
}

TW_TEST(fuzz_sigma_cond_regressions)
{
    fuzz_sigma_cond_init();
    replay("fuzz_sigma_cond", fuzz_sigma_cond_check);
    fuzz_sigma_cond_fini();
}

TW_TEST(fuzz_regex_lit_regressions)
{
    fuzz_regex_lit_init();
    replay("fuzz_regex_lit", fuzz_regex_lit_check);
    fuzz_regex_lit_fini();
}

TW_TEST_MAIN()
