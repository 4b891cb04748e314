/*
 * archive/backend.h: the storage interface under tw_archive (internal). SQLite (sqlite.c) now,
 * PostgreSQL (postgres.c) beside it; callers (archive.c, query.c) never see which.
 *
 * Ownership: a backend owns its connection and caches; records passed to put_batch and plans
 * passed to find are borrowed for the call; bodies handed to a find callback are borrowed for the
 * duration of that callback.
 *
 * Backends store what extract.c computed and the body byte for byte; they never interpret JSON. A
 * find returns candidates (the term and the stored columns narrow, the time range bounds); the
 * query layer confirms each against the body (pattern, exact resource / principal).
 */
#ifndef TW_ARCHIVE_BACKEND_H
#define TW_ARCHIVE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "trailwatch/archive.h"
#include "trailwatch/error.h"

/* An event's key: its time in seconds since TW_ARCH_KEY_EPOCH times 2^18, plus a sequence number
 * within that second (so keys order by time; 262,144 events per second at most). 2026-01-01: keys of
 * 2009..2043 fit SQLite's 6-byte integers (smaller index entries). */
#define TW_ARCH_KEY_EPOCH 1767225600LL
#define TW_ARCH_KEY_SEQ 262144LL
int64_t tw__arch_key_lo(int64_t time_ms);        /* the first key of time_ms's second */
int64_t tw__arch_key_time(int64_t key);          /* the second of a key, in ms */

/* One event ready to store. Strings are "" when absent. */
typedef struct tw__arch_rec {
    int64_t time_ms;
    const char *id;           /* the dedup id (CloudTrail eventID, else the EventBridge id); "" none */
    const char *event_name, *source, *account, *region, *detail_type, *error_code; /* source: "aws.ec2" */
    const int32_t *terms;     /* tw__arch_terms: id, name, source IP, principal, resources */
    size_t nterms;
    const char *body;
    size_t body_len;
} tw__arch_rec;

/* Stored columns a plan can filter on (any of the listed values). */
enum { TW_ARCH_COL_NAME, TW_ARCH_COL_SOURCE, TW_ARCH_COL_ACCOUNT, TW_ARCH_COL_REGION, TW_ARCH_COL_DETAIL_TYPE,
       TW_ARCH_COL_ERROR, TW_ARCH_NCOLS };
#define TW_ARCH_PLAN_VALUES 32u

typedef struct tw__arch_plan {
    int64_t from_ms, to_ms;        /* inclusive; 0 = open */
    int has_term;
    int32_t term;                  /* only events with this term */
    const char *cols[TW_ARCH_NCOLS][TW_ARCH_PLAN_VALUES]; /* per column: allowed values */
    size_t ncols[TW_ARCH_NCOLS];   /* 0 = no constraint on that column */
    int oldest_first;
    int has_after;
    int64_t after_key;             /* continue strictly after this key (in the plan's order) */
} tw__arch_plan;

/* A candidate: return 0 to go on, 1 to stop; a negative return aborts find with the status the
 * callback stored (its own tw_error). */
typedef int (*tw__arch_cand_fn)(void *ud, int64_t key, const char *body, size_t len);

/* group_by columns for counts: -1 = none */
typedef int (*tw__arch_count_fn)(void *ud, int64_t bucket_ms, const char *group, uint64_t n);

typedef struct tw__archive_backend tw__archive_backend;

struct tw__archive_backend_ops {
    const char *name;
    /* Stores the records in one transaction: all or nothing. */
    tw_status (*put_batch)(tw__archive_backend *b, const tw__arch_rec *recs, size_t n, tw_error *err);
    tw_status (*find)(tw__archive_backend *b, const tw__arch_plan *plan, tw__arch_cand_fn cb, void *ud,
                      tw_error *err);
    tw_status (*counts)(tw__archive_backend *b, const tw__arch_plan *plan, int64_t step_ms, int group_col,
                        tw__arch_count_fn cb, void *ud, tw_error *err);
    tw_status (*stats)(tw__archive_backend *b, tw_archive_stats *out, tw_error *err);
    tw_status (*prune)(tw__archive_backend *b, int64_t before_ms, uint64_t *removed, tw_error *err);
    void (*close)(tw__archive_backend *b);
};

/* Every backend's handle starts with this. */
struct tw__archive_backend {
    const struct tw__archive_backend_ops *ops;
    int dedup_on_put;        /* put_batch drops records whose id is stored (tw_archive_add then only
                                checks its own queue, not the storage) */
    uint64_t duplicates;     /* records put_batch dropped as stored repeats, ever */
};

tw_status tw__archive_sqlite_open(const tw_archive_opts *opts, tw__archive_backend **out, tw_error *err);
tw_status tw__archive_pg_open(const tw_archive_opts *opts, tw__archive_backend **out, tw_error *err);  /* postgres.c */

#endif
