/* aws/http.c: one HTTP exchange over a reusable curl handle. */
#include "aws/http.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common/err.h"

struct tw_aws_conn {
    CURL *h;
};

typedef struct xfer {
    tw_buf *out;
    tw_aws_http_resp *resp;
} xfer;

tw_status tw__aws_conn_new(tw_aws_conn **out, tw_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out || !((*out)->h = curl_easy_init())) {
        free(*out);
        *out = NULL;
        return tw__err(err, TW_ENOMEM, "out of memory creating an HTTP client");
    }
    return TW_OK;
}

void tw__aws_conn_free(tw_aws_conn *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->h);
    free(c);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    if (tw__buf_append(x->out, p, size * n) != TW_OK) {
        x->resp->body_too_big = 1;
        return 0; /* cuts the transfer */
    }
    return size * n;
}

static void keep(const char *v, size_t n, char *dst, size_t cap)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    const char *colon = memchr(p, ':', len);
    if (!colon) {
        if (len > 5 && strncmp(p, "HTTP/", 5) == 0) /* a new response (after 100-continue): start over */
            x->resp->meta_signature[0] = x->resp->request_id[0] = x->resp->retry_after[0] = '\0';
        return len;
    }
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vl = len - nl - 1;
    static const struct {
        const char *name;
        size_t off, cap;
    } want[] = {
        {"x-amz-request-id", offsetof(tw_aws_http_resp, request_id), 128},
        {"x-amzn-requestid", offsetof(tw_aws_http_resp, request_id), 128},
        {"x-amz-meta-signature", offsetof(tw_aws_http_resp, meta_signature), 1100},
        {"retry-after", offsetof(tw_aws_http_resp, retry_after), 32},
        {"last-modified", offsetof(tw_aws_http_resp, last_modified), 64},
        {"etag", offsetof(tw_aws_http_resp, etag), 128},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strlen(want[i].name) == nl && strncasecmp(p, want[i].name, nl) == 0)
            keep(v, vl, (char *)x->resp + want[i].off, want[i].cap);
    return len;
}

tw_status tw__aws_http(tw_aws_conn *c, const char *method, const char *url, const char *const *headers,
                       size_t nheaders, const void *body, size_t body_len, int64_t timeout_ms, tw_buf *out,
                       tw_aws_http_resp *resp, tw_error *err)
{
    memset(resp, 0, sizeof *resp);
    tw_buf_reset(out);
    struct curl_slist *hl = NULL;
    tw_status rc = TW_OK;
    for (size_t i = 0; i < nheaders; i++) {
        struct curl_slist *n = curl_slist_append(hl, headers[i]);
        if (!n) {
            curl_slist_free_all(hl);
            return tw__err(err, TW_ENOMEM, "out of memory building an HTTP request");
        }
        hl = n;
    }
    /* curl adds these on its own unless told not to; the signature covers exactly what is sent. */
    const char *off[] = {"Expect:", "Accept:", body ? NULL : "Content-Type:"};
    for (size_t i = 0; i < 3; i++)
        if (off[i])
            hl = curl_slist_append(hl, off[i]);
    char errbuf[CURL_ERROR_SIZE] = "";
    xfer x = {out, resp};
    CURL *h = c->h;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 5000 ? timeout_ms : 5000));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    resp->status = status;
    if (cc == CURLE_WRITE_ERROR && resp->body_too_big) {
        rc = tw__err(err, TW_ETOOBIG, "%s %s: the response is larger than %zu bytes", method, url, out->max);
    } else if (cc != CURLE_OK) {
        rc = tw__err(err, cc == CURLE_OPERATION_TIMEDOUT ? TW_ETIMEOUT : TW_EHTTP, "%s %s: %s", method, url,
                     errbuf[0] ? errbuf : curl_easy_strerror(cc));
        resp->status = 0;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    return rc;
}
