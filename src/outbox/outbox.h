/*
 * outbox/outbox.h: the outbox writer: one thread owning the database's write connection, committing
 * what every source and the dispatcher hand it in groups (internal).
 *
 * Ownership: the outbox owns its store connection and thread. A batch and everything it points to
 * stay the caller's; tw__outbox_commit returns once the batch is committed or failed. Rows passed to
 * on_committed are borrowed for the call.
 *
 * Why one writer: SQLite has one writer at a time anyway; funnelling all writes through one thread
 * lets many concurrent requests share one fsync (group commit), which is what makes "persist before
 * acknowledging" cheap.
 */
#ifndef TW_OUTBOX_OUTBOX_H
#define TW_OUTBOX_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "outbox/store.h"

typedef struct tw_outbox tw_outbox;

/* What a target's max_pending does when it is reached (targets.X.when_full). */
enum { TW_WHEN_FULL_REJECT = 0, TW_WHEN_FULL_DROP_OLDEST = 1 };

typedef struct tw_new_alert {
    const char *target, *rule, *event_id, *idem_key;
    const char *body;
    size_t body_len;
    const char *dead_reason;       /* non-NULL: could not be rendered: straight to the dead letters */
    /* storm control (storm_key NULL: none) */
    const char *storm_key;
    int64_t storm_window_ms;
    const char *event;             /* the event text, kept while a storm window is open */
    size_t event_len;
    /* The target's cap on pending alerts (0: none) and what happens at it: reject refuses the whole
     * batch (TW_EBUSY, nothing written), drop_oldest dead-letters the target's oldest alerts. */
    int64_t max_pending;
    int when_full;
} tw_new_alert;

/* Closes a storm window whose time is up, with its summary alert (rendered by the engine before
 * the batch reaches the writer). The window is closed only if it is still the one that was read
 * (same end), so a close never removes a window opened since. */
typedef struct tw_storm_close {
    const char *rule, *key;
    int64_t window_end_ms;
    const tw_new_alert *summary;   /* NULL: nothing to send (it suppressed nothing, or its rule is gone) */
} tw_storm_close;

/* A file to mark done in a commit: its identity (path, size, mtime) and how many records it held. */
typedef struct tw_commit_file {
    const char *path;
    int64_t size, mtime, records;
} tw_commit_file;

typedef struct tw_commit_batch {
    const tw_new_alert *alerts;
    size_t nalerts;
    const char *const *seen;       /* CloudTrail eventIDs to remember */
    size_t nseen;
    int64_t now_ms;
    const char *file_path;         /* mark this file done (NULL: none) */
    int64_t file_size, file_mtime, file_records;
    const tw_commit_file *files;   /* more files to mark done (the folder source commits many at once) */
    size_t nfiles;
    const tw_storm_close *closes;  /* storm windows to close */
    size_t ncloses;
    /* out */
    size_t suppressed;             /* alerts counted into an open storm window instead of sent */
    uint8_t *folded;               /* optional, nalerts entries: set to 1 for each alert suppressed so */
} tw_commit_batch;

/* A storm window whose time is up (tw__outbox_storms_due). */
typedef struct tw_storm_summary {
    const char *rule, *key;
    const char *event;             /* the latest suppressed event */
    size_t event_len;
    uint64_t suppressed;
    int64_t window_end_ms;
} tw_storm_summary;

typedef struct tw_outbox_hooks {
    void *ctx;
    /* New outbox rows, after their commit: the dispatcher takes them. */
    void (*on_committed)(void *ctx, const tw_alert_row *rows, size_t n);
} tw_outbox_hooks;

tw_status tw__outbox_start(const char *data_dir, const tw_outbox_hooks *hooks, tw_outbox **out, tw_error *err);
/* Commits any queued work and stops the thread. */
void tw__outbox_stop(tw_outbox *ob);

/* Blocks until the batch is durable (TW_OK) or failed (err says why; nothing of it was kept).
 * TW_EBUSY: an alert's target has max_pending alerts waiting (policy reject). */
tw_status tw__outbox_commit(tw_outbox *ob, tw_commit_batch *b, tw_error *err);

/* Delivery outcomes, applied in order in the next group commit. One that cannot be committed (a full
 * disk) is kept and tried again, and logged; only a crash or a stop before it is committed repeats
 * the delivery at the next start. */
/* Each returns the outcome's sequence number (0: out of memory, not recorded). */
uint64_t tw__outbox_delivered(tw_outbox *ob, int64_t id);
uint64_t tw__outbox_retry(tw_outbox *ob, int64_t id, int64_t next_ms, uint32_t attempts, const char *error);
uint64_t tw__outbox_dead(tw_outbox *ob, int64_t id, uint32_t attempts, const char *reason, const char *response);
/* Every outcome with a sequence number up to this one is committed: a read of the store started
 * after this call sees them (the dispatcher pages rows back only then). */
uint64_t tw__outbox_recorded_seq(tw_outbox *ob);
/* Alerts refused (reject) and dead-lettered (drop_oldest) by targets' max_pending since the start. */
void tw__outbox_cap_counts(tw_outbox *ob, uint64_t *refused, uint64_t *dropped);

/* Things the engine reads at start and while running, through the writer's connection. */
/* Storm windows that ended at or before now_ms, up to max of them; fn returns nonzero to stop. The
 * rows are borrowed for the call. */
tw_status tw__outbox_storms_due(tw_outbox *ob, int64_t now_ms, size_t max,
                               int (*fn)(void *ctx, const tw_storm_summary *s), void *ctx, tw_error *err);
tw_status tw__outbox_load_seen(tw_outbox *ob, int64_t since_ms, tw_seen_fn fn, void *ctx, tw_error *err);
int tw__outbox_file_done(tw_outbox *ob, const char *path, int64_t size, int64_t mtime);
/* Alerts pending, as last committed (the outbox depth gauge; never counts an outcome not yet on disk). */
int64_t tw__outbox_depth(tw_outbox *ob);
/* Delivery outcomes waiting to be committed after a failure (the dispatcher stops starting
 * deliveries while there are many: each would be one more alert delivered again after a restart). */
size_t tw__outbox_unrecorded(tw_outbox *ob);
/* CloudTrail eventIDs older than this are forgotten while running (the engine's dedup window). */
void tw__outbox_set_seen_window(tw_outbox *ob, int64_t window_ms);

#endif
