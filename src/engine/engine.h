/*
 * engine/engine.h: what every source calls: events in, alerts durably queued, then acknowledge
 * (internal).
 *
 * Ownership: the engine belongs to the server. Items and their text are borrowed for the duration
 * of the call; results are written into the caller's array.
 *
 * tw__engine_submit normalises each event (a raw CloudTrail record is wrapped into its EventBridge
 * envelope), drops CloudTrail duplicates (same eventID within the dedup window), matches it against
 * the current rules, renders one alert per (matched rule, target), and returns only once those
 * alerts are committed (fsync) to the outbox. A source acknowledges its sender after that, so an
 * accepted event's alerts survive kill -9. Safe to call from many threads at once: commits are
 * grouped.
 */
#ifndef TW_ENGINE_ENGINE_H
#define TW_ENGINE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "outbox/outbox.h"
#include "trailwatch/error.h"
#include "trailwatch/pattern.h"

typedef struct tw_engine tw_engine;

typedef struct tw_ingest_item {
    const char *json;              /* one event (an EventBridge envelope) or one raw CloudTrail record */
    size_t len;
    tw_event_kind kind;            /* TW_EVENT_AUTO unless the source knows */
} tw_ingest_item;

typedef struct tw_ingest_result {
    tw_status status;              /* TW_OK: accepted (a duplicate is accepted too) */
    int duplicate;                 /* dropped as a CloudTrail duplicate */
    uint32_t matched;              /* rules matched */
    char id[64];                   /* the event's id (a wrapped record's new id) */
    char error[TW_ERROR_MSG_MAX];  /* why it was rejected, when status != TW_OK */
} tw_ingest_result;

typedef struct tw_ingest_opts {
    const char *source;            /* metrics label: eventbridge, http, firehose, folder, stdin */
    /* Optional: mark this file processed in the same transaction as its events' alerts. */
    const char *file_path;
    int64_t file_size, file_mtime;
    /* Optional: more files to mark in the same transaction (one commit, one fsync, for many small
     * files: the folder source); their records are in this submit or were in earlier ones. */
    const tw_commit_file *files;
    size_t nfiles;
    /* `trailwatch replay --deliver`: events that came out of the archive. They are not checked
     * against (nor added to) the CloudTrail dedup set, which would drop every one seen within the
     * window, and not handed to the archiver, which already holds them. */
    int replay;
} tw_ingest_opts;

/* Returns TW_OK when every item has its result (accepted or rejected on its own); an error when the
 * batch could not be made durable at all (then no item counts as accepted). */
tw_status tw__engine_submit(tw_engine *e, const tw_ingest_item *items, size_t n, const tw_ingest_opts *o,
                           tw_ingest_result *results, tw_error *err);

/* ---- cluster mode (src/cluster/) ---- */

/* Where tw__engine_submit sends events instead of matching them here: in cluster mode, the JetStream
 * publisher. It fills results as tw__engine_submit does and returns once every accepted event is
 * stored by the stream (the engine then marks the file done, when there is one). */
typedef tw_status (*tw_engine_forward_fn)(void *ctx, const tw_ingest_item *items, size_t n, const tw_ingest_opts *o,
                                          tw_ingest_result *results, tw_error *err);
/* Set before any source starts; NULL: match here (the embedded mode). */
void tw__engine_set_forward(tw_engine *e, tw_engine_forward_fn fn, void *ctx);
/* tw__engine_submit that never forwards: what cluster workers call with the events they fetched. */
tw_status tw__engine_submit_local(tw_engine *e, const tw_ingest_item *items, size_t n, const tw_ingest_opts *o,
                                  tw_ingest_result *results, tw_error *err);

/* 1 when the file was processed completely before with this size and mtime. */
int tw__engine_file_done(tw_engine *e, const char *path, int64_t size, int64_t mtime);

/* 1 once the server is stopping: long-running sources end their loops. */
int tw__engine_stopping(const tw_engine *e);

/* ---- for the server (server.c) ---- */

struct tw_config;
/* Told about each event that matched, once its alerts are durable (the dashboard's live view and rule
 * statistics). rules are indices into cfg->rules; everything is borrowed for the call, which runs on
 * the submitting thread and must be quick. */
typedef void (*tw_engine_observer)(void *ctx, const struct tw_config *cfg, const char *event, size_t len,
                                   const uint32_t *rules, size_t nrules);
/* Set before the sources start. */
void tw__engine_observe(tw_engine *e, tw_engine_observer fn, void *ctx);

/* Told about every event accepted by a call (results[i].status TW_OK, not a duplicate) once its
 * alerts are durable, to archive it (src/server/archiver.c). Everything is borrowed for the call,
 * which runs on the submitting thread: it must only copy, never wait. Not called for replays. */
typedef void (*tw_engine_archive_fn)(void *ctx, const tw_ingest_item *items, const tw_ingest_result *results,
                                     size_t n);
/* Set before the sources start (NULL: no archive). */
void tw__engine_set_archiver(tw_engine *e, tw_engine_archive_fn fn, void *ctx);

struct tw_snapshots;
struct tw_outbox;
struct tw_metrics;

tw_status tw__engine_new(struct tw_snapshots *snaps, struct tw_metrics *m, tw_engine **out, tw_error *err);
/* The outbox is started after the engine. Loads the remembered CloudTrail eventIDs of the dedup
 * window and starts the storm window thread. */
tw_status tw__engine_attach(tw_engine *e, struct tw_outbox *ob, tw_error *err);
/* Also stops the storm window thread (call before the outbox stops). */
void tw__engine_set_stopping(tw_engine *e);
/* Rules' enrichments go through en (borrowed; set before sources start, or NULL). */
struct tw_enricher;
void tw__engine_set_enricher(tw_engine *e, struct tw_enricher *en);
void tw__engine_free(tw_engine *e);

/* Storm windows: tw__engine_attach starts a thread that every TW_STORM_TICK_MS closes the windows
 * whose time is up, rendering a summary alert for each that suppressed something ("+N identical
 * alerts"), and hands both to the outbox in one commit. Called directly by tests with a chosen
 * now_ms; *nclosed (may be NULL) tells how many windows were closed. */
#define TW_STORM_TICK_MS 250
#define TW_STORM_CLOSE_MAX 256         /* windows closed per commit, so that one commit stays short */
tw_status tw__engine_close_storms(tw_engine *e, int64_t now_ms, size_t *nclosed, tw_error *err);

#endif
