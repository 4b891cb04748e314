/* archive/sqlite_roll.c: the counts rollup in the SQLite archive (sqlite_roll.h). */
#include "archive/sqlite_roll.h"

#include <stdlib.h>
#include <string.h>

#include "archive/rollup.h"
#include "common/buf.h"

struct tw__sqroll {
    sqlite3 *db;
    sqlite3_stmt *get, *put, *rows, *evs, *atom;
    tw__roll_acc acc; /* the open batch's counts */
    tw__roll_acc tmp; /* one hour being merged or read */
    tw_buf blob;
};

static int prep(sqlite3 *db, sqlite3_stmt **st, const char *sql)
{
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

int tw__sqroll_open(sqlite3 *db, int writer, tw__sqroll **out)
{
    tw__sqroll *r = calloc(1, sizeof *r);
    if (!r)
        return SQLITE_NOMEM;
    r->db = db;
    tw__buf_init(&r->blob, 0);
    int rc;
    if ((rc = prep(db, &r->rows, "SELECT h, c FROM roll WHERE h BETWEEN ?1 AND ?2 ORDER BY h")) ||
        (rc = prep(db, &r->evs, "SELECT k, name, src, acct, region FROM ev WHERE k BETWEEN ?1 AND ?2 ORDER BY k")) ||
        (rc = prep(db, &r->atom, "SELECT s FROM atoms WHERE id = ?")) ||
        (writer && ((rc = prep(db, &r->get, "SELECT c FROM roll WHERE h = ?")) ||
                    (rc = prep(db, &r->put, "INSERT OR REPLACE INTO roll VALUES(?, ?)"))))) {
        tw__sqroll_close(r);
        return rc;
    }
    *out = r;
    return SQLITE_OK;
}

void tw__sqroll_close(tw__sqroll *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->get);
    sqlite3_finalize(r->put);
    sqlite3_finalize(r->rows);
    sqlite3_finalize(r->evs);
    sqlite3_finalize(r->atom);
    tw__roll_free(&r->acc);
    tw__roll_free(&r->tmp);
    tw__buf_free(&r->blob);
    free(r);
}

int tw__sqroll_note(tw__sqroll *r, int64_t key, const int64_t atoms[4])
{
    int64_t m = tw__roll_minute(key);
    for (uint32_t d = 0; d < TW_ROLL_DIMS; d++)
        if (tw__roll_add(&r->acc, m, d, atoms[d], 1))
            return SQLITE_NOMEM;
    return SQLITE_OK;
}

void tw__sqroll_discard(tw__sqroll *r) { r->acc.n = 0; }

/* Writes r->tmp (one hour's entries) as hour h's row, or deletes the row when there are none. */
static int put_hour(tw__sqroll *r, int64_t h)
{
    tw__roll_coalesce(&r->tmp);
    tw_buf_reset(&r->blob);
    tw__roll_encode(r->tmp.v, r->tmp.n, &r->blob);
    if (tw_buf_error(&r->blob))
        return SQLITE_NOMEM;
    sqlite3_bind_int64(r->put, 1, h);
    sqlite3_bind_blob(r->put, 2, r->blob.data, (int)r->blob.len, SQLITE_STATIC);
    int rc = sqlite3_step(r->put);
    sqlite3_reset(r->put);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int decode(tw__sqroll *r, sqlite3_stmt *st, int col, int64_t h)
{
    int d = tw__roll_decode(sqlite3_column_blob(st, col), (size_t)sqlite3_column_bytes(st, col), h, &r->tmp);
    return d == -2 ? SQLITE_NOMEM : d ? SQLITE_CORRUPT : SQLITE_OK;
}

int tw__sqroll_write(tw__sqroll *r)
{
    tw__roll_coalesce(&r->acc);
    int rc = SQLITE_OK;
    for (size_t i = 0; i < r->acc.n && !rc;) {
        int64_t h = tw__roll_hour(r->acc.v[i].m);
        r->tmp.n = 0;
        sqlite3_bind_int64(r->get, 1, h);
        rc = sqlite3_step(r->get);
        rc = rc == SQLITE_ROW ? decode(r, r->get, 0, h) : rc == SQLITE_DONE ? SQLITE_OK : rc;
        sqlite3_reset(r->get);
        for (; i < r->acc.n && tw__roll_hour(r->acc.v[i].m) == h && !rc; i++)
            if (tw__roll_add(&r->tmp, r->acc.v[i].m, r->acc.v[i].dim, r->acc.v[i].atom, r->acc.v[i].n))
                rc = SQLITE_NOMEM;
        if (!rc)
            rc = put_hour(r, h);
    }
    r->acc.n = 0;
    r->tmp.n = 0;
    return rc;
}

#define HOUR_KEYS (60 * TW_ROLL_MINUTE_KEYS)

/* The first key of hour h, saturated at the ends of the key range. */
static int64_t hour_key(int64_t h)
{
    if (h <= INT64_MIN / HOUR_KEYS)
        return INT64_MIN;
    if (h >= INT64_MAX / HOUR_KEYS)
        return INT64_MAX;
    return h * HOUR_KEYS;
}

int tw__sqroll_rebuild(tw__sqroll *r, int64_t lo, int64_t hi)
{
    int64_t h0 = tw__roll_hour(tw__roll_minute(lo)), h1 = tw__roll_hour(tw__roll_minute(hi));
    int64_t klo = hour_key(h0), khi = hour_key(h1 + 1);
    if (khi != INT64_MAX)
        khi--;
    sqlite3_stmt *del = NULL;
    int rc = sqlite3_prepare_v2(r->db, "DELETE FROM roll WHERE h BETWEEN ?1 AND ?2", -1, &del, NULL);
    if (rc)
        return rc;
    sqlite3_bind_int64(del, 1, h0);
    sqlite3_bind_int64(del, 2, h1);
    rc = sqlite3_step(del);
    sqlite3_finalize(del);
    if (rc != SQLITE_DONE)
        return rc;
    rc = SQLITE_OK;
    r->tmp.n = 0;
    int64_t cur = 0;
    sqlite3_bind_int64(r->evs, 1, klo);
    sqlite3_bind_int64(r->evs, 2, khi);
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(r->evs)) == SQLITE_ROW) {
        int64_t m = tw__roll_minute(sqlite3_column_int64(r->evs, 0)), h = tw__roll_hour(m);
        if (r->tmp.n && h != cur) {
            rc = put_hour(r, cur);
            r->tmp.n = 0;
        }
        cur = h;
        for (uint32_t d = 0; d < TW_ROLL_DIMS && !rc; d++)
            if (tw__roll_add(&r->tmp, m, d, sqlite3_column_int64(r->evs, 1 + (int)d), 1))
                rc = SQLITE_NOMEM;
    }
    if (!rc && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = step;
    sqlite3_reset(r->evs);
    if (!rc && r->tmp.n)
        rc = put_hour(r, cur);
    r->tmp.n = 0;
    return rc;
}

/* ---- reading ---- */

typedef struct named {
    int64_t atom;
    char *s;
} named;

typedef struct out_row {
    int64_t bucket, atom;
    const char *group; /* the atom's name, once looked up */
    uint64_t n;
} out_row;

typedef struct reader {
    out_row *rows;
    size_t n;
} reader;

static int collect(void *ud, int64_t bucket, int64_t atom, uint64_t n)
{
    reader *rd = ud;
    rd->rows[rd->n++] = (out_row){bucket, atom, NULL, n};
    return 0;
}

static int named_cmp(const void *a, const void *b)
{
    const named *x = a, *y = b;
    return x->atom < y->atom ? -1 : x->atom > y->atom;
}

static int row_cmp(const void *a, const void *b)
{
    const out_row *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return strcmp(x->group, y->group);
}

/* g's sums to cb ordered by bucket, then group name (as the scan's ORDER BY and PostgreSQL's). */
static int deliver(tw__sqroll *r, tw__roll_agg *g, tw__arch_count_fn cb, void *ud)
{
    reader rd = {malloc((g->used ? g->used : 1) * sizeof *rd.rows), 0};
    named *names = malloc((g->used ? g->used : 1) * sizeof *names);
    size_t nn = 0;
    int rc = SQLITE_OK;
    if (!rd.rows || !names) {
        rc = SQLITE_NOMEM;
        goto out;
    }
    tw__roll_agg_take(g, collect, &rd);
    for (size_t i = 0; i < rd.n; i++)
        names[nn++] = (named){rd.rows[i].atom, NULL};
    qsort(names, nn, sizeof *names, named_cmp);
    size_t u = 0;
    for (size_t i = 0; i < nn; i++)
        if (!u || names[i].atom != names[u - 1].atom)
            names[u++] = names[i];
    nn = u;
    for (size_t i = 0; i < nn && !rc; i++) {
        if (names[i].atom <= 0) { /* -1: the total's one group; 0: the value is absent */
            names[i].s = strdup("");
        } else {
            sqlite3_bind_int64(r->atom, 1, names[i].atom);
            int st = sqlite3_step(r->atom);
            const unsigned char *s = st == SQLITE_ROW ? sqlite3_column_text(r->atom, 0) : NULL;
            if (st == SQLITE_ROW)
                names[i].s = strdup(s ? (const char *)s : "");
            else
                rc = st == SQLITE_DONE ? SQLITE_CORRUPT : st; /* a counted value that has no name */
            sqlite3_reset(r->atom);
        }
        if (!rc && !names[i].s)
            rc = SQLITE_NOMEM;
    }
    if (rc)
        goto out;
    for (size_t i = 0; i < rd.n; i++) {
        named key = {rd.rows[i].atom, NULL};
        const named *hit = bsearch(&key, names, nn, sizeof *names, named_cmp);
        rd.rows[i].group = hit ? hit->s : ""; /* every atom was looked up above */
    }
    qsort(rd.rows, rd.n, sizeof *rd.rows, row_cmp);
    for (size_t i = 0; i < rd.n; i++)
        if (cb(ud, rd.rows[i].bucket, rd.rows[i].group, rd.rows[i].n))
            break;
out:
    for (size_t i = 0; names && i < nn; i++)
        free(names[i].s);
    free(names);
    free(rd.rows);
    return rc;
}

static int scan_events(tw__roll_agg *g, tw__sqroll *r, int64_t lo, int64_t hi, int64_t step, int dim)
{
    sqlite3_stmt *st = r->evs;
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t b = tw__roll_bucket(tw__arch_key_time(sqlite3_column_int64(st, 0)), step);
        if (tw__roll_agg_add(g, b, dim < 0 ? -1 : sqlite3_column_int64(st, 1 + dim), 1)) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Minutes m0..m1 from the rollup's hours. */
static int scan_minutes(tw__roll_agg *g, tw__sqroll *r, int64_t m0, int64_t m1, int64_t step, int dim)
{
    sqlite3_bind_int64(r->rows, 1, tw__roll_hour(m0));
    sqlite3_bind_int64(r->rows, 2, tw__roll_hour(m1));
    uint32_t d = dim < 0 ? 1 : (uint32_t)dim; /* the total: every event has one source (maybe absent) */
    int rc;
    while ((rc = sqlite3_step(r->rows)) == SQLITE_ROW) {
        r->tmp.n = 0;
        if ((rc = decode(r, r->rows, 1, sqlite3_column_int64(r->rows, 0))))
            break;
        for (size_t i = 0; i < r->tmp.n && !rc; i++) {
            const tw__roll_ent *e = &r->tmp.v[i];
            if (e->dim == d && e->m >= m0 && e->m <= m1 &&
                tw__roll_agg_add(g, tw__roll_bucket(tw__roll_minute_ms(e->m), step), dim < 0 ? -1 : e->atom, e->n))
                rc = SQLITE_NOMEM;
        }
        if (rc)
            break;
    }
    sqlite3_reset(r->rows);
    r->tmp.n = 0;
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int tw__sqroll_counts(tw__sqroll *r, int64_t lo, int64_t hi, int64_t step_ms, int dim, tw__arch_count_fn cb,
                      void *ud)
{
    tw__roll_agg g = {NULL, 0, 0};
    int64_t m0, m1, edge[2][2];
    tw__roll_split(lo, hi, &m0, &m1, edge);
    int rc = SQLITE_OK;
    if (m0 <= m1)
        rc = scan_minutes(&g, r, m0, m1, step_ms, dim);
    for (int i = 0; i < 2 && !rc; i++)
        if (edge[i][0] <= edge[i][1])
            rc = scan_events(&g, r, edge[i][0], edge[i][1], step_ms, dim);
    if (!rc)
        rc = deliver(r, &g, cb, ud);
    tw__roll_agg_free(&g);
    return rc;
}
