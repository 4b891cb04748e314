/* cli/cmd_who.c: `trailwatch who RESOURCE`: every principal that created, changed or deleted it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "trailwatch/archive.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch who RESOURCE [--from TIME] [--to TIME] [--format table|json|csv]\n"
            "                      (--archive PATH | --data-dir DIR | -c FILE)\n\n"
            "Every event in the archive that created, changed or deleted RESOURCE, oldest first: the\n"
            "action (eventName), time, principal (for an assumed role its ARN, and the identity behind\n"
            "the session when the record shows it), source IP and region. RESOURCE is an ARN or an id or\n"
            "name as the records spell it: i-0abc..., sg-..., vpc-..., a bucket, table, function, role,\n"
            "user, key, parameter name. Reads (readOnly true, or Describe/Get/List... calls) are left out:\n"
            "use 'trailwatch query --resource' for every event that names it.\n\n"
            "options:\n"
            "  --from TIME, --to TIME  2021-07-28T12:00:00Z, 2021-07-28 or ms since 1970 (inclusive)\n"
            "  --format FORMAT       table (default on a terminal), json (JSON lines, the default\n"
            "                        otherwise) or csv\n"
            "  --timing              on stderr: the time from opening the archive to the last row\n"
            TW_CLI_ARCHIVE_OPTIONS_HELP
            "  --help, -h            this text\n\n"
            "Exit codes: 0 found, 1 nothing changed it (in the archive), 2 bad arguments, 3 the archive failed.\n");
}

int tw_cmd_who(int argc, char **argv)
{
    static const struct option opts[] = {
        {"archive", required_argument, NULL, 'a'}, {"data-dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},  {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},      {"format", required_argument, NULL, 'F'},
        {"timing", no_argument, NULL, 'T'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    tw_cli_archive_loc loc = {0};
    const char *from = NULL, *to = NULL, *format = NULL;
    int c, timing = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': loc.archive = optarg; break;
        case 'd': loc.data_dir = optarg; break;
        case 'c': loc.config = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'F': format = optarg; break;
        case 'T': timing = 1; break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !*argv[optind]) {
        tw_cli_error("who: name one resource (an ARN, an id such as i-0abc..., or a name)");
        usage(stderr);
        return TW_EXIT_USAGE;
    }
    const char *resource = argv[optind];
    int64_t from_ms = 0, to_ms = 0;
    tw_error err;
    if (from && tw_archive_parse_time(from, &from_ms, &err)) {
        tw_cli_error_status("--from", &err);
        return TW_EXIT_USAGE;
    }
    if (to && tw_archive_parse_time(to, &to_ms, &err)) {
        tw_cli_error_status("--to", &err);
        return TW_EXIT_USAGE;
    }
    tw_cli_rows *rows = tw_cli_rows_new(format, TW_CLI_ROWS_WHO);
    if (!rows) {
        tw_cli_error("--format: '%s' is not table, json or csv", format ? format : "");
        return TW_EXIT_USAGE;
    }
    tw_archive *a = NULL;
    double t0 = tw_cli_seconds();
    int code = tw_cli_archive_open(&loc, 1, &a);
    if (code) {
        tw_cli_rows_end(rows);
        return code;
    }
    tw_status s = tw_archive_who(a, resource, from_ms, to_ms, tw_cli_rows_add, rows, &err);
    size_t n = tw_cli_rows_end(rows);
    if (s) {
        tw_cli_error_status("who", &err);
        code = tw_cli_exit_for(s);
    } else {
        code = n ? TW_EXIT_OK : TW_EXIT_NO;
        if (timing)
            fprintf(stderr, "timing: %zu rows in %.2f ms (open, query, output)\n", n, (tw_cli_seconds() - t0) * 1e3);
        if (!n)
            fprintf(stderr, "trailwatch: who: nothing in the archive created, changed or deleted %s\n", resource);
    }
    tw_archive_close(a);
    return code;
}
