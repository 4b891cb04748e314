/* archive/pg_rollup.c: the counts rollup in the PostgreSQL archive (pg_rollup.h). */
#include "archive/pg_rollup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/pg_copy.h"
#include "archive/pg_schema.h"
#include "archive/rollup.h"
#include "common/err.h"

/* floor(k / keys per minute) in SQL (>> floors; % does not, hence the + 60) */
#define MINUTE_OF_K "(((k >> 18) - (((k >> 18) % 60) + 60) % 60) / 60)"
/* the four dimensions of an event row as (d, v) rows */
#define DIMS_OF_E                                                                                              \
    "CROSS JOIN LATERAL (VALUES (0::smallint, coalesce(e.name, '')), (1::smallint, coalesce(e.src, '')),"      \
    " (2::smallint, coalesce(e.acct, '')), (3::smallint, coalesce(e.region, ''))) AS x(d, v)"

tw_status tw__pg_rollup_init(PGconn *c, int readonly, int *have, tw_error *err)
{
    *have = 0;
    PGresult *r = NULL;
    tw_status s;
    if (readonly) {
        r = PQexec(c, "SELECT to_regclass('tw_rollup') IS NOT NULL AND"
                      " EXISTS (SELECT 1 FROM tw_meta WHERE key = 'rollup')");
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            s = tw__pg_fail(c, r, "opening the counts rollup", err);
        else {
            *have = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
            s = TW_OK;
        }
        PQclear(r);
        return s;
    }
    /* under the writers' lock: no batch is stored while the rollup is counted from the events */
    if ((s = tw__pg_exec(c, "BEGIN", "creating the counts rollup", err)))
        return s;
    if ((s = tw__pg_exec(c, "SELECT pg_advisory_xact_lock(" TW__PG_WRITE_LOCK ")", "creating the counts rollup",
                         err)) ||
        (s = tw__pg_exec(c,
                         "SET LOCAL client_min_messages = warning;"
                         "CREATE TABLE IF NOT EXISTS tw_rollup (m bigint NOT NULL, dim smallint NOT NULL,"
                         " v text COLLATE \"C\" NOT NULL, n bigint NOT NULL, PRIMARY KEY (m, dim, v))",
                         "creating the counts rollup", err)))
        goto fail;
    r = PQexec(c, "SELECT 1 FROM tw_meta WHERE key = 'rollup'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s = tw__pg_fail(c, r, "creating the counts rollup", err);
        goto fail;
    }
    if (PQntuples(r) == 0 &&
        ((s = tw__pg_exec(c,
                          "DELETE FROM tw_rollup;"
                          "INSERT INTO tw_rollup SELECT " MINUTE_OF_K ", x.d, x.v, count(*) FROM tw_events e " DIMS_OF_E
                          " GROUP BY 1, 2, 3;"
                          "INSERT INTO tw_meta VALUES ('rollup', '1')",
                          "counting the archived events into the rollup", err))))
        goto fail;
    PQclear(r);
    r = NULL;
    if ((s = tw__pg_exec(c, "COMMIT", "creating the counts rollup", err)))
        goto fail;
    *have = 1;
    return TW_OK;
fail:
    PQclear(r);
    PQclear(PQexec(c, "ROLLBACK"));
    return s;
}

/* ---- writing: the batch's counts summed here, sent as four arrays, added with one upsert ---- */

typedef struct cnt {
    int64_t m;
    int dim;
    const char *v;
    uint64_t n;
} cnt;

static int cnt_cmp(const void *a, const void *b)
{
    const cnt *x = a, *y = b;
    if (x->m != y->m)
        return x->m < y->m ? -1 : 1;
    if (x->dim != y->dim)
        return x->dim - y->dim;
    return strcmp(x->v, y->v);
}

tw_status tw__pg_rollup_put(PGconn *c, const tw__arch_rec *recs, const int64_t *keys, size_t n, tw_error *err)
{
    cnt *v = malloc((n ? n : 1) * TW_ROLL_DIMS * sizeof *v);
    tw_buf arr[4] = {TW_BUF_INIT, TW_BUF_INIT, TW_BUF_INIT, TW_BUF_INIT};
    tw_status s = TW_OK;
    if (!v)
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (keys[i] == -1)
            continue;
        int64_t m = tw__roll_minute(keys[i]);
        const char *vals[TW_ROLL_DIMS] = {recs[i].event_name, recs[i].source, recs[i].account, recs[i].region};
        for (int d = 0; d < TW_ROLL_DIMS; d++)
            v[k++] = (cnt){m, d, vals[d], 1};
    }
    if (!k)
        goto out;
    qsort(v, k, sizeof *v, cnt_cmp);
    size_t o = 0;
    for (size_t i = 1; i < k; i++) {
        if (cnt_cmp(&v[o], &v[i]) == 0)
            v[o].n++;
        else
            v[++o] = v[i];
    }
    k = o + 1;
    for (int a = 0; a < 4; a++)
        tw__buf_putc(&arr[a], '{');
    for (size_t i = 0; i < k; i++) {
        const char *sep = i ? "," : "";
        tw__buf_printf(&arr[0], "%s%" PRId64, sep, v[i].m);
        tw__buf_printf(&arr[1], "%s%d", sep, v[i].dim);
        tw__buf_puts(&arr[2], sep);
        tw__pg_array_text(&arr[2], v[i].v);
        tw__buf_printf(&arr[3], "%s%" PRIu64, sep, v[i].n);
    }
    for (int a = 0; a < 4; a++)
        tw__buf_putc(&arr[a], '}');
    for (int a = 0; a < 4; a++)
        if (tw_buf_error(&arr[a])) {
            s = tw__err(err, TW_ENOMEM, "archive: out of memory");
            goto out;
        }
    const char *params[4] = {arr[0].data, arr[1].data, arr[2].data, arr[3].data};
    PGresult *r = PQexecParams(c,
                               "INSERT INTO tw_rollup AS t SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::text[],"
                               " $4::bigint[]) ON CONFLICT (m, dim, v) DO UPDATE SET n = t.n + EXCLUDED.n",
                               4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        s = tw__pg_fail(c, r, "storing the counts", err);
    PQclear(r);
out:
    for (int a = 0; a < 4; a++)
        tw__buf_free(&arr[a]);
    free(v);
    return s;
}

tw_status tw__pg_rollup_prune(PGconn *c, int64_t cut, tw_error *err)
{
    int64_t cm = tw__roll_minute(cut);
    char sql[1024];
    /* under the writers' lock too: a batch upserting the cut's minute meanwhile would otherwise
     * wait on this transaction's deleted rows while this one waits on its new ones */
    snprintf(sql, sizeof sql,
             "SELECT pg_advisory_xact_lock(" TW__PG_WRITE_LOCK ");"
             "DELETE FROM tw_rollup WHERE m <= %" PRId64 ";"
             "INSERT INTO tw_rollup SELECT %" PRId64 ", x.d, x.v, count(*) FROM tw_events e " DIMS_OF_E
             " WHERE e.k >= %" PRId64 " AND e.k < %" PRId64 " GROUP BY 2, 3",
             cm, cm, (int64_t)(cm * TW_ROLL_MINUTE_KEYS), (int64_t)((cm + 1) * TW_ROLL_MINUTE_KEYS));
    return tw__pg_exec(c, sql, "pruning the counts", err);
}

/* ---- reading ---- */

tw_status tw__pg_rollup_counts(PGconn *c, int64_t lo, int64_t hi, int64_t step_ms, int dim, tw_buf *sql,
                               tw__arch_count_fn cb, void *ud, tw_error *err)
{
    static const char *const cols[TW_ROLL_DIMS] = {"name", "src", "acct", "region"};
    int64_t m0, m1, edge[2][2];
    tw__roll_split(lo, hi, &m0, &m1, edge);
    if (m0 > m1) {
        m0 = 1;
        m1 = 0;
    }
    tw_buf_reset(sql);
    tw__buf_printf(sql,
                   "SELECT b, g, sum(n)::bigint FROM ("
                   "SELECT (((m * 60 + %lld) * 1000) / %lld) * %lld AS b, %s AS g, n FROM tw_rollup"
                   " WHERE dim = %d AND m BETWEEN %" PRId64 " AND %" PRId64 " UNION ALL "
                   "SELECT ((((k >> 18) + %lld) * 1000) / %lld) * %lld, %s%s%s, 1 FROM tw_events"
                   " WHERE k BETWEEN %" PRId64 " AND %" PRId64 " OR k BETWEEN %" PRId64 " AND %" PRId64
                   ") x GROUP BY 1, 2 ORDER BY 1, 2",
                   TW_ARCH_KEY_EPOCH, (long long)step_ms, (long long)step_ms, dim < 0 ? "''" : "v", dim < 0 ? 1 : dim,
                   m0, m1, TW_ARCH_KEY_EPOCH, (long long)step_ms, (long long)step_ms, dim < 0 ? "''" : "coalesce(",
                   dim < 0 ? "" : cols[dim], dim < 0 ? "" : ", '')", edge[0][0], edge[0][1], edge[1][0], edge[1][1]);
    if (tw_buf_error(sql))
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    PGresult *r = PQexec(c, sql->data);
    tw_status s = TW_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        s = tw__pg_fail(c, r, "counting", err);
    } else {
        for (int i = 0; i < PQntuples(r); i++)
            if (cb(ud, strtoll(PQgetvalue(r, i, 0), NULL, 10), PQgetvalue(r, i, 1),
                   strtoull(PQgetvalue(r, i, 2), NULL, 10)))
                break;
    }
    PQclear(r);
    return s;
}
