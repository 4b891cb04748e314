/*
 * archive/pg_schema.h: the PostgreSQL archive's tables, daily partitions and retention (internal).
 *
 * Ownership: every function borrows the connection; nothing here keeps a pointer to it.
 *
 * Tables (created on first open; every node of a cluster may open the same database at once, so
 * creation runs under an advisory lock):
 *   tw_meta(key, value)                  schema version
 *   tw_dicts(id, data)                   the codec's trained dictionaries (shared by every node)
 *   tw_events(k, id, columns, body)      PARTITION BY RANGE (k), one partition per UTC day
 *   tw_terms(h, k)                       PARTITION BY RANGE (k), one partition per UTC day
 * k is backend.h's time-ordered key (second << 18 | sequence), so a day is a range of keys.
 * Retention drops whole days (DROP TABLE of both tables' partitions, no vacuum debt); only the
 * day that straddles the cut is trimmed with DELETE, so a prune removes exactly what SQLite's does.
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

/* The UTC day (ms at its start) that holds t. */
int64_t tw__pg_day_of(int64_t t);
/* Creates the partitions of the day starting at day_ms when missing (inside the caller's
 * transaction; takes a transaction-scoped advisory lock so that two nodes do not race). */
tw_status tw__pg_partition_ensure(PGconn *c, int64_t day_ms, tw_error *err);

/* Removes every event with key < cut: drops the days wholly before it, trims the day that
 * straddles it. *removed counts the events removed. */
tw_status tw__pg_prune(PGconn *c, int64_t cut, uint64_t *removed, tw_error *err);

#endif
