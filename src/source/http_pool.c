/* source/http_pool.c: worker threads for handlers, and the reaper of connections past their deadline. */
#include "common/thread.h"
#include "source/http_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/err.h"

struct tw__http_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;           /* a job was queued, or stopping */
    pthread_cond_t tick;           /* the reaper's sleep; signalled when stopping */
    tw__http_job *head, *tail;
    int stopping;
    unsigned nthreads;
    pthread_t *threads;
    int reaping;
    pthread_t reaper;
    int64_t reap_ms;
    pthread_mutex_t conn_lock;     /* held while a socket is shut down, so that it cannot be closed meanwhile */
    tw__http_conn *conns;
    tw_counter *reaped;
};

int64_t tw__http_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *worker_main(void *arg)
{
    tw__thread_name("tw-http");
    tw__http_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->work, &p->lock);
        tw__http_job *j = p->head;
        if (!j)
            break;                 /* stopping, and nothing left to run */
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        j->fn(j->arg);             /* may free j */
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Shuts down what is past its deadline, a few at a time: the event loops take the same lock when
 * connections open and close, and must not wait behind a burst of thousands. */
#define REAP_BATCH 16

static void reap(tw__http_pool *p)
{
    int64_t now = tw__http_mono_ms();
    for (int more = 1; more;) {
        more = 0;
        int n = 0;
        pthread_mutex_lock(&p->conn_lock);
        for (tw__http_conn *c = p->conns; c; c = c->next) {
            int64_t d = atomic_load(&c->deadline_ms);
            if (d && now >= d) {
                if (n == REAP_BATCH) {
                    more = 1;
                    break;
                }
                /* The event loop sees end of input and closes the connection (and frees c) itself. */
                atomic_store(&c->deadline_ms, 0);
                shutdown(c->fd, SHUT_RDWR);
                n++;
            }
        }
        pthread_mutex_unlock(&p->conn_lock);
        if (n && p->reaped)
            tw_count(p->reaped, (uint64_t)n);
    }
}

static void *reaper_main(void *arg)
{
    tw__thread_name("tw-http-reap");
    tw__http_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(p->reap_ms % 1000) * 1000000L;
        ts.tv_sec += (time_t)(p->reap_ms / 1000) + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&p->tick, &p->lock, &ts);
        if (p->stopping)
            break;
        pthread_mutex_unlock(&p->lock);
        reap(p);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

tw_status tw__http_pool_start(unsigned workers, int64_t reap_ms, tw_counter *reaped, tw__http_pool **out,
                              tw_error *err)
{
    *out = NULL;
    tw__http_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc(workers, sizeof *p->threads))) {
        free(p);
        return tw__err(err, TW_ENOMEM, "out of memory starting the HTTP workers");
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->conn_lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->tick, NULL);
    p->reap_ms = reap_ms > 0 ? reap_ms : 250;
    p->reaped = reaped;
    int rc = 0;
    for (; p->nthreads < workers; p->nthreads++)
        if ((rc = pthread_create(&p->threads[p->nthreads], NULL, worker_main, p)))
            break;
    if (!rc && !(rc = pthread_create(&p->reaper, NULL, reaper_main, p)))
        p->reaping = 1;
    if (rc) {
        tw__http_pool_stop(p);
        return tw__err(err, TW_ESYS, "cannot start the HTTP worker threads: %s", strerror(rc));
    }
    *out = p;
    return TW_OK;
}

void tw__http_pool_submit(tw__http_pool *p, tw__http_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

void tw__http_pool_track(tw__http_pool *p, tw__http_conn *c)
{
    pthread_mutex_lock(&p->conn_lock);
    c->prev = NULL;
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    pthread_mutex_unlock(&p->conn_lock);
}

void tw__http_pool_forget(tw__http_pool *p, tw__http_conn *c)
{
    pthread_mutex_lock(&p->conn_lock);
    if (c->prev)
        c->prev->next = c->next;
    else if (p->conns == c)
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    pthread_mutex_unlock(&p->conn_lock);
}

void tw__http_pool_quiesce(tw__http_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

void tw__http_pool_stop(tw__http_pool *p)
{
    if (!p)
        return;
    tw__http_pool_quiesce(p);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->tick);
    pthread_mutex_unlock(&p->lock);
    if (p->reaping)
        pthread_join(p->reaper, NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->tick);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->conn_lock);
    free(p->threads);
    free(p);
}
