/* target/webhook.c: a generic HTTP endpoint, the way EventBridge API destinations call one.
 *
 * The body is the transformation's result or the event itself; the connection's auth (basic,
 * API key header, bearer token) and configured headers are added at send time, so secrets never
 * reach the outbox. Idempotency-Key lets the receiver drop the duplicates that retries can cause. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "json/json_int.h"
#include "target/kinds.h"

#define WEBHOOK_HEADERS_MAX (TW_HTTP_MAX_HEADERS - 4)  /* room for Content-Type, User-Agent, key, auth */

typedef struct webhook {
    char *url, *method;
    char *auth_name, *auth_value;             /* the auth header, NULL without auth */
    size_t nheaders;
    char *names[WEBHOOK_HEADERS_MAX], *values[WEBHOOK_HEADERS_MAX];
} webhook;

static void release(void *impl)
{
    webhook *w = impl;
    if (!w)
        return;
    free(w->url);
    free(w->method);
    free(w->auth_name);
    if (w->auth_value)                         /* a secret: do not leave it in freed memory */
        memset(w->auth_value, 0, strlen(w->auth_value));
    free(w->auth_value);
    for (size_t i = 0; i < w->nheaders; i++) {
        free(w->names[i]);
        if (w->values[i])
            memset(w->values[i], 0, strlen(w->values[i]));
        free(w->values[i]);
    }
    free(w);
}

static int token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return 0;
    return 1;
}

static int header_value_ok(const char *s) { return !strpbrk(s, "\r\n") && strlen(s) < 400; }

static char *base64(const char *in, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16 | (i + 1 < n ? (unsigned char)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? (unsigned char)in[i + 2] : 0);
        *o++ = tbl[v >> 18 & 63];
        *o++ = tbl[v >> 12 & 63];
        *o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static tw_status configure_auth(webhook *w, const tw_json *auth, tw_error *err)
{
    if (tw_json_typeof(auth) != TW_JSON_OBJECT || tw_json_size(auth) != 1)
        return tw__err(err, TW_ECONFIG, "auth: must be one of {basic: {username, password}}, "
                                        "{api_key: {header, value}} or {bearer: TOKEN}");
    const char *kind = tw_json_key(auth, 0, NULL);
    const tw_json *v = tw_json_at(auth, 0);
    char *a = NULL, *b = NULL;
    tw_status rc = TW_OK;
    if (strcmp(kind, "basic") == 0) {
        if (!(rc = tw__setting_str(v, "username", 1, &a, err)) && !(rc = tw__setting_str(v, "password", 1, &b, err))) {
            size_t la = strlen(a), lb = strlen(b);
            char *pair = malloc(la + lb + 2), *enc = NULL;
            if (pair) {
                memcpy(pair, a, la);
                pair[la] = ':';
                memcpy(pair + la + 1, b, lb + 1);
                enc = base64(pair, la + lb + 1);
                memset(pair, 0, la + lb + 1);
                free(pair);
            }
            w->auth_name = strdup("Authorization");
            w->auth_value = enc ? malloc(strlen(enc) + 7) : NULL;
            if (w->auth_value)
                strcat(strcpy(w->auth_value, "Basic "), enc);
            free(enc);
        }
        if (rc)
            tw__err_prefix(err, "auth.basic");
    } else if (strcmp(kind, "api_key") == 0) {
        if (!(rc = tw__setting_str(v, "header", 1, &a, err)) && !(rc = tw__setting_str(v, "value", 1, &b, err))) {
            if (!token(a))
                rc = tw__err(err, TW_ECONFIG, "header: not a valid HTTP header name");
            w->auth_name = a;
            w->auth_value = b;
            a = b = NULL;
        }
        if (rc)
            tw__err_prefix(err, "auth.api_key");
    } else if (strcmp(kind, "bearer") == 0) {
        if (!(rc = tw__setting_str(auth, "bearer", 1, &b, err))) {
            w->auth_name = strdup("Authorization");
            w->auth_value = malloc(strlen(b) + 8);
            if (w->auth_value)
                strcat(strcpy(w->auth_value, "Bearer "), b);
        }
        if (rc)
            tw__err_prefix(err, "auth");
    } else {
        rc = tw__err(err, TW_ECONFIG, "auth: unknown kind \"%.32s\" (basic, api_key or bearer)", kind);
    }
    if (b)
        memset(b, 0, strlen(b));
    free(a);
    free(b);
    if (rc)
        return rc;
    if (!w->auth_name || !w->auth_value)
        return tw__err(err, TW_ENOMEM, "auth: out of memory");
    if (!header_value_ok(w->auth_value))
        return tw__err(err, TW_ECONFIG, "auth: the credentials hold a line break or are too long");
    return TW_OK;
}

static tw_status configure(const tw_json *settings, void **impl, tw_error *err)
{
    static const char *const known[] = {"url", "method", "headers", "auth", NULL};
    if (tw__setting_known(settings, known, err))
        return err ? err->code : TW_ECONFIG;
    webhook *w = calloc(1, sizeof *w);
    if (!w)
        return tw__err(err, TW_ENOMEM, "out of memory");
    const tw_json *headers, *auth = tw_json_get(settings, "auth");
    tw_status rc;
    if ((rc = tw__setting_url(settings, "url", 1, &w->url, err)) ||
        (rc = tw__setting_str(settings, "method", 0, &w->method, err)) ||
        (rc = tw__setting_map(settings, "headers", &headers, err)))
        goto out;
    if (!w->method && !(w->method = strdup("POST"))) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto out;
    }
    for (char *p = w->method; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    if (strcmp(w->method, "POST") && strcmp(w->method, "PUT") && strcmp(w->method, "PATCH")) {
        rc = tw__err(err, TW_ECONFIG, "method: must be POST, PUT or PATCH");
        goto out;
    }
    if (auth && tw_json_typeof(auth) != TW_JSON_NULL && (rc = configure_auth(w, auth, err)))
        goto out;
    if (tw_json_size(headers) > WEBHOOK_HEADERS_MAX) {
        rc = tw__err(err, TW_ECONFIG, "headers: at most %d", WEBHOOK_HEADERS_MAX);
        goto out;
    }
    for (size_t i = 0; i < tw_json_size(headers); i++) {
        char tmp[64];
        const char *name = tw_json_key(headers, i, NULL);
        const char *value = tw__scalar_text(tw_json_at(headers, i), tmp, sizeof tmp);
        if (!token(name)) {
            rc = tw__err(err, TW_ECONFIG, "headers: \"%.64s\" is not a valid HTTP header name", name);
            goto out;
        }
        if (!header_value_ok(value)) {         /* never the value: headers often hold keys */
            rc = tw__err(err, TW_ECONFIG, "headers.%s: must be one line of less than 400 bytes", name);
            goto out;
        }
        w->names[w->nheaders] = strdup(name);
        w->values[w->nheaders] = strdup(value);
        if (!w->names[w->nheaders++] || !w->values[w->nheaders - 1]) {
            rc = tw__err(err, TW_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    if (rc)
        release(w);
    else
        *impl = w;
    return rc;
}

/* The transformation's result, else the event itself (as API destinations send it). */
static tw_status render(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err)
{
    (void)impl;
    tw_status rc = a->input ? tw__buf_append(out, a->input, a->input_len) : tw__write_event(out, a, 0);
    return rc ? tw__err(err, rc, "webhook: %s", rc == TW_ETOOBIG ? "body too large" : tw_strerror(rc)) : TW_OK;
}

static int configured(const webhook *w, const char *name)
{
    for (size_t i = 0; i < w->nheaders; i++)
        if (strcasecmp(w->names[i], name) == 0)
            return 1;
    return 0;
}

static tw_status http_prepare(const void *impl, const char *idem_key, tw_http_prep *prep, tw_error *err)
{
    const webhook *w = impl;
    tw_status rc = TW_OK;
    prep->url = w->url;
    prep->method = w->method;
    prep->nheaders = 0;
    /* Configured headers win over ours (Content-Type for an endpoint that wants another one). */
    if (!configured(w, "Content-Type"))
        rc = tw__prep_add(prep, "Content-Type", "application/json; charset=utf-8", err);
    if (!rc && !configured(w, "User-Agent"))
        rc = tw__prep_add(prep, "User-Agent", TW_USER_AGENT, err);
    if (!rc && idem_key && *idem_key && !configured(w, "Idempotency-Key"))
        rc = tw__prep_add(prep, "Idempotency-Key", idem_key, err);
    if (!rc && w->auth_name)
        rc = tw__prep_add(prep, w->auth_name, w->auth_value, err);
    for (size_t i = 0; i < w->nheaders && !rc; i++)
        rc = tw__prep_add(prep, w->names[i], w->values[i], err);
    return rc;
}

const tw_target_ops tw__target_webhook = {
    .kind = "webhook",
    .transport = TW_TRANSPORT_HTTP,
    .policy = {.timeout_ms = 10000, .concurrency = 16, .text_only = 1},
    .configure = configure,
    .release = release,
    .render = render,
    .http_prepare = http_prepare,
    .http_classify = tw__classify_default,
};
