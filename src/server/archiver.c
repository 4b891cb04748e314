/* server/archiver.c: accepted events -> bounded queue -> writer thread -> tw_archive (see archiver.h). */
#include "common/thread.h"
#include "server/archiver.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "outbox/store.h"
#include "telemetry/log.h"
#include "trailwatch/archive.h"
#include "trailwatch/limits.h"

/* The accepted events of one engine call, copied into one allocation. */
typedef struct chunk {
    struct chunk *next;
    int64_t received_ms;
    size_t n, bytes;
    struct {
        size_t off, len;
    } ev[];                        /* then the text of the events */
} chunk;

struct tw__archiver {
    tw_archive *ar;
    int64_t retention_ms;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t space;          /* signalled when the writer empties the queue */
    chunk *head, *tail;            /* the queue, oldest first */
    size_t qevents, qbytes;
    int stop;
    int failing;                   /* the last write failed: senders are not held up for it */
    int drop_when_full;            /* archive.when_full: drop */
    size_t cap_events, cap_bytes;  /* the queue's bounds (TW_ARCHIVE_QUEUE_*; smaller in unit tests) */
    int64_t last_drop_log_ms;
    tw_counter *waits;             /* times a sender waited for room in the queue */
    tw_counter *archived, *duplicates, *invalid, *write_errors, *dropped_full, *dropped_failed, *pruned;
    tw_counter *queue_events, *queue_bytes, *up;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *text(const chunk *c) { return (const char *)&c->ev[c->n]; }

void tw__archiver_take(void *archiver, const tw_ingest_item *items, const tw_ingest_result *results, size_t n)
{
    tw__archiver *a = archiver;
    size_t count = 0, bytes = 0;
    for (size_t i = 0; i < n; i++)
        if (results[i].status == TW_OK && !results[i].duplicate) {
            count++;
            bytes += items[i].len;
        }
    if (!count)
        return;
    chunk *c = malloc(sizeof *c + count * sizeof c->ev[0] + bytes);
    if (!c) {
        tw_count(a->dropped_full, count);
        return;
    }
    c->next = NULL;
    c->received_ms = tw__now_ms();
    c->n = count;
    c->bytes = bytes;
    char *p = (char *)&c->ev[count];
    size_t k = 0, off = 0;
    for (size_t i = 0; i < n; i++)
        if (results[i].status == TW_OK && !results[i].duplicate) {
            memcpy(p + off, items[i].json, items[i].len);
            c->ev[k].off = off;
            c->ev[k++].len = items[i].len;
            off += items[i].len;
        }
    int full = 0;
    pthread_mutex_lock(&a->lock);
    /* A full queue holds the sender back (its alerts are already stored) rather than drop events
     * from the archive: every accepted event is archived. Only an archive that cannot write, or a
     * writer that does not make room within TW_ARCHIVER_WAIT_MS, makes events dropped. */
    if (a->qevents + count > a->cap_events || a->qbytes + bytes > a->cap_bytes) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += TW_ARCHIVER_WAIT_MS / 1000;
        until.tv_nsec += (TW_ARCHIVER_WAIT_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (!a->drop_when_full)
            tw_count(a->waits, 1);
        while ((a->qevents + count > a->cap_events || a->qbytes + bytes > a->cap_bytes) &&
               a->qevents && !a->stop && !a->failing && !a->drop_when_full)
            if (pthread_cond_timedwait(&a->space, &a->lock, &until) != 0)
                break;
    }
    if ((a->qevents + count > a->cap_events || a->qbytes + bytes > a->cap_bytes) && a->qevents) {
        full = 1;
    } else {
        if (a->tail)
            a->tail->next = c;
        else
            a->head = c;
        a->tail = c;
        a->qevents += count;
        a->qbytes += bytes;
        tw_gauge_set(a->queue_events, a->qevents);
        tw_gauge_set(a->queue_bytes, a->qbytes);
        pthread_cond_signal(&a->wake);
    }
    int64_t now = mono_ms();
    int log = full && now - a->last_drop_log_ms >= 10000;
    if (log)
        a->last_drop_log_ms = now;
    pthread_mutex_unlock(&a->lock);
    if (full) {
        free(c);
        tw_count(a->dropped_full, count);
        if (log)
            tw__log(TW_LOG_WARN, "the archive writer made no room in its queue in time: events are dropped from "
                   "the archive (alerts are not affected; see trailwatch_archive_dropped_total)", NULL);
    }
}

/* Adds one chunk's events. TW_OK, or the error that stops archiving (the archive cannot write). */
static tw_status write_chunk(tw__archiver *a, const chunk *c, tw_error *err)
{
    for (size_t i = 0; i < c->n; i++) {
        tw_status rc = tw_archive_add(a->ar, text(c) + c->ev[i].off, c->ev[i].len, c->received_ms, err);
        switch (rc) {
        case TW_OK:                /* queued: counted once committed */
            break;
        case TW_EEXIST:            /* already archived (a CloudTrail eventID delivered again) */
            tw_count(a->duplicates, 1);
            break;
        case TW_EJSON: case TW_EUTF8: case TW_EDEPTH: case TW_ETOOBIG: case TW_EEVENT: case TW_EINVAL:
            /* the engine took it, the archive cannot index it: skipped, not a reason to stop */
            tw_count(a->invalid, 1);
            tw__log(TW_LOG_WARN, "event not archived", "error", err->msg, NULL);
            break;
        default:
            return rc;
        }
    }
    return TW_OK;
}

static void prune(tw__archiver *a)
{
    uint64_t removed = 0;
    tw_error err;
    if (tw_archive_prune(a->ar, tw__now_ms() - a->retention_ms, &removed, &err)) {
        tw__log(TW_LOG_ERROR, "cannot prune the archive (archive.retention)", "error", err.msg, NULL);
        return;
    }
    tw_count(a->pruned, removed);
    if (removed) {
        char n[24];
        snprintf(n, sizeof n, "%llu", (unsigned long long)removed);
        tw__log(TW_LOG_INFO, "archive pruned (archive.retention)", "removed", n, NULL);
    }
}

static void free_chunks(chunk *c)
{
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
}

static void set_failing(tw__archiver *a, int failing)
{
    pthread_mutex_lock(&a->lock);
    a->failing = failing;
    if (failing)
        pthread_cond_broadcast(&a->space);   /* senders waiting for room stop waiting */
    pthread_mutex_unlock(&a->lock);
}

static void *writer_main(void *arg)
{
    tw__thread_name("tw-archive");
    tw__archiver *a = arg;
    int64_t next_prune = 0, failed_until = 0;
    int failing = 0;               /* the writer's copy of a->failing */
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->head && !a->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&a->wake, &a->lock, &ts);
            if (a->retention_ms && mono_ms() >= next_prune)
                break;
        }
        int stopping = a->stop;
        if (!a->head && stopping)
            break;
        if (!stopping && a->head && a->qevents < TW_ARCHIVER_LINGER_EVENTS) {
            /* a moment for more events, so that commits are not one per tiny request */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += TW_ARCHIVER_LINGER_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            while (!a->stop && a->qevents < TW_ARCHIVER_LINGER_EVENTS &&
                   pthread_cond_timedwait(&a->wake, &a->lock, &ts) == 0)
                ;
        }
        chunk *list = a->head;
        size_t nev = a->qevents;
        a->head = a->tail = NULL;
        a->qevents = a->qbytes = 0;
        tw_gauge_set(a->queue_events, 0);
        tw_gauge_set(a->queue_bytes, 0);
        pthread_cond_broadcast(&a->space);
        pthread_mutex_unlock(&a->lock);

        int64_t now = mono_ms();
        if (failing && now < failed_until && !stopping) {
            tw_count(a->dropped_failed, nev);   /* archiving is stopped: the alert path goes on */
        } else if (list) {
            tw_error err;
            tw_status rc = TW_OK;
            uint64_t before = tw_archive_committed(a->ar), dups = tw_archive_duplicates(a->ar);
            for (chunk *c = list; c && !rc; c = c->next)
                rc = write_chunk(a, c, &err);
            if (!rc)
                rc = tw_archive_flush(a->ar, &err);
            uint64_t done = tw_archive_committed(a->ar) - before;
            tw_count(a->archived, done);
            /* and those the commit found stored (PostgreSQL: archived by another node meanwhile) */
            tw_count(a->duplicates, tw_archive_duplicates(a->ar) - dups);
            if (rc)
                tw_count(a->dropped_failed, nev > done ? nev - done : 0);
            if (rc) {
                tw_count(a->write_errors, 1);
                tw_gauge_set(a->up, 0);
                if (!failing)
                    tw__log(TW_LOG_ERROR, "archiving stopped: the archive cannot be written (alerts are not "
                           "affected; events are dropped from the archive until it can, tried again every 5 s)",
                           "error", err.msg, NULL);
                failing = 1;
                failed_until = now + TW_ARCHIVER_RETRY_MS;
                set_failing(a, 1);
            } else if (failing) {
                failing = 0;
                set_failing(a, 0);
                tw_gauge_set(a->up, 1);
                tw__log(TW_LOG_INFO, "archiving resumed", NULL);
            }
        }
        free_chunks(list);
        if (a->retention_ms && !failing && mono_ms() >= next_prune) {
            prune(a);
            next_prune = mono_ms() + TW_ARCHIVER_PRUNE_EVERY_MS;
        }
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static tw_counter *counter(tw_metrics *m, const char *name, const char *help, const char *key, const char *value)
{
    char lbl[64] = "";
    if (key)
        tw__metrics_label(lbl, sizeof lbl, key, value);
    return tw__metrics_counter(m, name, help, lbl);
}

tw_status tw__archiver_start(const tw_config *cfg, tw_metrics *m, tw__archiver **out, tw_error *err)
{
    *out = NULL;
    tw__archiver *a = calloc(1, sizeof *a);
    if (!a)
        return tw__err(err, TW_ENOMEM, "out of memory starting the archive");
    char path[4096];
    tw_archive_opts o = {cfg->archive.backend == TW_ARCHIVE_CFG_POSTGRES ? TW_ARCHIVE_POSTGRES : TW_ARCHIVE_SQLITE,
                         tw__config_archive_path(cfg, path, sizeof path), cfg->archive.dsn, 0};
    tw_status rc = tw_archive_open(&a->ar, &o, err);
    if (rc) {
        free(a);
        return tw__err_prefix(err, "archive");
    }
    a->retention_ms = cfg->archive.retention_ms;
    a->drop_when_full = cfg->archive.drop_when_full;
    a->cap_events = TW_ARCHIVE_QUEUE_EVENTS;
    a->cap_bytes = TW_ARCHIVE_QUEUE_BYTES;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    pthread_cond_init(&a->space, NULL);
    static const char h_err[] = "Archive failures: events it could not index, batches it could not write";
    static const char h_drop[] = "Events not archived (alerts unaffected): the queue was full, or the archive "
                                 "could not be written";
    a->archived = counter(m, "trailwatch_archive_events_total", "Events written to the archive", NULL, NULL);
    a->duplicates = counter(m, "trailwatch_archive_duplicates_total", "Events the archive already held", NULL, NULL);
    a->invalid = counter(m, "trailwatch_archive_errors_total", h_err, "kind", "event");
    a->write_errors = counter(m, "trailwatch_archive_errors_total", h_err, "kind", "write");
    a->dropped_full = counter(m, "trailwatch_archive_dropped_total", h_drop, "reason", "queue_full");
    a->dropped_failed = counter(m, "trailwatch_archive_dropped_total", h_drop, "reason", "write_failed");
    a->waits = counter(m, "trailwatch_archive_queue_waits_total",
                       "Times an accepting request waited for the archive writer to make room in its queue", NULL, NULL);
    a->pruned = counter(m, "trailwatch_archive_pruned_total", "Events removed by archive.retention", NULL, NULL);
    a->queue_events = tw__metrics_gauge(m, "trailwatch_archive_queue_events", "Events waiting for the archive writer", "");
    a->queue_bytes = tw__metrics_gauge(m, "trailwatch_archive_queue_bytes", "Bytes waiting for the archive writer", "");
    a->up = tw__metrics_gauge(m, "trailwatch_archive_up", "1 while the archive is written, 0 while it cannot be", "");
    tw_gauge_set(a->up, 1);
    if (pthread_create(&a->thread, NULL, writer_main, a)) {
        tw__archiver_stop(a);
        return tw__err(err, TW_ESYS, "cannot start the archive writer");
    }
    a->started = 1;
    *out = a;
    return TW_OK;
}

void tw__archiver_set_queue_cap(tw__archiver *a, size_t events, size_t bytes)
{
    pthread_mutex_lock(&a->lock);
    a->cap_events = events;
    a->cap_bytes = bytes;
    pthread_mutex_unlock(&a->lock);
}

void tw__archiver_stop(tw__archiver *a)
{
    if (!a)
        return;
    if (a->started) {
        pthread_mutex_lock(&a->lock);
        a->stop = 1;
        pthread_cond_signal(&a->wake);
        pthread_cond_broadcast(&a->space);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
    }
    free_chunks(a->head);
    tw_archive_close(a->ar);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->wake);
    pthread_cond_destroy(&a->space);
    free(a);
}
