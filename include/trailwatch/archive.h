/*
 * trailwatch/archive.h: the event archive: every event kept (compressed, returned byte for byte),
 * indexed by time, names, principal and the resources it touched; "who did X" in one call.
 *
 * Ownership: the caller owns a tw_archive (tw_archive_open / tw_archive_close); rows handed to
 * callbacks, and every string in them, are borrowed for the duration of the callback only.
 *
 * Writing is batched: tw_archive_add queues one event, tw_archive_flush commits the queue in one
 * transaction (add also flushes on its own every TW_ARCHIVE_BATCH events). Only what a flush (or an
 * automatic flush inside add) returned TW_OK for is durable. A handle is used by one thread at a
 * time; any number of processes may read while one writes (SQLite WAL: readers never block the
 * writer). Semantics and layout: docs/ARCHIVE.md.
 */
#ifndef TRAILWATCH_ARCHIVE_H
#define TRAILWATCH_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "trailwatch/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_archive tw_archive;

#define TW_ARCHIVE_SQLITE 0
#define TW_ARCHIVE_POSTGRES 1

/* Events queued before add commits them itself. */
#define TW_ARCHIVE_BATCH 8192u

typedef struct tw_archive_opts {
    int backend;          /* TW_ARCHIVE_SQLITE (0) or TW_ARCHIVE_POSTGRES */
    const char *path;     /* SQLite: the archive file (created unless readonly) */
    const char *dsn;      /* PostgreSQL: libpq conninfo */
    int readonly;         /* open for queries only (never creates, never writes) */
} tw_archive_opts;

/* Opens (and creates, when writable and missing) an archive. A file that is not an archive, or a
 * damaged one, is TW_ECORRUPT naming the file; a newer schema is TW_EDB. */
tw_status tw_archive_open(tw_archive **out, const tw_archive_opts *opts, tw_error *err);
/* Closes without committing what is still queued (call tw_archive_flush first). Accepts NULL. */
void tw_archive_close(tw_archive *a);

/* Queues one event (a raw CloudTrail record or an EventBridge event, JSON text of one object).
 * received_ms is used as its time when the event carries none. TW_EEXIST: its eventID (for an
 * EventBridge event of a CloudTrail record) or id is already queued; nothing is added. One already
 * stored is dropped when the queue is committed, and counted by tw_archive_duplicates.
 * TW_EJSON/TW_EUTF8/TW_EEVENT/TW_ETOOBIG: the event is unusable (the message says why); nothing is
 * added. Other errors come from the automatic flush (TW_ENOSPC disk full, TW_ECORRUPT, TW_EDB): the
 * queue is then dropped, nothing of it is archived. */
tw_status tw_archive_add(tw_archive *a, const char *json, size_t len, int64_t received_ms, tw_error *err);
/* Commits every queued event. On error nothing queued is archived and the queue is emptied. */
tw_status tw_archive_flush(tw_archive *a, tw_error *err);
/* Events committed by this handle since it was opened (what is durable). */
uint64_t tw_archive_committed(const tw_archive *a);
/* Events this handle's commits dropped because their id was already stored. */
uint64_t tw_archive_duplicates(const tw_archive *a);
/* on = 1: tw_archive_add also looks each event's id up among the stored events (one index lookup per
 * event) and returns TW_EEXIST at once for one already stored, for callers that act on new events
 * only (ingest --alert alerts on what it adds). An event another writer stores between that add and
 * this handle's commit is still dropped at the commit (and counted by tw_archive_duplicates). */
void tw_archive_check_stored(tw_archive *a, int on);

typedef struct tw_archive_query {
    int64_t from_ms, to_ms;   /* time range, inclusive; 0 = open */
    const char *pattern;      /* an EventBridge event pattern (JSON), or NULL */
    const char *resource;     /* an ARN or resource id/name the event touched, or NULL */
    const char *who;          /* a principal: ARN, user/role/session name, service, or NULL */
    const char *event_name;   /* exact eventName, or NULL */
    size_t limit;             /* rows at most; 0 = no limit */
    const char *cursor;       /* from a previous call's next_cursor: continue after it, or NULL */
} tw_archive_query;

typedef struct tw_archive_row {
    int64_t time_ms;
    const char *id;            /* eventID (or the EventBridge id); "" when none */
    const char *event_name, *event_source, *account, *region;
    const char *principal;     /* normalised "who": an ARN, "root"'s ARN, a service name, ... */
    const char *principal_type;/* IAMUser, Root, AssumedRole, AWSService, FederatedUser, ... ("" unknown) */
    const char *role;          /* assumed role / federation: the issuer's ARN; "" otherwise */
    const char *session;       /* assumed role: the session name; "" otherwise */
    const char *behind;        /* the identity behind a session: sourceIdentity, onBehalfOf; "" none */
    const char *source_ip, *error_code;  /* "" when absent */
    int read_only;             /* the record's readOnly: 1, 0, or -1 when it does not say */
    const char *json;          /* the event exactly as it was added */
    size_t json_len;
} tw_archive_row;

/* A callback returns 0 to go on, anything else to stop (the call then returns TW_OK). */
typedef int (*tw_archive_row_fn)(void *ud, const tw_archive_row *row);

/* Events matching every given criterion, newest first. When limit rows were delivered and more may
 * follow, next_cursor (cursor_cap >= TW_ARCHIVE_CURSOR_MAX) receives a cursor, else "". next_cursor
 * may be NULL. A bad pattern is TW_EPATTERN; a bad cursor TW_EINVAL. */
#define TW_ARCHIVE_CURSOR_MAX 32
tw_status tw_archive_find(tw_archive *a, const tw_archive_query *q, tw_archive_row_fn cb, void *ud,
                          char *next_cursor, size_t cursor_cap, tw_error *err);

/* Every event that created, changed or deleted resource (an ARN or an id/name), oldest first:
 * read-only calls (readOnly true, or Describe/Get/List/Head... names when the record does not say)
 * are left out. from_ms/to_ms: 0 = open. */
tw_status tw_archive_who(tw_archive *a, const char *resource, int64_t from_ms, int64_t to_ms,
                         tw_archive_row_fn cb, void *ud, tw_error *err);

/* Events per time bucket (step_ms > 0) and group, for a timeline: group_by NULL (one group ""),
 * "source", "account", "region" or "event_name". Only q's time range and event_name are used. */
typedef int (*tw_archive_count_fn)(void *ud, int64_t bucket_ms, const char *group, uint64_t n);
tw_status tw_archive_counts(tw_archive *a, const tw_archive_query *q, int64_t step_ms, const char *group_by,
                            tw_archive_count_fn cb, void *ud, tw_error *err);

typedef struct tw_archive_stats {
    uint64_t events;
    int64_t first_ms, last_ms;  /* 0 when empty */
    uint64_t bytes_on_disk;     /* the archive's files (database + WAL), indexes included */
    uint64_t raw_bytes;         /* the events' JSON as added */
    uint64_t stored_bytes;      /* compressed bodies */
    double ratio;               /* raw_bytes / stored_bytes (0 when empty) */
    int dictionary;             /* 1 when bodies are compressed with a trained dictionary */
} tw_archive_stats;
tw_status tw_archive_stats_get(tw_archive *a, tw_archive_stats *out, tw_error *err);

/* Deletes every event older than before_ms; *removed (may be NULL) counts them. */
tw_status tw_archive_prune(tw_archive *a, int64_t before_ms, uint64_t *removed, tw_error *err);

/* Parses a duration such as 400d, 7d, 12h, 30m, 90s (for --since and --retention) into
 * milliseconds; TW_EINVAL naming the text when it is not one. */
tw_status tw_archive_parse_duration(const char *text, int64_t *ms, tw_error *err);
/* Parses a time: RFC 3339 (2021-07-28T12:00:00Z, fractions and offsets allowed), a date
 * (2021-07-28, midnight UTC) or milliseconds since the epoch. */
tw_status tw_archive_parse_time(const char *text, int64_t *ms, tw_error *err);

#ifdef __cplusplus
}
#endif
#endif
