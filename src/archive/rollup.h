/*
 * archive/rollup.h: the counts rollup (internal): events per minute per value of the timeline's
 * dimensions (event name, source, account, region), kept by the backends in the same transaction as
 * the events, so that a timeline reads one row per minute instead of every event.
 *
 * Ownership: an accumulator owns its entries; tw__roll_free releases them. Blobs are borrowed.
 *
 * SQLite stores an hour as one row (h, blob): per dimension, the atom ids seen in that hour, and per
 * atom its minutes and their counts (LEB128 deltas), about two bytes per (minute, value) and no
 * per-minute row: the archive must stay under 1/6 of the raw JSON, and a row per minute cost more
 * than all the counts in it. PostgreSQL stores (minute, dim, value, n) rows (pg_rollup.c).
 */
#ifndef TW_ARCHIVE_ROLLUP_H
#define TW_ARCHIVE_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "archive/backend.h"
#include "common/buf.h"

/* Dimensions are the first columns of backend.h: name, source, account, region. */
#define TW_ROLL_DIMS 4
#define TW_ROLL_MINUTE_KEYS (60 * TW_ARCH_KEY_SEQ) /* keys per minute (the key epoch is a whole minute) */

int64_t tw__roll_minute(int64_t key);            /* the minute of a key (floor) */
int64_t tw__roll_minute_ms(int64_t minute);      /* its first ms */
int64_t tw__roll_bucket(int64_t ms, int64_t step); /* floor(ms / step) * step */
int64_t tw__roll_hour(int64_t minute);            /* floor(minute / 60) */

/* Splits keys lo..hi into the whole minutes m0..m1 (none when m0 > m1; the open ends of the key
 * range count as whole) and the partial minutes' key ranges edge[0] (before) and edge[1] (after),
 * each empty when its lo > hi. */
void tw__roll_split(int64_t lo, int64_t hi, int64_t *m0, int64_t *m1, int64_t edge[2][2]);

typedef struct tw__roll_ent {
    int64_t m, atom; /* atom 0: the value is absent */
    uint32_t dim;
    uint64_t n;
} tw__roll_ent;

typedef struct tw__roll_acc {
    tw__roll_ent *v;
    size_t n, cap;
} tw__roll_acc;

/* Appends one (minute, dim, atom) count; -1 out of memory. */
int tw__roll_add(tw__roll_acc *a, int64_t m, uint32_t dim, int64_t atom, uint64_t n);
/* Sorts by (hour, dim, atom, minute) and sums repeats. */
void tw__roll_coalesce(tw__roll_acc *a);
void tw__roll_free(tw__roll_acc *a);

/* One hour's entries (coalesced, all of the same hour) as a blob; tw_buf_error on failure. */
void tw__roll_encode(const tw__roll_ent *e, size_t n, tw_buf *out);
/* Appends the entries of hour h's blob to a; -1 when damaged, -2 out of memory. */
int tw__roll_decode(const void *blob, size_t len, int64_t h, tw__roll_acc *a);

/* Sums counts per (bucket, atom) in any order; take hands them over ordered by bucket, then atom. */
typedef struct tw__roll_agg {
    struct tw__roll_slot {
        int64_t bucket, atom;
        uint64_t n;
    } *slots;                /* n == 0: free */
    size_t cap, used;
} tw__roll_agg;

int tw__roll_agg_add(tw__roll_agg *g, int64_t bucket, int64_t atom, uint64_t n); /* -1 out of memory */
/* fn per (bucket, atom) until it returns nonzero (returned). Empties g. */
int tw__roll_agg_take(tw__roll_agg *g, int (*fn)(void *ud, int64_t bucket, int64_t atom, uint64_t n), void *ud);
void tw__roll_agg_free(tw__roll_agg *g);

#endif
