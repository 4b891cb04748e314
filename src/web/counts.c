/* web/counts.c: alerts per minute and per hour by rule, source, account and region (and in total),
 * kept on disk (DIR/dashboard.db) for the Timeline. Counted in memory as alerts are committed and
 * written once a second by a thread of its own into one rollup table per resolution: an answer reads at
 * most one row per bucket and key of the dimension asked for (a month per hour by rule: 720 x rules
 * rows), however many alerts there were. (Events per minute come from the archive's own rollup.) */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/thread.h"
#include "json/json_int.h"
#include "json/skip.h"
#include "outbox/store.h"
#include "web/web_int.h"

#define FLUSH_MS 1000
/* Distinct (minute, rule, source, account, region) waiting for the next write; past it, a write now. */
#define PENDING_MAX 4096
/* Keys longer than this are cut (sources, accounts and regions are short; rule names are <= 64). */
#define KEY_MAX 128
/* Series a timeline answer holds: the largest ones, the rest summed as "(other)". */
#define SERIES_MAX 10
/* Buckets one answer may hold (a month per minute is 43,200). */
#define BUCKETS_MAX 50000

/* Dimensions, as stored (dim column). */
enum { DIM_TOTAL = 0, DIM_RULE, DIM_SOURCE, DIM_ACCOUNT, DIM_REGION, NDIMS };
static const char *const dim_names[NDIMS] = {"total", "rule", "source", "account", "region"};
/* Resolutions, as stored (res column): minutes per bucket. */
static const int64_t res_minutes[2] = {1, 60};

typedef struct pend {
    int64_t minute;
    char rule[KEY_MAX], source[KEY_MAX], account[KEY_MAX], region[KEY_MAX];
    uint64_t n;
    int used;
} pend;

struct tw__counts {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pend *pending;                 /* open addressing, PENDING_MAX * 2 slots */
    size_t npending;
    int stop;
    pthread_t thread;
    int running;
    sqlite3 *wdb;                  /* the writer's connection (the thread's) */
    sqlite3 *rdb;                  /* readers' connection, under rlock */
    pthread_mutex_t rlock;
    char *path;
    uint64_t dropped;              /* counts lost to a failed write (logged once) */
};

/* bucket: minutes since the epoch (res 0) or hours (res 1); key "" for the total. */
static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS alert_rollup(res INTEGER NOT NULL, dim INTEGER NOT NULL, bucket INTEGER NOT NULL,"
    " key TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(res, dim, bucket, key)) WITHOUT ROWID;";

static sqlite3 *open_db(const char *path, tw_error *err)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        tw__err(err, TW_EDB, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        tw__err(err, TW_EDB, "%s: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* Writes what is pending (called by the thread with c->lock held; the lock is dropped while writing). */
static void flush(tw__counts *c)
{
    if (!c->npending)
        return;
    size_t cap = PENDING_MAX * 2, n = 0;
    pend *batch = malloc(c->npending * sizeof *batch);
    if (!batch)
        return;
    for (size_t i = 0; i < cap; i++)
        if (c->pending[i].used)
            batch[n++] = c->pending[i];
    memset(c->pending, 0, cap * sizeof *c->pending);
    c->npending = 0;
    pthread_mutex_unlock(&c->lock);
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_exec(c->wdb, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(c->wdb,
                                "INSERT INTO alert_rollup(res, dim, bucket, key, n) VALUES (?1, ?2, ?3, ?4, ?5)"
                                " ON CONFLICT(res, dim, bucket, key) DO UPDATE SET n = n + excluded.n",
                                -1, &st, NULL) == SQLITE_OK;
    for (size_t i = 0; ok && i < n; i++) {
        const char *keys[NDIMS] = {"", batch[i].rule, batch[i].source, batch[i].account, batch[i].region};
        for (int res = 0; ok && res < 2; res++)
            for (int d = 0; ok && d < NDIMS; d++) {
                sqlite3_bind_int(st, 1, res);
                sqlite3_bind_int(st, 2, d);
                sqlite3_bind_int64(st, 3, batch[i].minute / res_minutes[res]);
                sqlite3_bind_text(st, 4, keys[d], -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 5, (sqlite3_int64)batch[i].n);
                ok = sqlite3_step(st) == SQLITE_DONE;
                sqlite3_reset(st);
            }
    }
    sqlite3_finalize(st);
    ok = ok && sqlite3_exec(c->wdb, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    if (!ok) {
        sqlite3_exec(c->wdb, "ROLLBACK", NULL, NULL, NULL);
        c->dropped += n;           /* the timeline misses these; alerts themselves are not affected */
    }
    free(batch);
    pthread_mutex_lock(&c->lock);
}

static void *writer(void *arg)
{
    tw__thread_name("tw-counts");
    tw__counts *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += FLUSH_MS / 1000;
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
        flush(c);
    }
    flush(c);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

tw_status tw__counts_open(const char *data_dir, tw__counts **out, tw_error *err)
{
    *out = NULL;
    tw__counts *c = calloc(1, sizeof *c);
    if (!c || !(c->pending = calloc(PENDING_MAX * 2, sizeof *c->pending))) {
        free(c);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    size_t pl = strlen(data_dir) + 32;
    if (!(c->path = malloc(pl))) {
        free(c->pending);
        free(c);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    snprintf(c->path, pl, "%s/dashboard.db", data_dir);
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->rlock, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (!(c->wdb = open_db(c->path, err)) || !(c->rdb = open_db(c->path, err))) {
        tw__counts_close(c);
        return err ? err->code : TW_EDB;
    }
    if (pthread_create(&c->thread, NULL, writer, c)) {
        tw__counts_close(c);
        return tw__err(err, TW_ESYS, "cannot start the dashboard's counter thread");
    }
    c->running = 1;
    *out = c;
    return TW_OK;
}

void tw__counts_close(tw__counts *c)
{
    if (!c)
        return;
    if (c->running) {
        pthread_mutex_lock(&c->lock);
        c->stop = 1;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
    }
    sqlite3_close(c->wdb);
    sqlite3_close(c->rdb);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->rlock);
    free(c->pending);
    free(c->path);
    free(c);
}

static void copy_key(char *dst, const char *s, size_t n)
{
    if (n >= KEY_MAX)
        n = KEY_MAX - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* The top-level members source, account and region of an event (an envelope: events are wrapped
 * before they match), read with the lexer: the rest (the detail) is stepped over, not built. A value
 * that is not a plain string (escaped, or another type) counts as "". */
static void envelope_keys(const char *p, const char *end, unsigned depth, const char *out[3], size_t lens[3])
{
    static const char *const keys[3] = {"source", "account", "region"};
    tw_lex_err e;
    p = tw__lex_ws(p, end);
    if (p >= end || *p != '{')
        return;
    p = tw__lex_ws(p + 1, end);
    while (p && p < end && *p == '"') {
        int esc = 0;
        const char *k = p + 1, *ke = tw__lex_string(k, end, &esc, &e);
        if (!ke)
            return;
        p = tw__lex_ws(ke + 1, end);
        if (p >= end || *p != ':')
            return;
        p = tw__lex_ws(p + 1, end);
        int which = -1;
        for (int i = 0; i < 3 && !esc; i++)
            if ((size_t)(ke - k) == strlen(keys[i]) && memcmp(k, keys[i], (size_t)(ke - k)) == 0)
                which = i;
        if (which >= 0 && p < end && *p == '"') {
            int vesc = 0;
            const char *v = p + 1, *ve = tw__lex_string(v, end, &vesc, &e);
            if (!ve)
                return;
            if (!vesc) {
                out[which] = v;
                lens[which] = (size_t)(ve - v);
            }
            p = ve + 1;
        } else if (!(p = tw__json_skip(p, end, depth, &e))) {
            return;
        }
        p = tw__lex_ws(p, end);
        if (p < end && *p == ',')
            p = tw__lex_ws(p + 1, end);
    }
}

void tw__counts_add(tw__counts *c, const tw_config *cfg, const char *event, size_t len, const uint32_t *rules,
                    size_t nrules, int64_t now_ms)
{
    if (!c)
        return;
    const char *vals[3] = {"", "", ""};
    size_t lens[3] = {0, 0, 0};
    envelope_keys(event, event + len, cfg->lim.json_depth, vals, lens);
    const char *src = vals[0], *acct = vals[1], *reg = vals[2];
    size_t sl = lens[0], al = lens[1], rl = lens[2];
    int64_t minute = now_ms / 60000;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < nrules; i++) {
        if (c->npending >= PENDING_MAX) {
            pthread_cond_signal(&c->cond);
            break;                 /* a burst of distinct keys: the rest of this event is not counted */
        }
        const char *rule = cfg->rules[rules[i]].name;
        pend key;
        memset(&key, 0, sizeof key);
        key.minute = minute;
        copy_key(key.rule, rule, strlen(rule));
        copy_key(key.source, src, sl);
        copy_key(key.account, acct, al);
        copy_key(key.region, reg, rl);
        uint64_t h = tw__hash_bytes(key.rule, strlen(key.rule), (uint64_t)minute);
        h = tw__hash_bytes(key.source, strlen(key.source), h);
        h = tw__hash_bytes(key.account, strlen(key.account), h);
        h = tw__hash_bytes(key.region, strlen(key.region), h);
        size_t cap = PENDING_MAX * 2, at = (size_t)h & (cap - 1);
        while (c->pending[at].used &&
               (c->pending[at].minute != minute || strcmp(c->pending[at].rule, key.rule) ||
                strcmp(c->pending[at].source, key.source) || strcmp(c->pending[at].account, key.account) ||
                strcmp(c->pending[at].region, key.region)))
            at = (at + 1) & (cap - 1);
        if (!c->pending[at].used) {
            key.used = 1;
            c->pending[at] = key;
            c->npending++;
        }
        c->pending[at].n++;
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- GET /api/timeline?kind=alerts ---- */

typedef struct series {
    char key[KEY_MAX];
    uint64_t total;
    uint64_t *counts;
} series;

static int by_total(const void *a, const void *b)
{
    const series *x = a, *y = b;
    return x->total < y->total ? 1 : x->total > y->total ? -1 : strcmp(x->key, y->key);
}

tw_status tw__counts_timeline(tw__counts *c, int64_t from_ms, int64_t to_ms, int64_t step_ms, const char *by,
                              tw_buf *out, tw_error *err)
{
    int dim = -1;
    for (int i = 0; i < NDIMS; i++)
        if (strcmp(by, dim_names[i]) == 0)
            dim = i;
    if (dim < 0)
        return tw__err(err, TW_EINVAL, "by: total, rule, source, account or region, not \"%s\"", by);
    /* The hourly rollup when the step is whole hours (and the range starts on one), else the minutes. */
    int64_t step_min = step_ms / 60000, from_min = from_ms / 60000 / step_min * step_min;
    int res = step_min % 60 == 0 && from_min % 60 == 0 ? 1 : 0;
    int64_t per = step_min / res_minutes[res], from_b = from_min / res_minutes[res], to_b = to_ms / 60000 / res_minutes[res];
    int64_t nb = (to_ms / 60000 - from_min) / step_min + 1;
    if (nb < 1 || nb > BUCKETS_MAX)
        return tw__err(err, TW_ELIMIT, "the range holds %lld buckets: at most %d (use a larger step)", (long long)nb,
                       BUCKETS_MAX);
    series *ser = NULL;
    size_t nser = 0, capser = 0;
    tw_status rc = TW_OK;
    pthread_mutex_lock(&c->rlock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->rdb, "SELECT (bucket - ?3) / ?5, key, sum(n) FROM alert_rollup"
                                   " WHERE res = ?1 AND dim = ?2 AND bucket >= ?3 AND bucket <= ?4 GROUP BY 1, 2",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = tw__err(err, TW_EDB, "dashboard.db: %s", sqlite3_errmsg(c->rdb));
        goto unlock;
    }
    sqlite3_bind_int(st, 1, res);
    sqlite3_bind_int(st, 2, dim);
    sqlite3_bind_int64(st, 3, from_b);
    sqlite3_bind_int64(st, 4, to_b);
    sqlite3_bind_int64(st, 5, per);
    int r;
    size_t last = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t b = sqlite3_column_int64(st, 0);
        const char *k = (const char *)sqlite3_column_text(st, 1);
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 2);
        if (!k)
            k = "";
        if (b < 0 || b >= nb)
            continue;
        size_t i = last < nser && strcmp(ser[last].key, k) == 0 ? last : 0;
        while (i < nser && strcmp(ser[i].key, k) != 0)
            i++;
        if (i == nser) {
            if (nser == capser) {
                size_t cap = capser ? 2 * capser : 16;
                series *p = realloc(ser, cap * sizeof *p);
                if (!p) {
                    rc = tw__err(err, TW_ENOMEM, "out of memory");
                    break;
                }
                ser = p;
                capser = cap;
            }
            memset(&ser[nser], 0, sizeof ser[nser]);
            copy_key(ser[nser].key, k, strlen(k));
            if (!(ser[nser].counts = calloc((size_t)nb, sizeof(uint64_t)))) {
                rc = tw__err(err, TW_ENOMEM, "out of memory");
                break;
            }
            nser++;
        }
        last = i;
        ser[i].counts[b] += n;
        ser[i].total += n;
    }
    if (!rc && r != SQLITE_DONE)
        rc = tw__err(err, TW_EDB, "dashboard.db: %s", sqlite3_errmsg(c->rdb));
    sqlite3_finalize(st);
unlock:
    pthread_mutex_unlock(&c->rlock);
    if (!rc) {
        if (nser)
            qsort(ser, nser, sizeof *ser, by_total);
        /* Past SERIES_MAX, the smaller series are summed into one. */
        if (nser > SERIES_MAX) {
            series *other = &ser[SERIES_MAX - 1];
            snprintf(other->key, sizeof other->key, "(other)");
            for (size_t i = SERIES_MAX; i < nser; i++) {
                for (int64_t b = 0; b < nb; b++)
                    other->counts[b] += ser[i].counts[b];
                other->total += ser[i].total;
            }
        }
        tw__buf_printf(out, "{\"kind\":\"alerts\",\"by\":\"%s\",\"from\":%lld,\"to\":%lld,\"step_ms\":%lld,\"buckets\":[",
                      dim_names[dim], (long long)(from_min * 60000), (long long)to_ms, (long long)step_ms);
        for (int64_t b = 0; b < nb; b++)
            tw__buf_printf(out, "%s%lld", b ? "," : "", (long long)((from_min + b * step_min) * 60000));
        tw__buf_puts(out, "],\"series\":[");
        for (size_t i = 0; i < nser && i < SERIES_MAX; i++) {
            tw__buf_puts(out, i ? ",{\"key\":" : "{\"key\":");
            const char *k = dim ? ser[i].key : "alerts";
            tw__json_write_string(out, k, strlen(k));
            tw__buf_puts(out, ",\"counts\":[");
            for (int64_t b = 0; b < nb; b++)
                tw__buf_printf(out, "%s%llu", b ? "," : "", (unsigned long long)ser[i].counts[b]);
            tw__buf_puts(out, "]}");
        }
        tw__buf_puts(out, "]}");
    }
    for (size_t i = 0; i < nser; i++)
        free(ser[i].counts);
    free(ser);
    return rc;
}
