/* engine/engine.c: events -> (wrap, dedup, match, render) -> one durable commit -> results. */
#include "common/thread.h"
#include "engine/engine.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/vec.h"
#include "common/uuid.h"
#include "event/ids.h"
#include "json/json_int.h"
#include "outbox/outbox.h"
#include "engine/dedup.h"
#include "engine/sigma_corr.h"
#include "telemetry/log.h"
#include "telemetry/metrics.h"
#include "config/facts_eval.h"
#include "config/match.h"
#include "config/snapshot.h"
#include "enrich/enrich.h"
#include "trailwatch/event.h"

#define TW_ENGINE_SOURCES_MAX 16       /* source names with a cached counter (there are 5) */
#define TW_STORM_KEY_MAX 4096          /* bytes of a storm key kept (the rest is cut) */

struct tw_engine {
    tw_snapshots *snaps;
    tw_outbox *ob;
    tw_metrics *metrics;
    pthread_mutex_t dedup_lock;
    tw_dedup *dedup;
    _Atomic int stopping;
    /* received and duplicate counters by source (source_counters) */
    pthread_mutex_t sources_lock;
    struct {
        char name[32];
        tw_counter *counter, *duplicates;
    } sources[TW_ENGINE_SOURCES_MAX];
    _Atomic size_t nsources;
    /* the storm closer thread (started by tw__engine_attach) */
    pthread_t storm_thread;
    int storm_started, storm_stop;
    pthread_mutex_t storm_lock;
    pthread_cond_t storm_wake;
    tw_engine_forward_fn forward;  /* cluster mode: events go to JetStream instead */
    void *forward_ctx;
    tw_enricher *enricher;         /* rules' enrich: calls (NULL: none configured) */
    tw_engine_observer observer;
    void *observer_ctx;
    tw__ecorr *sigma;              /* Sigma correlations (a correlator only when configured) */
    tw_engine_archive_fn archiver;
    void *archiver_ctx;
};

void tw__engine_set_archiver(tw_engine *e, tw_engine_archive_fn fn, void *ctx)
{
    e->archiver = fn;
    e->archiver_ctx = ctx;
}

void tw__engine_set_enricher(tw_engine *e, tw_enricher *en) { e->enricher = en; }

void tw__engine_observe(tw_engine *e, tw_engine_observer fn, void *ctx)
{
    e->observer = fn;
    e->observer_ctx = ctx;
}

tw_status tw__engine_new(tw_snapshots *snaps, tw_metrics *m, tw_engine **out, tw_error *err)
{
    tw_engine *e = calloc(1, sizeof *e);
    if (!e)
        return tw__err(err, TW_ENOMEM, "out of memory");
    tw_snapshot *snap = tw__snapshot_acquire(snaps);
    e->dedup = tw__dedup_new(snap->cfg->dedup_window_ms);
    tw__snapshot_release(snap);
    if (!e->dedup) {
        free(e);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    if (!(e->sigma = tw__ecorr_new(snaps, m))) {
        tw__dedup_free(e->dedup);
        free(e);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    e->snaps = snaps;
    e->metrics = m;
    pthread_mutex_init(&e->dedup_lock, NULL);
    pthread_mutex_init(&e->storm_lock, NULL);
    pthread_mutex_init(&e->sources_lock, NULL);
    pthread_cond_init(&e->storm_wake, NULL);
    *out = e;
    return TW_OK;
}

static void *storm_main(void *arg);

static void remember(void *ctx, const char *id, int64_t at)
{
    tw_engine *e = ctx;
    tw__dedup_check_add(e->dedup, id, strlen(id), at);
}

tw_status tw__engine_attach(tw_engine *e, tw_outbox *ob, tw_error *err)
{
    e->ob = ob;
    tw_snapshot *snap = tw__snapshot_acquire(e->snaps);
    int64_t window = snap->cfg->dedup_window_ms, since = tw__now_ms() - window;
    tw__snapshot_release(snap);
    tw__outbox_set_seen_window(ob, window);
    pthread_mutex_lock(&e->dedup_lock);
    tw_status rc = tw__outbox_load_seen(ob, since, remember, e, err);
    pthread_mutex_unlock(&e->dedup_lock);
    if (!rc && !e->storm_started) {
        if (pthread_create(&e->storm_thread, NULL, storm_main, e))
            return tw__err(err, TW_ESYS, "cannot start the storm window thread");
        e->storm_started = 1;
    }
    return rc;
}

static void stop_storms(tw_engine *e)
{
    if (!e->storm_started)
        return;
    pthread_mutex_lock(&e->storm_lock);
    e->storm_stop = 1;
    pthread_cond_signal(&e->storm_wake);
    pthread_mutex_unlock(&e->storm_lock);
    pthread_join(e->storm_thread, NULL);
    e->storm_started = 0;
}

void tw__engine_set_stopping(tw_engine *e)
{
    e->stopping = 1;
    stop_storms(e);   /* before the outbox stops; open windows are closed after the next start */
}
int tw__engine_stopping(const tw_engine *e) { return e->stopping; }

void tw__engine_free(tw_engine *e)
{
    if (!e)
        return;
    stop_storms(e);
    tw__ecorr_free(e->sigma);   /* saves the correlation state */
    tw__dedup_free(e->dedup);
    pthread_mutex_destroy(&e->dedup_lock);
    pthread_mutex_destroy(&e->storm_lock);
    pthread_mutex_destroy(&e->sources_lock);
    pthread_cond_destroy(&e->storm_wake);
    free(e);
}

int tw__engine_file_done(tw_engine *e, const char *path, int64_t size, int64_t mtime)
{
    return tw__outbox_file_done(e->ob, path, size, mtime);
}

/* ---- a batch under construction ---- */

typedef struct batch {
    TW_VEC(tw_new_alert) alerts;
    TW_VEC(uint32_t) alert_rule;   /* per alert: its rule's index in cfg->rules (UINT32_MAX: none) */
    TW_VEC(char *) seen;           /* CloudTrail eventIDs to remember */
    TW_VEC(char *) owned;          /* strings to free after the commit */
    int64_t enrich_deadline_ms;    /* enrichment calls of this submit end by then (monotonic) */
    tw_buf matched;                /* observed_event[]: what the observer is told after the commit */
    tw_buf matched_rules;          /* uint32_t[]: their rules */
    int unobserved;                /* out of memory collecting them: the observer is skipped */
    tw_correlator_input *corr_in;  /* the events' input to Sigma correlations, applied with the commit */
} batch;

typedef struct observed_event {
    const char *text;
    size_t len, first, n;          /* rules: matched_rules[first .. first + n) */
} observed_event;

static int own(batch *b, char *s)
{
    if (!s)
        return 0;
    if (TW_VEC_PUSH(&b->owned, s)) {
        free(s);
        return 0;
    }
    return 1;
}

static char *own_copy(batch *b, const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return own(b, p) ? p : NULL;
}

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->owned.n; i++)
        free(b->owned.v[i]);
    TW_VEC_FREE(&b->owned);
    TW_VEC_FREE(&b->alerts);
    TW_VEC_FREE(&b->alert_rule);
    TW_VEC_FREE(&b->seen);
    tw__buf_free(&b->matched);
    tw__buf_free(&b->matched_rules);
    tw_correlator_input_free(b->corr_in);
}

static tw_new_alert *new_alert(batch *b, uint32_t rule)
{
    if (TW_VEC_RESERVE(&b->alert_rule, 1))
        return NULL;
    tw_new_alert *a = TW_VEC_ADD(&b->alerts);
    if (a)
        b->alert_rule.v[b->alert_rule.n++] = rule;
    return a;
}

/* A stable key per (event, rule, target): the same alert after a crash and a redelivery of its event
 * gets the same key, so a destination can recognise the repeat. */
static void idem_key(const char *event_id, const char *rule, const char *target, char out[33])
{
    unsigned char md[32];
    unsigned int n = 0;
    char buf[1024];
    int len = snprintf(buf, sizeof buf, "%s%c%s%c%s", event_id, 0, rule, 0, target);
    EVP_Digest(buf, (size_t)(len < (int)sizeof buf ? len : (int)sizeof buf - 1), md, &n, EVP_sha256(), NULL);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[32] = '\0';
}

/* Values at the storm key paths, as JSON: what makes two alerts "identical". NULL when out of
 * memory (the alert then goes out without storm control rather than under a wrong key). */
static char *storm_key(const tw_rule_cfg *r, const tw_target_cfg *t, const tw_json *ev)
{
    tw_buf b;
    /* A very long key is cut: the first 4 KB of values tell alerts apart well enough. */
    tw__buf_init(&b, TW_STORM_KEY_MAX);
    tw__buf_puts(&b, t->name);
    tw__buf_puts(&b, "\n[");
    for (uint32_t i = 0; i < r->storm.nkeys; i++) {
        const tw_json *v = tw__jsonpath_get(ev, r->storm.keys[i]);
        if (i)
            tw__buf_putc(&b, ',');
        v ? tw__json_write(&b, v) : tw__buf_puts(&b, "null");
    }
    tw__buf_putc(&b, ']');
    if (tw_buf_error(&b) == TW_ENOMEM) {
        tw__buf_free(&b);
        return NULL;
    }
    return tw__buf_detach(&b, NULL);
}

/* Renders one alert for one binding into a (body owned by the batch). On failure the alert goes to
 * the dead letters with the reason: an alert that cannot be rendered is still not lost. */
static void render_alert(const tw_config *cfg, const tw_rule_cfg *r, const tw_binding *bd, const tw_json *ev,
                         const tw_json *enrichment, const char *text, size_t len, const char *event_id,
                         uint64_t storm_count, batch *b, tw_new_alert *a)
{
    const tw_target_cfg *t = &cfg->targets[bd->target];
    char arn[512];
    snprintf(arn, sizeof arn, "arn:aws:events:%s:%s:rule/%s", cfg->region, cfg->account, r->name);
    a->target = t->name;
    a->max_pending = t->max_pending;
    a->when_full = t->when_full;
    a->rule = r->name;
    a->event_id = event_id;
    a->idem_key = "";
    char *key = malloc(33);
    if (!own(b, key)) {
        a->dead_reason = "out of memory rendering the alert";
        return;
    }
    idem_key(event_id, r->name, t->name, key);
    a->idem_key = key;
    tw_buf input = TW_BUF_INIT, body = TW_BUF_INIT;
    tw_error err;
    int is_json = 0;
    tw_status rc = TW_OK;
    /* The rule's facts ($.facts.NAME in templates): a fact that fails is null, the alert goes out. */
    tw_json_doc *xdoc = r->nfacts || enrichment ? tw__json_doc_new() : NULL;
    const tw_json *extra = NULL;
    if ((r->nfacts || enrichment) &&
        (!xdoc || (rc = tw__config_rule_extra(cfg, r, ev, enrichment, xdoc, &extra, &err)))) {
        if (!xdoc || rc == TW_ENOMEM)
            rc = tw__err(&err, TW_ENOMEM, "out of memory computing facts");
        else
            tw__log(TW_LOG_WARN, "a fact could not be computed", "rule", r->name, "error", err.msg, NULL);
        rc = rc == TW_ENOMEM ? rc : TW_OK;
    }
    if (!rc && bd->xf) {
        tw_xf_ctx x = {r->name, arn, tw__now_ms(), text, len, t->ops->policy.escape_text, extra};
        rc = tw__transform_apply(bd->xf, ev, &x, &input, &is_json, &err);
    }
    if (!rc) {
        tw_alert_ctx ac = {ev, text, len, r->name, r->description, r->severity, arn,
                           bd->xf ? (input.data ? input.data : "") : NULL, input.len, is_json,
                           storm_count, r->storm.window_ms, key, extra};
        rc = tw__target_render(t->ops, t->impl, &ac, &body, &err);
    }
    tw_json_doc_free(xdoc);
    tw__buf_free(&input);
    if (rc) {
        char *why = malloc(600);
        if (why)
            snprintf(why, 600, "cannot render the alert: %s", err.msg);
        /* own() frees what it cannot keep: the reason is then a constant one */
        a->dead_reason = own(b, why) ? why
                         : rc == TW_ENOMEM ? "cannot render the alert: out of memory" : "cannot render the alert";
        tw__buf_free(&body);
        return;
    }
    size_t blen = 0;
    char *bd_text = tw__buf_detach(&body, &blen);
    if (!own(b, bd_text)) {
        a->dead_reason = "out of memory rendering the alert";
        return;
    }
    a->body = bd_text;
    a->body_len = blen;
}

static int add_seen(batch *b, const char *id)
{
    char *copy = strdup(id);
    if (!own(b, copy))
        return 0;
    if (TW_VEC_PUSH(&b->seen, copy))
        return 0;
    return 1;
}

typedef struct item_state {
    char dedup_id[96];
    int added;                     /* its id went into the dedup set by this call */
} item_state;

static void reject(tw_ingest_result *res, tw_status code, const char *msg)
{
    res->status = code;
    snprintf(res->error, sizeof res->error, "%s", msg);
}

/* The per-rule match counters of a configuration, resolved once per snapshot: the hot path then
 * counts with one atomic add instead of the registry's mutex and list scan per matched rule. */
/* Per rule: [i] its matches, [nrules + i] its alerts folded into storm windows. */
static void *make_rule_counters(void *ctx, const tw_config *cfg)
{
    tw_engine *e = ctx;
    tw_counter **c = calloc(cfg->nrules ? 2 * (size_t)cfg->nrules : 1, sizeof *c);
    char lbl[256];
    for (uint32_t i = 0; c && i < cfg->nrules; i++) {
        tw__metrics_label(lbl, sizeof lbl, "rule", cfg->rules[i].name);
        c[i] = tw__metrics_counter(e->metrics, TW_METRIC_RULE_MATCHES, TW_METRIC_RULE_MATCHES_HELP, lbl);
        c[cfg->nrules + i] = tw__metrics_counter(e->metrics, TW_METRIC_FOLDED, TW_METRIC_FOLDED_HELP, lbl);
    }
    return c;
}

/* The received and duplicate counters of a source: sources are few, so their handles are kept in a
 * small table. */
static tw_counter *source_counters(tw_engine *e, const char *source, tw_counter **duplicates)
{
    size_t n = atomic_load_explicit(&e->nsources, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (strcmp(e->sources[i].name, source) == 0) {
            *duplicates = e->sources[i].duplicates;
            return e->sources[i].counter;
        }
    char lbl[128];
    tw__metrics_label(lbl, sizeof lbl, "source", source);
    tw_counter *c = tw__metrics_counter(e->metrics, TW_METRIC_RECEIVED, TW_METRIC_RECEIVED_HELP, lbl);
    *duplicates = tw__metrics_counter(e->metrics, TW_METRIC_DUPLICATES, TW_METRIC_DUPLICATES_HELP, lbl);
    pthread_mutex_lock(&e->sources_lock);
    n = e->nsources;
    if (n < TW_ENGINE_SOURCES_MAX && strlen(source) < sizeof e->sources[n].name) {
        snprintf(e->sources[n].name, sizeof e->sources[n].name, "%s", source);
        e->sources[n].counter = c;
        e->sources[n].duplicates = *duplicates;
        atomic_store_explicit(&e->nsources, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&e->sources_lock);
    return c;
}

/* Counts stored hits as matches of their correlations. */
static void count_hits(const tw__ecorr_hits *hits, tw_counter *const *rule_matches)
{
    for (size_t i = 0; rule_matches && i < hits->n; i++)
        tw_count(rule_matches[hits->v[i].rule], 1);
}

/* The alerts of Sigma correlation hits (each an event of its own, rendered for the correlation's
 * targets). Returns -1 when out of memory. */
static int hit_alerts(const tw_config *cfg, const tw__ecorr_hits *hits, batch *b)
{
    for (size_t i = 0; i < hits->n; i++) {
        const tw__ecorr_hit *h = &hits->v[i];
        const tw_rule_cfg *r = &cfg->rules[h->rule];
        char *text = own_copy(b, h->json, h->len), *eid = text ? own_copy(b, h->id, strlen(h->id)) : NULL;
        tw_json_doc *doc = NULL;
        tw_error err;
        if (!eid || tw_json_parse(text, h->len, &cfg->lim, &doc, &err))
            return -1;   /* the correlator writes valid JSON: only memory can fail */
        for (uint32_t k = 0; k < r->nbindings; k++) {
            tw_new_alert *a = new_alert(b, h->rule);
            if (!a) {
                tw_json_doc_free(doc);
                return -1;
            }
            render_alert(cfg, r, &r->bindings[k], tw_json_root(doc), NULL, text, h->len, eid, 0, b, a);
        }
        tw_json_doc_free(doc);
    }
    return 0;
}

/* Opens a correlator transaction for the batch's correlation input and renders the alerts of its hits
 * into b: they are committed with the events' alerts, and the transaction ends with that commit
 * (tw__ecorr_end). Returns the configuration of the hits (a reference; NULL: none). */
static tw_snapshot *sigma_apply(tw_engine *e, tw_snapshot *snap, batch *b, tw__ecorr_hits *hits, tw_status *rc,
                                tw_error *err)
{
    tw_snapshot *csnap = tw__ecorr_begin(e->sigma, tw__now_ms());
    if (!csnap)
        return NULL;
    tw__ecorr_apply(e->sigma, b->corr_in, hits);
    size_t first = b->alerts.n;
    if (hit_alerts(csnap->cfg, hits, b))
        *rc = tw__err(err, TW_ENOMEM, "out of memory rendering Sigma correlation alerts");
    /* the storm fold counts index rules of the batch's configuration */
    for (size_t i = first; csnap != snap && i < b->alert_rule.n; i++)
        b->alert_rule.v[i] = UINT32_MAX;
    return csnap;
}

/* 1 when an alert of the matched rules needs the parsed event: facts, enrichment, storm keys, an
 * input transformation, or a kind that renders from the tree; else (a webhook sending the event as
 * it came) the event is not parsed at all. */
static int needs_tree(const tw_config *cfg, const tw_match_result *mr)
{
    for (size_t i = 0; i < mr->count; i++) {
        const tw_rule_cfg *r = &cfg->rules[cfg->ruleset_rule[mr->rules[i]]];
        if (r->nfacts || r->nenrich || r->storm.window_ms > 0)
            return 1;
        for (uint32_t k = 0; k < r->nbindings; k++)
            if (r->bindings[k].xf || !cfg->targets[r->bindings[k].target].ops->policy.text_only)
                return 1;
    }
    return 0;
}

/* One event: normalise, dedup, match, render. */
static void process(tw_engine *e, tw_snapshot *snap, tw_matcher *m, const tw_ingest_item *it, tw_ingest_result *res,
                    item_state *st, batch *b, tw_counter *const *rule_matches, int replay)
{
    const tw_config *cfg = snap->cfg;
    tw_error err;
    char *wrapped = NULL;
    const char *text = it->json;
    size_t len = it->len;
    if (len > cfg->lim.event_max) {
        char msg[128];
        snprintf(msg, sizeof msg, "event of %zu bytes exceeds the limit of %zu bytes", len, cfg->lim.event_max);
        reject(res, TW_ETOOBIG, msg);
        return;
    }
    int record = it->kind == TW_EVENT_CLOUDTRAIL || (it->kind == TW_EVENT_AUTO && tw_event_is_cloudtrail_record(text, len));
    if (record) {
        size_t wl;
        if (tw_event_wrap_cloudtrail(text, len, &wrapped, &wl, &err)) {
            reject(res, err.code, err.msg);
            return;
        }
        text = wrapped;
        len = wl;
    }
    tw_match_result mr;
    if (tw__config_match(cfg, m, text, len, &mr, &err)) {
        reject(res, err.code, err.msg);
        free(wrapped);
        return;
    }
    snprintf(res->id, sizeof res->id, "%.*s", (int)(mr.id_len < 63 ? mr.id_len : 63), mr.id ? mr.id : "");
    /* CloudTrail delivers some records more than once: same eventID, same record. */
    size_t dl = tw__event_cloudtrail_id(text, len, 0, st->dedup_id, sizeof st->dedup_id);
    if (dl && !replay) {
        pthread_mutex_lock(&e->dedup_lock);
        int seen = tw__dedup_check_add(e->dedup, st->dedup_id, dl, tw__now_ms());
        pthread_mutex_unlock(&e->dedup_lock);
        if (seen == 1) {
            res->duplicate = 1;
            free(wrapped);
            return;
        }
        st->added = seen == 0;
    }
    res->matched = (uint32_t)mr.count;
    if (!mr.count) {
        free(wrapped);
        return;
    }
    /* An event without an id gets one here, as PutEvents gives every entry one: its alerts'
     * idempotency keys are derived from it, and two distinct events must not share a key. */
    if (!dl && !res->id[0])
        tw__uuid4(res->id);
    const char *event_id = dl ? st->dedup_id : res->id;
    /* The event text outlives this function in the batch (storm windows keep it). */
    char *kept = wrapped;
    if (!kept && (kept = malloc(len + 1))) {
        memcpy(kept, text, len);
        kept[len] = '\0';
    }
    tw_json_doc *doc = NULL;
    char *eid = NULL;
    /* own() frees what it cannot keep; each copy is made only once the previous one is kept */
    if (!own(b, kept) || !(eid = own_copy(b, event_id, strlen(event_id))) ||
        (needs_tree(cfg, &mr) && tw_json_parse(kept, len, &cfg->lim, &doc, &err)) ||
        (dl && !replay && !add_seen(b, st->dedup_id))) {
        reject(res, TW_ENOMEM, "out of memory");
        tw_json_doc_free(doc);
        return;
    }
    const tw_json *ev = tw_json_root(doc);
    if (e->observer) {
        observed_event oe = {kept, len, b->matched_rules.len / sizeof(uint32_t), mr.count};
        for (size_t i = 0; i < mr.count; i++) {
            uint32_t ix = cfg->ruleset_rule[mr.rules[i]];
            b->unobserved |= tw__buf_append(&b->matched_rules, &ix, sizeof ix) != TW_OK;
        }
        b->unobserved |= tw__buf_append(&b->matched, &oe, sizeof oe) != TW_OK;
    }
    for (size_t i = 0; i < mr.count; i++) {
        uint32_t ri = cfg->ruleset_rule[mr.rules[i]];
        const tw_rule_cfg *r = &cfg->rules[ri];
        if (rule_matches)
            tw_count(rule_matches[ri], 1);
        /* enrichment (src/enrich/): bounded by its timeouts and the batch's deadline; a failure only
         * marks the alerts */
        tw_json_doc *edoc = NULL;
        const tw_json *enr = NULL;
        if (r->nenrich)
            tw__enrich_rule(e->enricher, r, ev, b->enrich_deadline_ms, &edoc, &enr);
        for (uint32_t k = 0; k < r->nbindings; k++) {
            tw_new_alert *a = new_alert(b, ri);
            if (!a) {
                reject(res, TW_ENOMEM, "out of memory");
                break;
            }
            render_alert(cfg, r, &r->bindings[k], ev, enr, kept, len, eid, 0, b, a);
            if (r->storm.window_ms > 0 && !a->dead_reason) {
                char *sk = storm_key(r, &cfg->targets[r->bindings[k].target], ev);
                if (own(b, sk)) {
                    a->storm_key = sk;
                    a->storm_window_ms = r->storm.window_ms;
                    a->event = kept;
                    a->event_len = len;
                }
            }
        }
        tw_json_doc_free(edoc);
    }
    tw_json_doc_free(doc);
    /* read now (m holds this event's captures), applied with the batch's commit (sigma_apply) */
    tw__ecorr_prepare(e->sigma, snap, m, &mr, tw__now_ms(), &b->corr_in);
}

void tw__engine_set_forward(tw_engine *e, tw_engine_forward_fn fn, void *ctx)
{
    e->forward = fn;
    e->forward_ctx = ctx;
}

/* Cluster mode: the events are durable once the stream has them; a file is marked done after that. */
static tw_status forward(tw_engine *e, const tw_ingest_item *items, size_t n, const tw_ingest_opts *o,
                         tw_ingest_result *results, tw_error *err)
{
    char lbl[128];
    tw__metrics_label(lbl, sizeof lbl, "source", o && o->source ? o->source : "unknown");
    if (e->stopping)
        return tw__err(err, TW_EINVAL, "the server is stopping");
    tw_status rc = e->forward(e->forward_ctx, items, n, o, results, err);
    if (!rc)
        tw_count(tw__metrics_counter(e->metrics, TW_METRIC_RECEIVED, TW_METRIC_RECEIVED_HELP, lbl), n);
    if (!rc && o && (o->file_path || o->nfiles)) {
        tw_commit_batch cb = {.now_ms = tw__now_ms(), .file_path = o->file_path, .file_size = o->file_size,
                              .file_mtime = o->file_mtime, .file_records = (int64_t)n, .files = o->files,
                              .nfiles = o->nfiles};
        rc = tw__outbox_commit(e->ob, &cb, err);
    }
    return rc;
}

tw_status tw__engine_submit(tw_engine *e, const tw_ingest_item *items, size_t n, const tw_ingest_opts *o,
                           tw_ingest_result *results, tw_error *err)
{
    if (e->forward)
        return forward(e, items, n, o, results, err);
    return tw__engine_submit_local(e, items, n, o, results, err);
}

tw_status tw__engine_submit_local(tw_engine *e, const tw_ingest_item *items, size_t n, const tw_ingest_opts *o,
                                  tw_ingest_result *results, tw_error *err)
{
    const char *source = o && o->source ? o->source : "unknown";
    tw_counter *dups = NULL, *in = source_counters(e, source, &dups);
    if (e->stopping)
        return tw__err(err, TW_EINVAL, "the server is stopping");
    batch b;
    memset(&b, 0, sizeof b);
    b.enrich_deadline_ms = tw__enrich_now_ms() + TW_ENRICH_BATCH_BUDGET_MS;
    item_state *st = calloc(n ? n : 1, sizeof *st);
    if (!st)
        return tw__err(err, TW_ENOMEM, "out of memory");
    tw_snapshot *snap = tw__snapshot_acquire(e->snaps);
    tw_matcher *m = tw__snapshot_matcher(snap);
    tw_counter *const *rule_matches = tw__snapshot_ext(snap, make_rule_counters, free, e);
    tw_status rc = TW_OK;
    if (!m) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        memset(&results[i], 0, sizeof results[i]);
        /* Rejections are counted by the source (trailwatch_events_rejected_total), which also sees
         * the events that never reach the engine. */
        process(e, snap, m, &items[i], &results[i], &st[i], &b, rule_matches, o && o->replay);
    }
    tw_count(in, n);
    /* A repeated CloudTrail eventID is acknowledged (the sender did nothing wrong: CloudTrail and
     * EventBridge deliver at least once) and dropped, but not silently: counted per source, and one
     * line per call says how many and the first id. */
    size_t ndup = 0, first_dup = 0;
    for (size_t i = 0; i < n; i++)
        if (results[i].duplicate && !ndup++)
            first_dup = i;
    if (ndup) {
        char count[24];
        snprintf(count, sizeof count, "%zu", ndup);
        tw_count(dups, ndup);
        tw__log(TW_LOG_INFO, "duplicate events dropped: their CloudTrail eventID was seen before (within "
               "server.dedup_window)", "source", source, "count", count, "event_id", st[first_dup].dedup_id, NULL);
    }
    /* Sigma correlations: the batch's input is applied in a transaction that ends with the commit, so
     * a failed commit (the sender then tries again) leaves the state as if the events never came. */
    int corr_txn = b.corr_in != NULL;
    tw__ecorr_hits hits = TW_VEC_INIT;
    tw_snapshot *csnap = corr_txn ? sigma_apply(e, snap, &b, &hits, &rc, err) : NULL;
    if (!rc && (b.alerts.n || b.seen.n || (o && (o->file_path || o->nfiles)))) {
        tw_commit_batch cb = {.alerts = b.alerts.v, .nalerts = b.alerts.n, .seen = (const char *const *)b.seen.v,
                              .nseen = b.seen.n, .now_ms = tw__now_ms(), .file_path = o ? o->file_path : NULL,
                              .file_size = o ? o->file_size : 0, .file_mtime = o ? o->file_mtime : 0,
                              .file_records = (int64_t)n, .files = o ? o->files : NULL,
                              .nfiles = o ? o->nfiles : 0};
        uint8_t *folded = b.alerts.n ? calloc(b.alerts.n, 1) : NULL;
        cb.folded = folded;
        rc = tw__outbox_commit(e->ob, &cb, err);
        for (size_t i = 0; !rc && folded && rule_matches && i < b.alerts.n; i++)
            if (folded[i] && b.alert_rule.v[i] < snap->cfg->nrules)
                tw_count(rule_matches[snap->cfg->nrules + b.alert_rule.v[i]], 1);
        free(folded);
        if (rc)
            tw__log(TW_LOG_ERROR, "cannot store alerts", "source", source, "error", err ? err->msg : "", NULL);
    }
    if (corr_txn)
        tw__ecorr_end(e->sigma, rc == TW_OK, tw__now_ms());
    if (csnap) {
        if (!rc)
            count_hits(&hits, tw__snapshot_ext(csnap, make_rule_counters, free, e));
        tw__snapshot_release(csnap);
    }
    tw__ecorr_hits_free(&hits);
    if (rc) {
        /* Nothing was kept: the sender must try again, and these ids are not "seen". */
        pthread_mutex_lock(&e->dedup_lock);
        for (size_t i = 0; i < n; i++)
            if (st[i].added)
                tw__dedup_forget(e->dedup, st[i].dedup_id, strlen(st[i].dedup_id));
        pthread_mutex_unlock(&e->dedup_lock);
    }
    /* The archive copies what was accepted only now: an event whose alerts were not stored is sent
     * again by its source, and archived then. */
    if (!rc && e->archiver && !(o && o->replay))
        e->archiver(e->archiver_ctx, items, results, n);
    if (!rc && e->observer && !b.unobserved && b.matched.len) {
        const observed_event *oe = (const observed_event *)(const void *)b.matched.data;
        const uint32_t *ix = (const uint32_t *)(const void *)b.matched_rules.data;
        for (size_t i = 0; i < b.matched.len / sizeof *oe; i++)
            e->observer(e->observer_ctx, snap->cfg, oe[i].text, oe[i].len, ix + oe[i].first, oe[i].n);
    }
out:
    tw__snapshot_matcher_put(snap, m);
    tw__snapshot_release(snap);
    batch_free(&b);
    free(st);
    return rc;
}

/* ---- storm windows ----
 *
 * A window whose time is up is closed by the engine, not the writer: the summary alert is rendered
 * here (it needs the configuration and the kinds) and reaches the writer as an ordinary batch that
 * closes the window and queues the summary in one transaction. */

typedef struct due {
    const char *rule, *key, *event;   /* owned by the batch */
    size_t event_len;
    uint64_t suppressed;
    int64_t window_end_ms;
    size_t alert;                     /* index of its summary in the batch's alerts, or NO_ALERT */
} due;
#define NO_ALERT ((size_t)-1)

typedef struct due_list {
    TW_VEC(due) due;
    batch *b;
    int oom;
} due_list;

static int collect_due(void *ctx, const tw_storm_summary *s)
{
    due_list *l = ctx;
    if (TW_VEC_RESERVE(&l->due, 1)) {
        l->oom = 1;
        return 1;
    }
    due *d = &l->due.v[l->due.n];
    d->rule = own_copy(l->b, s->rule, strlen(s->rule));
    d->key = d->rule ? own_copy(l->b, s->key, strlen(s->key)) : NULL;
    d->event = d->key ? own_copy(l->b, s->event ? s->event : "", s->event ? s->event_len : 0) : NULL;
    if (!d->event) {
        l->oom = 1;
        return 1;
    }
    d->event_len = s->event ? s->event_len : 0;
    d->suppressed = s->suppressed;
    d->window_end_ms = s->window_end_ms;
    d->alert = NO_ALERT;
    l->due.n++;
    return 0;
}

/* Renders the summary of one closed window into the batch (d->alert), if it needs one. */
static tw_status summarise(const tw_config *cfg, due *d, int64_t now, batch *b, tw_error *err)
{
    if (!d->suppressed)
        return TW_OK;
    const tw_rule_cfg *r = NULL;
    for (uint32_t i = 0; i < cfg->nrules && !r; i++)
        if (strcmp(cfg->rules[i].name, d->rule) == 0)
            r = &cfg->rules[i];
    /* The storm key starts with the target's name (see storm_key). */
    const char *nl = strchr(d->key, '\n');
    const tw_binding *bd = NULL;
    for (uint32_t k = 0; r && nl && k < r->nbindings && !bd; k++) {
        const char *name = cfg->targets[r->bindings[k].target].name;
        if (strlen(name) == (size_t)(nl - d->key) && strncmp(name, d->key, (size_t)(nl - d->key)) == 0)
            bd = &r->bindings[k];
    }
    if (!bd) {
        tw__log(TW_LOG_WARN, "storm summary dropped: the rule or its target is gone", "rule", d->rule, NULL);
        return TW_OK;
    }
    tw_json_doc *doc = NULL;
    char eid[64];
    snprintf(eid, sizeof eid, "storm-%lld", (long long)now);
    const char *eid_kept = own_copy(b, eid, strlen(eid));
    tw_new_alert *a = eid_kept ? new_alert(b, UINT32_MAX) : NULL;
    tw_status rc = a ? tw_json_parse(d->event, d->event_len, &cfg->lim, &doc, err)
                     : tw__err(err, TW_ENOMEM, "out of memory rendering a storm summary");
    if (rc == TW_OK) {
        render_alert(cfg, r, bd, tw_json_root(doc), NULL, d->event, d->event_len, eid_kept, d->suppressed + 1, b, a);
        d->alert = b->alerts.n - 1;
    } else if (a) {
        b->alerts.n--;            /* the stored event was parsed before: only memory can fail here */
        b->alert_rule.n--;
    }
    tw_json_doc_free(doc);
    return rc;
}

tw_status tw__engine_close_storms(tw_engine *e, int64_t now_ms, size_t *nclosed, tw_error *err)
{
    batch b;
    memset(&b, 0, sizeof b);
    due_list l = {TW_VEC_INIT, &b, 0};
    tw_storm_close *closes = NULL;
    tw_snapshot *snap = NULL;
    if (nclosed)
        *nclosed = 0;
    tw_status rc = tw__outbox_storms_due(e->ob, now_ms, TW_STORM_CLOSE_MAX, collect_due, &l, err);
    if (!rc && l.oom)
        rc = tw__err(err, TW_ENOMEM, "out of memory reading storm windows");
    if (rc || !l.due.n)
        goto out;
    if (!(closes = calloc(l.due.n, sizeof *closes))) {
        rc = tw__err(err, TW_ENOMEM, "out of memory closing storm windows");
        goto out;
    }
    snap = tw__snapshot_acquire(e->snaps);
    for (size_t i = 0; i < l.due.n && !rc; i++)
        rc = summarise(snap->cfg, &l.due.v[i], now_ms, &b, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < l.due.n; i++)   /* the alerts array is final now */
        closes[i] = (tw_storm_close){l.due.v[i].rule, l.due.v[i].key, l.due.v[i].window_end_ms,
                                     l.due.v[i].alert == NO_ALERT ? NULL : &b.alerts.v[l.due.v[i].alert]};
    tw_commit_batch cb = {.now_ms = now_ms, .closes = closes, .ncloses = l.due.n};
    rc = tw__outbox_commit(e->ob, &cb, err);
    if (!rc && nclosed)
        *nclosed = l.due.n;
out:
    if (snap)
        tw__snapshot_release(snap);
    free(closes);
    TW_VEC_FREE(&l.due);
    batch_free(&b);
    return rc;
}

/* Closes Sigma correlation windows whose time is up and commits their alerts, in one correlator
 * transaction: when the commit fails the windows are reopened and closed again on a later tick, so a
 * hit is never lost (and its id, derived from its window, stays the same). */
static void sigma_tick(tw_engine *e, int64_t now, int64_t *last_log)
{
    tw__ecorr_hits hits = TW_VEC_INIT;
    tw_snapshot *snap = tw__ecorr_begin(e->sigma, now);
    tw_status rc = TW_OK;
    tw_error err;
    batch b;
    memset(&b, 0, sizeof b);
    if (snap) {
        tw__ecorr_tick(e->sigma, now, &hits);
        if (hit_alerts(snap->cfg, &hits, &b))
            rc = tw__err(&err, TW_ENOMEM, "out of memory");
        if (!rc && b.alerts.n) {
            tw_commit_batch cb = {.alerts = b.alerts.v, .nalerts = b.alerts.n, .now_ms = now};
            rc = tw__outbox_commit(e->ob, &cb, &err);
        }
    }
    tw__ecorr_end(e->sigma, rc == TW_OK, now);
    if (snap && !rc)
        count_hits(&hits, tw__snapshot_ext(snap, make_rule_counters, free, e));
    if (rc && now - *last_log >= 10000) {
        tw__log(TW_LOG_ERROR, "cannot store Sigma correlation alerts; their windows are closed again on the next "
                "tick", "error", err.msg, NULL);
        *last_log = now;
    }
    batch_free(&b);
    tw__ecorr_hits_free(&hits);
    if (snap)
        tw__snapshot_release(snap);
}

static void *storm_main(void *arg)
{
    tw__thread_name("tw-storm");
    tw_engine *e = arg;
    int64_t last_log = 0, last_sigma_log = 0;
    pthread_mutex_lock(&e->storm_lock);
    while (!e->storm_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += TW_STORM_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->storm_wake, &e->storm_lock, &ts);
        if (e->storm_stop)
            break;
        pthread_mutex_unlock(&e->storm_lock);
        tw_error err;
        size_t n = 0;
        int64_t now = tw__now_ms();
        /* The windows stay in the database: a failed close is tried again on the next tick. */
        if (tw__engine_close_storms(e, now, &n, &err) && now - last_log >= 60000) {
            tw__log(TW_LOG_ERROR, "cannot close storm windows", "error", err.msg, NULL);
            last_log = now;
        }
        sigma_tick(e, now, &last_sigma_log);
        pthread_mutex_lock(&e->storm_lock);
    }
    pthread_mutex_unlock(&e->storm_lock);
    return NULL;
}
