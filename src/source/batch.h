/*
 * source/batch.h: what the sources share: their size caps, and a batcher that hands events to the
 * engine in groups and tallies what became of them (internal).
 *
 * Ownership: a tw_src_batch is owned by one source call or thread. Item text is borrowed: it must
 * stay valid until the flush that submits it (tw__src_add may flush when the batch is full), which is
 * why sources keep their decoded buffers until after tw__src_flush (tw__src_hold helps with that).
 */
#ifndef TW_SOURCE_BATCH_H
#define TW_SOURCE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "telemetry/metrics.h"
#include "trailwatch/event.h"

/* Events per tw__engine_submit: large enough that commits are few (the engine also groups commits
 * across callers), small enough that one call's results (~300 bytes each) stay a few hundred KiB. */
#define TW_SRC_BATCH 1000u

/* Firehose: "<= 64 MiB before compression" per request, 1..10000 records of at most 1,024,000 bytes
 * decoded (AWS doc, httpdeliveryrequestresponse). The same 64 MiB bounds what one gzip record (a CWL
 * message) may expand to, against gzip bombs. */
#define TW_FIREHOSE_BODY_MAX    (64u * 1024u * 1024u)
#define TW_FIREHOSE_RECORDS_MAX 10000u
#define TW_FIREHOSE_RECORD_MAX  1024000u
/* POST /events: a request body (after gzip) is held in memory whole; 64 MiB matches Firehose's. */
#define TW_INGEST_BODY_MAX      (64u * 1024u * 1024u)
/* Reject details returned by POST /events: enough to fix a file, bounded for a bad million lines. */
#define TW_INGEST_ERRORS_MAX    100u

typedef void (*tw_src_reject_fn)(void *ctx, const tw_event_where *where, const char *why);

typedef struct tw_src_hold {
    void (*release)(void *);
    void *p;
} tw_src_hold;

typedef struct tw_src_batch {
    tw_engine *engine;
    tw_ingest_opts opts;           /* source label; file_* only for the flush that should mark it */
    tw_counter *rejected_metric;   /* may be NULL */
    tw_src_reject_fn on_reject;    /* may be NULL */
    void *ctx;
    tw_ingest_item *items;
    tw_event_where *where;         /* where each item came from, for reject reports */
    tw_ingest_result *results;
    size_t n;
    tw_src_hold *holds;
    size_t nholds, capholds, held_bytes;
    uint64_t accepted, duplicates, rejected; /* accepted counts duplicates too, as the engine does */
    tw_status failed;              /* the engine failed: nothing more is submitted */
    tw_error err;
} tw_src_batch;

/* source: the metrics label ("firehose", "http", "folder"). */
tw_status tw__src_batch_init(tw_src_batch *b, tw_engine *e, tw_metrics *m, const char *source, tw_error *err);
/* Releases what is still held; pending items are dropped (flush first). */
void tw__src_batch_free(tw_src_batch *b);

/* Queues one event, submitting the queued ones first when the batch is full. Returns the engine's
 * failure (also kept in b->failed), after which nothing is submitted any more. */
tw_status tw__src_add(tw_src_batch *b, const char *json, size_t len, tw_event_kind kind, const tw_event_where *w);
/* Counts an event the source itself could not read. */
void tw__src_reject(tw_src_batch *b, const tw_event_where *w, const char *why);
/* Submits what is queued (also when nothing is, if opts.file_path or opts.files is set: an empty file
 * is marked). */
tw_status tw__src_flush(tw_src_batch *b);
/* Keeps p until tw__src_release (bytes: its size, for the caller's memory bound). Call it before
 * queueing items that point into p: on failure p is released at once. */
tw_status tw__src_hold(tw_src_batch *b, void (*release)(void *), void *p, size_t bytes);
/* Releases everything held; only when nothing queued points into it (right after a flush). */
void tw__src_release(tw_src_batch *b);

/* Writes s as a JSON string, each byte that is not valid UTF-8 replaced by U+FFFD: error messages and
 * echoed header values may quote input, and a response must stay valid JSON. */
tw_status tw__src_json_text(tw_buf *b, const char *s, size_t len);

#endif
