/* aws/s3.c: ListObjectsV2 (with its XML answer) and GetObject. */
#include "aws/s3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/xml.h"
#include "common/err.h"

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

size_t tw__url_decode(char *s, int form_plus)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%') {
            int a = hexv(r[1]), b = a >= 0 ? hexv(r[2]) : -1;
            if (a < 0 || b < 0)
                return (size_t)-1;
            *w++ = (char)(a * 16 + b);
            r += 2;
        } else {
            *w++ = form_plus && *r == '+' ? ' ' : *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

void tw__s3_list_free(tw_s3_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].key);
    for (size_t i = 0; i < l->nprefixes; i++)
        free(l->prefixes[i]);
    free(l->items);
    free(l->prefixes);
    free(l->next_token);
    memset(l, 0, sizeof *l);
}

typedef struct lctx {
    tw_s3_list *l;
    tw_s3_object cur;
    int in_item;
    int url_encoded;
    int failed;                    /* 1: out of memory, 2: bad key */
} lctx;

static char *dup_key(const char *text, size_t len, int decode, int *failed)
{
    if (len > TW_S3_KEY_MAX * 3) {
        *failed = 2;
        return NULL;
    }
    char *k = strndup(text, len);
    if (!k) {
        *failed = 1;
        return NULL;
    }
    size_t n = decode ? tw__url_decode(k, 0) : len;
    if (n == (size_t)-1 || n != strlen(k) || n > TW_S3_KEY_MAX) {
        free(k);
        *failed = 2;
        return NULL;
    }
    return k;
}

static int on_list(void *ud, const char *path, const char *text, size_t len)
{
    lctx *x = ud;
    tw_s3_list *l = x->l;
    if (strcmp(path, "ListBucketResult/Contents") == 0 && !text) {
        if (x->cur.key) {
            if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                tw_s3_object *p = realloc(l->items, cap * sizeof *p);
                if (!p) {
                    x->failed = 1;
                    return 1;
                }
                l->items = p;
                l->cap = cap;
            }
            l->items[l->n++] = x->cur;
        }
        memset(&x->cur, 0, sizeof x->cur);
        return 0;
    }
    if (!text)
        return 0;
    if (strcmp(path, "ListBucketResult/EncodingType") == 0) {
        x->url_encoded = len == 3 && memcmp(text, "url", 3) == 0;
    } else if (strcmp(path, "ListBucketResult/Contents/Key") == 0) {
        free(x->cur.key);
        x->cur.key = dup_key(text, len, 0, &x->failed);
        if (!x->cur.key)
            return 1;
    } else if (strcmp(path, "ListBucketResult/Contents/Size") == 0) {
        x->cur.size = strtoll(text, NULL, 10);
    } else if (strcmp(path, "ListBucketResult/Contents/ETag") == 0) {
        size_t n = len < sizeof x->cur.etag - 1 ? len : sizeof x->cur.etag - 1;
        memcpy(x->cur.etag, text, n);
        x->cur.etag[n] = '\0';
    } else if (strcmp(path, "ListBucketResult/IsTruncated") == 0) {
        l->truncated = len == 4 && memcmp(text, "true", 4) == 0;
    } else if (strcmp(path, "ListBucketResult/NextContinuationToken") == 0) {
        free(l->next_token);
        if (!(l->next_token = strndup(text, len))) {
            x->failed = 1;
            return 1;
        }
    } else if (strcmp(path, "ListBucketResult/CommonPrefixes/Prefix") == 0) {
        char *p = dup_key(text, len, 0, &x->failed);
        if (!p)
            return 1;
        if (l->nprefixes == l->capprefixes) {
            size_t cap = l->capprefixes ? l->capprefixes * 2 : 16;
            char **q = realloc(l->prefixes, cap * sizeof *q);
            if (!q) {
                free(p);
                x->failed = 1;
                return 1;
            }
            l->prefixes = q;
            l->capprefixes = cap;
        }
        l->prefixes[l->nprefixes++] = p;
    }
    return 0;
}

tw_status tw__s3_parse_list(const char *xml, size_t len, tw_s3_list *out, tw_error *err)
{
    memset(out, 0, sizeof *out);
    lctx x = {out, {0}, 0, 0, 0};
    tw_status rc = tw__xml_walk(xml, len, on_list, &x, err);
    free(x.cur.key);
    /* Keys are decoded once the whole answer is read: stores place EncodingType before or after them. */
    for (size_t i = 0; !rc && !x.failed && x.url_encoded && i < out->n + out->nprefixes; i++) {
        char *k = i < out->n ? out->items[i].key : out->prefixes[i - out->n];
        size_t n = tw__url_decode(k, 0);
        if (n == (size_t)-1 || n != strlen(k))
            x.failed = 2;
    }
    if (!rc && x.failed)
        rc = x.failed == 1 ? tw__err(err, TW_ENOMEM, "out of memory reading a bucket listing")
                           : tw__err(err, TW_EEVENT, "bucket listing: a key is malformed or longer than %u bytes",
                                     TW_S3_KEY_MAX);
    if (rc)
        tw__s3_list_free(out);
    return rc;
}

static tw_status add_param(tw_buf *q, const char *name, const char *value)
{
    tw_status rc = tw__buf_printf(q, "%s%s=", q->len ? "&" : "", name);
    return rc ? rc : tw__aws_encode(q, value, 0);
}

tw_status tw__s3_list(tw_aws_client *c, const char *bucket, const char *prefix, const char *start_after,
                      const char *token, const char *delimiter, unsigned max_keys, tw_s3_list *out, tw_error *err)
{
    memset(out, 0, sizeof *out);
    tw_buf q = TW_BUF_INIT, path = TW_BUF_INIT;
    char mk[16];
    snprintf(mk, sizeof mk, "%u", max_keys ? max_keys : 1000);
    tw_status rc = tw__buf_putc(&path, '/');
    if (!rc)
        rc = tw__aws_encode(&path, bucket, 0);
    if (!rc)
        rc = add_param(&q, "list-type", "2");
    if (!rc && token)
        rc = add_param(&q, "continuation-token", token);
    if (!rc && delimiter)
        rc = add_param(&q, "delimiter", delimiter);
    if (!rc)
        rc = add_param(&q, "encoding-type", "url");
    if (!rc)
        rc = add_param(&q, "max-keys", mk);
    if (!rc && prefix && *prefix)
        rc = add_param(&q, "prefix", prefix);
    if (!rc && start_after && *start_after)
        rc = add_param(&q, "start-after", start_after);
    if (rc) {
        rc = tw__err(err, rc, "out of memory");
        goto out;
    }
    tw_aws_req r = {"s3", "ListObjectsV2", "GET", path.data, q.data, NULL, 0, NULL, 0, TW_S3_LIST_RESP_MAX, 0, 1, 0};
    tw_aws_resp resp;
    rc = tw__aws_call(c, &r, &resp, err);
    if (!rc) {
        rc = tw__s3_parse_list(resp.body.data, resp.body.len, out, err);
        if (rc)
            tw__err_prefix(err, "s3 ListObjectsV2 of bucket %s", bucket);
    }
    tw__aws_resp_free(&resp);
out:
    tw__buf_free(&q);
    tw__buf_free(&path);
    return rc;
}

tw_status tw__s3_get(tw_aws_client *c, const char *bucket, const char *key, size_t max, tw_aws_resp *resp,
                     tw_error *err)
{
    tw_buf path = TW_BUF_INIT;
    tw_status rc = tw__buf_putc(&path, '/');
    if (!rc)
        rc = tw__aws_encode(&path, bucket, 0);
    if (!rc)
        rc = tw__buf_putc(&path, '/');
    if (!rc)
        rc = tw__aws_encode(&path, key, 1);
    if (rc) {
        tw__buf_free(&path);
        memset(resp, 0, sizeof *resp);
        return tw__err(err, rc, "out of memory");
    }
    tw_aws_req r = {"s3", "GetObject", "GET", path.data, NULL, NULL, 0, NULL, 0, max, 0, 1, 0};
    rc = tw__aws_call(c, &r, resp, err);
    if (rc == TW_ETOOBIG)
        tw__err(err, rc, "s3 GetObject s3://%s/%s: larger than %zu bytes", bucket, key, max);
    tw__buf_free(&path);
    return rc;
}
