/* cli/cmd_rules.c: `trailwatch rules check -c FILE`: load a configuration, report every error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "trailwatch/trailwatch.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch rules check -c FILE\n\n"
            "Loads a configuration the way 'trailwatch serve' would: a trailwatch.yml (docs/CONFIG.md) or a\n"
            "Serverless Framework serverless.yml. Every pattern is compiled, every target configured,\n"
            "every ${VAR} looked up in the environment. Each error is printed on stderr as\n"
            "FILE:LINE: message; without errors a summary of the rules, targets and sources is printed\n"
            "on stdout. Neither ever shows a setting's value (webhook URLs, keys and tokens are secrets).\n\n"
            "Exit status: 0 when the configuration is valid, 2 when it has errors or cannot be read,\n"
            "3 on a runtime failure.\n\n"
            "options:\n"
            "  --config, -c FILE        the configuration to check\n"
            "  --help, -h               this text\n");
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

int tw_cmd_rules(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? TW_EXIT_USAGE : TW_EXIT_OK;
    }
    if (strcmp(argv[1], "check") == 0)
        return check(argc - 1, argv + 1);
    tw_cli_error("rules: unknown subcommand '%s' (see 'trailwatch rules --help')", argv[1]);
    return TW_EXIT_USAGE;
}
