/*
 * archive/sqlite_roll.h: the counts rollup in the SQLite archive (internal; rollup.h says what it
 * is). sqlite.c calls these inside its own transactions: a batch's counts are written with its
 * events, a prune recounts the minute it cuts, an archive of schema version 2 gets its rollup built
 * from its events once. Every function returns an SQLite result code (SQLITE_NOMEM when memory
 * ran out, SQLITE_CORRUPT for a damaged rollup row); sqlite.c turns it into a tw_error.
 *
 * Ownership: the handle borrows the connection and owns its statements and buffers.
 */
#ifndef TW_ARCHIVE_SQLITE_ROLL_H
#define TW_ARCHIVE_SQLITE_ROLL_H

#include <sqlite3.h>
#include <stdint.h>

#include "archive/backend.h"

/* h: the hour (rollup.h), c: its minutes' counts (one blob per hour, a few bytes per value seen) */
#define TW__SQROLL_TABLE "CREATE TABLE roll(h INTEGER PRIMARY KEY, c BLOB NOT NULL);"

typedef struct tw__sqroll tw__sqroll;

int tw__sqroll_open(sqlite3 *db, int writer, tw__sqroll **out);
void tw__sqroll_close(tw__sqroll *r);

/* One stored event: its key and the atom ids of name, source, account, region (0 absent). */
int tw__sqroll_note(tw__sqroll *r, int64_t key, const int64_t atoms[4]);
/* Adds the noted events to the rollup (in the caller's transaction) and forgets them. */
int tw__sqroll_write(tw__sqroll *r);
/* Forgets the noted events (the batch was rolled back). */
void tw__sqroll_discard(tw__sqroll *r);
/* Recounts the hours of keys lo..hi (whole hours around them) from the events table. */
int tw__sqroll_rebuild(tw__sqroll *r, int64_t lo, int64_t hi);

/* Counts of keys lo..hi per step_ms bucket (a multiple of a minute) and value of dimension dim (-1:
 * one group ""): whole minutes from the rollup, the partial minutes at the ends from the events. */
int tw__sqroll_counts(tw__sqroll *r, int64_t lo, int64_t hi, int64_t step_ms, int dim, tw__arch_count_fn cb,
                      void *ud);

#endif
