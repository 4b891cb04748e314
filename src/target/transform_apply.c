/* target/transform_apply.c: applying a compiled transformation to one event.
 *
 * Placeholders are replaced according to where the compiler found them: as JSON (strings quoted)
 * when standing alone as a value, escaped without quotes inside a JSON string, raw in text. Objects
 * and lists inside strings and text are "flattened" as AWS does. For Slack, & < > in inserted text
 * are escaped too, so event data cannot mention or link. */
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "json/json_int.h"
#include "target/target.h"
#include "target/transform_int.h"

/* AWS inserts objects and lists into strings "flattened": their JSON without string quotes. */
static tw_status flatten(tw_buf *b, const tw_json *v)
{
    tw_status rc = TW_OK;
    size_t n;
    const char *s;
    switch (tw_json_typeof(v)) {
    case TW_JSON_STRING:
        s = tw_json_string(v, &n);
        return tw__buf_append(b, s, n);
    case TW_JSON_ARRAY:
        rc = tw__buf_putc(b, '[');
        for (size_t i = 0; i < tw_json_size(v) && !rc; i++)
            if (!i || !(rc = tw__buf_putc(b, ',')))
                rc = flatten(b, tw_json_at(v, i));
        return rc ? rc : tw__buf_putc(b, ']');
    case TW_JSON_OBJECT:
        rc = tw__buf_putc(b, '{');
        for (size_t i = 0; i < tw_json_size(v) && !rc; i++) {
            s = tw_json_key(v, i, &n);
            if ((!i || !(rc = tw__buf_putc(b, ','))) && !(rc = tw__buf_append(b, s, n)) &&
                !(rc = tw__buf_putc(b, ':')))
                rc = flatten(b, tw_json_at(v, i));
        }
        return rc ? rc : tw__buf_putc(b, '}');
    default:
        return tw__json_write(b, v);          /* numbers as written, true, false, null */
    }
}

typedef struct applier {
    tw_buf *out;
    tw_buf t1, t2;                             /* scratch */
    tw_status (*escape)(tw_buf *out, const char *s, size_t len);
} applier;

/* Inserts text s at position `at`: raw in text, escaped inside a JSON string, quoted as a value.
 * The kind's text escaping comes first (Slack: & < >, so event data cannot mention or link). */
static tw_status put_text(applier *ap, const char *s, size_t n, int at)
{
    tw_status rc;
    if (ap->escape) {
        tw_buf_reset(&ap->t2);
        if ((rc = ap->escape(&ap->t2, s, n)))
            return rc;
        s = ap->t2.data ? ap->t2.data : "";
        n = ap->t2.len;
    }
    if (at == XF_AT_TEXT)
        return tw__buf_append(ap->out, s, n);
    if (at == XF_AT_VALUE)
        return tw__json_write_string(ap->out, s, n);
    size_t mark = ap->out->len;                /* inside a string: the escaped text without quotes */
    if ((rc = tw__json_write_string(ap->out, s, n)))
        return rc;
    memmove(ap->out->data + mark, ap->out->data + mark + 1, ap->out->len - mark - 2);
    ap->out->len -= 2;
    ap->out->data[ap->out->len] = '\0';
    return TW_OK;
}

static tw_status put_value(applier *ap, const tw_json *v, int at)
{
    if (!v)                                    /* unresolved: the empty string */
        return at == XF_AT_VALUE ? tw__buf_append(ap->out, "\"\"", 2) : TW_OK;
    if (tw_json_typeof(v) == TW_JSON_STRING) {
        size_t n;
        const char *s = tw_json_string(v, &n);
        return put_text(ap, s, n, at);
    }
    if (at == XF_AT_VALUE)
        return tw__json_write(ap->out, v);
    tw_buf_reset(&ap->t1);
    tw_status rc = flatten(&ap->t1, v);
    return rc ? rc : put_text(ap, ap->t1.data ? ap->t1.data : "", ap->t1.len, at);
}

/* The envelope without detail, as JSON. */
static tw_status put_envelope(tw_buf *out, const tw_json *event)
{
    if (tw_json_typeof(event) != TW_JSON_OBJECT)
        return tw__buf_puts(out, "{}");
    tw_status rc = tw__buf_putc(out, '{');
    int first = 1;
    for (size_t i = 0; i < tw_json_size(event) && !rc; i++) {
        size_t n;
        const char *k = tw_json_key(event, i, &n);
        if (n == 6 && memcmp(k, "detail", 6) == 0)
            continue;
        if ((first || !(rc = tw__buf_putc(out, ','))) && !(rc = tw__json_write_string(out, k, n)) &&
            !(rc = tw__buf_putc(out, ':')))
            rc = tw__json_write(out, tw_json_at(event, i));
        first = 0;
    }
    return rc ? rc : tw__buf_putc(out, '}');
}

static tw_status put_predefined(applier *ap, int p, int at, const tw_json *event, const tw_xf_ctx *c)
{
    const char *s = "";
    char when[32];
    if (p == XF_P_EVENT)
        return put_envelope(ap->out, event);
    if (p == XF_P_EVENT_JSON) {
        if (c && c->event_text)
            return tw__buf_append(ap->out, c->event_text, c->event_len);
        return event ? tw__json_write(ap->out, event) : tw__buf_puts(ap->out, "null");
    }
    if (p == XF_P_RULE_ARN && c && c->rule_arn)
        s = c->rule_arn;
    else if (p == XF_P_RULE_NAME && c && c->rule_name)
        s = c->rule_name;
    else if (p == XF_P_INGESTION) {
        time_t t = (time_t)((c ? c->ingestion_ms : 0) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        s = when;
    }
    return put_text(ap, s, strlen(s), at);
}

tw_status tw__transform_apply(const tw_transform *xf, const tw_json *event, const tw_xf_ctx *ctx, tw_buf *out,
                             int *is_json, tw_error *err)
{
    applier ap = {out, TW_BUF_INIT, TW_BUF_INIT, ctx ? ctx->escape_text : NULL};
    size_t start = out->len;
    size_t cap = XF_OUTPUT_BASE + (ctx && ctx->event_text ? ctx->event_len : 0);
    tw_status rc = TW_OK;
    *is_json = xf->mode != XF_MODE_TEMPLATE || xf->json;
    switch (xf->mode) {
    case XF_MODE_INPUT:
        rc = tw__buf_append(out, xf->text, xf->len);
        break;
    case XF_MODE_PATH: {
        /* A path that selects nothing sends JSON null rather than an empty, invalid body. */
        const tw_json *v = tw__jsonpath_get_in(event, ctx ? ctx->extra : NULL, xf->text);
        rc = !v ? tw__buf_puts(out, "null") : tw_json_typeof(v) == TW_JSON_STRING ? put_value(&ap, v, XF_AT_VALUE)
                                                                                 : tw__json_write(out, v);
        break;
    }
    default:
        for (size_t i = 0; i < xf->nsegs && !rc; i++) {
            const xf_seg *g = &xf->segs[i];
            if (g->lit)
                rc = tw__buf_append(out, g->lit, g->len);
            else if (g->var < 0)
                rc = put_predefined(&ap, -g->var, g->at, event, ctx);
            else
                rc = put_value(&ap, tw__jsonpath_get_in(event, ctx ? ctx->extra : NULL, xf->vars[g->var].path), g->at);
            if (!rc && out->len - start > cap)
                rc = TW_ETOOBIG;
        }
    }
    tw__buf_free(&ap.t1);
    tw__buf_free(&ap.t2);
    if (rc == TW_ETOOBIG)
        return tw__err(err, rc, "input transformation: the result exceeds %zu bytes", out->max ? out->max : cap);
    if (rc)
        return tw__err(err, rc, "input transformation: out of memory");
    return TW_OK;
}
