/* outbox/dispatch.c: the delivery loop: due alerts -> per-target queues -> curl multi / workers. */
#include "outbox/dispatch.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/err.h"
#include "telemetry/log.h"

#define RESPONSE_CAP 4096          /* response bytes kept for a dead letter's reason */
#define LOCAL_WORKERS 4
#define SCAN_EVERY_MS 1000         /* how often rows redriven from outside are looked for */
#define UNRECORDED_MAX 1000        /* outcomes waiting for a commit before deliveries pause */

typedef struct entry entry;
struct entry {
    entry *next;                   /* in a target's ready queue */
    int64_t id, created_ms, next_ms;
    uint32_t attempts;
    char *target, *rule, *event_id, *idem_key, *body;
    size_t body_len;
    size_t heap_pos;
};

typedef struct tstate {
    char *name;
    entry *head, *tail;            /* due, in order */
    size_t ready, inflight;
    double tokens;
    int64_t refill_ms, blocked_until;
    tw_counter *delivered, *retried, *dead;
} tstate;

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

struct tw_dispatch {
    tw_outbox *ob;
    tw_snapshots *snaps;
    tw_metrics *metrics;
    tw_store *rd;
    pthread_t thread;
    CURLM *multi;
    pthread_mutex_t lock;          /* incoming, local queues, stopping */
    entry *incoming;
    local_job *jobs, *done_jobs;
    pthread_cond_t jobs_cond;
    pthread_t workers[LOCAL_WORKERS];
    int stopping;
    int abandon;                   /* workers: take no more jobs */
    int64_t drain_until;
    http_job *active;
    /* dispatcher thread only */
    entry **heap;
    size_t nheap, capheap;
    tstate **targets;              /* each allocated once: deliveries in flight point at them */
    size_t ntargets;
    int64_t *ids;                  /* open-addressing set of ids held (0 = empty, -1 = deleted) */
    size_t idcap, nids;
    int64_t max_id, next_scan;
    size_t inflight;
    _Atomic size_t pending;
    tw_histogram *latency;
    tw_counter *depth_gauge;
};

/* ---- small helpers ---- */

int64_t tw_backoff_ms(uint32_t attempts, int64_t base_ms, int64_t cap_ms, uint64_t random)
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

int64_t tw_parse_retry_after(const char *v, int64_t now_ms)
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

static void entry_free(entry *e)
{
    if (!e)
        return;
    free(e->target);
    free(e->rule);
    free(e->event_id);
    free(e->idem_key);
    free(e->body);
    free(e);
}

static entry *entry_copy(const tw_alert_row *r)
{
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->id = r->id;
    e->created_ms = r->created_ms;
    e->next_ms = r->next_ms;
    e->attempts = r->attempts;
    e->target = strdup(r->target);
    e->rule = strdup(r->rule);
    e->event_id = strdup(r->event_id);
    e->idem_key = strdup(r->idem_key);
    e->body = malloc(r->body_len + 1);
    if (!e->target || !e->rule || !e->event_id || !e->idem_key || !e->body) {
        entry_free(e);
        return NULL;
    }
    memcpy(e->body, r->body, r->body_len);
    e->body[r->body_len] = '\0';
    e->body_len = r->body_len;
    return e;
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
        size_t cap = d->idcap ? d->idcap * 2 : 1024;
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

static entry *heap_pop(tw_dispatch *d)
{
    entry *top = d->heap[0];
    d->heap[0] = d->heap[--d->nheap];
    d->heap[0]->heap_pos = 0;
    for (size_t i = 0;;) {
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
    return top;
}

/* ---- targets ---- */

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
    char lbl[256];
    tw_metrics_label(lbl, sizeof lbl, "target", name);
    char lbl2[320];
    const char *help = TW_METRIC_DELIVERIES_HELP;
    snprintf(lbl2, sizeof lbl2, "%s,outcome=\"delivered\"", lbl);
    t->delivered = tw_metrics_counter(d->metrics, TW_METRIC_DELIVERIES, help, lbl2);
    snprintf(lbl2, sizeof lbl2, "%s,outcome=\"retry\"", lbl);
    t->retried = tw_metrics_counter(d->metrics, TW_METRIC_DELIVERIES, help, lbl2);
    snprintf(lbl2, sizeof lbl2, "%s,outcome=\"dead\"", lbl);
    t->dead = tw_metrics_counter(d->metrics, TW_METRIC_DELIVERIES, help, lbl2);
    t->tokens = -1; /* filled on first use from the target's burst */
    d->targets[d->ntargets++] = t;
    return t;
}

/* The kind's policy: 1 keeps the order (chat channels, local kinds). */
static size_t concurrency(const tw_target_cfg *tc)
{
    return tc->ops->policy.concurrency ? tc->ops->policy.concurrency : 1;
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

static void finish_entry(tw_dispatch *d, entry *e)
{
    ids_del(d, e->id);
    entry_free(e);
    d->pending--;
}

static void outcome(tw_dispatch *d, entry *e, tstate *t, const tw_target_cfg *tc, tw_outcome oc, const char *why,
                    const char *response, int64_t retry_after_ms)
{
    int64_t now = tw__now_ms();
    uint32_t attempts = e->attempts + 1;
    char reason[700];
    if (oc == TW_OUTCOME_DELIVERED) {
        tw_outbox_delivered(d->ob, e->id);
        tw_count(t->delivered, 1);
        tw_observe(d->latency, (now - e->created_ms) * 1000);
        char n[16], ms[24];
        snprintf(n, sizeof n, "%u", attempts);
        snprintf(ms, sizeof ms, "%lld", (long long)(now - e->created_ms));
        tw_log(TW_LOG_DEBUG, "alert delivered", "target", e->target, "rule", e->rule, "event", e->event_id,
               "attempt", n, "ms_since_created", ms, NULL);
        finish_entry(d, e);
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
        tw_outbox_dead(d->ob, e->id, attempts, why, response);
        tw_count(t->dead, 1);
        tw_log(TW_LOG_WARN, "alert dead-lettered", "target", e->target, "rule", e->rule, "event", e->event_id,
               "reason", why, NULL);
        finish_entry(d, e);
        return;
    }
    int64_t delay = tw_backoff_ms(attempts, r ? r->base_ms : 1000, r ? r->cap_ms : 300000, rnd());
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
    tw_outbox_retry(d->ob, e->id, e->next_ms, attempts, why);
    tw_count(t->retried, 1);
    char n[16];
    snprintf(n, sizeof n, "%u", attempts);
    tw_log(TW_LOG_INFO, "delivery will be retried", "target", e->target, "rule", e->rule, "attempt", n, "reason",
           why, NULL);
    if (!heap_push(d, e)) {
        tw_log(TW_LOG_ERROR, "out of memory scheduling a retry (it resumes after a restart)", NULL);
        finish_entry(d, e);
    }
}

/* ---- HTTP deliveries ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    http_job *j = ud;
    size_t len = size * n;
    if (j->response.len < RESPONSE_CAP)
        tw_buf_append(&j->response, p, len > RESPONSE_CAP - j->response.len ? RESPONSE_CAP - j->response.len : len);
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
        j->retry_after_ms = tw_parse_retry_after(v, tw__now_ms());
    }
    return len;
}

static void http_job_free(http_job *j)
{
    curl_slist_free_all(j->headers);
    free(j->body);
    tw_buf_free(&j->response);
    free(j);
}

static int start_http(tw_dispatch *d, entry *e, tstate *t, const tw_target_cfg *tc)
{
    tw_http_prep prep;
    memset(&prep, 0, sizeof prep);
    tw_error err;
    http_job *j = calloc(1, sizeof *j);
    if (!j)
        return 0;
    j->e = e;
    j->t = t;
    j->retry_after_ms = -1;
    tw_buf_init(&j->response, RESPONSE_CAP);
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
            tw_buf_free(&fb);
            outcome(d, e, t, tc, TW_OUTCOME_PERMANENT, "cannot build the request body", "", -1);
            http_job_free(j);
            return 1;
        }
        j->body = tw_buf_detach(&fb, &body_len);
        body = j->body;
    }
    if (!(j->h = curl_easy_init())) {
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
    curl_easy_cleanup(h);
    j->t->inflight--;
    d->inflight--;
    tw_snapshot *snap = tw_snapshot_acquire(d->snaps);
    const tw_target_cfg *tc = tw__config_target(snap->cfg, j->e->target);
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
            oc = tw_target_http_default(status, j->retry_after_ms, &retry_after);
        if (j->retry_after_ms == -2)
            snprintf(why, sizeof why, "HTTP %ld with a negative Retry-After (the destination asks not to "
                                      "retry): %.200s", status, resp);
        else
            snprintf(why, sizeof why, "HTTP %ld: %.200s", status, resp);
    }
    outcome(d, j->e, j->t, tc, oc, why, resp, retry_after);
    tw_snapshot_release(snap);
    j->e = NULL;
    http_job_free(j);
}

/* ---- local deliveries (exec, file, console) on worker threads ---- */

static void *worker_main(void *arg)
{
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
        tw_snapshot_release(j->snap);
        j->snap = NULL;
        j->tc = NULL;
        pthread_mutex_lock(&d->lock);
        j->next = d->done_jobs;
        d->done_jobs = j;
        curl_multi_wakeup(d->multi);
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
        tw_snapshot *snap = tw_snapshot_acquire(d->snaps);
        outcome(d, j->e, j->t, tw__config_target(snap->cfg, j->e->target), j->outcome,
                j->why[0] ? j->why : "delivery failed", "", -1);
        tw_snapshot_release(snap);
        free(j);
    }
    return any;
}

/* ---- the loop ---- */

static void take_incoming(tw_dispatch *d)
{
    pthread_mutex_lock(&d->lock);
    entry *in = d->incoming;
    d->incoming = NULL;
    pthread_mutex_unlock(&d->lock);
    while (in) {
        entry *e = in;
        in = e->next;
        e->next = NULL;
        if (e->id > d->max_id)
            d->max_id = e->id;
        if (ids_has(d, e->id) || !ids_add(d, e->id) || !heap_push(d, e)) {
            entry_free(e);
            continue;
        }
        d->pending++;
    }
}

static int scan_row(void *ctx, const tw_alert_row *row)
{
    tw_dispatch *d = ctx;
    if (row->id > d->max_id)
        d->max_id = row->id;
    if (ids_has(d, row->id))
        return 0;
    entry *e = entry_copy(row);
    if (!e || !ids_add(d, e->id) || !heap_push(d, e)) {
        entry_free(e);
        return 0;
    }
    d->pending++;
    return 0;
}

/* Due entries into their target's queue; then start what each target allows. Returns the time
 * until something is due again. */
static int64_t schedule(tw_dispatch *d, int64_t now)
{
    int64_t wait = SCAN_EVERY_MS;
    while (d->nheap && d->heap[0]->next_ms <= now) {
        entry *e = heap_pop(d);
        tstate *t = tstate_for(d, e->target);
        if (!t) {
            heap_push(d, e); /* out of memory: try again later */
            break;
        }
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
    if (tw_outbox_unrecorded(d->ob) > UNRECORDED_MAX)
        return wait < 250 ? wait : 250;
    tw_snapshot *snap = tw_snapshot_acquire(d->snaps);
    for (size_t i = 0; i < d->ntargets; i++) {
        tstate *t = d->targets[i];
        while (t->head) {
            const tw_target_cfg *tc = tw__config_target(snap->cfg, t->name);
            entry *e = t->head;
            if (!tc) {
                t->head = e->next;
                if (!t->head)
                    t->tail = NULL;
                t->ready--;
                e->next = NULL;
                outcome(d, e, t, NULL, TW_OUTCOME_PERMANENT, "the target is no longer configured", "", -1);
                continue;
            }
            int64_t w = 0;
            if (t->blocked_until > now && t->blocked_until > e->created_ms + tc->retry.max_age_ms) {
                /* The target waits (Retry-After) beyond this alert's maximum age. */
                t->head = e->next;
                if (!t->head)
                    t->tail = NULL;
                t->ready--;
                e->next = NULL;
                outcome(d, e, t, tc, TW_OUTCOME_PERMANENT, "maximum event age reached while the destination "
                        "asked to wait (Retry-After)", "", -1);
                continue;
            } else if (t->blocked_until > now) {
                w = t->blocked_until - now;
            } else if (t->inflight >= concurrency(tc)) {
                break; /* a completion wakes the loop */
            } else if (!take_token(t, tc, now, &w)) {
                /* w set */
            } else {
                t->head = e->next;
                if (!t->head)
                    t->tail = NULL;
                t->ready--;
                e->next = NULL;
                int ok = tc->ops->transport == TW_TRANSPORT_HTTP ? start_http(d, e, t, tc)
                                                                  : start_local(d, e, t, snap, tc);
                if (!ok) { /* resources: put it back and try shortly */
                    e->next_ms = now + 100;
                    heap_push(d, e);
                }
                continue;
            }
            if (w < wait)
                wait = w;
            break;
        }
    }
    tw_snapshot_release(snap);
    return wait < 0 ? 0 : wait;
}

static void *dispatch_main(void *arg)
{
    tw_dispatch *d = arg;
    for (;;) {
        take_incoming(d);
        int64_t now = tw__now_ms();
        if (now >= d->next_scan && d->rd) {
            tw_error err;
            if (tw__store_scan_outbox(d->rd, d->max_id, scan_row, d, &err))
                tw_log(TW_LOG_WARN, "cannot read the outbox", "error", err.msg, NULL);
            d->next_scan = now + SCAN_EVERY_MS;
        }
        pthread_mutex_lock(&d->lock);
        int stopping = d->stopping;
        int64_t until = d->drain_until;
        pthread_mutex_unlock(&d->lock);
        if (stopping && (d->inflight == 0 || now >= until))
            break;
        int64_t wait = schedule(d, now);
        if (stopping && wait > 50)
            wait = 50;
        tw_gauge_set(d->depth_gauge, (uint64_t)tw_outbox_depth(d->ob));
        int running = 0;
        curl_multi_perform(d->multi, &running);
        CURLMsg *msg;
        int left, finished = 0;
        while ((msg = curl_multi_info_read(d->multi, &left)))
            if (msg->msg == CURLMSG_DONE) {
                http_done(d, msg->easy_handle, msg->data.result);
                finished = 1;
            }
        finished |= local_done(d);
        /* A completion frees a slot that schedule() has not seen yet: go round again at once
         * instead of sleeping until the next socket event or timeout. */
        curl_multi_poll(d->multi, NULL, 0, finished ? 0 : (int)(wait > 1000 ? 1000 : wait), NULL);
    }
    return NULL;
}

tw_status tw_dispatch_start(const char *data_dir, tw_outbox *ob, tw_snapshots *snaps, tw_metrics *m,
                            tw_dispatch **out, tw_error *err)
{
    *out = NULL;
    tw_dispatch *d = calloc(1, sizeof *d);
    if (!d)
        return tw__err(err, TW_ENOMEM, "out of memory starting deliveries");
    d->ob = ob;
    d->snaps = snaps;
    d->metrics = m;
    d->latency = tw_metrics_histogram(m, "trailwatch_delivery_latency_seconds",
                                      "Time from an alert's creation to its successful delivery", "");
    d->depth_gauge = tw_metrics_gauge(m, "trailwatch_outbox_depth", "Alerts waiting in the outbox", "");
    tw_status rc = tw_store_open(data_dir, &d->rd, err);
    if (rc) {
        free(d);
        return rc;
    }
    if (!(d->multi = curl_multi_init())) {
        tw_store_close(d->rd);
        free(d);
        return tw__err(err, TW_ENOMEM, "cannot start curl");
    }
    curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->jobs_cond, NULL);
    /* Everything accepted before this start (a crash, a stop) is delivered first. */
    if ((rc = tw__store_scan_outbox(d->rd, 0, scan_row, d, err)))
        goto fail;
    d->next_scan = tw__now_ms() + SCAN_EVERY_MS;
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
    while (d->nheap)
        entry_free(heap_pop(d));
    free(d->heap);
    free(d->ids);
    curl_multi_cleanup(d->multi);
    tw_store_close(d->rd);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->jobs_cond);
    free(d);
    return rc;
}

void tw_dispatch_enqueue(tw_dispatch *d, const tw_alert_row *rows, size_t n)
{
    entry *list = NULL, **tail = &list;
    for (size_t i = 0; i < n; i++) {
        entry *e = entry_copy(&rows[i]);
        if (!e) {
            tw_log(TW_LOG_ERROR, "out of memory queueing an alert (it is in the outbox; a rescan finds it)", NULL);
            continue;
        }
        *tail = e;
        tail = &e->next;
    }
    pthread_mutex_lock(&d->lock);
    *tail = d->incoming;
    d->incoming = list;
    pthread_mutex_unlock(&d->lock);
    curl_multi_wakeup(d->multi);
}

size_t tw_dispatch_pending(tw_dispatch *d) { return d->pending; }

void tw_dispatch_stop(tw_dispatch *d, int64_t drain_ms)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    d->drain_until = tw__now_ms() + drain_ms;
    pthread_mutex_unlock(&d->lock);
    curl_multi_wakeup(d->multi);
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
    tw_target_cancel_local(1);
    for (int k = 0; k < LOCAL_WORKERS; k++)
        pthread_join(d->workers[k], NULL);
    tw_target_cancel_local(0);
    for (local_job *j = d->jobs, *n; j; j = n) {
        n = j->next;
        tw_snapshot_release(j->snap);
        entry_free(j->e);
        free(j);
    }
    local_done(d); /* finished while draining: record them, or they would be delivered twice */
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
    for (entry *e = d->incoming, *n; e; e = n) {
        n = e->next;
        entry_free(e);
    }
    free(d->targets);
    free(d->heap);
    free(d->ids);
    curl_multi_cleanup(d->multi);
    tw_store_close(d->rd);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->jobs_cond);
    free(d);
}
