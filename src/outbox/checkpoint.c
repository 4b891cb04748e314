/* outbox/checkpoint.c: the WAL's copy into the database, off the writer's commits. */
#include "outbox/checkpoint.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/thread.h"
#include "telemetry/log.h"

struct tw_ckpt {
    tw_store *writer;
    tw_store *st;                  /* this thread's connection */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int want, running, stopping;
    _Atomic uint64_t count;
};

/* The writer's commit hook: runs on the writer's thread, so it only signals. */
static void on_wal(void *ctx, int pages)
{
    tw_ckpt *c = ctx;
    if (pages < TW_OUTBOX_CKPT_PAGES)
        return;
    pthread_mutex_lock(&c->lock);
    if (!c->want) {
        c->want = 1;
        pthread_cond_signal(&c->wake);
    }
    pthread_mutex_unlock(&c->lock);
}

static void *ckpt_main(void *arg)
{
    tw__thread_name("tw-checkpoint");
    tw_ckpt *c = arg;
    int64_t next_report = 0;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        if (!c->want) {
            pthread_cond_wait(&c->wake, &c->lock);
            continue;
        }
        c->want = 0;
        c->running = 1;
        pthread_mutex_unlock(&c->lock);
        tw_error err;
        if (tw__store_checkpoint(c->st, &err)) {
            /* The writer checkpoints itself past TW_OUTBOX_WAL_MAX_PAGES: nothing is lost by waiting. */
            int64_t now = tw__now_ms();
            if (now >= next_report) {
                tw__log(TW_LOG_WARN, "cannot checkpoint the outbox", "error", err.msg, NULL);
                next_report = now + 60000;
            }
        }
        c->count++;
        pthread_mutex_lock(&c->lock);
        c->running = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

tw_status tw__ckpt_start(const char *data_dir, tw_store *writer, tw_ckpt **out, tw_error *err)
{
    *out = NULL;
    tw_ckpt *c = calloc(1, sizeof *c);
    if (!c)
        return tw__err(err, TW_ENOMEM, "out of memory starting the outbox checkpoints");
    tw_status rc = tw_store_open(data_dir, &c->st, err);
    if (rc) {
        free(c);
        return rc;
    }
    c->writer = writer;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    if (pthread_create(&c->thread, NULL, ckpt_main, c)) {
        tw_store_close(c->st);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->wake);
        free(c);
        return tw__err(err, TW_ESYS, "cannot start the outbox checkpoint thread");
    }
    tw__store_on_wal(writer, on_wal, c);
    *out = c;
    return TW_OK;
}

uint64_t tw__ckpt_count(tw_ckpt *c) { return c ? c->count : 0; }

int tw__ckpt_idle(tw_ckpt *c)
{
    pthread_mutex_lock(&c->lock);
    int idle = !c->want && !c->running;
    pthread_mutex_unlock(&c->lock);
    return idle;
}

void tw__ckpt_stop(tw_ckpt *c)
{
    if (!c)
        return;
    tw__store_on_wal(c->writer, NULL, NULL);
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    tw_store_close(c->st);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    free(c);
}
