/* cli/cmd_query.c: `trailwatch query`: search the archive, newest first; with --sigma, only the
 * events that match Sigma rules, each with the rules it matched. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "trailwatch/archive.h"
#include "trailwatch/json.h"
#include "trailwatch/limits.h"
#include "trailwatch/sigma.h"

/* query --sigma reads the archive in pages of this many events (the filters given narrow them), until
 * --limit of them matched a rule. */
#define SIGMA_PAGE 1000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch query [filters] [--sigma PATH]... [--limit N] [--format table|json|csv]\n"
            "                        (--archive PATH | --data-dir DIR | -c FILE)\n\n"
            "Events from the archive that match every filter given, newest first. On a terminal: an\n"
            "aligned table (at most 100 rows unless --limit says otherwise); otherwise JSON lines (each\n"
            "with the event as it was received, byte for byte but for line breaks, written as spaces so\n"
            "that a row is one line) or CSV.\n\n"
            "filters:\n"
            "  --since DURATION      the last 7d, 12h, 30m ... (from now)\n"
            "  --from TIME, --to TIME  2021-07-28T12:00:00Z, 2021-07-28 or ms since 1970 (inclusive)\n"
            "  --pattern PATTERN     an EventBridge event pattern, the language of rules (JSON, or @FILE);\n"
            "                        exact values of source, account, region, detail-type, detail.eventName\n"
            "                        and detail.errorCode use the indexes, the rest is checked per event\n"
            "  --resource R          events that name R: an ARN or id/name (i-0abc, sg-..., bucket, role)\n"
            "  --who W               events by W: an ARN, user, role or session name, service, sourceIdentity\n"
            "  --event-name NAME     this eventName\n"
            "  --sigma PATH          only events that match a Sigma rule of PATH (a file or a folder of\n"
            "                        .yml/.yaml, repeatable; docs/SIGMA.md), each with the rules it matched\n"
            "                        (table: RULES, CSV: rules, JSON: \"rules\": [...]); the other filters\n"
            "                        narrow the events read. A rule that cannot load is reported with its\n"
            "                        line and left out (exit status 2 after the rows). Correlation rules are\n"
            "                        not run: a query lists events, newest first, and stops at --limit,\n"
            "                        while a correlation needs every event of its window in time order;\n"
            "                        each is named on stderr (`trailwatch match --sigma` runs them)\n"
            "  --placeholders FILE   values for Sigma's |expand placeholders ({name: [values]})\n"
            "output:\n"
            "  --limit N             at most N events (0 = all)\n"
            "  --cursor C            continue after the last page (its cursor is printed on stderr)\n"
            "  --format FORMAT       table, json (JSON lines) or csv\n"
            "  --timing              on stderr: the time from opening the archive to the last row\n"
            "archive:\n" TW_CLI_ARCHIVE_OPTIONS_HELP "  --help, -h            this text\n\n"
            "Exit codes: 0 events found, 1 none, 2 bad arguments or a Sigma rule refused, 3 the archive failed.\n");
}

double tw_cli_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- --sigma ---- */

typedef struct sigma_scan {
    tw_sigma_eval *ev;
    tw_cli_rows *rows;
    size_t want;         /* --limit (0: all) */
    size_t found;        /* rows printed */
    size_t seen;         /* archive rows read in the current page */
    size_t stop_at;      /* the page's row at which `want` was reached (1-based); 0: not reached */
    tw_status fail;      /* a failure that stops the scan (out of memory) */
} sigma_scan;

static int sigma_row(void *ud, const tw_archive_row *row)
{
    sigma_scan *s = ud;
    size_t n;
    const char *const *names;
    tw_error err;
    s->seen++;
    tw_status rc = tw_sigma_eval_event(s->ev, row->json, row->json_len, &n, &names, &err);
    if (rc == TW_ENOMEM || (!rc && n && tw_cli_rows_add_rules(s->rows, row, names, n))) {
        s->fail = TW_ENOMEM;
        return 1;
    }
    if (rc) /* archived events were valid JSON when stored: say which one and go on */
        tw_cli_error("query: archived event %s skipped: %s", *row->id ? row->id : "(no id)", err.msg);
    if (rc || !n)
        return 0;
    if (s->want && ++s->found >= s->want) {
        s->stop_at = s->seen;
        return 1;
    }
    if (!s->want)
        s->found++;
    return 0;
}

static int skip_row(void *ud, const tw_archive_row *row)
{
    (void)ud;
    (void)row;
    return 0;
}

static void report_rule(void *ctx, const char *msg)
{
    (void)ctx;
    tw_cli_error("%s", msg);
}

/* The Sigma rules of paths, detections only (correlations named on stderr); NULL when none can run
 * (reported). *refused counts the rules left out because they cannot load. */
static tw_sigma_eval *sigma_load(char **paths, size_t n, const char *placeholders, size_t *refused)
{
    tw_limits lim;
    tw_limits_default(&lim);
    tw_error err;
    tw_json_doc *doc = NULL;
    if (placeholders && tw_cli_read_yaml(placeholders, &lim, &doc, &err)) {
        tw_cli_error_status("--placeholders", &err);
        return NULL;
    }
    tw_sigma_eval *ev = NULL;
    if (tw_sigma_eval_new((const char *const *)paths, n, doc ? tw_json_root(doc) : NULL, &lim, 0, &ev, refused,
                          report_rule, NULL, &err))
        tw_cli_error_status("--sigma", &err);
    tw_json_doc_free(doc);
    const tw_sigma *rules = ev ? tw_sigma_eval_rules(ev) : NULL;
    for (size_t i = 0; rules && i < tw_sigma_count(rules); i++) {
        const tw_sigma_rule_info *r = tw_sigma_rule(rules, i);
        if (r->kind == TW_SIGMA_CORRELATION && !r->refused)
            tw_cli_error("%s:%u: rule \"%s\": a correlation (%s): not run by query, which lists events (trailwatch "
                         "match --sigma runs correlations)", r->file, r->line, *r->title ? r->title : r->name,
                         r->corr_type);
    }
    return ev;
}

/* The archive's events matching q, through the Sigma rules, page by page until --limit of them
 * matched. When the limit is reached inside a page, the cursor printed is the one after that event:
 * the page is asked for again up to it (the archive gives cursors only at the end of a page). */
static tw_status sigma_find(tw_archive *a, tw_archive_query *q, sigma_scan *s, char *next, size_t cap, tw_error *err)
{
    char cur[TW_ARCHIVE_CURSOR_MAX] = "";
    if (q->cursor)
        snprintf(cur, sizeof cur, "%s", q->cursor);
    s->want = q->limit;
    for (;;) {
        q->limit = SIGMA_PAGE;
        q->cursor = cur[0] ? cur : NULL;
        s->seen = 0;
        tw_status rc = tw_archive_find(a, q, sigma_row, s, next, cap, err);
        if (rc)
            return rc;
        if (s->fail) {
            snprintf(err->msg, sizeof err->msg, "out of memory");
            return err->code = s->fail;
        }
        if (s->stop_at) {
            q->limit = s->stop_at;
            return tw_archive_find(a, q, skip_row, NULL, next, cap, err);
        }
        if (!next[0])
            return TW_OK;
        snprintf(cur, sizeof cur, "%s", next);
    }
}

static int query(int argc, char **argv, char **sigma)
{
    static const struct option opts[] = {
        {"archive", required_argument, NULL, 'a'},  {"data-dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},   {"since", required_argument, NULL, 's'},
        {"from", required_argument, NULL, 'f'},     {"to", required_argument, NULL, 't'},
        {"pattern", required_argument, NULL, 'p'},  {"resource", required_argument, NULL, 'r'},
        {"who", required_argument, NULL, 'w'},      {"event-name", required_argument, NULL, 'e'},
        {"limit", required_argument, NULL, 'l'},    {"cursor", required_argument, NULL, 'C'},
        {"format", required_argument, NULL, 'F'},   {"timing", no_argument, NULL, 'T'},
        {"sigma", required_argument, NULL, 'S'},    {"placeholders", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    tw_cli_archive_loc loc = {0};
    tw_archive_query q;
    memset(&q, 0, sizeof q);
    const char *since = NULL, *from = NULL, *to = NULL, *pattern = NULL, *limit = NULL, *format = NULL;
    const char *placeholders = NULL;
    size_t nsigma = 0;
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
        case 'S': sigma[nsigma++] = optarg; break;
        case 'P': placeholders = optarg; break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        tw_cli_error("query: unexpected argument '%s' (filters are options: see --help)", argv[optind]);
        return TW_EXIT_USAGE;
    }
    if (placeholders && !nsigma) {
        tw_cli_error("query: --placeholders is for --sigma rules: give --sigma PATH");
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
        q.from_ms = tw_cli_now_ms() - d;
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
    tw_cli_rows *rows = tw_cli_rows_new(format, nsigma ? TW_CLI_ROWS_SIGMA : TW_CLI_ROWS_QUERY);
    if (!rows) {
        tw_cli_error("--format: '%s' is not table, json or csv", format ? format : "");
        free(ptext);
        return TW_EXIT_USAGE;
    }
    if (!limit && tw_cli_rows_format(rows) == TW_CLI_TABLE)
        q.limit = 100;
    sigma_scan scan;
    memset(&scan, 0, sizeof scan);
    scan.rows = rows;
    size_t refused = 0;
    tw_archive *a = NULL;
    double t0 = tw_cli_seconds();
    int code = nsigma && !(scan.ev = sigma_load(sigma, nsigma, placeholders, &refused)) ? TW_EXIT_USAGE : TW_EXIT_OK;
    if (!code)
        code = tw_cli_archive_open(&loc, 1, &a);
    char next[TW_ARCHIVE_CURSOR_MAX];
    if (!code) {
        tw_status s = scan.ev ? sigma_find(a, &q, &scan, next, sizeof next, &err)
                              : tw_archive_find(a, &q, tw_cli_rows_add, rows, next, sizeof next, &err);
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
            code = refused ? TW_EXIT_USAGE : n ? TW_EXIT_OK : TW_EXIT_NO;
        }
    }
    tw_cli_rows_end(rows);
    tw_archive_close(a);
    tw_sigma_eval_free(scan.ev);
    free(ptext);
    return code;
}

int tw_cmd_query(int argc, char **argv)
{
    char **sigma = calloc((size_t)argc + 1, sizeof *sigma);
    if (!sigma) {
        tw_cli_error("out of memory");
        return TW_EXIT_FAIL;
    }
    int code = query(argc, argv, sigma);
    free(sigma);
    return code;
}
