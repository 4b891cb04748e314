/* outbox/writer.c: the single writer thread and its group commits. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/thread.h"
#include "common/vec.h"
#include "outbox/checkpoint.h"
#include "outbox/outbox.h"
#include "telemetry/log.h"

typedef enum { R_DELIVERED, R_RETRY, R_DEAD } result_kind;

typedef struct result {
    struct result *next;
    result_kind kind;
    int64_t id, next_ms;
    uint32_t attempts;
    uint64_t seq;                  /* its place in the order outcomes were handed over */
    char *error, *response;
} result;

typedef struct waiter {
    struct waiter *next;
    tw_commit_batch *batch;
    tw_status status;
    tw_error err;
    tw_status refused;             /* a pending cap refused the batch: nothing of it was written */
    int done;
} waiter;

struct tw_outbox {
    tw_store *st;
    tw_ckpt *ckpt;                 /* copies the WAL into the database beside the commits */
    tw_outbox_hooks hooks;
    pthread_t thread;
    pthread_mutex_t lock;          /* the queues below */
    pthread_cond_t wake, done;
    pthread_mutex_t db;            /* the connection, shared with readers on other threads */
    /* A second connection for tw__outbox_file_done, opened at its first use: WAL readers do not wait
     * for the writer, whose connection is held through each commit's fsync. */
    pthread_mutex_t rlock;
    tw_store *rst;
    int rst_failed;
    char *data_dir;
    waiter *waiters, **waiters_tail;
    result *results, **results_tail;
    int stopping;
    _Atomic int64_t depth;         /* rows pending, as last committed (read back from the store) */
    uint64_t next_seq;             /* under lock: the next outcome's sequence number */
    _Atomic uint64_t recorded_seq; /* every outcome up to this one is committed */
    /* writer thread only */
    result *unrecorded, **unrecorded_tail; /* outcomes whose commit failed, oldest first: retried */
    _Atomic size_t nunrecorded;
    int64_t retry_at, retry_delay, next_report;
    _Atomic int64_t seen_window_ms;        /* 0: the seen table is not pruned while running */
    int64_t next_prune;
    _Atomic uint64_t refused, dropped;     /* alerts refused / dead-lettered by max_pending */
};

/* Rows created in one commit, handed to the dispatcher afterwards. */
typedef TW_VEC(tw_alert_row) created;

static tw_status keep_row(created *c, const tw_alert_row *r) { return TW_VEC_PUSH(c, *r); }

/* One alert into the outbox, or into an open storm window. */
static tw_status put_alert(tw_outbox *ob, const tw_new_alert *a, int64_t now, created *c, size_t *suppressed,
                           tw_error *err)
{
    tw_alert_row row = {0, a->target, a->rule, a->event_id, a->idem_key, a->body, a->body_len, now, now, 0, "",
                        a->max_pending > 0 && a->when_full == TW_WHEN_FULL_DROP_OLDEST};
    if (a->dead_reason)
        return tw__store_insert_dead(ob->st, &row, a->dead_reason, "", now, err);
    if (a->storm_key) {
        tw_storm_row s;
        int found;
        tw_status rc = tw__store_storm_get(ob->st, a->rule, a->storm_key, &s, &found, err);
        if (rc)
            return rc;
        if (found && s.window_end_ms > now) {
            /* Inside the window: count it and keep the latest event for the summary. */
            tw_storm_row upd = {a->rule, a->storm_key, s.window_end_ms, s.suppressed + 1, a->event, a->event_len};
            (*suppressed)++;
            return tw__store_storm_put(ob->st, &upd, err);
        }
        /* A window that ended with suppressed alerts waits for its summary (the engine closes it
         * soon): this alert goes out, and the next window opens once that one is closed. */
        if (!found || !s.suppressed) {
            tw_storm_row open = {a->rule, a->storm_key, now + a->storm_window_ms, 0, "", 0};
            if ((rc = tw__store_storm_put(ob->st, &open, err)))
                return rc;
        }
    }
    tw_status rc = tw__store_insert_alert(ob->st, &row, err);
    if (!rc && keep_row(c, &row))
        rc = tw__err(err, TW_ENOMEM, "out of memory");
    if (!rc && a->max_pending > 0 && a->when_full == TW_WHEN_FULL_DROP_OLDEST) {
        int64_t n;
        if (!(rc = tw__store_target_count(ob->st, a->target, &n, err)) && n > a->max_pending) {
            char why[160];
            snprintf(why, sizeof why, "dropped: %lld alerts were waiting for the target, its max_pending",
                     (long long)a->max_pending);
            rc = tw__store_drop_oldest(ob->st, a->target, n - a->max_pending, why, now, err);
            if (!rc)
                ob->dropped += (uint64_t)(n - a->max_pending);
        }
    }
    return rc;
}

/* A batch that would take a target past its max_pending (policy reject) is refused before anything
 * of it is written: the source answers "busy" (HTTP 503) and its sender tries again later. */
static tw_status check_caps(tw_outbox *ob, const tw_commit_batch *b, tw_error *err)
{
    for (size_t i = 0; i < b->nalerts; i++) {
        const tw_new_alert *a = &b->alerts[i];
        if (a->dead_reason || a->max_pending <= 0 || a->when_full != TW_WHEN_FULL_REJECT)
            continue;
        int seen = 0;
        int64_t k = 0;
        for (size_t j = 0; j < b->nalerts && !seen; j++) {
            const tw_new_alert *o = &b->alerts[j];
            if (o->dead_reason || strcmp(o->target, a->target))
                continue;
            seen = j < i;
            k++;
        }
        if (seen)
            continue; /* counted with its first alert */
        int64_t n;
        tw_status rc = tw__store_target_count(ob->st, a->target, &n, err);
        if (rc)
            return rc;
        if (n + k > a->max_pending) {
            ob->refused += (uint64_t)k;
            return tw__err(err, TW_EBUSY, "target \"%s\": %lld alerts are waiting for delivery, its max_pending "
                           "(%lld); try again later", a->target, (long long)n, (long long)a->max_pending);
        }
    }
    return TW_OK;
}

static tw_status apply_batch(tw_outbox *ob, tw_commit_batch *b, created *c, tw_error *err)
{
    tw_status rc = TW_OK;
    for (size_t i = 0; i < b->nseen && !rc; i++)
        rc = tw__store_mark_seen(ob->st, b->seen[i], b->now_ms, err);
    b->suppressed = 0;
    for (size_t i = 0; i < b->nalerts && !rc; i++) {
        size_t before = b->suppressed;
        rc = put_alert(ob, &b->alerts[i], b->now_ms, c, &b->suppressed, err);
        if (b->folded)
            b->folded[i] = b->suppressed != before;
    }
    for (size_t i = 0; i < b->ncloses && !rc; i++) {
        const tw_storm_close *cl = &b->closes[i];
        int closed = 0;
        rc = tw__store_storm_delete(ob->st, cl->rule, cl->key, cl->window_end_ms, &closed, err);
        if (!rc && closed && cl->summary) {
            tw_new_alert a = *cl->summary;
            size_t ignored = 0;
            a.storm_key = NULL;    /* the summary itself is never suppressed */
            rc = put_alert(ob, &a, b->now_ms, c, &ignored, err);
        }
    }
    if (!rc && b->file_path)
        rc = tw__store_mark_file(ob->st, b->file_path, b->file_size, b->file_mtime, b->file_records, err);
    for (size_t i = 0; i < b->nfiles && !rc; i++)
        rc = tw__store_mark_file(ob->st, b->files[i].path, b->files[i].size, b->files[i].mtime, b->files[i].records,
                                 err);
    return rc;
}

/* Every outcome, in order; the first failure fails them all (SQLite may have rolled the whole
 * transaction back on a full disk), and they are kept to be tried again. */
static tw_status apply_results(tw_outbox *ob, const result *r, int64_t now, tw_error *err)
{
    tw_status rc = TW_OK;
    for (; r && !rc; r = r->next) {
        switch (r->kind) {
        case R_DELIVERED: rc = tw__store_delete_alert(ob->st, r->id, err); break;
        case R_RETRY: rc = tw__store_reschedule(ob->st, r->id, r->next_ms, r->attempts, r->error, err); break;
        case R_DEAD: rc = tw__store_kill(ob->st, r->id, r->attempts, r->error, r->response, now, err); break;
        }
    }
    return rc;
}

static void free_results(result *r)
{
    for (result *n; r; r = n) {
        n = r->next;
        free(r->error);
        free(r->response);
        free(r);
    }
}

static size_t count_results(const result *r)
{
    size_t n = 0;
    for (; r; r = r->next)
        n++;
    return n;
}

/* Outcomes are applied in the order they came: while earlier ones wait for their retry, new ones
 * queue behind them. */
static result *take_unrecorded(tw_outbox *ob, result *fresh, int64_t now)
{
    if (!ob->unrecorded)
        return fresh;
    *ob->unrecorded_tail = fresh;
    while (*ob->unrecorded_tail)
        ob->unrecorded_tail = &(*ob->unrecorded_tail)->next;
    ob->nunrecorded = count_results(ob->unrecorded);
    if (now < ob->retry_at && !ob->stopping)
        return NULL;
    result *all = ob->unrecorded;
    ob->unrecorded = NULL;
    ob->unrecorded_tail = &ob->unrecorded;
    return all;
}

/* The outcomes of rs could not be committed: keep them (a restart before they are would deliver
 * those alerts again, which at-least-once allows; forgetting them would make it certain). */
static void keep_unrecorded(tw_outbox *ob, result *rs, int64_t now, const tw_error *err)
{
    if (!rs)
        return;
    size_t n = count_results(rs);
    int first = !ob->nunrecorded;
    *ob->unrecorded_tail = rs;
    while (*ob->unrecorded_tail)
        ob->unrecorded_tail = &(*ob->unrecorded_tail)->next;
    ob->nunrecorded = count_results(ob->unrecorded);
    ob->retry_delay = first ? 250 : ob->retry_delay * 2 > 5000 ? 5000 : ob->retry_delay * 2;
    ob->retry_at = now + ob->retry_delay;
    if (first || now >= ob->next_report) {
        char a[24], b[24];
        snprintf(a, sizeof a, "%zu", n);
        snprintf(b, sizeof b, "%zu", (size_t)ob->nunrecorded);
        tw__log(TW_LOG_ERROR, "cannot record delivery outcomes; retrying", "outcomes", a, "waiting", b, "error",
               err ? err->msg : "", NULL);
        ob->next_report = now + 30000;
    }
}

static void recorded(tw_outbox *ob, result *rs)
{
    if (ob->nunrecorded && !ob->unrecorded) {
        char n[24];
        snprintf(n, sizeof n, "%zu", (size_t)ob->nunrecorded);
        tw__log(TW_LOG_INFO, "delivery outcomes recorded after earlier failures", "outcomes", n, NULL);
        ob->nunrecorded = 0;
    }
    free_results(rs);
}

/* The gauge follows what is committed, never what was attempted. */
static void refresh_depth(tw_outbox *ob)
{
    int64_t n;
    if (tw__store_depth(ob->st, &n, NULL) == TW_OK)
        ob->depth = n;
}

static void finish(tw_outbox *ob, waiter *w, tw_status rc, const tw_error *err)
{
    pthread_mutex_lock(&ob->lock);
    for (; w; w = w->next) {
        w->status = w->refused ? w->refused : rc;
        if (!w->refused && rc && err)
            w->err = *err;
        w->done = 1;
    }
    pthread_cond_broadcast(&ob->done);
    pthread_mutex_unlock(&ob->lock);
}

/* One group: every queued batch and result in one transaction. If the group fails, each batch is
 * retried in a transaction of its own so that one bad batch fails alone, and the outcomes in one of
 * theirs; outcomes that still fail are kept and tried again. */
static void run_group(tw_outbox *ob, waiter *ws, result *rs)
{
    created c = TW_VEC_INIT;
    tw_error err;
    int64_t now = tw__now_ms();
    rs = take_unrecorded(ob, rs, now);
    if (!ws && !rs)
        return;
    pthread_mutex_lock(&ob->db);
    tw_status rc = tw__store_begin(ob->st, &err);
    for (waiter *w = ws; w && !rc; w = w->next)
        if (!(w->refused = check_caps(ob, w->batch, &w->err)))
            rc = apply_batch(ob, w->batch, &c, &err);
        else if (w->refused != TW_EBUSY)
            rc = w->refused, err = w->err, w->refused = TW_OK;
    if (!rc)
        rc = apply_results(ob, rs, now, &err);
    if (!rc)
        rc = tw__store_commit(ob->st, &err);
    if (rc) {
        tw__store_rollback(ob->st);
        c.n = 0;
        for (waiter *w = ws, *next; w; w = next) {
            next = w->next;
            w->next = NULL;
            tw_status r1 = tw__store_begin(ob->st, &err);
            size_t before = c.n;
            w->refused = TW_OK;
            if (!r1 && (r1 = check_caps(ob, w->batch, &err)) == TW_EBUSY) {
                w->refused = r1;
                w->err = err;
            } else if (!r1) {
                r1 = apply_batch(ob, w->batch, &c, &err);
            }
            if (!r1)
                r1 = tw__store_commit(ob->st, &err);
            if (r1) {
                tw__store_rollback(ob->st);
                c.n = before;
            }
            finish(ob, w, r1, &err);
        }
        ws = NULL;
        rc = rs ? tw__store_begin(ob->st, &err) : TW_OK;
        if (!rc && rs && !(rc = apply_results(ob, rs, now, &err)))
            rc = tw__store_commit(ob->st, &err);
        if (rc) {
            tw__store_rollback(ob->st);
            keep_unrecorded(ob, rs, now, &err);
            rs = NULL;
        }
    }
    if (rs) { /* committed: the dispatcher may read these rows back from the store now */
        const result *last = rs;
        while (last->next)
            last = last->next;
        ob->recorded_seq = last->seq;
    }
    refresh_depth(ob);
    pthread_mutex_unlock(&ob->db);
    /* Hand the new rows over before releasing the sources, so their alerts are already queued. */
    if (c.n && ob->hooks.on_committed)
        ob->hooks.on_committed(ob->hooks.ctx, c.v, c.n);
    if (ws)
        finish(ob, ws, TW_OK, NULL);
    TW_VEC_FREE(&c);
    recorded(ob, rs);
}

/* CloudTrail eventIDs older than the dedup window are forgotten while running too, a bounded batch
 * at a time so that commits waiting behind it are not held up for long. */
static void prune_seen(tw_outbox *ob, int64_t now)
{
    int64_t window = ob->seen_window_ms;
    if (window <= 0 || now < ob->next_prune)
        return;
    int64_t every = window / 10 < 250 ? 250 : window / 10 > 60000 ? 60000 : window / 10;
    ob->next_prune = now + every;
    tw_error err;
    int64_t deleted = 0;
    pthread_mutex_lock(&ob->db);
    tw_status rc = tw__store_begin(ob->st, &err);
    if (!rc)
        rc = tw__store_prune_seen_some(ob->st, now - window, 10000, &deleted, &err);
    if (!rc)
        rc = tw__store_commit(ob->st, &err);
    if (rc)
        tw__store_rollback(ob->st);
    pthread_mutex_unlock(&ob->db);
    if (rc)
        tw__log(TW_LOG_WARN, "cannot forget old event ids", "error", err.msg, NULL);
    else if (deleted == 10000)
        ob->next_prune = now; /* more to do: go on at the next turn */
}

static void *writer_main(void *arg)
{
    tw__thread_name("tw-outbox");
    tw_outbox *ob = arg;
    pthread_mutex_lock(&ob->lock);
    for (;;) {
        /* Woken by work, else every 250 ms: retried outcomes, pruning. */
        while (!ob->waiters && !ob->results && !ob->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 250 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&ob->wake, &ob->lock, &ts))
                break;
        }
        waiter *ws = ob->waiters;
        result *rs = ob->results;
        ob->waiters = NULL;
        ob->waiters_tail = &ob->waiters;
        ob->results = NULL;
        ob->results_tail = &ob->results;
        int stopping = ob->stopping;
        pthread_mutex_unlock(&ob->lock);
        run_group(ob, ws, rs);
        if (!stopping)
            prune_seen(ob, tw__now_ms());
        pthread_mutex_lock(&ob->lock);
        if (stopping && !ob->waiters && !ob->results)
            break;
    }
    pthread_mutex_unlock(&ob->lock);
    if (ob->unrecorded) {
        char n[24];
        snprintf(n, sizeof n, "%zu", count_results(ob->unrecorded));
        tw__log(TW_LOG_ERROR, "stopping with delivery outcomes not recorded: those alerts will be delivered "
                             "again at the next start", "outcomes", n, NULL);
        free_results(ob->unrecorded);
        ob->unrecorded = NULL;
    }
    return NULL;
}

tw_status tw__outbox_start(const char *data_dir, const tw_outbox_hooks *hooks, tw_outbox **out, tw_error *err)
{
    *out = NULL;
    tw_outbox *ob = calloc(1, sizeof *ob);
    if (!ob)
        return tw__err(err, TW_ENOMEM, "out of memory starting the outbox");
    tw_status rc = tw_store_open(data_dir, &ob->st, err);
    if (rc) {
        free(ob);
        return rc;
    }
    if (!(ob->data_dir = strdup(data_dir))) {
        tw_store_close(ob->st);
        free(ob);
        return tw__err(err, TW_ENOMEM, "out of memory starting the outbox");
    }
    refresh_depth(ob);
    if ((rc = tw__ckpt_start(data_dir, ob->st, &ob->ckpt, err))) {
        tw_store_close(ob->st);
        free(ob->data_dir);
        free(ob);
        return rc;
    }
    if (hooks)
        ob->hooks = *hooks;
    ob->waiters_tail = &ob->waiters;
    ob->results_tail = &ob->results;
    ob->unrecorded_tail = &ob->unrecorded;
    pthread_mutex_init(&ob->lock, NULL);
    pthread_mutex_init(&ob->db, NULL);
    pthread_mutex_init(&ob->rlock, NULL);
    pthread_cond_init(&ob->wake, NULL);
    pthread_cond_init(&ob->done, NULL);
    if (pthread_create(&ob->thread, NULL, writer_main, ob)) {
        tw__ckpt_stop(ob->ckpt);
        tw_store_close(ob->st);
        pthread_mutex_destroy(&ob->lock);
        pthread_mutex_destroy(&ob->db);
        pthread_mutex_destroy(&ob->rlock);
        pthread_cond_destroy(&ob->wake);
        pthread_cond_destroy(&ob->done);
        free(ob->data_dir);
        free(ob);
        return tw__err(err, TW_ESYS, "cannot start the outbox writer thread");
    }
    *out = ob;
    return TW_OK;
}

void tw__outbox_stop(tw_outbox *ob)
{
    if (!ob)
        return;
    pthread_mutex_lock(&ob->lock);
    ob->stopping = 1;
    pthread_cond_signal(&ob->wake);
    pthread_mutex_unlock(&ob->lock);
    pthread_join(ob->thread, NULL);
    tw__ckpt_stop(ob->ckpt);
    tw_store_close(ob->rst);
    tw_store_close(ob->st); /* the last connection: it checkpoints and removes the WAL */
    pthread_mutex_destroy(&ob->lock);
    pthread_mutex_destroy(&ob->db);
    pthread_mutex_destroy(&ob->rlock);
    pthread_cond_destroy(&ob->wake);
    pthread_cond_destroy(&ob->done);
    free(ob->data_dir);
    free(ob);
}

tw_status tw__outbox_commit(tw_outbox *ob, tw_commit_batch *b, tw_error *err)
{
    waiter w = {NULL, b, TW_OK, {TW_OK, ""}, TW_OK, 0};
    pthread_mutex_lock(&ob->lock);
    if (ob->stopping) {
        pthread_mutex_unlock(&ob->lock);
        return tw__err(err, TW_EINVAL, "the server is stopping");
    }
    *ob->waiters_tail = &w;
    ob->waiters_tail = &w.next;
    pthread_cond_signal(&ob->wake);
    while (!w.done)
        pthread_cond_wait(&ob->done, &ob->lock);
    pthread_mutex_unlock(&ob->lock);
    if (w.status && err)
        *err = w.err;
    return w.status;
}

static uint64_t push_result(tw_outbox *ob, result_kind kind, int64_t id, int64_t next_ms, uint32_t attempts,
                            const char *error, const char *response)
{
    result *r = calloc(1, sizeof *r);
    if (!r) {
        tw__log(TW_LOG_ERROR, "out of memory recording a delivery outcome", NULL);
        return 0;
    }
    r->kind = kind;
    r->id = id;
    r->next_ms = next_ms;
    r->attempts = attempts;
    r->error = error ? strdup(error) : NULL;
    r->response = response ? strdup(response) : NULL;
    pthread_mutex_lock(&ob->lock);
    uint64_t seq = r->seq = ++ob->next_seq; /* r is the writer's once queued */
    *ob->results_tail = r;
    ob->results_tail = &r->next;
    pthread_cond_signal(&ob->wake);
    pthread_mutex_unlock(&ob->lock);
    return seq;
}

uint64_t tw__outbox_delivered(tw_outbox *ob, int64_t id) { return push_result(ob, R_DELIVERED, id, 0, 0, NULL, NULL); }

uint64_t tw__outbox_retry(tw_outbox *ob, int64_t id, int64_t next_ms, uint32_t attempts, const char *error)
{
    return push_result(ob, R_RETRY, id, next_ms, attempts, error, NULL);
}

uint64_t tw__outbox_dead(tw_outbox *ob, int64_t id, uint32_t attempts, const char *reason, const char *response)
{
    return push_result(ob, R_DEAD, id, 0, attempts, reason, response);
}

uint64_t tw__outbox_recorded_seq(tw_outbox *ob) { return ob->recorded_seq; }

void tw__outbox_cap_counts(tw_outbox *ob, uint64_t *refused, uint64_t *dropped)
{
    *refused = ob->refused;
    *dropped = ob->dropped;
}

tw_status tw__outbox_load_seen(tw_outbox *ob, int64_t since_ms, tw_seen_fn fn, void *ctx, tw_error *err)
{
    pthread_mutex_lock(&ob->db);
    tw_status rc = tw__store_scan_seen(ob->st, since_ms, fn, ctx, err);
    if (!rc)
        rc = tw__store_prune_seen(ob->st, since_ms, err);
    pthread_mutex_unlock(&ob->db);
    return rc;
}

typedef struct due_ctx {
    int (*fn)(void *ctx, const tw_storm_summary *s);
    void *ctx;
} due_ctx;

static int due_row(void *ctx, const tw_storm_row *row)
{
    const due_ctx *d = ctx;
    tw_storm_summary s = {row->rule, row->key, row->event, row->event_len, row->suppressed, row->window_end_ms};
    return d->fn(d->ctx, &s);
}

tw_status tw__outbox_storms_due(tw_outbox *ob, int64_t now_ms, size_t max,
                               int (*fn)(void *ctx, const tw_storm_summary *s), void *ctx, tw_error *err)
{
    due_ctx d = {fn, ctx};
    pthread_mutex_lock(&ob->db);
    tw_status rc = tw__store_storm_due(ob->st, now_ms, max, due_row, &d, err);
    pthread_mutex_unlock(&ob->db);
    return rc;
}

int tw__outbox_file_done(tw_outbox *ob, const char *path, int64_t size, int64_t mtime)
{
    pthread_mutex_lock(&ob->rlock);
    if (!ob->rst && !ob->rst_failed) {
        tw_error err;
        ob->rst_failed = tw_store_open(ob->data_dir, &ob->rst, &err) != TW_OK;
    }
    if (ob->rst) {
        int done = tw__store_file_done(ob->rst, path, size, mtime);
        pthread_mutex_unlock(&ob->rlock);
        return done;
    }
    pthread_mutex_unlock(&ob->rlock);
    /* no second connection (out of memory, descriptors): the writer's */
    pthread_mutex_lock(&ob->db);
    int done = tw__store_file_done(ob->st, path, size, mtime);
    pthread_mutex_unlock(&ob->db);
    return done;
}

int64_t tw__outbox_depth(tw_outbox *ob) { return ob->depth; }

size_t tw__outbox_unrecorded(tw_outbox *ob) { return ob->nunrecorded; }

void tw__outbox_set_seen_window(tw_outbox *ob, int64_t window_ms) { ob->seen_window_ms = window_ms; }
