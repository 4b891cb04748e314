/* cli/cmd_dlq.c: `trailwatch dlq list|show|redrive`: look at dead letters and send them again. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "trailwatch/trailwatch.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch dlq list [--target NAME] [--json]  (-c FILE | --data-dir DIR)\n"
            "       trailwatch dlq show ID                        (-c FILE | --data-dir DIR)\n"
            "       trailwatch dlq redrive (ID | --all) [--target NAME] (-c FILE | --data-dir DIR)\n\n"
            "Dead letters are alerts that could not be delivered: a permanent error from the\n"
            "destination (its response is kept), or retries exhausted. redrive puts them back into\n"
            "the outbox; a running server delivers them within a second, otherwise the next start.\n\n"
            "options:\n"
            "  --config, -c FILE     take the data directory from this configuration\n"
            "  --data-dir DIR        or name it directly\n"
            "  --target NAME         only dead letters of this target\n"
            "  --json                list as JSON lines\n"
            "  --all                 redrive every dead letter (of --target, if given)\n"
            "  --help, -h            this text\n");
}

static void when(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int print_row(void *ctx, const tw_dead_letter *dl)
{
    int json = *(int *)ctx;
    char t[32];
    when(dl->failed_ms, t, sizeof t);
    if (json) {
        printf("{\"id\":%lld,\"failed\":\"%s\",\"target\":", (long long)dl->id, t);
        tw_cli_json_str(stdout, dl->target);
        fputs(",\"rule\":", stdout);
        tw_cli_json_str(stdout, dl->rule);
        fputs(",\"event\":", stdout);
        tw_cli_json_str(stdout, dl->event_id);
        printf(",\"attempts\":%u,\"reason\":", dl->attempts);
        tw_cli_json_str(stdout, dl->reason);
        puts("}");
    } else {
        printf("%-6lld %-20s %-20.20s %-28.28s %3u  %.80s\n", (long long)dl->id, t, dl->target, dl->rule,
               dl->attempts, dl->reason);
    }
    return 0;
}

static int print_one(void *ctx, const tw_dead_letter *dl)
{
    (void)ctx;
    char c[32], f[32];
    when(dl->created_ms, c, sizeof c);
    when(dl->failed_ms, f, sizeof f);
    printf("id:        %lld\ntarget:    %s\nrule:      %s\nevent:     %s\ncreated:   %s\nfailed:    %s\n"
           "attempts:  %u\nreason:    %s\nresponse:  %s\npayload:\n",
           (long long)dl->id, dl->target, dl->rule, dl->event_id, c, f, dl->attempts, dl->reason,
           dl->response[0] ? dl->response : "(none)");
    fwrite(dl->payload, 1, dl->payload_len, stdout);
    putchar('\n');
    return 0;
}

int tw_cmd_dlq(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"data-dir", required_argument, NULL, 'd'},
        {"target", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"all", no_argument, NULL, 'a'},          {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cfgpath = NULL, *dir = NULL, *target = NULL;
    int json = 0, all = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfgpath = optarg; break;
        case 'd': dir = optarg; break;
        case 't': target = optarg; break;
        case 'j': json = 1; break;
        case 'a': all = 1; break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind >= argc || (!cfgpath == !dir)) {
        tw_cli_error("dlq: give a subcommand (list, show, redrive) and one of -c FILE or --data-dir DIR");
        usage(stderr);
        return TW_EXIT_USAGE;
    }
    const char *sub = argv[optind++];
    tw_error err;
    tw_config *cfg = NULL;
    if (cfgpath) {
        size_t nerrors;
        if (tw_config_load(cfgpath, &cfg, &nerrors, NULL, NULL, &err)) {
            tw_cli_error_status(cfgpath, &err);
            return TW_EXIT_USAGE;
        }
        dir = tw_config_data_dir(cfg);
    }
    tw_store *st = NULL;
    int code = TW_EXIT_USAGE;
    if (tw_store_open(dir, &st, &err)) {
        tw_cli_error_status("dlq", &err);
        code = TW_EXIT_FAIL;
        goto out;
    }
    long long id = 0;
    if (optind < argc) {
        char *end;
        id = strtoll(argv[optind], &end, 10);
        if (*end || id <= 0) {
            tw_cli_error("dlq: '%s' is not a dead letter id", argv[optind]);
            goto out;
        }
    }
    tw_status rc;
    if (strcmp(sub, "list") == 0) {
        if (!json)
            printf("%-6s %-20s %-20s %-28s %3s  %s\n", "ID", "FAILED", "TARGET", "RULE", "TRY", "REASON");
        rc = tw_dlq_list(st, target, print_row, &json, &err);
    } else if (strcmp(sub, "show") == 0) {
        if (!id) {
            tw_cli_error("dlq show: give the id of a dead letter (see 'trailwatch dlq list')");
            goto out;
        }
        rc = tw_dlq_get(st, id, print_one, NULL, &err);
    } else if (strcmp(sub, "redrive") == 0) {
        if (!id && !all) {
            tw_cli_error("dlq redrive: give an id, or --all");
            goto out;
        }
        size_t moved = 0;
        rc = tw_dlq_redrive(st, id, target, &moved, &err);
        if (!rc)
            printf("redrove %zu dead letter%s\n", moved, moved == 1 ? "" : "s");
    } else {
        tw_cli_error("dlq: unknown subcommand '%s' (list, show, redrive)", sub);
        goto out;
    }
    if (rc) {
        tw_cli_error_status("dlq", &err);
        code = rc == TW_ENOTFOUND ? TW_EXIT_NO : tw_cli_exit_for(rc);
    } else {
        code = TW_EXIT_OK;
    }
out:
    tw_store_close(st);
    tw_config_free(cfg);
    return code;
}
