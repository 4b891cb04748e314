/*
 * cluster/cluster_int.h: what the parts of src/cluster share (internal to src/cluster).
 *
 * Ownership: the tw_cluster owns its strings (copies), the NATS connection and JetStream context,
 * the publisher slots, the worker threads and the status subscription. Counters point into the
 * server's metrics registry (borrowed); they double as the figures `cluster status` reports.
 */
#ifndef TW_CLUSTER_CLUSTER_INT_H
#define TW_CLUSTER_CLUSTER_INT_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "cluster/cluster.h"

/* Rate samples, one a second at most: enough for the 10 s and 60 s rates `cluster status` shows. */
#define TW_CLUSTER_RATE_SLOTS 64u
/* Concurrent publishing calls (each has its own JetStream context and acknowledgement state); a
 * source call beyond this waits for a free one. HTTP connections are bounded well below it. */
#define TW_CLUSTER_PUBLISHERS_MAX 64u
/* An idle worker's long poll: also how long a stop may wait for a fetch to return. */
#define TW_CLUSTER_FETCH_WAIT_MS 1000
/* A batch the engine could not store (disk full) comes back after this delay. */
#define TW_CLUSTER_NAK_DELAY_MS 1000
/* One publish attempt's wait for its acknowledgement before it is retried. */
#define TW_CLUSTER_PUBLISH_ATTEMPT_MS 2000
/* Status replies read by `cluster status`; one per node, so a bound on the nodes it lists. */
#define TW_CLUSTER_STATUS_NODES_MAX 1024u
/* How long a starting node waits for JetStream to elect its leaders (a cluster starting with it). */
#define TW_CLUSTER_START_WAIT_MS 30000
/* Subject prefix of the status requests (outside any stream's subjects: they are not stored). */
#define TW_CLUSTER_STATUS_PREFIX "_trailwatch.status."

typedef struct tw_cluster_pub tw_cluster_pub;

struct tw_cluster {
    char *name, *stream, *subject, *consumer, *status_subject;
    tw_cluster_role role;
    int64_t publish_timeout_ms, ack_wait_ms;
    uint32_t fetch_batch, fetchers;
    int64_t started_ms;

    natsConnection *nc;
    jsCtx *js;                     /* stream management and the workers' subscriptions */
    natsSubscription *status_sub;
    tw_snapshots *snaps;
    tw_engine *engine;
    tw_metrics *metrics;

    pthread_mutex_t pub_lock;      /* the publisher slots */
    pthread_cond_t pub_cond;
    tw_cluster_pub **pubs;         /* idle slots */
    size_t npubs_idle, npubs;

    pthread_t *threads;
    size_t nthreads;
    void *fetcher_state;           /* worker.c's per-thread subscriptions */
    _Atomic int stopping;

    /* Per node (label worker="name"): what `cluster status` and /metrics show. */
    tw_counter *fetched, *acked, *redelivered, *rejected, *naks;
    tw_counter *published, *pub_duplicates, *pub_retries, *pub_failed;
    tw_histogram *batch_time, *publish_time;

    pthread_mutex_t rate_lock;
    struct { int64_t ms; uint64_t events; } ring[TW_CLUSTER_RATE_SLOTS];
    unsigned ring_n, ring_pos;
};

/* Fills err from a NATS failure: "<what>: <NATS status text> (<JetStream code>): <detail>". */
tw_status tw__cluster_err(tw_error *err, natsStatus s, jsErrCode jerr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The connection options every trailwatch NATS client uses (servers, credentials, reconnects). */
tw_status tw__cluster_connect(const tw_cluster_cfg *cfg, const char *name, natsConnection **nc, tw_error *err);
/* Creates the stream when it does not exist; an existing one is used as it is (its subjects must
 * take ours). */
tw_status tw__cluster_ensure_stream(jsCtx *js, const tw_cluster_cfg *cfg, tw_error *err);
/* Creates the durable pull consumer when it does not exist. */
tw_status tw__cluster_ensure_consumer(jsCtx *js, const tw_cluster_cfg *cfg, tw_error *err);

/* Worker threads (worker.c). */
tw_status tw__cluster_workers_start(tw_cluster *c, tw_error *err);
void tw__cluster_workers_join(tw_cluster *c);
/* Events processed so far, for the rate (the fetch loops call it after each batch). */
void tw__cluster_rate_sample(tw_cluster *c);
/* Events per second over the last window_ms (as sampled). */
double tw__cluster_rate(tw_cluster *c, int64_t window_ms);

/* This process's CPU time (user + system), for the CPU per event `cluster status` shows. */
double tw__cluster_cpu_seconds(void);

/* Publisher slots (publish.c). */
void tw__cluster_pubs_free(tw_cluster *c);

/* This node's status, as JSON, answering `cluster status` requests (status.c). */
tw_status tw__cluster_status_serve(tw_cluster *c, tw_error *err);

#endif
