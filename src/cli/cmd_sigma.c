/* cli/cmd_sigma.c: `trailwatch sigma check|lint PATH...`: load Sigma rules the way serve and match do,
 * report refusals (check) or likely mistakes (lint). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "trailwatch/trailwatch.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch sigma check [--json] [--placeholders FILE] PATH...\n"
            "       trailwatch sigma lint [--placeholders FILE] PATH...\n\n"
            "PATH is a Sigma rule file (every YAML document in it) or a folder of .yml/.yaml files.\n\n"
            "check  loads and compiles every rule as 'trailwatch serve' and 'match' would and links the\n"
            "       correlations. A refused rule is reported on stderr as FILE:LINE: rule \"TITLE\": reason.\n"
            "       On stdout: one line per loaded rule (name, kind, level, title), or with --json one JSON\n"
            "       object per line: name, title, id, kind, level, severity, alerts (false when it only feeds\n"
            "       correlations with generate: false), file, line, tags.\n"
            "lint   also reports likely mistakes in rules that load: fields CloudTrail never has (status),\n"
            "       a value that names a field without |fieldref, values whose case differs from what\n"
            "       CloudTrail writes (MFAUsed: 'NO'), strings compared with JSON booleans, 'Success' as an\n"
            "       errorCode, placeholders without |expand; as FILE:LINE: rule \"TITLE\": warning: ...\n\n"
            "Exit status: check: 0 when every rule loads, 2 when one is refused or a path cannot be read.\n"
            "lint: 0 no findings, 1 findings, 2 refused rules or unreadable paths.\n\n"
            "options:\n"
            "  --json                   check: one JSON object per rule on stdout\n"
            "  --placeholders FILE      values for |expand placeholders ({name: [values]}, YAML or JSON)\n"
            "  --help, -h               this text\n");
}

static void report(void *ctx, const char *msg)
{
    size_t *n = ctx;
    if (n)
        (*n)++;
    fprintf(stderr, "%s\n", msg);
}

static int load(tw_sigma *s, char **paths, int n, const char *placeholders, size_t *refused)
{
    tw_error err;
    if (placeholders) {
        tw_limits lim;
        tw_limits_default(&lim);
        tw_json_doc *doc = NULL;
        tw_status rc = tw_cli_read_yaml(placeholders, &lim, &doc, &err);
        if (!rc)
            rc = tw_sigma_set_placeholders(s, tw_json_root(doc), &err);
        tw_json_doc_free(doc);
        if (rc) {
            tw_cli_error_status(placeholders, &err);
            return 0;
        }
    }
    for (int i = 0; i < n; i++)
        if (tw_sigma_load_path(s, paths[i], refused, report, NULL, &err)) {
            tw_cli_error_status(NULL, &err);
            return 0;
        }
    /* link and compile exactly as a rule set would */
    tw_ruleset_builder *b = NULL;
    tw_ruleset *rs = NULL;
    int ok = tw_ruleset_builder_new(NULL, &b) == TW_OK && tw_sigma_add(s, b, refused, report, NULL, &err) == TW_OK &&
             tw_ruleset_build(b, &rs, &err) == TW_OK;
    if (!ok)
        tw_cli_error_status(NULL, &err);
    tw_ruleset_free(rs);
    tw_ruleset_builder_free(b);
    return ok;
}

int tw_cmd_sigma(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? TW_EXIT_USAGE : TW_EXIT_OK;
    }
    int lint = strcmp(argv[1], "lint") == 0;
    if (!lint && strcmp(argv[1], "check") != 0) {
        tw_cli_error("sigma: unknown subcommand '%s' (see 'trailwatch sigma --help')", argv[1]);
        return TW_EXIT_USAGE;
    }
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"placeholders", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;
    const char *placeholders = NULL;
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'P': placeholders = optarg; break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        tw_cli_error("sigma %s: give one or more rule files or folders", lint ? "lint" : "check");
        return TW_EXIT_USAGE;
    }
    tw_sigma *s = NULL;
    if (tw_sigma_new(NULL, &s)) {
        tw_cli_error("out of memory");
        return TW_EXIT_FAIL;
    }
    size_t refused = 0;
    int code = TW_EXIT_USAGE;
    if (!load(s, argv + optind, argc - optind, placeholders, &refused))
        goto out;
    if (lint) {
        size_t findings = tw_sigma_lint(s, report, NULL);
        fprintf(stderr, "%zu rules, %zu refused, %zu warnings\n", tw_sigma_count(s), refused, findings);
        code = refused ? TW_EXIT_USAGE : findings ? TW_EXIT_NO : TW_EXIT_OK;
        goto out;
    }
    for (size_t i = 0; i < tw_sigma_count(s); i++) {
        const tw_sigma_rule_info *in = tw_sigma_rule(s, i);
        if (in->refused)
            continue;
        const char *kind = in->kind == TW_SIGMA_CORRELATION ? in->corr_type : "detection";
        if (!json) {
            printf("%-50s %-16s %-13s %s\n", in->name, kind, *in->level ? in->level : "-", in->title);
            continue;
        }
        fputs("{\"name\":", stdout);
        tw_cli_json_str(stdout, in->name);
        fputs(",\"title\":", stdout);
        tw_cli_json_str(stdout, in->title);
        fputs(",\"id\":", stdout);
        tw_cli_json_str(stdout, in->id);
        fputs(",\"kind\":", stdout);
        tw_cli_json_str(stdout, kind);
        fputs(",\"level\":", stdout);
        tw_cli_json_str(stdout, in->level);
        printf(",\"severity\":\"%s\",\"alerts\":%s,\"file\":", in->severity, in->alerts ? "true" : "false");
        tw_cli_json_str(stdout, in->file);
        printf(",\"line\":%u,\"tags\":[", in->line);
        for (size_t t = 0; t < in->ntags; t++) {
            if (t)
                putchar(',');
            tw_cli_json_str(stdout, in->tags[t]);
        }
        puts("]}");
    }
    size_t loaded = 0;
    for (size_t i = 0; i < tw_sigma_count(s); i++)
        loaded += !tw_sigma_rule(s, i)->refused;
    fprintf(stderr, "%zu rules loaded, %zu refused\n", loaded, refused);
    code = refused ? TW_EXIT_USAGE : TW_EXIT_OK;
out:
    tw_sigma_free(s);
    return fflush(stdout) == 0 ? code : TW_EXIT_FAIL;
}
