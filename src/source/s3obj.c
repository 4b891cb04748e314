/* source/s3obj.c: GetObject, gunzip, records into the engine, file marked done. */
#include "source/s3obj.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/s3.h"
#include "common/err.h"

int tw__s3obj_is_log_key(const char *key)
{
    size_t n = strlen(key);
    int json = (n > 8 && strcmp(key + n - 8, ".json.gz") == 0) || (n > 5 && strcmp(key + n - 5, ".json") == 0);
    return json && !strstr(key, "CloudTrail-Digest") && !strstr(key, "CloudTrail-Insight") &&
           strstr(key, "_CloudTrail_") != NULL;
}

typedef struct items {
    tw_ingest_item *it;
    tw_event_where *where;
    size_t n, cap;
} items;

static tw_status grow(items *v)
{
    size_t cap = v->cap ? v->cap * 2 : 256;
    tw_ingest_item *it = realloc(v->it, cap * sizeof *it);
    if (it)
        v->it = it;
    tw_event_where *w = it ? realloc(v->where, cap * sizeof *w) : NULL;
    if (!w)
        return TW_ENOMEM;
    v->where = w;
    v->cap = cap;
    return TW_OK;
}

tw_status tw__s3obj_ingest(tw_aws_client *c, tw_src_batch *b, const tw_limits *lim, const char *bucket,
                           const char *key, int64_t size, tw_s3obj_result *res, size_t *records, tw_error *err)
{
    *records = 0;
    *res = TW_S3OBJ_DONE;
    size_t plen = strlen(bucket) + strlen(key) + 8;
    char *path = malloc(plen);
    if (!path)
        return tw__err(err, TW_ENOMEM, "out of memory");
    snprintf(path, plen, "s3://%s/%s", bucket, key);
    tw_aws_resp resp;
    memset(&resp, 0, sizeof resp);
    tw_event_reader *rd = NULL;
    items v = {0};
    tw_status rc = TW_OK;
    if (size >= 0 && tw__engine_file_done(b->engine, path, size, 0)) {
        *res = TW_S3OBJ_ALREADY;
        goto out;
    }
    rc = tw__s3_get(c, bucket, key, lim->file_max, &resp, err);
    if (rc == TW_ENOTFOUND) {
        *res = TW_S3OBJ_GONE;
        rc = TW_OK;
        goto out;
    }
    if (rc)
        goto out;
    size = (int64_t)resp.body.len;
    if (tw__engine_file_done(b->engine, path, size, 0)) {
        *res = TW_S3OBJ_ALREADY;
        goto out;
    }
    if ((rc = tw_event_reader_buffer(resp.body.data ? resp.body.data : "", resp.body.len, lim, &rd, err))) {
        tw__err_prefix(err, "%s", path);
        goto out;
    }
    tw__aws_resp_free(&resp); /* the reader has its own (decompressed) copy */
    int is_records = 1;
    for (;;) {
        const char *json;
        size_t len;
        tw_event_where w;
        tw_status got = tw_event_reader_next(rd, &json, &len, &w, err);
        if (w.format != TW_FORMAT_RECORDS) {
            is_records = 0;
            if (got || json)
                continue;
            break;
        }
        if (got) {
            rc = got; /* a record that is not valid JSON breaks the file: retried, never half-taken */
            tw__err_prefix(err, "%s", path);
            goto out;
        }
        if (!json)
            break;
        if (v.n == v.cap && (rc = grow(&v))) {
            tw__err(err, rc, "out of memory reading %s", path);
            goto out;
        }
        v.it[v.n] = (tw_ingest_item){json, len, TW_EVENT_CLOUDTRAIL};
        v.where[v.n++] = w;
    }
    for (size_t i = 0; is_records && i < v.n && !rc; i++)
        rc = tw__src_add(b, v.it[i].json, v.it[i].len, TW_EVENT_CLOUDTRAIL, &v.where[i]);
    if (!rc) {
        b->opts.file_path = path;
        b->opts.file_size = size;
        b->opts.file_mtime = 0;
        rc = tw__src_flush(b);
        b->opts.file_path = NULL;
    }
    if (rc) {
        /* the engine failed (stopping, disk): nothing of the file counts; it is read again later */
        tw__err(err, rc, "%s: %s", path, b->err.msg);
        b->failed = TW_OK;
        b->n = 0;
        goto out;
    }
    *res = is_records ? TW_S3OBJ_DONE : TW_S3OBJ_NOT_CLOUDTRAIL;
    *records = is_records ? v.n : 0;
out:
    tw_event_reader_free(rd);
    tw__aws_resp_free(&resp);
    free(v.it);
    free(v.where);
    free(path);
    return rc;
}
