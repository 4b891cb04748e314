/*
 * cluster/cluster.h: cluster mode on NATS JetStream: sources publish, matcher workers consume
 * (internal; the lifecycle calls it, docs/CLUSTER.md describes it).
 *
 * Ownership: the server owns a tw_cluster (tw__cluster_start .. tw__cluster_free). It keeps its own
 * copies of the settings it needs (a reload frees the configuration they came from), one NATS
 * connection, its worker threads and their subscriptions. The engine and the metrics registry are
 * borrowed and must outlive it.
 *
 * How an event travels in cluster mode:
 *   source -> tw__engine_submit -> (forward) tw__cluster_publish: each event, normalised (a raw
 *   CloudTrail record wrapped) and validated, is published to the stream with its CloudTrail eventID
 *   (else its event id) as Nats-Msg-Id, so the stream's duplicate window drops the same event sent by
 *   two paths or two ingest nodes; the call returns once JetStream acknowledged every event, and only
 *   then does the source acknowledge its sender.
 *   worker thread: fetch a batch from the durable pull consumer -> tw__engine_submit_local (match,
 *   render, commit the alerts to the outbox, fsync) -> ack each event. A worker killed before its
 *   acks loses nothing: JetStream redelivers after ack_wait, and the alerts keep their idempotency
 *   keys (sha256 of eventID, rule, target).
 */
#ifndef TW_CLUSTER_CLUSTER_H
#define TW_CLUSTER_CLUSTER_H

#include <stddef.h>

#include "config/config_int.h"
#include "config/snapshot.h"
#include "engine/engine.h"
#include "telemetry/metrics.h"

typedef struct tw_cluster tw_cluster;

/* Connects to the NATS servers, creates the stream (and, for workers, the durable consumer) when
 * they do not exist, and starts the worker threads when the role includes them. Fails with a clear
 * error (no URL passwords in it) when no server answers. */
tw_status tw__cluster_start(const tw_cluster_cfg *cfg, tw_snapshots *snaps, tw_engine *e, tw_metrics *m,
                            tw_cluster **out, tw_error *err);
/* 1 when the role publishes what the sources take (the server then wires tw__cluster_publish into
 * the engine). */
int tw__cluster_ingests(const tw_cluster *c);
/* The engine's forward hook (tw_engine_forward_fn); ctx is the tw_cluster. */
tw_status tw__cluster_publish(void *ctx, const tw_ingest_item *items, size_t n, const tw_ingest_opts *o,
                              tw_ingest_result *results, tw_error *err);
/* Stops fetching; the batch each worker holds is finished (committed, acked) first. */
void tw__cluster_stop_workers(tw_cluster *c);
/* Stops what still runs and closes the connection. */
void tw__cluster_free(tw_cluster *c);

/* 1 when two configurations' cluster settings are the same (they cannot change on reload). */
int tw__cluster_cfg_equal(const tw_cluster_cfg *a, const tw_cluster_cfg *b);

#endif
