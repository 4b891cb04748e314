/*
 * archive/pg_schema.c: the PostgreSQL archive's schema, monthly partitions and retention.
 *
 * Why the layout is what it is:
 * - Events by key as SQLite's, and the term index as posting lists grouped by term bucket
 *   (pg_post.h: schema 2; schema 1's row per (term, event) capped inserts at 1,570 events/s at 3
 *   million events), both partitioned by key range, one partition per UTC calendar month: a
 *   query's time range touches only its months; retention drops months. Not days: a query without a time range (who) plans and probes every
 *   partition, and with 400 days kept that alone took over a second (measured, PostgreSQL 15).
 * - Indexes: the events' primary key (k), the posting rows' (b, k0) and their k0 (merges read a key
 *   range); nothing else, since every index costs insert speed (a few entries per batch here). Column filters (eventName, source, ...) apply to the rows a
 *   key range or a term selects, as SQLite's do.
 * - A unique index on a partitioned table must contain the partition key, so "one row per
 *   eventID" cannot be a constraint here. It is kept by the writers instead (postgres.c): they
 *   serialise on an advisory lock and look the batch's ids up (id within the event's second) first.
 * - Text columns are COLLATE "C": byte order and equality as SQLite's BINARY, whatever the
 *   database's locale, so counts group and sort alike in both backends.
 */
#include "archive/pg_schema.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/backend.h"
#include "archive/pg_rollup.h"
#include "common/err.h"

#define SCHEMA_VERSION 2 /* 2: tw_post (posting lists by bucket) replaces tw_terms */
/* pg_advisory_xact_lock key of trailwatch's DDL ("twarchiv" as an int64). */
#define DDL_LOCK "8391163088165677430"

static const char *const SCHEMA[] = {
    "CREATE TABLE IF NOT EXISTS tw_meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tw_dicts (id integer PRIMARY KEY, data bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tw_events ("
    " k bigint NOT NULL,"
    " id text COLLATE \"C\","
    " name text COLLATE \"C\","
    " src text COLLATE \"C\","
    " acct text COLLATE \"C\","
    " region text COLLATE \"C\","
    " dt text COLLATE \"C\","
    " err text COLLATE \"C\","
    " dict integer NOT NULL,"
    " raw integer NOT NULL,"
    " body bytea NOT NULL,"
    " PRIMARY KEY (k)"
    ") PARTITION BY RANGE (k)",
    ("CREATE TABLE IF NOT EXISTS tw_post (b integer NOT NULL, k0 bigint NOT NULL, k1 bigint NOT NULL,"
     " data bytea NOT NULL, PRIMARY KEY (b, k0)) PARTITION BY RANGE (k0)"),
    /* merging (postgres.c) reads and replaces the rows of a range of keys, whatever their bucket */
    "CREATE INDEX IF NOT EXISTS tw_post_k0 ON tw_post (k0)",
};

static void first_line(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    if (src) {
        while (src[n] && src[n] != '\n' && n + 1 < cap)
            n++;
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

tw_status tw__pg_fail(PGconn *c, const PGresult *r, const char *what, tw_error *err)
{
    char msg[300];
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    first_line(msg, sizeof msg, m ? m : PQerrorMessage(c));
    if (!msg[0])
        snprintf(msg, sizeof msg, "%s", PQstatus(c) == CONNECTION_BAD ? "connection lost" : "failed");
    return tw__err(err, TW_EDB, "postgres: %s: %s", what, msg);
}

tw_status tw__pg_exec(PGconn *c, const char *sql, const char *what, tw_error *err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    tw_status rc = TW_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = tw__pg_fail(c, r, what, err);
    PQclear(r);
    return rc;
}

static tw_status check_version(PGconn *c, tw_error *err)
{
    PGresult *r = PQexec(c, "SELECT value FROM tw_meta WHERE key = 'schema'");
    tw_status rc = TW_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        rc = tw__pg_fail(c, r, "reading the schema version", err);
    } else {
        long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        if (v != SCHEMA_VERSION)
            rc = tw__err(err, TW_EDB, "postgres: the archive's schema is version %ld, this trailwatch reads version %d",
                         v, SCHEMA_VERSION);
    }
    PQclear(r);
    return rc;
}

tw_status tw__pg_schema_init(PGconn *c, int readonly, tw_error *err)
{
    tw_status rc;
    PGresult *r = NULL;
    if (readonly) {
        r = PQexec(c, "SELECT to_regclass('tw_meta') IS NOT NULL AND to_regclass('tw_events') IS NOT NULL");
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            rc = tw__pg_fail(c, r, "opening", err);
        else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0)
            rc = tw__err(err, TW_ENOTFOUND, "postgres: no archive in this database yet");
        else
            rc = check_version(c, err);
        PQclear(r);
        return rc;
    }
    if ((rc = tw__pg_exec(c, "BEGIN", "schema", err)) != TW_OK)
        return rc;
    /* Quiet the server's NOTICEs ("relation already exists, skipping") for this transaction. */
    if ((rc = tw__pg_exec(c, "SET LOCAL client_min_messages = warning", "schema", err)) != TW_OK ||
        (rc = tw__pg_exec(c, "SELECT pg_advisory_xact_lock(" DDL_LOCK ")", "schema lock", err)) != TW_OK)
        goto out;
    for (size_t i = 0; i < sizeof SCHEMA / sizeof *SCHEMA; i++)
        if ((rc = tw__pg_exec(c, SCHEMA[i], "creating the schema", err)) != TW_OK)
            goto out;
    if ((rc = tw__pg_exec(c, "INSERT INTO tw_meta VALUES ('schema', '2') ON CONFLICT (key) DO NOTHING", "schema",
                          err)) != TW_OK ||
        (rc = check_version(c, err)) != TW_OK)
        goto out;
    rc = tw__pg_exec(c, "COMMIT", "schema", err);
out:
    PQclear(r);
    if (rc != TW_OK)
        PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}

void tw__pg_period_of(int64_t t, int64_t *lo, int64_t *hi)
{
    int64_t sec = t / 1000 - (t % 1000 < 0);
    time_t s = (time_t)sec;
    struct tm tm;
    if (gmtime_r(&s, &tm)) {
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        *lo = (int64_t)timegm(&tm) * 1000;
        tm.tm_mon += 1; /* timegm normalises December + 1 */
        *hi = (int64_t)timegm(&tm) * 1000;
        return;
    }
    /* beyond what the C library can date (parsed times never are): fixed 30-day periods */
    int64_t p = 30 * TW__PG_DAY_MS, q = t / p - (t % p < 0);
    *lo = q * p;
    *hi = *lo + p;
}

/* "202403" for months of years 1000..9999, else "n<days since 1970>" / "m<days before>". */
static void period_suffix(char *out, size_t cap, int64_t lo_ms)
{
    time_t s = (time_t)(lo_ms / 1000);
    struct tm tm;
    if (gmtime_r(&s, &tm) && tm.tm_year + 1900 >= 1000 && tm.tm_year + 1900 <= 9999)
        snprintf(out, cap, "%04d%02d", tm.tm_year + 1900, tm.tm_mon + 1);
    else if (lo_ms >= 0)
        snprintf(out, cap, "n%" PRId64, lo_ms / TW__PG_DAY_MS);
    else
        snprintf(out, cap, "m%" PRId64, -(lo_ms / TW__PG_DAY_MS));
}

tw_status tw__pg_partition_ensure(PGconn *c, int64_t lo_ms, int64_t hi_ms, tw_error *err)
{
    char sfx[32], sql[640];
    int64_t lo = tw__arch_key_lo(lo_ms), hi = tw__arch_key_lo(hi_ms);
    period_suffix(sfx, sizeof sfx, lo_ms);
    snprintf(sql, sizeof sql,
             "SET LOCAL client_min_messages = warning;"
             "SELECT pg_advisory_xact_lock(" DDL_LOCK ");"
             "CREATE TABLE IF NOT EXISTS tw_events_%s PARTITION OF tw_events"
             " FOR VALUES FROM (%" PRId64 ") TO (%" PRId64 ");"
             "CREATE TABLE IF NOT EXISTS tw_post_%s PARTITION OF tw_post"
             " FOR VALUES FROM (%" PRId64 ") TO (%" PRId64 ")",
             sfx, lo, hi, sfx, lo, hi);
    return tw__pg_exec(c, sql, "creating a month's partition", err);
}

/* Bounds from pg_get_expr(relpartbound): "FOR VALUES FROM ('1709251200000') TO ('1709337600000')". */
static int parse_bounds(const char *s, int64_t *lo, int64_t *hi)
{
    const char *f = strstr(s, "FROM ("), *t = strstr(s, "TO (");
    if (!f || !t)
        return 0;
    f += 6;
    t += 4;
    if (*f == '\'')
        f++;
    if (*t == '\'')
        t++;
    char *e1, *e2;
    long long a = strtoll(f, &e1, 10), b = strtoll(t, &e2, 10);
    if (e1 == f || e2 == t)
        return 0;
    *lo = a;
    *hi = b;
    return 1;
}

static tw_status count_rows(PGconn *c, const char *sql, uint64_t *n, tw_error *err)
{
    PGresult *r = PQexec(c, sql);
    tw_status rc = TW_OK;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        *n += strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    else if (PQresultStatus(r) == PGRES_COMMAND_OK)
        *n += strtoull(PQcmdTuples(r), NULL, 10);
    else
        rc = tw__pg_fail(c, r, "pruning", err);
    PQclear(r);
    return rc;
}

tw_status tw__pg_prune(PGconn *c, int64_t cut, uint64_t *removed, tw_error *err)
{
    tw_status rc;
    PGresult *r = NULL;
    char sql[512];
    *removed = 0;
    if ((rc = tw__pg_exec(c, "BEGIN", "pruning", err)) != TW_OK)
        return rc;
    if ((rc = tw__pg_exec(c, "SELECT pg_advisory_xact_lock(" DDL_LOCK ")", "pruning", err)) != TW_OK)
        goto out;
    r = PQexec(c, "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
                  " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'tw_events'::regclass");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = tw__pg_fail(c, r, "listing partitions", err);
        goto out;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        int64_t lo, hi;
        if (!parse_bounds(PQgetvalue(r, i, 1), &lo, &hi) || lo >= cut || strncmp(name, "tw_events_", 10) != 0 ||
            strlen(name) > 64)
            continue;
        if (hi <= cut) {
            /* A whole month before the cut: count it, drop both tables' partitions. */
            snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", name);
            if ((rc = count_rows(c, sql, removed, err)) != TW_OK)
                goto out;
            snprintf(sql, sizeof sql, "DROP TABLE \"%s\"; DROP TABLE IF EXISTS \"tw_post_%s\"", name, name + 10);
            if ((rc = tw__pg_exec(c, sql, "dropping a partition", err)) != TW_OK)
                goto out;
        } else {
            snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE k < %" PRId64, name, cut);
            if ((rc = count_rows(c, sql, removed, err)) != TW_OK)
                goto out;
            /* lists wholly before the cut; one straddling it keeps its earlier keys, whose events
             * are gone: reads skip keys without an event */
            snprintf(sql, sizeof sql, "DELETE FROM tw_post WHERE k0 >= %" PRId64 " AND k1 < %" PRId64, lo, cut);
            if ((rc = tw__pg_exec(c, sql, "pruning", err)) != TW_OK)
                goto out;
        }
    }
    if ((rc = tw__pg_rollup_prune(c, cut, err)) != TW_OK) /* in the same transaction: counts match events */
        goto out;
    rc = tw__pg_exec(c, "COMMIT", "pruning", err);
out:
    PQclear(r);
    if (rc != TW_OK)
        PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}
