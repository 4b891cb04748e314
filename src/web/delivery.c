/* web/delivery.c: the Delivery page's calls: outbox depth and per-target outcomes (GET /api/delivery),
 * dead letters with their reason and the destination's response (GET /api/dlq, /api/dlq/ID), and
 * redrive (POST /api/dlq/redrive: back into the outbox; the dispatcher picks them up within a second). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "json/json_int.h"
#include "outbox/store.h"
#include "web/web_int.h"

typedef struct counts {
    const tw_config *cfg;
    int64_t *dead;                 /* per configured target */
    int64_t other;                 /* of targets no longer configured */
} counts;

static void count_dead(void *ctx, const char *target, int64_t n)
{
    counts *c = ctx;
    for (uint32_t i = 0; i < c->cfg->ntargets; i++)
        if (strcmp(c->cfg->targets[i].name, target) == 0) {
            c->dead[i] = n;
            return;
        }
    c->other += n;
}

static uint64_t counter(tw_metrics *m, const char *target, const char *outcome)
{
    char lbl[256], lbl2[320];
    tw__metrics_label(lbl, sizeof lbl, "target", target);
    snprintf(lbl2, sizeof lbl2, "%s,outcome=\"%s\"", lbl, outcome);
    /* The same series the dispatcher counts into (created here at 0 when it has not yet). */
    tw_counter *c = tw__metrics_counter(m, TW_METRIC_DELIVERIES, TW_METRIC_DELIVERIES_HELP, lbl2);
    return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

void tw__web_delivery(tw_web *w, const tw_config *cfg, tw_http_resp *resp)
{
    counts c = {cfg, calloc(cfg->ntargets ? cfg->ntargets : 1, sizeof(int64_t)), 0};
    if (!c.dead) {
        tw__web_error(resp, 500, "out of memory");
        return;
    }
    tw_error err;
    tw_store *st = tw__web_store_lock(w, &err);
    tw_status rc = st ? tw__store_dlq_counts(st, count_dead, &c, &err) : TW_EDB;
    tw__web_store_unlock(w);
    if (rc) {
        tw__web_error(resp, 500, err.msg);
        free(c.dead);
        return;
    }
    int64_t depth = w->env.outbox_depth ? w->env.outbox_depth(w->env.ctx) : 0;
    tw__http_resp_json(resp, 200, "{\"outbox_depth\":%lld,\"dead_other_targets\":%lld,\"targets\":[", (long long)depth,
                      (long long)c.other);
    tw_buf *b = &resp->body;
    for (uint32_t i = 0; i < cfg->ntargets; i++) {
        const tw_target_cfg *t = &cfg->targets[i];
        tw__buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        tw__json_write_string(b, t->name, strlen(t->name));
        tw__buf_puts(b, ",\"kind\":");
        tw__json_write_string(b, t->ops->kind, strlen(t->ops->kind));
        tw__buf_printf(b, ",\"delivered\":%llu,\"retried\":%llu,\"dead\":%llu,\"dead_letters\":%lld}",
                      (unsigned long long)counter(w->env.metrics, t->name, "delivered"),
                      (unsigned long long)counter(w->env.metrics, t->name, "retry"),
                      (unsigned long long)counter(w->env.metrics, t->name, "dead"), (long long)c.dead[i]);
    }
    tw__buf_puts(b, "]}");
    free(c.dead);
}

/* ---- dead letters ---- */

typedef struct page {
    tw_buf *b;
    int n;
    size_t cut;                    /* bodies longer than this are cut (0: whole) */
} page;

static void write_text(tw_buf *b, const char *key, const char *s, size_t len, size_t cut)
{
    tw__buf_printf(b, ",\"%s\":", key);
    /* Bodies are whatever the destination answered: cut at a UTF-8 boundary, the writer escapes the
     * rest (invalid UTF-8 becomes U+FFFD). */
    size_t n = cut && len > cut ? cut : len;
    while (n < len && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    tw__json_write_string(b, s, n);
    if (n < len)
        tw__buf_printf(b, ",\"%s_cut\":%zu", key, len);
}

static int dl_row(void *ctx, const tw_dead_letter *dl)
{
    page *p = ctx;
    tw_buf *b = p->b;
    tw__buf_printf(b, "%s{\"id\":%lld,\"target\":", p->n++ ? "," : "", (long long)dl->id);
    tw__json_write_string(b, dl->target, strlen(dl->target));
    tw__buf_puts(b, ",\"rule\":");
    tw__json_write_string(b, dl->rule, strlen(dl->rule));
    tw__buf_puts(b, ",\"event_id\":");
    tw__json_write_string(b, dl->event_id, strlen(dl->event_id));
    write_text(b, "reason", dl->reason, strlen(dl->reason), 0);
    write_text(b, "response", dl->response, strlen(dl->response), p->cut);
    tw__buf_printf(b, ",\"created\":%lld,\"failed\":%lld,\"attempts\":%u,\"payload_bytes\":%zu", (long long)dl->created_ms,
                  (long long)dl->failed_ms, dl->attempts, dl->payload_len);
    if (!p->cut)
        write_text(b, "payload", dl->payload, dl->payload_len, 0);
    tw__buf_putc(b, '}');
    return 0;
}

void tw__web_dlq_list(tw_web *w, const tw_http_req *req, tw_http_resp *resp)
{
    char tbuf[128], bbuf[32], lbuf[16];
    const char *target = tw__web_query(req, "target", tbuf, sizeof tbuf);
    const char *before = tw__web_query(req, "before", bbuf, sizeof bbuf);
    const char *limit = tw__web_query(req, "limit", lbuf, sizeof lbuf);
    long long lim = limit ? atoll(limit) : 100;
    if (lim < 1 || lim > TW_WEB_DLQ_PAGE_MAX)
        lim = lim < 1 ? 1 : TW_WEB_DLQ_PAGE_MAX;
    tw__http_resp_json(resp, 200, "{\"dead_letters\":[");
    page p = {&resp->body, 0, TW_WEB_DLQ_BODY_SHOWN};
    tw_error err;
    tw_store *st = tw__web_store_lock(w, &err);
    tw_status rc = st ? tw__store_dlq_page(st, target && *target ? target : NULL, before ? atoll(before) : 0,
                                           (uint32_t)lim, dl_row, &p, &err)
                      : TW_EDB;
    tw__web_store_unlock(w);
    if (rc) {
        tw__web_error(resp, 500, err.msg);
        return;
    }
    tw__buf_printf(&resp->body, "],\"limit\":%lld}", lim);
}

void tw__web_dlq_show(tw_web *w, int64_t id, tw_http_resp *resp)
{
    tw__http_resp_json(resp, 200, "{\"dead_letter\":");
    page p = {&resp->body, 0, 0};
    tw_error err;
    tw_store *st = tw__web_store_lock(w, &err);
    tw_status rc = st ? tw_dlq_get(st, id, dl_row, &p, &err) : TW_EDB;
    tw__web_store_unlock(w);
    if (rc) {
        tw__web_error(resp, rc == TW_ENOTFOUND ? 404 : 500, err.msg);
        return;
    }
    tw__buf_putc(&resp->body, '}');
}

void tw__web_dlq_redrive(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp)
{
    tw_json_doc *doc = NULL;
    tw_error err;
    tw_limits lim = cfg->lim;
    lim.event_max = req->body_len + 1;
    if (tw_json_parse(req->body, req->body_len, &lim, &doc, &err) ||
        tw_json_typeof(tw_json_root(doc)) != TW_JSON_OBJECT) {
        tw_json_doc_free(doc);
        tw__web_error(resp, 400, "the request is not a JSON object {\"id\": N} or {\"all\": true, \"target\": NAME}");
        return;
    }
    const tw_json *root = tw_json_root(doc);
    const tw_json *id = tw_json_get(root, "id"), *all = tw_json_get(root, "all"), *target = tw_json_get(root, "target");
    double idv = id && tw_json_typeof(id) == TW_JSON_NUMBER ? tw_json_number(id) : 0;
    int everything = all && tw_json_typeof(all) == TW_JSON_TRUE;
    const char *tname = target && tw_json_typeof(target) == TW_JSON_STRING ? tw_json_string(target, NULL) : NULL;
    if ((idv < 1 || idv > 9e15 || idv != (double)(int64_t)idv) && !everything) {
        tw_json_doc_free(doc);
        tw__web_error(resp, 400, "say which: {\"id\": N} (a dead letter's id) or {\"all\": true} (optionally with "
                                 "\"target\")");
        return;
    }
    size_t moved = 0;
    tw_store *st = tw__web_store_lock(w, &err);
    tw_status rc = st ? tw_dlq_redrive(st, everything ? 0 : (int64_t)idv, tname, &moved, &err) : TW_EDB;
    tw__web_store_unlock(w);
    tw_json_doc_free(doc);
    if (rc) {
        tw__web_error(resp, rc == TW_ENOTFOUND ? 404 : 500, err.msg);
        return;
    }
    tw__http_resp_json(resp, 200, "{\"redriven\":%zu}", moved);
}
