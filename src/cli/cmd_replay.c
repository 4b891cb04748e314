/* cli/cmd_replay.c: `trailwatch replay`: archived events of a time range through the current rules (or
 * a rule file): a dry run counts what would have fired; --deliver sends the alerts as serve does. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "trailwatch/archive.h"
#include "trailwatch/trailwatch.h"

/* Events read from the archive per query page, and per engine call when delivering. */
#define PAGE 1000
/* The archive is read forward in windows of this span (only those that hold events); each window's
 * events are replayed oldest first (the archive answers newest first). Past WINDOW_EVENTS in one
 * window they are replayed in the order read, newest first. */
#define WINDOW_MS (3600LL * 1000)
#define WINDOW_EVENTS 100000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch replay (--since AGE | --from TIME) [--to TIME] (-c FILE | --rules FILE\n"
            "                         [--sigma PATH]... --archive PATH) [--pattern JSON] [--deliver]\n"
            "                         [--data-dir DIR] [--wait DURATION] [--json]\n\n"
            "Runs the archived events of a time range (the archive `serve` and `ingest` keep, docs/ARCHIVE.md)\n"
            "through the rules of the configuration FILE, or of a rule file and/or Sigma rules, in time\n"
            "order, and reports how often each rule would have fired: a dry run, nothing is sent.\n\n"
            "With --deliver (needs -c: the targets are the configuration's), the alerts are rendered and\n"
            "delivered as serve delivers them (outbox, retries, storm control, dead letters), through an\n"
            "outbox of their own (--data-dir, default DATA_DIR/replay) so that a running serve is not\n"
            "disturbed; its dead letters: `trailwatch dlq list --data-dir DIR`. Replayed events are not\n"
            "archived again and not dropped as repeats of CloudTrail eventIDs already seen.\n\n"
            "TIME is epoch milliseconds or an ISO 8601 UTC time (2026-12-01, 2026-12-01T10:00:00Z);\n"
            "AGE is 90s, 15m, 24h, 7d or 2w.\n\n"
            "Exit status: 0 when some rule would have fired (or the alerts were delivered), 1 when none\n"
            "did, 2 on bad arguments or rules, 3 on a runtime failure (an unreadable archive, alerts\n"
            "still undelivered after --wait: they stay in the outbox and go out on the next run).\n\n"
            "options:\n"
            "  --config, -c FILE     the rules, targets and archive of this configuration\n"
            "  --rules, -r FILE      rule names to patterns (YAML or JSON), instead of -c's rules\n"
            "  --sigma, -s PATH      Sigma rules: a file or a folder (repeatable; with --rules or alone)\n"
            "  --archive PATH        the archive file (default: the configuration's archive.path)\n"
            "  --since AGE           events of the last AGE\n"
            "  --from TIME, --to TIME  events from / until TIME (--to: default now)\n"
            "  --pattern JSON        only archived events matching this event pattern (@FILE: from a file)\n"
            "  --deliver             send the alerts (default: a dry run)\n"
            "  --data-dir DIR        the outbox --deliver uses (default DATA_DIR/replay)\n"
            "  --wait DURATION       how long --deliver waits for deliveries to finish (default 60s)\n"
            "  --json                the report as one JSON object\n"
            "  --help, -h            this text\n");
}

/* ---- times ---- */

/* ---- the run ---- */

typedef struct rule_count {
    char *name;
    uint64_t n;
} rule_count;

typedef struct replay {
    tw_archive *ar;
    /* what matches: a configuration's rules, or a rule set (--rules / --sigma) */
    tw_config_matcher *cm;
    tw_matcher *m;
    const tw_ruleset *rs;
    tw_server *srv;                /* --deliver */
    rule_count *rules;
    size_t nrules;
    uint64_t events, matched_events, invalid, alerts;
    int oom;
    /* the current window's events, copied (the archive's rows are borrowed) */
    char **ev;
    size_t *len;
    size_t nev, cap;
} replay;

static void count_rule(void *ctx, const char *name)
{
    replay *r = ctx;
    for (size_t i = 0; i < r->nrules; i++)
        if (strcmp(r->rules[i].name, name) == 0) {
            r->rules[i].n++;
            return;
        }
    rule_count *nr = realloc(r->rules, (r->nrules + 1) * sizeof *nr);
    char *copy = strdup(name);
    if (!nr || !copy) {
        free(copy);
        if (nr)
            r->rules = nr;
        r->oom = 1;
        return;
    }
    r->rules = nr;
    r->rules[r->nrules++] = (rule_count){copy, 1};
}

/* One event through the rules (counted); an invalid one is reported and counted. */
static void match_one(replay *r, const char *json, size_t len)
{
    tw_error err;
    uint64_t before = 0;
    for (size_t i = 0; i < r->nrules; i++)
        before += r->rules[i].n;
    tw_status rc;
    if (r->cm) {
        rc = tw_config_matcher_run(r->cm, json, len, count_rule, r, &err);
    } else {
        tw_match_result res;
        rc = tw_match(r->m, json, len, TW_EVENT_AUTO, &res, &err);
        for (size_t i = 0; !rc && i < res.count; i++)
            count_rule(r, tw_ruleset_name(r->rs, res.rules[i]));
    }
    r->events++;
    if (rc) {
        r->invalid++;
        tw_cli_error("archived event skipped: %s", err.msg);
        return;
    }
    uint64_t after = 0;
    for (size_t i = 0; i < r->nrules; i++)
        after += r->rules[i].n;
    r->matched_events += after > before;
}

/* Replays the window's events, oldest first (they were read newest first). */
static tw_status flush_window(replay *r, tw_error *err)
{
    for (size_t i = r->nev; i-- > 0;)
        match_one(r, r->ev[i], r->len[i]);
    tw_status rc = TW_OK;
    if (r->srv) {
        /* oldest first, PAGE at a time */
        for (size_t hi = r->nev; hi > 0 && !rc;) {
            size_t lo = hi > PAGE ? hi - PAGE : 0, n = hi - lo;
            const char *ev[PAGE];
            size_t len[PAGE];
            for (size_t k = 0; k < n; k++) {
                ev[k] = r->ev[hi - 1 - k];
                len[k] = r->len[hi - 1 - k];
            }
            uint64_t invalid = 0;
            rc = tw_server_replay(r->srv, ev, len, n, &r->alerts, &invalid, err);
            hi = lo;
        }
    }
    for (size_t i = 0; i < r->nev; i++)
        free(r->ev[i]);
    r->nev = 0;
    return rc;
}

static int take_row(void *ud, const tw_archive_row *row)
{
    replay *r = ud;
    if (r->nev == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        char **ev = realloc(r->ev, cap * sizeof *ev);
        if (ev)
            r->ev = ev;
        size_t *len = ev ? realloc(r->len, cap * sizeof *len) : NULL;
        if (!len) {
            r->oom = 1;
            return 1;
        }
        r->len = len;
        r->cap = cap;
    }
    char *copy = malloc(row->json_len + 1);
    if (!copy) {
        r->oom = 1;
        return 1;
    }
    memcpy(copy, row->json, row->json_len);
    copy[row->json_len] = '\0';
    r->ev[r->nev] = copy;
    r->len[r->nev++] = row->json_len;
    return 0;
}

typedef struct windows {
    int64_t *start;
    size_t n, cap;
    int oom;
} windows;

static int take_window(void *ud, int64_t bucket_ms, const char *group, uint64_t n)
{
    windows *w = ud;
    (void)group;
    if (!n)
        return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 256;
        int64_t *p = realloc(w->start, cap * sizeof *p);
        if (!p) {
            w->oom = 1;
            return 1;
        }
        w->start = p;
        w->cap = cap;
    }
    w->start[w->n++] = bucket_ms;
    return 0;
}

static int by_time(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every archived event of [from, to] through the rules, window by window: only the windows that hold
 * events (the archive's counts per WINDOW_MS say which), oldest first. */
static tw_status run(replay *r, int64_t from, int64_t to, const char *pattern, tw_error *err)
{
    windows ws = {NULL, 0, 0, 0};
    tw_archive_query cq;
    memset(&cq, 0, sizeof cq);
    cq.from_ms = from;
    cq.to_ms = to;
    tw_status rc = tw_archive_counts(r->ar, &cq, WINDOW_MS, NULL, take_window, &ws, err);
    if (!rc && ws.oom) {
        snprintf(err->msg, sizeof err->msg, "out of memory reading the archive");
        rc = err->code = TW_ENOMEM;
    }
    if (ws.n)
        qsort(ws.start, ws.n, sizeof *ws.start, by_time);
    for (size_t i = 0; i < ws.n && !rc; i++) {
        if (i && ws.start[i] == ws.start[i - 1])
            continue;
        int64_t w = ws.start[i] > from ? ws.start[i] : from;
        int64_t end = ws.start[i] + WINDOW_MS - 1 < to ? ws.start[i] + WINDOW_MS - 1 : to;
        char cursor[512] = "", next[512];
        do {
            tw_archive_query q;
            memset(&q, 0, sizeof q);
            q.from_ms = w;
            q.to_ms = end;
            q.pattern = pattern;
            q.limit = PAGE;
            q.cursor = cursor[0] ? cursor : NULL;
            next[0] = '\0';
            if ((rc = tw_archive_find(r->ar, &q, take_row, r, next, sizeof next, err)))
                break;
            if (r->oom) {
                snprintf(err->msg, sizeof err->msg, "out of memory reading the archive");
                rc = err->code = TW_ENOMEM;
                break;
            }
            if (r->nev >= WINDOW_EVENTS && (rc = flush_window(r, err)))
                break;
            memcpy(cursor, next, sizeof cursor);
        } while (cursor[0]);
        if (!rc)
            rc = flush_window(r, err);
    }
    free(ws.start);
    return rc;
}

static int by_count(const void *a, const void *b)
{
    const rule_count *x = a, *y = b;
    return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->name, y->name);
}

static void report(replay *r, int json, int deliver, uint64_t pending)
{
    if (r->nrules)
        qsort(r->rules, r->nrules, sizeof *r->rules, by_count);
    if (json) {
        printf("{\"events\":%llu,\"matched_events\":%llu,\"invalid\":%llu,\"rules\":{", (unsigned long long)r->events,
               (unsigned long long)r->matched_events, (unsigned long long)r->invalid);
        for (size_t i = 0; i < r->nrules; i++) {
            if (i)
                putchar(',');
            tw_cli_json_str(stdout, r->rules[i].name);
            printf(":%llu", (unsigned long long)r->rules[i].n);
        }
        printf("}");
        if (deliver)
            printf(",\"matches_delivered\":%llu,\"alerts_pending\":%llu", (unsigned long long)r->alerts,
                   (unsigned long long)pending);
        printf("}\n");
        return;
    }
    printf("%llu archived event%s replayed, %llu would have fired a rule%s%s\n", (unsigned long long)r->events,
           r->events == 1 ? "" : "s", (unsigned long long)r->matched_events,
           r->invalid ? " (invalid events skipped: " : "", r->invalid ? "see above)" : "");
    size_t w = 4;
    for (size_t i = 0; i < r->nrules; i++)
        w = strlen(r->rules[i].name) > w ? strlen(r->rules[i].name) : w;
    if (r->nrules)
        printf("%-*s  %s\n", (int)w, "rule", deliver ? "fired" : "would fire");
    for (size_t i = 0; i < r->nrules; i++)
        printf("%-*s  %llu\n", (int)w, r->rules[i].name, (unsigned long long)r->rules[i].n);
    if (deliver && pending)
        printf("%llu alerts not yet delivered: they stay in the outbox (the next replay --deliver with the same "
               "--data-dir sends them)\n", (unsigned long long)pending);
    else if (deliver)
        printf("%llu alerts delivered (or dead-lettered: trailwatch dlq list --data-dir DIR)\n",
               (unsigned long long)r->alerts);
}

typedef struct opts {
    const char *config, *rules, *archive, *since, *from, *to, *pattern, *data_dir, *wait;
    char **sigma;
    int nsigma, deliver, json;
} opts;

static void report_rule_error(void *ctx, const char *msg)
{
    (void)ctx;
    tw_cli_error("%s", msg);
}

/* The rule set of --rules / --sigma; 0 when it cannot be built (reported). */
static int build_rules(const opts *o, tw_limits *lim, tw_sigma **sigma, tw_ruleset **out)
{
    tw_ruleset_builder *b = NULL;
    tw_error err;
    size_t nerrors = 0, refused = 0;
    int ok = 0;
    if (tw_ruleset_builder_new(lim, &b)) {
        tw_cli_error("out of memory");
        return 0;
    }
    if (o->rules && tw_rulefile_add(o->rules, lim, b, &nerrors, report_rule_error, NULL, &err)) {
        if (!nerrors)
            tw_cli_error_status(NULL, &err);
        goto out;
    }
    if (o->nsigma) {
        if (tw_sigma_new(lim, sigma)) {
            tw_cli_error("out of memory");
            goto out;
        }
        for (int i = 0; i < o->nsigma; i++)
            if (tw_sigma_load_path(*sigma, o->sigma[i], &refused, report_rule_error, NULL, &err)) {
                tw_cli_error_status(NULL, &err);
                goto out;
            }
        if (tw_sigma_add(*sigma, b, &refused, report_rule_error, NULL, &err)) {
            tw_cli_error_status(NULL, &err);
            goto out;
        }
    }
    if (tw_ruleset_build(b, out, &err)) {
        tw_cli_error_status(NULL, &err);
        goto out;
    }
    ok = 1;
out:
    tw_ruleset_builder_free(b);
    return ok;
}

static int parse_args(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"config", required_argument, NULL, 'c'}, {"rules", required_argument, NULL, 'r'},
        {"sigma", required_argument, NULL, 's'},  {"archive", required_argument, NULL, 'A'},
        {"since", required_argument, NULL, 'S'},  {"from", required_argument, NULL, 'F'},
        {"to", required_argument, NULL, 'T'},     {"pattern", required_argument, NULL, 'p'},
        {"deliver", no_argument, NULL, 'D'},      {"data-dir", required_argument, NULL, 'd'},
        {"wait", required_argument, NULL, 'W'},   {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:r:s:h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case 'r': o->rules = optarg; break;
        case 's': o->sigma[o->nsigma++] = optarg; break;
        case 'A': o->archive = optarg; break;
        case 'S': o->since = optarg; break;
        case 'F': o->from = optarg; break;
        case 'T': o->to = optarg; break;
        case 'p': o->pattern = optarg; break;
        case 'D': o->deliver = 1; break;
        case 'd': o->data_dir = optarg; break;
        case 'W': o->wait = optarg; break;
        case 'j': o->json = 1; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        tw_cli_error("replay: unexpected argument '%s'", argv[optind]);
        return TW_EXIT_USAGE;
    }
    if (!o->config && !o->rules && !o->nsigma) {
        tw_cli_error("replay: give the rules: -c FILE (a configuration), --rules FILE or --sigma PATH");
        return TW_EXIT_USAGE;
    }
    if (!o->config && !o->archive) {
        tw_cli_error("replay: --archive PATH is needed without -c FILE (which names the archive)");
        return TW_EXIT_USAGE;
    }
    if (o->deliver && (!o->config || o->rules || o->nsigma)) {
        tw_cli_error("replay: --deliver needs -c FILE and its rules (a rule file has no targets to deliver to)");
        return TW_EXIT_USAGE;
    }
    if (!o->since == !o->from) {
        tw_cli_error("replay: give the time range with --since AGE or --from TIME (one of them)");
        return TW_EXIT_USAGE;
    }
    return 0;
}

static void free_replay(replay *r)
{
    for (size_t i = 0; i < r->nev; i++)
        free(r->ev[i]);
    free(r->ev);
    free(r->len);
    for (size_t i = 0; i < r->nrules; i++)
        free(r->rules[i].name);
    free(r->rules);
}

int tw_cmd_replay(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    if (!(o.sigma = calloc((size_t)argc + 1, sizeof *o.sigma))) {
        tw_cli_error("out of memory");
        return TW_EXIT_FAIL;
    }
    replay r;
    memset(&r, 0, sizeof r);
    tw_config *cfg = NULL;
    tw_ruleset *rs = NULL;
    tw_sigma *sigma = NULL;
    char *pattern = NULL, dir[4096];
    tw_error err;
    int ex = parse_args(argc, argv, &o);
    if (ex)
        goto out;
    int64_t from = 0, to = tw_cli_now_ms(), age = 0, wait_ms = 60000;
    const char *bad = o.since && tw_archive_parse_duration(o.since, &age, &err) ? "--since"
                      : o.wait && tw_archive_parse_duration(o.wait, &wait_ms, &err) ? "--wait"
                      : o.from && tw_archive_parse_time(o.from, &from, &err)        ? "--from"
                      : o.to && tw_archive_parse_time(o.to, &to, &err)              ? "--to" : NULL;
    if (bad) {
        tw_cli_error_status(bad, &err);
        ex = TW_EXIT_USAGE;
        goto out;
    }
    if (o.since)
        from = to - age;
    if (from > to) {
        tw_cli_error("replay: --from is after --to");
        ex = TW_EXIT_USAGE;
        goto out;
    }
    if (o.pattern) {
        size_t plen;
        if (tw_cli_read_arg(o.pattern, TW_MAX_PATTERN_MAX, &pattern, &plen, &err)) {
            tw_cli_error_status("--pattern", &err);
            ex = TW_EXIT_USAGE;
            goto out;
        }
    }
    tw_limits lim;
    tw_limits_default(&lim);
    size_t nerrors = 0;
    if (o.config && tw_config_load(o.config, &cfg, &nerrors, report_rule_error, NULL, &err)) {
        if (!nerrors)
            tw_cli_error_status(NULL, &err);
        ex = TW_EXIT_USAGE;
        goto out;
    }
    char apath[4096];
    int backend = 0;
    const char *dsn = NULL;
    if (cfg)
        tw_config_archive(cfg, apath, sizeof apath, &backend, &dsn);
    if (o.archive) {
        /* a file, or a PostgreSQL archive named by its connection string */
        snprintf(apath, sizeof apath, "%s", o.archive);
        backend = tw_cli_archive_is_dsn(o.archive);
        dsn = backend ? o.archive : NULL;
    }
    tw_archive_opts ao = {backend ? TW_ARCHIVE_POSTGRES : TW_ARCHIVE_SQLITE, apath, dsn, 1};
    if (tw_archive_open(&r.ar, &ao, &err)) {
        tw_cli_error_status("archive", &err);
        ex = tw_cli_exit_for(err.code);
        goto out;
    }
    if (o.rules || o.nsigma) {
        if (!build_rules(&o, &lim, &sigma, &rs)) {
            ex = TW_EXIT_USAGE;
            goto out;
        }
        r.rs = rs;
        if (tw_matcher_new(rs, &r.m)) {
            tw_cli_error("out of memory");
            ex = TW_EXIT_FAIL;
            goto out;
        }
    } else if (tw_config_matcher_new(cfg, &r.cm, &err)) {
        tw_cli_error_status(NULL, &err);
        ex = TW_EXIT_FAIL;
        goto out;
    }
    if (o.deliver && (ex = tw_cli_deliver_start(o.config, o.data_dir, "replay", &r.srv, dir, sizeof dir)))
        goto out;
    tw_status rc = run(&r, from, to, pattern, &err);
    uint64_t pending = 0;
    if (r.srv) {
        pending = rc ? 0 : tw_cli_deliver_drain(r.srv, wait_ms);
        tw_server_stop(r.srv);
    }
    if (rc) {
        tw_cli_error_status("replay", &err);
        ex = err.code == TW_EPATTERN || err.code == TW_EJSON ? TW_EXIT_USAGE : TW_EXIT_FAIL;
        goto out;
    }
    report(&r, o.json, o.deliver, pending);
    ex = pending ? TW_EXIT_FAIL : r.matched_events ? TW_EXIT_OK : TW_EXIT_NO;
out:
    tw_server_free(r.srv);
    tw_config_matcher_free(r.cm);
    tw_matcher_free(r.m);
    tw_ruleset_free(rs);
    tw_sigma_free(sigma);
    tw_archive_close(r.ar);
    tw_config_free(cfg);
    free_replay(&r);
    free(pattern);
    free(o.sigma);
    return ex < 0 ? TW_EXIT_OK : ex;
}
