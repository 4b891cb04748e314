/* web/archive.c: the archive's calls on the serve port (docs/API.md): GET /api/events (search, paged),
 * GET /api/who/RESOURCE, GET /api/events/timeline. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "json/json_int.h"
#include "outbox/store.h"
#include "trailwatch/archive.h"
#include "trailwatch/limits.h"
#include "web/web_int.h"

/* Series a timeline answers with: past it the smaller ones are summed into "(other)". */
#define TIMELINE_SERIES_MAX 50

int tw__web_archive_on(const tw_config *cfg) { return cfg->archive.enabled; }

/* The read connection (opened on first use) under w's archive lock; NULL (resp filled) when it
 * cannot be opened. */
static tw_archive *archive_lock(tw_web *w, const tw_config *cfg, tw_http_resp *resp)
{
    pthread_mutex_lock(&w->archive_lock);
    if (!w->archive) {
        char path[4096];
        tw_error err;
        tw_archive_opts o = {cfg->archive.backend == TW_ARCHIVE_CFG_POSTGRES ? TW_ARCHIVE_POSTGRES : TW_ARCHIVE_SQLITE,
                             tw__config_archive_path(cfg, path, sizeof path), cfg->archive.dsn, 1};
        if (tw_archive_open(&w->archive, &o, &err)) {
            w->archive = NULL;
            pthread_mutex_unlock(&w->archive_lock);
            char msg[TW_ERROR_MSG_MAX + 64];
            snprintf(msg, sizeof msg, "the archive cannot be read: %s", err.msg);
            tw__web_error(resp, 503, msg);
            return NULL;
        }
    }
    return w->archive;
}

static void archive_unlock(tw_web *w) { pthread_mutex_unlock(&w->archive_lock); }

/* ---- parameters ---- */

typedef struct params {
    tw_archive_query q;
    char from[64], to[64], since[32], limit[16], step[32], by[32];
    char pattern[TW_ARCHIVE_API_PARAM_MAX], resource[2048], who[2048], name[256], cursor[512];
    char msg[TW_ERROR_MSG_MAX + 64]; /* what is wrong, when parse_params fails */
} params;

static int bad(params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(params *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof p->msg, fmt, ap);
    va_end(ap);
    return 0;
}

/* Reads the query parameters the calls share into p->q. 0 when one is wrong (p->msg says which). */
static int parse_params(const tw_http_req *req, params *p)
{
    memset(&p->q, 0, sizeof p->q);
    p->msg[0] = '\0';
    const char *f = tw__web_query(req, "from", p->from, sizeof p->from);
    const char *t = tw__web_query(req, "to", p->to, sizeof p->to);
    const char *s = tw__web_query(req, "since", p->since, sizeof p->since);
    tw_error err;
    if (f && *f && tw_archive_parse_time(f, &p->q.from_ms, &err))
        return bad(p, "from: %s", err.msg);
    if (t && *t && tw_archive_parse_time(t, &p->q.to_ms, &err))
        return bad(p, "to: %s", err.msg);
    int64_t age;
    if (s && *s) {
        if (tw_archive_parse_duration(s, &age, &err))
            return bad(p, "since: %s", err.msg);
        if (f && *f)
            return bad(p, "%s", "since and from: give one of them");
        p->q.from_ms = tw__now_ms() - age;
    }
    if (p->q.to_ms && p->q.from_ms > p->q.to_ms)
        return bad(p, "%s", "from is after to");
    const char *pat = tw__web_query(req, "pattern", p->pattern, sizeof p->pattern);
    if (pat && strlen(pat) + 1 >= sizeof p->pattern)
        return bad(p, "pattern: longer than %u bytes", TW_ARCHIVE_API_PARAM_MAX - 1);
    if (pat && *pat) {
        tw_pattern *pt = NULL;
        if (tw_pattern_parse(pat, strlen(pat), NULL, &pt, &err))
            return bad(p, "pattern: %s", err.msg);
        tw_pattern_free(pt);
        p->q.pattern = pat;
    }
    const char *v = tw__web_query(req, "resource", p->resource, sizeof p->resource);
    p->q.resource = v && *v ? v : NULL;
    v = tw__web_query(req, "who", p->who, sizeof p->who);
    p->q.who = v && *v ? v : NULL;
    v = tw__web_query(req, "event_name", p->name, sizeof p->name);
    if (!v || !*v)
        v = tw__web_query(req, "name", p->name, sizeof p->name);   /* the page's spelling */
    p->q.event_name = v && *v ? v : NULL;
    v = tw__web_query(req, "cursor", p->cursor, sizeof p->cursor);
    p->q.cursor = v && *v ? v : NULL;
    p->q.limit = TW_ARCHIVE_API_LIMIT_DEFAULT;
    v = tw__web_query(req, "limit", p->limit, sizeof p->limit);
    if (v && *v) {
        char *end;
        long long l = strtoll(v, &end, 10);
        if (*end || l < 1 || l > TW_ARCHIVE_API_LIMIT_MAX)
            return bad(p, "limit: \"%.64s\" must be a number from 1 to %u", v, TW_ARCHIVE_API_LIMIT_MAX);
        p->q.limit = (size_t)l;
    }
    return 1;
}

/* An archive error as an HTTP answer: the caller's mistakes are 400s, the rest 500/503. */
static void archive_error(tw_http_resp *resp, const tw_error *err)
{
    int st = err->code == TW_EPATTERN || err->code == TW_EJSON || err->code == TW_EINVAL ? 400
             : err->code == TW_ECORRUPT ? 503 : 500;
    tw__web_error(resp, st, err->msg);
}

static void write_time(tw_buf *b, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[40];
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    tw__buf_printf(b, "\"%s.%03dZ\",\"time_ms\":%lld", s, (int)(ms % 1000 < 0 ? 0 : ms % 1000), (long long)ms);
}

static void field(tw_buf *b, const char *name, const char *v)
{
    tw__buf_printf(b, ",\"%s\":", name);
    if (v)
        tw__json_write_string(b, v, strlen(v));
    else
        tw__buf_puts(b, "null");
}

/* ---- GET /api/events ---- */

typedef struct page {
    tw_buf *out;
    size_t n;
} page;

static int one_event(void *ud, const tw_archive_row *r)
{
    page *pg = ud;
    tw_buf *b = pg->out;
    tw__buf_puts(b, pg->n++ ? ",{\"id\":" : "{\"id\":");
    tw__json_write_string(b, r->id ? r->id : "", r->id ? strlen(r->id) : 0);
    tw__buf_puts(b, ",\"time\":");
    write_time(b, r->time_ms);
    field(b, "eventName", r->event_name);
    field(b, "eventSource", r->event_source);
    field(b, "account", r->account);
    field(b, "region", r->region);
    field(b, "principal", r->principal);
    field(b, "principalType", r->principal_type);
    field(b, "sourceIPAddress", r->source_ip);
    field(b, "errorCode", r->error_code);
    /* the body as it was received: it was valid JSON when it was accepted */
    tw__buf_puts(b, ",\"event\":");
    tw__buf_append(b, r->json, r->json_len);
    tw__buf_putc(b, '}');
    return 0;
}

void tw__web_events(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp)
{
    params *p = malloc(sizeof *p);
    if (!p) {
        tw__web_error(resp, 500, "out of memory");
        return;
    }
    if (!parse_params(req, p)) {
        tw__web_error(resp, 400, p->msg);
        free(p);
        return;
    }
    tw_archive *ar = archive_lock(w, cfg, resp);
    if (!ar) {
        free(p);
        return;
    }
    char next[512] = "";
    tw_error err;
    tw__http_resp_json(resp, 200, "{\"events\":[");
    page pg = {&resp->body, 0};
    tw_status rc = tw_archive_find(ar, &p->q, one_event, &pg, next, sizeof next, &err);
    archive_unlock(w);
    if (rc) {
        archive_error(resp, &err);
    } else {
        tw__buf_puts(&resp->body, "],\"next\":");
        if (next[0])
            tw__json_write_string(&resp->body, next, strlen(next));
        else
            tw__buf_puts(&resp->body, "null");
        tw__buf_putc(&resp->body, '}');
    }
    free(p);
}

/* ---- GET /api/who/RESOURCE ---- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

typedef struct who_page {
    tw_buf *out;
    size_t n;
    int truncated;
} who_page;

static int one_entry(void *ud, const tw_archive_row *r)
{
    who_page *pg = ud;
    if (pg->n == TW_ARCHIVE_API_WHO_MAX) {
        pg->truncated = 1;
        return 1;
    }
    tw_buf *b = pg->out;
    tw__buf_puts(b, pg->n++ ? ",{\"time\":" : "{\"time\":");
    write_time(b, r->time_ms);
    field(b, "principal", r->principal);
    field(b, "principalType", r->principal_type);
    field(b, "action", r->event_name);
    field(b, "eventSource", r->event_source);
    field(b, "sourceIPAddress", r->source_ip);
    field(b, "region", r->region);
    field(b, "account", r->account);
    field(b, "errorCode", r->error_code);
    field(b, "id", r->id);
    tw__buf_putc(b, '}');
    return 0;
}

void tw__web_who(tw_web *w, const tw_config *cfg, const tw_http_req *req, const char *raw, tw_http_resp *resp)
{
    char res[2048];
    size_t o = 0;
    for (size_t i = 0; raw[i]; i++) {
        if (o + 1 >= sizeof res) {
            tw__web_error(resp, 400, "resource: longer than 2047 bytes");
            return;
        }
        if (raw[i] == '%' && hexval(raw[i + 1]) >= 0 && hexval(raw[i + 2]) >= 0) {
            res[o++] = (char)(hexval(raw[i + 1]) * 16 + hexval(raw[i + 2]));
            i += 2;
        } else {
            res[o++] = raw[i];
        }
    }
    res[o] = '\0';
    if (!o || memchr(res, '\0', o)) {
        tw__web_error(resp, 400, "resource: give an ARN or a resource id after /api/who/ (URL-encoded)");
        return;
    }
    params p;
    if (!parse_params(req, &p)) {
        tw__web_error(resp, 400, p.msg);
        return;
    }
    tw_archive *ar = archive_lock(w, cfg, resp);
    if (!ar)
        return;
    tw_error err;
    tw__http_resp_json(resp, 200, "{\"resource\":");
    tw__json_write_string(&resp->body, res, o);
    tw__buf_puts(&resp->body, ",\"entries\":[");
    who_page pg = {&resp->body, 0, 0};
    tw_status rc = tw_archive_who(ar, res, p.q.from_ms, p.q.to_ms, one_entry, &pg, &err);
    archive_unlock(w);
    if (rc) {
        archive_error(resp, &err);
        return;
    }
    tw__buf_printf(&resp->body, "],\"truncated\":%s}", pg.truncated ? "true" : "false");
}

/* ---- GET /api/events/timeline ---- */

typedef struct series {
    char *group;
    uint64_t total;
    uint64_t *counts;              /* per bucket */
} series;

typedef struct timeline {
    int64_t from, step;
    size_t nb, nser;
    series *ser;
    int oom;
} timeline;

static int one_count(void *ud, int64_t bucket_ms, const char *group, uint64_t n)
{
    timeline *t = ud;
    if (bucket_ms < t->from || (size_t)((bucket_ms - t->from) / t->step) >= t->nb)
        return 0;
    size_t b = (size_t)((bucket_ms - t->from) / t->step);
    const char *g = group ? group : "";
    series *s = NULL;
    for (size_t i = 0; i < t->nser && !s; i++)
        if (strcmp(t->ser[i].group, g) == 0)
            s = &t->ser[i];
    if (!s) {
        series *ns = realloc(t->ser, (t->nser + 1) * sizeof *ns);
        if (!ns) {
            t->oom = 1;
            return 1;
        }
        t->ser = ns;
        s = &t->ser[t->nser];
        s->group = strdup(g);
        s->counts = calloc(t->nb, sizeof *s->counts);
        s->total = 0;
        if (!s->group || !s->counts) {
            free(s->group);
            free(s->counts);
            t->oom = 1;
            return 1;
        }
        t->nser++;
    }
    s->counts[b] += n;
    s->total += n;
    return 0;
}

static int by_total(const void *a, const void *b)
{
    const series *x = a, *y = b;
    return x->total < y->total ? 1 : x->total > y->total ? -1 : strcmp(x->group, y->group);
}

void tw__web_events_timeline(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp)
{
    params *p = malloc(sizeof *p);
    if (!p) {
        tw__web_error(resp, 500, "out of memory");
        return;
    }
    timeline t = {0, 0, 0, 0, NULL, 0};
    if (!parse_params(req, p)) {
        tw__web_error(resp, 400, p->msg);
        goto out;
    }
    /* counts come from the archive's rollup by time and event name: a filter on the bodies would
     * need every event read, which the timeline does not do (GET /api/events does) */
    if (p->q.pattern || p->q.resource || p->q.who) {
        tw__web_error(resp, 400, "pattern, resource and who: the timeline counts by time and event_name only");
        goto out;
    }
    int64_t now = tw__now_ms();
    if (!p->q.to_ms)
        p->q.to_ms = now;
    if (!p->q.from_ms)
        p->q.from_ms = p->q.to_ms - 86400000;
    const char *st = tw__web_query(req, "step", p->step, sizeof p->step);
    const char *by = tw__web_query(req, "by", p->by, sizeof p->by);
    int64_t span = p->q.to_ms - p->q.from_ms;
    t.step = !st || !*st ? (span > 6 * 3600000 ? 3600000 : 60000)
             : strcmp(st, "minute") == 0 ? 60000 : strcmp(st, "hour") == 0 ? 3600000
             : strcmp(st, "day") == 0 ? 86400000 : atoll(st);
    if (t.step < 60000 || t.step % 60000) {
        tw__web_error(resp, 400, "step: minute, hour, day or a multiple of 60000 ms");
        goto out;
    }
    if (by && (!*by || strcmp(by, "total") == 0))
        by = NULL;
    if (by && strcmp(by, "source") && strcmp(by, "account") && strcmp(by, "region") && strcmp(by, "event_name")) {
        tw__web_error(resp, 400, "by: source, account, region or event_name (or none for the total)");
        goto out;
    }
    t.from = p->q.from_ms / t.step * t.step;
    t.nb = (size_t)((p->q.to_ms - t.from) / t.step + 1);
    if (t.nb > TW_ARCHIVE_API_BUCKETS_MAX) {
        char msg[160];
        snprintf(msg, sizeof msg, "from, to and step: %zu buckets, more than %u; use a larger step or a shorter range",
                 t.nb, TW_ARCHIVE_API_BUCKETS_MAX);
        tw__web_error(resp, 400, msg);
        goto out;
    }
    tw_archive *ar = archive_lock(w, cfg, resp);
    if (!ar)
        goto out;
    tw_error err;
    tw_status rc = tw_archive_counts(ar, &p->q, t.step, by, one_count, &t, &err);
    archive_unlock(w);
    if (!rc && t.oom)
        rc = tw__err(&err, TW_ENOMEM, "out of memory building the timeline");
    if (rc) {
        archive_error(resp, &err);
        goto out;
    }
    if (t.nser)
        qsort(t.ser, t.nser, sizeof *t.ser, by_total);
    if (t.nser > TIMELINE_SERIES_MAX) {
        series *other = &t.ser[TIMELINE_SERIES_MAX - 1];
        char *name = strdup("(other)");
        if (name) {
            free(other->group);
            other->group = name;
        }
        for (size_t i = TIMELINE_SERIES_MAX; i < t.nser; i++)
            for (size_t b = 0; b < t.nb; b++)
                other->counts[b] += t.ser[i].counts[b];
    }
    size_t shown = t.nser < TIMELINE_SERIES_MAX ? t.nser : TIMELINE_SERIES_MAX;
    tw_buf *o = &resp->body;
    tw__http_resp_json(resp, 200, "{\"from\":%lld,\"to\":%lld,\"step_ms\":%lld,\"by\":", (long long)t.from,
                      (long long)p->q.to_ms, (long long)t.step);
    if (by)
        tw__json_write_string(o, by, strlen(by));
    else
        tw__buf_puts(o, "null");
    tw__buf_puts(o, ",\"series\":[");
    for (size_t i = 0; i < shown; i++) {
        tw__buf_puts(o, i ? ",{\"group\":" : "{\"group\":");
        const char *k = by ? t.ser[i].group : "total";
        tw__json_write_string(o, k, strlen(k));
        tw__buf_printf(o, ",\"total\":%llu,\"points\":[", (unsigned long long)t.ser[i].total);
        size_t np = 0;
        for (size_t b = 0; b < t.nb; b++)   /* only the buckets with events: a sparse series */
            if (t.ser[i].counts[b])
                tw__buf_printf(o, "%s[%lld,%llu]", np++ ? "," : "", (long long)(t.from + (int64_t)b * t.step),
                              (unsigned long long)t.ser[i].counts[b]);
        tw__buf_puts(o, "]}");
    }
    tw__buf_puts(o, "]}");
out:
    for (size_t i = 0; i < t.nser; i++) {
        free(t.ser[i].group);
        free(t.ser[i].counts);
    }
    free(t.ser);
    free(p);
}
