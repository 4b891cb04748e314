/* source/api.c: the EventBridge JSON 1.1 API at POST /: PutEvents and TestEventPattern, with AWS's
 * request limits, per-entry results and error shapes, so the AWS CLI and SDKs work unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/uuid.h"
#include "config/config_int.h"
#include "json/json_int.h"
#include "json/skip.h"
#include "source/http.h"
#include "trailwatch/pattern.h"

#define PUT_EVENTS_MAX_ENTRIES 10

static void aws_error(tw_http_resp *resp, int status, const char *type, const char *msg)
{
    resp->status = status;
    resp->content_type = "application/x-amz-json-1.1";
    tw_buf_reset(&resp->body);
    tw__buf_printf(&resp->body, "{\"__type\":\"%s\",\"message\":", type);
    tw__json_write_string(&resp->body, msg, strlen(msg));
    tw__buf_putc(&resp->body, '}');
}

static int is_string(const tw_json *v) { return tw_json_typeof(v) == TW_JSON_STRING; }

/* EventBusName: a name or an event bus ARN (the API model's pattern, simplified to its charset). */
static int valid_bus(const char *s, size_t n)
{
    if (n < 1 || n > 1600)
        return 0;
    const char *name = strrchr(s, '/');
    name = name && strncmp(s, "arn:", 4) == 0 ? name + 1 : s;
    if (!*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* Time: epoch seconds on the wire (SDKs), or RFC 3339 text. */
static int entry_time(const tw_json *t, time_t *out)
{
    if (!t) {
        *out = time(NULL);
        return 1;
    }
    if (tw_json_typeof(t) == TW_JSON_NUMBER) {
        double d = tw_json_number(t);
        if (!isfinite(d) || d < 0 || d > 253402300799.0)
            return 0;
        *out = (time_t)d;
        return 1;
    }
    if (is_string(t)) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *s = tw_json_string(t, NULL);
        const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!rest)
            return 0;
        *out = timegm(&tm);
        return 1;
    }
    return 0;
}

typedef struct entry_ctx {
    const char *code, *msg;        /* failure, or NULL */
    char *envelope;
    size_t len;
} entry_ctx;

static void fail_entry(entry_ctx *e, const char *code, const char *msg)
{
    e->code = code;
    e->msg = msg;
}

/* One PutEventsRequestEntry -> the EventBridge event it becomes. */
static void build_entry(const tw_config *cfg, const char *region, const tw_json *ent, entry_ctx *e, size_t *size)
{
    const tw_json *src = tw_json_get(ent, "Source"), *dt = tw_json_get(ent, "DetailType"),
                  *det = tw_json_get(ent, "Detail"), *res = tw_json_get(ent, "Resources"),
                  *tm = tw_json_get(ent, "Time"), *bus = tw_json_get(ent, "EventBusName");
    size_t sl, dl, dtl;
    const char *s = tw_json_string(src, &sl), *d = tw_json_string(det, &dl), *t = tw_json_string(dt, &dtl);
    *size += (tm ? 14 : 0) + sl + dl + dtl;
    for (size_t i = 0; i < tw_json_size(res); i++) {
        size_t rl;
        tw_json_string(tw_json_at(res, i), &rl);
        *size += rl;
    }
    if (tw_json_typeof(ent) != TW_JSON_OBJECT) {
        fail_entry(e, "InvalidArgument", "Parameter Entries is not valid. Reason: each entry must be an object.");
        return;
    }
    if (!s || !sl) {
        fail_entry(e, "InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument.");
        return;
    }
    if (!t || !dtl) {
        fail_entry(e, "InvalidArgument",
                   "Parameter DetailType is not valid. Reason: DetailType is a required argument.");
        return;
    }
    if (!d) {
        fail_entry(e, "InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument.");
        return;
    }
    size_t bl = 0;
    const char *bs = tw_json_string(bus, &bl);
    if (bus && (!bs || !valid_bus(bs, bl))) {
        fail_entry(e, "InvalidArgument", "Parameter EventBusName is not valid.");
        return;
    }
    if (res && tw_json_typeof(res) != TW_JSON_ARRAY) {
        fail_entry(e, "InvalidArgument", "Parameter Resources is not valid. Reason: Resources must be a list.");
        return;
    }
    for (size_t i = 0; i < tw_json_size(res); i++)
        if (!is_string(tw_json_at(res, i))) {
            fail_entry(e, "InvalidArgument", "Parameter Resources is not valid. Reason: each resource must be a string.");
            return;
        }
    time_t when;
    if (!entry_time(tm, &when)) {
        fail_entry(e, "InvalidArgument", "Parameter Time is not valid.");
        return;
    }
    /* Detail must be a JSON object (any nesting within the limits): validated, not built. */
    tw_lex_err le;
    const char *dp = tw__lex_ws(d, d + dl), *dend = d + dl;
    const char *after = dp < dend && *dp == '{' ? tw__json_skip(dp, dend, cfg->lim.json_depth, &le) : NULL;
    if (!after || tw__lex_ws(after, dend) != dend) {
        fail_entry(e, "MalformedDetail", "Detail is malformed.");
        return;
    }
    char id[TW_UUID_LEN + 1], iso[32];
    tw__uuid4(id);
    struct tm g;
    gmtime_r(&when, &g);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &g);
    tw_buf b = TW_BUF_INIT;
    tw_status rc = tw__buf_printf(&b, "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":", id);
    if (!rc)
        rc = tw__json_write_string(&b, t, dtl);
    if (!rc)
        rc = tw__buf_puts(&b, ",\"source\":");
    if (!rc)
        rc = tw__json_write_string(&b, s, sl);
    if (!rc)
        rc = tw__buf_printf(&b, ",\"account\":\"%s\",\"time\":\"%s\",\"region\":", cfg->account, iso);
    if (!rc)
        rc = tw__json_write_string(&b, region, strlen(region));
    if (!rc)
        rc = tw__buf_puts(&b, ",\"resources\":[");
    for (size_t i = 0; !rc && i < tw_json_size(res); i++) {
        size_t rl;
        const char *r = tw_json_string(tw_json_at(res, i), &rl);
        if (i)
            rc = tw__buf_putc(&b, ',');
        if (!rc)
            rc = tw__json_write_string(&b, r, rl);
    }
    if (!rc)
        rc = tw__buf_puts(&b, "],\"detail\":");
    if (!rc)
        rc = tw__buf_append(&b, d, dl);
    if (!rc)
        rc = tw__buf_putc(&b, '}');
    if (rc) {
        tw__buf_free(&b);
        fail_entry(e, "InternalFailure", "out of memory");
        return;
    }
    e->envelope = tw__buf_detach(&b, &e->len);
}

static void put_events(const tw_source_ctx *ctx, const tw_json *root, const char *region, tw_http_resp *resp)
{
    const tw_config *cfg = ctx->cfg;
    const tw_json *entries = tw_json_get(root, "Entries");
    if (!entries || tw_json_typeof(entries) != TW_JSON_ARRAY) {
        aws_error(resp, 400, "ValidationException",
                  "1 validation error detected: Value null at 'entries' failed to satisfy constraint: "
                  "Member must not be null");
        return;
    }
    size_t n = tw_json_size(entries);
    if (n < 1 || n > PUT_EVENTS_MAX_ENTRIES) {
        char msg[200];
        snprintf(msg, sizeof msg, "1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                                  "Member must have length %s %d",
                 n < 1 ? "greater than or equal to" : "less than or equal to", n < 1 ? 1 : PUT_EVENTS_MAX_ENTRIES);
        aws_error(resp, 400, "ValidationException", msg);
        return;
    }
    entry_ctx e[PUT_EVENTS_MAX_ENTRIES];
    memset(e, 0, sizeof e);
    size_t total = 0, valid = 0;
    for (size_t i = 0; i < n; i++) {
        build_entry(cfg, region, tw_json_at(entries, i), &e[i], &total);
        valid += e[i].envelope != NULL;
    }
    tw_ingest_item items[PUT_EVENTS_MAX_ENTRIES];
    tw_ingest_result results[PUT_EVENTS_MAX_ENTRIES];
    size_t idx[PUT_EVENTS_MAX_ENTRIES], m = 0;
    if (total > cfg->lim.event_max) {
        aws_error(resp, 400, "ValidationException", "Total size of the entries in the request is over the limit.");
        goto out;
    }
    if (!valid && !e[0].envelope) {
        /* No entry has Source, DetailType and Detail: the request as a whole is invalid. */
        int missing = 1;
        for (size_t i = 0; i < n; i++)
            missing &= strcmp(e[i].code, "InvalidArgument") == 0;
        if (missing) {
            aws_error(resp, 400, "ValidationException", e[0].msg);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (e[i].envelope) {
            items[m] = (tw_ingest_item){e[i].envelope, e[i].len, TW_EVENT_ENVELOPE};
            idx[m++] = i;
        }
    tw_error err;
    tw_ingest_opts o = {.source = "eventbridge"};
    if (m && tw__engine_submit(ctx->engine, items, m, &o, results, &err)) {
        /* Nothing was stored: 500 makes the SDKs retry the call; 503 + Retry-After when a target's
         * max_pending is reached (the SDKs retry that too, after the delay). */
        if (err.code == TW_EBUSY) {
            aws_error(resp, 503, "ServiceUnavailableException", err.msg);
            tw__http_resp_header(resp, "Retry-After", TW_HTTP_BUSY_RETRY_AFTER);
        } else {
            aws_error(resp, 500, "InternalException", "The events could not be stored; try again.");
        }
        goto out;
    }
    for (size_t k = 0; k < m; k++)
        if (results[k].status) {
            e[idx[k]].code = "InvalidArgument";
            e[idx[k]].msg = results[k].error;
        }
    resp->status = 200;
    resp->content_type = "application/x-amz-json-1.1";
    tw_buf *b = &resp->body;
    tw_buf_reset(b);
    tw__buf_puts(b, "{\"Entries\":[");
    size_t failed = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            tw__buf_putc(b, ',');
        if (e[i].code) {
            failed++;
            tw__buf_printf(b, "{\"ErrorCode\":\"%s\",\"ErrorMessage\":", e[i].code);
            tw__json_write_string(b, e[i].msg, strlen(e[i].msg));
            tw__buf_putc(b, '}');
        } else {
            while (k < m && idx[k] != i)
                k++;
            tw__buf_printf(b, "{\"EventId\":\"%s\"}", results[k].id);
        }
    }
    tw__buf_printf(b, "],\"FailedEntryCount\":%zu}", failed);
    char lbl[64];
    tw_count(tw__metrics_counter(ctx->metrics, TW_METRIC_REJECTED, TW_METRIC_REJECTED_HELP,
                                tw__metrics_label(lbl, sizeof lbl, "source", "eventbridge")),
             failed);
out:
    for (size_t i = 0; i < n; i++)
        free(e[i].envelope);
}

static const char *const required_event_fields[] = {"id", "account", "source", "time", "region", "resources",
                                                    "detail-type"};

static void test_event_pattern(const tw_source_ctx *ctx, const tw_json *root, tw_http_resp *resp)
{
    const tw_config *cfg = ctx->cfg;
    const tw_json *pj = tw_json_get(root, "EventPattern"), *ej = tw_json_get(root, "Event");
    if (!is_string(pj)) {
        aws_error(resp, 400, "ValidationException",
                  "1 validation error detected: Value null at 'eventPattern' failed to satisfy constraint: "
                  "Member must not be null");
        return;
    }
    if (!is_string(ej)) {
        aws_error(resp, 400, "ValidationException",
                  "1 validation error detected: Value null at 'event' failed to satisfy constraint: "
                  "Member must not be null");
        return;
    }
    size_t pl, el;
    const char *ptext = tw_json_string(pj, &pl), *etext = tw_json_string(ej, &el);
    tw_error err;
    char msg[700];
    tw_pattern *p = NULL;
    if (tw_pattern_parse(ptext, pl, &cfg->lim, &p, &err)) {
        snprintf(msg, sizeof msg, "Event pattern is not valid. Reason: %s", err.msg);
        aws_error(resp, 400, "InvalidEventPatternException", msg);
        return;
    }
    tw_json_doc *ev = NULL;
    if (tw_json_parse(etext, el, &cfg->lim, &ev, &err) || tw_json_typeof(tw_json_root(ev)) != TW_JSON_OBJECT) {
        tw_pattern_free(p);
        tw_json_doc_free(ev);
        snprintf(msg, sizeof msg, "Parameter Event is not valid. Reason: %s",
                 err.code ? err.msg : "the event must be a JSON object");
        aws_error(resp, 400, "ValidationException", msg);
        return;
    }
    for (size_t i = 0; i < sizeof required_event_fields / sizeof *required_event_fields; i++)
        if (!tw_json_get(tw_json_root(ev), required_event_fields[i])) {
            tw_pattern_free(p);
            tw_json_doc_free(ev);
            snprintf(msg, sizeof msg, "Parameter Event is not valid. Reason: Provided Event is missing required "
                                      "field %s.", required_event_fields[i]);
            aws_error(resp, 400, "ValidationException", msg);
            return;
        }
    tw_json_doc_free(ev);
    tw_ruleset_builder *b = NULL;
    tw_ruleset *rs = NULL;
    tw_matcher *m = NULL;
    tw_match_result res;
    if (tw_ruleset_builder_new(&cfg->lim, &b) || tw_ruleset_builder_add(b, "p", p, NULL, &err) ||
        tw_ruleset_build(b, &rs, &err) || tw_matcher_new(rs, &m) ||
        tw_match(m, etext, el, TW_EVENT_ENVELOPE, &res, &err)) {
        snprintf(msg, sizeof msg, "Parameter Event is not valid. Reason: %s", err.msg);
        aws_error(resp, 400, "ValidationException", msg);
    } else {
        tw__http_resp_json(resp, 200, "{\"Result\":%s}", res.count ? "true" : "false");
        resp->content_type = "application/x-amz-json-1.1";
    }
    if (!b)
        tw_pattern_free(p);
    tw_matcher_free(m);
    tw_ruleset_free(rs);
    tw_ruleset_builder_free(b);
}

void tw__api_handle(const tw_source_ctx *ctx, const tw_http_req *req, tw_http_resp *resp)
{
    char rid[TW_UUID_LEN + 1];
    tw__uuid4(rid);
    tw__http_resp_header(resp, "x-amzn-RequestId", rid);
    const char *target = tw__http_req_header(req, "X-Amz-Target");
    const char *ctype = tw__http_req_header(req, "Content-Type");
    if (!target || strncmp(target, "AWSEvents.", 10) != 0) {
        aws_error(resp, 400, "UnknownOperationException",
                  "Missing or unknown X-Amz-Target (expected AWSEvents.<Operation>)");
        return;
    }
    const char *op = target + 10;
    if (strcmp(op, "PutEvents") != 0 && strcmp(op, "TestEventPattern") != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "trailwatch does not implement the %.64s operation (PutEvents and "
                                  "TestEventPattern are available)", op);
        aws_error(resp, 400, "UnknownOperationException", msg);
        return;
    }
    if (!ctype || (strncasecmp(ctype, "application/x-amz-json-1.1", 26) != 0 &&
                   strncasecmp(ctype, "application/json", 16) != 0)) {
        char msg[200];
        snprintf(msg, sizeof msg, "Content-Type must be application/x-amz-json-1.1 (got %.64s)", ctype ? ctype : "none");
        aws_error(resp, 400, "SerializationException", msg);
        return;
    }
    tw_json_doc *doc = NULL;
    tw_error err;
    tw_limits lim = ctx->cfg->lim;
    lim.event_max = req->body_len + 1; /* the body cap was applied by the server */
    if (tw_json_parse(req->body, req->body_len, &lim, &doc, &err) ||
        tw_json_typeof(tw_json_root(doc)) != TW_JSON_OBJECT) {
        char msg[600];
        snprintf(msg, sizeof msg, "The request body is not a JSON object: %s",
                 doc ? "found another JSON value" : err.msg);
        tw_json_doc_free(doc);
        aws_error(resp, 400, "SerializationException", msg);
        return;
    }
    /* The region a signed request was addressed to, else the configured one. */
    const char *region = ctx->cfg->region;
    char scope_region[64] = "";
    const char *auth = tw__http_req_header(req, "Authorization");
    const char *cred = auth ? strstr(auth, "Credential=") : NULL;
    if (cred) {
        const char *a = strchr(cred, '/'), *b = a ? strchr(a + 1, '/') : NULL, *c = b ? strchr(b + 1, '/') : NULL;
        if (c && c - b - 1 > 0 && c - b - 1 < (long)sizeof scope_region) {
            memcpy(scope_region, b + 1, (size_t)(c - b - 1));
            scope_region[c - b - 1] = '\0';
            region = scope_region;
        }
    }
    if (strcmp(op, "PutEvents") == 0)
        put_events(ctx, tw_json_root(doc), region, resp);
    else
        test_event_pattern(ctx, tw_json_root(doc), resp);
    tw_json_doc_free(doc);
}
