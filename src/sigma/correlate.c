/* sigma/correlate.c: correlations over time: observations grouped by their group-by values, windows of
 * the correlation's timespan by eventTime, the condition, hits, chains.
 *
 * Two ways to decide a window. A condition that only grows true as events are added (gt/gte, a
 * temporal correlation over all or some of its rules) is checked when an observation arrives, over
 * every window of `timespan` that holds it (out-of-order arrivals included): the group fires and
 * forgets what the window held. A condition with an upper bound (lt, lte, eq, neq, or a temporal
 * expression with `not`) can only be decided when its window is over: windows then run from a group's
 * first observation for one timespan and close once the newest eventTime (less the allowed lateness)
 * or the wall clock passed their end. Observations older than the newest eventTime less the lateness
 * are late: counted and dropped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"
#include "json/json_int.h"
#include "sigma/correlate_int.h"

void tw_correlator_opts_default(tw_correlator_opts *o)
{
    memset(o, 0, sizeof *o);
    o->lateness_ms = 15 * 60 * 1000;
    o->max_groups = 100000;
    o->max_group_events = 1000;
}

static const sg_corr *corr_of(const tw_correlator *c, size_t i) { return c->s->rules[i]->corr; }

/* ---- groups ---- */

static uint64_t key_hash(size_t corr, const char *key, size_t klen)
{
    return tw__hash_bytes(key, klen, 0x5167a11ULL + corr * 0x9e3779b97f4a7c15ULL);
}

static void lru_unlink(tw_correlator *c, group *g)
{
    if (g->prev)
        g->prev->next = g->next;
    else
        c->lru_head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        c->lru_tail = g->prev;
    g->prev = g->next = NULL;
}

static void lru_front(tw_correlator *c, group *g)
{
    g->next = c->lru_head;
    g->prev = NULL;
    if (c->lru_head)
        c->lru_head->prev = g;
    c->lru_head = g;
    if (!c->lru_tail)
        c->lru_tail = g;
}

void tw__corr_obs_free(obs *o)
{
    free(o->value);
    free(o->eid);
}

void tw__corr_mark_dirty(tw_correlator *c, group *g)
{
    if (g->dirty)
        return;
    g->dirty = 1;
    g->dprev = NULL;
    g->dnext = c->dirty_head;
    if (c->dirty_head)
        c->dirty_head->dprev = g;
    c->dirty_head = g;
}

static void dirty_unlink(tw_correlator *c, group *g)
{
    if (!g->dirty)
        return;
    if (g->dprev)
        g->dprev->dnext = g->dnext;
    else
        c->dirty_head = g->dnext;
    if (g->dnext)
        g->dnext->dprev = g->dprev;
    g->dirty = 0;
    g->dprev = g->dnext = NULL;
}

void tw__corr_clear_dirty(tw_correlator *c)
{
    while (c->dirty_head)
        dirty_unlink(c, c->dirty_head);
}

void tw__corr_group_drop(tw_correlator *c, group *g, int count_eviction)
{
    tw__corr_note(c, g);
    dirty_unlink(c, g);
    group **pp = &c->buckets[g->hash & (c->nbuckets - 1)];
    while (*pp && *pp != g)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = g->hnext;
    lru_unlink(c, g);
    tw__corr_note_deleted(c, g);
    for (size_t i = 0; i < g->n; i++)
        tw__corr_obs_release(c, &g->ev[i]);
    free(g->ev);
    free(g->key);
    free(g);
    c->ngroups--;
    if (count_eviction)
        c->st.evicted++;
}

static int rehash(tw_correlator *c)
{
    size_t nb = c->nbuckets ? c->nbuckets * 2 : 1024;
    group **b = calloc(nb, sizeof *b);
    if (!b)
        return 0;
    for (size_t i = 0; i < c->nbuckets; i++)
        for (group *g = c->buckets[i], *nx; g; g = nx) {
            nx = g->hnext;
            g->hnext = b[g->hash & (nb - 1)];
            b[g->hash & (nb - 1)] = g;
        }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
    return 1;
}

group *tw__corr_group(tw_correlator *c, size_t corr, const char *key, size_t klen, int create)
{
    uint64_t h = key_hash(corr, key, klen);
    if (c->nbuckets)
        for (group *g = c->buckets[h & (c->nbuckets - 1)]; g; g = g->hnext)
            if (g->hash == h && g->corr == corr && g->klen == klen && memcmp(g->key, key, klen) == 0) {
                lru_unlink(c, g);
                lru_front(c, g);
                return g;
            }
    if (!create)
        return NULL;
    while (create == 1 && c->ngroups >= c->o.max_groups && c->lru_tail)
        tw__corr_group_drop(c, c->lru_tail, 1);
    if (c->ngroups >= c->nbuckets && !rehash(c))
        return NULL;
    group *g = calloc(1, sizeof *g);
    if (!g || !(g->key = malloc(klen + 1))) {
        free(g);
        return NULL;
    }
    memcpy(g->key, key, klen);
    g->key[klen] = '\0';
    g->klen = klen;
    g->corr = corr;
    g->hash = h;
    g->wstart = INT64_MIN;
    g->hnext = c->buckets[h & (c->nbuckets - 1)];
    c->buckets[h & (c->nbuckets - 1)] = g;
    lru_front(c, g);
    c->ngroups++;
    tw__corr_note_created(c, g);
    return g;
}

/* Group values are encoded as: per value, 0 (absent) or 1 + 4-byte length + bytes. */
static int key_add(tw_buf *k, const char *v, size_t n)
{
    if (!v)
        return tw__buf_putc(k, 0) == TW_OK;
    uint32_t l = (uint32_t)n;
    return tw__buf_putc(k, 1) == TW_OK && tw__buf_append(k, &l, 4) == TW_OK && tw__buf_append(k, v, n) == TW_OK;
}

/* The i-th value of an encoded key (NULL: absent). */
static const char *key_value(const char *key, size_t klen, size_t i, size_t *n)
{
    size_t p = 0;
    for (size_t k = 0; p < klen; k++) {
        if (key[p] == 0) {
            if (k == i)
                return NULL;
            p++;
            continue;
        }
        uint32_t l;
        memcpy(&l, key + p + 1, 4);
        if (k == i) {
            *n = l;
            return key + p + 5;
        }
        p += 5 + l;
    }
    return NULL;
}

/* ---- conditions ---- */

static int bounds_hold(const sg_bounds *b, double v)
{
    if (b->has_lo && (b->lo_incl ? v < b->lo : v <= b->lo))
        return 0;
    if (b->has_hi && (b->hi_incl ? v > b->hi : v >= b->hi))
        return 0;
    if (b->has_neq && v == b->neq)
        return 0;
    return 1;
}

static int has_not(const sg_cond *e) { return e && (e->op == SC_NOT || has_not(e->a) || has_not(e->b)); }

/* Decided when an observation arrives (monotone), or when its window closes. */
static int closing_mode(const sg_corr *k)
{
    if (k->expr)
        return has_not(k->expr);
    return k->has_bounds && (k->bounds.has_hi || k->bounds.has_neq);
}

static int expr_eval(const tw_correlator *c, const sg_corr *k, const sg_cond *e, const unsigned *present)
{
    switch (e->op) {
    case SC_ID:
        for (size_t j = 0; j < k->nrefs; j++) {
            const tw_sigma_rule_info *t = &c->s->rules[k->ref_rule[j]]->info;
            if (strcmp(e->name, k->refs[j]) == 0 || strcmp(e->name, t->name) == 0 || strcmp(e->name, t->id) == 0)
                return present[j] > 0;
        }
        return 0;
    case SC_NOT: return !expr_eval(c, k, e->a, present);
    case SC_AND: return expr_eval(c, k, e->a, present) && expr_eval(c, k, e->b, present);
    case SC_OR: return expr_eval(c, k, e->a, present) || expr_eval(c, k, e->b, present);
    default: return 0;
    }
}

/* Longest run of the rules in their listed order within ev[a..b] (each later rule at or after the
 * previous one's time), starting with the first rule. */
static size_t ordered_prefix(const obs *ev, size_t a, size_t b, size_t nrefs)
{
    size_t best = 0;
    for (size_t i = a; i <= b; i++) {
        if (ev[i].ref != 0)
            continue;
        size_t want = 1, k = i + 1;
        for (; k <= b && want < nrefs; k++)
            if (ev[k].ref == want)
                want++;
        if (want > best)
            best = want;
        if (best == nrefs)
            break;
    }
    return best;
}

typedef struct window {
    size_t a, b;                /* observations ev[a..b] */
    double value;
} window;

/* Whether ev[a..b] meets the condition; *value is the figure it was judged on. */
static int window_holds(const tw_correlator *c, const sg_corr *k, const group *g, size_t a, size_t b, double *value)
{
    const obs *ev = g->ev;
    switch (k->type) {
    case SG_EVENT_COUNT:
        *value = (double)(b - a + 1);
        return bounds_hold(&k->bounds, *value);
    case SG_VALUE_COUNT: {
        size_t distinct = 0, size = 16;
        while (size < 2 * (b - a + 1))
            size *= 2;
        const char **set = calloc(size, sizeof *set);
        if (!set)
            return 0;
        for (size_t i = a; i <= b; i++) {
            if (!ev[i].value)
                continue;
            size_t h = (size_t)tw__hash_bytes(ev[i].value, strlen(ev[i].value), 3) & (size - 1);
            while (set[h] && strcmp(set[h], ev[i].value) != 0)
                h = (h + 1) & (size - 1);
            if (!set[h]) {
                set[h] = ev[i].value;
                distinct++;
            }
        }
        free(set);
        *value = (double)distinct;
        return bounds_hold(&k->bounds, *value);
    }
    case SG_VALUE_SUM:
    case SG_VALUE_AVG: {
        double sum = 0;
        size_t n = 0;
        for (size_t i = a; i <= b; i++)
            if (ev[i].has_num) {
                sum += ev[i].num;
                n++;
            }
        if (!n)
            return 0;
        *value = k->type == SG_VALUE_SUM ? sum : sum / (double)n;
        return bounds_hold(&k->bounds, *value);
    }
    case SG_TEMPORAL: {
        unsigned present[TW_SIGMA_REFS_MAX] = {0};
        size_t distinct = 0;
        for (size_t i = a; i <= b; i++)
            if (present[ev[i].ref]++ == 0)
                distinct++;
        *value = (double)distinct;
        if (k->expr)
            return expr_eval(c, k, k->expr, present);
        return k->has_bounds ? bounds_hold(&k->bounds, *value) : distinct == k->nrefs;
    }
    case SG_TEMPORAL_ORDERED: {
        size_t run = ordered_prefix(ev, a, b, k->nrefs);
        *value = (double)run;
        return k->has_bounds ? bounds_hold(&k->bounds, *value) : run == k->nrefs;
    }
    }
    return 0;
}

/* ---- hits ---- */

static void iso_time(int64_t ms, char *out, size_t size)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", (int)(ms % 1000 + 1000) % 1000);
}

typedef struct emit {
    tw_correlation_fn fn;
    void *ctx;
} emit;

/* A hit's observation for a correlation built on the one that fired: queued, and processed once the
 * firing group is done with (processing may evict groups). */
static void enqueue(tw_correlator *c, size_t corr, const tw_buf *key, obs *o, unsigned depth)
{
    if (c->nq == c->capq) {
        size_t cap = c->capq ? c->capq * 2 : 16;
        chained *q = realloc(c->q, cap * sizeof *q);
        if (!q) {
            tw__corr_obs_free(o);
            return;
        }
        c->q = q;
        c->capq = cap;
    }
    char *k = malloc(key->len + 1);
    if (!k) {
        tw__corr_obs_free(o);
        return;
    }
    if (key->len)
        memcpy(k, key->data, key->len);
    c->q[c->nq++] = (chained){corr, k, key->len, *o, depth};
}

/* A hit's id, derived from what made it (correlation, group, the window's events): the same window
 * decided again (after a rollback, or a restart from state saved before the hit) gives the same id,
 * so its alert has the same idempotency key. */
static void hit_id(const tw_correlator *c, const group *g, const window *w, char out[40])
{
    const char *name = c->s->rules[g->corr]->info.name;
    uint64_t h1 = tw__hash_bytes(name, strlen(name), 0x51c0ffeeULL), h2 = h1 ^ 0x9e3779b97f4a7c15ULL;
    h1 = tw__hash_bytes(g->key, g->klen, h1);
    h2 = tw__hash_bytes(g->key, g->klen, h2 + 1);
    for (size_t i = w->a; i <= w->b; i++) {
        const obs *o = &g->ev[i];
        h1 = tw__hash_bytes(&o->t, sizeof o->t, h1 + o->ref);
        h2 = tw__hash_bytes(&o->t, sizeof o->t, h2 + o->ref + 7);
        if (o->eid) {
            h1 = tw__hash_bytes(o->eid, strlen(o->eid), h1);
            h2 = tw__hash_bytes(o->eid, strlen(o->eid), h2 + 3);
        }
    }
    snprintf(out, 40, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(h1 >> 32), (unsigned)(h1 >> 16) & 0xffff,
             (unsigned)h1 & 0xfff, (unsigned)((h2 >> 48) & 0x3fff) | 0x8000, (unsigned long long)(h2 & 0xffffffffffffULL));
}

/* Reports a hit of correlation `corr` over g->ev[w.a..w.b], feeds the correlations built on it. */
static void fire(tw_correlator *c, group *g, const window *w, const emit *e, unsigned depth)
{
    const sg_rule *r = c->s->rules[g->corr];
    const sg_corr *k = r->corr;
    const char *names[TW_SIGMA_REFS_MAX], *vals[TW_SIGMA_REFS_MAX], *eids[16];
    char *owned[TW_SIGMA_REFS_MAX];
    size_t ng = k->ngroup, ne = 0;
    for (size_t i = 0; i < ng; i++) {
        size_t n = 0;
        const char *v = key_value(g->key, g->klen, i, &n);
        names[i] = k->group[i];
        owned[i] = v ? strndup(v, n) : NULL;
        vals[i] = owned[i];
    }
    for (size_t i = w->a; i <= w->b && ne < 16; i++)
        if (g->ev[i].eid)
            eids[ne++] = g->ev[i].eid;
    char id[40], t0[40], t1[40];
    hit_id(c, g, w, id);
    iso_time(g->ev[w->a].t, t0, sizeof t0);
    iso_time(g->ev[w->b].t, t1, sizeof t1);
    tw_buf j = TW_BUF_INIT;
    int ok = tw__buf_printf(&j, "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"Sigma Correlation\","
                               "\"source\":\"trailwatch.sigma\",\"account\":\"\",\"time\":\"%s\",\"region\":\"\","
                               "\"resources\":[],\"detail\":{\"name\":", id, t1) == TW_OK;
    ok = ok && tw__json_write_string(&j, r->info.name, strlen(r->info.name)) == TW_OK;
    ok = ok && tw__buf_puts(&j, ",\"title\":") == TW_OK && tw__json_write_string(&j, r->info.title, strlen(r->info.title)) == TW_OK;
    ok = ok && tw__buf_puts(&j, ",\"id\":") == TW_OK && tw__json_write_string(&j, r->info.id, strlen(r->info.id)) == TW_OK;
    ok = ok && tw__buf_printf(&j, ",\"type\":\"%s\",\"level\":\"%s\",\"severity\":\"%s\",\"timespan_ms\":%lld,"
                                 "\"value\":%.17g,\"first\":\"%s\",\"last\":\"%s\",\"count\":%zu,\"group\":{",
                             r->info.corr_type, r->info.level, r->info.severity, (long long)k->timespan_ms,
                             w->value, t0, t1, w->b - w->a + 1) == TW_OK;
    for (size_t i = 0; ok && i < ng; i++) {
        ok = (!i || tw__buf_putc(&j, ',') == TW_OK) && tw__json_write_string(&j, names[i], strlen(names[i])) == TW_OK &&
             tw__buf_putc(&j, ':') == TW_OK &&
             (vals[i] ? tw__json_write_string(&j, vals[i], strlen(vals[i])) : tw__buf_puts(&j, "null")) == TW_OK;
    }
    ok = ok && tw__buf_puts(&j, "},\"rules\":[") == TW_OK;
    for (size_t i = 0; ok && i < k->nrefs; i++) {
        const char *n = c->s->rules[k->ref_rule[i]]->info.name;
        ok = (!i || tw__buf_putc(&j, ',') == TW_OK) && tw__json_write_string(&j, n, strlen(n)) == TW_OK;
    }
    ok = ok && tw__buf_puts(&j, "],\"events\":[") == TW_OK;
    for (size_t i = 0; ok && i < ne; i++)
        ok = (!i || tw__buf_putc(&j, ',') == TW_OK) && tw__json_write_string(&j, eids[i], strlen(eids[i])) == TW_OK;
    ok = ok && tw__buf_puts(&j, "]}}") == TW_OK;
    c->st.hits++;
    if (ok && e->fn) {
        tw_correlation_hit h = {g->corr, &r->info, g->ev[w->a].t, g->ev[w->b].t, w->value, ng, names, vals, ne,
                                eids, j.data, j.len};
        e->fn(e->ctx, &h);
    }
    /* correlations built on this one: the hit is their observation, grouped by the names they use */
    for (size_t d = 0; depth < TW_SIGMA_CHAIN_MAX && d < c->s->n; d++) {
        const sg_rule *up = c->s->rules[d];
        if (!up->corr || up->refused)
            continue;
        for (size_t ref = 0; ref < up->corr->nrefs; ref++) {
            if ((size_t)up->corr->ref_rule[ref] != g->corr)
                continue;
            tw_buf key = TW_BUF_INIT;
            int kok = 1;
            for (size_t gi = 0; kok && gi < up->corr->ngroup; gi++) {
                const char *want = up->corr->field_of[gi][ref], *v = NULL;
                for (size_t x = 0; x < ng; x++)
                    if (strcmp(names[x], want) == 0)
                        v = vals[x];
                kok = key_add(&key, v, v ? strlen(v) : 0);
            }
            obs o = {g->ev[w->b].t, (uint32_t)ref, 0, 0, NULL, strdup(id)};
            if (kok)
                enqueue(c, d, &key, &o, depth + 1);
            else
                tw__corr_obs_free(&o);
            tw__buf_free(&key);
        }
    }
    tw__buf_free(&j);
    for (size_t i = 0; i < ng; i++)
        free(owned[i]);
}

/* Drops observations ev[0..n) (they were used, or are too old to count). */
static void forget(tw_correlator *c, group *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tw__corr_obs_release(c, &g->ev[i]);
    memmove(g->ev, g->ev + n, (g->n - n) * sizeof *g->ev);
    g->n -= n;
    tw__corr_mark_dirty(c, g);
}

/* Closing mode: decide every window of g that ended before wm. */
static void close_windows(tw_correlator *c, group *g, int64_t wm, const emit *e, unsigned depth)
{
    const sg_corr *k = corr_of(c, g->corr);
    while (g->n) {
        if (g->wstart == INT64_MIN || g->wstart > g->ev[0].t)
            g->wstart = g->ev[0].t;
        int64_t end = g->wstart + k->timespan_ms;
        if (end >= wm)
            return;
        tw__corr_note(c, g);
        size_t b = 0;
        while (b + 1 < g->n && g->ev[b + 1].t <= end)
            b++;
        window w = {0, b, 0};
        if (window_holds(c, k, g, 0, b, &w.value))
            fire(c, g, &w, e, depth);
        forget(c, g, b + 1);
        g->wstart = INT64_MIN;
    }
}

/* Monotone mode: any window of one timespan holding the observation at index at. */
static void check_windows(tw_correlator *c, group *g, size_t at, const emit *e, unsigned depth)
{
    const sg_corr *k = corr_of(c, g->corr);
    int64_t t = g->ev[at].t, span = k->timespan_ms;
    size_t a = at;
    while (a > 0 && g->ev[a - 1].t >= t - span)
        a--;
    for (size_t i = a; i <= at; i++) {
        if (i > a && g->ev[i].t == g->ev[i - 1].t)
            continue; /* the same window as the one before */
        size_t b = at;
        while (b + 1 < g->n && g->ev[b + 1].t <= g->ev[i].t + span)
            b++;
        window w = {i, b, 0};
        if (window_holds(c, k, g, i, b, &w.value)) {
            fire(c, g, &w, e, depth);
            forget(c, g, b + 1); /* the group starts over after the window */
            return;
        }
    }
}

/* One observation for correlation corr, group key. Takes o's strings. */
static void process(tw_correlator *c, size_t corr, const char *key, size_t klen, obs *o, const emit *e,
                    unsigned depth)
{
    const sg_corr *k = corr_of(c, corr);
    c->st.events++;
    if (!c->o.batch && c->max_seen != INT64_MIN && o->t < c->max_seen - c->o.lateness_ms) {
        c->st.late++;
        tw__corr_obs_free(o);
        return;
    }
    if (c->max_seen == INT64_MIN || o->t > c->max_seen)
        c->max_seen = o->t;
    group *g = tw__corr_group(c, corr, key, klen, 1);
    if (g)
        tw__corr_note(c, g);
    obs *grown = g && g->n == g->cap ? realloc(g->ev, (g->cap ? g->cap * 2 : 8) * sizeof *g->ev) : NULL;
    if (grown) {
        g->ev = grown;
        g->cap = g->cap ? g->cap * 2 : 8;
    }
    if (!g || g->n == g->cap) {
        if (g)
            tw__corr_group_drop(c, g, 1); /* out of memory: this group's state is lost, nothing else */
        tw__corr_obs_free(o);
        return;
    }
    /* keep sorted by time: arrivals are mostly in order */
    size_t at = g->n;
    while (at > 0 && g->ev[at - 1].t > o->t)
        at--;
    /* the same event again (a sender's retry, CloudTrail's repeat): same time, rule and id */
    for (size_t i = at; o->eid && i > 0 && g->ev[i - 1].t == o->t; i--)
        if (g->ev[i - 1].ref == o->ref && g->ev[i - 1].eid && strcmp(g->ev[i - 1].eid, o->eid) == 0) {
            c->st.duplicates++;
            tw__corr_obs_free(o);
            return;
        }
    memmove(g->ev + at + 1, g->ev + at, (g->n - at) * sizeof *g->ev);
    tw__corr_obs_taken(c, o);
    g->ev[at] = *o;
    g->n++;
    tw__corr_mark_dirty(c, g);
    if (g->n > c->o.max_group_events) {
        forget(c, g, 1);
        c->st.evicted++;
        if (at == 0)
            return;
        at--;
    }
    int64_t horizon = c->max_seen - (c->o.batch ? 0 : c->o.lateness_ms);
    if (closing_mode(k)) {
        close_windows(c, g, horizon, e, depth);
    } else {
        check_windows(c, g, at, e, depth);
        /* what no future window can reach any more */
        size_t old = 0;
        while (old < g->n && g->ev[old].t < horizon - k->timespan_ms)
            old++;
        if (old)
            forget(c, g, old);
    }
    if (!g->n)
        tw__corr_group_drop(c, g, 0);
}

/* Processes the observations hits queued, in order (they may queue more, up the chain). */
static void drain(tw_correlator *c, const emit *e)
{
    for (size_t i = 0; i < c->nq; i++) {
        chained q = c->q[i];
        process(c, q.corr, q.key, q.klen, &q.o, e, q.depth);
        free(q.key);
    }
    c->nq = 0;
}

/* ---- reading a match ---- */

/* "2021-07-28T12:34:56Z", with optional fraction and offset, as ms since the epoch; 0 when not one. */
static int parse_time(const char *s, size_t n, int64_t *out)
{
    char buf[64];
    if (n < 19 || n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return 0;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int64_t off = 0;
    if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return 0;
        off = (hh * 60 + mm) * 60000LL * (*p == '+' ? 1 : -1);
    } else if (*p != 'Z' && *p != '\0') {
        return 0;
    }
    *out = (int64_t)timegm(&tm) * 1000 + ms - off;
    return 1;
}

typedef struct first_val {
    const char *s;
    size_t n;
    int type;
    int found;
} first_val;

/* The first scalar a capture recorded (an object or array marks presence; its values follow). */
static void take_first(void *ctx, const tw__value *v)
{
    first_val *f = ctx;
    if (f->found || v->type == TW_JSON_OBJECT || v->type == TW_JSON_ARRAY)
        return;
    f->found = 1;
    f->type = v->type;
    f->s = v->s;
    f->n = v->len;
}

static first_val capture_first(tw_matcher *m, uint32_t id)
{
    first_val f = {NULL, 0, 0, 0};
    tw__matcher_capture(m, id, take_first, &f);
    if (f.found && f.type == TW_JSON_NULL)
        f.found = 0;
    return f;
}

void tw_correlator_input_free(tw_correlator_input *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->n; i++) {
        free(in->v[i].key);
        tw__corr_obs_free(&in->v[i].o);
    }
    free(in->v);
    free(in);
}

static int input_add(tw_correlator_input *in, size_t corr, const tw_buf *key, obs *o)
{
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 8;
        in_entry *v = realloc(in->v, cap * sizeof *v);
        if (!v)
            return 0;
        in->v = v;
        in->cap = cap;
    }
    char *k = malloc(key->len + 1);
    if (!k)
        return 0;
    if (key->len)
        memcpy(k, key->data, key->len);
    k[key->len] = '\0';
    in->v[in->n++] = (in_entry){corr, k, key->len, *o};
    return 1;
}

tw_status tw_correlator_prepare(const tw_sigma *s, tw_matcher *m, const tw_match_result *res, int64_t now_ms,
                                tw_correlator_input **io, tw_error *err)
{
    if (!res->count || !s->users)
        return TW_OK;
    tw_correlator_input *in = *io;
    int timed = 0;
    int64_t t = now_ms;
    const char *eid = NULL;
    size_t eidn = 0;
    for (size_t i = 0; i < res->count; i++) {
        long ri = tw_sigma_of_ruleset(s, res->rules[i]);
        if (ri < 0 || !s->nusers[ri])
            continue;
        if (!in) {
            if (!(in = calloc(1, sizeof *in)))
                return tw__err(err, TW_ENOMEM, "out of memory");
            in->s = s;
            *io = in;
        }
        if (!timed) {
            first_val tv = capture_first(m, s->cap_time), iv = capture_first(m, s->cap_id);
            if (!(tv.found && tv.type == TW_JSON_STRING && parse_time(tv.s, tv.n, &t)))
                t = now_ms;
            if (iv.found) {
                eid = iv.s;
                eidn = iv.n;
            } else if (res->id) {
                eid = res->id;
                eidn = res->id_len;
            }
            timed = 1;
        }
        for (size_t u = 0; u < s->nusers[ri]; u++) {
            size_t corr = s->users[ri][u];
            const sg_corr *k = s->rules[corr]->corr;
            size_t ref = 0;
            while (ref < k->nrefs && k->ref_rule[ref] != ri)
                ref++;
            tw_buf key = TW_BUF_INIT;
            int ok = 1;
            for (size_t g = 0; ok && g < k->ngroup; g++) {
                first_val f = capture_first(m, k->cap[g * k->nrefs + ref]);
                ok = key_add(&key, f.found ? f.s : NULL, f.n);
            }
            obs o = {t, (uint32_t)ref, 0, 0, NULL, eid ? strndup(eid, eidn) : NULL};
            if (k->value_field[ref]) {
                first_val f = capture_first(m, k->vcap[ref]);
                if (f.found) {
                    o.value = strndup(f.s, f.n);
                    char *end;
                    char tmp[64];
                    if (f.n < sizeof tmp && (f.type == TW_JSON_NUMBER || f.type == TW_JSON_STRING)) {
                        memcpy(tmp, f.s, f.n);
                        tmp[f.n] = '\0';
                        double d = strtod(tmp, &end);
                        if (end != tmp && !*end && isfinite(d)) {
                            o.has_num = 1;
                            o.num = d;
                        }
                    }
                }
            }
            ok = ok && input_add(in, corr, &key, &o);
            tw__buf_free(&key);
            if (!ok) {
                tw__corr_obs_free(&o);
                return tw__err(err, TW_ENOMEM, "out of memory");
            }
        }
    }
    return TW_OK;
}

/* The correlation of c's rules that is in->s's correlation corr (same name, same definition), or -1:
 * input prepared under the configuration before a reload. */
static long map_corr(const tw_correlator *c, const tw_sigma *from, size_t corr)
{
    if (from == c->s)
        return (long)corr;
    const char *name = from->rules[corr]->info.name;
    for (size_t i = 0; i < c->s->n; i++) {
        const sg_rule *r = c->s->rules[i];
        if (!r->corr || r->refused || strcmp(r->info.name, name) != 0)
            continue;
        char a[40], b[40];
        tw__corr_signature(from, corr, a, sizeof a);
        tw__corr_signature(c->s, i, b, sizeof b);
        return strcmp(a, b) == 0 ? (long)i : -1;
    }
    return -1;
}

tw_status tw_correlator_apply(tw_correlator *c, tw_correlator_input *in, tw_correlation_fn fn, void *ctx,
                              tw_error *err)
{
    (void)err;
    if (!in)
        return TW_OK;
    emit e = {fn, ctx};
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < in->n; i++) {
        in_entry *x = &in->v[i];
        long corr = map_corr(c, in->s, x->corr);
        if (corr < 0) {
            tw__corr_obs_free(&x->o);
        } else if (c->o.batch) {
            if (c->npend == c->cappend) {
                size_t cap = c->cappend ? c->cappend * 2 : 256;
                pending *p = realloc(c->pend, cap * sizeof *p);
                if (!p) {
                    tw__corr_obs_free(&x->o);
                    continue;
                }
                c->pend = p;
                c->cappend = cap;
            }
            c->pend[c->npend++] = (pending){x->o.t, c->seq++, (size_t)corr, x->key, x->klen, x->o};
            x->key = NULL;
        } else {
            process(c, (size_t)corr, x->key, x->klen, &x->o, &e, 0);
            drain(c, &e);
        }
        memset(&x->o, 0, sizeof x->o);   /* taken */
    }
    pthread_mutex_unlock(&c->lock);
    return TW_OK;
}

tw_status tw_correlator_feed(tw_correlator *c, tw_matcher *m, const tw_match_result *res, int64_t now_ms,
                             tw_correlation_fn fn, void *ctx, tw_error *err)
{
    tw_correlator_input *in = NULL;
    tw_status rc = tw_correlator_prepare(c->s, m, res, now_ms, &in, err);
    if (!rc)
        rc = tw_correlator_apply(c, in, fn, ctx, err);
    tw_correlator_input_free(in);
    return rc;
}

/* Closes windows before wm in every closing-mode group. */
static void sweep(tw_correlator *c, int64_t wm, const emit *e)
{
    for (size_t b = 0; b < c->nbuckets; b++)
        for (group *g = c->buckets[b], *nx; g; g = nx) {
            nx = g->hnext;
            if (!closing_mode(corr_of(c, g->corr)))
                continue;
            close_windows(c, g, wm, e, 0);
            if (!g->n)
                tw__corr_group_drop(c, g, 0);
        }
}

tw_status tw_correlator_tick(tw_correlator *c, int64_t now_ms, tw_correlation_fn fn, void *ctx, tw_error *err)
{
    (void)err;
    emit e = {fn, ctx};
    pthread_mutex_lock(&c->lock);
    if (!c->o.batch) {
        int64_t newest = c->max_seen == INT64_MIN || now_ms > c->max_seen ? now_ms : c->max_seen;
        sweep(c, newest - c->o.lateness_ms, &e);
        drain(c, &e);
    }
    pthread_mutex_unlock(&c->lock);
    return TW_OK;
}

static int cmp_pending(const void *a, const void *b)
{
    const pending *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

tw_status tw_correlator_finish(tw_correlator *c, tw_correlation_fn fn, void *ctx, tw_error *err)
{
    (void)err;
    emit e = {fn, ctx};
    pthread_mutex_lock(&c->lock);
    if (c->npend) {
        qsort(c->pend, c->npend, sizeof *c->pend, cmp_pending);
        for (size_t i = 0; i < c->npend; i++) {
            pending *p = &c->pend[i];
            /* closing windows that ended before this observation, in time order */
            sweep(c, p->t, &e);
            drain(c, &e);
            process(c, p->corr, p->key ? p->key : "", p->klen, &p->o, &e, 0);
            drain(c, &e);
            free(p->key);
        }
        c->npend = 0;
    }
    /* every window is over: decide them, up the chains */
    for (unsigned round = 0; round <= TW_SIGMA_CHAIN_MAX; round++) {
        sweep(c, INT64_MAX, &e);
        if (!c->nq)
            break;
        drain(c, &e);
    }
    pthread_mutex_unlock(&c->lock);
    return TW_OK;
}

/* ---- life ---- */

void tw__corr_signature(const tw_sigma *s, size_t corr, char *out, size_t size)
{
    const sg_rule *r = s->rules[corr];
    const sg_corr *k = r->corr;
    tw_buf b = TW_BUF_INIT;
    tw__buf_printf(&b, "%s|%s|%lld|%d|%g|%d|%g|%d|%d|%g|", r->info.name, r->info.corr_type, (long long)k->timespan_ms,
                  k->bounds.has_lo, k->bounds.lo, k->bounds.has_hi, k->bounds.hi, k->bounds.lo_incl,
                  k->bounds.has_neq, k->bounds.neq);
    for (size_t i = 0; i < k->nrefs; i++)
        tw__buf_printf(&b, "r%s|", s->rules[k->ref_rule[i]]->info.name);
    for (size_t g = 0; g < k->ngroup; g++)
        for (size_t i = 0; i < k->nrefs; i++)
            tw__buf_printf(&b, "g%s|", k->field_of[g][i]);
    tw__buf_printf(&b, "f%s", k->field ? k->field : "");
    snprintf(out, size, "%016llx", (unsigned long long)tw__hash_bytes(b.data ? b.data : "", b.len, 7));
    tw__buf_free(&b);
}

tw_status tw_correlator_new(const tw_sigma *s, const tw_ruleset *rs, const tw_correlator_opts *o,
                            tw_correlator **out, tw_error *err)
{
    *out = NULL;
    if (!s->linked)
        return tw__err(err, TW_EINVAL, "Sigma rules must be added to the rule set before correlating");
    tw_correlator *c = calloc(1, sizeof *c);
    if (!c)
        return tw__err(err, TW_ENOMEM, "out of memory");
    c->s = s;
    c->rs = rs;
    if (o)
        c->o = *o;
    else
        tw_correlator_opts_default(&c->o);
    if (!c->o.max_groups)
        c->o.max_groups = 1;
    if (!c->o.max_group_events)
        c->o.max_group_events = 1;
    c->max_seen = INT64_MIN;
    pthread_mutex_init(&c->lock, NULL);
    if (!rehash(c))
        goto nomem;
    if (c->o.state_path) {
        tw_status rc = tw__corr_store_open(c, err);
        if (rc) {
            tw_correlator_free(c);
            return rc;
        }
    }
    *out = c;
    return TW_OK;
nomem:
    tw_correlator_free(c);
    return tw__err(err, TW_ENOMEM, "out of memory");
}

tw_status tw_correlator_save(tw_correlator *c, tw_error *err)
{
    if (!c->db)
        return TW_OK;
    pthread_mutex_lock(&c->lock);
    tw_status rc = tw__corr_store_save(c, err);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void tw_correlator_free(tw_correlator *c)
{
    if (!c)
        return;
    if (c->txn)
        tw_correlator_commit(c);
    if (c->db) {
        tw_error e;
        (void)tw_correlator_save(c, &e);
        tw__corr_store_close(c);
    }
    while (c->lru_head)
        tw__corr_group_drop(c, c->lru_head, 0);
    for (size_t i = 0; i < c->npend; i++) {
        free(c->pend[i].key);
        tw__corr_obs_free(&c->pend[i].o);
    }
    free(c->pend);
    for (size_t i = 0; i < c->nq; i++) {
        free(c->q[i].key);
        tw__corr_obs_free(&c->q[i].o);
    }
    free(c->q);
    free(c->buckets);
    tw__corr_txn_free(c);
    for (size_t i = 0; i < c->ndeleted; i++)
        free(c->deleted[i]);
    free(c->deleted);
    free(c->deleted_len);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void tw_correlator_stats_get(tw_correlator *c, tw_correlator_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    out->groups = c->ngroups;
    pthread_mutex_unlock(&c->lock);
}
