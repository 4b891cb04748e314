/* enrich/enrich.c: enrichment calls with a coalescing cache and per-API token buckets. */
#include "enrich/enrich.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/hash.h"
#include "json/json_int.h"
#include "target/transform.h"
#include "telemetry/log.h"

typedef struct entry {
    uint64_t hash;
    char *key;                     /* service \n action \n body */
    size_t klen;
    char *answer;                  /* JSON text; NULL while pending or after a failure */
    size_t alen;
    char *error;                   /* why the call failed (not cached past the call) */
    int pending;
    int64_t expires_ms;
    int64_t used_ms;
    unsigned waiters;
} entry;

typedef struct api {
    char name[200];                /* service.action */
    double tokens, rate, burst;
    int64_t last_ms;
} api;

struct tw_enricher {
    tw_aws_client *client;
    char why_no_client[256];
    pthread_mutex_t lock;
    pthread_cond_t done;
    entry *entries[TW_ENRICH_CACHE_MAX];
    size_t nentries;
    api apis[TW_ENRICH_APIS_MAX];
    size_t napis;
    _Atomic uint64_t calls;
    tw_counter *m_calls, *m_hits, *m_failed;
};

int64_t tw__enrich_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

tw_status tw__enricher_new(tw_aws_client *client, const char *why_no_client, tw_metrics *m, tw_enricher **out,
                           tw_error *err)
{
    tw_enricher *en = calloc(1, sizeof *en);
    if (!en)
        return tw__err(err, TW_ENOMEM, "out of memory");
    en->client = client;
    snprintf(en->why_no_client, sizeof en->why_no_client, "%s",
             why_no_client ? why_no_client : "AWS is not configured");
    pthread_mutex_init(&en->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&en->done, &ca);
    pthread_condattr_destroy(&ca);
    en->m_calls = tw__metrics_counter(m, "trailwatch_enrich_calls_total", "Enrichment API calls made (cache misses).", "");
    en->m_hits = tw__metrics_counter(m, "trailwatch_enrich_cache_hits_total", "Enrichments answered from the cache.", "");
    en->m_failed = tw__metrics_counter(m, "trailwatch_enrich_failed_total",
                                      "Enrichments that failed, timed out or were rate limited (alerts marked).", "");
    *out = en;
    return TW_OK;
}

static void entry_free(entry *e)
{
    if (!e)
        return;
    free(e->key);
    free(e->answer);
    free(e->error);
    free(e);
}

void tw__enricher_free(tw_enricher *en)
{
    if (!en)
        return;
    for (size_t i = 0; i < en->nentries; i++)
        entry_free(en->entries[i]);
    pthread_mutex_destroy(&en->lock);
    pthread_cond_destroy(&en->done);
    free(en);
}

uint64_t tw__enricher_calls(const tw_enricher *en) { return en ? atomic_load(&en->calls) : 0; }

/* ---- rate limits (under the lock) ---- */

static api *find_api(tw_enricher *en, const tw_enrich_cfg *c)
{
    char name[200];
    snprintf(name, sizeof name, "%s.%s", c->service, c->action);
    for (size_t i = 0; i < en->napis; i++)
        if (strcmp(en->apis[i].name, name) == 0) {
            en->apis[i].rate = c->rate; /* a reload may change it */
            en->apis[i].burst = c->burst;
            return &en->apis[i];
        }
    if (en->napis == TW_ENRICH_APIS_MAX)
        return &en->apis[en->napis - 1]; /* more APIs than slots: the last ones share a bucket */
    api *a = &en->apis[en->napis++];
    snprintf(a->name, sizeof a->name, "%s", name);
    a->rate = c->rate;
    a->burst = a->tokens = c->burst;
    a->last_ms = tw__enrich_now_ms();
    return a;
}

/* 0 when a token was taken, else the ms until one is there. */
static int64_t take_token(api *a)
{
    int64_t now = tw__enrich_now_ms();
    a->tokens += (double)(now - a->last_ms) / 1000.0 * a->rate;
    if (a->tokens > a->burst)
        a->tokens = a->burst;
    a->last_ms = now;
    if (a->tokens >= 1.0) {
        a->tokens -= 1.0;
        return 0;
    }
    return (int64_t)((1.0 - a->tokens) / a->rate * 1000.0) + 1;
}

/* ---- the cache (under the lock) ---- */

static entry *find_entry(tw_enricher *en, uint64_t h, const char *key, size_t klen)
{
    for (size_t i = 0; i < en->nentries; i++) {
        entry *e = en->entries[i];
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
    return NULL;
}

static void drop_entry(tw_enricher *en, size_t i)
{
    entry_free(en->entries[i]);
    en->entries[i] = en->entries[--en->nentries];
}

/* Room for one more: expired entries go first, then the least recently used one not in use. */
static int make_room(tw_enricher *en, int64_t now)
{
    for (size_t i = 0; i < en->nentries;) {
        entry *e = en->entries[i];
        if (!e->pending && !e->waiters && e->expires_ms <= now)
            drop_entry(en, i);
        else
            i++;
    }
    if (en->nentries < TW_ENRICH_CACHE_MAX)
        return 1;
    size_t victim = SIZE_MAX;
    for (size_t i = 0; i < en->nentries; i++) {
        entry *e = en->entries[i];
        if (!e->pending && !e->waiters && (victim == SIZE_MAX || e->used_ms < en->entries[victim]->used_ms))
            victim = i;
    }
    if (victim == SIZE_MAX)
        return 0;
    drop_entry(en, victim);
    return 1;
}

static int wait_until(tw_enricher *en, int64_t deadline)
{
    struct timespec ts = {deadline / 1000, (long)(deadline % 1000) * 1000000L};
    return pthread_cond_timedwait(&en->done, &en->lock, &ts) == 0;
}

/* ---- one enrichment ---- */

typedef struct outcome {
    char *answer;                  /* JSON text (caller frees) */
    size_t alen;
    char why[TW_ERROR_MSG_MAX + 64];
} outcome;

/* The call itself, outside the lock. */
static void call_api(tw_enricher *en, const tw_enrich_cfg *c, const char *body, size_t len, int64_t deadline,
                     outcome *o)
{
    int64_t left = deadline - tw__enrich_now_ms();
    if (left <= 0) {
        snprintf(o->why, sizeof o->why, "timed out before the call (limit %lld ms)", (long long)c->timeout_ms);
        return;
    }
    tw_json_doc *doc = NULL;
    tw_error err;
    atomic_fetch_add(&en->calls, 1);
    tw_count(en->m_calls, 1);
    if (tw__aws_json(en->client, c->service, c->action, c->target_prefix, body, len, left, &doc, &err)) {
        snprintf(o->why, sizeof o->why, "%s", err.msg);
        return;
    }
    tw_buf b = TW_BUF_INIT;
    if (tw__json_write(&b, tw_json_root(doc)) == TW_OK)
        o->answer = tw__buf_detach(&b, &o->alen);
    else
        snprintf(o->why, sizeof o->why, "out of memory keeping the answer");
    tw__buf_free(&b);
    tw_json_doc_free(doc);
}

static void lookup(tw_enricher *en, const tw_enrich_cfg *c, const char *body, size_t blen, int64_t deadline,
                   outcome *o)
{
    size_t klen = strlen(c->service) + strlen(c->action) + blen + 2;
    char *key = malloc(klen + 1);
    if (!key) {
        snprintf(o->why, sizeof o->why, "out of memory");
        return;
    }
    snprintf(key, klen + 1, "%s\n%s\n", c->service, c->action);
    memcpy(key + klen - blen, body, blen);
    key[klen] = '\0';
    uint64_t h = tw__hash_bytes(key, klen, 0);
    pthread_mutex_lock(&en->lock);
    entry *e = NULL;
    for (;;) {
        int64_t now = tw__enrich_now_ms();
        e = c->cache_ms > 0 ? find_entry(en, h, key, klen) : NULL;
        if (e && e->answer && e->expires_ms > now) {
            e->used_ms = now;
            o->answer = malloc(e->alen + 1);
            if (o->answer) {
                memcpy(o->answer, e->answer, e->alen + 1);
                o->alen = e->alen;
            }
            tw_count(en->m_hits, 1);
            pthread_mutex_unlock(&en->lock);
            free(key);
            return;
        }
        if (e && e->pending) {
            /* the same request is in flight: its answer serves this event too */
            e->waiters++;
            int got = now < deadline && wait_until(en, deadline);
            e->waiters--;
            if (!got && tw__enrich_now_ms() >= deadline) {
                pthread_mutex_unlock(&en->lock);
                snprintf(o->why, sizeof o->why, "timed out waiting for the same request in flight (limit %lld ms)",
                         (long long)c->timeout_ms);
                free(key);
                return;
            }
            if (e->error && !e->pending && !e->answer) {
                snprintf(o->why, sizeof o->why, "%s", e->error);
                pthread_mutex_unlock(&en->lock);
                free(key);
                return;
            }
            continue;
        }
        break;
    }
    /* a miss: take a rate-limit token (waiting at most until the deadline), then call */
    api *a = find_api(en, c);
    for (;;) {
        int64_t wait = take_token(a), now = tw__enrich_now_ms();
        if (!wait)
            break;
        if (now + wait >= deadline) {
            pthread_mutex_unlock(&en->lock);
            snprintf(o->why, sizeof o->why, "rate limited: %s allows %g calls a second (burst %g)", a->name, a->rate,
                     a->burst);
            free(key);
            return;
        }
        wait_until(en, now + wait);
    }
    if (c->cache_ms > 0) {
        if (e) {
            free(e->answer);
            free(e->error);
            e->answer = e->error = NULL;
        } else if (make_room(en, tw__enrich_now_ms()) && (e = calloc(1, sizeof *e))) {
            e->hash = h;
            e->key = key;
            e->klen = klen;
            key = NULL;
            en->entries[en->nentries++] = e;
        }
        if (e)
            e->pending = 1;
    }
    pthread_mutex_unlock(&en->lock);
    call_api(en, c, body, blen, deadline, o);
    pthread_mutex_lock(&en->lock);
    if (e) {
        e->pending = 0;
        e->used_ms = tw__enrich_now_ms();
        if (o->answer && o->alen <= TW_ENRICH_ENTRY_MAX && (e->answer = malloc(o->alen + 1))) {
            memcpy(e->answer, o->answer, o->alen + 1);
            e->alen = o->alen;
            e->expires_ms = e->used_ms + c->cache_ms;
        } else {
            e->expires_ms = 0;
            e->error = strdup(o->answer ? "answer too large to share" : o->why);
        }
        pthread_cond_broadcast(&en->done);
    }
    pthread_mutex_unlock(&en->lock);
    free(key);
}

/* {"error": why} */
static tw_json *error_value(tw_json_doc *d, const char *why)
{
    tw_json *o = tw__json_new(d, TW_JSON_OBJECT), *s = tw__json_new_string(d, why, strlen(why));
    return o && s && !tw__json_put(d, o, "error", 5, s) ? o : NULL;
}

void tw__enrich_rule(tw_enricher *en, const tw_rule_cfg *r, const tw_json *event, int64_t deadline_ms,
                     tw_json_doc **doc, const tw_json **out)
{
    *doc = NULL;
    *out = NULL;
    if (!r->nenrich)
        return;
    tw_json_doc *d = tw__json_doc_new();
    tw_json *res = d ? tw__json_new(d, TW_JSON_OBJECT) : NULL;
    if (!res) {
        tw_json_doc_free(d);
        return;
    }
    for (uint32_t i = 0; i < r->nenrich; i++) {
        const tw_enrich_cfg *c = &r->enrich[i];
        outcome o = {NULL, 0, ""};
        tw_buf body;
        tw__buf_init(&body, TW_ENRICH_REQUEST_MAX);
        tw_error err;
        int is_json = 0;
        tw_xf_ctx x = {r->name, "", 0, "", 0, NULL, NULL};
        int64_t deadline = tw__enrich_now_ms() + c->timeout_ms;
        if (deadline_ms && deadline_ms < deadline)
            deadline = deadline_ms;
        if (!en)
            snprintf(o.why, sizeof o.why, "enrichment was not set up when trailwatch started: restart it");
        else if (!en->client)
            snprintf(o.why, sizeof o.why, "%s", en->why_no_client);
        else if (tw__transform_apply(c->request, event, &x, &body, &is_json, &err))
            snprintf(o.why, sizeof o.why, "cannot build the request: %s", err.msg);
        else
            lookup(en, c, body.data ? body.data : "{}", body.data ? body.len : 2, deadline, &o);
        tw__buf_free(&body);
        tw_json *v = NULL;
        tw_json_doc *ad = NULL;
        if (o.answer && tw_json_parse(o.answer, o.alen, NULL, &ad, NULL) == TW_OK)
            v = tw__json_copy(d, tw_json_root(ad));
        tw_json_doc_free(ad);
        if (!v) {
            if (!o.why[0])
                snprintf(o.why, sizeof o.why, "the answer could not be read");
            if (en)
                tw_count(en->m_failed, 1);
            tw__log(TW_LOG_WARN, "enrichment failed; the alert goes out marked with the reason", "rule", r->name,
                   "enrichment", c->name, "error", o.why, NULL);
            v = error_value(d, o.why);
        }
        free(o.answer);
        if (!v || tw__json_put(d, res, c->name, strlen(c->name), v)) {
            tw_json_doc_free(d);
            return;
        }
    }
    *doc = d;
    *out = res;
}
