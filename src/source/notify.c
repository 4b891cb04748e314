/* source/notify.c: S3 / CloudTrail / SNS notification bodies -> the S3 objects they announce. */
#include "source/notify.h"

#include <stdlib.h>
#include <string.h>

#include "aws/s3.h"
#include "common/err.h"
#include "trailwatch/json.h"

static const char *str(const tw_json *o, const char *k, size_t *len)
{
    const tw_json *v = tw_json_get(o, k);
    return tw_json_typeof(v) == TW_JSON_STRING ? tw_json_string(v, len) : NULL;
}

static tw_status s3_records(const tw_json *recs, tw_notify_kind *kind, tw_notify_fn fn, void *ctx, tw_error *err)
{
    size_t n = tw_json_size(recs), seen = 0;
    if (n > TW_NOTIFY_OBJECTS_MAX)
        return tw__err(err, TW_ELIMIT, "notification: more than %u records", TW_NOTIFY_OBJECTS_MAX);
    *kind = TW_NOTIFY_OTHER;
    for (size_t i = 0; i < n; i++) {
        const tw_json *r = tw_json_at(recs, i);
        const char *src = str(r, "eventSource", NULL), *name = str(r, "eventName", NULL);
        if (!src || strcmp(src, "aws:s3") != 0 || !name || strncmp(name, "ObjectCreated:", 14) != 0)
            continue;
        const tw_json *s3 = tw_json_get(r, "s3");
        const char *bucket = str(tw_json_get(s3, "bucket"), "name", NULL);
        const tw_json *obj = tw_json_get(s3, "object");
        size_t klen = 0;
        const char *key = str(obj, "key", &klen);
        if (!bucket || !key || !*bucket || !klen || klen > TW_S3_KEY_MAX * 3 || strlen(key) != klen)
            return tw__err(err, TW_EEVENT, "S3 notification record %zu: no bucket name or object key", i);
        char *k = strndup(key, klen);
        if (!k)
            return tw__err(err, TW_ENOMEM, "out of memory");
        /* keys are URL-encoded with '+' for spaces (S3 notification-content-structure) */
        size_t dl = tw__url_decode(k, 1);
        if (dl == (size_t)-1 || dl != strlen(k) || dl == 0) {
            free(k);
            return tw__err(err, TW_EEVENT, "S3 notification record %zu: the object key is not URL-encoded", i);
        }
        const tw_json *size = tw_json_get(obj, "size");
        int64_t sz = tw_json_typeof(size) == TW_JSON_NUMBER && tw_json_number(size) >= 0 ? (int64_t)tw_json_number(size)
                                                                                         : -1;
        *kind = TW_NOTIFY_OBJECTS;
        seen++;
        int stop = fn(ctx, bucket, k, sz);
        free(k);
        if (stop)
            break;
    }
    (void)seen;
    return TW_OK;
}

static tw_status cloudtrail_keys(const char *bucket, const tw_json *keys, tw_notify_kind *kind, tw_notify_fn fn,
                                 void *ctx, tw_error *err)
{
    size_t n = tw_json_size(keys);
    if (tw_json_typeof(keys) != TW_JSON_ARRAY)
        return tw__err(err, TW_EEVENT, "CloudTrail notification: s3ObjectKey must be a list");
    if (n > TW_NOTIFY_OBJECTS_MAX)
        return tw__err(err, TW_ELIMIT, "CloudTrail notification: more than %u keys", TW_NOTIFY_OBJECTS_MAX);
    *kind = n ? TW_NOTIFY_OBJECTS : TW_NOTIFY_OTHER;
    for (size_t i = 0; i < n; i++) {
        const tw_json *k = tw_json_at(keys, i);
        size_t len = 0;
        const char *key = tw_json_typeof(k) == TW_JSON_STRING ? tw_json_string(k, &len) : NULL;
        if (!key || !len || len > TW_S3_KEY_MAX || strlen(key) != len)
            return tw__err(err, TW_EEVENT, "CloudTrail notification: s3ObjectKey[%zu] is not a key", i);
        if (fn(ctx, bucket, key, -1))
            break;
    }
    return TW_OK;
}

static tw_status inner(const tw_json *r, int depth, tw_notify_kind *kind, tw_notify_fn fn, void *ctx, tw_error *err);

static tw_status parse_text(const char *body, size_t len, int depth, tw_notify_kind *kind, tw_notify_fn fn, void *ctx,
                            tw_error *err)
{
    tw_limits lim;
    tw_limits_default(&lim);
    lim.event_max = TW_NOTIFY_BODY_MAX;
    lim.json_depth = 64;
    tw_json_doc *doc = NULL;
    tw_status rc = tw_json_parse(body, len, &lim, &doc, err);
    if (rc) {
        tw__err_prefix(err, "notification");
        return rc;
    }
    rc = inner(tw_json_root(doc), depth, kind, fn, ctx, err);
    tw_json_doc_free(doc);
    return rc;
}

static tw_status inner(const tw_json *r, int depth, tw_notify_kind *kind, tw_notify_fn fn, void *ctx, tw_error *err)
{
    *kind = TW_NOTIFY_OTHER;
    if (tw_json_typeof(r) != TW_JSON_OBJECT)
        return tw__err(err, TW_EEVENT, "notification: not a JSON object");
    const char *type = str(r, "Type", NULL), *topic = str(r, "TopicArn", NULL);
    size_t mlen = 0;
    const char *msg = str(r, "Message", &mlen);
    if (type && topic && msg) {
        /* an SNS envelope: the message is the notification as text (one level only) */
        if (strcmp(type, "Notification") != 0 || depth > 0)
            return TW_OK;
        return parse_text(msg, mlen, depth + 1, kind, fn, ctx, err);
    }
    const char *event = str(r, "Event", NULL);
    if (event && strcmp(event, "s3:TestEvent") == 0) {
        *kind = TW_NOTIFY_TEST;
        return TW_OK;
    }
    const tw_json *recs = tw_json_get(r, "Records");
    if (tw_json_typeof(recs) == TW_JSON_ARRAY)
        return s3_records(recs, kind, fn, ctx, err);
    const char *bucket = str(r, "s3Bucket", NULL);
    const tw_json *keys = tw_json_get(r, "s3ObjectKey");
    if (bucket && *bucket && keys)
        return cloudtrail_keys(bucket, keys, kind, fn, ctx, err);
    return TW_OK;
}

tw_status tw__notify_parse(const char *body, size_t len, tw_notify_kind *kind, tw_notify_fn fn, void *ctx,
                           tw_error *err)
{
    *kind = TW_NOTIFY_OTHER;
    return parse_text(body, len, 0, kind, fn, ctx, err);
}
