/* web/util.c: small helpers the dashboard's handlers share: query parameters, errors, headers. */
#include <stdio.h>
#include <string.h>

#include "json/json_int.h"
#include "outbox/store.h"
#include "web/web_int.h"

/* The page runs only its own script and style (no inline code, no eval), talks only to this server,
 * and may not be framed; Trusted Types make any HTML-string sink (innerHTML) throw, so event text can
 * only ever become text nodes. */
#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " \
            "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "                    \
            "require-trusted-types-for 'script'; trusted-types 'none'"

#define COMMON                                                                                                   \
    "Content-Security-Policy", CSP, "X-Content-Type-Options", "nosniff", "Referrer-Policy", "no-referrer",      \
        "X-Frame-Options", "DENY", "Cross-Origin-Opener-Policy", "same-origin", "Cross-Origin-Resource-Policy",  \
        "same-origin"

const char *const tw__web_page_headers[] = {COMMON, NULL};
const char *const tw__web_api_headers[] = {COMMON, "Cache-Control", "no-store", NULL};

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

const char *tw__web_query(const tw_http_req *req, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = req->query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= nl && strncmp(p, name, nl) == 0 && (len == nl || p[nl] == '=')) {
            size_t o = 0;
            for (size_t i = len == nl ? nl : nl + 1; i < len && o + 1 < cap; i++) {
                if (p[i] == '+') {
                    buf[o++] = ' ';
                } else if (p[i] == '%' && i + 2 < len && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
                    char c = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
                    buf[o++] = c ? c : ' ';
                    i += 2;
                } else {
                    buf[o++] = p[i];
                }
            }
            buf[o] = '\0';
            return buf;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

void tw__web_error(tw_http_resp *resp, int status, const char *msg)
{
    tw__http_resp_json(resp, status, "{\"error\":");
    tw__json_write_string(&resp->body, msg, strlen(msg));
    tw__buf_putc(&resp->body, '}');
}

tw_store *tw__web_store_lock(tw_web *w, tw_error *err)
{
    pthread_mutex_lock(&w->store_lock);
    if (!w->store && tw_store_open(w->data_dir, &w->store, err))
        w->store = NULL;
    return w->store;
}

void tw__web_store_unlock(tw_web *w) { pthread_mutex_unlock(&w->store_lock); }
