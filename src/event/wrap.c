/* event/wrap.c: a raw CloudTrail record as the EventBridge event EventBridge would deliver. */
#include <stdlib.h>
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
    int esc;            /* the body holds escapes */
    int seen;
} span;

/* The decoded bytes of a string span into out (room for s->len bytes); returns how many. The
 * matcher reads decoded text, so the wrapper must too: an escaped key, eventSource or eventType
 * means what its unescaped form means. */
static size_t decode(const span *s, char *out)
{
    if (s->esc)
        return tw__lex_unescape(s->s, s->len, out);
    memcpy(out, s->s, s->len);
    return s->len;
}

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
        /* Keys compare decoded too. The names are at most 18 bytes and an escape decodes at most 6
         * bytes to at least 1, so a longer escaped key cannot be one of them. */
        size_t klen = (size_t)(close - p - 1);
        const char *key = p + 1;
        char kbuf[128];
        if (esc && klen <= sizeof kbuf) {
            klen = tw__lex_unescape(p + 1, klen, kbuf);
            key = kbuf;
        }
        int which = -1;
        for (int i = 0; i < F_COUNT && which < 0; i++)
            if (strlen(names[i]) == klen && memcmp(names[i], key, klen) == 0)
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
            /* The last occurrence wins, as in the tree and the matcher: a later non-string value
             * leaves no string behind. */
            f[which].seen = 1;
            f[which].s = NULL;
            f[which].len = 0;
            if (*v == '"') {
                f[which].s = v + 1;
                f[which].len = (size_t)(p - v - 2);
                f[which].esc = memchr(v + 1, '\\', f[which].len) != NULL;
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
    tw_status rc = tw__buf_puts(b, ",\"");
    if (!rc)
        rc = tw__buf_puts(b, key);
    if (!rc)
        rc = tw__buf_puts(b, "\":\"");
    if (!rc)
        rc = tw__buf_append(b, s->s, s->len);
    if (!rc)
        rc = tw__buf_putc(b, '"');
    return rc;
}

tw_status tw_event_wrap_cloudtrail(const char *record, size_t len, char **out, size_t *out_len, tw_error *err)
{
    span f[F_COUNT];
    *out = NULL;
    tw_status rc = top_fields(record, len, f, err);
    if (rc)
        return rc;
    char id[TW_UUID_LEN + 1], type[128];
    tw__uuid4(id);
    /* The eventTypes we know are at most 20 bytes, escaped at most 120: a longer one is unknown and
     * maps to the default. */
    size_t tl = f[F_TYPE].s && f[F_TYPE].len <= sizeof type ? decode(&f[F_TYPE], type) : 0;
    const char *dt = tw__envelope_detail_type(tl ? type : NULL, tl);
    tw_buf b = TW_BUF_INIT;
    rc = tw__buf_printf(&b, "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"%s\"", id, dt);
    if (!rc && f[F_SOURCE].s) {
        /* "aws." + the service of the decoded eventSource, written as a JSON string again. */
        char *src = malloc(f[F_SOURCE].len + 5);
        size_t svc = 0;
        rc = src ? TW_OK : TW_ENOMEM;
        if (!rc) {
            memcpy(src, "aws.", 4);
            tw__envelope_service(src + 4, decode(&f[F_SOURCE], src + 4), &svc);
            rc = tw__buf_puts(&b, ",\"source\":");
        }
        if (!rc)
            rc = tw__json_write_string(&b, src, 4 + svc);
        free(src);
    }
    if (!rc && f[F_ACCOUNT].s)
        rc = put_raw(&b, "account", &f[F_ACCOUNT]);
    if (!rc && f[F_TIME].s)
        rc = put_raw(&b, "time", &f[F_TIME]);
    if (!rc && f[F_REGION].s)
        rc = put_raw(&b, "region", &f[F_REGION]);
    if (!rc)
        rc = tw__buf_puts(&b, ",\"resources\":[],\"detail\":");
    if (!rc)
        rc = tw__buf_append(&b, record, len);
    if (!rc)
        rc = tw__buf_putc(&b, '}');
    if (rc) {
        tw__buf_free(&b);
        return tw__err(err, rc, "out of memory wrapping a CloudTrail record");
    }
    *out = tw__buf_detach(&b, out_len);
    return TW_OK;
}
