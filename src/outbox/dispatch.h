/*
 * outbox/dispatch.h: delivering the outbox: per-target queues, rate limits, retries with backoff,
 * dead letters (internal).
 *
 * Ownership: the dispatcher owns its thread, its copies of the pending rows, a read connection to
 * the store (to find rows redriven by `trailwatch dlq redrive`), and its curl handles. Outcomes are
 * written through the outbox writer.
 *
 * One thread runs every HTTP delivery through a curl multi handle (connections reused); local
 * targets (exec, file, console) run on a small worker pool. Per target: FIFO order, at most
 * `concurrency` deliveries in flight, a token bucket (rate), and a pause after 429 / Retry-After.
 */
#ifndef TW_OUTBOX_DISPATCH_H
#define TW_OUTBOX_DISPATCH_H

#include "outbox/outbox.h"
#include "telemetry/metrics.h"
#include "config/snapshot.h"

typedef struct tw_dispatch tw_dispatch;

/* Loads every row already in the outbox (alerts accepted before a crash or a stop) and starts. */
tw_status tw__dispatch_start(const char *data_dir, tw_outbox *ob, tw_snapshots *snaps, tw_metrics *m,
                            tw_dispatch **out, tw_error *err);
/* Takes copies of newly committed rows (the outbox writer's on_committed hook). */
void tw__dispatch_enqueue(tw_dispatch *d, const tw_alert_row *rows, size_t n);
/* Stops starting deliveries, waits up to drain_ms for those in flight, stops. */
void tw__dispatch_stop(tw_dispatch *d, int64_t drain_ms);
/* Alerts waiting or in flight (the outbox depth as this process sees it). */
size_t tw__dispatch_pending(tw_dispatch *d);

/* Backoff before attempt n+1 after n failed attempts: base * 2^(n-1), capped, with jitter so that
 * many alerts failing together do not retry together. Exposed for tests. */
int64_t tw__backoff_ms(uint32_t attempts, int64_t base_ms, int64_t cap_ms, uint64_t random);

/* Retry-After: delta-seconds or an HTTP date; -1 when absent or unparsable. Exposed for tests. */
int64_t tw__parse_retry_after(const char *value, int64_t now_ms);

#endif
