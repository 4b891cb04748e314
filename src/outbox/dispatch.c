/* outbox/dispatch.c: the delivery loop: due alerts -> per-target queues -> curl multi / workers. */
#include "common/thread.h"
#include "outbox/dispatch.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/vec.h"
#include "telemetry/log.h"

#define RESPONSE_CAP 4096          /* response bytes kept for a dead letter's reason */
#define LOCAL_WORKERS 4
#define SCAN_EVERY_MS 1000         /* how often rows committed by other processes (redrive) are looked for */
#define SCAN_PAGE 1000             /* new rows read per look */
#define UNRECORDED_MAX 1000        /* outcomes waiting for a commit before deliveries pause */
/* Bodies handed over by the writer and kept for their delivery (below): past this many bytes in
 * memory, new rows are read back from the store instead, as when the hand-over is not used. */
#define HANDED_BYTES_MAX (16u << 20)
#define IDLE_HANDLES 64            /* curl easy handles kept for the next deliveries (reset, not re-made) */

/*
 * Memory is bounded: per target the dispatcher holds at most TW_OUTBOX_WINDOW rows (id, due time,
 * attempts; a body is read from the store only for its delivery and freed after it). A target with
 * more rows is "spilled": the rest wait in SQLite and are paged in as the window empties, by id for
 * targets that deliver in order, by (due time, id) for the others.
 *
 * Rows enter in id order only, through the scan of rows with id > max_id (new rows from this
 * process's writer, whose hook only wakes the loop, and rows redriven by another process). Pages read
 * only rows with id <= max_id, so a row is never introduced twice. A row that finished stays in the
 * id set until the writer has committed its outcome, so a page cannot read back an alert just
 * delivered whose delete is not on disk yet.
 *
 * The writer hands each commit's rows over with their text and body (tw__dispatch_enqueue), so that
 * neither the scan nor the delivery reads them back from the store: a row handed over is taken when
 * its id follows max_id, exactly as the scan would have read it. A gap (rows committed by another
 * process in between, or rows not handed over) makes the loop scan the store as before, and rows the
 * scan has read are skipped when they are handed over. Bodies of targets with a drop_oldest cap are
 * not kept (the writer may dead-letter such a row in the same commit), and a kept body is used only
 * while no alert has been dropped by a cap since it was handed over (a reload may have set one): else
 * the row is read from the store, which answers "gone". HANDED_BYTES_MAX bounds the bodies kept.
 */

typedef struct tstate tstate;
typedef struct entry entry;

/* A row as the writer committed it, with its text and body in one allocation. */
typedef struct handed {
    struct handed *next;
    _Atomic size_t *bytes;         /* the dispatcher's count of handed-over bytes in memory */
    size_t size;                   /* counted in *bytes */
    int64_t id, created_ms, next_ms;
    uint32_t attempts;
    uint64_t dropped;              /* alerts dropped by drop_oldest caps when it was handed over */
    int keep_body;                 /* 0: its target may drop it (drop_oldest): read it from the store */
    char *target, *rule, *event_id, *idem_key, *body;
    size_t body_len;
    char text[];
} handed;

struct entry {
    entry *next;                   /* in its target's queue */
    tstate *t;
    int64_t id, created_ms, next_ms;
    uint32_t attempts;
    size_t heap_pos;
    /* read from the store for a delivery, freed after it */
    char *rule, *event_id, *idem_key, *body;
    size_t body_len;
    handed *hand;                  /* set: the text and body above point into it (not read from the store) */
};

struct tstate {
    char *name;
    int ordered;                   /* the kind delivers one at a time, in order: a failing head holds the rest */
    entry *head, *tail;            /* ordered: every row held and not in flight, by id; else: due rows */
    size_t held;                   /* rows in memory: queued, waiting in the heap, in flight */
    size_t ready, inflight;
    int spilled;                   /* rows of this target wait in the store that are not held */
    int64_t last_id;               /* ordered: the highest id held so far (rows up to it are held or done) */
    uint64_t last_seq;             /* the last outcome handed to the writer */
    int64_t next_page;
    double tokens;
    int64_t refill_ms, blocked_until;
    tw_counter *delivered, *retried, *dead;
    tw_counter *window, *pending, *paged;
};

typedef struct http_job {
    struct http_job *prev, *next;  /* the active transfers */
    entry *e;
    tstate *t;
    CURL *h;
    struct curl_slist *headers;
    char *body;                    /* the body sent (finalized), when it differs from e->body */
    tw_buf response;
    int64_t retry_after_ms;
    int64_t started_ms;
    char errbuf[CURL_ERROR_SIZE];
} http_job;

typedef struct local_job {
    struct local_job *next;
    entry *e;
    tstate *t;
    tw_snapshot *snap;
    const tw_target_cfg *tc;
    tw_outcome outcome;
    char why[512];
} local_job;

typedef struct finished_row {
    int64_t id;
    uint64_t seq;
} finished_row;

struct tw_dispatch {
    tw_outbox *ob;
    tw_snapshots *snaps;
    tw_metrics *metrics;
    tw_store *rd;
    pthread_t thread;
    CURLM *multi;
    /* curl's sockets are watched here (curl_multi_socket_action), so that a wake-up runs only the
     * transfers whose socket is ready; curl_multi_perform would look at every transfer in flight at
     * each turn of the loop, with a poll() each. */
    int epfd;
    int wakefd;                    /* eventfd: new rows, local deliveries done, stop */
    int64_t curl_due;              /* when curl's timer is due (tw__now_ms), -1: no timer */
    CURL *idle[IDLE_HANDLES];      /* dispatcher thread only: handles of finished transfers */
    size_t nidle;
    pthread_mutex_t lock;          /* local queues, stopping */
    _Atomic int new_rows;          /* the writer committed rows it did not hand over: look for them now */
    handed *handed, **handed_tail; /* under lock: rows handed over by the writer, in id order */
    _Atomic size_t handed_bytes;
    local_job *jobs, *done_jobs;
    pthread_cond_t jobs_cond;
    pthread_t workers[LOCAL_WORKERS];
    int stopping;
    int abandon;                   /* workers: take no more jobs */
    int64_t drain_until;
    http_job *active;
    /* dispatcher thread only */
    entry **heap;                  /* rows of targets without order, not yet due, by (next_ms, id) */
    size_t nheap, capheap;
    tstate **targets;              /* each allocated once: deliveries in flight point at them */
    size_t ntargets;
    int64_t *ids;                  /* open-addressing set of ids held or finishing (0 = empty, -1 = deleted) */
    size_t idcap, nids;
    TW_VEC(finished_row) finishing;    /* rows whose outcome is not committed yet, in order */
    size_t finishing_head;
    int64_t max_id, next_scan, next_counts;
    size_t inflight;
    tw_histogram *latency;
    tw_counter *depth_gauge;
    tw_counter *capped_reject, *capped_drop;
};

/* ---- small helpers ---- */

int64_t tw__backoff_ms(uint32_t attempts, int64_t base_ms, int64_t cap_ms, uint64_t random)
{
    if (attempts == 0)
        attempts = 1;
    double d = (double)base_ms * pow(2.0, (double)(attempts - 1));
    if (d > (double)cap_ms)
        d = (double)cap_ms;
    int64_t full = (int64_t)d;
    /* "equal jitter": half fixed, half random, so a retry never comes sooner than half the step */
    int64_t half = full / 2;
    return half + (half > 0 ? (int64_t)(random % (uint64_t)(half + 1)) : 0);
}

int64_t tw__parse_retry_after(const char *v, int64_t now_ms)
{
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '-')
        return -2; /* negative: the destination asks us to give up */
    if (*v >= '0' && *v <= '9') {
        char *end;
        double s = strtod(v, &end);
        return s < 0 || s > 86400 * 7 ? -1 : (int64_t)(s * 1000);
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm))
        return -1;
    int64_t at = (int64_t)timegm(&tm) * 1000;
    return at > now_ms ? at - now_ms : 0;
}

static uint64_t rnd(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = (uint64_t)tw__now_ms() * 0x9e3779b97f4a7c15ULL;
    return r;
}

/* Wakes the loop (any thread). */
static void wake(tw_dispatch *d)
{
    uint64_t one = 1;
    if (write(d->wakefd, &one, sizeof one) < 0) {
        /* the counter is full (EAGAIN): the loop has wake-ups waiting already */
    }
}

/* CURLMOPT_SOCKETFUNCTION: the sockets curl waits on, and for what. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *ud, void *socketp)
{
    (void)easy;
    tw_dispatch *d = ud;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(d->epfd, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(d->multi, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0),
                             .data.fd = s};
    if (epoll_ctl(d->epfd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) && errno == ENOENT)
        epoll_ctl(d->epfd, EPOLL_CTL_ADD, s, &ev);
    if (!socketp)
        curl_multi_assign(d->multi, s, d); /* any non-NULL mark: the socket is in the set */
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants to be called for its timeouts (and to start transfers). */
static int on_timer(CURLM *multi, long timeout_ms, void *ud)
{
    (void)multi;
    tw_dispatch *d = ud;
    d->curl_due = timeout_ms < 0 ? -1 : tw__now_ms() + timeout_ms;
    return 0;
}

static void handed_free(handed *h)
{
    if (!h)
        return;
    atomic_fetch_sub(h->bytes, h->size);
    free(h);
}

static void entry_unload(entry *e)
{
    if (e->hand) {
        handed_free(e->hand);
        e->hand = NULL;
    } else {
        free(e->rule);
        free(e->event_id);
        free(e->idem_key);
        free(e->body);
    }
    e->rule = e->event_id = e->idem_key = e->body = NULL;
    e->body_len = 0;
}

static void entry_free(entry *e)
{
    if (!e)
        return;
    entry_unload(e);
    free(e);
}

static int load_row(void *ctx, const tw_alert_row *r)
{
    entry *e = ctx;
    e->rule = strdup(r->rule);
    e->event_id = strdup(r->event_id);
    e->idem_key = strdup(r->idem_key);
    e->body = malloc(r->body_len + 1);
    if (e->body) {
        memcpy(e->body, r->body, r->body_len);
        e->body[r->body_len] = '\0';
        e->body_len = r->body_len;
    }
    return 0;
}

/* The row's text and body, read for its delivery: TW_ENOTFOUND when the row is gone (dead-lettered
 * by its target's drop_oldest cap). */
static tw_status entry_load(tw_dispatch *d, entry *e, tw_error *err)
{
    if (e->hand) {
        uint64_t refused, dropped;
        tw__outbox_cap_counts(d->ob, &refused, &dropped);
        if (dropped == e->hand->dropped)
            return TW_OK;
        entry_unload(e); /* a cap dropped alerts since: this one may be gone */
    }
    tw_status rc = tw__store_get_alert(d->rd, e->id, load_row, e, err);
    if (!rc && (!e->rule || !e->event_id || !e->idem_key || !e->body))
        rc = tw__err(err, TW_ENOMEM, "out of memory reading an alert");
    if (rc)
        entry_unload(e);
    return rc;
}

/* ---- the id set: a row is held once, whether it came from the writer or a scan ---- */

static int ids_has(tw_dispatch *d, int64_t id)
{
    if (!d->idcap)
        return 0;
    for (size_t i = (size_t)(id * 0x9e3779b97f4a7c15ULL) & (d->idcap - 1);; i = (i + 1) & (d->idcap - 1)) {
        if (d->ids[i] == 0)
            return 0;
        if (d->ids[i] == id)
            return 1;
    }
}

static int ids_add(tw_dispatch *d, int64_t id)
{
    if ((d->nids + 1) * 2 > d->idcap) {
        /* Sized for the live ids, not the tombstones: the set stays as small as the window. */
        size_t live = 0, cap = 1024;
        for (size_t i = 0; i < d->idcap; i++)
            live += d->ids[i] > 0;
        while (cap < 4 * (live + 1))
            cap *= 2;
        int64_t *n = calloc(cap, sizeof *n), *old = d->ids;
        size_t oldcap = d->idcap;
        if (!n)
            return 0;
        d->ids = n;
        d->idcap = cap;
        d->nids = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i] > 0)
                ids_add(d, old[i]);
        free(old);
    }
    size_t i = (size_t)(id * 0x9e3779b97f4a7c15ULL) & (d->idcap - 1);
    while (d->ids[i] > 0)
        i = (i + 1) & (d->idcap - 1);
    d->ids[i] = id;
    d->nids++;
    return 1;
}

static void ids_del(tw_dispatch *d, int64_t id)
{
    for (size_t i = (size_t)(id * 0x9e3779b97f4a7c15ULL) & (d->idcap - 1);; i = (i + 1) & (d->idcap - 1)) {
        if (d->ids[i] == 0)
            return;
        if (d->ids[i] == id) {
            d->ids[i] = -1; /* tombstone; cleared at the next growth */
            return;
        }
    }
}

/* ---- the heap of not-yet-due entries, by (next_ms, id) ---- */

static int before(const entry *a, const entry *b)
{
    return a->next_ms < b->next_ms || (a->next_ms == b->next_ms && a->id < b->id);
}

static void heap_swap(tw_dispatch *d, size_t i, size_t j)
{
    entry *t = d->heap[i];
    d->heap[i] = d->heap[j];
    d->heap[j] = t;
    d->heap[i]->heap_pos = i;
    d->heap[j]->heap_pos = j;
}

static int heap_push(tw_dispatch *d, entry *e)
{
    if (d->nheap == d->capheap) {
        size_t cap = d->capheap ? d->capheap * 2 : 256;
        entry **h = realloc(d->heap, cap * sizeof *h);
        if (!h)
            return 0;
        d->heap = h;
        d->capheap = cap;
    }
    size_t i = d->nheap++;
    d->heap[i] = e;
    e->heap_pos = i;
    while (i && before(d->heap[i], d->heap[(i - 1) / 2])) {
        heap_swap(d, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return 1;
}

static void heap_remove(tw_dispatch *d, size_t i)
{
    d->nheap--;
    if (i == d->nheap)
        return;
    d->heap[i] = d->heap[d->nheap];
    d->heap[i]->heap_pos = i;
    while (i && before(d->heap[i], d->heap[(i - 1) / 2])) {
        heap_swap(d, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->nheap && before(d->heap[l], d->heap[m]))
            m = l;
        if (r < d->nheap && before(d->heap[r], d->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(d, i, m);
        i = m;
    }
}

/* The earliest entry, taken off the heap. */
static entry *heap_pop(tw_dispatch *d)
{
    entry *top = d->heap[0];
    heap_remove(d, 0);
    return top;
}

/* ---- targets ---- */

/* The kind's policy: 1 keeps the order (chat channels, local kinds). */
static size_t concurrency(const tw_target_cfg *tc)
{
    return tc->ops->policy.concurrency ? tc->ops->policy.concurrency : 1;
}

static tstate *tstate_for(tw_dispatch *d, const char *name)
{
    for (size_t i = 0; i < d->ntargets; i++)
        if (strcmp(d->targets[i]->name, name) == 0)
            return d->targets[i];
    tstate **arr = realloc(d->targets, (d->ntargets + 1) * sizeof *arr);
    if (!arr)
        return NULL;
    d->targets = arr;
    tstate *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return NULL;
    }
    tw_snapshot *snap = tw__snapshot_acquire(d->snaps);
    const tw_target_cfg *tc = tw__config_target(snap->cfg, name);
    t->ordered = tc && concurrency(tc) == 1;
    tw__snapshot_release(snap);
    char lbl[256];
    tw__metrics_label(lbl, sizeof lbl, "target", name);
    char lbl2[320];
    const char *help = TW_METRIC_DELIVERIES_HELP;
    snprintf(lbl2, sizeof lbl2, "%s,outcome=\"delivered\"", lbl);
    t->delivered = tw__metrics_counter(d->metrics, TW_METRIC_DELIVERIES, help, lbl2);
    snprintf(lbl2, sizeof lbl2, "%s,outcome=\"retry\"", lbl);
    t->retried = tw__metrics_counter(d->metrics, TW_METRIC_DELIVERIES, help, lbl2);
    snprintf(lbl2, sizeof lbl2, "%s,outcome=\"dead\"", lbl);
    t->dead = tw__metrics_counter(d->metrics, TW_METRIC_DELIVERIES, help, lbl2);
    t->window = tw__metrics_gauge(d->metrics, "trailwatch_outbox_window",
                                 "Alerts of a target held in memory by the dispatcher (the rest wait on disk)", lbl);
    t->pending = tw__metrics_gauge(d->metrics, "trailwatch_outbox_pending", "Alerts waiting for delivery, by target",
                                  lbl);
    t->paged = tw__metrics_counter(d->metrics, "trailwatch_outbox_paged_total",
                                  "Alerts read back from disk into the dispatcher's window, by target", lbl);
    t->tokens = -1; /* filled on first use from the target's burst */
    d->targets[d->ntargets++] = t;
    return t;
}

/* Takes a token; when none, sets *wait_ms until one is due. */
static int take_token(tstate *t, const tw_target_cfg *tc, int64_t now, int64_t *wait_ms)
{
    if (tc->rate.per_second <= 0)
        return 1;
    double burst = tc->rate.burst >= 1 ? tc->rate.burst : 1;
    if (t->tokens < 0) {
        t->tokens = burst;
        t->refill_ms = now;
    }
    t->tokens += (double)(now - t->refill_ms) / 1000.0 * tc->rate.per_second;
    if (t->tokens > burst)
        t->tokens = burst;
    t->refill_ms = now;
    if (t->tokens >= 1) {
        t->tokens -= 1;
        return 1;
    }
    *wait_ms = (int64_t)ceil((1 - t->tokens) / tc->rate.per_second * 1000.0);
    return 0;
}

/* ---- outcomes ---- */

/* The row is done here; its id stays in the set until the writer has committed the outcome. */
static void finish_entry(tw_dispatch *d, entry *e, uint64_t seq)
{
    e->t->held--;
    if (!seq || TW_VEC_PUSH(&d->finishing, ((finished_row){e->id, seq})))
        ids_del(d, e->id); /* out of memory: the outcome is lost anyway, the row is sent again */
    entry_free(e);
}

/* Back in line for a later attempt, without its body. */
static void requeue(tw_dispatch *d, entry *e)
{
    tstate *t = e->t;
    entry_unload(e);
    if (t->ordered) { /* it was the head: it stays the head */
        e->next = t->head;
        t->head = e;
        if (!t->tail)
            t->tail = e;
        t->ready++;
        return;
    }
    if (!heap_push(d, e)) {
        tw__log(TW_LOG_ERROR, "out of memory scheduling a retry (it resumes after a restart)", NULL);
        t->held--;
        ids_del(d, e->id);
        entry_free(e);
        t->spilled = 1;
    }
}

static void outcome(tw_dispatch *d, entry *e, tstate *t, const tw_target_cfg *tc, tw_outcome oc, const char *why,
                    const char *response, int64_t retry_after_ms)
{
    int64_t now = tw__now_ms();
    uint32_t attempts = e->attempts + 1;
    char reason[700];
    if (oc == TW_OUTCOME_DELIVERED) {
        uint64_t seq = t->last_seq = tw__outbox_delivered(d->ob, e->id);
        tw_count(t->delivered, 1);
        tw__observe(d->latency, (now - e->created_ms) * 1000);
        char n[16], ms[24];
        snprintf(n, sizeof n, "%u", attempts);
        snprintf(ms, sizeof ms, "%lld", (long long)(now - e->created_ms));
        tw__log(TW_LOG_DEBUG, "alert delivered", "target", t->name, "rule", e->rule, "event", e->event_id,
               "attempt", n, "ms_since_created", ms, NULL);
        finish_entry(d, e, seq);
        return;
    }
    if (oc == TW_OUTCOME_RETRY && retry_after_ms == -2)
        oc = TW_OUTCOME_PERMANENT, why = "the destination answered a negative Retry-After";
    const tw_retry_cfg *r = tc ? &tc->retry : NULL;
    if (oc == TW_OUTCOME_RETRY && r && attempts >= r->max_attempts) {
        snprintf(reason, sizeof reason, "retry attempts exhausted (%u): %s", attempts, why);
        oc = TW_OUTCOME_PERMANENT, why = reason;
    } else if (oc == TW_OUTCOME_RETRY && r && now - e->created_ms >= r->max_age_ms) {
        snprintf(reason, sizeof reason, "maximum event age exhausted after %u attempts: %s", attempts, why);
        oc = TW_OUTCOME_PERMANENT, why = reason;
    } else if (oc == TW_OUTCOME_RETRY && r && retry_after_ms >= 0 && now + retry_after_ms > e->created_ms + r->max_age_ms) {
        /* Waiting as asked would hold the alert past its maximum age: it would only die later. */
        snprintf(reason, sizeof reason, "the destination asked to wait %lld s (Retry-After), beyond the maximum "
                                        "event age: %s", (long long)((retry_after_ms + 999) / 1000), why);
        oc = TW_OUTCOME_PERMANENT, why = reason;
    }
    if (oc == TW_OUTCOME_PERMANENT) {
        uint64_t seq = t->last_seq = tw__outbox_dead(d->ob, e->id, attempts, why, response);
        tw_count(t->dead, 1);
        tw__log(TW_LOG_WARN, "alert dead-lettered", "target", t->name, "rule", e->rule ? e->rule : "", "event",
               e->event_id ? e->event_id : "", "reason", why, NULL);
        finish_entry(d, e, seq);
        return;
    }
    int64_t delay = tw__backoff_ms(attempts, r ? r->base_ms : 1000, r ? r->cap_ms : 300000, rnd());
    if (retry_after_ms >= 0) {
        delay = retry_after_ms > delay ? retry_after_ms : delay;
        t->blocked_until = now + retry_after_ms; /* the whole target waits, not just this alert */
    }
    if (r && now + delay > e->created_ms + r->max_age_ms)
        delay = e->created_ms + r->max_age_ms - now;
    if (delay < 0)
        delay = 0;
    e->attempts = attempts;
    e->next_ms = now + delay;
    t->last_seq = tw__outbox_retry(d->ob, e->id, e->next_ms, attempts, why);
    tw_count(t->retried, 1);
    char n[16];
    snprintf(n, sizeof n, "%u", attempts);
    tw__log(TW_LOG_INFO, "delivery will be retried", "target", t->name, "rule", e->rule ? e->rule : "", "attempt",
           n, "reason", why, NULL);
    requeue(d, e);
}

/* ---- HTTP deliveries ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    http_job *j = ud;
    size_t len = size * n;
    if (j->response.len < RESPONSE_CAP)
        tw__buf_append(&j->response, p, len > RESPONSE_CAP - j->response.len ? RESPONSE_CAP - j->response.len : len);
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    http_job *j = ud;
    size_t len = size * n;
    if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        char v[128];
        size_t vl = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
        memcpy(v, p + 12, vl);
        v[vl] = '\0';
        j->retry_after_ms = tw__parse_retry_after(v, tw__now_ms());
    }
    return len;
}

static void http_job_free(http_job *j)
{
    curl_slist_free_all(j->headers);
    free(j->body);
    tw__buf_free(&j->response);
    free(j);
}

static int start_http(tw_dispatch *d, entry *e, tstate *t, const tw_target_cfg *tc)
{
    tw_http_prep prep; /* 16 KB of header lines: only what http_prepare writes is read */
    prep.url = prep.method = NULL;
    prep.nheaders = 0;
    tw_error err;
    http_job *j = calloc(1, sizeof *j);
    if (!j)
        return 0;
    j->e = e;
    j->t = t;
    j->retry_after_ms = -1;
    tw__buf_init(&j->response, RESPONSE_CAP);
    if (tc->ops->http_prepare(tc->impl, e->idem_key, &prep, &err)) {
        outcome(d, e, t, tc, TW_OUTCOME_PERMANENT, err.msg, "", -1);
        http_job_free(j);
        return 1;
    }
    const char *body = e->body;
    size_t body_len = e->body_len;
    if (tc->ops->finalize_body) {
        tw_buf fb = TW_BUF_INIT;
        if (tc->ops->finalize_body(tc->impl, e->body, e->body_len, &fb)) {
            tw__buf_free(&fb);
            outcome(d, e, t, tc, TW_OUTCOME_PERMANENT, "cannot build the request body", "", -1);
            http_job_free(j);
            return 1;
        }
        j->body = tw__buf_detach(&fb, &body_len);
        body = j->body;
    }
    if (d->nidle) {
        j->h = d->idle[--d->nidle];
        curl_easy_reset(j->h);     /* every option is set again below */
    } else if (!(j->h = curl_easy_init())) {
        http_job_free(j);
        return 0;
    }
    for (uint32_t i = 0; i < prep.nheaders; i++) {
        struct curl_slist *s = curl_slist_append(j->headers, prep.headers[i]);
        if (!s) {
            curl_easy_cleanup(j->h);
            http_job_free(j);
            return 0;
        }
        j->headers = s;
    }
    j->headers = curl_slist_append(j->headers, "Expect:"); /* no 100-continue round trip */
    CURL *h = j->h;
    curl_easy_setopt(h, CURLOPT_URL, prep.url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, prep.method ? prep.method : "POST");
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)tc->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(tc->timeout_ms < 5000 ? tc->timeout_ms : 5000));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(h, CURLOPT_PRIVATE, j);
    j->started_ms = tw__now_ms();
    if (curl_multi_add_handle(d->multi, h) != CURLM_OK) {
        curl_easy_cleanup(h);
        http_job_free(j);
        return 0;
    }
    j->next = d->active;
    if (d->active)
        d->active->prev = j;
    d->active = j;
    t->inflight++;
    d->inflight++;
    return 1;
}

static void http_done(tw_dispatch *d, CURL *h, CURLcode code)
{
    http_job *j = NULL;
    curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&j);
    curl_multi_remove_handle(d->multi, h);
    if (j->prev)
        j->prev->next = j->next;
    else
        d->active = j->next;
    if (j->next)
        j->next->prev = j->prev;
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (d->nidle < IDLE_HANDLES) {
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL); /* j->errbuf is freed below */
        d->idle[d->nidle++] = h;
    } else
        curl_easy_cleanup(h);
    j->t->inflight--;
    d->inflight--;
    tw_snapshot *snap = tw__snapshot_acquire(d->snaps);
    const tw_target_cfg *tc = tw__config_target(snap->cfg, j->t->name);
    char why[600];
    tw_outcome oc;
    int64_t retry_after = -1;
    const char *resp = j->response.data ? j->response.data : "";
    if (code != CURLE_OK) {
        /* No answer: refused, reset, timed out. Never permanent: the destination may come back. */
        snprintf(why, sizeof why, "%s", code == CURLE_OPERATION_TIMEDOUT ? "timed out" : j->errbuf[0] ? j->errbuf : curl_easy_strerror(code));
        oc = TW_OUTCOME_RETRY;
    } else {
        if (tc && tc->ops->http_classify)
            oc = tc->ops->http_classify(tc->impl, status, resp, j->response.len, j->retry_after_ms, &retry_after);
        else
            oc = tw__target_http_default(status, j->retry_after_ms, &retry_after);
        if (j->retry_after_ms == -2)
            snprintf(why, sizeof why, "HTTP %ld with a negative Retry-After (the destination asks not to "
                                      "retry): %.200s", status, resp);
        else
            snprintf(why, sizeof why, "HTTP %ld: %.200s", status, resp);
    }
    outcome(d, j->e, j->t, tc, oc, why, resp, retry_after);
    tw__snapshot_release(snap);
    j->e = NULL;
    http_job_free(j);
}

/* ---- local deliveries (exec, file, console) on worker threads ---- */

static void *worker_main(void *arg)
{
    tw__thread_name("tw-deliver");
    tw_dispatch *d = arg;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!d->jobs && !d->abandon)
            pthread_cond_wait(&d->jobs_cond, &d->lock);
        if (d->abandon)
            break;
        local_job *j = d->jobs;
        d->jobs = j->next;
        pthread_mutex_unlock(&d->lock);
        j->why[0] = '\0';
        j->outcome = j->tc->ops->deliver_local(j->tc->impl, j->e->body, j->e->body_len, j->tc->timeout_ms, j->why,
                                               sizeof j->why);
        tw__snapshot_release(j->snap);
        j->snap = NULL;
        j->tc = NULL;
        pthread_mutex_lock(&d->lock);
        j->next = d->done_jobs;
        d->done_jobs = j;
        wake(d);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

static int start_local(tw_dispatch *d, entry *e, tstate *t, tw_snapshot *snap, const tw_target_cfg *tc)
{
    local_job *j = calloc(1, sizeof *j);
    if (!j)
        return 0;
    j->e = e;
    j->t = t;
    j->snap = snap;
    atomic_fetch_add(&snap->refs, 1);
    j->tc = tc;
    pthread_mutex_lock(&d->lock);
    j->next = d->jobs;
    d->jobs = j;
    pthread_cond_signal(&d->jobs_cond);
    pthread_mutex_unlock(&d->lock);
    t->inflight++;
    d->inflight++;
    return 1;
}

/* Records the outcomes of finished local deliveries; 1 when there were any. */
static int local_done(tw_dispatch *d)
{
    pthread_mutex_lock(&d->lock);
    local_job *js = d->done_jobs;
    d->done_jobs = NULL;
    pthread_mutex_unlock(&d->lock);
    int any = js != NULL;
    while (js) {
        local_job *j = js;
        js = j->next;
        j->t->inflight--;
        d->inflight--;
        tw_snapshot *snap = tw__snapshot_acquire(d->snaps);
        outcome(d, j->e, j->t, tw__config_target(snap->cfg, j->t->name), j->outcome,
                j->why[0] ? j->why : "delivery failed", "", -1);
        tw__snapshot_release(snap);
        free(j);
    }
    return any;
}

/* ---- rows in and out of memory ---- */

static entry *entry_meta(tstate *t, const tw_alert_row *r)
{
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->t = t;
    e->id = r->id;
    e->created_ms = r->created_ms;
    e->next_ms = r->next_ms;
    e->attempts = r->attempts;
    return e;
}

/* Holds a row (metadata only, or with the text and body of h, which it then owns): an ordered
 * target's queue takes it at the tail (rows come in id order), the others' wait in the heap until
 * due. 0 when out of memory (the row stays on disk; h is the caller's still). */
static int hold(tw_dispatch *d, tstate *t, const tw_alert_row *r, handed *h)
{
    entry *e = entry_meta(t, r);
    if (!e || !ids_add(d, e->id)) {
        free(e);
        return 0;
    }
    if (h) {
        e->hand = h;
        e->rule = h->rule;
        e->event_id = h->event_id;
        e->idem_key = h->idem_key;
        e->body = h->body;
        e->body_len = h->body_len;
    }
    if (t->ordered) {
        if (t->tail)
            t->tail->next = e;
        else
            t->head = e;
        t->tail = e;
        t->ready++;
        t->last_id = e->id;
    } else if (!heap_push(d, e)) {
        ids_del(d, e->id);
        free(e);
        return 0;
    }
    t->held++;
    return 1;
}

/* A row new to this process: held while its target's window has room and nothing of it waits on
 * disk before it; else left on disk for a page. */
static int scan_row(void *ctx, const tw_alert_row *row)
{
    tw_dispatch *d = ctx;
    d->max_id = row->id;
    tstate *t = tstate_for(d, row->target);
    if (!t)
        return 0; /* out of memory: it is found again at the next start */
    if (t->spilled || t->held >= TW_OUTBOX_WINDOW || ids_has(d, row->id) || !hold(d, t, row, NULL))
        t->spilled = 1;
    return 0;
}

static void scan_new(tw_dispatch *d)
{
    for (int pages = 0; pages < 20; pages++) {
        tw_error err;
        size_t n = 0;
        if (tw__store_scan_new(d->rd, d->max_id, SCAN_PAGE, scan_row, d, &n, &err)) {
            tw__log(TW_LOG_WARN, "cannot read the outbox", "error", err.msg, NULL);
            return;
        }
        if (n < SCAN_PAGE)
            return;
    }
}

/* Rows the writer handed over, taken while they follow max_id without a gap; a gap is filled by a
 * scan of the store, which also reads the rows after it. */
static void take_handed(tw_dispatch *d)
{
    pthread_mutex_lock(&d->lock);
    handed *h = d->handed;
    d->handed = NULL;
    d->handed_tail = &d->handed;
    pthread_mutex_unlock(&d->lock);
    int gap = 0;
    for (handed *next; h; h = next) {
        next = h->next;
        h->next = NULL;
        if (h->id <= d->max_id) { /* read by a scan already */
            handed_free(h);
            continue;
        }
        if (gap || h->id != d->max_id + 1) {
            gap = 1;
            handed_free(h);
            continue;
        }
        d->max_id = h->id;
        tstate *t = tstate_for(d, h->target);
        if (!t) { /* out of memory: it is found again at the next start */
            handed_free(h);
            continue;
        }
        tw_alert_row row = {h->id, h->target, "", "", "", "", 0, h->created_ms, h->next_ms, h->attempts, "", 0};
        handed *keep = h->keep_body ? h : NULL;
        if (t->spilled || t->held >= TW_OUTBOX_WINDOW || ids_has(d, h->id) || !hold(d, t, &row, keep)) {
            t->spilled = 1;
            handed_free(h);
        } else if (!keep) {
            handed_free(h);
        }
    }
    if (gap)
        scan_new(d);
}

typedef struct page_ctx {
    tw_dispatch *d;
    tstate *t;
    size_t added, full;
} page_ctx;

static int page_row(void *ctx, const tw_alert_row *row)
{
    page_ctx *p = ctx;
    if (ids_has(p->d, row->id))
        return 0; /* held already, or finishing */
    if (p->t->held >= TW_OUTBOX_WINDOW) {
        p->full = 1;
        return 1;
    }
    if (!hold(p->d, p->t, row, NULL)) {
        p->full = 1;
        return 1;
    }
    p->added++;
    return 0;
}

/* Drops a target's rows that wait for a later retry (they are on disk as they are here). */
static void evict_waiting(tw_dispatch *d, tstate *t, int64_t now)
{
    for (size_t i = d->nheap; i-- > 0;) {
        entry *e = d->heap[i];
        if (e->t != t || e->next_ms <= now)
            continue;
        heap_remove(d, i);
        ids_del(d, e->id);
        t->held--;
        entry_free(e);
        if (i > d->nheap)
            i = d->nheap;
    }
}

/* Refills a spilled target's window from the store. */
static void page(tw_dispatch *d, tstate *t, int64_t now, uint64_t recorded)
{
    if (!t->spilled || now < t->next_page)
        return;
    page_ctx p = {d, t, 0, 0};
    size_t n = 0;
    tw_error err;
    tw_status rc;
    if (t->ordered) {
        if (t->held > TW_OUTBOX_WINDOW / 2)
            return;
        rc = tw__store_page_ids(d->rd, t->name, t->last_id, d->max_id, TW_OUTBOX_WINDOW - t->held, page_row, &p,
                                &n, &err);
        if (!rc && n < TW_OUTBOX_WINDOW - t->held && !p.full)
            t->spilled = 0;
    } else {
        /* Rows held, and rows whose outcome is not committed yet, are skipped by their id. Evicting
         * waiting rows to read the due ones waits until the store has every outcome given for this
         * target, or a row retried a moment ago would come back with its old time. */
        int refill = t->held <= TW_OUTBOX_WINDOW / 2;
        int stale = !t->ready && !t->inflight && t->held && recorded >= t->last_seq;
        if (!refill && !stale)
            return;
        if (stale)
            evict_waiting(d, t, now);
        rc = tw__store_page_due(d->rd, t->name, d->max_id, TW_OUTBOX_WINDOW, page_row, &p, &n, &err);
        if (!rc && n < TW_OUTBOX_WINDOW && !p.full)
            t->spilled = 0;
    }
    t->next_page = now + (p.added ? 0 : 100);
    if (rc) {
        tw__log(TW_LOG_WARN, "cannot read the outbox", "target", t->name, "error", err.msg, NULL);
        t->next_page = now + SCAN_EVERY_MS;
    }
    tw_count(t->paged, p.added);
}

/* Ids of rows whose outcome the writer has committed leave the set: a page may read them now (they
 * are gone from the store, or rescheduled there). */
static void release_finished(tw_dispatch *d, uint64_t recorded)
{
    while (d->finishing_head < d->finishing.n && d->finishing.v[d->finishing_head].seq <= recorded)
        ids_del(d, d->finishing.v[d->finishing_head++].id);
    if (d->finishing_head == d->finishing.n) {
        d->finishing.n = d->finishing_head = 0;
    } else if (d->finishing_head > 4096 && d->finishing_head * 2 > d->finishing.n) {
        memmove(d->finishing.v, d->finishing.v + d->finishing_head,
                (d->finishing.n - d->finishing_head) * sizeof *d->finishing.v);
        d->finishing.n -= d->finishing_head;
        d->finishing_head = 0;
    }
}

static void set_pending(void *ctx, const char *target, int64_t n)
{
    tstate *t = tstate_for(ctx, target);
    if (t)
        tw_gauge_set(t->pending, (uint64_t)n);
}

static void refresh_gauges(tw_dispatch *d, int64_t now)
{
    for (size_t i = 0; i < d->ntargets; i++)
        tw_gauge_set(d->targets[i]->window, d->targets[i]->held);
    uint64_t refused, dropped;
    tw__outbox_cap_counts(d->ob, &refused, &dropped);
    tw_gauge_set(d->capped_reject, refused); /* counted by the writer; shown as the counters they are */
    tw_gauge_set(d->capped_drop, dropped);
    if (now < d->next_counts)
        return;
    d->next_counts = now + SCAN_EVERY_MS;
    for (size_t i = 0; i < d->ntargets; i++)
        tw_gauge_set(d->targets[i]->pending, 0);
    tw_error err;
    if (tw__store_count_by_target(d->rd, set_pending, d, &err))
        tw__log(TW_LOG_WARN, "cannot read the outbox counts", "error", err.msg, NULL);
}

/* ---- the loop ---- */

static void unlink_head(tstate *t)
{
    entry *e = t->head;
    t->head = e->next;
    if (!t->head)
        t->tail = NULL;
    t->ready--;
    e->next = NULL;
}

/* Due entries into their target's queue; then start what each target allows. Returns the time
 * until something is due again. */
static int64_t schedule(tw_dispatch *d, int64_t now)
{
    int64_t wait = SCAN_EVERY_MS;
    while (d->nheap && d->heap[0]->next_ms <= now) {
        entry *e = heap_pop(d);
        tstate *t = e->t;
        if (t->tail)
            t->tail->next = e;
        else
            t->head = e;
        t->tail = e;
        t->ready++;
    }
    if (d->nheap && d->heap[0]->next_ms - now < wait)
        wait = d->heap[0]->next_ms - now;
    if (d->stopping)
        return wait;
    /* Outcomes cannot be committed (a full disk): every delivery now would be repeated after a
     * restart, and its outcome held in memory. Wait until they are recorded. */
    if (tw__outbox_unrecorded(d->ob) > UNRECORDED_MAX)
        return wait < 250 ? wait : 250;
    tw_snapshot *snap = tw__snapshot_acquire(d->snaps);
    for (size_t i = 0; i < d->ntargets; i++) {
        tstate *t = d->targets[i];
        while (t->head) {
            const tw_target_cfg *tc = tw__config_target(snap->cfg, t->name);
            entry *e = t->head;
            if (!tc) {
                unlink_head(t);
                outcome(d, e, t, NULL, TW_OUTCOME_PERMANENT, "the target is no longer configured", "", -1);
                continue;
            }
            int64_t w = 0;
            if (e->next_ms > now) {
                w = e->next_ms - now; /* an ordered target's head waits for its retry; the rest behind it */
            } else if (t->blocked_until > now && t->blocked_until > e->created_ms + tc->retry.max_age_ms) {
                /* The target waits (Retry-After) beyond this alert's maximum age. */
                unlink_head(t);
                outcome(d, e, t, tc, TW_OUTCOME_PERMANENT, "maximum event age reached while the destination "
                        "asked to wait (Retry-After)", "", -1);
                continue;
            } else if (t->blocked_until > now) {
                w = t->blocked_until - now;
            } else if (t->inflight >= (t->ordered ? 1 : concurrency(tc))) {
                break; /* a completion wakes the loop */
            } else if (!take_token(t, tc, now, &w)) {
                /* w set */
            } else {
                unlink_head(t);
                tw_error err;
                tw_status lr = entry_load(d, e, &err);
                if (lr == TW_ENOTFOUND) { /* dead-lettered by a drop_oldest cap meanwhile */
                    t->held--;
                    ids_del(d, e->id);
                    entry_free(e);
                    continue;
                }
                int ok = !lr && (tc->ops->transport == TW_TRANSPORT_HTTP ? start_http(d, e, t, tc)
                                                                          : start_local(d, e, t, snap, tc));
                if (!ok) { /* resources: put it back and try shortly */
                    e->next_ms = now + 100;
                    requeue(d, e);
                    if (100 < wait)
                        wait = 100;
                    break;
                }
                continue;
            }
            if (w < wait)
                wait = w;
            break;
        }
    }
    tw__snapshot_release(snap);
    return wait < 0 ? 0 : wait;
}

/* Records the transfers curl finished; 1 when there were any. */
static int curl_done(tw_dispatch *d)
{
    CURLMsg *msg;
    int left, finished = 0;
    while ((msg = curl_multi_info_read(d->multi, &left)))
        if (msg->msg == CURLMSG_DONE) {
            http_done(d, msg->easy_handle, msg->data.result);
            finished = 1;
        }
    return finished;
}

static void *dispatch_main(void *arg)
{
    tw__thread_name("tw-dispatch");
    tw_dispatch *d = arg;
    for (;;) {
        int64_t now = tw__now_ms();
        take_handed(d);
        if (d->new_rows || now >= d->next_scan) {
            d->new_rows = 0;
            scan_new(d);
            d->next_scan = now + SCAN_EVERY_MS;
        }
        /* Completions first: schedule() then sees the slots they freed, and starts the next
         * deliveries in this same turn. */
        curl_done(d);
        local_done(d);
        uint64_t recorded = tw__outbox_recorded_seq(d->ob);
        release_finished(d, recorded);
        pthread_mutex_lock(&d->lock);
        int stopping = d->stopping;
        int64_t until = d->drain_until;
        pthread_mutex_unlock(&d->lock);
        if (stopping && (d->inflight == 0 || now >= until))
            break;
        int64_t wait = schedule(d, now);
        if (!stopping)
            for (size_t i = 0; i < d->ntargets; i++)
                page(d, d->targets[i], now, recorded);
        if (stopping && wait > 50)
            wait = 50;
        for (size_t i = 0; i < d->ntargets; i++) /* a spilled target waiting for its outcomes' commit */
            if (d->targets[i]->spilled && wait > 50)
                wait = 50;
        tw_gauge_set(d->depth_gauge, (uint64_t)tw__outbox_depth(d->ob));
        refresh_gauges(d, now);
        int running = 0;
        if (d->curl_due >= 0 && tw__now_ms() >= d->curl_due) {
            d->curl_due = -1;
            curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        /* A transfer that ended at once (refused) frees a slot that schedule() has not seen yet: go
         * round again at once instead of sleeping until the next socket event or timeout. Local
         * deliveries that finish from here on wake the loop (wakefd). */
        if (curl_done(d) || local_done(d) || d->new_rows)
            wait = 0;
        if (wait > 1000)
            wait = 1000;
        if (d->curl_due >= 0) {
            int64_t c = d->curl_due - tw__now_ms();
            wait = c < 0 ? 0 : c < wait ? c : wait;
        }
        struct epoll_event evs[64];
        int n = epoll_wait(d->epfd, evs, 64, (int)wait);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == d->wakefd) {
                uint64_t v;
                if (read(d->wakefd, &v, sizeof v) < 0) {
                    /* nothing to read: another turn took it */
                }
                continue;
            }
            uint32_t ev = evs[i].events;
            int mask = (ev & EPOLLIN ? CURL_CSELECT_IN : 0) | (ev & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                       (ev & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(d->multi, evs[i].data.fd, mask, &running);
        }
    }
    return NULL;
}

static void mark_spilled(void *ctx, const char *target, int64_t n)
{
    tstate *t = tstate_for(ctx, target);
    if (t && n > 0)
        t->spilled = 1;
}

static void free_all(tw_dispatch *d)
{
    while (d->nheap)
        entry_free(heap_pop(d));
    for (size_t i = 0; i < d->ntargets; i++) {
        for (entry *e = d->targets[i]->head, *n; e; e = n) {
            n = e->next;
            entry_free(e);
        }
        free(d->targets[i]->name);
        free(d->targets[i]);
    }
    free(d->targets);
    free(d->heap);
    free(d->ids);
    TW_VEC_FREE(&d->finishing);
}

static void close_fds(tw_dispatch *d)
{
    if (d->epfd >= 0)
        close(d->epfd);
    if (d->wakefd >= 0)
        close(d->wakefd);
}

tw_status tw__dispatch_start(const char *data_dir, tw_outbox *ob, tw_snapshots *snaps, tw_metrics *m,
                            tw_dispatch **out, tw_error *err)
{
    *out = NULL;
    tw_dispatch *d = calloc(1, sizeof *d);
    if (!d)
        return tw__err(err, TW_ENOMEM, "out of memory starting deliveries");
    d->ob = ob;
    d->snaps = snaps;
    d->metrics = m;
    d->latency = tw__metrics_histogram(m, "trailwatch_delivery_latency_seconds",
                                      "Time from an alert's creation to its successful delivery", "");
    d->depth_gauge = tw__metrics_gauge(m, "trailwatch_outbox_depth", "Alerts waiting in the outbox", "");
    const char *capped = "Alerts refused (reject) or dead-lettered (drop_oldest) by a target's max_pending";
    d->capped_reject = tw__metrics_counter(m, "trailwatch_outbox_capped_total", capped, "policy=\"reject\"");
    d->capped_drop = tw__metrics_counter(m, "trailwatch_outbox_capped_total", capped, "policy=\"drop_oldest\"");
    tw_status rc = tw_store_open(data_dir, &d->rd, err);
    if (rc) {
        free(d);
        return rc;
    }
    d->curl_due = -1;
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event wev = {.events = EPOLLIN, .data.fd = d->wakefd};
    if (d->epfd < 0 || d->wakefd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wakefd, &wev)) {
        rc = tw__err(err, TW_ESYS, "cannot start deliveries: %s", strerror(errno));
        close_fds(d);
        tw_store_close(d->rd);
        free(d);
        return rc;
    }
    if (!(d->multi = curl_multi_init())) {
        close_fds(d);
        tw_store_close(d->rd);
        free(d);
        return tw__err(err, TW_ENOMEM, "cannot start curl");
    }
    curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->jobs_cond, NULL);
    d->handed_tail = &d->handed;
    /* Everything accepted before this start (a crash, a stop) is delivered first, paged in by the
     * loop: nothing is read here but the highest id and the targets with rows, so that a large
     * backlog does not hold up the start (the listener opens after this returns). */
    if ((rc = tw__store_max_id(d->rd, &d->max_id, err)) ||
        (rc = tw__store_count_by_target(d->rd, mark_spilled, d, err)))
        goto fail;
    for (int i = 0; i < LOCAL_WORKERS; i++)
        if (pthread_create(&d->workers[i], NULL, worker_main, d)) {
            rc = tw__err(err, TW_ESYS, "cannot start delivery workers");
            d->abandon = 1;
            pthread_cond_broadcast(&d->jobs_cond);
            for (int k = 0; k < i; k++)
                pthread_join(d->workers[k], NULL);
            goto fail;
        }
    if (pthread_create(&d->thread, NULL, dispatch_main, d)) {
        rc = tw__err(err, TW_ESYS, "cannot start the delivery thread");
        pthread_mutex_lock(&d->lock);
        d->abandon = 1;
        pthread_cond_broadcast(&d->jobs_cond);
        pthread_mutex_unlock(&d->lock);
        for (int k = 0; k < LOCAL_WORKERS; k++)
            pthread_join(d->workers[k], NULL);
        goto fail;
    }
    *out = d;
    return TW_OK;
fail:
    free_all(d);
    curl_multi_cleanup(d->multi);
    close_fds(d);
    tw_store_close(d->rd);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->jobs_cond);
    free(d);
    return rc;
}

void tw__dispatch_enqueue(tw_dispatch *d, const tw_alert_row *rows, size_t n)
{
    if (!n)
        return;
    uint64_t refused, dropped;
    tw__outbox_cap_counts(d->ob, &refused, &dropped);
    handed *first = NULL, **tail = &first;
    int all = 1;
    for (size_t i = 0; i < n && all; i++) {
        const tw_alert_row *r = &rows[i];
        size_t lt = strlen(r->target) + 1, lr = strlen(r->rule) + 1, le = strlen(r->event_id) + 1,
               lk = strlen(r->idem_key) + 1;
        int keep = !r->may_drop;
        size_t size = sizeof(handed) + lt + (keep ? lr + le + lk + r->body_len + 1 : 0);
        handed *h = NULL;
        if (atomic_fetch_add(&d->handed_bytes, size) + size > HANDED_BYTES_MAX || !(h = malloc(size))) {
            atomic_fetch_sub(&d->handed_bytes, size);
            all = 0; /* this row and the rest are read from the store */
            break;
        }
        *h = (handed){.bytes = &d->handed_bytes, .size = size, .id = r->id, .created_ms = r->created_ms,
                      .next_ms = r->next_ms, .attempts = r->attempts, .dropped = dropped, .keep_body = keep};
        char *p = h->text;
        h->target = memcpy(p, r->target, lt), p += lt;
        if (keep) {
            h->rule = memcpy(p, r->rule, lr), p += lr;
            h->event_id = memcpy(p, r->event_id, le), p += le;
            h->idem_key = memcpy(p, r->idem_key, lk), p += lk;
            h->body = memcpy(p, r->body, r->body_len);
            p[r->body_len] = '\0';
            h->body_len = r->body_len;
        }
        *tail = h;
        tail = &h->next;
    }
    pthread_mutex_lock(&d->lock);
    *d->handed_tail = first;
    if (first)
        d->handed_tail = tail;
    pthread_mutex_unlock(&d->lock);
    if (!all)
        d->new_rows = 1; /* read from the store, in id order, by the loop */
    wake(d);
}

size_t tw__dispatch_pending(tw_dispatch *d)
{
    int64_t n = tw__outbox_depth(d->ob);
    return n > 0 ? (size_t)n : 0;
}

void tw__dispatch_stop(tw_dispatch *d, int64_t drain_ms)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    d->drain_until = tw__now_ms() + drain_ms;
    pthread_mutex_unlock(&d->lock);
    wake(d);
    pthread_join(d->thread, NULL);
    /* Abandon what is still in flight or queued: it stays in the outbox and resumes at the next start
     * (a delivery cut short may be repeated then: duplicates are allowed, losses are not). */
    while (d->active) {
        http_job *j = d->active;
        d->active = j->next;
        curl_multi_remove_handle(d->multi, j->h);
        curl_easy_cleanup(j->h);
        entry_free(j->e);
        http_job_free(j);
    }
    pthread_mutex_lock(&d->lock);
    d->abandon = 1;
    pthread_cond_broadcast(&d->jobs_cond);
    pthread_mutex_unlock(&d->lock);
    /* The drain time is up: a command still running is stopped rather than waited for. */
    tw__target_cancel_local(1);
    for (int k = 0; k < LOCAL_WORKERS; k++)
        pthread_join(d->workers[k], NULL);
    tw__target_cancel_local(0);
    for (local_job *j = d->jobs, *n; j; j = n) {
        n = j->next;
        tw__snapshot_release(j->snap);
        entry_free(j->e);
        free(j);
    }
    local_done(d); /* finished while draining: record them, or they would be delivered twice */
    for (handed *h = d->handed, *n; h; h = n) {
        n = h->next;
        handed_free(h);
    }
    free_all(d);
    while (d->nidle)
        curl_easy_cleanup(d->idle[--d->nidle]);
    curl_multi_cleanup(d->multi);
    close_fds(d);
    tw_store_close(d->rd);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->jobs_cond);
    free(d);
}
