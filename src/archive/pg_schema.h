/*
 * archive/pg_schema.h: the PostgreSQL archive's tables, monthly partitions and retention (internal).
 *
 * Ownership: every function borrows the connection; nothing here keeps a pointer to it.
 *
 * Tables (created on first open; every node of a cluster may open the same database at once, so
 * creation runs under an advisory lock):
 *   tw_meta(key, value)                  schema version
 *   tw_dicts(id, data)                   the codec's trained dictionaries (shared by every node)
 *   tw_events(k, id, columns, body)      PARTITION BY RANGE (k), one partition per UTC month
 *   tw_post(b, k0, k1, data)             posting lists by term bucket (pg_post.h), PARTITION BY
 *                                        RANGE (k0), one partition per UTC month
 * k is backend.h's time-ordered key (second << 18 | sequence), so a month is a range of keys.
 * Retention drops whole months (DROP TABLE of both tables' partitions, no vacuum debt); only the
 * month that straddles the cut is trimmed with DELETE, so a prune removes exactly what SQLite's does.
 */
#ifndef TW_ARCHIVE_PG_SCHEMA_H
#define TW_ARCHIVE_PG_SCHEMA_H

#include <stdint.h>
#include <libpq-fe.h>

#include "trailwatch/error.h"

#define TW__PG_DAY_MS ((int64_t)86400000)

/* Runs one statement without parameters; fills err ("postgres: <what>: <server message>"). */
tw_status tw__pg_exec(PGconn *c, const char *sql, const char *what, tw_error *err);
/* Fills err from a failed result or connection (first line of the server's message). */
tw_status tw__pg_fail(PGconn *c, const PGresult *r, const char *what, tw_error *err);

/* Creates what is missing (idempotent, safe against other nodes doing the same) and checks the
 * version. readonly: creates nothing; TW_ENOTFOUND when there is no archive in the database. */
tw_status tw__pg_schema_init(PGconn *c, int readonly, tw_error *err);

/* pg_advisory_xact_lock key that serialises writers (key allocation and dedup) across nodes. */
#define TW__PG_WRITE_LOCK "8391163088165677431"
/* TW_ARCH_KEY_SEQ as SQL text */
#define TW__PG_KEY_SEQ_SQL "262144"

/* The partition period (a UTC calendar month) that holds time t: [*lo, *hi) in ms. */
void tw__pg_period_of(int64_t t, int64_t *lo, int64_t *hi);
/* Creates both tables' partitions of the period [lo_ms, hi_ms) when missing (one implicit
 * transaction with an advisory lock, so that two nodes do not race). */
tw_status tw__pg_partition_ensure(PGconn *c, int64_t lo_ms, int64_t hi_ms, tw_error *err);

/* Removes every event with key < cut: drops the months wholly before it, trims the month that
 * straddles it. *removed counts the events removed. */
tw_status tw__pg_prune(PGconn *c, int64_t cut, uint64_t *removed, tw_error *err);

#endif
