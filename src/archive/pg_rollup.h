/*
 * archive/pg_rollup.h: the counts rollup in the PostgreSQL archive (internal; rollup.h says what it
 * is). tw_rollup(m, dim, v, n): events of minute m whose dimension dim (0 name, 1 source, 2 account,
 * 3 region) is v ("" absent). Written by the batch's own transaction (under the writers' lock),
 * trimmed by the prune's; tw_meta's 'rollup' row says that the table holds every stored event (an
 * archive made before it had one gets it built from its events when first opened for writing).
 *
 * Ownership: every function borrows the connection.
 */
#ifndef TW_ARCHIVE_PG_ROLLUP_H
#define TW_ARCHIVE_PG_ROLLUP_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "archive/backend.h"
#include "common/buf.h"

/* Creates or completes the rollup when writable; *have: the rollup can answer counts. */
tw_status tw__pg_rollup_init(PGconn *c, int readonly, int *have, tw_error *err);
/* Adds the records whose keys[i] != -1 (in the caller's transaction, under the writers' lock). */
tw_status tw__pg_rollup_put(PGconn *c, const tw__arch_rec *recs, const int64_t *keys, size_t n, tw_error *err);
/* In the prune's transaction, after the events before cut are gone: drops their minutes, recounts
 * the cut's own. */
tw_status tw__pg_rollup_prune(PGconn *c, int64_t cut, tw_error *err);
/* Counts of keys lo..hi per step_ms bucket (a multiple of a minute) by dimension dim (-1: one
 * group ""), whole minutes from the rollup, the partial ones at the ends from the events; sql is
 * scratch. */
tw_status tw__pg_rollup_counts(PGconn *c, int64_t lo, int64_t hi, int64_t step_ms, int dim, tw_buf *sql,
                               tw__arch_count_fn cb, void *ud, tw_error *err);

#endif
