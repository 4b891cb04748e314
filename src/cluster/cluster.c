/* cluster/cluster.c: joining the cluster and leaving it (the lifecycle of a tw_cluster). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster_int.h"
#include "common/err.h"
#include "telemetry/log.h"

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

int tw__cluster_cfg_equal(const tw_cluster_cfg *a, const tw_cluster_cfg *b)
{
    if (a->role != b->role || a->nurls != b->nurls || !same_str(a->name, b->name) ||
        !same_str(a->stream, b->stream) || !same_str(a->subject, b->subject) ||
        !same_str(a->consumer, b->consumer) || !same_str(a->credentials, b->credentials) ||
        a->replicas != b->replicas || a->duplicate_window_ms != b->duplicate_window_ms ||
        a->max_age_ms != b->max_age_ms || a->max_bytes != b->max_bytes || a->ack_wait_ms != b->ack_wait_ms ||
        a->max_deliver != b->max_deliver || a->fetch_batch != b->fetch_batch || a->fetchers != b->fetchers ||
        a->max_ack_pending != b->max_ack_pending || a->publish_timeout_ms != b->publish_timeout_ms)
        return 0;
    for (uint32_t i = 0; i < a->nurls; i++)
        if (strcmp(a->urls[i], b->urls[i]) != 0)
            return 0;
    return 1;
}

int tw__cluster_ingests(const tw_cluster *c)
{
    return c && (c->role == TW_CLUSTER_BOTH || c->role == TW_CLUSTER_INGEST);
}

static int works(const tw_cluster *c) { return c->role == TW_CLUSTER_BOTH || c->role == TW_CLUSTER_WORKER; }

static void counters(tw_cluster *c)
{
    char lbl[160];
    tw_metrics *m = c->metrics;
    tw__metrics_label(lbl, sizeof lbl, "worker", c->name);
    c->fetched = tw__metrics_counter(m, "trailwatch_cluster_events_total",
                                    "Events this worker took from the stream and ran through the rules", lbl);
    c->acked = tw__metrics_counter(m, "trailwatch_cluster_acked_total",
                                  "Events acknowledged to the stream after their alerts were committed", lbl);
    c->redelivered = tw__metrics_counter(m, "trailwatch_cluster_redelivered_total",
                                        "Events this worker got that had been delivered before (a worker died or "
                                        "was too slow)", lbl);
    c->rejected = tw__metrics_counter(m, "trailwatch_cluster_rejected_total",
                                     "Events from the stream the engine could not use (terminated, not redelivered)",
                                     lbl);
    c->naks = tw__metrics_counter(m, "trailwatch_cluster_naks_total",
                                 "Events handed back to the stream because they could not be stored", lbl);
    c->published = tw__metrics_counter(m, "trailwatch_cluster_published_total",
                                      "Events this node's sources published to the stream", lbl);
    c->pub_duplicates = tw__metrics_counter(m, "trailwatch_cluster_publish_duplicates_total",
                                           "Published events the stream already had (same Nats-Msg-Id in the "
                                           "duplicate window)", lbl);
    c->pub_retries = tw__metrics_counter(m, "trailwatch_cluster_publish_retries_total",
                                        "Publishes repeated after a timeout or error", lbl);
    c->pub_failed = tw__metrics_counter(m, "trailwatch_cluster_publish_failed_total",
                                       "Events not stored within publish_timeout (their senders were told)", lbl);
    c->batch_time = tw__metrics_histogram(m, "trailwatch_cluster_batch_seconds",
                                         "From a fetched batch to its acknowledgement (match, render, commit)", lbl);
    c->publish_time = tw__metrics_histogram(m, "trailwatch_cluster_publish_seconds",
                                           "From a source's batch to JetStream's acknowledgement of all of it", lbl);
}

/* The stream and the consumer. A cluster that is starting at the same time has no JetStream leader
 * for a few seconds: wait for one rather than fail (a wrong setting fails at once). */
static tw_status ensure(tw_cluster *c, const tw_cluster_cfg *cfg, tw_error *err)
{
    for (int waited_ms = 0;; waited_ms += 500) {
        tw_status rc = tw__cluster_ensure_stream(c->js, cfg, err);
        if (!rc && works(c))
            rc = tw__cluster_ensure_consumer(c->js, cfg, err);
        if (!rc || rc == TW_ECONFIG || waited_ms >= TW_CLUSTER_START_WAIT_MS)
            return rc;
        if (!waited_ms)
            tw__log(TW_LOG_WARN, "JetStream is not ready; waiting", "error", err ? err->msg : "", NULL);
        struct timespec ts = {0, 500 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static char *dup_or_default(const char *s, const char *dflt) { return strdup(s ? s : dflt); }

tw_status tw__cluster_start(const tw_cluster_cfg *cfg, tw_snapshots *snaps, tw_engine *e, tw_metrics *m,
                            tw_cluster **out, tw_error *err)
{
    *out = NULL;
    tw_cluster *c = calloc(1, sizeof *c);
    if (!c)
        return tw__err(err, TW_ENOMEM, "out of memory");
    pthread_mutex_init(&c->pub_lock, NULL);
    pthread_cond_init(&c->pub_cond, NULL);
    pthread_mutex_init(&c->rate_lock, NULL);
    char host[200] = "", dflt[256];
    gethostname(host, sizeof host - 1);
    snprintf(dflt, sizeof dflt, "%s-%ld", host[0] ? host : "trailwatch", (long)getpid());
    char status_subject[320];
    snprintf(status_subject, sizeof status_subject, TW_CLUSTER_STATUS_PREFIX "%s", cfg->stream);
    c->name = dup_or_default(cfg->name, dflt);
    c->stream = strdup(cfg->stream);
    c->subject = strdup(cfg->subject);
    c->consumer = strdup(cfg->consumer);
    c->status_subject = strdup(status_subject);
    c->pubs = calloc(TW_CLUSTER_PUBLISHERS_MAX, sizeof *c->pubs);
    c->role = cfg->role;
    c->publish_timeout_ms = cfg->publish_timeout_ms;
    c->ack_wait_ms = cfg->ack_wait_ms;
    c->fetch_batch = cfg->fetch_batch;
    c->fetchers = cfg->fetchers;
    c->snaps = snaps;
    c->engine = e;
    c->metrics = m;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    c->started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    tw_status rc = TW_OK;
    natsStatus s;
    if (!c->name || !c->stream || !c->subject || !c->consumer || !c->status_subject || !c->pubs) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto fail;
    }
    counters(c);
    if ((rc = tw__cluster_connect(cfg, c->name, &c->nc, err)))
        goto fail;
    if ((s = natsConnection_JetStream(&c->js, c->nc, NULL)) != NATS_OK) {
        rc = tw__cluster_err(err, s, 0, "cluster: cannot open a JetStream context");
        goto fail;
    }
    if ((rc = ensure(c, cfg, err)) || (rc = tw__cluster_status_serve(c, err)) ||
        (works(c) && (rc = tw__cluster_workers_start(c, err))))
        goto fail;
    char fetchers[16];
    snprintf(fetchers, sizeof fetchers, "%u", works(c) ? c->fetchers : 0);
    const char *role = c->role == TW_CLUSTER_INGEST ? "ingest" : c->role == TW_CLUSTER_WORKER ? "worker" : "both";
    tw__log(TW_LOG_INFO, "joined the cluster", "name", c->name, "role", role, "stream", c->stream, "consumer",
           c->consumer, "fetchers", fetchers, NULL);
    *out = c;
    return TW_OK;
fail:
    tw__cluster_free(c);
    return rc;
}

void tw__cluster_stop_workers(tw_cluster *c)
{
    if (c)
        tw__cluster_workers_join(c);
}

void tw__cluster_free(tw_cluster *c)
{
    if (!c)
        return;
    tw__cluster_workers_join(c);
    if (c->status_sub) {
        natsSubscription_Unsubscribe(c->status_sub);
        natsSubscription_Destroy(c->status_sub);
    }
    if (c->pubs)
        tw__cluster_pubs_free(c);
    jsCtx_Destroy(c->js);
    natsConnection_Destroy(c->nc);
    free(c->threads);
    free(c->fetcher_state);
    free(c->pubs);
    free(c->name);
    free(c->stream);
    free(c->subject);
    free(c->consumer);
    free(c->status_subject);
    pthread_mutex_destroy(&c->pub_lock);
    pthread_cond_destroy(&c->pub_cond);
    pthread_mutex_destroy(&c->rate_lock);
    free(c);
    /* The library's own threads and buffers go too (a clean exit under LeakSanitizer/valgrind). */
    nats_CloseAndWait(2000);
}
