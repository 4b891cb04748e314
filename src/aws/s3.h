/*
 * aws/s3.h: the S3 calls trailwatch makes: ListObjectsV2 and GetObject (internal).
 *
 * Ownership: a tw_s3_list owns its keys and prefixes (tw__s3_list_free); GetObject's bytes are in
 * the caller's tw_aws_resp (tw__aws_resp_free).
 *
 * Path-style addressing ("ENDPOINT/bucket/key"), which S3 still serves and every S3-compatible
 * store and moto understand. Listing asks for encoding-type=url, so keys with any bytes survive the
 * XML; they are decoded here.
 */
#ifndef TW_AWS_S3_H
#define TW_AWS_S3_H

#include <stddef.h>
#include <stdint.h>

#include "aws/client.h"

/* S3 keys are at most 1024 bytes of UTF-8 (S3 documentation). */
#define TW_S3_KEY_MAX 1024u
/* One ListObjectsV2 page holds at most 1000 keys; its XML stays well under 2 MiB. */
#define TW_S3_LIST_RESP_MAX (4u * 1024u * 1024u)

typedef struct tw_s3_object {
    char *key;
    int64_t size;
    char etag[72];
} tw_s3_object;

typedef struct tw_s3_list {
    tw_s3_object *items;
    size_t n, cap;
    char **prefixes;               /* CommonPrefixes (with a delimiter) */
    size_t nprefixes, capprefixes;
    int truncated;
    char *next_token;              /* NextContinuationToken, NULL when none */
} tw_s3_list;

/* One page. prefix, start_after, token, delimiter may be NULL; max_keys 1..1000. */
tw_status tw__s3_list(tw_aws_client *c, const char *bucket, const char *prefix, const char *start_after,
                      const char *token, const char *delimiter, unsigned max_keys, tw_s3_list *out, tw_error *err);
void tw__s3_list_free(tw_s3_list *l);

/* The object's bytes into resp->body (at most max bytes: TW_ETOOBIG beyond). */
tw_status tw__s3_get(tw_aws_client *c, const char *bucket, const char *key, size_t max, tw_aws_resp *resp,
                     tw_error *err);

/* Parses a ListObjectsV2 answer (exposed for tests and fuzzing). */
tw_status tw__s3_parse_list(const char *xml, size_t len, tw_s3_list *out, tw_error *err);

/* Decodes %XX and (form_plus) '+' as space in place; returns the new length, or (size_t)-1 when a
 * '%' is not followed by two hex digits. S3 notifications encode keys with '+' for spaces. */
size_t tw__url_decode(char *s, int form_plus);

#endif
