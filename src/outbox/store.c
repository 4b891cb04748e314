/* outbox/store.c: the server's SQLite database (schema, statements, row operations). */
#include "outbox/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"
#include "common/vec.h"

#define SCHEMA_VERSION 5

enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK,
    S_INSERT_ALERT, S_INSERT_DEAD, S_DELETE_ALERT, S_RESCHEDULE, S_KILL_COPY,
    S_SCAN_OUTBOX, S_COUNT_OUTBOX,
    S_DEPTH, S_COUNT_BY_TARGET,
    S_MARK_SEEN, S_SCAN_SEEN, S_PRUNE_SEEN, S_PRUNE_SEEN_SOME,
    S_MARK_FILE, S_FILE_DONE,
    S_STORM_GET, S_STORM_PUT, S_STORM_DELETE, S_STORM_DUE,
    S_DLQ_LIST, S_DLQ_LIST_TARGET, S_DLQ_GET, S_DLQ_REDRIVE_COPY, S_DLQ_REDRIVE_DELETE,
    S_DLQ_PAGE, S_DLQ_COUNTS,
    S_COUNT_ADD, S_REDRIVE_COUNT, S_ALERT_TARGET,
    S_MAX_ID, S_SCAN_NEW, S_PAGE_DUE, S_PAGE_IDS, S_GET_ALERT, S_TARGET_COUNT, S_DROP_COPY, S_DROP_DELETE,
    S_COUNT_
};

static const char *const sql[S_COUNT_] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_INSERT_ALERT] = "INSERT INTO outbox(target, rule, event_id, idem_key, body, created_ms, next_ms, attempts,"
                       " last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_INSERT_DEAD] = "INSERT INTO dead(target, rule, event_id, idem_key, body, created_ms, failed_ms, attempts,"
                      " reason, response) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_DELETE_ALERT] = "DELETE FROM outbox WHERE id = ?1",
    [S_ALERT_TARGET] = "SELECT target FROM outbox WHERE id = ?1",
    [S_RESCHEDULE] = "UPDATE outbox SET next_ms = ?2, attempts = ?3, last_error = ?4 WHERE id = ?1",
    [S_KILL_COPY] = "INSERT INTO dead(target, rule, event_id, idem_key, body, created_ms, failed_ms, attempts,"
                    " reason, response) SELECT target, rule, event_id, idem_key, body, created_ms, ?2, ?3, ?4, ?5"
                    " FROM outbox WHERE id = ?1",
    [S_SCAN_OUTBOX] = "SELECT id, target, rule, event_id, idem_key, body, created_ms, next_ms, attempts, last_error"
                      " FROM outbox WHERE id > ?1 ORDER BY id",
    [S_COUNT_OUTBOX] = "SELECT count(*) FROM outbox",
    [S_DEPTH] = "SELECT coalesce(sum(n), 0) FROM outbox_count",
    [S_COUNT_BY_TARGET] = "SELECT target, n FROM outbox_count WHERE n > 0 ORDER BY target",
    [S_MARK_SEEN] = "INSERT INTO seen(event_id, at_ms) VALUES (?1, ?2)",
    [S_SCAN_SEEN] = "SELECT event_id, at_ms FROM seen WHERE at_ms >= ?1",
    [S_PRUNE_SEEN] = "DELETE FROM seen WHERE at_ms < ?1",
    [S_PRUNE_SEEN_SOME] = "DELETE FROM seen WHERE rowid IN (SELECT rowid FROM seen WHERE at_ms < ?1 LIMIT ?2)",
    [S_MARK_FILE] = "INSERT OR REPLACE INTO files(path, size, mtime, done_ms, records) VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_FILE_DONE] = "SELECT 1 FROM files WHERE path = ?1 AND size = ?2 AND mtime = ?3",
    [S_STORM_GET] = "SELECT window_end_ms, suppressed FROM storm WHERE rule = ?1 AND key = ?2",
    [S_STORM_PUT] = "INSERT OR REPLACE INTO storm(rule, key, window_end_ms, suppressed, event)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_STORM_DELETE] = "DELETE FROM storm WHERE rule = ?1 AND key = ?2 AND window_end_ms = ?3",
    [S_STORM_DUE] = "SELECT rule, key, window_end_ms, suppressed, event FROM storm WHERE window_end_ms <= ?1"
                    " ORDER BY window_end_ms LIMIT ?2",
    [S_DLQ_LIST] = "SELECT id, target, rule, event_id, reason, response, created_ms, failed_ms, attempts, body"
                   " FROM dead ORDER BY id",
    [S_DLQ_LIST_TARGET] = "SELECT id, target, rule, event_id, reason, response, created_ms, failed_ms, attempts,"
                          " body FROM dead WHERE target = ?1 ORDER BY id",
    [S_DLQ_GET] = "SELECT id, target, rule, event_id, reason, response, created_ms, failed_ms, attempts, body"
                  " FROM dead WHERE id = ?1",
    [S_DLQ_REDRIVE_COPY] = "INSERT INTO outbox(target, rule, event_id, idem_key, body, created_ms, next_ms, attempts,"
                           " last_error) SELECT target, rule, event_id, idem_key, body, ?3, ?3, 0, ''"
                           " FROM dead WHERE (?1 = 0 OR id = ?1) AND (?2 IS NULL OR target = ?2) ORDER BY id",
    [S_DLQ_REDRIVE_DELETE] = "DELETE FROM dead WHERE (?1 = 0 OR id = ?1) AND (?2 IS NULL OR target = ?2)",
    [S_DLQ_PAGE] = "SELECT id, target, rule, event_id, reason, response, created_ms, failed_ms, attempts, body"
                   " FROM dead WHERE (?1 IS NULL OR target = ?1) AND id < ?2 ORDER BY id DESC LIMIT ?3",
    [S_DLQ_COUNTS] = "SELECT target, count(*) FROM dead GROUP BY target",
    [S_COUNT_ADD] = "INSERT INTO outbox_count(target, n) VALUES (?1, ?2)"
                    " ON CONFLICT(target) DO UPDATE SET n = n + excluded.n",
    [S_REDRIVE_COUNT] = "INSERT INTO outbox_count(target, n) SELECT target, count(*) FROM dead"
                        " WHERE (?1 = 0 OR id = ?1) AND (?2 IS NULL OR target = ?2) GROUP BY target"
                        " ON CONFLICT(target) DO UPDATE SET n = n + excluded.n",
    [S_MAX_ID] = "SELECT coalesce(max(id), 0) FROM outbox",
    [S_SCAN_NEW] = "SELECT id, target, created_ms, next_ms, attempts FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
    [S_PAGE_DUE] = "SELECT id, target, created_ms, next_ms, attempts FROM outbox INDEXED BY outbox_due"
                   " WHERE target = ?1 AND id <= ?2 ORDER BY next_ms, id LIMIT ?3",
    [S_PAGE_IDS] = "SELECT id, target, created_ms, next_ms, attempts FROM outbox INDEXED BY outbox_target"
                   " WHERE target = ?1 AND id > ?2 AND id <= ?3 ORDER BY id LIMIT ?4",
    [S_GET_ALERT] = "SELECT id, target, rule, event_id, idem_key, body, created_ms, next_ms, attempts, last_error"
                    " FROM outbox WHERE id = ?1",
    [S_TARGET_COUNT] = "SELECT coalesce((SELECT n FROM outbox_count WHERE target = ?1), 0)",
    [S_DROP_COPY] = "INSERT INTO dead(target, rule, event_id, idem_key, body, created_ms, failed_ms, attempts,"
                    " reason, response) SELECT target, rule, event_id, idem_key, body, created_ms, ?3, attempts, ?4, ''"
                    " FROM outbox INDEXED BY outbox_target WHERE target = ?1 ORDER BY id LIMIT ?2",
    [S_DROP_DELETE] = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox INDEXED BY outbox_target"
                      " WHERE target = ?1 ORDER BY id LIMIT ?2)",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, rule TEXT NOT NULL,"
    " event_id TEXT NOT NULL, idem_key TEXT NOT NULL, body BLOB NOT NULL, created_ms INTEGER NOT NULL,"
    " next_ms INTEGER NOT NULL, attempts INTEGER NOT NULL, last_error TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS dead(id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, rule TEXT NOT NULL,"
    " event_id TEXT NOT NULL, idem_key TEXT NOT NULL, body BLOB NOT NULL, created_ms INTEGER NOT NULL,"
    " failed_ms INTEGER NOT NULL, attempts INTEGER NOT NULL, reason TEXT NOT NULL, response TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS seen(event_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS seen_at ON seen(at_ms);"
    "CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL,"
    " done_ms INTEGER NOT NULL, records INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS storm(rule TEXT NOT NULL, key TEXT NOT NULL, window_end_ms INTEGER NOT NULL,"
    " suppressed INTEGER NOT NULL, event BLOB NOT NULL, PRIMARY KEY(rule, key)) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('schema', '1');";

/* Version 2: alerts pending per target, kept by triggers so that every writer (the server, `dlq
 * redrive` from another process) keeps it true in the same transaction; the outbox depth and the
 * per-target caps read it instead of counting a table that may hold millions of rows. The index
 * serves the dispatcher's paging (a target's rows in id order). Version 5 replaced the triggers. */
static const char schema_v2[] =
    "CREATE TABLE IF NOT EXISTS outbox_count(target TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS outbox_target ON outbox(target, id);"
    "CREATE TRIGGER IF NOT EXISTS outbox_count_insert AFTER INSERT ON outbox BEGIN"
    " INSERT INTO outbox_count(target, n) VALUES (new.target, 1) ON CONFLICT(target) DO UPDATE SET n = n + 1; END;"
    "CREATE TRIGGER IF NOT EXISTS outbox_count_delete AFTER DELETE ON outbox BEGIN"
    " UPDATE outbox_count SET n = n - 1 WHERE target = old.target; END;"
    "DELETE FROM outbox_count;"
    "INSERT INTO outbox_count(target, n) SELECT target, count(*) FROM outbox GROUP BY target;"
    "UPDATE meta SET v = '2' WHERE k = 'schema';";

/* Version 3: the dispatcher pages a target's rows by due time (targets that deliver in any order),
 * instead of holding every pending row in memory. */
static const char schema_v3[] =
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(target, next_ms, id);"
    "UPDATE meta SET v = '3' WHERE k = 'schema';";

/* Version 4: event ids are appended in the order they are seen instead of kept in the order of the
 * ids, which are random: each id used to land on its own page of a b-tree that a commit rewrote
 * whole, so a commit of n records wrote up to n pages for them (15% of the outbox writer's CPU and of
 * its bytes in the folder benchmark; far more with a day's window of ids). Now they share the last
 * page. The engine's dedup set decides what is a duplicate; this table only carries the set across a
 * restart, so an id written twice (after the set forgot it) is harmless. */
static const char schema_v4[] =
    "CREATE TABLE seen_log(at_ms INTEGER NOT NULL, event_id TEXT NOT NULL);"
    "INSERT INTO seen_log(at_ms, event_id) SELECT at_ms, event_id FROM seen ORDER BY at_ms;"
    "DROP TABLE seen;"
    "ALTER TABLE seen_log RENAME TO seen;"
    "CREATE INDEX seen_at ON seen(at_ms);"
    "UPDATE meta SET v = '4' WHERE k = 'schema';";

/* Version 5: outbox_count is kept by this file instead of by triggers. A trigger ran for every row
 * inserted or deleted (a fifth of the writer thread's CPU in the folder benchmark, and the writer's
 * CPU is what a busy machine's ingest waits for); now each transaction adds its changes per target
 * (count_add) and writes them once, at its end (counts_flush). Every statement that adds or removes
 * outbox rows is in this file, in the same transaction as its count, as with the triggers. */
static const char schema_v5[] =
    "DROP TRIGGER IF EXISTS outbox_count_insert;"
    "DROP TRIGGER IF EXISTS outbox_count_delete;"
    "DELETE FROM outbox_count;"
    "INSERT INTO outbox_count(target, n) SELECT target, count(*) FROM outbox GROUP BY target;"
    "UPDATE meta SET v = '5' WHERE k = 'schema';";

/* Rows added (removed) per target in the open transaction, not yet in outbox_count. */
typedef struct count_delta {
    char *target;
    int64_t n;
} count_delta;

struct tw_store {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT_];
    void (*on_wal)(void *ctx, int pages);
    void *on_wal_ctx;
    TW_VEC(count_delta) counts;    /* one per target the connection has written (few: the targets) */
    char path[4096];
};

int64_t tw__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static tw_status dberr(tw_store *st, tw_error *err, const char *what)
{
    return tw__err(err, TW_EDB, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

static sqlite3_stmt *stmt(tw_store *st, int which, tw_error *err)
{
    if (!st->st[which] && sqlite3_prepare_v3(st->db, sql[which], -1, SQLITE_PREPARE_PERSISTENT, &st->st[which], NULL)) {
        dberr(st, err, "prepare");
        return NULL;
    }
    sqlite3_reset(st->st[which]);
    sqlite3_clear_bindings(st->st[which]);
    return st->st[which];
}

static tw_status mkdirs(const char *dir, tw_error *err)
{
    char buf[4096];
    size_t n = strlen(dir);
    if (n >= sizeof buf)
        return tw__err(err, TW_EINVAL, "data_dir path too long");
    memcpy(buf, dir, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) && errno != EEXIST)
            return tw__err(err, TW_EIO, "cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0700) && errno != EEXIST)
        return tw__err(err, TW_EIO, "cannot create %s: %s", buf, strerror(errno));
    return TW_OK;
}

static int schema_version(tw_store *st)
{
    sqlite3_stmt *q = NULL;
    int v = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT v FROM meta WHERE k = 'schema'", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return v;
}

/* Brings an older database up to SCHEMA_VERSION in one transaction (another process may race). A
 * newer one is refused: its tables may be kept in ways this build does not know (schema 5's counts
 * have no triggers), so writing to it would corrupt them. */
static tw_status migrate(tw_store *st, tw_error *err)
{
    int v = schema_version(st);
    if (v > SCHEMA_VERSION)
        return tw__err(err, TW_EINVAL, "%s: written by a newer trailwatch (outbox schema %d; this one knows up "
                       "to %d): run that version, or move the data directory aside", st->path, v, SCHEMA_VERSION);
    if (v == SCHEMA_VERSION)
        return TW_OK;
    char *msg = NULL;
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, &msg))
        goto fail;
    if ((schema_version(st) < 2 && sqlite3_exec(st->db, schema_v2, NULL, NULL, &msg)) ||
        (schema_version(st) < 3 && sqlite3_exec(st->db, schema_v3, NULL, NULL, &msg)) ||
        (schema_version(st) < 4 && sqlite3_exec(st->db, schema_v4, NULL, NULL, &msg)) ||
        (schema_version(st) < 5 && sqlite3_exec(st->db, schema_v5, NULL, NULL, &msg))) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg)) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    return TW_OK;
fail:;
    tw_status rc = tw__err(err, TW_EDB, "%s: cannot upgrade the database to version %d: %s", st->path,
                           SCHEMA_VERSION, msg ? msg : sqlite3_errmsg(st->db));
    sqlite3_free(msg);
    return rc;
}

tw_status tw_store_open(const char *data_dir, tw_store **out, tw_error *err)
{
    *out = NULL;
    tw_status rc = mkdirs(data_dir, err);
    if (rc)
        return rc;
    tw_store *st = calloc(1, sizeof *st);
    if (!st)
        return tw__err(err, TW_ENOMEM, "out of memory opening the store");
    snprintf(st->path, sizeof st->path, "%s/trailwatch.db", data_dir);
    if (sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL)) {
        rc = st->db ? dberr(st, err, "open") : tw__err(err, TW_ENOMEM, "out of memory opening the store");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 10000);
    char *msg = NULL;
    /* Alerts are inserted and deleted within seconds: a 16 MB WAL between checkpoints
     * (TW_OUTBOX_CKPT_PAGES, below) writes a page to the database once for many commits that changed
     * it (a third fewer bytes written on a folder of 30,000 alerts), a bigger cache keeps a large
     * commit from spilling pages into the WAL before it ends, and mmap reads pages without a pread
     * each (a third of the read calls). */
    if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"
                     "PRAGMA cache_size=-8192; PRAGMA mmap_size=67108864;", NULL, NULL, &msg) ||
        sqlite3_exec(st->db, schema, NULL, NULL, &msg)) {
        rc = tw__err(err, TW_EDB, "%s: cannot set up the database: %s", st->path, msg ? msg : "?");
        sqlite3_free(msg);
        goto fail;
    }
    if ((rc = migrate(st, err)))
        goto fail;
    sqlite3_wal_autocheckpoint(st->db, TW_OUTBOX_CKPT_PAGES);
    *out = st;
    return TW_OK;
fail:
    tw_store_close(st);
    return rc;
}

static int wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
    tw_store *st = ctx;
    st->on_wal(st->on_wal_ctx, pages);
    if (pages >= TW_OUTBOX_WAL_MAX_PAGES)
        (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL); /* as SQLite's own */
    return SQLITE_OK;
}

void tw__store_on_wal(tw_store *st, void (*fn)(void *ctx, int pages), void *ctx)
{
    st->on_wal = fn;
    st->on_wal_ctx = ctx;
    if (fn)
        sqlite3_wal_hook(st->db, wal_hook, st);
    else
        sqlite3_wal_autocheckpoint(st->db, TW_OUTBOX_CKPT_PAGES);
}

tw_status tw__store_checkpoint(tw_store *st, tw_error *err)
{
    int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc == SQLITE_BUSY) /* another checkpoint is running: it copies the same pages */
        return TW_OK;
    return rc == SQLITE_OK ? TW_OK : dberr(st, err, "checkpoint");
}

void tw_store_close(tw_store *st)
{
    if (!st)
        return;
    for (int i = 0; i < S_COUNT_; i++)
        sqlite3_finalize(st->st[i]);
    sqlite3_close(st->db);
    for (size_t i = 0; i < st->counts.n; i++)
        free(st->counts.v[i].target);
    TW_VEC_FREE(&st->counts);
    free(st);
}

static tw_status run(tw_store *st, sqlite3_stmt *s, tw_error *err, const char *what)
{
    if (!s)
        return TW_EDB;
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    return r == SQLITE_DONE || r == SQLITE_ROW ? TW_OK : dberr(st, err, what);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : "";
}

static void counts_clear(tw_store *st)
{
    for (size_t i = 0; i < st->counts.n; i++)
        st->counts.v[i].n = 0;
}

static tw_status count_add(tw_store *st, const char *target, int64_t n, tw_error *err)
{
    for (size_t i = 0; i < st->counts.n; i++)
        if (strcmp(st->counts.v[i].target, target) == 0) {
            st->counts.v[i].n += n;
            return TW_OK;
        }
    char *copy = strdup(target);
    count_delta *c = copy ? TW_VEC_ADD(&st->counts) : NULL;
    if (!c) {
        free(copy);
        return tw__err(err, TW_ENOMEM, "out of memory counting the outbox");
    }
    *c = (count_delta){copy, n};
    return TW_OK;
}

/* The open transaction's changes into outbox_count: before its commit, and before it reads a count. */
static tw_status counts_flush(tw_store *st, tw_error *err)
{
    for (size_t i = 0; i < st->counts.n; i++) {
        count_delta *c = &st->counts.v[i];
        if (!c->n)
            continue;
        sqlite3_stmt *s = stmt(st, S_COUNT_ADD, err);
        if (!s)
            return TW_EDB;
        bind_text(s, 1, c->target);
        sqlite3_bind_int64(s, 2, c->n);
        tw_status rc = run(st, s, err, "count the outbox");
        if (rc)
            return rc;
        c->n = 0;
    }
    return TW_OK;
}

tw_status tw__store_begin(tw_store *st, tw_error *err)
{
    counts_clear(st);
    return run(st, stmt(st, S_BEGIN, err), err, "begin");
}

tw_status tw__store_commit(tw_store *st, tw_error *err)
{
    tw_status rc = counts_flush(st, err);
    return rc ? rc : run(st, stmt(st, S_COMMIT, err), err, "commit");
}

void tw__store_rollback(tw_store *st)
{
    counts_clear(st);
    if (!sqlite3_get_autocommit(st->db))
        run(st, stmt(st, S_ROLLBACK, NULL), NULL, "rollback");
}

tw_status tw__store_insert_alert(tw_store *st, tw_alert_row *r, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_INSERT_ALERT, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, r->target);
    bind_text(s, 2, r->rule);
    bind_text(s, 3, r->event_id);
    bind_text(s, 4, r->idem_key);
    sqlite3_bind_blob(s, 5, r->body, (int)r->body_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, r->created_ms);
    sqlite3_bind_int64(s, 7, r->next_ms);
    sqlite3_bind_int64(s, 8, r->attempts);
    bind_text(s, 9, r->last_error ? r->last_error : "");
    tw_status rc = run(st, s, err, "insert alert");
    if (!rc)
        r->id = sqlite3_last_insert_rowid(st->db);
    return rc ? rc : count_add(st, r->target, 1, err);
}

tw_status tw__store_insert_dead(tw_store *st, const tw_alert_row *r, const char *reason, const char *response,
                                int64_t failed_ms, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_INSERT_DEAD, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, r->target);
    bind_text(s, 2, r->rule);
    bind_text(s, 3, r->event_id);
    bind_text(s, 4, r->idem_key);
    sqlite3_bind_blob(s, 5, r->body ? r->body : "", (int)r->body_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, r->created_ms);
    sqlite3_bind_int64(s, 7, failed_ms);
    sqlite3_bind_int64(s, 8, r->attempts);
    bind_text(s, 9, reason);
    bind_text(s, 10, response ? response : "");
    return run(st, s, err, "insert dead letter");
}

tw_status tw__store_delete_alert(tw_store *st, int64_t id, tw_error *err)
{
    /* The row's target first (a seek on a page the delete then changes): cheaper than DELETE ...
     * RETURNING, which buffers its rows in a temporary table. */
    sqlite3_stmt *s = stmt(st, S_ALERT_TARGET, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, id);
    int r = sqlite3_step(s);
    tw_status rc = r == SQLITE_ROW ? count_add(st, col_text(s, 0), -1, err)
                   : r == SQLITE_DONE ? TW_OK /* gone already */
                                      : dberr(st, err, "delete alert");
    sqlite3_reset(s);
    if (rc || r == SQLITE_DONE)
        return rc;
    if (!(s = stmt(st, S_DELETE_ALERT, err)))
        return TW_EDB;
    sqlite3_bind_int64(s, 1, id);
    return run(st, s, err, "delete alert");
}

tw_status tw__store_reschedule(tw_store *st, int64_t id, int64_t next_ms, uint32_t attempts, const char *error,
                               tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_RESCHEDULE, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, next_ms);
    sqlite3_bind_int64(s, 3, attempts);
    bind_text(s, 4, error ? error : "");
    return run(st, s, err, "reschedule alert");
}

tw_status tw__store_kill(tw_store *st, int64_t id, uint32_t attempts, const char *reason, const char *response,
                         int64_t failed_ms, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_KILL_COPY, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, failed_ms);
    sqlite3_bind_int64(s, 3, attempts);
    bind_text(s, 4, reason);
    bind_text(s, 5, response ? response : "");
    tw_status rc = run(st, s, err, "dead-letter alert");
    return rc ? rc : tw__store_delete_alert(st, id, err);
}

/* An outbox row of S_SCAN_OUTBOX / S_GET_ALERT (id, target, rule, event_id, idem_key, body, created,
 * next, attempts, last_error); its strings are the statement's until it steps again. */
static tw_alert_row alert_row(sqlite3_stmt *s)
{
    tw_alert_row row = {
        .id = sqlite3_column_int64(s, 0),
        .target = col_text(s, 1),
        .rule = col_text(s, 2),
        .event_id = col_text(s, 3),
        .idem_key = col_text(s, 4),
        .body = sqlite3_column_blob(s, 5),
        .body_len = (size_t)sqlite3_column_bytes(s, 5),
        .created_ms = sqlite3_column_int64(s, 6),
        .next_ms = sqlite3_column_int64(s, 7),
        .attempts = (uint32_t)sqlite3_column_int64(s, 8),
        .last_error = col_text(s, 9),
    };
    if (!row.body)
        row.body = "";
    return row;
}

tw_status tw__store_scan_outbox(tw_store *st, int64_t after, tw_alert_fn fn, void *ctx, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_SCAN_OUTBOX, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, after);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        tw_alert_row row = alert_row(s);
        if (fn(ctx, &row))
            break;
    }
    tw_status rc = r == SQLITE_ROW || r == SQLITE_DONE ? TW_OK : dberr(st, err, "scan outbox");
    sqlite3_reset(s);
    return rc;
}

/* The metadata columns only (no body): what the dispatcher holds for a row it is not sending yet. */
static tw_status meta_rows(tw_store *st, sqlite3_stmt *s, tw_alert_fn fn, void *ctx, size_t *n, tw_error *err,
                           const char *what)
{
    int r;
    *n = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        tw_alert_row row = {
            .id = sqlite3_column_int64(s, 0),
            .target = col_text(s, 1),
            .rule = "", .event_id = "", .idem_key = "", .body = "", .body_len = 0,
            .created_ms = sqlite3_column_int64(s, 2),
            .next_ms = sqlite3_column_int64(s, 3),
            .attempts = (uint32_t)sqlite3_column_int64(s, 4),
            .last_error = "",
        };
        (*n)++;
        if (fn(ctx, &row))
            break;
    }
    tw_status rc = r == SQLITE_ROW || r == SQLITE_DONE ? TW_OK : dberr(st, err, what);
    sqlite3_reset(s);
    return rc;
}

tw_status tw__store_max_id(tw_store *st, int64_t *id, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_MAX_ID, err);
    if (!s)
        return TW_EDB;
    int r = sqlite3_step(s);
    *id = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return r == SQLITE_ROW ? TW_OK : dberr(st, err, "read the outbox");
}

tw_status tw__store_scan_new(tw_store *st, int64_t after, size_t limit, tw_alert_fn fn, void *ctx, size_t *n,
                             tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_SCAN_NEW, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)limit);
    return meta_rows(st, s, fn, ctx, n, err, "scan new outbox rows");
}

tw_status tw__store_page_due(tw_store *st, const char *target, int64_t max_id, size_t limit, tw_alert_fn fn,
                             void *ctx, size_t *n, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_PAGE_DUE, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, target);
    sqlite3_bind_int64(s, 2, max_id);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
    return meta_rows(st, s, fn, ctx, n, err, "page outbox rows");
}

tw_status tw__store_page_ids(tw_store *st, const char *target, int64_t after, int64_t max_id, size_t limit,
                             tw_alert_fn fn, void *ctx, size_t *n, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_PAGE_IDS, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, target);
    sqlite3_bind_int64(s, 2, after);
    sqlite3_bind_int64(s, 3, max_id);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)limit);
    return meta_rows(st, s, fn, ctx, n, err, "page outbox rows");
}

tw_status tw__store_get_alert(tw_store *st, int64_t id, tw_alert_fn fn, void *ctx, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_GET_ALERT, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, id);
    int r = sqlite3_step(s);
    tw_status rc = TW_OK;
    if (r == SQLITE_ROW) {
        tw_alert_row row = alert_row(s);
        fn(ctx, &row);
    } else if (r == SQLITE_DONE) {
        rc = tw__err(err, TW_ENOTFOUND, "no outbox row %lld", (long long)id);
    } else {
        rc = dberr(st, err, "read an outbox row");
    }
    sqlite3_reset(s);
    return rc;
}

tw_status tw__store_target_count(tw_store *st, const char *target, int64_t *n, tw_error *err)
{
    if (counts_flush(st, err))
        return TW_EDB;
    sqlite3_stmt *s = stmt(st, S_TARGET_COUNT, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, target);
    int r = sqlite3_step(s);
    *n = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return r == SQLITE_ROW ? TW_OK : dberr(st, err, "read the outbox counts");
}

tw_status tw__store_drop_oldest(tw_store *st, const char *target, int64_t n, const char *reason, int64_t failed_ms,
                                tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_DROP_COPY, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, target);
    sqlite3_bind_int64(s, 2, n);
    sqlite3_bind_int64(s, 3, failed_ms);
    bind_text(s, 4, reason);
    tw_status rc = run(st, s, err, "dead-letter the oldest alerts");
    if (rc)
        return rc;
    if (!(s = stmt(st, S_DROP_DELETE, err)))
        return TW_EDB;
    bind_text(s, 1, target);
    sqlite3_bind_int64(s, 2, n);
    if ((rc = run(st, s, err, "dead-letter the oldest alerts")))
        return rc;
    return count_add(st, target, -(int64_t)sqlite3_changes(st->db), err);
}

tw_status tw__store_outbox_count(tw_store *st, int64_t *n, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_COUNT_OUTBOX, err);
    if (!s)
        return TW_EDB;
    int r = sqlite3_step(s);
    *n = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return r == SQLITE_ROW ? TW_OK : dberr(st, err, "count outbox");
}

tw_status tw__store_depth(tw_store *st, int64_t *n, tw_error *err)
{
    if (counts_flush(st, err))
        return TW_EDB;
    sqlite3_stmt *s = stmt(st, S_DEPTH, err);
    if (!s)
        return TW_EDB;
    int r = sqlite3_step(s);
    *n = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return r == SQLITE_ROW ? TW_OK : dberr(st, err, "read the outbox depth");
}

tw_status tw__store_count_by_target(tw_store *st, tw_target_count_fn fn, void *ctx, tw_error *err)
{
    if (counts_flush(st, err))
        return TW_EDB;
    sqlite3_stmt *s = stmt(st, S_COUNT_BY_TARGET, err);
    if (!s)
        return TW_EDB;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, col_text(s, 0), sqlite3_column_int64(s, 1));
    tw_status rc = r == SQLITE_DONE ? TW_OK : dberr(st, err, "read the outbox counts");
    sqlite3_reset(s);
    return rc;
}

tw_status tw__store_mark_seen(tw_store *st, const char *event_id, int64_t at_ms, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_MARK_SEEN, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, event_id);
    sqlite3_bind_int64(s, 2, at_ms);
    return run(st, s, err, "remember event id");
}

tw_status tw__store_scan_seen(tw_store *st, int64_t since_ms, tw_seen_fn fn, void *ctx, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_SCAN_SEEN, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, since_ms);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, col_text(s, 0), sqlite3_column_int64(s, 1));
    tw_status rc = r == SQLITE_DONE ? TW_OK : dberr(st, err, "scan event ids");
    sqlite3_reset(s);
    return rc;
}

tw_status tw__store_prune_seen(tw_store *st, int64_t before_ms, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_PRUNE_SEEN, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, before_ms);
    return run(st, s, err, "prune event ids");
}

tw_status tw__store_prune_seen_some(tw_store *st, int64_t before_ms, int64_t limit, int64_t *deleted,
                                   tw_error *err)
{
    *deleted = 0;
    sqlite3_stmt *s = stmt(st, S_PRUNE_SEEN_SOME, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, before_ms);
    sqlite3_bind_int64(s, 2, limit);
    tw_status rc = run(st, s, err, "prune event ids");
    if (!rc)
        *deleted = sqlite3_changes(st->db);
    return rc;
}

tw_status tw__store_mark_file(tw_store *st, const char *path, int64_t size, int64_t mtime, int64_t records,
                              tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_MARK_FILE, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, path);
    sqlite3_bind_int64(s, 2, size);
    sqlite3_bind_int64(s, 3, mtime);
    sqlite3_bind_int64(s, 4, tw__now_ms());
    sqlite3_bind_int64(s, 5, records);
    return run(st, s, err, "mark file done");
}

int tw__store_file_done(tw_store *st, const char *path, int64_t size, int64_t mtime)
{
    sqlite3_stmt *s = stmt(st, S_FILE_DONE, NULL);
    if (!s)
        return 0;
    bind_text(s, 1, path);
    sqlite3_bind_int64(s, 2, size);
    sqlite3_bind_int64(s, 3, mtime);
    int done = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_reset(s);
    return done;
}

tw_status tw__store_storm_get(tw_store *st, const char *rule, const char *key, tw_storm_row *row, int *found,
                              tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_STORM_GET, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, rule);
    bind_text(s, 2, key);
    int r = sqlite3_step(s);
    *found = r == SQLITE_ROW;
    if (*found) {
        memset(row, 0, sizeof *row);
        row->window_end_ms = sqlite3_column_int64(s, 0);
        row->suppressed = (uint64_t)sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? TW_OK : dberr(st, err, "read storm window");
}

tw_status tw__store_storm_put(tw_store *st, const tw_storm_row *row, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_STORM_PUT, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, row->rule);
    bind_text(s, 2, row->key);
    sqlite3_bind_int64(s, 3, row->window_end_ms);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)row->suppressed);
    sqlite3_bind_blob(s, 5, row->event ? row->event : "", (int)row->event_len, SQLITE_STATIC);
    return run(st, s, err, "write storm window");
}

tw_status tw__store_storm_delete(tw_store *st, const char *rule, const char *key, int64_t window_end_ms,
                                 int *closed, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_STORM_DELETE, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, rule);
    bind_text(s, 2, key);
    sqlite3_bind_int64(s, 3, window_end_ms);
    tw_status rc = run(st, s, err, "close storm window");
    *closed = !rc && sqlite3_changes(st->db) > 0;
    return rc;
}

tw_status tw__store_storm_due(tw_store *st, int64_t now_ms, size_t max, tw_storm_fn fn, void *ctx, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_STORM_DUE, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        tw_storm_row row = {col_text(s, 0), col_text(s, 1), sqlite3_column_int64(s, 2),
                            (uint64_t)sqlite3_column_int64(s, 3), sqlite3_column_blob(s, 4),
                            (size_t)sqlite3_column_bytes(s, 4)};
        if (fn(ctx, &row))
            break;
    }
    tw_status rc = r == SQLITE_ROW || r == SQLITE_DONE ? TW_OK : dberr(st, err, "scan storm windows");
    sqlite3_reset(s);
    return rc;
}

/* ---- dead letters (public) ---- */

static tw_status dlq_rows(tw_store *st, sqlite3_stmt *s, tw_dead_letter_fn fn, void *ctx, tw_error *err)
{
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        tw_dead_letter dl = {
            .id = sqlite3_column_int64(s, 0),
            .target = col_text(s, 1),
            .rule = col_text(s, 2),
            .event_id = col_text(s, 3),
            .reason = col_text(s, 4),
            .response = col_text(s, 5),
            .created_ms = sqlite3_column_int64(s, 6),
            .failed_ms = sqlite3_column_int64(s, 7),
            .attempts = (uint32_t)sqlite3_column_int64(s, 8),
            .payload = sqlite3_column_blob(s, 9),
            .payload_len = (size_t)sqlite3_column_bytes(s, 9),
        };
        if (!dl.payload)
            dl.payload = "";
        if (fn(ctx, &dl))
            break;
    }
    tw_status rc = r == SQLITE_ROW || r == SQLITE_DONE ? TW_OK : dberr(st, err, "read dead letters");
    sqlite3_reset(s);
    return rc;
}

tw_status tw_dlq_list(tw_store *st, const char *target, tw_dead_letter_fn fn, void *ctx, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, target ? S_DLQ_LIST_TARGET : S_DLQ_LIST, err);
    if (!s)
        return TW_EDB;
    if (target)
        bind_text(s, 1, target);
    return dlq_rows(st, s, fn, ctx, err);
}

typedef struct found_ctx {
    tw_dead_letter_fn fn;
    void *ctx;
    int found;
} found_ctx;

static int count_found(void *ctx, const tw_dead_letter *dl)
{
    found_ctx *f = ctx;
    f->found = 1;
    return f->fn(f->ctx, dl);
}

tw_status tw_dlq_get(tw_store *st, int64_t id, tw_dead_letter_fn fn, void *ctx, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_DLQ_GET, err);
    if (!s)
        return TW_EDB;
    sqlite3_bind_int64(s, 1, id);
    found_ctx f = {fn, ctx, 0};
    tw_status rc = dlq_rows(st, s, count_found, &f, err);
    if (!rc && !f.found)
        return tw__err(err, TW_ENOTFOUND, "no dead letter with id %lld", (long long)id);
    return rc;
}

tw_status tw_dlq_redrive(tw_store *st, int64_t id, const char *target, size_t *moved, tw_error *err)
{
    *moved = 0;
    tw_status rc = tw__store_begin(st, err);
    if (rc)
        return rc;
    /* the counts first: the rows they count are still in dead */
    sqlite3_stmt *s = stmt(st, S_REDRIVE_COUNT, err);
    if (!s) {
        tw__store_rollback(st);
        return TW_EDB;
    }
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, target);
    if ((rc = run(st, s, err, "redrive dead letters"))) {
        tw__store_rollback(st);
        return rc;
    }
    if (!(s = stmt(st, S_DLQ_REDRIVE_COPY, err))) {
        tw__store_rollback(st);
        return TW_EDB;
    }
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, target);
    sqlite3_bind_int64(s, 3, tw__now_ms());
    if ((rc = run(st, s, err, "redrive dead letters"))) {
        tw__store_rollback(st);
        return rc;
    }
    *moved = (size_t)sqlite3_changes(st->db);
    if (!(s = stmt(st, S_DLQ_REDRIVE_DELETE, err))) {
        tw__store_rollback(st);
        return TW_EDB;
    }
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, target);
    if ((rc = run(st, s, err, "redrive dead letters")) || (rc = tw__store_commit(st, err))) {
        tw__store_rollback(st);
        *moved = 0;
        return rc;
    }
    if (id && !*moved)
        return tw__err(err, TW_ENOTFOUND, "no dead letter with id %lld", (long long)id);
    return TW_OK;
}

tw_status tw__store_dlq_page(tw_store *st, const char *target, int64_t before_id, uint32_t limit,
                             tw_dead_letter_fn fn, void *ctx, tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_DLQ_PAGE, err);
    if (!s)
        return TW_EDB;
    bind_text(s, 1, target);
    sqlite3_bind_int64(s, 2, before_id > 0 ? before_id : INT64_MAX);
    sqlite3_bind_int64(s, 3, limit);
    return dlq_rows(st, s, fn, ctx, err);
}

tw_status tw__store_dlq_counts(tw_store *st, void (*fn)(void *ctx, const char *target, int64_t n), void *ctx,
                               tw_error *err)
{
    sqlite3_stmt *s = stmt(st, S_DLQ_COUNTS, err);
    if (!s)
        return TW_EDB;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, col_text(s, 0), sqlite3_column_int64(s, 1));
    tw_status rc = r == SQLITE_DONE ? TW_OK : dberr(st, err, "count dead letters");
    sqlite3_reset(s);
    return rc;
}
