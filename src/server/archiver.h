/*
 * server/archiver.h: serve's archive writer: every event the engine accepted, into the archive,
 * on its own thread, without ever holding up an alert (internal).
 *
 * Ownership: the server owns the tw__archiver (start / stop); the engine only borrows it through
 * the archive hook (tw__archiver_take), which copies what it is given.
 *
 * The hook copies the accepted events of one engine call into one chunk and queues it (a mutex and
 * a signal, no I/O). The writer thread takes everything queued, adds it to the archive and commits
 * (tw_archive_flush): batches grow with the load. Past TW_ARCHIVE_QUEUE_BYTES / _EVENTS the hook
 * waits for the writer to make room, which holds back the sender (its alerts are already stored), so
 * that every accepted event is archived; only when the writer makes no room within
 * TW_ARCHIVER_WAIT_MS are events dropped from the archive, counted (trailwatch_archive_dropped_total)
 * and logged. Alerts are never affected. When the archive cannot write (disk full, I/O error) the writer logs the
 * error, counts it, drops what is queued and tries again every TW_ARCHIVER_RETRY_MS. Stopping
 * writes everything still queued.
 */
#ifndef TW_SERVER_ARCHIVER_H
#define TW_SERVER_ARCHIVER_H

#include "config/config_int.h"
#include "engine/engine.h"
#include "telemetry/metrics.h"

/* After a failed write, the writer waits this long before it tries again. */
#define TW_ARCHIVER_RETRY_MS 5000
/* The longest a sender waits for room in a full queue (a writer this far behind is stuck, not slow). */
#define TW_ARCHIVER_WAIT_MS 10000
/* Pruning (archive.retention) runs at start and then this often. */
#define TW_ARCHIVER_PRUNE_EVERY_MS (3600LL * 1000)
/* How long the writer waits for more events before it commits a batch of fewer than
 * TW_ARCHIVER_LINGER_EVENTS (fewer, larger transactions; the alert path never waits for them). */
#define TW_ARCHIVER_LINGER_MS 100
#define TW_ARCHIVER_LINGER_EVENTS 4096

typedef struct tw__archiver tw__archiver;

/* Opens the archive of cfg (archive.enabled must be set) and starts the writer thread. */
tw_status tw__archiver_start(const tw_config *cfg, tw_metrics *m, tw__archiver **out, tw_error *err);
/* The engine's archive hook (tw__engine_set_archiver). */
void tw__archiver_take(void *archiver, const tw_ingest_item *items, const tw_ingest_result *results, size_t n);
/* Sets the queue's bounds (TW_ARCHIVE_QUEUE_EVENTS / _BYTES by default): for unit tests, which
 * cannot send 200,000 events to see a full queue. */
void tw__archiver_set_queue_cap(tw__archiver *a, size_t events, size_t bytes);
/* Writes what is queued, stops the thread, closes the archive. NULL is fine. */
void tw__archiver_stop(tw__archiver *a);

#endif
