/* event/wrap.c: a raw CloudTrail record as the EventBridge event EventBridge would deliver. */
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/uuid.h"
#include "event/envelope.h"
#include "json/json_int.h"
#include "json/skip.h"
#include "trailwatch/event.h"

enum { F_VERSION, F_SOURCE, F_DETAIL_TYPE, F_TYPE, F_ACCOUNT, F_TIME, F_REGION, F_COUNT };

typedef struct span {
    const char *s;      /* raw string body (escapes kept), NULL when absent or not a string */
    size_t len;
    int seen;
} span;

/* Top-level keys of an object, with the raw bodies of the string values we need. */
static tw_status top_fields(const char *json, size_t len, span f[F_COUNT], tw_error *err)
{
    static const char *const names[F_COUNT] = {"eventVersion", "eventSource", "detail-type", "eventType",
                                                "recipientAccountId", "eventTime", "awsRegion"};
    const char *p = tw__lex_ws(json, json + len), *end = json + len;
    tw_lex_err e = {"expected a JSON object", TW_EEVENT, p};
    memset(f, 0, sizeof(span) * F_COUNT);
    if (p >= end || *p != '{')
        goto bad;
    p = tw__lex_ws(p + 1, end);
    if (p < end && *p == '}')
        return TW_OK;
    for (;;) {
        int esc = 0;
        if (p >= end || *p != '"') {
            e = (tw_lex_err){"expected a string key in object", TW_EJSON, p};
            goto bad;
        }
        const char *close = tw__lex_string(p + 1, end, &esc, &e);
        if (!close)
            goto bad;
        size_t klen = (size_t)(close - p - 1);
        int which = -1;
        for (int i = 0; i < F_COUNT && which < 0; i++)
            if (strlen(names[i]) == klen && memcmp(names[i], p + 1, klen) == 0)
                which = i;
        p = tw__lex_ws(close + 1, end);
        if (p >= end || *p != ':') {
            e = (tw_lex_err){"expected ':' after object key", TW_EJSON, p};
            goto bad;
        }
        p = tw__lex_ws(p + 1, end);
        const char *v = p;
        if (!(p = tw__json_skip(p, end, TW_MAX_JSON_DEPTH, &e)))
            goto bad;
        if (which >= 0) {
            f[which].seen = 1;
            if (*v == '"') {
                f[which].s = v + 1;
                f[which].len = (size_t)(p - v - 2);
            }
        }
        p = tw__lex_ws(p, end);
        if (p < end && *p == ',') {
            p = tw__lex_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            return TW_OK;
        e = (tw_lex_err){"expected ',' or '}' in object", TW_EJSON, p};
        goto bad;
    }
bad:
    return tw__err(err, e.code, "byte %zu: %s", (size_t)(e.at - json), e.why);
}

int tw_event_is_cloudtrail_record(const char *json, size_t len)
{
    span f[F_COUNT];
    if (top_fields(json, len, f, NULL))
        return 0;
    return f[F_VERSION].seen && f[F_SOURCE].seen && !f[F_DETAIL_TYPE].seen;
}

/* Appends "key":"<raw body>" (the body is already valid escaped JSON string content). */
static tw_status put_raw(tw_buf *b, const char *key, const span *s)
{
    tw_status rc = tw_buf_printf(b, ",\"%s\":\"", key);
    if (!rc)
        rc = tw_buf_append(b, s->s, s->len);
    if (!rc)
        rc = tw_buf_putc(b, '"');
    return rc;
}

tw_status tw_event_wrap_cloudtrail(const char *record, size_t len, char **out, size_t *out_len, tw_error *err)
{
    span f[F_COUNT];
    *out = NULL;
    tw_status rc = top_fields(record, len, f, err);
    if (rc)
        return rc;
    char id[TW_UUID_LEN + 1], type[64];
    tw__uuid4(id);
    /* eventType is plain ASCII when it is one we know; an escaped or unknown one maps to the default. */
    size_t tl = f[F_TYPE].s && f[F_TYPE].len < sizeof type ? f[F_TYPE].len : 0;
    if (tl)
        memcpy(type, f[F_TYPE].s, tl);
    const char *dt = tw__envelope_detail_type(tl ? type : NULL, tl);
    tw_buf b = TW_BUF_INIT;
    rc = tw_buf_printf(&b, "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"%s\"", id, dt);
    if (!rc && f[F_SOURCE].s) {
        size_t svc;
        tw__envelope_service(f[F_SOURCE].s, f[F_SOURCE].len, &svc);
        span s = {f[F_SOURCE].s, svc, 1};
        rc = tw_buf_puts(&b, ",\"source\":\"aws.");
        if (!rc)
            rc = tw_buf_append(&b, s.s, s.len);
        if (!rc)
            rc = tw_buf_putc(&b, '"');
    }
    if (!rc && f[F_ACCOUNT].s)
        rc = put_raw(&b, "account", &f[F_ACCOUNT]);
    if (!rc && f[F_TIME].s)
        rc = put_raw(&b, "time", &f[F_TIME]);
    if (!rc && f[F_REGION].s)
        rc = put_raw(&b, "region", &f[F_REGION]);
    if (!rc)
        rc = tw_buf_puts(&b, ",\"resources\":[],\"detail\":");
    if (!rc)
        rc = tw_buf_append(&b, record, len);
    if (!rc)
        rc = tw_buf_putc(&b, '}');
    if (rc) {
        tw_buf_free(&b);
        return tw__err(err, rc, "out of memory wrapping a CloudTrail record");
    }
    *out = tw_buf_detach(&b, out_len);
    return TW_OK;
}
