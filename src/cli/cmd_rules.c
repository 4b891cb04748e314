/* cli/cmd_rules.c: `trailwatch rules check -c FILE`: load a configuration, report every error;
 * `trailwatch rules test`: run every rule's example events. */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "trailwatch/trailwatch.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch rules check -c FILE\n"
            "       trailwatch rules test [-c FILE] [-v] [PACK.yml|DIR ...]\n\n"
            "rules check loads a configuration the way 'trailwatch serve' would: a trailwatch.yml (docs/CONFIG.md) or a\n"
            "Serverless Framework serverless.yml. Every pattern is compiled, every target configured,\n"
            "every ${VAR} looked up in the environment. Each error is printed on stderr as\n"
            "FILE:LINE: message; without errors a summary of the rules, targets and sources is printed\n"
            "on stdout. Neither ever shows a setting's value (webhook URLs, keys and tokens are secrets).\n\n"
            "Exit status: 0 when the configuration is valid, 2 when it has errors or cannot be read,\n"
            "3 on a runtime failure.\n\n"
            "rules test runs the example events of every rule (examples.match must match, examples.no_match\n"
            "must not) through the same loading, CloudTrail wrapping and matching as 'trailwatch serve', and\n"
            "checks that every rule of a pack has a description, a severity, references and examples of both\n"
            "kinds (rules/README.md). It tests the rule packs named (files, or folders of *.yml files), the\n"
            "rules of the configuration given with -c and the packs it loads; with neither, the packs in the\n"
            "rules folder (%s). A pack's params take their example values. Each failure is\n"
            "printed as FILE:LINE: rule \"NAME\": what; the last line is \"N rules, N examples: N passed, N failed\".\n"
            "Exit status: 0 when every check passed, 1 when one failed, 2 when a file has errors.\n\n"
            "options:\n"
            "  --config, -c FILE        the configuration to check (check), or whose rules to test (test)\n"
            "  --verbose, -v            test: print every check, passed ones too\n"
            "  --help, -h               this text\n", tw_rules_dir());
}

static void report(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "%s\n", message);
}

static int check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            usage(stdout);
            return TW_EXIT_OK;
        case ':':
            tw_cli_error("rules check: %s needs a value", argv[optind - 1]);
            return TW_EXIT_USAGE;
        default:
            tw_cli_error("rules check: unknown option '%s' (see 'trailwatch rules --help')", argv[optind - 1]);
            return TW_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        tw_cli_error("rules check: unexpected argument '%s'", argv[optind]);
        return TW_EXIT_USAGE;
    }
    if (!path) {
        tw_cli_error("rules check: give the configuration with -c FILE");
        return TW_EXIT_USAGE;
    }
    tw_config *cfg = NULL;
    size_t nerrors = 0;
    tw_error err;
    tw_status rc = tw_config_load(path, &cfg, &nerrors, report, NULL, &err);
    if (rc) {
        if (nerrors == 0)   /* not one of the file's errors (out of memory): say what happened */
            tw_cli_error_status(path, &err);
        else
            tw_cli_error("%s: %zu error%s", path, nerrors, nerrors == 1 ? "" : "s");
        return rc == TW_ENOMEM ? TW_EXIT_FAIL : nerrors ? TW_EXIT_USAGE : tw_cli_exit_for(rc);
    }
    char *text = tw_config_describe(cfg);
    tw_config_free(cfg);
    if (!text) {
        tw_cli_error("out of memory");
        return TW_EXIT_FAIL;
    }
    fputs(text, stdout);
    free(text);
    return fflush(stdout) == 0 ? TW_EXIT_OK : TW_EXIT_FAIL;
}

typedef struct test_out {
    int verbose;
} test_out;

static void print_check(void *ctx, const tw_rule_check *c)
{
    const test_out *o = ctx;
    static const char *const what[] = {"must-match example", "must-not-match example", "rule"};
    if (c->passed && !o->verbose)
        return;
    if (c->kind == TW_CHECK_RULE)
        printf("%s: rule \"%s\": %s\n", c->where, c->rule, c->passed ? "ok" : c->message);
    else
        printf("%s: rule \"%s\": %s %zu: %s\n", c->where, c->rule, what[c->kind], c->index,
               c->passed ? "ok" : c->message);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Adds path, or the *.yml / *.yaml files of the folder path (sorted), to the list. */
static int add_pack_paths(const char *path, char ***list, size_t *n, size_t *cap)
{
    DIR *d = opendir(path);
    size_t first = *n;
    if (!d) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            char **p = realloc(*list, *cap * sizeof *p);
            if (!p)
                return -1;
            *list = p;
        }
        return ((*list)[(*n)++] = strdup(path)) ? 0 : -1;
    }
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || !((l > 4 && strcmp(de->d_name + l - 4, ".yml") == 0) ||
                                      (l > 5 && strcmp(de->d_name + l - 5, ".yaml") == 0)))
            continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            char **p = realloc(*list, *cap * sizeof *p);
            if (!p) {
                rc = -1;
                break;
            }
            *list = p;
        }
        size_t pl = strlen(path);
        char *full = malloc(pl + l + 2);
        if (!full) {
            rc = -1;
            break;
        }
        snprintf(full, pl + l + 2, "%s%s%s", path, pl && path[pl - 1] == '/' ? "" : "/", de->d_name);
        (*list)[(*n)++] = full;
    }
    closedir(d);
    if (!rc)
        qsort(*list + first, *n - first, sizeof **list, cmp_str);
    return rc;
}

static int test(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    test_out o = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'v':
            o.verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return TW_EXIT_OK;
        case ':':
            tw_cli_error("rules test: %s needs a value", argv[optind - 1]);
            return TW_EXIT_USAGE;
        default:
            tw_cli_error("rules test: unknown option '%s' (see 'trailwatch rules --help')", argv[optind - 1]);
            return TW_EXIT_USAGE;
        }
    }
    char **packs = NULL;
    size_t npacks = 0, cap = 0;
    int exit_code = TW_EXIT_OK;
    for (int i = optind; i < argc; i++)
        if (add_pack_paths(argv[i], &packs, &npacks, &cap)) {
            tw_cli_error("out of memory");
            exit_code = TW_EXIT_FAIL;
            goto out;
        }
    if (!path && optind == argc && add_pack_paths(tw_rules_dir(), &packs, &npacks, &cap)) {
        tw_cli_error("out of memory");
        exit_code = TW_EXIT_FAIL;
        goto out;
    }
    if (!path && !npacks) {
        tw_cli_error("rules test: no rule packs in %s (name pack files or folders, or -c FILE)", argc > optind ?
                     argv[optind] : tw_rules_dir());
        exit_code = TW_EXIT_USAGE;
        goto out;
    }
    tw_config *cfg = NULL;
    size_t nerrors = 0;
    tw_error err;
    tw_status rc = tw_config_load_for_test(path, (const char *const *)packs, npacks, &cfg, &nerrors, report, NULL,
                                           &err);
    if (rc) {
        if (nerrors == 0)
            tw_cli_error_status(path ? path : packs[0], &err);
        else
            tw_cli_error("%zu error%s: nothing was tested", nerrors, nerrors == 1 ? "" : "s");
        exit_code = rc == TW_ENOMEM ? TW_EXIT_FAIL : nerrors ? TW_EXIT_USAGE : tw_cli_exit_for(rc);
        goto out;
    }
    tw_rules_test_counts n;
    rc = tw_rules_test(cfg, print_check, &o, &n, &err);
    tw_config_free(cfg);
    if (rc) {
        tw_cli_error_status("rules test", &err);
        exit_code = tw_cli_exit_for(rc);
        goto out;
    }
    printf("%zu rule%s, %zu example%s: %zu passed, %zu failed\n", n.rules, n.rules == 1 ? "" : "s", n.examples,
           n.examples == 1 ? "" : "s", n.passed, n.failed);
    if (n.untested)
        printf("(%zu rule%s of the configuration without examples)\n", n.untested, n.untested == 1 ? "" : "s");
    exit_code = fflush(stdout) ? TW_EXIT_FAIL : n.failed ? TW_EXIT_NO : TW_EXIT_OK;
out:
    for (size_t i = 0; i < npacks; i++)
        free(packs[i]);
    free(packs);
    return exit_code;
}

int tw_cmd_rules(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? TW_EXIT_USAGE : TW_EXIT_OK;
    }
    if (strcmp(argv[1], "check") == 0)
        return check(argc - 1, argv + 1);
    if (strcmp(argv[1], "test") == 0)
        return test(argc - 1, argv + 1);
    tw_cli_error("rules: unknown subcommand '%s' (see 'trailwatch rules --help')", argv[1]);
    return TW_EXIT_USAGE;
}
