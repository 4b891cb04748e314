/*
 * outbox/store.h: the durable state of a server in one SQLite database (internal).
 *
 * Ownership: a tw_store is one connection; it is used by one thread at a time (the writer owns the
 * write connection; the dispatcher and `trailwatch dlq` open their own). Rows handed to callbacks
 * are borrowed for the callback's duration.
 *
 * Tables: outbox (alerts waiting for delivery), outbox_count (how many per target, kept in each write),
 * dead (dead letters), seen (CloudTrail eventIDs for deduplication, in the order they came), files
 * (CloudTrail log files done), storm (open storm-control windows).
 * WAL journal, synchronous=FULL: a commit is on disk (fsync) when tw__store_commit returns.
 */
#ifndef TW_OUTBOX_STORE_H
#define TW_OUTBOX_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "trailwatch/server.h"

typedef struct tw_alert_row {
    int64_t id;
    const char *target, *rule, *event_id, *idem_key;
    const char *body;
    size_t body_len;
    int64_t created_ms, next_ms;
    uint32_t attempts;
    const char *last_error;
    int may_drop;                  /* created by the writer for a target with a drop_oldest cap */
} tw_alert_row;

typedef struct tw_storm_row {
    const char *rule, *key;
    int64_t window_end_ms;
    uint64_t suppressed;
    const char *event;             /* the latest suppressed event (text) */
    size_t event_len;
} tw_storm_row;

/* After each commit of this connection, fn(ctx, pages in the WAL); past TW_OUTBOX_WAL_MAX_PAGES the
 * connection also checkpoints itself (PASSIVE), as SQLite's own automatic checkpoint would. Replaces
 * the automatic checkpoint of this connection. */
void tw__store_on_wal(tw_store *st, void (*fn)(void *ctx, int pages), void *ctx);
/* Copies what it can of the WAL into the database without waiting for readers or the writer
 * (SQLITE_CHECKPOINT_PASSIVE). */
tw_status tw__store_checkpoint(tw_store *st, tw_error *err);

tw_status tw__store_begin(tw_store *st, tw_error *err);
tw_status tw__store_commit(tw_store *st, tw_error *err);
void tw__store_rollback(tw_store *st);

tw_status tw__store_insert_alert(tw_store *st, tw_alert_row *row, tw_error *err); /* sets row->id */
tw_status tw__store_insert_dead(tw_store *st, const tw_alert_row *row, const char *reason, const char *response,
                                int64_t failed_ms, tw_error *err);
tw_status tw__store_delete_alert(tw_store *st, int64_t id, tw_error *err);
tw_status tw__store_reschedule(tw_store *st, int64_t id, int64_t next_ms, uint32_t attempts, const char *error,
                               tw_error *err);
/* Moves an outbox row to the dead letters. */
tw_status tw__store_kill(tw_store *st, int64_t id, uint32_t attempts, const char *reason, const char *response,
                         int64_t failed_ms, tw_error *err);

/* Outbox rows with id > after, in id order (crash recovery at start, then redriven rows). */
typedef int (*tw_alert_fn)(void *ctx, const tw_alert_row *row);
tw_status tw__store_scan_outbox(tw_store *st, int64_t after, tw_alert_fn fn, void *ctx, tw_error *err);
tw_status tw__store_outbox_count(tw_store *st, int64_t *n, tw_error *err);
/* Paging (the dispatcher holds a bounded window of each target's rows). Rows handed to fn carry the
 * metadata only (id, target, created_ms, next_ms, attempts; body ""); *n says how many were read. */
tw_status tw__store_max_id(tw_store *st, int64_t *id, tw_error *err);
/* Rows with id > after, in id order, at most limit (rows committed since the last look). */
tw_status tw__store_scan_new(tw_store *st, int64_t after, size_t limit, tw_alert_fn fn, void *ctx, size_t *n,
                             tw_error *err);
/* A target's rows with id <= max_id by (due time, id), at most limit (targets delivering in any order). */
tw_status tw__store_page_due(tw_store *st, const char *target, int64_t max_id, size_t limit, tw_alert_fn fn,
                             void *ctx, size_t *n, tw_error *err);
/* A target's rows with after < id <= max_id in id order, at most limit (targets delivering in order). */
tw_status tw__store_page_ids(tw_store *st, const char *target, int64_t after, int64_t max_id, size_t limit,
                             tw_alert_fn fn, void *ctx, size_t *n, tw_error *err);
/* One whole row (with its body) for a delivery; TW_ENOTFOUND when it is gone. */
tw_status tw__store_get_alert(tw_store *st, int64_t id, tw_alert_fn fn, void *ctx, tw_error *err);
/* Alerts pending for one target (the per-target cap). */
tw_status tw__store_target_count(tw_store *st, const char *target, int64_t *n, tw_error *err);
/* Moves the n oldest alerts of a target to the dead letters with reason (the cap's drop_oldest). */
tw_status tw__store_drop_oldest(tw_store *st, const char *target, int64_t n, const char *reason, int64_t failed_ms,
                                tw_error *err);
/* Alerts pending in all (from the per-target counts every write keeps: cheap at any size). */
tw_status tw__store_depth(tw_store *st, int64_t *n, tw_error *err);
typedef void (*tw_target_count_fn)(void *ctx, const char *target, int64_t n);
/* Alerts pending per target, for targets with any. */
tw_status tw__store_count_by_target(tw_store *st, tw_target_count_fn fn, void *ctx, tw_error *err);

tw_status tw__store_mark_seen(tw_store *st, const char *event_id, int64_t at_ms, tw_error *err);
typedef void (*tw_seen_fn)(void *ctx, const char *event_id, int64_t at_ms);
tw_status tw__store_scan_seen(tw_store *st, int64_t since_ms, tw_seen_fn fn, void *ctx, tw_error *err);
tw_status tw__store_prune_seen(tw_store *st, int64_t before_ms, tw_error *err);
/* At most limit ids remembered before before_ms are forgotten; *deleted says how many. */
tw_status tw__store_prune_seen_some(tw_store *st, int64_t before_ms, int64_t limit, int64_t *deleted,
                                   tw_error *err);

tw_status tw__store_mark_file(tw_store *st, const char *path, int64_t size, int64_t mtime, int64_t records,
                              tw_error *err);
int tw__store_file_done(tw_store *st, const char *path, int64_t size, int64_t mtime);

tw_status tw__store_storm_get(tw_store *st, const char *rule, const char *key, tw_storm_row *row, int *found,
                              tw_error *err);
tw_status tw__store_storm_put(tw_store *st, const tw_storm_row *row, tw_error *err);
/* Deletes the window if it still ends at window_end_ms (*closed = 1), else leaves it (*closed = 0). */
tw_status tw__store_storm_delete(tw_store *st, const char *rule, const char *key, int64_t window_end_ms,
                                 int *closed, tw_error *err);
/* Windows that ended at or before now, oldest first, at most max. */
typedef int (*tw_storm_fn)(void *ctx, const tw_storm_row *row);
tw_status tw__store_storm_due(tw_store *st, int64_t now_ms, size_t max, tw_storm_fn fn, void *ctx, tw_error *err);

/* Dead letters newest first: of target (NULL: all), with id < before_id (0: from the newest), at most
 * limit (the dashboard's pages). */
tw_status tw__store_dlq_page(tw_store *st, const char *target, int64_t before_id, uint32_t limit,
                             tw_dead_letter_fn fn, void *ctx, tw_error *err);
/* The number of dead letters of each target that has any. */
tw_status tw__store_dlq_counts(tw_store *st, void (*fn)(void *ctx, const char *target, int64_t n), void *ctx,
                               tw_error *err);

int64_t tw__now_ms(void);

#endif
