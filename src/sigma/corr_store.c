/* sigma/corr_store.c: correlation state in its own SQLite file (the data dir's sigma-state.db), so
 * open windows survive a restart. Each group is one row, keyed by the correlation's name and its
 * group-by values; a row saved under another definition of the correlation (other rules, timespan,
 * condition, group-by) is dropped when loaded. WAL with synchronous=NORMAL: a save survives the
 * process being killed (the OS has it), one fsync per checkpoint rather than per save. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "sigma/correlate_int.h"

static tw_status db_err(tw_correlator *c, tw_error *err, const char *what)
{
    return tw__err(err, TW_EDB, "%s: %s: %s", c->o.state_path, what, c->db ? sqlite3_errmsg(c->db) : "cannot open");
}

void tw__corr_note_deleted(tw_correlator *c, const group *g)
{
    if (!c->db)
        return;
    if (c->ndeleted == c->capdeleted) {
        size_t cap = c->capdeleted ? c->capdeleted * 2 : 64;
        char **d = realloc(c->deleted, cap * sizeof *d);
        size_t *l = d ? realloc(c->deleted_len, cap * sizeof *l) : NULL;
        if (d)
            c->deleted = d;
        if (!d || !l)
            return; /* the row stays: loaded again, it ages out like any old state */
        c->deleted_len = l;
        c->capdeleted = cap;
    }
    char *k = malloc(sizeof(size_t) + g->klen + 1);
    if (!k)
        return;
    memcpy(k, &g->corr, sizeof(size_t));
    memcpy(k + sizeof(size_t), g->key, g->klen);
    c->deleted[c->ndeleted] = k;
    c->deleted_len[c->ndeleted++] = g->klen;
}

static int put_str(tw_buf *b, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0;
    return tw__buf_append(b, &n, 4) == TW_OK && (!n || tw__buf_append(b, s, n) == TW_OK);
}

static int encode(const group *g, tw_buf *b)
{
    for (size_t i = 0; i < g->n; i++) {
        const obs *o = &g->ev[i];
        uint8_t f = (uint8_t)((o->has_num ? 1 : 0) | (o->value ? 2 : 0) | (o->eid ? 4 : 0));
        if (tw__buf_append(b, &o->t, 8) || tw__buf_append(b, &o->ref, 4) || tw__buf_putc(b, (char)f) ||
            tw__buf_append(b, &o->num, 8))
            return 0;
        if ((o->value && !put_str(b, o->value)) || (o->eid && !put_str(b, o->eid)))
            return 0;
    }
    return 1;
}

static char *get_str(const unsigned char **p, const unsigned char *end)
{
    uint32_t n;
    if (end - *p < 4)
        return NULL;
    memcpy(&n, *p, 4);
    *p += 4;
    if ((size_t)(end - *p) < n)
        return NULL;
    char *s = strndup((const char *)*p, n);
    *p += n;
    return s;
}

/* Decodes events into g; 0 when the blob is damaged (the group is then dropped). */
static int decode(group *g, const unsigned char *p, size_t len, size_t nrefs)
{
    const unsigned char *end = p + len;
    while (p < end) {
        obs o;
        memset(&o, 0, sizeof o);
        uint8_t f;
        if (end - p < 21)
            return 0;
        memcpy(&o.t, p, 8);
        memcpy(&o.ref, p + 8, 4);
        f = p[12];
        memcpy(&o.num, p + 13, 8);
        p += 21;
        o.has_num = f & 1;
        if (((f & 2) && !(o.value = get_str(&p, end))) || ((f & 4) && !(o.eid = get_str(&p, end))) || o.ref >= nrefs) {
            free(o.value);
            free(o.eid);
            return 0;
        }
        if (g->n == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 8;
            obs *e = realloc(g->ev, cap * sizeof *e);
            if (!e) {
                free(o.value);
                free(o.eid);
                return 0;
            }
            g->ev = e;
            g->cap = cap;
        }
        g->ev[g->n++] = o;
    }
    return 1;
}

static long corr_by_name(const tw_sigma *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->rules[i]->corr && !s->rules[i]->refused && strcmp(s->rules[i]->info.name, name) == 0)
            return (long)i;
    return -1;
}

tw_status tw__corr_store_open(tw_correlator *c, tw_error *err)
{
    if (sqlite3_open_v2(c->o.state_path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        tw_status rc = db_err(c, err, "cannot open");
        sqlite3_close(c->db);
        c->db = NULL;
        return rc;
    }
    sqlite3_busy_timeout(c->db, 5000);
    if (sqlite3_exec(c->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE IF NOT EXISTS sigma_groups(corr TEXT NOT NULL, sig TEXT NOT NULL, key BLOB NOT NULL,"
                     " wstart INTEGER NOT NULL, events BLOB NOT NULL, PRIMARY KEY(corr, key));"
                     "CREATE TABLE IF NOT EXISTS sigma_meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
                     NULL, NULL, NULL) != SQLITE_OK)
        return db_err(c, err, "cannot create the tables");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT v FROM sigma_meta WHERE k='max_seen'", -1, &st, NULL) != SQLITE_OK)
        return db_err(c, err, "cannot read");
    if (sqlite3_step(st) == SQLITE_ROW)
        c->max_seen = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(c->db, "SELECT corr, sig, key, wstart, events FROM sigma_groups", -1, &st, NULL) != SQLITE_OK)
        return db_err(c, err, "cannot read");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0), *sig = (const char *)sqlite3_column_text(st, 1);
        const void *key = sqlite3_column_blob(st, 2);
        size_t klen = (size_t)sqlite3_column_bytes(st, 2);
        long corr = name ? corr_by_name(c->s, name) : -1;
        char want[40];
        if (corr >= 0)
            tw__corr_signature(c->s, (size_t)corr, want, sizeof want);
        if (corr < 0 || !sig || strcmp(sig, want) != 0)
            continue; /* another definition: its state means nothing now (deleted at the next save) */
        group *g = tw__corr_group(c, (size_t)corr, key ? key : "", klen, 1);
        if (!g)
            break;
        g->wstart = sqlite3_column_int64(st, 3);
        if (!decode(g, sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4), c->s->rules[corr]->corr->nrefs) ||
            !g->n)
            tw__corr_group_drop(c, g, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return db_err(c, err, "cannot read");
    /* rows of correlations that no longer exist, or changed, go now */
    if (sqlite3_prepare_v2(c->db, "SELECT DISTINCT corr, sig FROM sigma_groups", -1, &st, NULL) != SQLITE_OK)
        return db_err(c, err, "cannot read");
    tw_buf stale = TW_BUF_INIT;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0), *sig = (const char *)sqlite3_column_text(st, 1);
        long corr = name ? corr_by_name(c->s, name) : -1;
        char want[40] = "";
        if (corr >= 0)
            tw__corr_signature(c->s, (size_t)corr, want, sizeof want);
        if (corr < 0 || !sig || strcmp(sig, want) != 0) {
            char *q = sqlite3_mprintf("DELETE FROM sigma_groups WHERE corr=%Q AND sig=%Q;", name ? name : "", sig ? sig : "");
            if (q)
                tw__buf_puts(&stale, q);
            sqlite3_free(q);
        }
    }
    sqlite3_finalize(st);
    if (stale.len && sqlite3_exec(c->db, stale.data, NULL, NULL, NULL) != SQLITE_OK) {
        tw__buf_free(&stale);
        return db_err(c, err, "cannot delete stale state");
    }
    tw__buf_free(&stale);
    return TW_OK;
}

tw_status tw__corr_store_save(tw_correlator *c, tw_error *err)
{
    sqlite3_stmt *del = NULL, *put = NULL, *meta = NULL;
    tw_buf blob = TW_BUF_INIT;
    tw_status rc = TW_OK;
    int began = 0;
    if (!c->ndeleted && !c->dirty_head)
        return TW_OK;
    if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_err(c, err, "cannot save");
        goto out;
    }
    began = 1;
    if (sqlite3_prepare_v2(c->db, "DELETE FROM sigma_groups WHERE corr=?1 AND key=?2", -1, &del, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO sigma_groups(corr, sig, key, wstart, events) VALUES(?1,?2,?3,?4,?5)",
                           -1, &put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO sigma_meta(k, v) VALUES('max_seen', ?1)", -1, &meta, NULL) != SQLITE_OK) {
        rc = db_err(c, err, "cannot save");
        goto out;
    }
    for (size_t i = 0; i < c->ndeleted; i++) {
        size_t corr;
        memcpy(&corr, c->deleted[i], sizeof corr);
        sqlite3_bind_text(del, 1, c->s->rules[corr]->info.name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(del, 2, c->deleted[i] + sizeof corr, (int)c->deleted_len[i], SQLITE_STATIC);
        if (sqlite3_step(del) != SQLITE_DONE) {
            rc = db_err(c, err, "cannot save");
            goto out;
        }
        sqlite3_reset(del);
    }
    for (group *g = c->dirty_head; g; g = g->dnext) {
        char sig[40];
        tw__corr_signature(c->s, g->corr, sig, sizeof sig);
        tw_buf_reset(&blob);
        if (!encode(g, &blob)) {
            rc = tw__err(err, TW_ENOMEM, "out of memory saving correlation state");
            goto out;
        }
        sqlite3_bind_text(put, 1, c->s->rules[g->corr]->info.name, -1, SQLITE_STATIC);
        sqlite3_bind_text(put, 2, sig, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(put, 3, g->key, (int)g->klen, SQLITE_STATIC);
        sqlite3_bind_int64(put, 4, g->wstart);
        sqlite3_bind_blob(put, 5, blob.data ? blob.data : "", (int)blob.len, SQLITE_STATIC);
        if (sqlite3_step(put) != SQLITE_DONE) {
            rc = db_err(c, err, "cannot save");
            goto out;
        }
        sqlite3_reset(put);
    }
    sqlite3_bind_int64(meta, 1, c->max_seen);
    if (sqlite3_step(meta) != SQLITE_DONE || sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_err(c, err, "cannot save");
        goto out;
    }
    began = 0;
    tw__corr_clear_dirty(c);
    for (size_t i = 0; i < c->ndeleted; i++)
        free(c->deleted[i]);
    c->ndeleted = 0;
out:
    if (began)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(del);
    sqlite3_finalize(put);
    sqlite3_finalize(meta);
    tw__buf_free(&blob);
    return rc;
}

void tw__corr_store_close(tw_correlator *c)
{
    sqlite3_close(c->db);
    c->db = NULL;
}
