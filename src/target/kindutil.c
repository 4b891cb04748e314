/* target/kindutil.c: what the target kinds share: settings, bounded text, JSON building, HTTP prep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "json/json_int.h"
#include "target/kinds.h"

/* ---- settings ---- */

const char *tw__scalar_text(const tw_json *v, char *tmp, size_t tmplen)
{
    switch (tw_json_typeof(v)) {
    case TW_JSON_STRING: return tw_json_string(v, NULL);
    case TW_JSON_NUMBER: snprintf(tmp, tmplen, "%s", tw_json_number_text(v, NULL)); return tmp;
    case TW_JSON_TRUE: return "true";
    case TW_JSON_FALSE: return "false";
    default: return NULL;
    }
}

tw_status tw__setting_str(const tw_json *settings, const char *name, int required, char **out, tw_error *err)
{
    *out = NULL;
    const tw_json *v = tw_json_get(settings, name);
    if (!v || tw_json_typeof(v) == TW_JSON_NULL)
        return required ? tw__err(err, TW_ECONFIG, "%s: required", name) : TW_OK;
    char tmp[64];
    const char *s = tw__scalar_text(v, tmp, sizeof tmp);
    if (!s)
        return tw__err(err, TW_ECONFIG, "%s: must be a string, not %s", name,
                       tw_json_type_name(tw_json_typeof(v)));
    if (required && !*s)
        return tw__err(err, TW_ECONFIG, "%s: required (it is empty)", name);
    if (!(*out = strdup(s)))
        return tw__err(err, TW_ENOMEM, "%s: out of memory", name);
    return TW_OK;
}

tw_status tw__setting_url(const tw_json *settings, const char *name, int required, char **out, tw_error *err)
{
    tw_status rc = tw__setting_str(settings, name, required, out, err);
    if (rc || !*out)
        return rc;
    const char *u = *out;
    size_t skip = strncasecmp(u, "https://", 8) == 0 ? 8 : strncasecmp(u, "http://", 7) == 0 ? 7 : 0;
    int ok = skip && u[skip] && u[skip] != '/' && strlen(u) <= TW_URL_MAX;
    for (const char *p = u; ok && *p; p++)
        ok = (unsigned char)*p > 0x20 && *p != 0x7f;
    if (ok)
        return TW_OK;
    free(*out);
    *out = NULL;
    /* Never the value: it is usually a secret (Slack, Teams and Discord webhook URLs are tokens). */
    return tw__err(err, TW_ECONFIG, "%s: must be an http(s) URL of at most %d characters without spaces", name,
                   TW_URL_MAX);
}

tw_status tw__setting_map(const tw_json *settings, const char *name, const tw_json **out, tw_error *err)
{
    *out = NULL;
    const tw_json *v = tw_json_get(settings, name);
    if (!v || tw_json_typeof(v) == TW_JSON_NULL)
        return TW_OK;
    if (tw_json_typeof(v) != TW_JSON_OBJECT)
        return tw__err(err, TW_ECONFIG, "%s: must be a mapping", name);
    char tmp[64];
    for (size_t i = 0; i < tw_json_size(v); i++)
        if (!tw__scalar_text(tw_json_at(v, i), tmp, sizeof tmp))
            return tw__err(err, TW_ECONFIG, "%s.%s: must be a string", name, tw_json_key(v, i, NULL));
    *out = v;
    return TW_OK;
}

/* ---- text ---- */

/* Edit distance, capped: enough to suggest the setting a typo meant. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

tw_status tw__setting_known(const tw_json *settings, const char *const *known, tw_error *err)
{
    for (size_t i = 0; i < tw_json_size(settings); i++) {
        const char *key = tw_json_key(settings, i, NULL);
        const char *best = NULL;
        size_t bestd = 3;
        int found = 0;
        for (size_t k = 0; known[k] && !found; k++) {
            found = strcmp(key, known[k]) == 0;
            size_t dd = distance(key, known[k]);
            if (dd < bestd) {
                bestd = dd;
                best = known[k];
            }
        }
        if (!found) {
            if (best)
                return tw__err(err, TW_ECONFIG, "unknown setting \"%.64s\" (did you mean \"%s\"?)", key, best);
            return tw__err(err, TW_ECONFIG, "unknown setting \"%.64s\"", key);
        }
    }
    return TW_OK;
}

size_t tw__utf8_prefix(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

static size_t seq_len(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    size_t k = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    return k > n ? n : k;
}

static const char *escape_for(char c, int mode)
{
    if (mode == TW_TEXT_SLACK)
        return c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : NULL;
    return mode == TW_TEXT_MARKDOWN ? tw__markdown_escape_char(c) : NULL;
}

tw_status tw__put_text(tw_buf *b, const char *s, size_t n, size_t max, int mode)
{
    static const char ellipsis[] = "\xe2\x80\xa6";
    size_t full = n;
    for (size_t i = 0; mode && i < n; i++) {
        const char *rep = escape_for(s[i], mode);
        full += rep ? strlen(rep) - 1 : 0;
    }
    if (full <= max)
        return mode == TW_TEXT_SLACK ? tw__slack_escape(b, s, n)
               : mode == TW_TEXT_MARKDOWN ? tw__markdown_escape(b, s, n) : tw__buf_append(b, s, n);
    size_t room = max >= 3 ? max - 3 : max, used = 0;
    tw_status rc = TW_OK;
    for (size_t i = 0; i < n && !rc;) {
        size_t k = seq_len(s + i, n - i);
        const char *rep = escape_for(s[i], mode);
        size_t w = rep ? strlen(rep) : k;
        if (used + w > room)
            break;
        rc = rep ? tw__buf_puts(b, rep) : tw__buf_append(b, s + i, k);
        used += w;
        i += k;
    }
    return rc || max < 3 ? rc : tw__buf_puts(b, ellipsis);
}

static int sev_index(const char *s)
{
    static const char *const names[] = {"critical", "high", "medium", "low", "info"};
    for (int i = 0; s && i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return 2;
}

const char *tw__sev_emoji(const char *severity)
{
    static const char *const e[] = {":rotating_light:", ":red_circle:", ":warning:", ":large_blue_circle:",
                                    ":information_source:"};
    return e[sev_index(severity)];
}

uint32_t tw__sev_color(const char *severity)
{
    static const uint32_t c[] = {0xD00000, 0xE8590C, 0xF2A900, 0x2F80ED, 0x8A8A8A};
    return c[sev_index(severity)];
}

void tw__duration_text(int64_t ms, char *out, size_t outlen)
{
    if (ms > 0 && ms % 3600000 == 0)
        snprintf(out, outlen, "%lldh", (long long)(ms / 3600000));
    else if (ms > 0 && ms % 60000 == 0)
        snprintf(out, outlen, "%lldm", (long long)(ms / 60000));
    else if (ms > 0 && ms % 1000 == 0)
        snprintf(out, outlen, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, outlen, "%lldms", (long long)ms);
}

int tw__iso_time(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    if (!s || strlen(s) < sizeof shape - 1)
        return 0;
    for (size_t i = 0; i < sizeof shape - 1; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return 0;
    return 1;
}

/* ---- JSON building ---- */

tw_status tw__jb_init(tw_jb *jb)
{
    jb->d = tw__json_doc_new();
    jb->failed = !jb->d;
    return jb->d ? TW_OK : TW_ENOMEM;
}

static tw_json *ok(tw_jb *jb, tw_json *v)
{
    if (!v)
        jb->failed = 1;
    return v;
}

tw_json *tw__jb_obj(tw_jb *jb) { return jb->d ? ok(jb, tw__json_new(jb->d, TW_JSON_OBJECT)) : NULL; }
tw_json *tw__jb_arr(tw_jb *jb) { return jb->d ? ok(jb, tw__json_new(jb->d, TW_JSON_ARRAY)) : NULL; }
tw_json *tw__jb_lit(tw_jb *jb, tw_json_type t) { return jb->d ? ok(jb, tw__json_new(jb->d, t)) : NULL; }

tw_json *tw__jb_strn(tw_jb *jb, const char *s, size_t n)
{
    return jb->d ? ok(jb, tw__json_new_string(jb->d, s ? s : "", s ? n : 0)) : NULL;
}

tw_json *tw__jb_str(tw_jb *jb, const char *s) { return tw__jb_strn(jb, s, s ? strlen(s) : 0); }

tw_json *tw__jb_int(tw_jb *jb, int64_t v)
{
    char t[32];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    return jb->d ? ok(jb, tw__json_new_number(jb->d, t, (size_t)n)) : NULL;
}

tw_json *tw__jb_copy(tw_jb *jb, const tw_json *v)
{
    return jb->d && v ? ok(jb, tw__json_copy(jb->d, v)) : ok(jb, NULL);
}

tw_json *tw__jb_put(tw_jb *jb, tw_json *obj, const char *key, tw_json *v)
{
    if (!obj || !v || tw__json_put(jb->d, obj, key, strlen(key), v) != TW_OK)
        return ok(jb, NULL);
    return v;
}

tw_json *tw__jb_push(tw_jb *jb, tw_json *arr, tw_json *v)
{
    if (!arr || !v || tw__json_push(jb->d, arr, v) != TW_OK)
        return ok(jb, NULL);
    return v;
}

tw_status tw__jb_check(tw_jb *jb, tw_status rc)
{
    if (rc)
        jb->failed = 1;
    return rc;
}

tw_json *tw__jb_buf(tw_jb *jb, const tw_buf *b, size_t n)
{
    if (tw__jb_check(jb, tw_buf_error(b)))
        return NULL;
    return tw__jb_strn(jb, b->data ? b->data : "", n < b->len ? n : b->len);
}

tw_status tw__jb_finish(tw_jb *jb, const tw_json *root, tw_buf *out, tw_error *err)
{
    tw_status rc = jb->failed || !root ? TW_ENOMEM : tw__json_write(out, root);
    tw_json_doc_free(jb->d);
    jb->d = NULL;
    if (rc == TW_ETOOBIG)
        return tw__err(err, rc, "rendered message exceeds %zu bytes", out->max);
    return rc ? tw__err(err, rc, "rendering the message: out of memory") : TW_OK;
}

tw_status tw__input_json(const tw_alert_ctx *a, tw_json_doc **doc, const tw_json **v)
{
    *doc = NULL;
    *v = NULL;
    if (!a->input || !a->input_is_json)
        return TW_OK;
    tw_limits lim;
    tw_limits_default(&lim);
    lim.event_max = TW_MAX_EVENT_MAX;          /* transformation results may be larger than one event */
    tw_status rc = tw_json_parse(a->input, a->input_len, &lim, doc, NULL);
    if (rc == TW_ENOMEM)
        return rc;
    if (rc == TW_OK)
        *v = tw_json_root(*doc);
    return TW_OK;
}

/* The transformation's result or the event, JSON written compactly so that each alert is one line
 * (JSON-lines files stay parseable even when the event text had newlines). */
tw_status tw__write_event(tw_buf *out, const tw_alert_ctx *a, int compact)
{
    size_t start = out->len;
    tw_status rc = compact && a->event ? tw__json_write(out, a->event)
                   : a->event_text     ? tw__buf_append(out, a->event_text, a->event_len)
                   : a->event          ? tw__json_write(out, a->event)
                                       : tw__buf_puts(out, "null");
    if (rc || a->storm_count <= 1)
        return rc;
    /* A storm summary says how many identical alerts it stands for, inside the event object. */
    size_t n = out->len;
    while (n > start && (out->data[n - 1] == ' ' || out->data[n - 1] == '\n' || out->data[n - 1] == '\r' ||
                         out->data[n - 1] == '\t'))
        n--;
    if (n == start || out->data[n - 1] != '}')
        return TW_OK;
    size_t k = n - 1;
    while (k > start && (out->data[k - 1] == ' ' || out->data[k - 1] == '\n' || out->data[k - 1] == '\r' ||
                         out->data[k - 1] == '\t'))
        k--;
    int empty = k > start && out->data[k - 1] == '{';
    out->len = n - 1;
    return tw__buf_printf(out, "%s\"trailwatch\":{\"storm\":{\"suppressed\":%llu,\"window_seconds\":%lld}}}",
                         empty ? "" : ",", (unsigned long long)(a->storm_count - 1),
                         (long long)(a->storm_window_ms / 1000));
}

tw_status tw__render_line(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err)
{
    (void)impl;
    tw_status rc;
    if (a->input) {
        tw_json_doc *doc;
        const tw_json *v;
        if (!(rc = tw__input_json(a, &doc, &v)))
            rc = v ? tw__json_write(out, v) : tw__buf_append(out, a->input, a->input_len);
        tw_json_doc_free(doc);
    } else {
        rc = tw__write_event(out, a, 1);
    }
    return rc ? tw__err(err, rc, "rendering the alert: %s", tw_strerror(rc)) : TW_OK;
}

/* ---- HTTP ---- */

void tw__prep_init(tw_http_prep *prep, const char *url, const char *method)
{
    prep->url = url;
    prep->method = method ? method : "POST";
    prep->nheaders = 0;
    tw__prep_add(prep, "Content-Type", "application/json; charset=utf-8", NULL);
    tw__prep_add(prep, "User-Agent", TW_USER_AGENT, NULL);
}

tw_status tw__http_prepare_url(const void *impl, const char *idem_key, tw_http_prep *prep, tw_error *err)
{
    (void)idem_key;
    (void)err;
    tw__prep_init(prep, *(char *const *)impl, "POST");
    return TW_OK;
}

tw_status tw__prep_add(tw_http_prep *prep, const char *name, const char *value, tw_error *err)
{
    if (prep->nheaders >= TW_HTTP_MAX_HEADERS)
        return tw__err(err, TW_ELIMIT, "more than %d HTTP headers", TW_HTTP_MAX_HEADERS);
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return tw__err(err, TW_EINVAL, "header %.64s: line breaks are not allowed", name);
    char *line = prep->headers[prep->nheaders];
    int n = snprintf(line, sizeof prep->headers[0], "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof prep->headers[0])
        return tw__err(err, TW_ELIMIT, "header %.64s: longer than %zu bytes", name, sizeof prep->headers[0] - 1);
    prep->nheaders++;
    return TW_OK;
}

tw_outcome tw__classify_default(const void *impl, long status, const char *body, size_t len, int64_t ra_header,
                                int64_t *retry_after_ms)
{
    (void)impl;
    (void)body;
    (void)len;
    return tw__target_http_default(status, ra_header, retry_after_ms);
}
