/* server/server.c: start, reload and stop the parts of `trailwatch serve` in the right order. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "common/err.h"
#include "common/thread.h"
#include "config/config_int.h"
#include "outbox/dispatch.h"
#include "outbox/outbox.h"
#include "engine/engine.h"
#include "telemetry/log.h"
#include "telemetry/metrics.h"
#include "config/snapshot.h"
#include "source/folder.h"
#include "source/aws_sources.h"
#include "source/http_server.h"
#include "server/archiver.h"
#include "web/web.h"

#define STDIN_BATCH 500

struct tw_server {
    tw_snapshots snaps;
    int snaps_ready;
    tw_metrics *metrics;
    tw_engine *engine;
    tw_outbox *ob;
    _Atomic(tw_dispatch *) disp;
    tw_http_server *http;
    tw_web *web;                   /* the dashboard */
    tw_folder *folder;
    tw_aws_sources *aws;           /* S3 and SQS sources and the AWS client, NULL when none */
    tw_cluster *cluster;           /* NULL: the embedded single-process mode */
    int replay;                    /* `trailwatch replay --deliver` (tw_server_options.replay) */
    tw__archiver *archiver;        /* NULL: archive.enabled is false (or a replay server) */
    pthread_t stdin_thread;
    int stdin_running;
    _Atomic int stdin_done;
    _Atomic int stopping;
    char *listen, *listen_cfg, *data_dir, *folder_path;
    int64_t drain_ms;
};

static void on_committed(void *ctx, const tw_alert_row *rows, size_t n)
{
    tw_server *s = ctx;
    tw_dispatch *d = s->disp;
    /* Before the dispatcher exists the rows wait in the outbox; its start-up scan takes them. */
    if (d)
        tw__dispatch_enqueue(d, rows, n);
}

static int64_t outbox_depth(void *ctx)
{
    tw_server *s = ctx;
    return s->ob ? tw__outbox_depth(s->ob) : 0;
}

/* ---- stdin: JSON lines, batched by what is already available ---- */

static void submit_lines(tw_server *s, tw_ingest_item *items, size_t n)
{
    tw_ingest_result *res = calloc(n, sizeof *res);
    tw_error err;
    tw_ingest_opts o = {.source = "stdin"};
    if (!res) {
        tw__log(TW_LOG_ERROR, "out of memory reading stdin", NULL);
        return;
    }
    /* The engine fails a batch only when it cannot store it: wait and try again, nothing is dropped. */
    while (tw__engine_submit(s->engine, items, n, &o, res, &err) && !s->stopping) {
        tw__log(TW_LOG_ERROR, "cannot store stdin events; retrying", "error", err.msg, NULL);
        sleep(1);
    }
    char lbl[64];
    tw_counter *bad = tw__metrics_counter(s->metrics, TW_METRIC_REJECTED, TW_METRIC_REJECTED_HELP,
                                         tw__metrics_label(lbl, sizeof lbl, "source", "stdin"));
    for (size_t i = 0; i < n; i++)
        if (res[i].status) {
            tw_count(bad, 1);
            tw__log(TW_LOG_WARN, "invalid event on stdin skipped", "error", res[i].error, NULL);
        }
    free(res);
}

static void *stdin_main(void *arg)
{
    tw__thread_name("tw-stdin");
    tw_server *s = arg;
    tw_snapshot *snap = tw__snapshot_acquire(&s->snaps);
    size_t max = snap->cfg->lim.line_max;
    tw__snapshot_release(snap);
    size_t cap = max + 65536, len = 0;
    char *buf = malloc(cap);
    tw_ingest_item *items = calloc(STDIN_BATCH, sizeof *items);
    int skipping = 0;
    while (buf && items && !s->stopping) {
        struct pollfd p = {0, POLLIN, 0};
        int r = poll(&p, 1, 200);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        ssize_t got = read(0, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (len && !skipping) { /* a last line without a newline */
                items[0] = (tw_ingest_item){buf, len, TW_EVENT_AUTO};
                submit_lines(s, items, 1);
            }
            break;
        }
        len += (size_t)got;
        size_t start = 0, n = 0;
        for (;;) {
            char *nl = memchr(buf + start, '\n', len - start);
            if (!nl)
                break;
            size_t l = (size_t)(nl - (buf + start));
            if (skipping) {
                skipping = 0;
            } else if (l && !(l == 1 && buf[start] == '\r')) {
                items[n++] = (tw_ingest_item){buf + start, l, TW_EVENT_AUTO};
                if (n == STDIN_BATCH) {
                    submit_lines(s, items, n);
                    n = 0;
                }
            }
            start += l + 1;
        }
        if (n)
            submit_lines(s, items, n);
        memmove(buf, buf + start, len - start);
        len -= start;
        if (len > max) {
            tw__log(TW_LOG_WARN, "stdin line longer than the limit skipped", NULL);
            skipping = 1;
            len = 0;
        }
    }
    free(buf);
    free(items);
    s->stdin_done = 1;
    return NULL;
}

/* ---- start / stop ---- */

static void precreate_series(tw_server *s, const tw_config *cfg)
{
    /* Series that exist from the start read as 0 rather than missing. */
    char lbl[256];
    static const char *const sources[] = {"eventbridge", "http", "firehose", "folder", "stdin"};
    for (size_t i = 0; i < sizeof sources / sizeof *sources; i++) {
        tw__metrics_label(lbl, sizeof lbl, "source", sources[i]);
        tw__metrics_counter(s->metrics, TW_METRIC_RECEIVED, TW_METRIC_RECEIVED_HELP, lbl);
        tw__metrics_counter(s->metrics, TW_METRIC_DUPLICATES, TW_METRIC_DUPLICATES_HELP, lbl);
    }
    for (uint32_t i = 0; i < cfg->nrules; i++) {
        tw__metrics_label(lbl, sizeof lbl, "rule", cfg->rules[i].name);
        tw__metrics_counter(s->metrics, TW_METRIC_RULE_MATCHES, TW_METRIC_RULE_MATCHES_HELP, lbl);
        tw__metrics_counter(s->metrics, TW_METRIC_FOLDED, TW_METRIC_FOLDED_HELP, lbl);
    }
}

/* Decided from the address the listener actually bound (":8080" binds every address), not from how
 * the listen setting reads. */
static tw_status check_exposure(const tw_config *cfg, int loopback, const char *listen, tw_error *err)
{
    if (loopback)
        return TW_OK;
    if ((cfg->src.eventbridge || (cfg->src.http && !cfg->src.http_key)) && !cfg->nkeys)
        return tw__err(err, TW_ECONFIG, "refusing to listen on %s (not a loopback address) without "
                                        "server.access_keys: the EventBridge API and /events only listen on "
                                        "loopback unless requests are signed (or, for /events alone, carry "
                                        "sources.http.api_key)", listen);
    if (cfg->src.firehose && !cfg->src.firehose_key)
        return tw__err(err, TW_ECONFIG, "refusing to listen on %s (not a loopback address) with a Firehose "
                                        "endpoint that has no sources.firehose.access_key", listen);
    return TW_OK;
}

/* The HTTP server's hook, right after it bound its socket. */
static tw_status exposure_at_bind(void *ctx, int loopback, tw_error *err)
{
    tw_server *s = ctx;
    tw_snapshot *snap = tw__snapshot_acquire(&s->snaps);
    tw_status rc = check_exposure(snap->cfg, loopback, s->listen, err);
    tw__snapshot_release(snap);
    return rc;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Cluster mode: before any source starts, so that their first events already go to JetStream. */
static tw_status start_cluster(tw_server *s, tw_error *err)
{
    tw_snapshot *snap = tw__snapshot_acquire(&s->snaps);
    tw_status rc = TW_OK;
    if (snap->cfg->cluster.role != TW_CLUSTER_OFF)
        rc = tw__cluster_start(&snap->cfg->cluster, &s->snaps, s->engine, s->metrics, &s->cluster, err);
    tw__snapshot_release(snap);
    if (!rc && tw__cluster_ingests(s->cluster))
        tw__engine_set_forward(s->engine, tw__cluster_publish, s->cluster);
    return rc;
}

/* Before any source: every event the engine accepts from the first one on is archived. A server that
 * only forwards to a cluster archives nothing (its workers archive what they match). An archive that
 * cannot be opened (a damaged file, a full disk) is logged and left out: alerts matter more. */
static void start_archiver(tw_server *s, const tw_config *cfg)
{
    if (!cfg->archive.enabled || cfg->cluster.role == TW_CLUSTER_INGEST)
        return;
    tw_error err;
    if (tw__archiver_start(cfg, s->metrics, &s->archiver, &err)) {
        tw_gauge_set(tw__metrics_gauge(s->metrics, "trailwatch_archive_up",
                                      "1 while the archive is written, 0 while it cannot be", ""), 0);
        tw__log(TW_LOG_ERROR, "archiving is off: the archive cannot be opened (alerts are not affected; fix or "
               "move the file and restart, or set archive.enabled: false)", "error", err.msg, NULL);
        return;
    }
    tw__engine_set_archiver(s->engine, tw__archiver_take, s->archiver);
}

tw_status tw_server_start(tw_config *cfg, const tw_server_options *opt, tw_server **out, tw_error *err)
{
    *out = NULL;
    tw_server *s = calloc(1, sizeof *s);
    if (!s) {
        tw_config_free(cfg);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    if (opt && opt->replay) {
        /* a replay server: events come only from tw_server_replay (the enricher still runs) */
        s->replay = 1;
        cfg->listen = (char *)"";
        cfg->src.folder = NULL;
        cfg->src.s3 = NULL;
        cfg->src.sqs = NULL;
        cfg->cluster.role = TW_CLUSTER_OFF;
        cfg->archive.enabled = 0;
    }
    const char *listen = opt && opt->listen && !s->replay ? opt->listen : cfg->listen;
    s->listen = dup_or_null(listen ? listen : "");
    s->listen_cfg = dup_or_null(cfg->listen ? cfg->listen : "");
    s->data_dir = dup_or_null(opt && opt->data_dir ? opt->data_dir : cfg->data_dir);
    if (opt && opt->data_dir)
        cfg->data_dir = s->data_dir;   /* the server's copy outlives every snapshot of cfg */
    s->folder_path = dup_or_null(cfg->src.folder);
    s->drain_ms = cfg->drain_ms;
    tw_status rc;
    if (!(s->metrics = tw__metrics_new()) || !s->listen || !s->data_dir) {
        tw_config_free(cfg);
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto fail;
    }
    precreate_series(s, cfg);
    if ((rc = tw__snapshots_init(&s->snaps, cfg, err)))
        goto fail;
    s->snaps_ready = 1;
    if ((rc = tw__engine_new(&s->snaps, s->metrics, &s->engine, err)))
        goto fail;
    tw_outbox_hooks hooks = {s, on_committed};
    if ((rc = tw__outbox_start(s->data_dir, &hooks, &s->ob, err)) || (rc = tw__engine_attach(s->engine, s->ob, err)))
        goto fail;
    tw_dispatch *d = NULL;
    if ((rc = tw__dispatch_start(s->data_dir, s->ob, &s->snaps, s->metrics, &d, err)))
        goto fail;
    s->disp = d;
    if ((rc = start_cluster(s, err)))
        goto fail;
    start_archiver(s, cfg);
    /* before the HTTP listener: the enricher must be in place for the first event */
    if ((rc = tw__aws_sources_start(s->engine, s->metrics, cfg, s->data_dir, &s->aws, err)))
        goto fail;
    if (*s->listen) {
        tw__web_env wenv = {&s->snaps, s->metrics, s->data_dir, s, outbox_depth};
        if ((rc = tw__web_new(&wenv, &s->web, err)))
            goto fail;
        tw__engine_observe(s->engine, tw__web_observe, s->web);
        tw_http_env env = {s->engine, &s->snaps, s->metrics, s, outbox_depth, exposure_at_bind, s->web, tw__web_route,
                             tw__web_refused_early};
        if ((rc = tw__http_server_start(s->listen, &env, &s->http, err)))
            goto fail;
    }
    if (s->folder_path) {
        tw_snapshot *snap = tw__snapshot_acquire(&s->snaps);
        int watch = snap->cfg->src.folder_watch;
        tw__snapshot_release(snap);
        if ((rc = tw__folder_start(s->engine, s->metrics, s->folder_path, watch, &s->folder, err)))
            goto fail;
    }
    if (opt && opt->stdin_events) {
        if (pthread_create(&s->stdin_thread, NULL, stdin_main, s)) {
            rc = tw__err(err, TW_ESYS, "cannot start the stdin reader");
            goto fail;
        }
        s->stdin_running = 1;
    } else {
        s->stdin_done = 1;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", tw_server_port(s));
    tw__log(TW_LOG_INFO, "trailwatch is running", "listen", *s->listen ? s->listen : "(none)", "port", port,
           "data_dir", s->data_dir, NULL);
    *out = s;
    return TW_OK;
fail:
    tw_server_stop(s);
    tw_server_free(s);
    return rc;
}

tw_status tw_server_replay(tw_server *s, const char *const *events, const size_t *lens, size_t n, uint64_t *matched,
                           uint64_t *invalid, tw_error *err)
{
    if (!s->replay)
        return tw__err(err, TW_EINVAL, "tw_server_replay: this server was not started for a replay");
    tw_ingest_item *items = calloc(n ? n : 1, sizeof *items);
    tw_ingest_result *res = calloc(n ? n : 1, sizeof *res);
    tw_status rc = TW_OK;
    if (!items || !res) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = (tw_ingest_item){events[i], lens[i], TW_EVENT_AUTO};
    tw_ingest_opts o = {.source = "replay", .replay = 1};
    if ((rc = tw__engine_submit(s->engine, items, n, &o, res, err)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (res[i].status && invalid)
            (*invalid)++;
        else if (!res[i].status && matched)
            *matched += res[i].matched;
    }
out:
    free(items);
    free(res);
    return rc;
}

uint64_t tw_server_pending(tw_server *s)
{
    tw_dispatch *d = s->disp;
    return d ? (uint64_t)tw__dispatch_pending(d) : 0;
}

int tw_server_port(const tw_server *s) { return s ? tw__http_server_port(s->http) : 0; }

int tw_server_idle(const tw_server *s)
{
    tw_dispatch *d = s->disp;
    return s->stdin_done && (!s->folder || tw__folder_idle(s->folder)) && tw__aws_sources_idle(s->aws) &&
           (!d || tw__dispatch_pending(d) == 0);
}

static uint64_t counter_value(tw_server *s, const char *name, const char *key, const char *value)
{
    char lbl[256] = "";
    if (key)
        tw__metrics_label(lbl, sizeof lbl, key, value);
    const tw_counter *c = tw__metrics_find(s->metrics, name, lbl);   /* absent: nothing counted */
    return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

void tw_server_get_stats(tw_server *s, tw_server_stats *st)
{
    static const char *const sources[] = {"eventbridge", "http", "firehose", "folder", "stdin"};
    memset(st, 0, sizeof *st);
    st->files_processed = counter_value(s, TW_METRIC_FOLDER_FILES, "result", "processed");
    st->files_done = counter_value(s, TW_METRIC_FOLDER_FILES, "result", "already_done");
    st->files_rejected = counter_value(s, TW_METRIC_FOLDER_FILES, "result", "rejected");
    st->files_failed = counter_value(s, TW_METRIC_FOLDER_FILES, "result", "failed");
    st->records = counter_value(s, TW_METRIC_FOLDER_RECORDS, NULL, NULL);
    for (size_t i = 0; i < sizeof sources / sizeof *sources; i++) {
        st->received += counter_value(s, TW_METRIC_RECEIVED, "source", sources[i]);
        st->duplicates += counter_value(s, TW_METRIC_DUPLICATES, "source", sources[i]);
    }
    tw_snapshot *snap = tw__snapshot_acquire(&s->snaps);
    for (uint32_t i = 0; i < snap->cfg->nrules; i++) {
        st->matches += counter_value(s, TW_METRIC_RULE_MATCHES, "rule", snap->cfg->rules[i].name);
        st->folded += counter_value(s, TW_METRIC_FOLDED, "rule", snap->cfg->rules[i].name);
    }
    tw__snapshot_release(snap);
}

void tw_server_rule_stats(tw_server *s, tw_rule_stats_fn fn, void *ctx)
{
    tw_snapshot *snap = tw__snapshot_acquire(&s->snaps);
    for (uint32_t i = 0; i < snap->cfg->nrules; i++) {
        const char *name = snap->cfg->rules[i].name;
        fn(ctx, name, counter_value(s, TW_METRIC_RULE_MATCHES, "rule", name),
           counter_value(s, TW_METRIC_FOLDED, "rule", name));
    }
    tw__snapshot_release(snap);
}

int tw_server_folder_ready(const tw_server *s) { return !s->folder || tw__folder_idle(s->folder); }

static int same(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

tw_status tw_server_reload(tw_server *s, tw_config *cfg, tw_error *err)
{
    /* What threads were started for cannot change under them: those need a restart. */
    const char *what = NULL;
    if (!same(cfg->data_dir, s->data_dir))
        what = "data_dir";
    else if (!same(cfg->src.folder, s->folder_path))
        what = "sources.folder";
    else if (!same(cfg->listen ? cfg->listen : "", s->listen_cfg))
        what = "server.listen";
    if (!what) {
        tw_snapshot *snap = tw__snapshot_acquire(&s->snaps);
        const tw_archive_cfg *x = &cfg->archive, *y = &snap->cfg->archive;
        if (!tw__cluster_cfg_equal(&cfg->cluster, &snap->cfg->cluster))
            what = "cluster";
        else if (x->enabled != y->enabled || x->backend != y->backend || x->retention_ms != y->retention_ms ||
                 !same(x->path, y->path) || !same(x->dsn, y->dsn))
            what = "archive";
        tw__snapshot_release(snap);
    }
    tw_status rc = what ? tw__err(err, TW_ECONFIG, "%s cannot change on reload; restart trailwatch to change it", what)
                        : check_exposure(cfg, tw__http_server_loopback(s->http), s->listen, err);
    if (rc) {
        tw_config_free(cfg);
        return rc;
    }
    precreate_series(s, cfg);
    uint32_t nrules = cfg->nrules, ntargets = cfg->ntargets;
    if ((rc = tw__snapshots_swap(&s->snaps, cfg, err)))
        return rc;
    char r[16], t[16];
    snprintf(r, sizeof r, "%u", nrules);
    snprintf(t, sizeof t, "%u", ntargets);
    tw__log(TW_LOG_INFO, "configuration reloaded", "rules", r, "targets", t, NULL);
    return TW_OK;
}

void tw_server_stop(tw_server *s)
{
    if (!s || s->stopping)
        return;
    s->stopping = 1;
    int64_t drain = s->drain_ms > 0 ? s->drain_ms : 10000;
    /* Inputs first (what they already accepted is committed before they return), then deliveries,
     * then the writer with the last outcomes. */
    tw__web_shutdown(s->web);       /* live streams end, so their connections let the listener stop */
    tw__http_server_stop(s->http, drain);
    s->http = NULL;
    if (s->folder)
        tw__folder_stop(s->folder);
    s->folder = NULL;
    tw__aws_sources_stop(s->aws);
    if (s->stdin_running)
        pthread_join(s->stdin_thread, NULL);
    s->stdin_running = 0;
    /* Workers finish (commit, ack) the batch they hold; what they did not fetch stays in the stream. */
    tw__cluster_stop_workers(s->cluster);
    if (s->engine)
        tw__engine_set_stopping(s->engine);
    /* Nothing submits any more: what the archive queue holds is written now (SIGTERM flushes). */
    if (s->engine)
        tw__engine_set_archiver(s->engine, NULL, NULL);
    tw__archiver_stop(s->archiver);
    s->archiver = NULL;
    tw_dispatch *d = s->disp;
    s->disp = NULL;
    tw__dispatch_stop(d, drain);
    tw__outbox_stop(s->ob);
    s->ob = NULL;
    tw__cluster_free(s->cluster);
    s->cluster = NULL;
    tw__log(TW_LOG_INFO, "trailwatch stopped", NULL);
}

void tw_server_free(tw_server *s)
{
    if (!s)
        return;
    tw_server_stop(s);
    tw__aws_sources_free(s->aws);
    s->aws = NULL;
    tw__engine_free(s->engine);
    tw__web_free(s->web);
    if (s->snaps_ready)
        tw__snapshots_destroy(&s->snaps);
    tw__metrics_free(s->metrics);
    free(s->listen);
    free(s->listen_cfg);
    free(s->data_dir);
    free(s->folder_path);
    free(s);
}
