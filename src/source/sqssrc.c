/* source/sqssrc.c: receive notifications, read the files they announce, then delete the message. */
#include "common/thread.h"
#include "source/sqssrc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/sqs.h"
#include "common/err.h"
#include "source/batch.h"
#include "source/notify.h"
#include "source/s3obj.h"
#include "telemetry/log.h"

#define WORKERS_MAX 16
#define INFLIGHT_MAX (WORKERS_MAX * TW_SQS_MAX_MESSAGES)

typedef struct inflight {
    char *receipt;                 /* NULL: free slot */
    int64_t renewed_ms;
} inflight;

typedef struct worker_arg {
    struct tw_sqssrc *s;
    unsigned index;
} worker_arg;

struct tw_sqssrc {
    tw_engine *engine;
    tw_aws_client *client;
    tw_limits lim;
    char *queue_url;
    unsigned wait_s, visibility_s, nworkers;
    pthread_t threads[WORKERS_MAX], heartbeat;
    unsigned nthreads;
    int heartbeat_started;
    tw_src_batch batches[WORKERS_MAX];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    inflight inflight[INFLIGHT_MAX];
    atomic_int stop, idle;
    worker_arg args[WORKERS_MAX];
    tw_counter *m_msgs[4], *m_files[4], *m_failed, *m_records;
};

enum { MSG_DELETED = 0, MSG_TEST, MSG_REJECTED, MSG_KEPT };

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stopping(const tw_sqssrc *s) { return atomic_load(&s->stop) || tw__engine_stopping(s->engine); }

/* ---- visibility heartbeat ---- */

static int track(tw_sqssrc *s, const char *receipt)
{
    pthread_mutex_lock(&s->lock);
    int slot = -1;
    for (int i = 0; i < (int)INFLIGHT_MAX && slot < 0; i++)
        if (!s->inflight[i].receipt && (s->inflight[i].receipt = strdup(receipt))) {
            s->inflight[i].renewed_ms = mono_ms();
            slot = i;
        }
    pthread_mutex_unlock(&s->lock);
    return slot;
}

static void untrack(tw_sqssrc *s, int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&s->lock);
    free(s->inflight[slot].receipt);
    s->inflight[slot].receipt = NULL;
    pthread_mutex_unlock(&s->lock);
}

static void *heartbeat_main(void *arg)
{
    tw__thread_name("tw-sqs-beat");
    tw_sqssrc *s = arg;
    int64_t every = (int64_t)s->visibility_s * 1000 / 3;
    pthread_mutex_lock(&s->lock);
    while (!atomic_load(&s->stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        int64_t now = mono_ms();
        for (size_t i = 0; i < INFLIGHT_MAX && !atomic_load(&s->stop); i++) {
            if (!s->inflight[i].receipt || now - s->inflight[i].renewed_ms < every)
                continue;
            char *receipt = strdup(s->inflight[i].receipt);
            s->inflight[i].renewed_ms = now;
            pthread_mutex_unlock(&s->lock);
            tw_error err;
            if (receipt && tw__sqs_visibility(s->client, s->queue_url, receipt, s->visibility_s, &err))
                tw__log(TW_LOG_WARN, "sqs: cannot extend a message's visibility", "error", err.msg, NULL);
            free(receipt);
            pthread_mutex_lock(&s->lock);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- one message ---- */

typedef struct msg_ctx {
    tw_sqssrc *s;
    tw_src_batch *b;
    int failed;
    tw_error err;
} msg_ctx;

static int on_object(void *ctx, const char *bucket, const char *key, int64_t size)
{
    msg_ctx *m = ctx;
    tw_sqssrc *s = m->s;
    if (!tw__s3obj_is_log_key(key))
        return 0; /* digests, Insights, other files under a notified prefix */
    tw_s3obj_result res;
    size_t records = 0;
    if (stopping(s) ||
        tw__s3obj_ingest(s->client, m->b, &s->lim, bucket, key, size, &res, &records, &m->err)) {
        if (stopping(s))
            tw__err(&m->err, TW_EINVAL, "stopping");
        m->failed = 1;
        tw_count(s->m_failed, 1);
        return 1;
    }
    tw_count(s->m_files[res], 1);
    tw_count(s->m_records, records);
    return 0;
}

static int handle(tw_sqssrc *s, tw_src_batch *b, const tw_sqs_msg *msg)
{
    int slot = track(s, msg->receipt);
    msg_ctx m = {s, b, 0, {0, ""}};
    tw_notify_kind kind;
    tw_error err;
    int outcome;
    if (tw__notify_parse(msg->body, msg->body_len, &kind, on_object, &m, &err)) {
        tw__log(TW_LOG_WARN, "sqs: not a notification, deleted", "message_id", msg->id ? msg->id : "", "error", err.msg,
               NULL);
        outcome = MSG_REJECTED;
    } else if (m.failed) {
        if (!stopping(s))
            tw__log(TW_LOG_WARN, "sqs: a file could not be read; the message stays for a retry", "message_id",
                   msg->id ? msg->id : "", "error", m.err.msg, NULL);
        outcome = MSG_KEPT;
    } else {
        outcome = kind == TW_NOTIFY_TEST ? MSG_TEST : MSG_DELETED;
    }
    untrack(s, slot);
    if (outcome != MSG_KEPT && tw__sqs_delete(s->client, s->queue_url, msg->receipt, &err)) {
        tw__log(TW_LOG_WARN, "sqs: cannot delete a message (it will come back; its files are done)", "error", err.msg,
               NULL);
        outcome = MSG_KEPT;
    }
    return outcome;
}

static void *worker_main(void *arg)
{
    tw__thread_name("tw-sqs");
    worker_arg *wa = arg;
    tw_sqssrc *s = wa->s;
    tw_src_batch *b = &s->batches[wa->index];
    int64_t backoff = 0;
    while (!stopping(s)) {
        tw_sqs_batch batch;
        tw_error err;
        if (tw__sqs_receive(s->client, s->queue_url, TW_SQS_MAX_MESSAGES, s->wait_s, s->visibility_s, &batch, &err)) {
            tw__log(TW_LOG_WARN, "sqs: ReceiveMessage failed, will retry", "error", err.msg, NULL);
            backoff = backoff ? (backoff * 2 > 60000 ? 60000 : backoff * 2) : 1000;
            for (int64_t w = 0; w < backoff && !stopping(s); w += 100)
                usleep(100000);
            continue;
        }
        backoff = 0;
        atomic_store(&s->idle, batch.n == 0);
        for (size_t i = 0; i < batch.n && !stopping(s); i++)
            tw_count(s->m_msgs[handle(s, b, &batch.msgs[i])], 1);
        tw__sqs_batch_free(&batch);
    }
    return NULL;
}

/* ---- lifecycle ---- */

static void sqssrc_free(tw_sqssrc *s)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        tw__src_batch_free(&s->batches[i]);
    for (size_t i = 0; i < INFLIGHT_MAX; i++)
        free(s->inflight[i].receipt);
    free(s->queue_url);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

tw_status tw__sqssrc_start(tw_engine *e, tw_metrics *m, tw_aws_client *c, const tw_sqssrc_cfg *cfg,
                          const tw_limits *lim, tw_sqssrc **out, tw_error *err)
{
    *out = NULL;
    tw_sqssrc *s = calloc(1, sizeof *s);
    if (!s)
        return tw__err(err, TW_ENOMEM, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->engine = e;
    s->client = c;
    s->lim = *lim;
    s->wait_s = cfg->wait_s;
    s->visibility_s = cfg->visibility_s ? cfg->visibility_s : 300;
    s->nworkers = cfg->workers < 1 ? 1 : cfg->workers > WORKERS_MAX ? WORKERS_MAX : cfg->workers;
    tw_status rc;
    if (!(s->queue_url = strdup(cfg->queue_url))) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < s->nworkers; i++)
        if ((rc = tw__src_batch_init(&s->batches[i], e, m, "sqs", err)))
            goto fail;
    static const char *const outcomes[] = {"deleted", "test_event", "rejected", "kept"};
    static const char *const results[] = {"processed", "already_done", "rejected", "gone"};
    for (size_t i = 0; i < 4; i++) {
        char label[48];
        s->m_msgs[i] = tw__metrics_counter(m, "trailwatch_sqs_messages_total", "SQS messages handled, by outcome.",
                                          tw__metrics_label(label, sizeof label, "outcome", outcomes[i]));
        s->m_files[i] = tw__metrics_counter(m, "trailwatch_sqs_files_total",
                                           "CloudTrail log files announced on SQS, by outcome.",
                                           tw__metrics_label(label, sizeof label, "result", results[i]));
    }
    s->m_failed = tw__metrics_counter(m, "trailwatch_sqs_files_failed_total",
                                     "Announced log files that could not be read (the message is retried).", "");
    s->m_records = tw__metrics_counter(m, "trailwatch_sqs_records_total", "CloudTrail records read via SQS.", "");
    int prc = pthread_create(&s->heartbeat, NULL, heartbeat_main, s);
    if (prc) {
        rc = tw__err(err, TW_ESYS, "cannot start the SQS source: %s", strerror(prc));
        goto fail;
    }
    s->heartbeat_started = 1;
    for (unsigned i = 0; i < s->nworkers; i++) {
        s->args[i] = (worker_arg){s, i};
        if ((prc = pthread_create(&s->threads[i], NULL, worker_main, &s->args[i]))) {
            rc = tw__err(err, TW_ESYS, "cannot start the SQS source: %s", strerror(prc));
            tw__sqssrc_stop(s);
            return rc;
        }
        s->nthreads++;
    }
    *out = s;
    return TW_OK;
fail:
    sqssrc_free(s);
    return rc;
}

int tw__sqssrc_idle(const tw_sqssrc *s) { return atomic_load(&s->idle); }

void tw__sqssrc_stop(tw_sqssrc *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stop, 1);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    if (s->heartbeat_started)
        pthread_join(s->heartbeat, NULL);
    sqssrc_free(s);
}
