/*
 * archive/pg_post.h: the PostgreSQL archive's term index: posting lists grouped by bucket (internal).
 *
 * Ownership: a tw__pg_post owns its pair and key vectors and its scratch buffer; tw__pg_post_free
 * releases them.
 *
 * Why buckets: one index row per (term, event) (schema 1) made every insert a random probe into an
 * index many times the size of the server's cache (1,570 events/s at 3 million events). Here a
 * batch writes one row per (month, bucket of the term hash) holding every term of that bucket with
 * its keys: at most TW__PG_POST_BUCKETS rows a batch, and since a bucket's new rows always sort
 * after its old ones (k0 grows with time), the index is appended to at 4,096 places whose pages
 * stay cached. A query reads its term's bucket (one row per batch that touched it) and keeps the
 * term's own keys.
 *
 * Rows are merged (postgres.c, merge_postings): once the batches written since the last merge hold
 * TW_ARCHIVE_PG_MERGE_PAIRS pairs (or TW_ARCHIVE_PG_MERGE_BATCHES batches), their rows become one row
 * per (month, bucket), so a query reads one row per merge rather than one per batch (at 10 million
 * events, 1,220 scattered rows made a who take 19 ms of CPU).
 *
 * A row's data: per term, in hash order: the hash (4 bytes, big-endian), the byte length of its
 * keys (LEB128), then its keys: the first as k - k0, the others as deltas from the previous (LEB128,
 * ascending, > 0). k0/k1: the row's smallest and largest key; a row never spans two months (so
 * dropping a month's partition drops exactly its keys).
 */
#ifndef TW_ARCHIVE_PG_POST_H
#define TW_ARCHIVE_PG_POST_H

#include <stddef.h>
#include <stdint.h>

#include "archive/pg_copy.h"
#include "trailwatch/error.h"

#define TW__PG_POST_BUCKETS 4096
static inline int32_t tw__pg_post_bucket(int32_t h) { return (int32_t)((uint32_t)h >> 20); }

typedef struct tw__pg_pair {
    int64_t k;
    int32_t h;
    int32_t period; /* the key's month (its first day since 1970): rows never cross one */
} tw__pg_pair;    /* 16 bytes: a merge holds up to TW_ARCHIVE_PG_MERGE_PAIRS of them */

typedef struct tw__pg_post {
    tw__pg_pair *pairs;
    size_t npairs, pairs_cap;
    uint64_t rows_written; /* rows tw__pg_post_copy wrote, ever */
    int64_t *keys; /* decoded keys of the term asked for */
    size_t nkeys, keys_cap;
    tw_buf row;
} tw__pg_post;

void tw__pg_post_init(tw__pg_post *p);
void tw__pg_post_free(tw__pg_post *p);

/* Writing: add the batch's (term, key) pairs, then tw__pg_post_copy writes the rows
 * (b int4, k0 int8, k1 int8, data bytea) to out and forgets the pairs. */
tw_status tw__pg_post_add(tw__pg_post *p, int64_t period, int32_t h, int64_t k, tw_error *err);
tw_status tw__pg_post_copy(tw__pg_post *p, tw__pg_copy *out, tw_error *err);

/* Reading: tw__pg_post_start empties p->keys; tw__pg_post_decode appends the keys of term h within
 * [lo, hi] held by one row; tw__pg_post_sort orders them (ascending, or descending when desc).
 * A damaged row is TW_ECORRUPT. */
void tw__pg_post_start(tw__pg_post *p);
tw_status tw__pg_post_decode(tw__pg_post *p, int32_t h, int64_t k0, const unsigned char *data, size_t n, int64_t lo,
                             int64_t hi, tw_error *err);
void tw__pg_post_sort(tw__pg_post *p, int desc);

/* Merging: every (term, key) of one row, added as pairs (to be written again by tw__pg_post_copy). */
tw_status tw__pg_post_decode_all(tw__pg_post *p, int64_t k0, const unsigned char *data, size_t n, tw_error *err);

#endif
