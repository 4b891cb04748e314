/* archive/sqlite.c: the embedded archive: one SQLite file (WAL), bodies in compressed blocks. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive/backend.h"
#include "archive/codec.h"
#include "archive/extract.h"
#include "archive/rollup.h"
#include "archive/sqlite_roll.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"

/* 2: posting lists (post) replace one index row per term (terms); 3: the counts rollup (roll), built
 * from the events when a version 2 archive is first opened for writing */
#define SCHEMA_VERSION 3
#define ZSTD_LEVEL 3
#define CACHE_BLOCKS 16

static const char schema[] =
    "CREATE TABLE meta(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
    "CREATE TABLE atoms(id INTEGER PRIMARY KEY, s TEXT NOT NULL UNIQUE);"
    "CREATE TABLE dicts(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    "CREATE TABLE blocks(id INTEGER PRIMARY KEY, dict INTEGER NOT NULL, n INTEGER NOT NULL, raw INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    /* k: time-ordered key (backend.h); the columns are atoms (NULL when absent) */
    "CREATE TABLE ev(k INTEGER PRIMARY KEY, blk INTEGER NOT NULL, slot INTEGER NOT NULL, name INTEGER,"
    " src INTEGER, acct INTEGER, region INTEGER, dt INTEGER, err INTEGER);"
    /* posting lists: per commit, one row per term: the keys of its events, k0 first, then LEB128
     * deltas (a term shared by many events costs a byte or two per event, not an index entry) */
    "CREATE TABLE post(h INTEGER NOT NULL, k0 INTEGER NOT NULL, k1 INTEGER NOT NULL, keys BLOB NOT NULL,"
    " PRIMARY KEY(h, k0)) WITHOUT ROWID;"
    TW__SQROLL_TABLE
    "INSERT INTO meta VALUES('schema', 3);";

static const char *const col_names[TW_ARCH_NCOLS] = {"name", "src", "acct", "region", "dt", "err"};

typedef struct atom_slot {
    uint64_t h;
    int64_t id;
    char *s;
} atom_slot;

typedef struct sq {
    tw__archive_backend base;
    sqlite3 *db;
    char *path;
    int readonly;
    tw__codec *codec;
    uint32_t dict;             /* the dictionary new blocks use (0 none) */
    sqlite3_stmt *get_post, *get_ev, *id_hits, *get_block, *ins_block, *ins_ev, *ins_term, *max_key, *ins_atom, *get_atom;
    atom_slot *atoms;          /* writer's cache: string -> id */
    size_t natoms, atom_cap;
    struct {
        int64_t id;
        uint64_t used;
        tw__block b;
    } cache[CACHE_BLOCKS];
    uint64_t tick;
    tw_buf packed;
    sqlite3_stmt *find_st[2];     /* scans without column constraints: [oldest_first] */
    struct pair {
        int32_t h;
        int64_t k;
    } *pairs;                     /* the batch's (term, key), written as posting lists */
    size_t npairs, pair_cap;
    tw_buf keys;                  /* a posting list being encoded or decoded */
    int64_t *found;               /* a term's keys, decoded */
    size_t nfound, found_cap;
    struct ev_row {
        int64_t k, blk, slot, atoms[TW_ARCH_NCOLS];
    } *evs;                       /* the batch's event rows, inserted in key order (pages fill up) */
    size_t nevs, evs_cap;
    tw__sqroll *roll;             /* NULL: an archive of version 2 opened read-only (counts scan) */
} sq;

int64_t tw__arch_key_lo(int64_t time_ms)
{
    int64_t s = time_ms >= 0 ? time_ms / 1000 : -((-time_ms + 999) / 1000);
    return (s - TW_ARCH_KEY_EPOCH) * TW_ARCH_KEY_SEQ;
}

int64_t tw__arch_key_time(int64_t key)
{
    int64_t s = key >= 0 ? key / TW_ARCH_KEY_SEQ : -((-key + TW_ARCH_KEY_SEQ - 1) / TW_ARCH_KEY_SEQ);
    return (s + TW_ARCH_KEY_EPOCH) * 1000;
}

/* An SQLite failure as a tw_error naming the file: damaged -> TW_ECORRUPT, full -> TW_ENOSPC. */
static tw_status dberr(sq *q, tw_error *err, int rc, const char *doing)
{
    int base = rc & 0xff;
    int sys = q->db ? sqlite3_system_errno(q->db) : 0;
    const char *msg = q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc);
    if (base == SQLITE_CORRUPT || base == SQLITE_NOTADB)
        return tw__err(err, TW_ECORRUPT, "archive %s: the file is damaged or not an archive (%s while %s)", q->path,
                       msg, doing);
    if (base == SQLITE_FULL || sys == ENOSPC || sys == EDQUOT || sys == EFBIG)
        return tw__err(err, TW_ENOSPC,
                       "archive %s: the disk is full (%s while %s%s); nothing of this batch was archived", q->path,
                       msg, doing, sys == EDQUOT ? ": quota" : sys == EFBIG ? ": file size limit" : "");
    if (base == SQLITE_NOMEM)
        return tw__err(err, TW_ENOMEM, "archive %s: out of memory while %s", q->path, doing);
    if (base == SQLITE_IOERR || base == SQLITE_CANTOPEN || base == SQLITE_READONLY || base == SQLITE_PERM)
        return tw__err(err, TW_EIO, "archive %s: %s while %s", q->path, msg, doing);
    return tw__err(err, TW_EDB, "archive %s: %s while %s", q->path, msg, doing);
}

static int exec(sq *q, const char *sql) { return sqlite3_exec(q->db, sql, NULL, NULL, NULL); }

static int prep(sq *q, sqlite3_stmt **st, const char *sql)
{
    return sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

/* ---- atoms ---- */

static int64_t atom_cached(sq *q, const char *s, uint64_t h, size_t *slot)
{
    if (!q->atom_cap)
        return -1;
    size_t i = h & (q->atom_cap - 1);
    while (q->atoms[i].s) {
        if (q->atoms[i].h == h && strcmp(q->atoms[i].s, s) == 0)
            return q->atoms[i].id;
        i = (i + 1) & (q->atom_cap - 1);
    }
    *slot = i;
    return -1;
}

static int atom_remember(sq *q, const char *s, uint64_t h, int64_t id)
{
    if ((q->natoms + 1) * 2 > q->atom_cap) {
        size_t cap = q->atom_cap ? q->atom_cap * 2 : 256;
        atom_slot *n = calloc(cap, sizeof *n);
        if (!n)
            return -1;
        for (size_t i = 0; i < q->atom_cap; i++) {
            if (!q->atoms[i].s)
                continue;
            size_t j = q->atoms[i].h & (cap - 1);
            while (n[j].s)
                j = (j + 1) & (cap - 1);
            n[j] = q->atoms[i];
        }
        free(q->atoms);
        q->atoms = n;
        q->atom_cap = cap;
    }
    size_t slot = 0;
    if (atom_cached(q, s, h, &slot) >= 0)
        return 0;
    char *c = strdup(s);
    if (!c)
        return -1;
    q->atoms[slot] = (atom_slot){h, id, c};
    q->natoms++;
    return 0;
}

static void atoms_forget(sq *q)
{
    for (size_t i = 0; i < q->atom_cap; i++)
        free(q->atoms[i].s);
    free(q->atoms);
    q->atoms = NULL;
    q->natoms = q->atom_cap = 0;
}

/* The id of s, inserted if new (in the open write transaction); 0 for "". */
static tw_status atom_id(sq *q, const char *s, int64_t *id, tw_error *err)
{
    *id = 0;
    if (!*s)
        return TW_OK;
    uint64_t h = tw__hash_bytes(s, strlen(s), 0xa70);
    size_t slot;
    int64_t c = atom_cached(q, s, h, &slot);
    if (c >= 0) {
        *id = c;
        return TW_OK;
    }
    int rc;
    sqlite3_bind_text(q->get_atom, 1, s, -1, SQLITE_STATIC);
    rc = sqlite3_step(q->get_atom);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(q->get_atom, 0);
        sqlite3_reset(q->get_atom);
    } else {
        sqlite3_reset(q->get_atom);
        if (rc != SQLITE_DONE)
            return dberr(q, err, rc, "reading names");
        sqlite3_bind_text(q->ins_atom, 1, s, -1, SQLITE_STATIC);
        rc = sqlite3_step(q->ins_atom);
        sqlite3_reset(q->ins_atom);
        if (rc != SQLITE_DONE)
            return dberr(q, err, rc, "storing a name");
        *id = sqlite3_last_insert_rowid(q->db);
    }
    if (atom_remember(q, s, h, *id))
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    return TW_OK;
}

/* ---- dictionaries ---- */

static tw_status load_dicts(sq *q, tw_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT id, data FROM dicts ORDER BY id", -1, &st, NULL);
    tw_status s = TW_OK;
    if (rc)
        return dberr(q, err, rc, "reading dictionaries");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t id = (uint32_t)sqlite3_column_int64(st, 0);
        if ((s = tw__codec_load_dict(q->codec, id, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                                     err)))
            break;
        q->dict = id;
    }
    if (!s && rc != SQLITE_DONE)
        s = dberr(q, err, rc, "reading dictionaries");
    sqlite3_finalize(st);
    return s;
}

static tw_status train(sq *q, const tw__arch_rec *recs, size_t n, tw_error *err)
{
    const char **bodies = malloc(n * sizeof *bodies);
    size_t *lens = malloc(n * sizeof *lens);
    void *dict = NULL;
    size_t dict_len = 0;
    tw_status s = TW_OK;
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
        goto out; /* nothing to learn: blocks go without a dictionary */
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "INSERT INTO dicts(data) VALUES(?)", -1, &st, NULL);
    if (!rc) {
        sqlite3_bind_blob(st, 1, dict, (int)dict_len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : rc;
    }
    sqlite3_finalize(st);
    if (rc) {
        s = dberr(q, err, rc, "storing the compression dictionary");
        goto out;
    }
    uint32_t id = (uint32_t)sqlite3_last_insert_rowid(q->db);
    if ((s = tw__codec_load_dict(q->codec, id, dict, dict_len, err)))
        goto out;
    q->dict = id;
out:
    free(bodies);
    free(lens);
    free(dict);
    return s;
}

/* ---- writing ---- */

/* Next free key in the second of time_ms (the batch's keys are allocated in order per second). */
typedef struct sec_slot {
    int64_t lo, next;
} sec_slot;

static tw_status next_key(sq *q, sec_slot *secs, size_t cap, int64_t time_ms, int64_t *key, tw_error *err)
{
    int64_t lo = tw__arch_key_lo(time_ms);
    size_t i = (size_t)(tw__hash_mix((uint64_t)lo) & (cap - 1));
    while (secs[i].next && secs[i].lo != lo)
        i = (i + 1) & (cap - 1);
    if (!secs[i].next) {
        sqlite3_bind_int64(q->max_key, 1, lo);
        sqlite3_bind_int64(q->max_key, 2, lo + TW_ARCH_KEY_SEQ);
        int rc = sqlite3_step(q->max_key);
        int64_t next = lo;
        if (rc == SQLITE_ROW && sqlite3_column_type(q->max_key, 0) != SQLITE_NULL)
            next = sqlite3_column_int64(q->max_key, 0) + 1;
        sqlite3_reset(q->max_key);
        if (rc != SQLITE_ROW)
            return dberr(q, err, rc, "allocating keys");
        secs[i].lo = lo;
        secs[i].next = next;
    }
    if (secs[i].next >= lo + TW_ARCH_KEY_SEQ)
        return tw__err(err, TW_ELIMIT, "archive: more than %lld events in one second (%lld)", TW_ARCH_KEY_SEQ,
                       (long long)(time_ms / 1000));
    *key = secs[i].next++;
    return TW_OK;
}

static tw_status put_block(sq *q, const tw__arch_rec *recs, size_t n, sec_slot *secs, size_t cap, tw_error *err)
{
    const char *bodies[TW_ARCH_BLOCK_EVENTS];
    size_t lens[TW_ARCH_BLOCK_EVENTS], raw = 0;
    for (size_t i = 0; i < n; i++) {
        bodies[i] = recs[i].body;
        lens[i] = recs[i].body_len;
    }
    tw_status s = tw__codec_pack(q->codec, q->dict, bodies, lens, n, &q->packed, &raw, err);
    if (s)
        return s;
    sqlite3_bind_int64(q->ins_block, 1, q->dict);
    sqlite3_bind_int64(q->ins_block, 2, (sqlite3_int64)n);
    sqlite3_bind_int64(q->ins_block, 3, (sqlite3_int64)raw);
    sqlite3_bind_blob(q->ins_block, 4, q->packed.data, (int)q->packed.len, SQLITE_STATIC);
    int rc = sqlite3_step(q->ins_block);
    sqlite3_reset(q->ins_block);
    if (rc != SQLITE_DONE)
        return dberr(q, err, rc, "storing events");
    int64_t blk = sqlite3_last_insert_rowid(q->db);
    for (size_t i = 0; i < n; i++) {
        const tw__arch_rec *r = &recs[i];
        int64_t key = 0;
        if ((s = next_key(q, secs, cap, r->time_ms, &key, err)))
            return s;
        const char *vals[TW_ARCH_NCOLS] = {r->event_name, r->source, r->account, r->region, r->detail_type,
                                           r->error_code};
        if (q->nevs == q->evs_cap) {
            size_t ec = q->evs_cap ? q->evs_cap * 2 : 1024;
            struct ev_row *v = realloc(q->evs, ec * sizeof *v);
            if (!v)
                return tw__err(err, TW_ENOMEM, "archive: out of memory");
            q->evs = v;
            q->evs_cap = ec;
        }
        struct ev_row *e = &q->evs[q->nevs++];
        e->k = key;
        e->blk = blk;
        e->slot = (int64_t)i;
        for (int c = 0; c < TW_ARCH_NCOLS; c++)
            if ((s = atom_id(q, vals[c], &e->atoms[c], err)))
                return s;
        if (q->npairs + r->nterms > q->pair_cap) {
            size_t pc = q->pair_cap ? q->pair_cap : 4096;
            while (pc < q->npairs + r->nterms)
                pc *= 2;
            struct pair *v = realloc(q->pairs, pc * sizeof *v);
            if (!v)
                return tw__err(err, TW_ENOMEM, "archive: out of memory");
            q->pairs = v;
            q->pair_cap = pc;
        }
        for (size_t t = 0; t < r->nterms; t++)
            q->pairs[q->npairs++] = (struct pair){r->terms[t], key};
    }
    return TW_OK;
}

static int ev_cmp(const void *a, const void *b)
{
    const struct ev_row *x = a, *y = b;
    return x->k < y->k ? -1 : x->k > y->k;
}

/* The batch's event rows in key order (a batch read newest first would otherwise fill the table's
 * pages from the right, leaving them half empty), and their counts in the rollup. */
static tw_status put_events(sq *q, tw_error *err)
{
    if (q->nevs > 1)
        qsort(q->evs, q->nevs, sizeof *q->evs, ev_cmp);
    for (size_t i = 0; i < q->nevs; i++) {
        const struct ev_row *e = &q->evs[i];
        sqlite3_bind_int64(q->ins_ev, 1, e->k);
        sqlite3_bind_int64(q->ins_ev, 2, e->blk);
        sqlite3_bind_int64(q->ins_ev, 3, e->slot);
        for (int c = 0; c < TW_ARCH_NCOLS; c++) {
            if (e->atoms[c])
                sqlite3_bind_int64(q->ins_ev, 4 + c, e->atoms[c]);
            else
                sqlite3_bind_null(q->ins_ev, 4 + c);
        }
        int rc = sqlite3_step(q->ins_ev);
        sqlite3_reset(q->ins_ev);
        if (rc != SQLITE_DONE)
            return dberr(q, err, rc, "storing events");
        if ((rc = tw__sqroll_note(q->roll, e->k, e->atoms)))
            return dberr(q, err, rc, "counting events");
    }
    q->nevs = 0;
    int rc = tw__sqroll_write(q->roll);
    return rc ? dberr(q, err, rc, "storing the counts") : TW_OK;
}

static tw_status block(sq *q, int64_t id, tw__block **out, tw_error *err);

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

static int put_varint(tw_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return tw__buf_append(b, tmp, n) ? -1 : 0;
}

/* Writes the batch's pairs as one posting list per term. */
static tw_status put_postings(sq *q, tw_error *err)
{
    if (!q->npairs)
        return TW_OK;
    qsort(q->pairs, q->npairs, sizeof *q->pairs, pair_cmp);
    for (size_t i = 0; i < q->npairs;) {
        size_t j = i;
        tw_buf_reset(&q->keys);
        int64_t prev = q->pairs[i].k;
        for (j = i + 1; j < q->npairs && q->pairs[j].h == q->pairs[i].h; j++) {
            if (q->pairs[j].k == prev)
                continue;
            if (put_varint(&q->keys, (uint64_t)(q->pairs[j].k - prev)))
                return tw__err(err, TW_ENOMEM, "archive: out of memory");
            prev = q->pairs[j].k;
        }
        sqlite3_bind_int64(q->ins_term, 1, q->pairs[i].h);
        sqlite3_bind_int64(q->ins_term, 2, q->pairs[i].k);
        sqlite3_bind_int64(q->ins_term, 3, prev);
        sqlite3_bind_blob(q->ins_term, 4, q->keys.len ? q->keys.data : "", (int)q->keys.len, SQLITE_STATIC);
        int rc = sqlite3_step(q->ins_term);
        sqlite3_reset(q->ins_term);
        if (rc != SQLITE_DONE)
            return dberr(q, err, rc, "indexing events");
        i = j;
    }
    q->npairs = 0;
    return TW_OK;
}

static int key_cmp_asc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int key_cmp_desc(const void *a, const void *b) { return key_cmp_asc(b, a); }

/* Every key of term h within [lo, hi], sorted, into q->found. */
static tw_status term_keys(sq *q, int32_t h, int64_t lo, int64_t hi, int desc, tw_error *err)
{
    q->nfound = 0;
    sqlite3_bind_int64(q->get_post, 1, h);
    sqlite3_bind_int64(q->get_post, 2, lo);
    sqlite3_bind_int64(q->get_post, 3, hi);
    int rc;
    tw_status s = TW_OK;
    while ((rc = sqlite3_step(q->get_post)) == SQLITE_ROW) {
        int64_t k = sqlite3_column_int64(q->get_post, 0);
        const unsigned char *p = sqlite3_column_blob(q->get_post, 1);
        size_t n = (size_t)sqlite3_column_bytes(q->get_post, 1), i = 0;
        for (;;) {
            if (k >= lo && k <= hi) {
                if (q->nfound == q->found_cap) {
                    size_t cap = q->found_cap ? q->found_cap * 2 : 1024;
                    int64_t *v = realloc(q->found, cap * sizeof *v);
                    if (!v) {
                        s = tw__err(err, TW_ENOMEM, "archive: out of memory");
                        goto out;
                    }
                    q->found = v;
                    q->found_cap = cap;
                }
                q->found[q->nfound++] = k;
            }
            if (i >= n)
                break;
            uint64_t d = 0;
            int shift = 0;
            while (i < n && shift < 64) {
                d |= (uint64_t)(p[i] & 0x7f) << shift;
                shift += 7;
                if (!(p[i++] & 0x80))
                    break;
            }
            if (!d || (p[i - 1] & 0x80)) {
                s = tw__err(err, TW_ECORRUPT, "archive %s: an index entry is damaged", q->path);
                goto out;
            }
            k += (int64_t)d;
        }
    }
    if (rc != SQLITE_DONE)
        s = dberr(q, err, rc, "reading the index");
    else if (q->nfound > 1) {
        /* lists written in time order (the usual ingest) are already ascending: no sort */
        size_t i = 1;
        while (i < q->nfound && q->found[i - 1] < q->found[i])
            i++;
        if (i < q->nfound) {
            qsort(q->found, q->nfound, sizeof *q->found, desc ? key_cmp_desc : key_cmp_asc);
        } else if (desc) {
            for (size_t a = 0, b = q->nfound - 1; a < b; a++, b--) {
                int64_t t = q->found[a];
                q->found[a] = q->found[b];
                q->found[b] = t;
            }
        }
    }
out:
    sqlite3_reset(q->get_post);
    return s;
}

/* 1 when an event with this id is stored (an ID term hit confirmed on the body). */
static tw_status stored(sq *q, const tw__arch_rec *r, int *found, tw_error *err)
{
    *found = 0;
    if (!*r->id)
        return TW_OK;
    tw_status s = term_keys(q, tw__arch_term(TW_ARCH_TERM_ID, r->id, strlen(r->id)), INT64_MIN, INT64_MAX, 0, err);
    for (size_t i = 0; !s && !*found && i < q->nfound; i++) {
        sqlite3_bind_int64(q->id_hits, 1, q->found[i]);
        int rc = sqlite3_step(q->id_hits);
        if (rc == SQLITE_ROW) {
            tw__block *bl = NULL;
            const char *body;
            size_t len;
            if (!(s = block(q, sqlite3_column_int64(q->id_hits, 0), &bl, err)) &&
                !(s = tw__block_body(bl, (uint32_t)sqlite3_column_int64(q->id_hits, 1), &body, &len, err)))
                *found = tw__arch_body_has_id(body, len, r->id);
        } else if (rc != SQLITE_DONE) {
            s = dberr(q, err, rc, "looking for duplicates");
        }
        sqlite3_reset(q->id_hits);
    }
    return s;
}

static tw_status sq_put_batch(tw__archive_backend *b, const tw__arch_rec *recs, size_t n, tw_error *err)
{
    sq *q = (sq *)b;
    if (q->readonly)
        return tw__err(err, TW_EINVAL, "archive %s: opened read-only", q->path);
    if (!n)
        return TW_OK;
    size_t cap = 64;
    while (cap < n * 2)
        cap *= 2;
    sec_slot *secs = calloc(cap, sizeof *secs);
    tw__arch_rec *keep = malloc(n * sizeof *keep);
    uint64_t dups = 0;
    if (!secs || !keep) {
        free(secs);
        free(keep);
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    }
    tw_status s = TW_OK;
    int rc = exec(q, "BEGIN IMMEDIATE");
    if (rc) {
        s = dberr(q, err, rc, "starting a write");
        goto out;
    }
    if (!q->dict && n >= TW_ARCH_DICT_MIN_EVENTS) {
        if ((s = load_dicts(q, err)) || (!q->dict && (s = train(q, recs, n, err))))
            goto fail;
    }
    /* dedup against what is stored, inside the write transaction (no lock per event) */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int found;
        if ((s = stored(q, &recs[i], &found, err)))
            goto fail;
        if (found)
            dups++;
        else
            keep[m++] = recs[i];
    }
    for (size_t i = 0; i < m;) {
        size_t k = 0, bytes = 0;
        while (i + k < m && k < TW_ARCH_BLOCK_EVENTS && (k == 0 || bytes + keep[i + k].body_len <= TW_ARCH_BLOCK_BYTES))
            bytes += keep[i + k++].body_len;
        if ((s = put_block(q, keep + i, k, secs, cap, err)))
            goto fail;
        i += k;
    }
    if ((s = put_events(q, err)) || (s = put_postings(q, err)))
        goto fail;
    if ((rc = exec(q, "COMMIT"))) {
        s = dberr(q, err, rc, "committing");
        goto fail;
    }
    q->base.duplicates += dups;
    goto out;
fail:
    q->npairs = 0;
    q->nevs = 0;
    tw__sqroll_discard(q->roll);
    exec(q, "ROLLBACK");
    /* names inserted by the rolled back transaction are gone: forget the cache */
    atoms_forget(q);
out:
    free(secs);
    free(keep);
    return s;
}

/* ---- reading ---- */

static tw_status block(sq *q, int64_t id, tw__block **out, tw_error *err)
{
    size_t victim = 0;
    for (size_t i = 0; i < CACHE_BLOCKS; i++) {
        if (q->cache[i].used && q->cache[i].id == id) {
            q->cache[i].used = ++q->tick;
            *out = &q->cache[i].b;
            return TW_OK;
        }
        if (q->cache[i].used < q->cache[victim].used)
            victim = i;
    }
    sqlite3_bind_int64(q->get_block, 1, id);
    int rc = sqlite3_step(q->get_block);
    tw_status s = TW_OK;
    if (rc != SQLITE_ROW) {
        s = rc == SQLITE_DONE ? tw__err(err, TW_ECORRUPT, "archive %s: block %lld is missing (damaged file)", q->path,
                                        (long long)id)
                              : dberr(q, err, rc, "reading events");
        goto out;
    }
    uint32_t dict = (uint32_t)sqlite3_column_int64(q->get_block, 0);
    if (dict && !tw__codec_has_dict(q->codec, dict) && (s = load_dicts(q, err)))
        goto out;
    q->cache[victim].used = 0;
    if ((s = tw__codec_unpack(q->codec, dict, sqlite3_column_blob(q->get_block, 1),
                              (size_t)sqlite3_column_bytes(q->get_block, 1), &q->cache[victim].b, err))) {
        tw__err_prefix(err, "archive %s: block %lld", q->path, (long long)id);
        goto out;
    }
    q->cache[victim].id = id;
    q->cache[victim].used = ++q->tick;
    *out = &q->cache[victim].b;
out:
    sqlite3_reset(q->get_block);
    return s;
}

/* Resolves the plan's column values to atom ids: " AND e.name IN (3,7)"; *none when a constrained
 * column has no known value (nothing can match). */
static tw_status col_filters(sq *q, const tw__arch_plan *p, tw_buf *sql, int *none, tw_error *err)
{
    *none = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT id FROM atoms WHERE s = ?", -1, &st, NULL);
    if (rc)
        return dberr(q, err, rc, "reading names");
    tw_status s = TW_OK;
    for (int c = 0; c < TW_ARCH_NCOLS && !*none; c++) {
        if (!p->ncols[c])
            continue;
        size_t found = 0;
        for (size_t i = 0; i < p->ncols[c] && i < TW_ARCH_PLAN_VALUES; i++) {
            sqlite3_bind_text(st, 1, p->cols[c][i], -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && found++)
                tw__buf_printf(sql, ",%lld", (long long)sqlite3_column_int64(st, 0));
            else if (rc == SQLITE_ROW)
                tw__buf_printf(sql, " AND e.%s IN (%lld", col_names[c], (long long)sqlite3_column_int64(st, 0));
            else if (rc != SQLITE_DONE)
                s = dberr(q, err, rc, "reading names");
            sqlite3_reset(st);
            if (s)
                goto out;
        }
        if (!found)
            *none = 1;
        else
            tw__buf_putc(sql, ')');
    }
out:
    sqlite3_finalize(st);
    if (!s && tw_buf_error(sql))
        s = tw__err(err, TW_ENOMEM, "archive: out of memory");
    return s;
}

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

static int plan_has_cols(const tw__arch_plan *p)
{
    for (int c = 0; c < TW_ARCH_NCOLS; c++)
        if (p->ncols[c])
            return 1;
    return 0;
}

/* The plan's column values as atom ids (ids[c][0..n[c]-1]); *none when a constrained column has no
 * stored value at all. */
static tw_status resolve_cols(sq *q, const tw__arch_plan *p, int64_t ids[TW_ARCH_NCOLS][TW_ARCH_PLAN_VALUES],
                              size_t n[TW_ARCH_NCOLS], int *none, tw_error *err)
{
    *none = 0;
    tw_status s = TW_OK;
    for (int c = 0; c < TW_ARCH_NCOLS; c++) {
        n[c] = 0;
        for (size_t i = 0; i < p->ncols[c] && i < TW_ARCH_PLAN_VALUES; i++) {
            sqlite3_bind_text(q->get_atom, 1, p->cols[c][i], -1, SQLITE_STATIC);
            int rc = sqlite3_step(q->get_atom);
            if (rc == SQLITE_ROW)
                ids[c][n[c]++] = sqlite3_column_int64(q->get_atom, 0);
            else if (rc != SQLITE_DONE)
                s = dberr(q, err, rc, "reading names");
            sqlite3_reset(q->get_atom);
            if (s)
                return s;
        }
        if (p->ncols[c] && !n[c])
            *none = 1;
    }
    return TW_OK;
}

/* A term's events: its posting lists, then each event's row (gone when pruned), filtered here. */
static tw_status find_term(sq *q, const tw__arch_plan *p, int64_t lo, int64_t hi, tw__arch_cand_fn cb, void *ud,
                           tw_error *err)
{
    int64_t ids[TW_ARCH_NCOLS][TW_ARCH_PLAN_VALUES];
    size_t nids[TW_ARCH_NCOLS];
    int none;
    tw_status s = resolve_cols(q, p, ids, nids, &none, err);
    if (s || none)
        return s;
    if ((s = term_keys(q, p->term, lo, hi, !p->oldest_first, err)))
        return s;
    /* q->found is reused by nested calls (none today); work on a copy of the count only */
    for (size_t i = 0; i < q->nfound; i++) {
        sqlite3_bind_int64(q->get_ev, 1, q->found[i]);
        int rc = sqlite3_step(q->get_ev);
        if (rc == SQLITE_DONE) {
            sqlite3_reset(q->get_ev);
            continue;
        }
        if (rc != SQLITE_ROW) {
            s = dberr(q, err, rc, "querying");
            sqlite3_reset(q->get_ev);
            return s;
        }
        int ok = 1;
        for (int c = 0; c < TW_ARCH_NCOLS && ok; c++) {
            if (!nids[c])
                continue;
            int64_t v = sqlite3_column_int64(q->get_ev, 2 + c);
            ok = 0;
            for (size_t j = 0; j < nids[c]; j++)
                if (ids[c][j] == v)
                    ok = 1;
        }
        int64_t blk = sqlite3_column_int64(q->get_ev, 0);
        uint32_t slot = (uint32_t)sqlite3_column_int64(q->get_ev, 1);
        sqlite3_reset(q->get_ev);
        if (!ok)
            continue;
        tw__block *bl = NULL;
        const char *body;
        size_t len;
        if ((s = block(q, blk, &bl, err)) || (s = tw__block_body(bl, slot, &body, &len, err)))
            return s;
        int r = cb(ud, q->found[i], body, len);
        if (r < 0)
            return err && err->code ? err->code : TW_EINVAL;
        if (r > 0)
            break;
    }
    return TW_OK;
}

static tw_status sq_find(tw__archive_backend *b, const tw__arch_plan *p, tw__arch_cand_fn cb, void *ud,
                         tw_error *err)
{
    sq *q = (sq *)b;
    if (p->has_term) {
        int64_t lo, hi;
        key_range(p, &lo, &hi);
        return find_term(q, p, lo, hi, cb, ud, err);
    }
    tw_buf sql = TW_BUF_INIT;
    sqlite3_stmt *st = NULL, *cached = NULL;
    int none = 0, rc;
    tw_status s = TW_OK;
    tw__buf_puts(&sql, "SELECT e.k, e.blk, e.slot FROM ev e WHERE e.k BETWEEN ?1 AND ?2");
    int cols = plan_has_cols(p);
    if (cols && ((s = col_filters(q, p, &sql, &none, err)) || none))
        goto out;
    tw__buf_printf(&sql, " ORDER BY e.k %s", p->oldest_first ? "ASC" : "DESC");
    if (tw_buf_error(&sql)) {
        s = tw__err(err, TW_ENOMEM, "archive: out of memory");
        goto out;
    }
    /* the same few shapes run for every add (dedup) and every page: prepared once */
    sqlite3_stmt **slot = cols ? NULL : &q->find_st[p->oldest_first != 0];
    if (slot && *slot) {
        st = cached = *slot;
    } else {
        rc = sqlite3_prepare_v3(q->db, sql.data, -1, slot ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL);
        if (rc) {
            s = dberr(q, err, rc, "querying");
            goto out;
        }
        if (slot)
            *slot = cached = st;
    }
    int64_t lo, hi;
    key_range(p, &lo, &hi);
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t key = sqlite3_column_int64(st, 0), blk = sqlite3_column_int64(st, 1);
        uint32_t bslot = (uint32_t)sqlite3_column_int64(st, 2);
        tw__block *bl = NULL;
        const char *body;
        size_t len;
        if ((s = block(q, blk, &bl, err)) || (s = tw__block_body(bl, bslot, &body, &len, err)))
            goto out;
        int r = cb(ud, key, body, len);
        if (r < 0) {
            s = err && err->code ? err->code : TW_EINVAL;
            goto out;
        }
        if (r > 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        s = dberr(q, err, rc, "querying");
out:
    if (cached)
        sqlite3_reset(cached);
    else
        sqlite3_finalize(st);
    tw__buf_free(&sql);
    return s;
}

/* Counts from the rollup (whole minutes) and the events of the partial minutes at the ends, in one
 * read transaction so that a writer committing meanwhile is seen in all of it or none. */
static tw_status roll_counts(sq *q, const tw__arch_plan *p, int64_t step_ms, int group_col, tw__arch_count_fn cb,
                             void *ud, tw_error *err)
{
    int64_t lo, hi;
    key_range(p, &lo, &hi);
    int rc = exec(q, "BEGIN");
    if (rc)
        return dberr(q, err, rc, "counting");
    rc = tw__sqroll_counts(q->roll, lo, hi, step_ms, group_col, cb, ud);
    exec(q, "COMMIT");
    return rc ? dberr(q, err, rc, "counting") : TW_OK;
}

static tw_status sq_counts(tw__archive_backend *b, const tw__arch_plan *p, int64_t step_ms, int group_col,
                           tw__arch_count_fn cb, void *ud, tw_error *err)
{
    sq *q = (sq *)b;
    if (q->roll && !plan_has_cols(p) && step_ms % 60000 == 0 && group_col < TW_ROLL_DIMS)
        return roll_counts(q, p, step_ms, group_col, cb, ud, err);
    tw_buf sql = TW_BUF_INIT;
    sqlite3_stmt *st = NULL;
    int none = 0;
    tw_status s;
    /* the second of a key: floor(k / 2^18), epoch-shifted; buckets of step_ms */
    if (group_col < 0) {
        tw__buf_printf(&sql,
                      "SELECT ((((e.k >> 18) + %lld) * 1000) / %lld) * %lld AS bucket, '', count(*) FROM ev e"
                      " WHERE e.k BETWEEN ?1 AND ?2",
                      TW_ARCH_KEY_EPOCH, (long long)step_ms, (long long)step_ms);
    } else {
        tw__buf_printf(&sql,
                      "SELECT ((((e.k >> 18) + %lld) * 1000) / %lld) * %lld AS bucket, coalesce(a.s, ''), count(*)"
                      " FROM ev e LEFT JOIN atoms a ON a.id = e.%s WHERE e.k BETWEEN ?1 AND ?2",
                      TW_ARCH_KEY_EPOCH, (long long)step_ms, (long long)step_ms, col_names[group_col]);
    }
    if ((s = col_filters(q, p, &sql, &none, err)) || none)
        goto out;
    tw__buf_puts(&sql, " GROUP BY 1, 2 ORDER BY 1, 2");
    if (tw_buf_error(&sql)) {
        s = tw__err(err, TW_ENOMEM, "archive: out of memory");
        goto out;
    }
    int rc = sqlite3_prepare_v2(q->db, sql.data, -1, &st, NULL);
    if (rc) {
        s = dberr(q, err, rc, "counting");
        goto out;
    }
    int64_t lo, hi;
    key_range(p, &lo, &hi);
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (cb(ud, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
               (uint64_t)sqlite3_column_int64(st, 2)))
            break;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        s = dberr(q, err, rc, "counting");
out:
    sqlite3_finalize(st);
    tw__buf_free(&sql);
    return s;
}

static uint64_t file_size(const char *path, const char *suffix)
{
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s%s", path, suffix);
    return stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static tw_status sq_stats(tw__archive_backend *b, tw_archive_stats *o, tw_error *err)
{
    sq *q = (sq *)b;
    memset(o, 0, sizeof *o);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db,
                                "SELECT (SELECT count(*) FROM ev), (SELECT min(k) FROM ev), (SELECT max(k) FROM ev),"
                                " (SELECT total(raw) FROM blocks), (SELECT total(length(data)) FROM blocks),"
                                " (SELECT count(*) FROM dicts)",
                                -1, &st, NULL);
    if (rc)
        return dberr(q, err, rc, "reading statistics");
    tw_status s = TW_OK;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        o->events = (uint64_t)sqlite3_column_int64(st, 0);
        if (o->events) {
            o->first_ms = tw__arch_key_time(sqlite3_column_int64(st, 1));
            o->last_ms = tw__arch_key_time(sqlite3_column_int64(st, 2));
        }
        o->raw_bytes = (uint64_t)sqlite3_column_double(st, 3);
        o->stored_bytes = (uint64_t)sqlite3_column_double(st, 4);
        o->dictionary = sqlite3_column_int(st, 5) > 0;
        o->ratio = o->stored_bytes ? (double)o->raw_bytes / (double)o->stored_bytes : 0;
    } else {
        s = dberr(q, err, rc, "reading statistics");
    }
    sqlite3_finalize(st);
    o->bytes_on_disk = file_size(q->path, "") + file_size(q->path, "-wal");
    return s;
}

static tw_status sq_prune(tw__archive_backend *b, int64_t before_ms, uint64_t *removed, tw_error *err)
{
    sq *q = (sq *)b;
    if (q->readonly)
        return tw__err(err, TW_EINVAL, "archive %s: opened read-only", q->path);
    int64_t cut = tw__arch_key_lo(before_ms);
    sqlite3_stmt *st = NULL;
    int rc = exec(q, "BEGIN IMMEDIATE");
    const char *doing = "pruning";
    if (rc)
        goto fail;
    static const char *const steps[] = {
        "CREATE TEMP TABLE IF NOT EXISTS prune_blk(b INTEGER PRIMARY KEY)",
        "DELETE FROM prune_blk",
        "INSERT OR IGNORE INTO prune_blk SELECT blk FROM ev WHERE k < ?1",
        "DELETE FROM post WHERE k1 < ?1",
        "DELETE FROM ev WHERE k < ?1",
        ("DELETE FROM blocks WHERE id IN (SELECT b FROM prune_blk) AND id NOT IN (SELECT blk FROM ev WHERE blk IN"
         " (SELECT b FROM prune_blk))"),
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if ((rc = sqlite3_prepare_v2(q->db, steps[i], -1, &st, NULL)))
            goto fail;
        if (sqlite3_bind_parameter_count(st))
            sqlite3_bind_int64(st, 1, cut);
        rc = sqlite3_step(st);
        if (i == 4 && removed)
            *removed = (uint64_t)sqlite3_changes64(q->db);
        sqlite3_finalize(st);
        st = NULL;
        if (rc != SQLITE_DONE)
            goto fail;
    }
    /* the rollup: hours before the cut's go, the cut's own hour is counted again */
    doing = "pruning the counts";
    if ((rc = sqlite3_prepare_v2(q->db, "DELETE FROM roll WHERE h < ?1", -1, &st, NULL)))
        goto fail;
    sqlite3_bind_int64(st, 1, tw__roll_hour(tw__roll_minute(cut)));
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE || (rc = tw__sqroll_rebuild(q->roll, cut, cut)))
        goto fail;
    if ((rc = exec(q, "COMMIT")))
        goto fail;
    exec(q, "PRAGMA incremental_vacuum");
    return TW_OK;
fail:
    {
        tw_status s = dberr(q, err, rc, doing);
        sqlite3_finalize(st);
        exec(q, "ROLLBACK");
        return s;
    }
}

static void sq_close(tw__archive_backend *b)
{
    sq *q = (sq *)b;
    if (!q)
        return;
    sqlite3_finalize(q->id_hits);
    sqlite3_finalize(q->get_post);
    sqlite3_finalize(q->get_ev);
    sqlite3_finalize(q->get_block);
    sqlite3_finalize(q->ins_block);
    sqlite3_finalize(q->ins_ev);
    sqlite3_finalize(q->ins_term);
    sqlite3_finalize(q->max_key);
    sqlite3_finalize(q->ins_atom);
    sqlite3_finalize(q->get_atom);
    for (int i = 0; i < 2; i++)
        sqlite3_finalize(q->find_st[i]);
    tw__sqroll_close(q->roll);
    sqlite3_close(q->db);
    for (size_t i = 0; i < CACHE_BLOCKS; i++)
        tw__block_free(&q->cache[i].b);
    atoms_forget(q);
    tw__codec_free(q->codec);
    tw__buf_free(&q->packed);
    tw__buf_free(&q->keys);
    free(q->pairs);
    free(q->evs);
    free(q->found);
    free(q->path);
    free(q);
}

static const struct tw__archive_backend_ops sqlite_ops = {
    "sqlite", sq_put_batch, sq_find, sq_counts, sq_stats, sq_prune, sq_close,
};

static tw_status read_version(sq *q, long long *v, tw_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT v FROM meta WHERE k = 'schema'", -1, &st, NULL);
    *v = -1;
    if (!rc && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc ? dberr(q, err, rc, "opening") : TW_OK;
}

/* Version 2 -> 3: the rollup, counted from the events (a second or two per million events), in
 * one transaction: an interrupted migration leaves version 2 as it was. */
static tw_status migrate_v2(sq *q, tw_error *err)
{
    long long v;
    int rc = exec(q, "BEGIN IMMEDIATE");
    tw_status s;
    if (rc)
        return dberr(q, err, rc, "adding the counts rollup to a version 2 archive");
    if ((s = read_version(q, &v, err)))
        goto fail;
    if (v == 2) { /* else another process has just done it */
        if ((rc = exec(q, TW__SQROLL_TABLE)) || (rc = tw__sqroll_open(q->db, 1, &q->roll)) ||
            (rc = tw__sqroll_rebuild(q->roll, INT64_MIN, INT64_MAX)) ||
            (rc = exec(q, "UPDATE meta SET v = 3 WHERE k = 'schema'")))
            goto dbfail;
        tw__sqroll_close(q->roll);
        q->roll = NULL;
    }
    if ((rc = exec(q, "COMMIT")))
        goto dbfail;
    return TW_OK;
dbfail:
    s = dberr(q, err, rc, "adding the counts rollup to a version 2 archive");
fail:
    tw__sqroll_close(q->roll);
    q->roll = NULL;
    exec(q, "ROLLBACK");
    return s;
}

/* Creates the schema in a new file, or checks the version of an existing one (and brings a
 * version 2 archive opened for writing to version 3); opens the rollup when there is one. */
static tw_status setup(sq *q, tw_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT count(*) FROM sqlite_master WHERE name = 'meta'", -1, &st, NULL);
    int have = 0;
    if (!rc && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        have = sqlite3_column_int(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    if (rc)
        return dberr(q, err, rc, "opening");
    if (!have) {
        if (q->readonly)
            return tw__err(err, TW_ENOTFOUND, "archive %s: no archive there yet", q->path);
        if ((rc = exec(q, "PRAGMA page_size = 8192")) || (rc = exec(q, "PRAGMA auto_vacuum = INCREMENTAL")) ||
            (rc = exec(q, "PRAGMA journal_mode = WAL")) || (rc = exec(q, "BEGIN IMMEDIATE")))
            return dberr(q, err, rc, "creating");
        /* another process may have created it meanwhile */
        rc = sqlite3_prepare_v2(q->db, "SELECT count(*) FROM sqlite_master WHERE name = 'meta'", -1, &st, NULL);
        if (!rc && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            have = sqlite3_column_int(st, 0);
            rc = 0;
        }
        sqlite3_finalize(st);
        if (!rc && !have)
            rc = exec(q, schema);
        if (rc || (rc = exec(q, "COMMIT"))) {
            tw_status s = dberr(q, err, rc, "creating");
            exec(q, "ROLLBACK");
            return s;
        }
    }
    long long v;
    tw_status s;
    if ((s = read_version(q, &v, err)))
        return s;
    if (v == 2 && !q->readonly) {
        if ((s = migrate_v2(q, err)))
            return s;
        v = SCHEMA_VERSION;
    }
    if (v == 2) /* read-only: counts scan the events, as version 2 did */
        return TW_OK;
    if (v > SCHEMA_VERSION)
        return tw__err(err, TW_EDB, "archive %s: schema version %lld is newer than this trailwatch (version %d)",
                       q->path, v, SCHEMA_VERSION);
    if (v != SCHEMA_VERSION)
        return tw__err(err, TW_ECORRUPT,
                       "archive %s: schema version %lld is an older layout this trailwatch does not read (version %d):"
                       " archive the events again into a new file",
                       q->path, v, SCHEMA_VERSION);
    if ((rc = tw__sqroll_open(q->db, !q->readonly, &q->roll)))
        return dberr(q, err, rc, "opening");
    return TW_OK;
}

tw_status tw__archive_sqlite_open(const tw_archive_opts *o, tw__archive_backend **out, tw_error *err)
{
    if (!o->path || !*o->path)
        return tw__err(err, TW_EINVAL, "archive: no file named");
    sq *q = calloc(1, sizeof *q);
    if (!q || !(q->path = strdup(o->path))) {
        free(q);
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    }
    q->base.ops = &sqlite_ops;
    q->base.dedup_on_put = 1;
    q->readonly = o->readonly;
    tw__buf_init(&q->packed, 0);
    tw_status s;
    if ((s = tw__codec_new(ZSTD_LEVEL, &q->codec, err)))
        goto fail;
    struct stat sb;
    if (o->readonly && stat(o->path, &sb) != 0) {
        s = tw__err(err, TW_ENOTFOUND, "archive %s: no archive there yet", o->path);
        goto fail;
    }
    int flags = o->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(o->path, &q->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc) {
        s = tw__err(err, rc == SQLITE_CANTOPEN ? TW_EIO : TW_EDB, "archive %s: cannot open: %s", o->path,
                    q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, 10000);
    /* FULL: a commit is on disk when put_batch returns (ingest reports only what is committed) */
    if ((rc = exec(q, "PRAGMA synchronous = FULL")) || (rc = exec(q, "PRAGMA mmap_size = 1073741824")) ||
        (rc = exec(q, "PRAGMA cache_size = -32768"))) {
        s = dberr(q, err, rc, "opening");
        goto fail;
    }
    if ((s = setup(q, err)) || (s = load_dicts(q, err)))
        goto fail;
    if ((rc = prep(q, &q->get_block, "SELECT dict, data FROM blocks WHERE id = ?")) ||
        (rc = prep(q, &q->get_post, "SELECT k0, keys FROM post WHERE h = ?1 AND k0 <= ?3 AND k1 >= ?2")) ||
        (rc = prep(q, &q->get_ev, "SELECT blk, slot, name, src, acct, region, dt, err FROM ev WHERE k = ?")) ||
        (rc = prep(q, &q->get_atom, "SELECT id FROM atoms WHERE s = ?")))
        goto dbfail;
    if (!o->readonly &&
        ((rc = prep(q, &q->ins_block, "INSERT INTO blocks(dict, n, raw, data) VALUES(?, ?, ?, ?)")) ||
         (rc = prep(q, &q->ins_ev, "INSERT INTO ev VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)")) ||
         (rc = prep(q, &q->ins_term, "INSERT INTO post VALUES(?, ?, ?, ?)")) ||
         (rc = prep(q, &q->max_key, "SELECT max(k) FROM ev WHERE k >= ?1 AND k < ?2")) ||
         (rc = prep(q, &q->ins_atom, "INSERT INTO atoms(s) VALUES(?)")) ||
         (rc = prep(q, &q->id_hits, "SELECT blk, slot FROM ev WHERE k = ?"))))
        goto dbfail;
    *out = &q->base;
    return TW_OK;
dbfail:
    s = dberr(q, err, rc, "opening");
fail:
    sq_close(&q->base);
    return s;
}
