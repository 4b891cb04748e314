/*
 * trailwatch/cluster.h: the state of a trailwatch cluster on NATS JetStream, for `trailwatch cluster
 * status` (docs/CLUSTER.md).
 *
 * Ownership: tw_cluster_status_get returns a tw_cluster_status the caller owns and frees with
 * tw_cluster_status_free; everything in it belongs to it. The configuration is only read.
 */
#ifndef TRAILWATCH_CLUSTER_H
#define TRAILWATCH_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "trailwatch/error.h"
#include "trailwatch/server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Room for names: JetStream names are at most 255 bytes; node and server names are cut to fit. */
#define TW_CLUSTER_NAME_MAX 256

/* One trailwatch process of the cluster, as it answered the status request. Counters are since
 * that process started. */
typedef struct tw_cluster_node {
    char name[TW_CLUSTER_NAME_MAX];
    char role[16];                 /* both | ingest | worker */
    char host[TW_CLUSTER_NAME_MAX];
    long pid;
    int64_t uptime_ms;
    uint64_t fetched;              /* events taken from the stream and run through the rules */
    uint64_t acked, redelivered, rejected, naks;
    uint64_t published, publish_duplicates, publish_retries, publish_failed;
    double rate_10s, rate_60s;     /* events fetched per second over the last 10 s / 60 s */
    double cpu_seconds;            /* the process's CPU time (user + system) */
} tw_cluster_node;

/* A server holding a replica of the stream (other than the leader). */
typedef struct tw_cluster_peer {
    char name[TW_CLUSTER_NAME_MAX];
    int current, offline;
    uint64_t lag;
} tw_cluster_peer;

#define TW_CLUSTER_PEERS_MAX 8

/* A durable consumer of the stream: trailwatch's workers share one; an operator may add others. */
typedef struct tw_cluster_consumer {
    char name[TW_CLUSTER_NAME_MAX];
    uint64_t num_pending;          /* not yet handed to a worker */
    int64_t num_ack_pending;       /* handed out, not yet acknowledged */
    int64_t num_redelivered;       /* handed out more than once and not yet acknowledged */
    int64_t num_waiting;           /* pull requests waiting for events */
    int64_t ack_wait_ms;
} tw_cluster_consumer;

#define TW_CLUSTER_CONSUMERS_MAX 64

typedef struct tw_cluster_status {
    char stream[TW_CLUSTER_NAME_MAX];
    uint64_t messages, bytes;      /* in the stream: the events not yet acknowledged by a worker */
    uint64_t first_seq, last_seq;
    int64_t replicas;
    int64_t duplicate_window_ms;
    char cluster[TW_CLUSTER_NAME_MAX], leader[TW_CLUSTER_NAME_MAX]; /* "" on a single server */
    size_t npeers;
    tw_cluster_peer peers[TW_CLUSTER_PEERS_MAX];

    int consumer_found;            /* 0 until a worker created it */
    char consumer[TW_CLUSTER_NAME_MAX];
    uint64_t num_pending;          /* the workers' consumer (as in consumers[]) */
    int64_t num_ack_pending;
    int64_t num_redelivered;
    int64_t num_waiting;
    int64_t ack_wait_ms;
    size_t nconsumers;             /* every consumer of the stream, the workers' included */
    tw_cluster_consumer consumers[TW_CLUSTER_CONSUMERS_MAX];

    size_t nnodes;
    tw_cluster_node *nodes;        /* sorted by name */
} tw_cluster_status;

/* Connects to the cluster the configuration names (its `cluster:` section), reads the stream and the
 * consumer, and collects every running trailwatch node's answer for wait_ms. TW_ECONFIG when the
 * configuration has no cluster section; TW_EIO / TW_ETIMEOUT when NATS cannot be reached. */
tw_status tw_cluster_status_get(const tw_config *cfg, int64_t wait_ms, tw_cluster_status **out, tw_error *err);
void tw_cluster_status_free(tw_cluster_status *st);

#ifdef __cplusplus
}
#endif
#endif
