/* cli/cmd_query.c: `trailwatch query`: search the archive, newest first; and the row printer that
 * query and who share. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "trailwatch/archive.h"
#include "trailwatch/limits.h"

/* ---- rows out ---- */

#define NCOLS 6

struct tw_cli_rows {
    int format, who;
    size_t count;
    char **cells;       /* table: NCOLS per row */
    size_t n, cap;
};

tw_cli_rows *tw_cli_rows_new(const char *format, int who)
{
    int f;
    if (!format)
        f = isatty(1) ? TW_CLI_TABLE : TW_CLI_JSON;
    else if (strcmp(format, "table") == 0)
        f = TW_CLI_TABLE;
    else if (strcmp(format, "json") == 0)
        f = TW_CLI_JSON;
    else if (strcmp(format, "csv") == 0)
        f = TW_CLI_CSV;
    else
        return NULL;
    tw_cli_rows *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->format = f;
    r->who = who;
    if (f == TW_CLI_CSV)
        puts(who ? "time,action,principal,principal_type,source_ip,region,event_source,account,error_code,id"
                 : "time,event_name,event_source,principal,principal_type,source_ip,region,account,error_code,id");
    return r;
}

static void json_field(const char *name, const char *v, int first)
{
    printf("%s\"%s\":", first ? "" : ",", name);
    tw_cli_json_string(stdout, v, strlen(v));
}

static const char *who_text(const tw_archive_row *r, char *buf, size_t cap)
{
    /* an assumed role reads better as role/session, with the identity behind it */
    if (*r->behind)
        snprintf(buf, cap, "%s (%s)", r->principal, r->behind);
    else
        snprintf(buf, cap, "%s", r->principal);
    return buf;
}

int tw_cli_rows_add(void *ud, const tw_archive_row *r)
{
    tw_cli_rows *rows = ud;
    char t[40];
    tw_cli_time(r->time_ms, t, sizeof t);
    rows->count++;
    if (rows->format == TW_CLI_JSON) {
        printf("{\"time\":\"%s\",\"time_ms\":%" PRId64, t, r->time_ms);
        json_field("id", r->id, 0);
        json_field("eventName", r->event_name, 0);
        json_field("eventSource", r->event_source, 0);
        json_field("account", r->account, 0);
        json_field("region", r->region, 0);
        json_field("principal", r->principal, 0);
        json_field("principalType", r->principal_type, 0);
        json_field("role", r->role, 0);
        json_field("session", r->session, 0);
        json_field("behind", r->behind, 0);
        json_field("sourceIPAddress", r->source_ip, 0);
        json_field("errorCode", r->error_code, 0);
        fputs(",\"event\":", stdout);
        fwrite(r->json, 1, r->json_len, stdout);
        puts("}");
        return 0;
    }
    if (rows->format == TW_CLI_CSV) {
        const char *v[10] = {t, r->event_name, r->event_source, r->principal, r->principal_type, r->source_ip,
                             r->region, r->account, r->error_code, r->id};
        if (rows->who) {
            const char *w[10] = {t, r->event_name, r->principal, r->principal_type, r->source_ip, r->region,
                                 r->event_source, r->account, r->error_code, r->id};
            memcpy(v, w, sizeof v);
        }
        for (int i = 0; i < 10; i++) {
            if (i)
                putchar(',');
            tw_cli_csv_field(stdout, v[i]);
        }
        putchar('\n');
        return 0;
    }
    if (rows->n + NCOLS > rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 64 * NCOLS;
        char **c = realloc(rows->cells, cap * sizeof *c);
        if (!c)
            return 1;
        rows->cells = c;
        rows->cap = cap;
    }
    char who[1024];
    const char *cells[NCOLS] = {t, r->event_name, who_text(r, who, sizeof who),
                                rows->who ? r->principal_type : r->source_ip, rows->who ? r->source_ip : r->region,
                                rows->who ? r->region : r->error_code};
    for (int i = 0; i < NCOLS; i++)
        rows->cells[rows->n++] = strdup(*cells[i] ? cells[i] : "-");
    return 0;
}

size_t tw_cli_rows_end(tw_cli_rows *rows)
{
    if (!rows)
        return 0;
    size_t count = rows->count;
    if (rows->format == TW_CLI_TABLE && rows->n) {
        static const char *const head_q[NCOLS] = {"TIME", "EVENT", "PRINCIPAL", "SOURCE IP", "REGION", "ERROR"};
        static const char *const head_w[NCOLS] = {"TIME", "ACTION", "PRINCIPAL", "TYPE", "SOURCE IP", "REGION"};
        const char *const *head = rows->who ? head_w : head_q;
        int w[NCOLS];
        for (int c = 0; c < NCOLS; c++)
            w[c] = (int)strlen(head[c]);
        for (size_t i = 0; i < rows->n; i++) {
            int len = rows->cells[i] ? (int)strlen(rows->cells[i]) : 1;
            if (len > w[i % NCOLS])
                w[i % NCOLS] = len;
        }
        for (int c = 0; c < NCOLS; c++)
            printf("%-*s%s", c + 1 < NCOLS ? w[c] : 0, head[c], c + 1 < NCOLS ? "  " : "\n");
        for (size_t i = 0; i < rows->n; i++) {
            int c = (int)(i % NCOLS);
            const char *v = rows->cells[i] ? rows->cells[i] : "?";
            printf("%-*s%s", c + 1 < NCOLS ? w[c] : 0, v, c + 1 < NCOLS ? "  " : "\n");
        }
    }
    for (size_t i = 0; i < rows->n; i++)
        free(rows->cells[i]);
    free(rows->cells);
    free(rows);
    fflush(stdout);
    return count;
}

/* ---- query ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch query [filters] [--limit N] [--format table|json|csv]\n"
            "                        (--archive PATH | --data-dir DIR | -c FILE)\n\n"
            "Events from the archive that match every filter given, newest first. On a terminal: an\n"
            "aligned table (at most 100 rows unless --limit says otherwise); otherwise JSON lines (each\n"
            "with the event as it was received, byte for byte) or CSV.\n\n"
            "filters:\n"
            "  --since DURATION      the last 7d, 12h, 30m ... (from now)\n"
            "  --from TIME, --to TIME  2021-07-28T12:00:00Z, 2021-07-28 or ms since 1970 (inclusive)\n"
            "  --pattern PATTERN     an EventBridge event pattern, the language of rules (JSON, or @FILE);\n"
            "                        exact values of source, account, region, detail-type, detail.eventName\n"
            "                        and detail.errorCode use the indexes, the rest is checked per event\n"
            "  --resource R          events that name R: an ARN or id/name (i-0abc, sg-..., bucket, role)\n"
            "  --who W               events by W: an ARN, user, role or session name, service, sourceIdentity\n"
            "  --event-name NAME     this eventName\n"
            "output:\n"
            "  --limit N             at most N events (0 = all)\n"
            "  --cursor C            continue after the last page (its cursor is printed on stderr)\n"
            "  --format FORMAT       table, json (JSON lines) or csv\n"
            "  --timing              on stderr: the time from opening the archive to the last row\n"
            "archive:\n" TW_CLI_ARCHIVE_OPTIONS_HELP "  --help, -h            this text\n\n"
            "Exit codes: 0 events found, 1 none, 2 bad arguments, 3 the archive failed.\n");
}

double tw_cli_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tw_cmd_query(int argc, char **argv)
{
    static const struct option opts[] = {
        {"archive", required_argument, NULL, 'a'},  {"data-dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},   {"since", required_argument, NULL, 's'},
        {"from", required_argument, NULL, 'f'},     {"to", required_argument, NULL, 't'},
        {"pattern", required_argument, NULL, 'p'},  {"resource", required_argument, NULL, 'r'},
        {"who", required_argument, NULL, 'w'},      {"event-name", required_argument, NULL, 'e'},
        {"limit", required_argument, NULL, 'l'},    {"cursor", required_argument, NULL, 'C'},
        {"format", required_argument, NULL, 'F'},   {"timing", no_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    tw_cli_archive_loc loc = {0};
    tw_archive_query q;
    memset(&q, 0, sizeof q);
    const char *since = NULL, *from = NULL, *to = NULL, *pattern = NULL, *limit = NULL, *format = NULL;
    int c, timing = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': loc.archive = optarg; break;
        case 'd': loc.data_dir = optarg; break;
        case 'c': loc.config = optarg; break;
        case 'T': timing = 1; break;
        case 's': since = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'p': pattern = optarg; break;
        case 'r': q.resource = optarg; break;
        case 'w': q.who = optarg; break;
        case 'e': q.event_name = optarg; break;
        case 'l': limit = optarg; break;
        case 'C': q.cursor = optarg; break;
        case 'F': format = optarg; break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        tw_cli_error("query: unexpected argument '%s' (filters are options: see --help)", argv[optind]);
        return TW_EXIT_USAGE;
    }
    tw_error err;
    int64_t d;
    if (since && from) {
        tw_cli_error("query: --since and --from both give the start: use one");
        return TW_EXIT_USAGE;
    }
    if (since) {
        if (tw_archive_parse_duration(since, &d, &err)) {
            tw_cli_error_status("--since", &err);
            return TW_EXIT_USAGE;
        }
        q.from_ms = now_ms() - d;
    }
    if ((from && tw_archive_parse_time(from, &q.from_ms, &err)) || (to && tw_archive_parse_time(to, &q.to_ms, &err))) {
        tw_cli_error_status(from && err.msg[1] && strstr(err.msg, from) ? "--from" : "--to", &err);
        return TW_EXIT_USAGE;
    }
    if (limit) {
        char *end;
        long long v = strtoll(limit, &end, 10);
        if (*end || end == limit || v < 0) {
            tw_cli_error("--limit: '%s' is not a number of events", limit);
            return TW_EXIT_USAGE;
        }
        q.limit = (size_t)v;
    }
    char *ptext = NULL;
    size_t plen;
    if (pattern && tw_cli_read_arg(pattern, TW_MAX_PATTERN_MAX, &ptext, &plen, &err)) {
        tw_cli_error_status("--pattern", &err);
        return TW_EXIT_USAGE;
    }
    q.pattern = ptext;
    tw_cli_rows *rows = tw_cli_rows_new(format, 0);
    if (!rows) {
        tw_cli_error("--format: '%s' is not table, json or csv", format ? format : "");
        free(ptext);
        return TW_EXIT_USAGE;
    }
    if (!limit && rows->format == TW_CLI_TABLE)
        q.limit = 100;
    tw_archive *a = NULL;
    double t0 = tw_cli_seconds();
    int code = tw_cli_archive_open(&loc, 1, &a);
    char next[TW_ARCHIVE_CURSOR_MAX];
    if (!code) {
        tw_status s = tw_archive_find(a, &q, tw_cli_rows_add, rows, next, sizeof next, &err);
        size_t n = tw_cli_rows_end(rows);
        rows = NULL;
        if (s) {
            tw_cli_error_status(s == TW_EPATTERN || s == TW_EJSON ? "--pattern" : "query", &err);
            code = tw_cli_exit_for(s);
        } else {
            if (next[0])
                fprintf(stderr, "more: --cursor %s\n", next);
            if (timing)
                fprintf(stderr, "timing: %zu rows in %.2f ms (open, query, output)\n", n, (tw_cli_seconds() - t0) * 1e3);
            code = n ? TW_EXIT_OK : TW_EXIT_NO;
        }
    }
    tw_cli_rows_end(rows);
    tw_archive_close(a);
    free(ptext);
    return code;
}
