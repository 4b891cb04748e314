/*
 * source/http_pool.h: what the HTTP listener's event loops hand off (internal): the worker threads
 * handlers run on (they may block until alerts are durable), and the reaper that closes connections
 * whose deadline passed (slow loris: a deadline that bytes trickling in do not move).
 *
 * Ownership: the pool owns its threads; jobs and connection records are the caller's memory, linked
 * in while queued or tracked and never freed here.
 */
#ifndef TW_SOURCE_HTTP_POOL_H
#define TW_SOURCE_HTTP_POOL_H

#include <stdatomic.h>
#include <stdint.h>

#include "telemetry/metrics.h"
#include "trailwatch/error.h"

typedef struct tw__http_job {
    struct tw__http_job *next;
    void (*fn)(void *arg);
    void *arg;
} tw__http_job;

/* One open connection: its socket and when it must be done with what it is sending (0: no deadline,
 * e.g. while its handler runs or its response streams). */
typedef struct tw__http_conn {
    struct tw__http_conn *prev, *next;
    int fd;
    _Atomic int64_t deadline_ms;   /* monotonic */
    int64_t since_ms;              /* when the current request's header clock started */
} tw__http_conn;

typedef struct tw__http_pool tw__http_pool;

/* workers: threads running jobs. The reaper looks at deadlines every reap_ms and counts what it closes
 * in reaped (NULL: not counted). */
tw_status tw__http_pool_start(unsigned workers, int64_t reap_ms, tw_counter *reaped, tw__http_pool **out,
                              tw_error *err);
/* Queues job (fn, arg set by the caller); a worker runs it. */
void tw__http_pool_submit(tw__http_pool *p, tw__http_job *job);
/* Tracks / forgets a connection (forget before its socket is closed: the reaper shuts sockets down). */
void tw__http_pool_track(tw__http_pool *p, tw__http_conn *c);
void tw__http_pool_forget(tw__http_pool *p, tw__http_conn *c);
/* Runs what is queued, then joins the worker threads (connections stay tracked). */
void tw__http_pool_quiesce(tw__http_pool *p);
/* Quiesces, stops the reaper and frees the pool: after the last connection was forgotten. */
void tw__http_pool_stop(tw__http_pool *p);

int64_t tw__http_mono_ms(void);

#endif
