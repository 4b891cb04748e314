/* web/rules.c: the Rules page's calls: each rule with its pattern, matches per minute and hour, last
 * match and open storm-control windows (GET /api/rules), and a pattern tested against a pasted event
 * (POST /api/test-pattern, the TestEventPattern logic, which also takes a raw CloudTrail record). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/hash.h"
#include "json/json_int.h"
#include "outbox/store.h"
#include "web/web_int.h"

#define MINUTES 60
#define HOURS 48

typedef struct rule_stat {
    char *name;
    uint64_t total;
    int64_t last_ms;
    int64_t min_stamp[MINUTES], hour_stamp[HOURS];
    uint32_t per_min[MINUTES], per_hour[HOURS];
} rule_stat;

struct tw__rule_stats {
    pthread_mutex_t lock;
    rule_stat **slots;             /* open addressing by name */
    size_t cap, n;
};

tw_status tw__rule_stats_new(tw__rule_stats **out)
{
    tw__rule_stats *rs = calloc(1, sizeof *rs);
    if (!rs || !(rs->slots = calloc(64, sizeof *rs->slots))) {
        free(rs);
        return TW_ENOMEM;
    }
    rs->cap = 64;
    pthread_mutex_init(&rs->lock, NULL);
    *out = rs;
    return TW_OK;
}

void tw__rule_stats_free(tw__rule_stats *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->cap; i++)
        if (rs->slots[i]) {
            free(rs->slots[i]->name);
            free(rs->slots[i]);
        }
    free(rs->slots);
    pthread_mutex_destroy(&rs->lock);
    free(rs);
}

static size_t slot_of(rule_stat **slots, size_t cap, const char *name)
{
    size_t i = (size_t)tw__hash_bytes(name, strlen(name), 0) & (cap - 1);
    while (slots[i] && strcmp(slots[i]->name, name) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

static int grow(tw__rule_stats *rs)
{
    size_t cap = rs->cap * 2;
    rule_stat **slots = calloc(cap, sizeof *slots);
    if (!slots)
        return 0;
    for (size_t i = 0; i < rs->cap; i++)
        if (rs->slots[i])
            slots[slot_of(slots, cap, rs->slots[i]->name)] = rs->slots[i];
    free(rs->slots);
    rs->slots = slots;
    rs->cap = cap;
    return 1;
}

/* Under rs->lock. NULL when the rule is unknown and create is 0 (or memory ran out). */
static rule_stat *find(tw__rule_stats *rs, const char *rule, int create)
{
    size_t i = slot_of(rs->slots, rs->cap, rule);
    if (rs->slots[i] || !create)
        return rs->slots[i];
    if (rs->n >= TW_WEB_RULE_STATS_MAX)
        return NULL;
    if (2 * (rs->n + 1) > rs->cap) {
        if (!grow(rs))
            return NULL;
        i = slot_of(rs->slots, rs->cap, rule);
    }
    rule_stat *st = calloc(1, sizeof *st);
    if (!st || !(st->name = strdup(rule))) {
        free(st);
        return NULL;
    }
    for (int k = 0; k < MINUTES; k++)
        st->min_stamp[k] = -1;
    for (int k = 0; k < HOURS; k++)
        st->hour_stamp[k] = -1;
    rs->slots[i] = st;
    rs->n++;
    return st;
}

void tw__rule_stats_hit(tw__rule_stats *rs, const char *rule, int64_t now_ms)
{
    int64_t minute = now_ms / 60000, hour = now_ms / 3600000;
    pthread_mutex_lock(&rs->lock);
    rule_stat *st = find(rs, rule, 1);
    if (st) {
        st->total++;
        st->last_ms = now_ms;
        size_t m = (size_t)(minute % MINUTES), h = (size_t)(hour % HOURS);
        if (st->min_stamp[m] != minute) {
            st->min_stamp[m] = minute;
            st->per_min[m] = 0;
        }
        st->per_min[m]++;
        if (st->hour_stamp[h] != hour) {
            st->hour_stamp[h] = hour;
            st->per_hour[h] = 0;
        }
        st->per_hour[h]++;
    }
    pthread_mutex_unlock(&rs->lock);
}

static void write_stats(tw_buf *b, tw__rule_stats *rs, const char *rule, int64_t now_ms)
{
    int64_t minute = now_ms / 60000, hour = now_ms / 3600000;
    pthread_mutex_lock(&rs->lock);
    const rule_stat *st = find(rs, rule, 0);
    if (st && st->total)
        tw__buf_printf(b, ",\"matches\":%llu,\"last_match\":%lld", (unsigned long long)st->total, (long long)st->last_ms);
    else
        tw__buf_puts(b, ",\"matches\":0,\"last_match\":null");
    tw__buf_puts(b, ",\"per_minute\":[");
    for (int64_t m = minute - MINUTES + 1; m <= minute; m++) {
        size_t k = (size_t)(m % MINUTES);
        tw__buf_printf(b, "%s%u", m > minute - MINUTES + 1 ? "," : "", st && st->min_stamp[k] == m ? st->per_min[k] : 0);
    }
    tw__buf_puts(b, "],\"per_hour\":[");
    for (int64_t h = hour - HOURS + 1; h <= hour; h++) {
        size_t k = (size_t)(h % HOURS);
        tw__buf_printf(b, "%s%u", h > hour - HOURS + 1 ? "," : "", st && st->hour_stamp[k] == h ? st->per_hour[k] : 0);
    }
    tw__buf_putc(b, ']');
    pthread_mutex_unlock(&rs->lock);
}

/* ---- open storm windows (from the store) ---- */

typedef struct storm_list {
    tw_buf rows;                   /* JSON objects, each prefixed by its rule name and a NUL */
    int failed;
} storm_list;

static int storm_row(void *ctx, const tw_storm_row *r)
{
    storm_list *sl = ctx;
    tw_buf *b = &sl->rows;
    /* The key starts with the target's name and a newline (engine.c: storm_key). */
    const char *nl = strchr(r->key, '\n');
    int bad = tw__buf_append(b, r->rule, strlen(r->rule) + 1) || tw__buf_puts(b, "{\"target\":") ||
              tw__json_write_string(b, r->key, nl ? (size_t)(nl - r->key) : 0) || tw__buf_puts(b, ",\"key\":") ||
              tw__json_write_string(b, nl ? nl + 1 : r->key, strlen(nl ? nl + 1 : r->key)) ||
              tw__buf_printf(b, ",\"window_end\":%lld,\"suppressed\":%llu}", (long long)r->window_end_ms,
                            (unsigned long long)r->suppressed) ||
              tw__buf_putc(b, '\0');
    sl->failed |= bad;
    return bad;
}

static void write_storm(tw_buf *b, const tw_rule_cfg *r, const storm_list *sl)
{
    if (r->storm.window_ms <= 0) {
        tw__buf_puts(b, ",\"storm\":null");
        return;
    }
    tw__buf_printf(b, ",\"storm\":{\"window_ms\":%lld,\"keys\":[", (long long)r->storm.window_ms);
    for (uint32_t k = 0; k < r->storm.nkeys; k++) {
        if (k)
            tw__buf_putc(b, ',');
        tw__json_write_string(b, r->storm.keys[k], strlen(r->storm.keys[k]));
    }
    tw__buf_puts(b, "],\"open\":[");
    int n = 0;
    for (size_t at = 0; at < sl->rows.len;) {
        const char *rule = sl->rows.data + at;
        const char *obj = rule + strlen(rule) + 1;
        if (strcmp(rule, r->name) == 0) {
            if (n++)
                tw__buf_putc(b, ',');
            tw__buf_puts(b, obj);
        }
        at = (size_t)(obj - sl->rows.data) + strlen(obj) + 1;
    }
    tw__buf_puts(b, "]}");
}

void tw__web_rules(tw_web *w, const tw_config *cfg, tw_http_resp *resp)
{
    int64_t now = tw__now_ms();
    storm_list sl = {TW_BUF_INIT, 0};
    tw_error err;
    int any_storm = 0;
    for (uint32_t i = 0; i < cfg->nrules; i++)
        any_storm |= cfg->rules[i].storm.window_ms > 0;
    if (any_storm) {
        tw_store *st = tw__web_store_lock(w, &err);
        if (st)
            tw__store_storm_due(st, INT64_MAX, TW_WEB_STORM_SHOWN, storm_row, &sl, &err);
        tw__web_store_unlock(w);
    }
    tw__http_resp_json(resp, 200, "{\"now\":%lld,\"rules\":[", (long long)now);
    tw_buf *b = &resp->body;
    for (uint32_t i = 0; i < cfg->nrules; i++) {
        const tw_rule_cfg *r = &cfg->rules[i];
        tw__buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        tw__json_write_string(b, r->name, strlen(r->name));
        tw__buf_puts(b, ",\"description\":");
        tw__json_write_string(b, r->description, strlen(r->description));
        tw__buf_puts(b, ",\"severity\":");
        tw__json_write_string(b, r->severity, strlen(r->severity));
        tw__buf_printf(b, ",\"enabled\":%s,\"where\":", r->enabled ? "true" : "false");
        tw__json_write_string(b, r->where, strlen(r->where));
        tw__buf_puts(b, ",\"pattern\":");
        const char *pat = r->pattern_json ? r->pattern_json : "";
        tw__json_write_string(b, pat, strlen(pat));
        tw__buf_puts(b, ",\"targets\":[");
        for (uint32_t k = 0; k < r->nbindings; k++) {
            const char *t = cfg->targets[r->bindings[k].target].name;
            if (k)
                tw__buf_putc(b, ',');
            tw__json_write_string(b, t, strlen(t));
        }
        tw__buf_putc(b, ']');
        write_storm(b, r, &sl);
        write_stats(b, w->stats, r->name, now);
        tw__buf_putc(b, '}');
    }
    tw__buf_puts(b, "]}");
    tw__buf_free(&sl.rows);
}

/* ---- test a pattern ---- */

/* A member that may be given as JSON text (a string) or as JSON itself: its text, in *tmp if written. */
static const char *text_of(const tw_json *v, tw_buf *tmp, size_t *len)
{
    if (tw_json_typeof(v) == TW_JSON_STRING)
        return tw_json_string(v, len);
    if (tw_json_typeof(v) != TW_JSON_OBJECT || tw__json_write(tmp, v))
        return NULL;
    *len = tmp->len;
    return tmp->data;
}

void tw__web_test_pattern(const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp)
{
    tw_json_doc *doc = NULL;
    tw_pattern *p = NULL;
    tw_ruleset_builder *rb = NULL;
    tw_ruleset *rs = NULL;
    tw_matcher *m = NULL;
    tw_buf pt = TW_BUF_INIT, et = TW_BUF_INIT;
    tw_error err;
    tw_error_clear(&err);
    char msg[700];
    tw_limits lim = cfg->lim;
    lim.event_max = req->body_len + 1;
    if (tw_json_parse(req->body, req->body_len, &lim, &doc, &err) ||
        tw_json_typeof(tw_json_root(doc)) != TW_JSON_OBJECT) {
        snprintf(msg, sizeof msg, "the request is not a JSON object {\"pattern\": ..., \"event\": ...}%s%s",
                 doc ? "" : ": ", doc ? "" : err.msg);
        tw__web_error(resp, 400, msg);
        goto out;
    }
    size_t pl = 0, el = 0;
    const char *ptext = text_of(tw_json_get(tw_json_root(doc), "pattern"), &pt, &pl);
    const char *etext = text_of(tw_json_get(tw_json_root(doc), "event"), &et, &el);
    if (!ptext || !etext) {
        tw__web_error(resp, 400, !ptext ? "pattern: missing (JSON text or an object)"
                                        : "event: missing (JSON text or an object)");
        goto out;
    }
    if (tw_pattern_parse(ptext, pl, &cfg->lim, &p, &err)) {
        snprintf(msg, sizeof msg, "pattern: %s", err.msg);
        tw__web_error(resp, 400, msg);
        goto out;
    }
    tw_match_result res;
    if (tw_ruleset_builder_new(&cfg->lim, &rb)) {
        tw__web_error(resp, 500, "out of memory");
        goto out;
    }
    tw_pattern *given = p;
    p = NULL;                      /* the builder owns it now, even on error */
    if (tw_ruleset_builder_add(rb, "pattern", given, NULL, &err) || tw_ruleset_build(rb, &rs, &err) ||
        tw_matcher_new(rs, &m)) {
        snprintf(msg, sizeof msg, "pattern: %s", err.msg);
        tw__web_error(resp, 400, msg);
        goto out;
    }
    if (tw_match(m, etext, el, TW_EVENT_AUTO, &res, &err)) {
        snprintf(msg, sizeof msg, "event: %s", err.msg);
        tw__web_error(resp, 400, msg);
        goto out;
    }
    tw__http_resp_json(resp, 200, "{\"result\":%s,\"read_as\":\"%s\"}", res.count ? "true" : "false",
                      res.kind == TW_EVENT_CLOUDTRAIL ? "cloudtrail record (wrapped as EventBridge delivers it)"
                                                      : "event");
out:
    tw_pattern_free(p);
    tw_matcher_free(m);
    tw_ruleset_free(rs);
    tw_ruleset_builder_free(rb);
    tw_json_doc_free(doc);
    tw__buf_free(&pt);
    tw__buf_free(&et);
}
