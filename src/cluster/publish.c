/*
 * cluster/publish.c: the ingest side: a source's batch of events published to the stream, returning
 * once JetStream acknowledged every one of them.
 *
 * Each concurrent call takes a publisher slot (its own JetStream context, so the asynchronous
 * acknowledgements of one call are never mixed with another's), publishes every event without
 * waiting, then waits for the acknowledgements. Events that failed (a timeout while a node dies, no
 * stream leader during an election, a full stream) are published again with the same Nats-Msg-Id
 * until publish_timeout: the stream's duplicate window makes the retry harmless.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster_int.h"
#include "common/err.h"
#include "common/uuid.h"
#include "event/ids.h"
#include "json/skip.h"
#include "outbox/store.h"
#include "telemetry/log.h"
#include "trailwatch/event.h"

/* Per item: not to publish, to (re)send, waiting for its ack, stored, stored before (duplicate),
 * failed (retried), refused for its size (never retried). */
enum { S_SKIP = 0, S_SEND, S_PENDING, S_OK, S_DUP, S_FAILED, S_TOOBIG };

struct tw_cluster_pub {
    jsCtx *js;
    pthread_mutex_t lock;          /* the batch state below: the ack handler runs on a NATS thread */
    pthread_cond_t settled;
    natsMsg **msgs;                /* msgs[i]: item i's message while it waits for its ack */
    unsigned char *state;
    size_t n, cap, hint, pending;
    char last_error[200];
};

/* Called by the NATS library for every acknowledgement or failure of an asynchronous publish. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    tw_cluster_pub *p = closure;
    pthread_mutex_lock(&p->lock);
    size_t i = p->hint, k = 0;
    while (k < p->n && p->msgs[i] != msg) {   /* acks come mostly in order: start at the last one */
        i = i + 1 == p->n ? 0 : i + 1;
        k++;
    }
    if (k < p->n) {
        p->msgs[i] = NULL;
        p->hint = i + 1 == p->n ? 0 : i + 1;
        if (pae) {
            p->state[i] = pae->ErrCode == JSStreamMessageExceedsMaximumErr ? S_TOOBIG : S_FAILED;
            snprintf(p->last_error, sizeof p->last_error, "%s%s%.150s", natsStatus_GetText(pae->Err),
                     pae->ErrText ? ": " : "", pae->ErrText ? pae->ErrText : "");
        } else {
            p->state[i] = pa && pa->Duplicate ? S_DUP : S_OK;
        }
        if (--p->pending == 0)
            pthread_cond_signal(&p->settled);
    }
    pthread_mutex_unlock(&p->lock);
    /* With an ack handler the message is ours to destroy (nats.h, jsPubAckHandler). */
    natsMsg_Destroy(msg);
}

static void pub_free(tw_cluster_pub *p)
{
    if (!p)
        return;
    jsCtx_Destroy(p->js);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->settled);
    free(p->msgs);
    free(p->state);
    free(p);
}

static tw_cluster_pub *pub_new(tw_cluster *c, tw_error *err)
{
    tw_cluster_pub *p = calloc(1, sizeof *p);
    if (!p) {
        tw__err(err, TW_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->settled, NULL);
    jsOptions o;
    jsOptions_Init(&o);
    o.PublishAsync.AckHandler = on_ack;
    o.PublishAsync.AckHandlerClosure = p;
    natsStatus s = natsConnection_JetStream(&p->js, c->nc, &o);
    if (s != NATS_OK) {
        tw__cluster_err(err, s, 0, "cluster: cannot open a JetStream context");
        pub_free(p);
        return NULL;
    }
    return p;
}

static tw_cluster_pub *pub_take(tw_cluster *c, tw_error *err)
{
    pthread_mutex_lock(&c->pub_lock);
    while (!c->npubs_idle && c->npubs == TW_CLUSTER_PUBLISHERS_MAX)
        pthread_cond_wait(&c->pub_cond, &c->pub_lock);
    tw_cluster_pub *p = NULL;
    if (c->npubs_idle) {
        p = c->pubs[--c->npubs_idle];
    } else {
        c->npubs++;
        pthread_mutex_unlock(&c->pub_lock);
        p = pub_new(c, err);
        pthread_mutex_lock(&c->pub_lock);
        if (!p)
            c->npubs--;
    }
    pthread_mutex_unlock(&c->pub_lock);
    return p;
}

static void pub_give(tw_cluster *c, tw_cluster_pub *p)
{
    pthread_mutex_lock(&c->pub_lock);
    c->pubs[c->npubs_idle++] = p;
    pthread_cond_signal(&c->pub_cond);
    pthread_mutex_unlock(&c->pub_lock);
}

void tw__cluster_pubs_free(tw_cluster *c)
{
    for (size_t i = 0; i < c->npubs_idle; i++)
        pub_free(c->pubs[i]);
    c->npubs_idle = c->npubs = 0;
}

static tw_status pub_reserve(tw_cluster_pub *p, size_t n)
{
    if (n > p->cap) {
        natsMsg **m = realloc(p->msgs, n * sizeof *m);
        if (m)
            p->msgs = m;
        unsigned char *st = m ? realloc(p->state, n) : NULL;
        if (!st)
            return TW_ENOMEM;
        p->state = st;
        p->cap = n;
    }
    memset(p->msgs, 0, n * sizeof *p->msgs);
    memset(p->state, S_SKIP, n);
    p->n = n;
    p->hint = p->pending = 0;
    p->last_error[0] = '\0';
    return TW_OK;
}

/* ---- one event: normalised, validated, named ---- */

typedef struct prepared {
    const char *text;
    size_t len;
    char *wrapped;                 /* owned when the record was wrapped here */
    char msg_id[96];               /* "" when the event has no id to deduplicate by */
} prepared;

static void reject(tw_ingest_result *r, tw_status code, const char *msg)
{
    r->status = code;
    snprintf(r->error, sizeof r->error, "%s", msg);
}

/* An event with neither a CloudTrail eventID nor an id gets an id here, written into its text: the
 * worker (each worker, on a redelivery) would otherwise make up a new one, and its alerts' idempotency
 * keys, which derive from it, would differ between deliveries. open: the object's '{'. Returns 0 when
 * out of memory; leaves the event as it is when the id would take it over the size limit. */
static int give_id(prepared *pe, const char *open, const char *end, const tw_limits *lim, char *id, size_t cap)
{
    char uuid[TW_UUID_LEN + 1];
    tw__uuid4(uuid);
    const char *rest = open + 1, *after = tw__lex_ws(rest, end);
    int empty = after < end && *after == '}';
    size_t head = (size_t)(rest - pe->text), tail = (size_t)(end - rest);
    size_t n = head + 7 + TW_UUID_LEN + !empty + tail;   /* "id":"<uuid>" and a comma */
    if (n > lim->event_max)
        return 1;
    char *t = malloc(n + 1);
    if (!t)
        return 0;
    int w = snprintf(t, n + 1, "%.*s\"id\":\"%s\"%s", (int)head, pe->text, uuid, empty ? "" : ",");
    memcpy(t + w, rest, tail);
    t[n] = '\0';
    free(pe->wrapped);
    pe->wrapped = t;
    pe->text = t;
    pe->len = n;
    snprintf(id, cap, "%s", uuid);
    return 1;
}

/* What the engine would refuse before matching: over the size limit, not JSON, not an object,
 * nested too deep. Raw CloudTrail records are wrapped here, as the engine would, so that workers
 * only ever see EventBridge events. */
static void prepare(const tw_ingest_item *it, const tw_limits *lim, prepared *pe, tw_ingest_result *r)
{
    tw_error err;
    pe->text = it->json;
    pe->len = it->len;
    if (it->len > lim->event_max) {
        char msg[128];
        snprintf(msg, sizeof msg, "event of %zu bytes exceeds the limit of %zu bytes", it->len, lim->event_max);
        reject(r, TW_ETOOBIG, msg);
        return;
    }
    if (it->kind == TW_EVENT_CLOUDTRAIL ||
        (it->kind == TW_EVENT_AUTO && tw_event_is_cloudtrail_record(it->json, it->len))) {
        size_t wl;
        if (tw_event_wrap_cloudtrail(it->json, it->len, &pe->wrapped, &wl, &err)) {
            reject(r, err.code, err.msg);
            return;
        }
        pe->text = pe->wrapped;
        pe->len = wl;
    }
    const char *end = pe->text + pe->len, *p = tw__lex_ws(pe->text, end);
    tw_lex_err e = {"empty input (expected a JSON object)", TW_EJSON, p};
    const char *q = p < end ? tw__json_skip(p, end, lim->json_depth, &e) : NULL;
    if (q && *p != '{')
        e = (tw_lex_err){"an event must be a JSON object", TW_EEVENT, p};
    else if (q && tw__lex_ws(q, end) != end)
        e = (tw_lex_err){"unexpected data after the JSON value", TW_EJSON, q};
    if (!q || *p != '{' || tw__lex_ws(q, end) != end) {
        char msg[160];
        snprintf(msg, sizeof msg, "byte %zu: %s", (size_t)(e.at ? e.at - pe->text : 0) + 1, e.why);
        reject(r, e.code ? e.code : TW_EJSON, msg);
        return;
    }
    char id[64];
    size_t il = tw__event_envelope_id(pe->text, pe->len, id, sizeof id);
    snprintf(r->id, sizeof r->id, "%s", il ? id : "");
    /* The CloudTrail eventID names the activity whichever path brought it; else the event's id. */
    if (tw__event_cloudtrail_id(pe->text, pe->len, 0, pe->msg_id, sizeof pe->msg_id))
        return;
    if (!il && !give_id(pe, p, end, lim, r->id, sizeof r->id)) {
        reject(r, TW_ENOMEM, "out of memory");
        return;
    }
    snprintf(pe->msg_id, sizeof pe->msg_id, "%s", r->id);
}

/* ---- publishing ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends every item in state S_SEND; those that cannot even be queued become S_FAILED. */
static void send_all(tw_cluster *c, tw_cluster_pub *p, const prepared *pe)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = TW_CLUSTER_PUBLISH_ATTEMPT_MS;
    for (size_t i = 0; i < p->n; i++) {
        if (p->state[i] != S_SEND)
            continue;
        natsMsg *m = NULL;
        natsStatus s = natsMsg_Create(&m, c->subject, NULL, pe[i].text, (int)pe[i].len);
        if (s == NATS_OK && pe[i].msg_id[0])
            s = natsMsgHeader_Set(m, "Nats-Msg-Id", pe[i].msg_id);
        pthread_mutex_lock(&p->lock);
        if (s == NATS_OK) {
            p->msgs[i] = m;
            p->state[i] = S_PENDING;
            p->pending++;
        }
        pthread_mutex_unlock(&p->lock);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(p->js, &m, &po);
        if (s != NATS_OK) {
            /* Not queued: the message is still ours (m), and no ack will come for it. */
            pthread_mutex_lock(&p->lock);
            if (p->state[i] == S_PENDING) {
                p->msgs[i] = NULL;
                p->pending--;
            }
            p->state[i] = s == NATS_MAX_PAYLOAD ? S_TOOBIG : S_FAILED;
            snprintf(p->last_error, sizeof p->last_error, "%s", natsStatus_GetText(s));
            pthread_mutex_unlock(&p->lock);
            natsMsg_Destroy(m);
        }
    }
}

/* Waits until every sent item is settled. The library times each message out after the attempt
 * time; past twice that, whatever it still holds is taken back and counted as failed. */
static void wait_settled(tw_cluster_pub *p)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + (int64_t)(2 * TW_CLUSTER_PUBLISH_ATTEMPT_MS) * 1000000;
    until.tv_sec += ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&p->lock);
    while (p->pending && pthread_cond_timedwait(&p->settled, &p->lock, &until) == 0)
        ;
    int left = p->pending != 0;
    pthread_mutex_unlock(&p->lock);
    if (!left)
        return;
    natsMsgList stuck = {0};
    if (js_PublishAsyncGetPendingList(&stuck, p->js) == NATS_OK) {
        pthread_mutex_lock(&p->lock);
        for (int k = 0; k < stuck.Count; k++)
            for (size_t i = 0; i < p->n; i++)
                if (p->msgs[i] == stuck.Msgs[k]) {
                    p->msgs[i] = NULL;
                    p->state[i] = S_FAILED;
                    p->pending--;
                }
        snprintf(p->last_error, sizeof p->last_error, "no acknowledgement from JetStream");
        pthread_mutex_unlock(&p->lock);
        natsMsgList_Destroy(&stuck);
    }
}

tw_status tw__cluster_publish(void *ctx, const tw_ingest_item *items, size_t n, const tw_ingest_opts *o,
                              tw_ingest_result *results, tw_error *err)
{
    tw_cluster *c = ctx;
    (void)o;
    int64_t t0 = mono_ms();
    tw_snapshot *snap = tw__snapshot_acquire(c->snaps);
    tw_limits lim = snap->cfg->lim;
    tw__snapshot_release(snap);
    prepared *pe = calloc(n ? n : 1, sizeof *pe);
    if (!pe)
        return tw__err(err, TW_ENOMEM, "out of memory");
    size_t tosend = 0;
    for (size_t i = 0; i < n; i++) {
        memset(&results[i], 0, sizeof results[i]);
        prepare(&items[i], &lim, &pe[i], &results[i]);
        tosend += results[i].status == TW_OK;
    }
    tw_status rc = TW_OK;
    tw_cluster_pub *p = tosend ? pub_take(c, err) : NULL;
    if (tosend && !p) {
        rc = err ? err->code : TW_EIO;
        goto out;
    }
    if (p && pub_reserve(p, n)) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; p && i < n; i++)
        if (results[i].status == TW_OK)
            p->state[i] = S_SEND;
    int64_t deadline = t0 + c->publish_timeout_ms, backoff = 50;
    for (int attempt = 0; p; attempt++) {
        send_all(c, p, pe);
        wait_settled(p);
        size_t failed = 0;
        for (size_t i = 0; i < n; i++) {
            failed += p->state[i] == S_FAILED;
            /* An event the stream can never take is refused alone; the rest goes on. */
            if (p->state[i] == S_TOOBIG) {
                reject(&results[i], TW_ETOOBIG, "event larger than the stream's or the NATS servers' maximum "
                                                "message size (raise max_payload)");
                p->state[i] = S_SKIP;
            }
        }
        if (!failed)
            break;
        if (mono_ms() + backoff >= deadline) {
            tw_count(c->pub_failed, failed);
            rc = tw__err(err, TW_EIO, "cluster: %zu of %zu events not stored by the JetStream stream %s within %lld ms: %s",
                         failed, tosend, c->stream, (long long)c->publish_timeout_ms, p->last_error);
            break;
        }
        if (attempt == 0)
            tw__log(TW_LOG_WARN, "publishing to JetStream failed; retrying", "stream", c->stream, "error",
                   p->last_error, NULL);
        tw_count(c->pub_retries, failed);
        struct timespec ts = {0, (long)backoff * 1000000};
        nanosleep(&ts, NULL);
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
        for (size_t i = 0; i < n; i++)
            if (p->state[i] == S_FAILED)
                p->state[i] = S_SEND;
    }
    if (!rc && p) {
        uint64_t dups = 0, ok = 0;
        for (size_t i = 0; i < n; i++) {
            results[i].duplicate = p->state[i] == S_DUP;
            dups += p->state[i] == S_DUP;
            ok += p->state[i] == S_OK;
        }
        tw_count(c->published, ok);
        tw_count(c->pub_duplicates, dups);
    }
    tw__observe(c->publish_time, (mono_ms() - t0) * 1000);
out:
    if (p)
        pub_give(c, p);
    for (size_t i = 0; i < n; i++)
        free(pe[i].wrapped);
    free(pe);
    return rc;
}
