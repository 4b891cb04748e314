/*
 * archive/postgres.c: the shared archive: PostgreSQL (libpq), for several trailwatch nodes at once.
 *
 * Layout in pg_schema.c. What differs from sqlite.c, and why:
 * - Each event's body is its own zstd frame (with the shared trained dictionary), not a block of
 *   128: a row is fetched alone over the network and months are dropped whole, so no block may span
 *   rows that other rows still need. The ratio is lower than SQLite's blocks; docs/CLUSTER.md.
 * - Writes are one transaction per batch: binary COPY into the partitioned tables. Keys are
 *   allocated as SQLite allocates them (max(k) + 1 per second, in the batch's order), under an
 *   advisory lock that every writer of the database takes, so nodes never hand out the same key,
 *   and under that lock the batch's eventIDs are looked up (the stored id within the event's
 *   second, by the events' primary key; the term index is not needed for it): an event already archived by any node is dropped and counted in
 *   be->duplicates. tw_archive_add therefore does not ask the database per event (dedup_on_put).
 * - Terms are indexed as posting lists grouped by bucket (pg_post.h), one row per bucket and batch,
 *   so an insert costs a few index entries per batch rather than one per term and event.
 * - Reads page through the candidates by key (keyset pagination; with a term: its keys, decoded
 *   from the bucket's rows, fetched in growing chunks), so a caller that stops after a hundred rows
 *   does not make the server produce a million.
 * - A lost connection is re-established on the next call; a batch that failed on a lost
 *   connection is tried once more on a new one (the lookup under the lock makes that safe).
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/backend.h"
#include "archive/codec.h"
#include "archive/extract.h"
#include "archive/pg_copy.h"
#include "archive/pg_post.h"
#include "archive/pg_rollup.h"
#include "archive/pg_schema.h"
#include "common/buf.h"
#include "common/err.h"
#include "trailwatch/limits.h"

#define ZSTD_LEVEL 3
#define DAYS_MAX 4096
#define PAGE_FIRST 64
#define PAGE_MAX 4096

static const char *const col_names[TW_ARCH_NCOLS] = {"name", "src", "acct", "region", "dt", "err"};

typedef struct pg {
    tw__archive_backend base;
    PGconn *c;
    int readonly;
    tw__codec *codec;
    uint32_t dict;
    int64_t *days; /* periods (months, by their first ms) whose partitions exist (sorted) */
    size_t ndays, days_cap;
    tw__pg_copy ev, terms; /* terms: the posting rows' COPY */
    tw__pg_post post;
    /* batches written since this handle last merged posting rows: their pairs, count, key range */
    uint64_t merge_pairs, merge_rows;
    unsigned merge_batches;
    int64_t merge_lo, merge_hi;
    tw_buf packed, bodies, sql, arr[4];
    size_t *body_off;
    int64_t *keys;
    size_t batch_cap;
    int64_t *sec_lo, *sec_next; /* the batch's seconds (sorted) and their next free keys */
    size_t nsecs, secs_cap;
    tw__block blk;
    int rollup; /* the counts rollup is complete (pg_rollup.h) */
} pg;

/* ---- connection ---- */

static tw_status connect_db(pg *p, const char *dsn, tw_error *err)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {dsn, "trailwatch", "10", NULL};
    p->c = PQconnectdbParams(keys, vals, 1);
    if (!p->c)
        return tw__err(err, TW_ENOMEM, "postgres: out of memory");
    if (PQstatus(p->c) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password */
        char msg[300];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(p->c));
        msg[strcspn(msg, "\n")] = '\0';
        return tw__err(err, TW_EDB, "postgres: cannot connect to the archive database: %s", msg);
    }
    PQclear(PQexec(p->c, "SET client_min_messages = warning"));
    return TW_OK;
}

/* Before each call: a connection lost since the last one is re-established (libpq's PQreset keeps
 * the parameters). Temporary knowledge (known partitions) is dropped with it. */
static tw_status alive(pg *p, tw_error *err)
{
    if (PQstatus(p->c) == CONNECTION_OK)
        return TW_OK;
    PQreset(p->c);
    p->ndays = 0;
    if (PQstatus(p->c) != CONNECTION_OK)
        return tw__pg_fail(p->c, NULL, "reconnecting", err);
    PQclear(PQexec(p->c, "SET client_min_messages = warning"));
    return TW_OK;
}

static int64_t be64(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | u[i];
    return (int64_t)v;
}

static int32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (int32_t)((uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3]);
}

/* ---- dictionaries ---- */

static tw_status load_dicts(pg *p, tw_error *err)
{
    PGresult *r = PQexecParams(p->c, "SELECT id, data FROM tw_dicts ORDER BY id", 0, NULL, NULL, NULL, NULL, 1);
    tw_status s = TW_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s = tw__pg_fail(p->c, r, "reading dictionaries", err);
        goto out;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        uint32_t id = (uint32_t)be32(PQgetvalue(r, i, 0));
        if (!tw__codec_has_dict(p->codec, id) &&
            (s = tw__codec_load_dict(p->codec, id, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), err)))
            goto out;
        p->dict = id;
    }
out:
    PQclear(r);
    return s;
}

/* The first batch big enough trains the dictionary every node then uses (one node does it: the
 * others find it under the lock). */
static tw_status ensure_dict(pg *p, const tw__arch_rec *recs, size_t n, tw_error *err)
{
    tw_status s;
    void *dict = NULL;
    size_t dict_len = 0;
    const char **bodies = NULL;
    size_t *lens = NULL;
    PGresult *r = NULL;
    if ((s = tw__pg_exec(p->c, "BEGIN", "training the dictionary", err)))
        return s;
    if ((s = tw__pg_exec(p->c, "SELECT pg_advisory_xact_lock(" TW__PG_WRITE_LOCK ")", "training the dictionary",
                         err)) ||
        (s = load_dicts(p, err)) || p->dict)
        goto out;
    bodies = malloc(n * sizeof *bodies);
    lens = malloc(n * sizeof *lens);
    if (!bodies || !lens) {
        s = tw__err(err, TW_ENOMEM, "archive: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        bodies[i] = recs[i].body;
        lens[i] = recs[i].body_len;
    }
    tw_error terr;
    if (tw__codec_train(bodies, lens, n, &dict, &dict_len, &terr))
        goto out; /* nothing to learn: bodies go without a dictionary */
    const char *vals[1] = {dict};
    int vlen[1] = {(int)dict_len}, fmt[1] = {1};
    r = PQexecParams(p->c, "INSERT INTO tw_dicts SELECT coalesce(max(id), 0) + 1, $1 FROM tw_dicts RETURNING id", 1,
                     NULL, vals, vlen, fmt, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        s = tw__pg_fail(p->c, r, "storing the compression dictionary", err);
        goto out;
    }
    uint32_t id = (uint32_t)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
    if ((s = tw__codec_load_dict(p->codec, id, dict, dict_len, err)))
        goto out;
    p->dict = id;
out:
    PQclear(r);
    if (!s)
        s = tw__pg_exec(p->c, "COMMIT", "training the dictionary", err);
    else
        PQclear(PQexec(p->c, "ROLLBACK"));
    free(bodies);
    free(lens);
    free(dict);
    return s;
}

/* ---- writing ---- */

static int day_known(const pg *p, int64_t day, size_t *at)
{
    size_t lo = 0, hi = p->ndays;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->days[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return lo < p->ndays && p->days[lo] == day;
}

static tw_status ensure_days(pg *p, const tw__arch_rec *recs, size_t n, tw_error *err)
{
    for (size_t i = 0; i < n; i++) {
        int64_t day, end;
        size_t at;
        tw__pg_period_of(recs[i].time_ms, &day, &end);
        if (day_known(p, day, &at))
            continue;
        tw_status s = tw__pg_partition_ensure(p->c, day, end, err);
        if (s)
            return s;
        if (p->ndays == DAYS_MAX)
            p->ndays = at = 0;
        if (p->ndays == p->days_cap) {
            size_t cap = p->days_cap ? p->days_cap * 2 : 64;
            int64_t *d = realloc(p->days, cap * sizeof *d);
            if (!d)
                return tw__err(err, TW_ENOMEM, "archive: out of memory");
            p->days = d;
            p->days_cap = cap;
        }
        memmove(p->days + at + 1, p->days + at, (p->ndays - at) * sizeof *p->days);
        p->days[at] = day;
        p->ndays++;
    }
    return TW_OK;
}

static tw_status grow_batch(pg *p, size_t n, tw_error *err)
{
    if (n <= p->batch_cap)
        return TW_OK;
    size_t *o = realloc(p->body_off, (n + 1) * sizeof *o);
    if (o)
        p->body_off = o;
    int64_t *k = realloc(p->keys, n * sizeof *k);
    if (k)
        p->keys = k;
    if (!o || !k)
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    p->batch_cap = n;
    return TW_OK;
}

/* Compresses every body (before the lock: nothing here depends on other writers). */
static tw_status pack_bodies(pg *p, const tw__arch_rec *recs, size_t n, tw_error *err)
{
    tw_buf_reset(&p->bodies);
    for (size_t i = 0; i < n; i++) {
        size_t raw;
        tw_status s = tw__codec_pack(p->codec, p->dict, &recs[i].body, &recs[i].body_len, 1, &p->packed, &raw, err);
        if (s)
            return s;
        p->body_off[i] = p->bodies.len;
        if (tw__buf_append(&p->bodies, p->packed.data, p->packed.len))
            return tw__err(err, TW_ENOMEM, "archive: out of memory");
    }
    p->body_off[n] = p->bodies.len;
    return TW_OK;
}

static size_t second_of(const pg *p, int64_t want)
{
    size_t a = 0, b = p->nsecs;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (p->sec_lo[mid] < want)
            a = mid + 1;
        else
            b = mid;
    }
    return a;
}

/* Under the lock: keys[i] = -1 for records already archived (by any node): an event with the same
 * id within the same second (a repeat has the same eventTime). LATERAL .. LIMIT 1 makes it one range
 * probe of the events' primary key per event (the partition is chosen at run time), whatever the
 * planner thinks of the table sizes; a hash join would read whole partitions. */
static tw_status find_stored(pg *p, const tw__arch_rec *recs, size_t n, uint64_t *dups, tw_error *err)
{
    tw_buf *ids = &p->arr[1], *lo = &p->arr[2], *ix = &p->arr[3];
    size_t m = 0;
    for (int i = 1; i < 4; i++) {
        tw_buf_reset(&p->arr[i]);
        tw__buf_putc(&p->arr[i], '{');
    }
    for (size_t i = 0; i < n; i++) {
        p->keys[i] = 0;
        if (!*recs[i].id)
            continue;
        int64_t lo_k = tw__arch_key_lo(recs[i].time_ms);
        size_t sec = second_of(p, lo_k);
        if (sec < p->nsecs && p->sec_lo[sec] == lo_k && p->sec_next[sec] == lo_k)
            continue; /* nothing stored in its second yet */
        const char *sep = m++ ? "," : "";
        tw__buf_puts(ids, sep);
        tw__pg_array_text(ids, recs[i].id);
        tw__buf_printf(lo, "%s%" PRId64, sep, lo_k);
        tw__buf_printf(ix, "%s%zu", sep, i);
    }
    for (int i = 1; i < 4; i++)
        if (tw__buf_putc(&p->arr[i], '}'))
            return tw__err(err, TW_ENOMEM, "archive: out of memory");
    if (!m)
        return TW_OK;
    const char *vals[3] = {ids->data, lo->data, ix->data};
    PGresult *r = PQexecParams(p->c,
                               "SELECT b.i FROM unnest($1::text[], $2::bigint[], $3::int[]) AS b(id, lo, i),"
                               " LATERAL (SELECT 1 FROM tw_events e WHERE e.k >= b.lo AND e.k < b.lo + "
                               TW__PG_KEY_SEQ_SQL " AND e.id = b.id LIMIT 1) x",
                               3, NULL, vals, NULL, NULL, 0);
    tw_status s = TW_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s = tw__pg_fail(p->c, r, "looking up the batch's events", err);
    } else {
        for (int t = 0; t < PQntuples(r); t++) {
            size_t i = strtoull(PQgetvalue(r, t, 0), NULL, 10);
            if (i < n && p->keys[i] != -1) {
                p->keys[i] = -1;
                (*dups)++;
            }
        }
    }
    PQclear(r);
    return s;
}

/* Under the lock: the next free key of each second of the batch (max(k) + 1, or its first key). */
static tw_status second_heads(pg *p, const tw__arch_rec *recs, size_t n, tw_error *err)
{
    tw_buf *secs = &p->arr[0];
    tw_buf_reset(secs);
    tw__buf_putc(secs, '{');
    for (size_t i = 0; i < n; i++)
        tw__buf_printf(secs, "%s%" PRId64, i ? "," : "", tw__arch_key_lo(recs[i].time_ms));
    if (tw__buf_putc(secs, '}'))
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    const char *vals[1] = {secs->data};
    PGresult *r = PQexecParams(p->c,
                               "SELECT s.lo, (SELECT max(k) FROM tw_events WHERE k >= s.lo AND k < s.lo + "
                               TW__PG_KEY_SEQ_SQL ") FROM (SELECT DISTINCT unnest($1::bigint[]) AS lo) s ORDER BY 1",
                               1, NULL, vals, NULL, NULL, 0);
    tw_status s = TW_OK;
    size_t ns = (size_t)PQntuples(r);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s = tw__pg_fail(p->c, r, "allocating keys", err);
        goto out;
    }
    if (ns > p->secs_cap) {
        int64_t *lo = realloc(p->sec_lo, ns * sizeof *lo);
        if (lo)
            p->sec_lo = lo;
        int64_t *nx = realloc(p->sec_next, ns * sizeof *nx);
        if (nx)
            p->sec_next = nx;
        if (!lo || !nx) {
            s = tw__err(err, TW_ENOMEM, "archive: out of memory");
            goto out;
        }
        p->secs_cap = ns;
    }
    p->nsecs = ns;
    for (size_t t = 0; t < ns; t++) {
        p->sec_lo[t] = strtoll(PQgetvalue(r, (int)t, 0), NULL, 10);
        /* a second with nothing stored yet: its first key, and nothing in it can be a repeat */
        p->sec_next[t] = PQgetisnull(r, (int)t, 1) ? p->sec_lo[t] : strtoll(PQgetvalue(r, (int)t, 1), NULL, 10) + 1;
    }
out:
    PQclear(r);
    return s;
}

/* Keys for the records that are not repeats, in the batch's order within each second. */
static tw_status assign_keys(pg *p, const tw__arch_rec *recs, size_t n, tw_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (p->keys[i] == -1)
            continue;
        int64_t want = tw__arch_key_lo(recs[i].time_ms);
        size_t a = second_of(p, want);
        if (a >= p->nsecs || p->sec_lo[a] != want)
            return tw__err(err, TW_EDB, "postgres: allocating keys: a second is missing from the answer");
        if (p->sec_next[a] >= want + TW_ARCH_KEY_SEQ)
            return tw__err(err, TW_ELIMIT, "archive: more than %lld events in one second (%lld)", TW_ARCH_KEY_SEQ,
                           (long long)(recs[i].time_ms / 1000));
        p->keys[i] = p->sec_next[a]++;
    }
    return TW_OK;
}

static tw_status copy_in(pg *p, const char *sql, tw__pg_copy *cp, tw_error *err)
{
    const char *data;
    size_t len;
    tw_status s = tw__pg_copy_finish(cp, &data, &len);
    if (s)
        return tw__err(err, s, "postgres: a batch is larger than %zu bytes", (size_t)TW_ARCHIVE_PG_BATCH_BYTES);
    PGresult *r = PQexec(p->c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        s = tw__pg_fail(p->c, r, "storing events", err);
        PQclear(r);
        return s;
    }
    PQclear(r);
    for (size_t off = 0; off < len;) {
        size_t k = len - off < (1u << 20) ? len - off : (1u << 20);
        if (PQputCopyData(p->c, data + off, (int)k) != 1)
            break;
        off += k;
    }
    if (PQputCopyEnd(p->c, NULL) != 1)
        return tw__pg_fail(p->c, NULL, "storing events", err);
    while ((r = PQgetResult(p->c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !s)
            s = tw__pg_fail(p->c, r, "storing events", err);
        PQclear(r);
    }
    return s;
}

static void copy_text(tw__pg_copy *c, const char *s) { tw__pg_copy_text(c, *s ? s : NULL, strlen(s)); }

static tw_status write_batch(pg *p, const tw__arch_rec *recs, size_t n, uint64_t *dups, tw_error *err)
{
    tw_status s;
    if ((s = alive(p, err)))
        return s;
    if (!p->dict && n >= TW_ARCH_DICT_MIN_EVENTS && (s = ensure_dict(p, recs, n, err)))
        return s;
    if ((s = ensure_days(p, recs, n, err)))
        return s;
    if ((s = pack_bodies(p, recs, n, err)))
        return s;
    if ((s = tw__pg_exec(p->c, "BEGIN", "storing events", err)))
        return s;
    *dups = 0;
    /* Days filled since the last ANALYZE look empty to the planner, which then scans them whole
     * for each probe: the lookups below must use the indexes, whatever the statistics say. */
    if ((s = tw__pg_exec(p->c, "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off", "storing events",
                         err)) ||
        (s = tw__pg_exec(p->c, "SELECT pg_advisory_xact_lock(" TW__PG_WRITE_LOCK ")", "storing events", err)) ||
        (s = second_heads(p, recs, n, err)))
        goto fail;
    if ((s = find_stored(p, recs, n, dups, err)))
        goto fail;
    if ((s = assign_keys(p, recs, n, err)))
        goto fail;
    tw__pg_copy_reset(&p->ev);
    tw__pg_copy_reset(&p->terms);
    p->post.npairs = 0;
    int64_t sec = INT64_MIN, period = 0;
    for (size_t i = 0; i < n; i++) {
        const tw__arch_rec *r = &recs[i];
        if (p->keys[i] == -1)
            continue;
        tw__pg_copy_row(&p->ev, 11);
        tw__pg_copy_int8(&p->ev, p->keys[i]);
        copy_text(&p->ev, recs[i].id);
        copy_text(&p->ev, r->event_name);
        copy_text(&p->ev, r->source);
        copy_text(&p->ev, r->account);
        copy_text(&p->ev, r->region);
        copy_text(&p->ev, r->detail_type);
        copy_text(&p->ev, r->error_code);
        tw__pg_copy_int4(&p->ev, (int32_t)p->dict);
        tw__pg_copy_int4(&p->ev, (int32_t)r->body_len);
        tw__pg_copy_bytea(&p->ev, p->bodies.data + p->body_off[i], p->body_off[i + 1] - p->body_off[i]);
        if (tw__arch_key_lo(r->time_ms) != sec) {
            int64_t end;
            sec = tw__arch_key_lo(r->time_ms);
            tw__pg_period_of(r->time_ms, &period, &end);
        }
        for (size_t t = 0; t < r->nterms; t++)
            if ((s = tw__pg_post_add(&p->post, period, r->terms[t], p->keys[i], err)))
                goto fail;
    }
    size_t npairs = p->post.npairs;
    uint64_t rows0 = p->post.rows_written;
    if ((s = tw__pg_post_copy(&p->post, &p->terms, err)))
        goto fail;
    if ((s = copy_in(p, "COPY tw_events FROM STDIN (FORMAT binary)", &p->ev, err)))
        goto fail;
    if ((s = copy_in(p, "COPY tw_post FROM STDIN (FORMAT binary)", &p->terms, err)))
        goto fail;
    if ((s = tw__pg_rollup_put(p->c, recs, p->keys, n, err)))
        goto fail;
    if ((s = tw__pg_exec(p->c, "COMMIT", "committing events", err)))
        return s;
    for (size_t i = 0; i < n; i++) {
        if (p->keys[i] == -1)
            continue;
        if (!p->merge_batches && !p->merge_pairs)
            p->merge_lo = p->merge_hi = p->keys[i];
        if (p->keys[i] < p->merge_lo)
            p->merge_lo = p->keys[i];
        if (p->keys[i] > p->merge_hi)
            p->merge_hi = p->keys[i];
    }
    if (npairs) {
        p->merge_pairs += npairs;
        p->merge_rows += p->post.rows_written - rows0;
        p->merge_batches++;
    }
    return TW_OK;
fail:
    PQclear(PQexec(p->c, "ROLLBACK"));
    return s;
}

/* The posting rows whose k0 lies in [lo, hi] become one row per (month, bucket) (pg_post.h): its own
 * transaction under the write lock, so no writer adds rows meanwhile; readers see the rows before
 * or after. A failure leaves the rows as they were, which are as correct, only more. */
static tw_status merge_postings(pg *p, int64_t lo, int64_t hi, tw_error *err)
{
    char lo_s[24], hi_s[24];
    snprintf(lo_s, sizeof lo_s, "%" PRId64, lo);
    snprintf(hi_s, sizeof hi_s, "%" PRId64, hi);
    const char *vals[2] = {lo_s, hi_s};
    PGresult *r = NULL;
    tw_status s;
    if ((s = tw__pg_exec(p->c, "BEGIN", "merging the index", err)))
        return s;
    if ((s = tw__pg_exec(p->c, "SELECT pg_advisory_xact_lock(" TW__PG_WRITE_LOCK ")", "merging the index", err)))
        goto out;
    /* Events archived out of time order (a backfill beside live events) make the range hold far more
     * than this handle wrote: then its rows stay as they are, rather than hold the range in memory.
     * Counted with a LIMIT, so the check costs no more than the merge would. */
    char cap_s[24];
    snprintf(cap_s, sizeof cap_s, "%" PRIu64, 2 * p->merge_rows + 2 * TW__PG_POST_BUCKETS);
    const char *cvals[3] = {lo_s, hi_s, cap_s};
    r = PQexecParams(p->c, "SELECT count(*), coalesce(sum(octet_length(data)), 0) FROM (SELECT data FROM tw_post"
                           " WHERE k0 BETWEEN $1 AND $2 LIMIT $3::bigint + 1) x", 3, NULL, cvals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s = tw__pg_fail(p->c, r, "merging the index", err);
        goto out;
    }
    if (strtoull(PQgetvalue(r, 0, 0), NULL, 10) > strtoull(cap_s, NULL, 10) ||
        strtoull(PQgetvalue(r, 0, 1), NULL, 10) > TW_ARCHIVE_PG_MERGE_BYTES)
        goto out; /* nothing changed: COMMIT */
    PQclear(r);
    r = PQexecParams(p->c, "SELECT k0, data FROM tw_post WHERE k0 BETWEEN $1 AND $2", 2, NULL, vals, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s = tw__pg_fail(p->c, r, "merging the index", err);
        goto out;
    }
    p->post.npairs = 0;
    for (int i = 0; i < PQntuples(r) && !s; i++)
        s = tw__pg_post_decode_all(&p->post, be64(PQgetvalue(r, i, 0)), (const unsigned char *)PQgetvalue(r, i, 1),
                                   (size_t)PQgetlength(r, i, 1), err);
    PQclear(r);
    r = NULL;
    if (s)
        goto out;
    r = PQexecParams(p->c, "DELETE FROM tw_post WHERE k0 BETWEEN $1 AND $2", 2, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        s = tw__pg_fail(p->c, r, "merging the index", err);
        goto out;
    }
    tw__pg_copy_reset(&p->terms);
    if ((s = tw__pg_post_copy(&p->post, &p->terms, err)) ||
        (s = copy_in(p, "COPY tw_post FROM STDIN (FORMAT binary)", &p->terms, err)))
        goto out;
out:
    PQclear(r);
    p->post.npairs = 0;
    if (!s)
        return tw__pg_exec(p->c, "COMMIT", "merging the index", err);
    PQclear(PQexec(p->c, "ROLLBACK"));
    return s;
}

static tw_status pg_put_batch(tw__archive_backend *b, const tw__arch_rec *recs, size_t n, tw_error *err)
{
    pg *p = (pg *)b;
    if (p->readonly)
        return tw__err(err, TW_EINVAL, "postgres: the archive is open read-only");
    if (!n)
        return TW_OK;
    tw_status s;
    uint64_t dups = 0;
    if ((s = grow_batch(p, n, err)))
        return s;
    s = write_batch(p, recs, n, &dups, err);
    if (s == TW_EDB && PQstatus(p->c) != CONNECTION_OK) {
        /* the connection went away mid-batch: once more on a new one */
        tw_error again;
        if (alive(p, &again) == TW_OK && (s = write_batch(p, recs, n, &dups, err)) == TW_OK)
            tw_error_clear(err);
    } else if (s == TW_EDB) {
        /* e.g. a month's partition dropped by another node's prune: forget what we knew */
        p->ndays = 0;
    }
    if (!s)
        p->base.duplicates += dups;
    if (!s && (p->merge_pairs >= TW_ARCHIVE_PG_MERGE_PAIRS || p->merge_batches >= TW_ARCHIVE_PG_MERGE_BATCHES)) {
        /* the batches are committed whatever the merge does: a failed merge is tried with the next */
        tw_error merr;
        if (merge_postings(p, p->merge_lo, p->merge_hi, &merr) == TW_OK)
            p->merge_pairs = p->merge_rows = p->merge_batches = 0;
    }
    return s;
}

/* ---- reading ---- */

static void key_range(const tw__arch_plan *p, int64_t *lo, int64_t *hi)
{
    *lo = p->from_ms ? tw__arch_key_lo(p->from_ms) : INT64_MIN;
    *hi = p->to_ms ? tw__arch_key_lo(p->to_ms) + TW_ARCH_KEY_SEQ - 1 : INT64_MAX;
    if (p->has_after) {
        if (p->oldest_first && p->after_key + 1 > *lo)
            *lo = p->after_key + 1;
        if (!p->oldest_first && p->after_key - 1 < *hi)
            *hi = p->after_key - 1;
    }
}

/* " AND e.name IN ($4,$5)" per constrained column; params appended to vals from *np on. *none when a
 * constrained column allows only "" (stored as NULL: nothing can match, as in SQLite). */
static void col_filters(const tw__arch_plan *plan, tw_buf *sql, const char **vals, int *np, int *none)
{
    *none = 0;
    for (int c = 0; c < TW_ARCH_NCOLS; c++) {
        if (!plan->ncols[c])
            continue;
        size_t found = 0;
        for (size_t i = 0; i < plan->ncols[c] && i < TW_ARCH_PLAN_VALUES; i++) {
            const char *v = plan->cols[c][i];
            if (!v || !*v)
                continue;
            if (found++)
                tw__buf_printf(sql, ",$%d", *np + 1);
            else
                tw__buf_printf(sql, " AND e.%s IN ($%d", col_names[c], *np + 1);
            vals[(*np)++] = v;
        }
        if (!found)
            *none = 1;
        else
            tw__buf_putc(sql, ')');
    }
}

static tw_status body_of(pg *p, const PGresult *r, int row, const char **body, size_t *len, tw_error *err)
{
    uint32_t dict = (uint32_t)be32(PQgetvalue(r, row, 1));
    tw_status s;
    if (dict && !tw__codec_has_dict(p->codec, dict) && (s = load_dicts(p, err)))
        return s;
    if ((s = tw__codec_unpack(p->codec, dict, PQgetvalue(r, row, 2), (size_t)PQgetlength(r, row, 2), &p->blk, err)))
        return tw__err_prefix(err, "postgres: event %" PRId64, be64(PQgetvalue(r, row, 0)));
    return tw__block_body(&p->blk, 0, body, len, err);
}

/* Calls cb for one page of rows (binary: k, dict, body); *last = the key of the last row given,
 * *stop when cb asked to stop. */
static tw_status give_rows(pg *p, PGresult *r, tw__arch_cand_fn cb, void *ud, int64_t *last, int *stop, tw_error *err)
{
    tw_status s;
    for (int i = 0; i < PQntuples(r) && !*stop; i++) {
        const char *body;
        size_t len;
        int64_t key = be64(PQgetvalue(r, i, 0));
        if ((s = body_of(p, r, i, &body, &len, err)))
            return s;
        int c = cb(ud, key, body, len);
        if (c < 0)
            return err && err->code ? err->code : TW_EINVAL;
        *stop = c > 0;
        *last = key;
    }
    return TW_OK;
}

/* A term's events: the keys from its bucket's posting rows, then the events by key in growing
 * chunks (a key whose event was pruned, or that the columns rule out, gives no row). */
static tw_status find_term(pg *p, const tw__arch_plan *plan, tw__arch_cand_fn cb, void *ud, tw_error *err)
{
    int64_t lo, hi, mlo = INT64_MIN;
    key_range(plan, &lo, &hi);
    if (lo > hi)
        return TW_OK;
    if (lo != INT64_MIN) {
        /* a row lies within one month: one that reaches lo starts in lo's month or later */
        int64_t pl, ph;
        tw__pg_period_of(tw__arch_key_time(lo), &pl, &ph);
        mlo = tw__arch_key_lo(pl);
    }
    char b_s[16], lo_s[24], hi_s[24], mlo_s[24];
    snprintf(b_s, sizeof b_s, "%" PRId32, tw__pg_post_bucket(plan->term));
    snprintf(lo_s, sizeof lo_s, "%" PRId64, lo);
    snprintf(hi_s, sizeof hi_s, "%" PRId64, hi);
    snprintf(mlo_s, sizeof mlo_s, "%" PRId64, mlo);
    const char *pv[4] = {b_s, mlo_s, hi_s, lo_s};
    PGresult *r = PQexecParams(p->c,
                               "SELECT k0, data FROM tw_post WHERE b = $1 AND k0 BETWEEN $2 AND $3 AND k1 >= $4"
                               " ORDER BY k0",
                               4, NULL, pv, NULL, NULL, 1);
    tw_status s = TW_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s = tw__pg_fail(p->c, r, "reading the index", err);
        PQclear(r);
        return s;
    }
    tw__pg_post_start(&p->post);
    for (int i = 0; i < PQntuples(r) && !s; i++)
        s = tw__pg_post_decode(&p->post, plan->term, be64(PQgetvalue(r, i, 0)),
                               (const unsigned char *)PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), lo, hi, err);
    PQclear(r);
    if (s || !p->post.nkeys)
        return s;
    tw__pg_post_sort(&p->post, !plan->oldest_first);

    const char *vals[1 + TW_ARCH_NCOLS * TW_ARCH_PLAN_VALUES];
    int np = 1, none;
    tw_buf *sql = &p->sql, *arr = &p->arr[0];
    tw_buf_reset(sql);
    tw__buf_puts(sql, "SELECT e.k, e.dict, e.body FROM tw_events e WHERE e.k = ANY($1::bigint[])");
    col_filters(plan, sql, vals, &np, &none);
    if (none)
        return TW_OK;
    tw__buf_printf(sql, " ORDER BY e.k %s", plan->oldest_first ? "ASC" : "DESC");
    if (tw_buf_error(sql))
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    size_t page = PAGE_FIRST;
    int stop = 0;
    for (size_t at = 0; at < p->post.nkeys && !stop;) {
        size_t end = p->post.nkeys - at < page ? p->post.nkeys : at + page;
        tw_buf_reset(arr);
        tw__buf_putc(arr, '{');
        for (size_t i = at; i < end; i++)
            tw__buf_printf(arr, "%s%" PRId64, i > at ? "," : "", p->post.keys[i]);
        if (tw__buf_putc(arr, '}'))
            return tw__err(err, TW_ENOMEM, "archive: out of memory");
        vals[0] = arr->data;
        r = PQexecParams(p->c, sql->data, np, NULL, vals, NULL, NULL, 1);
        int64_t last = 0;
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            s = tw__pg_fail(p->c, r, "querying", err);
        else
            s = give_rows(p, r, cb, ud, &last, &stop, err);
        PQclear(r);
        if (s)
            return s;
        at = end;
        if (page < PAGE_MAX)
            page *= 4;
    }
    return TW_OK;
}

static tw_status pg_find(tw__archive_backend *b, const tw__arch_plan *plan, tw__arch_cand_fn cb, void *ud,
                         tw_error *err)
{
    pg *p = (pg *)b;
    const char *vals[3 + TW_ARCH_NCOLS * TW_ARCH_PLAN_VALUES];
    char lo_s[24], hi_s[24], lim_s[16];
    int np = 3, none;
    tw_status s;
    if ((s = alive(p, err)))
        return s;
    if (plan->has_term)
        return find_term(p, plan, cb, ud, err);
    tw_buf *sql = &p->sql;
    tw_buf_reset(sql);
    tw__buf_puts(sql, "SELECT e.k, e.dict, e.body FROM tw_events e WHERE e.k BETWEEN $1 AND $2");
    col_filters(plan, sql, vals, &np, &none);
    if (none)
        return TW_OK;
    tw__buf_printf(sql, " ORDER BY e.k %s LIMIT $3", plan->oldest_first ? "ASC" : "DESC");
    if (tw_buf_error(sql))
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    int64_t lo, hi;
    key_range(plan, &lo, &hi);
    int page = PAGE_FIRST;
    while (lo <= hi) {
        snprintf(lo_s, sizeof lo_s, "%" PRId64, lo);
        snprintf(hi_s, sizeof hi_s, "%" PRId64, hi);
        snprintf(lim_s, sizeof lim_s, "%d", page);
        vals[0] = lo_s;
        vals[1] = hi_s;
        vals[2] = lim_s;
        PGresult *r = PQexecParams(p->c, sql->data, np, NULL, vals, NULL, NULL, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            s = tw__pg_fail(p->c, r, "querying", err);
            PQclear(r);
            return s;
        }
        int rows = PQntuples(r), stop = 0;
        int64_t last = 0;
        s = give_rows(p, r, cb, ud, &last, &stop, err);
        PQclear(r);
        if (s)
            return s;
        if (stop || rows < page)
            break;
        if (plan->oldest_first)
            lo = last + 1;
        else
            hi = last - 1;
        if (page < PAGE_MAX)
            page *= 4;
    }
    return TW_OK;
}

static tw_status pg_counts(tw__archive_backend *b, const tw__arch_plan *plan, int64_t step_ms, int group_col,
                           tw__arch_count_fn cb, void *ud, tw_error *err)
{
    pg *p = (pg *)b;
    const char *vals[3 + TW_ARCH_NCOLS * TW_ARCH_PLAN_VALUES];
    char lo_s[24], hi_s[24];
    int np = 2, none;
    tw_status s;
    if ((s = alive(p, err)))
        return s;
    int cols = 0;
    for (int c = 0; c < TW_ARCH_NCOLS; c++)
        cols |= plan->ncols[c] != 0;
    if (p->rollup && !cols && step_ms % 60000 == 0 && group_col < 4) {
        int64_t lo, hi;
        key_range(plan, &lo, &hi);
        return tw__pg_rollup_counts(p->c, lo, hi, step_ms, group_col, &p->sql, cb, ud, err);
    }
    tw_buf *sql = &p->sql;
    tw_buf_reset(sql);
    tw__buf_printf(sql,
                  "SELECT ((((e.k >> 18) + %lld) * 1000) / %lld) * %lld AS bucket, %s%s%s, count(*) FROM tw_events e"
                  " WHERE e.k BETWEEN $1 AND $2",
                  TW_ARCH_KEY_EPOCH, (long long)step_ms, (long long)step_ms, group_col < 0 ? "''" : "coalesce(e.",
                  group_col < 0 ? "" : col_names[group_col], group_col < 0 ? "" : ", '')");
    col_filters(plan, sql, vals, &np, &none);
    if (none)
        return TW_OK;
    tw__buf_puts(sql, " GROUP BY 1, 2 ORDER BY 1, 2");
    if (tw_buf_error(sql))
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    int64_t lo, hi;
    key_range(plan, &lo, &hi);
    snprintf(lo_s, sizeof lo_s, "%" PRId64, lo);
    snprintf(hi_s, sizeof hi_s, "%" PRId64, hi);
    vals[0] = lo_s;
    vals[1] = hi_s;
    PGresult *r = PQexecParams(p->c, sql->data, np, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s = tw__pg_fail(p->c, r, "counting", err);
    } else {
        for (int i = 0; i < PQntuples(r); i++)
            if (cb(ud, strtoll(PQgetvalue(r, i, 0), NULL, 10), PQgetvalue(r, i, 1),
                   strtoull(PQgetvalue(r, i, 2), NULL, 10)))
                break;
    }
    PQclear(r);
    return s;
}

static tw_status pg_stats(tw__archive_backend *b, tw_archive_stats *o, tw_error *err)
{
    pg *p = (pg *)b;
    memset(o, 0, sizeof *o);
    tw_status s;
    if ((s = alive(p, err)))
        return s;
    PGresult *r = PQexec(p->c, "SELECT count(*), min(k), max(k), coalesce(sum(raw), 0), coalesce(sum(octet_length(body)), 0),"
                               " (SELECT count(*) FROM tw_dicts),"
                               " (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('tw_events'))"
                               " + (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('tw_post'))"
                               " + coalesce(pg_total_relation_size(to_regclass('tw_rollup')), 0)"
                               " FROM tw_events");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        s = tw__pg_fail(p->c, r, "reading statistics", err);
    } else {
        o->events = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        if (o->events) {
            o->first_ms = tw__arch_key_time(strtoll(PQgetvalue(r, 0, 1), NULL, 10));
            o->last_ms = tw__arch_key_time(strtoll(PQgetvalue(r, 0, 2), NULL, 10));
        }
        o->raw_bytes = strtoull(PQgetvalue(r, 0, 3), NULL, 10);
        o->stored_bytes = strtoull(PQgetvalue(r, 0, 4), NULL, 10);
        o->dictionary = strtol(PQgetvalue(r, 0, 5), NULL, 10) > 0;
        o->bytes_on_disk = strtoull(PQgetvalue(r, 0, 6), NULL, 10);
        o->ratio = o->stored_bytes ? (double)o->raw_bytes / (double)o->stored_bytes : 0;
    }
    PQclear(r);
    return s;
}

static tw_status pg_prune(tw__archive_backend *b, int64_t before_ms, uint64_t *removed, tw_error *err)
{
    pg *p = (pg *)b;
    uint64_t n = 0;
    if (p->readonly)
        return tw__err(err, TW_EINVAL, "postgres: the archive is open read-only");
    tw_status s = alive(p, err);
    if (!s)
        s = tw__pg_prune(p->c, tw__arch_key_lo(before_ms), &n, err);
    p->ndays = 0; /* dropped months are created again when an event needs them */
    if (removed)
        *removed = n;
    return s;
}

static void pg_close(tw__archive_backend *b)
{
    pg *p = (pg *)b;
    if (!p)
        return;
    /* the rows of the batches since the last merge: merged now, or a handle's last up to 63 batches
     * (every run of `trailwatch ingest`) would stay a row each per bucket */
    if (p->c && !p->readonly && p->merge_batches > 1 && PQstatus(p->c) == CONNECTION_OK) {
        tw_error merr;
        merge_postings(p, p->merge_lo, p->merge_hi, &merr);
    }
    if (p->c)
        PQfinish(p->c);
    tw__codec_free(p->codec);
    free(p->days);
    tw__pg_copy_free(&p->ev);
    tw__pg_copy_free(&p->terms);
    tw__pg_post_free(&p->post);
    tw__buf_free(&p->packed);
    tw__buf_free(&p->bodies);
    tw__buf_free(&p->sql);
    for (int i = 0; i < 4; i++)
        tw__buf_free(&p->arr[i]);
    free(p->body_off);
    free(p->keys);
    free(p->sec_lo);
    free(p->sec_next);
    tw__block_free(&p->blk);
    free(p);
}

static const struct tw__archive_backend_ops pg_ops = {
    "postgres", pg_put_batch, pg_find, pg_counts, pg_stats, pg_prune, pg_close,
};

tw_status tw__archive_pg_open(const tw_archive_opts *o, tw__archive_backend **out, tw_error *err)
{
    *out = NULL;
    if (!o->dsn || !*o->dsn)
        return tw__err(err, TW_EINVAL, "archive: backend postgres needs a dsn (archive.dsn)");
    pg *p = calloc(1, sizeof *p);
    if (!p)
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    p->base.ops = &pg_ops;
    p->base.dedup_on_put = 1;
    p->readonly = o->readonly;
    tw__pg_copy_init(&p->ev, TW_ARCHIVE_PG_BATCH_BYTES);
    tw__pg_copy_init(&p->terms, TW_ARCHIVE_PG_BATCH_BYTES);
    tw__pg_post_init(&p->post);
    tw__buf_init(&p->packed, 0);
    tw__buf_init(&p->bodies, TW_ARCHIVE_PG_BATCH_BYTES);
    tw__buf_init(&p->sql, 0);
    for (int i = 0; i < 4; i++)
        tw__buf_init(&p->arr[i], TW_ARCHIVE_PG_BATCH_BYTES);
    tw_status s;
    if ((s = tw__codec_new(ZSTD_LEVEL, &p->codec, err)) || (s = connect_db(p, o->dsn, err)) ||
        (s = tw__pg_schema_init(p->c, o->readonly, err)) || (s = tw__pg_rollup_init(p->c, o->readonly, &p->rollup, err)) ||
        (s = load_dicts(p, err))) {
        pg_close(&p->base);
        return s;
    }
    *out = &p->base;
    return TW_OK;
}
