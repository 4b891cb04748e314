/*
 * source/firehose.c: the Amazon Data Firehose "HTTP endpoint" destination (AWS doc
 * httpdeliveryrequestresponse). One POST carries 1..10000 base64 records; a record is either a gzip
 * CloudWatch Logs subscription message (CloudTrail -> CloudWatch Logs -> Firehose), whose log events
 * are CloudTrail records, or JSON events (EventBridge -> Firehose), as one object or JSON lines.
 *
 * Firehose retries every answer but 200 and 413 until its retry duration ends, then backs the records
 * up to S3. Hence: a request that is not what Firehose sends (headers, body, base64) is a 400 and
 * nothing of it is submitted; a record whose decoded content is unusable is counted as rejected and
 * the request still succeeds (a retry could never fix it); the 200 goes out only once every event of
 * the request is durable (tw__engine_submit returned).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/base64.h"
#include "common/err.h"
#include "common/gunzip.h"
#include "config/config_int.h"
#include "json/json_int.h"
#include "json/skip.h"
#include "telemetry/log.h"
#include "source/batch.h"
#include "source/http.h"

/* Decoded records already submitted are freed at record boundaries once they hold this much. */
#define HOLD_MAX (16u * 1024u * 1024u)
/* Base64 text of a record of TW_FIREHOSE_RECORD_MAX bytes (the doc's 1,365,336 characters). */
#define B64_MAX ((TW_FIREHOSE_RECORD_MAX + 2u) / 3u * 4u)
#define REQUEST_ID_MAX 256u

typedef struct fh_req {
    const tw_source_ctx *ctx;
    tw_limits lim;
    char busy[TW_ERROR_MSG_MAX + 40]; /* why a record could not be decompressed now (TW_EBUSY) */
    tw_src_batch b;
    uint64_t control;               /* CONTROL_MESSAGEs acknowledged */
    char first_reject[256];         /* for the one log line per request */
} fh_req;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The contract's response: {"requestId":..,"timestamp":ms[,"errorMessage":..]}, application/json. */
static void respond(tw_http_resp *resp, int status, const char *request_id, const char *error)
{
    tw_buf *b = &resp->body;
    tw_buf_reset(b);
    resp->status = status;
    resp->content_type = "application/json";
    int ok = tw__buf_puts(b, "{\"requestId\":") == TW_OK &&
             tw__src_json_text(b, request_id, strlen(request_id)) == TW_OK &&
             tw__buf_printf(b, ",\"timestamp\":%lld", (long long)now_ms()) == TW_OK;
    if (ok && error)
        ok = tw__buf_puts(b, ",\"errorMessage\":") == TW_OK && tw__src_json_text(b, error, strlen(error)) == TW_OK;
    if (!ok || tw__buf_putc(b, '}') != TW_OK) {
        tw_buf_reset(b);
        resp->status = 500;
    }
}

/* Compares in time independent of where the first difference is (only of the configured length). */
static int key_equal(const char *got, const char *want)
{
    size_t glen = strlen(got), wlen = strlen(want);
    volatile unsigned char d = glen != wlen;
    for (size_t i = 0; i < wlen; i++)
        d |= (unsigned char)(want[i] ^ (i < glen ? got[i] : 0));
    return d == 0;
}

/* Firehose sends a GUID; anything printable up to a bound is accepted, and only such ids are echoed. */
static int request_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x20 || (unsigned char)id[i] > 0x7e)
            return 0;
    return 1;
}

static void on_reject(void *ctx, const tw_event_where *w, const char *why)
{
    fh_req *f = ctx;
    if (!f->first_reject[0])
        snprintf(f->first_reject, sizeof f->first_reject, "records[%lu] event %lu: %s", w->index, w->line, why);
}

static void free_doc(void *p) { tw_json_doc_free(p); }
static void free_reader(void *p) { tw_event_reader_free(p); }

static void reject(fh_req *f, unsigned long record, unsigned long event, const char *why)
{
    tw__src_reject(&f->b, &(tw_event_where){event, record, TW_FORMAT_LINES}, why);
}

/* A DATA_MESSAGE's log events are CloudTrail records (one per message); the doc is held until the
 * events are submitted. Returns only fatal errors (memory, engine). */
static tw_status cwl_message(fh_req *f, unsigned long rec, tw_json_doc *doc, size_t bytes)
{
    const tw_json *root = tw_json_root(doc);
    const char *type = tw_json_string(tw_json_get(root, "messageType"), NULL);
    if (strcmp(type, "CONTROL_MESSAGE") == 0) {
        f->control++; /* CloudWatch Logs' reachability probe: acknowledged, nothing to submit */
        tw_json_doc_free(doc);
        return TW_OK;
    }
    const tw_json *events = tw_json_get(root, "logEvents");
    if (strcmp(type, "DATA_MESSAGE") != 0 || tw_json_typeof(events) != TW_JSON_ARRAY) {
        reject(f, rec, 0, strcmp(type, "DATA_MESSAGE") ? "unknown CloudWatch Logs messageType"
                                                       : "DATA_MESSAGE without a logEvents array");
        tw_json_doc_free(doc);
        return TW_OK;
    }
    if (tw__src_hold(&f->b, free_doc, doc, bytes))
        return TW_ENOMEM;
    for (size_t j = 0; j < tw_json_size(events); j++) {
        const tw_json *m = tw_json_get(tw_json_at(events, j), "message");
        size_t len = 0;
        const char *text = tw_json_typeof(m) == TW_JSON_STRING ? tw_json_string(m, &len) : NULL;
        if (!text)
            reject(f, rec, j + 1, "log event without a message string");
        else if (len > f->lim.event_max)
            reject(f, rec, j + 1, "log event message larger than the event size limit");
        else if (len > 0) /* empty messages carry nothing to match */
            if (tw__src_add(&f->b, text, len, TW_EVENT_CLOUDTRAIL, &(tw_event_where){j + 1, rec, TW_FORMAT_LINES}))
                return f->b.failed;
    }
    return TW_OK;
}

/* JSON events: one object (pretty-printed too), JSON lines, an array, or {"Records":[...]}. */
static tw_status json_events(fh_req *f, unsigned long rec, const char *text, size_t n)
{
    const char *end = text + n, *p = tw__lex_ws(text, end);
    if (p == end || (*p != '{' && *p != '[')) {
        reject(f, rec, 0, p == end ? "empty record" : "neither JSON events nor a gzip CloudWatch Logs message");
        return TW_OK;
    }
    /* A multi-line object would be split by the JSON lines reader: take it whole. */
    tw_lex_err e;
    const char *q = *p == '{' ? tw__json_skip(p, end, f->lim.json_depth, &e) : NULL;
    if (q && tw__lex_ws(q, end) == end && memchr(p, '\n', (size_t)(q - p))) {
        const char *k = tw__lex_ws(p + 1, end);
        if (end - k < 9 || memcmp(k, "\"Records\"", 9) != 0) {
            char *copy = malloc((size_t)(q - p));
            if (!copy || tw__src_hold(&f->b, free, copy, (size_t)(q - p)))
                return TW_ENOMEM;
            memcpy(copy, p, (size_t)(q - p));
            tw__src_add(&f->b, copy, (size_t)(q - p), TW_EVENT_AUTO, &(tw_event_where){1, rec, TW_FORMAT_LINES});
            return f->b.failed;
        }
    }
    tw_limits rl = f->lim;
    rl.file_max = TW_FIREHOSE_BODY_MAX;
    tw_event_reader *r = NULL;
    tw_error err;
    if (tw_event_reader_buffer(text, n, &rl, &r, &err)) {
        reject(f, rec, 0, err.msg);
        return err.code == TW_ENOMEM ? TW_ENOMEM : TW_OK;
    }
    if (tw__src_hold(&f->b, free_reader, r, n))
        return TW_ENOMEM;
    for (;;) {
        const char *json;
        size_t len;
        tw_event_where w;
        tw_status rc = tw_event_reader_next(r, &json, &len, &w, &err);
        unsigned long at = w.format == TW_FORMAT_LINES ? w.line : w.index + 1;
        if (rc)
            reject(f, rec, at, err.msg);
        else if (!json)
            return TW_OK;
        else if (tw__src_add(&f->b, json, len, TW_EVENT_AUTO, &(tw_event_where){at, rec, TW_FORMAT_LINES}))
            return f->b.failed;
    }
}

static tw_status one_record(fh_req *f, unsigned long rec, const unsigned char *data, size_t n)
{
    if (!tw__is_gzip(data, n))
        return json_events(f, rec, (const char *)data, n);
    tw_buf out;
    tw__buf_init(&out, TW_FIREHOSE_BODY_MAX);
    tw_error err;
    size_t held = 0;
    tw_status rc = tw__http_gunzip(f->ctx, data, n, TW_FIREHOSE_BODY_MAX, &out, &held, &err);
    if (rc) {
        tw__buf_free(&out);
        tw__gunzip_done(f->ctx, &held);
        if (rc == TW_EBUSY) {       /* not the record's fault: the whole request is retried later */
            snprintf(f->busy, sizeof f->busy, "records[%lu]: %s", rec, err.msg);
            return rc;
        }
        reject(f, rec, 0, err.msg);
        return rc == TW_ENOMEM ? rc : TW_OK;
    }
    /* CloudWatch Logs messages are recognised by their messageType; other gzip data is JSON events. */
    tw_limits pl = f->lim;
    pl.event_max = out.len ? out.len : 1;
    tw_json_doc *doc = NULL;
    const char *text = out.data ? out.data : "";
    if (tw_json_parse(text, out.len, &pl, &doc, NULL) == TW_OK &&
        tw_json_typeof(tw_json_get(tw_json_root(doc), "messageType")) == TW_JSON_STRING)
        rc = cwl_message(f, rec, doc, out.len);
    else {
        tw_json_doc_free(doc);
        rc = json_events(f, rec, text, out.len);
    }
    tw__buf_free(&out);
    tw__gunzip_done(f->ctx, &held);
    return rc;
}

/* Checks the body's shape and every record's base64 before anything is submitted. Returns the HTTP
 * status (200 to go on) with why in msg. */
static int check_body(const tw_json *root, const char *request_id, unsigned char *scratch, char *msg, size_t cap)
{
    const tw_json *id = tw_json_get(root, "requestId"), *ts = tw_json_get(root, "timestamp"),
                  *records = tw_json_get(root, "records");
    if (tw_json_typeof(root) != TW_JSON_OBJECT)
        return snprintf(msg, cap, "request body is not a JSON object"), 400;
    if (tw_json_typeof(id) != TW_JSON_STRING || strcmp(tw_json_string(id, NULL), request_id) != 0)
        return snprintf(msg, cap, "requestId in the body does not match the X-Amz-Firehose-Request-Id header"), 400;
    if (tw_json_typeof(ts) != TW_JSON_NUMBER)
        return snprintf(msg, cap, "timestamp missing or not a number"), 400;
    if (tw_json_typeof(records) != TW_JSON_ARRAY || tw_json_size(records) == 0 ||
        tw_json_size(records) > TW_FIREHOSE_RECORDS_MAX)
        return snprintf(msg, cap, "records must be an array of 1 to %u records", TW_FIREHOSE_RECORDS_MAX), 400;
    for (size_t i = 0; i < tw_json_size(records); i++) {
        const tw_json *data = tw_json_get(tw_json_at(records, i), "data");
        size_t len = 0;
        const char *b64 = tw_json_typeof(data) == TW_JSON_STRING ? tw_json_string(data, &len) : NULL;
        if (!b64)
            return snprintf(msg, cap, "records[%zu] has no data string", i), 400;
        if (len > B64_MAX || (len = tw__base64_decode(b64, len, scratch)) > TW_FIREHOSE_RECORD_MAX) {
            if (len == (size_t)-1)
                return snprintf(msg, cap, "records[%zu].data is not valid base64", i), 400;
            return snprintf(msg, cap, "records[%zu].data is larger than %u bytes", i, TW_FIREHOSE_RECORD_MAX), 400;
        }
    }
    return 200;
}

/* The request after its headers were accepted: returns the HTTP status, msg for errors. */
static int serve(fh_req *f, const tw_http_req *req, const char *request_id, char *msg,
                 size_t cap, size_t *nrecords)
{
    const char *body = req->body ? req->body : "";
    size_t len = req->body_len;
    tw_buf plain;
    tw__buf_init(&plain, TW_FIREHOSE_BODY_MAX);
    tw_json_doc *doc = NULL;
    unsigned char *scratch = NULL;
    tw_error err;
    int status = 200;
    const char *enc = tw__http_req_header(req, "Content-Encoding");
    size_t held = 0;
    if (len > TW_FIREHOSE_BODY_MAX) {
        snprintf(msg, cap, "request body larger than %u bytes", TW_FIREHOSE_BODY_MAX);
        status = 413;
        goto out;
    }
    if (enc && strcasecmp(enc, "gzip") == 0) {
        tw_status rc = tw__http_gunzip(f->ctx, body, len, TW_FIREHOSE_BODY_MAX, &plain, &held, &err);
        if (rc) {
            snprintf(msg, cap, "Content-Encoding gzip: %s", err.msg);
            status = rc == TW_ETOOBIG ? 413 : rc == TW_ENOMEM ? 500 : rc == TW_EBUSY ? 503 : 400;
            goto out;
        }
        body = plain.data;
        len = plain.len;
    } else if (enc && *enc && strcasecmp(enc, "identity") != 0) {
        snprintf(msg, cap, "unsupported Content-Encoding (gzip or none)");
        status = 400;
        goto out;
    }
    tw_limits pl = f->lim;
    pl.event_max = len ? len : 1;
    if (tw_json_parse(body, len, &pl, &doc, &err)) {
        snprintf(msg, cap, "request body is not valid JSON: %s", err.msg);
        status = err.code == TW_ENOMEM ? 500 : 400;
        goto out;
    }
    if (!(scratch = malloc(tw__base64_decoded_max(B64_MAX)))) {
        snprintf(msg, cap, "out of memory");
        status = 500;
        goto out;
    }
    const tw_json *root = tw_json_root(doc), *records = tw_json_get(root, "records");
    if ((status = check_body(root, request_id, scratch, msg, cap)) != 200)
        goto out;
    *nrecords = tw_json_size(records);
    tw_status rc = TW_OK;
    for (size_t i = 0; i < *nrecords && !rc; i++) {
        size_t n = 0;
        const char *b64 = tw_json_string(tw_json_get(tw_json_at(records, i), "data"), &n);
        n = tw__base64_decode(b64, n, scratch); /* valid: checked above */
        rc = one_record(f, i, scratch, n);
        /* Free what was submitted; keep holding while queued events still point into it. */
        if (!rc && f->b.n == 0)
            tw__src_release(&f->b);
        else if (!rc && f->b.held_bytes > HOLD_MAX && !(rc = tw__src_flush(&f->b)))
            tw__src_release(&f->b);
    }
    if (!rc)
        rc = tw__src_flush(&f->b);
    if (rc == TW_EBUSY && !f->b.failed) {
        snprintf(msg, cap, "%s", f->busy);
        status = 503;
    } else if (rc) {
        snprintf(msg, cap, "could not store the events: %s",
                 f->b.failed ? f->b.err.msg : tw_strerror(rc));
        status = f->b.failed == TW_EBUSY ? 503 : 500; /* a target's max_pending: Firehose retries later */
    }
out:
    free(scratch);
    tw_json_doc_free(doc);
    tw__buf_free(&plain);
    tw__gunzip_done(f->ctx, &held);
    return status;
}

static void count(const tw_source_ctx *ctx, const char *name, const char *help, const char *labels, uint64_t n)
{
    if (n)
        tw_count(tw__metrics_counter(ctx->metrics, name, help, labels), n);
}

void tw__firehose_handle(const tw_source_ctx *ctx, const tw_http_req *req, tw_http_resp *resp)
{
    const tw_config *cfg = ctx->cfg;
    const char *rid = tw__http_req_header(req, "X-Amz-Firehose-Request-Id");
    const char *echo = rid && request_id_ok(rid) ? rid : "";
    const char *key = cfg ? cfg->src.firehose_key : NULL;
    const char *version = tw__http_req_header(req, "X-Amz-Firehose-Protocol-Version");
    const char *access_key = tw__http_req_header(req, "X-Amz-Firehose-Access-Key");
    char msg[600] = "";
    int status = 200;
    size_t nrecords = 0;
    fh_req *f = NULL;
    if (strcmp(req->method, "POST") != 0) {
        tw__http_resp_header(resp, "Allow", "POST");
        status = 405;
        snprintf(msg, sizeof msg, "only POST is accepted");
    } else if (key && *key && !key_equal(access_key ? access_key : "", key)) {
        status = 401;
        snprintf(msg, sizeof msg, "missing or wrong X-Amz-Firehose-Access-Key");
    } else if (!rid || !*echo) {
        status = 400;
        snprintf(msg, sizeof msg, rid ? "X-Amz-Firehose-Request-Id must be 1 to 256 printable characters"
                                      : "missing X-Amz-Firehose-Request-Id header");
    } else if (!version || version[0] != '1' || (version[1] && version[1] != '.')) {
        status = 400;
        snprintf(msg, sizeof msg, version ? "unsupported X-Amz-Firehose-Protocol-Version (1.0 expected)"
                                          : "missing X-Amz-Firehose-Protocol-Version header");
    } else if (!(f = calloc(1, sizeof *f))) {
        status = 500;
        snprintf(msg, sizeof msg, "out of memory");
    } else {
        tw_error err;
        f->ctx = ctx;
        if (cfg)
            f->lim = cfg->lim;
        else
            tw_limits_default(&f->lim);
        if (tw__src_batch_init(&f->b, ctx->engine, ctx->metrics, "firehose", &err)) {
            status = 500;
            snprintf(msg, sizeof msg, "%s", err.msg);
        } else {
            f->b.on_reject = on_reject;
            f->b.ctx = f;
            status = serve(f, req, rid, msg, sizeof msg, &nrecords);
        }
    }
    respond(resp, status, echo, status == 200 ? NULL : msg);
    if (status == 503)
        tw__http_resp_header(resp, "Retry-After", f && f->b.failed == TW_EBUSY ? TW_HTTP_BUSY_RETRY_AFTER : "1");

    char label[32];
    snprintf(label, sizeof label, "code=\"%d\"", status);
    count(ctx, "trailwatch_firehose_requests_total", "Firehose HTTP endpoint requests, by response code.", label, 1);
    if (status == 200) {
        count(ctx, "trailwatch_firehose_records_total", "Firehose records received in acknowledged requests.", "",
              nrecords);
        count(ctx, "trailwatch_firehose_control_messages_total",
              "CloudWatch Logs CONTROL_MESSAGEs acknowledged through Firehose.", "", f->control);
    }
    if (f && f->b.rejected) {
        char n[24];
        snprintf(n, sizeof n, "%llu", (unsigned long long)f->b.rejected);
        tw__log(TW_LOG_WARN, "firehose records rejected", "requestId", echo, "rejected", n, "first", f->first_reject,
               NULL);
    }
    if (status != 200 && status != 401 && status != 405)
        tw__log(status >= 500 ? TW_LOG_ERROR : TW_LOG_WARN, "firehose request refused", "requestId", echo, "error",
               msg, NULL);
    if (f)
        tw__src_batch_free(&f->b);
    free(f);
}
