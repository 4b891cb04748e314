/*
 * source/ingest.c: POST /events: a body of events (JSON lines, a JSON array, or a CloudTrail log file
 * {"Records":[...]}; gzip by Content-Encoding or by its magic bytes), each submitted to the engine.
 *
 * The answer is predictable for scripts: 200 with counts whenever the body could be read, even if some
 * lines were rejected (each reject says where: line and index); 400 when nothing could be read (empty,
 * bad gzip, not JSON at all); 413 over the size cap; 415 for a media type or encoding that is not JSON;
 * 500 when the engine could not make events durable. The server authenticated the caller already.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/gunzip.h"
#include "config/config_int.h"
#include "json/lex.h"
#include "source/batch.h"
#include "source/http.h"

typedef struct ingest {
    tw_src_batch b;
    tw_buf errors;                /* the "errors" array's members, comma-separated */
    size_t nerrors;
    tw_status oom;                /* an error report could not be written */
} ingest;

static void on_reject(void *ctx, const tw_event_where *w, const char *why)
{
    ingest *g = ctx;
    if (g->nerrors >= TW_INGEST_ERRORS_MAX)
        return;
    tw_buf *b = &g->errors;
    if ((g->nerrors && tw__buf_putc(b, ',')) ||
        tw__buf_printf(b, "{\"line\":%lu,\"index\":%lu,\"message\":", w->line, w->index) ||
        tw__src_json_text(b, why, strlen(why)) || tw__buf_putc(b, '}'))
        g->oom = TW_ENOMEM;
    g->nerrors++;
}

/* {"error":msg} (with "accepted" when accepted >= 0: events stored before the engine failed). */
static void error_body(tw_http_resp *resp, int status, const char *msg, long long accepted)
{
    tw_buf_reset(&resp->body);
    resp->status = status;
    resp->content_type = "application/json";
    if (tw__buf_puts(&resp->body, "{\"error\":") || tw__src_json_text(&resp->body, msg, strlen(msg)) ||
        (accepted >= 0 && tw__buf_printf(&resp->body, ",\"accepted\":%lld", accepted)) ||
        tw__buf_putc(&resp->body, '}')) {
        tw_buf_reset(&resp->body);
        resp->status = 500;
    }
}

/* Media types whose body may be JSON text (or gzip of it, recognised by its magic). */
static int json_media_type(const char *ct)
{
    static const char *const ok[] = {"application/json", "application/x-ndjson", "application/jsonl",
                                     "application/x-jsonlines", "application/jsonlines", "text/plain",
                                     "application/octet-stream", "application/gzip", "application/x-gzip"};
    if (!ct)
        return 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == 0)
        return 1;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i]) == n && strncasecmp(ct, ok[i], n) == 0)
            return 1;
    /* Structured syntax suffix (RFC 6839): application/cloudevents+json and the like. */
    return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Reads every event of text into the batch. Returns only the engine's (or memory) failure. */
static tw_status read_events(ingest *g, const char *text, size_t len, const tw_limits *lim, tw_error *err)
{
    tw_event_reader *r = NULL;
    tw_status rc = tw_event_reader_buffer(text, len, lim, &r, err);
    if (rc)
        return rc;
    for (;;) {
        const char *json;
        size_t n;
        tw_event_where w;
        tw_error e;
        tw_status st = tw_event_reader_next(r, &json, &n, &w, &e);
        if (st)
            tw__src_reject(&g->b, &w, e.msg);
        else if (!json)
            break;
        else if ((rc = tw__src_add(&g->b, json, n, TW_EVENT_AUTO, &w)))
            break;
    }
    /* The events' text lives in the reader: submit before freeing it. */
    if (!rc)
        rc = tw__src_flush(&g->b);
    tw_event_reader_free(r);
    if (rc && err)
        *err = g->b.err;
    return rc;
}

void tw__ingest_handle(const tw_source_ctx *ctx, const tw_http_req *req, tw_http_resp *resp)
{
    tw_limits lim;
    if (ctx->cfg)
        lim = ctx->cfg->lim;
    else
        tw_limits_default(&lim);
    size_t cap = lim.file_max < TW_INGEST_BODY_MAX ? lim.file_max : TW_INGEST_BODY_MAX;
    lim.file_max = cap;
    const char *enc = tw__http_req_header(req, "Content-Encoding");
    const char *body = req->body ? req->body : "";
    size_t len = req->body_len;
    tw_buf plain[2];
    tw__buf_init(&plain[0], cap);
    tw__buf_init(&plain[1], cap);
    ingest g;
    memset(&g, 0, sizeof g);
    tw__buf_init(&g.errors, 0);
    tw_error err;
    tw_status rc;
    size_t held[2] = {0, 0};

    if (strcmp(req->method, "POST") != 0) {
        tw__http_resp_header(resp, "Allow", "POST");
        error_body(resp, 405, "only POST is accepted", -1);
        goto out;
    }
    if (!json_media_type(tw__http_req_header(req, "Content-Type"))) {
        error_body(resp, 415, "Content-Type must be JSON (application/json, application/x-ndjson, text/plain...)", -1);
        goto out;
    }
    int gz = enc && strcasecmp(enc, "gzip") == 0;
    if (enc && *enc && !gz && strcasecmp(enc, "identity") != 0) {
        error_body(resp, 415, "unsupported Content-Encoding (gzip or none)", -1);
        goto out;
    }
    if (len > cap) {
        char msg[80];
        snprintf(msg, sizeof msg, "request body larger than %zu bytes", cap);
        error_body(resp, 413, msg, -1);
        goto out;
    }
    /* gzip by header, and one more level by magic (a .json.gz file sent with Content-Encoding: gzip). */
    for (int level = 0; level < 2 && (gz || tw__is_gzip(body, len)); level++, gz = 0) {
        if ((rc = tw__http_gunzip(ctx, body, len, cap, &plain[level], &held[level], &err))) {
            error_body(resp, rc == TW_ETOOBIG ? 413 : rc == TW_ENOMEM ? 500 : rc == TW_EBUSY ? 503 : 400, err.msg, -1);
            if (rc == TW_EBUSY)
                tw__http_resp_header(resp, "Retry-After", "1");
            goto out;
        }
        body = plain[level].data;
        len = plain[level].len;
    }
    const char *p = tw__lex_ws(body, body + len);
    if (p == body + len) {
        error_body(resp, 400, "empty body: send events as JSON lines, a JSON array, or {\"Records\":[...]}", -1);
        goto out;
    }
    if (*p != '{' && *p != '[') {
        error_body(resp, 400, "body is not JSON: send events as JSON lines, a JSON array, or {\"Records\":[...]}", -1);
        goto out;
    }
    if ((rc = tw__src_batch_init(&g.b, ctx->engine, ctx->metrics, "http", &err))) {
        error_body(resp, 500, err.msg, -1);
        goto out;
    }
    g.b.on_reject = on_reject;
    g.b.ctx = &g;
    if ((rc = read_events(&g, body, len, &lim, &err))) {
        if (g.b.failed) {
            char msg[TW_ERROR_MSG_MAX + 40];
            snprintf(msg, sizeof msg, "could not store the events: %s", err.msg);
            /* A target's max_pending is reached: 503 + Retry-After, the sender tries again later. */
            error_body(resp, g.b.failed == TW_EBUSY ? 503 : 500, msg, (long long)g.b.accepted);
            if (g.b.failed == TW_EBUSY)
                tw__http_resp_header(resp, "Retry-After", TW_HTTP_BUSY_RETRY_AFTER);
        } else {
            error_body(resp, rc == TW_ETOOBIG ? 413 : rc == TW_ENOMEM ? 500 : 400, err.msg, -1);
        }
        goto out;
    }
    tw_buf_reset(&resp->body);
    resp->status = 200;
    resp->content_type = "application/json";
    if (g.oom ||
        tw__buf_printf(&resp->body, "{\"accepted\":%llu,\"duplicates\":%llu,\"rejected\":%llu,\"errors\":[",
                      (unsigned long long)g.b.accepted, (unsigned long long)g.b.duplicates,
                      (unsigned long long)g.b.rejected) ||
        tw__buf_append(&resp->body, g.errors.data ? g.errors.data : "", g.errors.len) ||
        tw__buf_puts(&resp->body, "]}"))
        error_body(resp, 500, "out of memory writing the response", -1);
out:
    tw__src_batch_free(&g.b);
    tw__buf_free(&g.errors);
    tw__buf_free(&plain[0]);
    tw__buf_free(&plain[1]);
    tw__gunzip_done(ctx, &held[0]);
    tw__gunzip_done(ctx, &held[1]);
}
