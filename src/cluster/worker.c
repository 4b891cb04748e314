/*
 * cluster/worker.c: matcher workers: fetch a batch from the durable pull consumer, run it through
 * the engine (match, render, commit the alerts to the outbox), and only then acknowledge it.
 *
 * An event the engine rejects (not a usable event) is terminated: redelivering it would fail the
 * same way. A batch the engine could not store at all (disk full) is negatively acknowledged with a
 * delay, so it comes back, here or on another worker.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cluster/cluster_int.h"
#include "common/err.h"
#include "common/thread.h"
#include "outbox/store.h"
#include "telemetry/log.h"

typedef struct fetcher {
    tw_cluster *c;
    natsSubscription *sub;
} fetcher;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tw__cluster_rate_sample(tw_cluster *c)
{
    int64_t now = mono_ms();
    uint64_t events = c->fetched ? atomic_load(&c->fetched->value) : 0;
    pthread_mutex_lock(&c->rate_lock);
    unsigned last = (c->ring_pos + TW_CLUSTER_RATE_SLOTS - 1) % TW_CLUSTER_RATE_SLOTS;
    if (!c->ring_n || now - c->ring[last].ms >= 1000) {
        c->ring[c->ring_pos].ms = now;
        c->ring[c->ring_pos].events = events;
        c->ring_pos = (c->ring_pos + 1) % TW_CLUSTER_RATE_SLOTS;
        if (c->ring_n < TW_CLUSTER_RATE_SLOTS)
            c->ring_n++;
    }
    pthread_mutex_unlock(&c->rate_lock);
}

double tw__cluster_rate(tw_cluster *c, int64_t window_ms)
{
    int64_t now = mono_ms();
    uint64_t events = c->fetched ? atomic_load(&c->fetched->value) : 0;
    double rate = 0;
    pthread_mutex_lock(&c->rate_lock);
    /* The newest sample at least window_ms old, else the oldest there is. */
    for (unsigned k = 1; k <= c->ring_n; k++) {
        unsigned i = (c->ring_pos + TW_CLUSTER_RATE_SLOTS - k) % TW_CLUSTER_RATE_SLOTS;
        if (now - c->ring[i].ms >= window_ms || k == c->ring_n) {
            int64_t dt = now - c->ring[i].ms;
            rate = dt > 0 ? (double)(events - c->ring[i].events) * 1000.0 / (double)dt : 0;
            break;
        }
    }
    pthread_mutex_unlock(&c->rate_lock);
    return rate;
}

/* What is there right now, up to a batch; when nothing is, a long poll for the next event (returned
 * at once, alone: waiting to fill a batch would add its wait to every alert's latency). */
static natsStatus fetch(fetcher *f, natsMsgList *list)
{
    jsFetchRequest r;
    jsFetchRequest_Init(&r);
    r.Batch = (int)f->c->fetch_batch;
    r.NoWait = true;
    r.Expires = (int64_t)TW_CLUSTER_FETCH_WAIT_MS * 1000000;
    natsStatus s = natsSubscription_FetchRequest(list, f->sub, &r);
    if (s != NATS_NOT_FOUND && s != NATS_TIMEOUT)
        return s;
    if (f->c->stopping)
        return NATS_TIMEOUT;
    jsFetchRequest_Init(&r);
    r.Batch = 1;
    r.Expires = (int64_t)TW_CLUSTER_FETCH_WAIT_MS * 1000000;
    return natsSubscription_FetchRequest(list, f->sub, &r);
}

static void process(fetcher *f, natsMsgList *list, tw_ingest_item *items, tw_ingest_result *res)
{
    tw_cluster *c = f->c;
    int64_t t0 = mono_ms();
    size_t n = (size_t)list->Count;
    uint64_t redelivered = 0;
    for (size_t i = 0; i < n; i++) {
        natsMsg *m = list->Msgs[i];
        items[i] = (tw_ingest_item){natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), TW_EVENT_ENVELOPE};
        if (!items[i].json)
            items[i] = (tw_ingest_item){"", 0, TW_EVENT_ENVELOPE};
        jsMsgMetaData *md = NULL;
        if (natsMsg_GetMetaData(&md, m) == NATS_OK && md->NumDelivered > 1)
            redelivered++;
        jsMsgMetaData_Destroy(md);
    }
    tw_count(c->redelivered, redelivered);
    tw_ingest_opts o = {.source = "cluster"};
    tw_error err;
    tw_status rc = tw__engine_submit_local(c->engine, items, n, &o, res, &err);
    if (rc) {
        /* Nothing of the batch was kept: it must come back (soon elsewhere, later here). */
        int stopping = tw__engine_stopping(c->engine);
        if (!stopping)
            tw__log(TW_LOG_ERROR, "cannot store a batch from the stream; it will be redelivered", "error", err.msg, NULL);
        for (size_t i = 0; i < n; i++) {
            if (stopping)
                natsMsg_Nak(list->Msgs[i], NULL);
            else
                natsMsg_NakWithDelay(list->Msgs[i], TW_CLUSTER_NAK_DELAY_MS, NULL);
        }
        tw_count(c->naks, n);
        if (!stopping) {
            struct timespec ts = {TW_CLUSTER_NAK_DELAY_MS / 1000, (TW_CLUSTER_NAK_DELAY_MS % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        return;
    }
    uint64_t acked = 0, rejected = 0;
    for (size_t i = 0; i < n; i++) {
        if (res[i].status == TW_OK) {
            acked += natsMsg_Ack(list->Msgs[i], NULL) == NATS_OK;
            continue;
        }
        /* Not an event the engine can use: no redelivery would change that. */
        rejected++;
        natsMsg_Term(list->Msgs[i], NULL);
        tw__log(TW_LOG_WARN, "invalid event in the stream dropped", "error", res[i].error, NULL);
    }
    tw_count(c->fetched, n);
    tw_count(c->acked, acked);
    tw_count(c->rejected, rejected);
    tw__observe(c->batch_time, (mono_ms() - t0) * 1000);
}

static void *fetch_main(void *arg)
{
    tw__thread_name("tw-fetch");
    fetcher *f = arg;
    tw_cluster *c = f->c;
    tw_ingest_item *items = malloc(c->fetch_batch * sizeof *items);
    tw_ingest_result *res = malloc(c->fetch_batch * sizeof *res);
    int64_t last_error_log = 0;
    while (items && res && !c->stopping) {
        natsMsgList list = {0};
        natsStatus s = fetch(f, &list);
        tw__cluster_rate_sample(c);
        if (s == NATS_OK && list.Count > 0) {
            process(f, &list, items, res);
            natsMsgList_Destroy(&list);
            continue;
        }
        natsMsgList_Destroy(&list);
        if (s == NATS_OK || s == NATS_TIMEOUT || s == NATS_NOT_FOUND)
            continue;
        /* The connection is down or the consumer has no leader (a node died): the client reconnects
         * on its own; try again shortly, logging at most every few seconds. */
        if (mono_ms() - last_error_log > 5000) {
            tw_error e;
            tw__cluster_err(&e, s, 0, "fetching from %s", c->consumer);
            tw__log(TW_LOG_WARN, "cannot fetch from the stream; retrying", "error", e.msg, NULL);
            last_error_log = mono_ms();
        }
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!items || !res)
        tw__log(TW_LOG_ERROR, "out of memory starting a cluster worker", NULL);
    free(items);
    free(res);
    return NULL;
}

tw_status tw__cluster_workers_start(tw_cluster *c, tw_error *err)
{
    c->threads = calloc(c->fetchers, sizeof *c->threads);
    fetcher *fs = calloc(c->fetchers, sizeof *fs);
    c->fetcher_state = fs;
    if (!c->threads || !fs)
        return tw__err(err, TW_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < c->fetchers; i++) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = c->stream;
        so.Consumer = c->consumer;
        jsErrCode jerr = 0;
        fs[i].c = c;
        natsStatus s = js_PullSubscribe(&fs[i].sub, c->js, c->subject, c->consumer, NULL, &so, &jerr);
        if (s != NATS_OK)
            return tw__cluster_err(err, s, jerr, "cluster: cannot subscribe to the consumer %s of %s", c->consumer,
                                   c->stream);
        if (pthread_create(&c->threads[i], NULL, fetch_main, &fs[i]))
            return tw__err(err, TW_ESYS, "cannot start a cluster worker thread");
        c->nthreads++;
    }
    return TW_OK;
}

void tw__cluster_workers_join(tw_cluster *c)
{
    c->stopping = 1;
    for (size_t i = 0; i < c->nthreads; i++)
        pthread_join(c->threads[i], NULL);
    c->nthreads = 0;
    fetcher *fs = c->fetcher_state;
    for (uint32_t i = 0; fs && i < c->fetchers; i++) {
        natsSubscription_Destroy(fs[i].sub);
        fs[i].sub = NULL;
    }
    /* The last acks go out before the connection closes (else they come back as redeliveries). */
    if (c->nc)
        natsConnection_FlushTimeout(c->nc, 2000);
}

double tw__cluster_cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}
