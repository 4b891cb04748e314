/*
 * aws/http.h: one HTTP exchange with libcurl, capped and with a deadline (internal to src/aws).
 *
 * Ownership: a tw_aws_conn is a reusable connection (curl easy handle, keep-alive) owned by one
 * thread at a time; the response body goes into the caller's tw_buf (its max is the cap).
 * Error messages name the method and URL (which never carries a secret) and curl's reason.
 */
#ifndef TW_AWS_HTTP_H
#define TW_AWS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "trailwatch/error.h"

typedef struct tw_aws_conn tw_aws_conn;

/* Response headers kept for callers (S3 digest signatures, request ids). */
typedef struct tw_aws_http_resp {
    long status;                   /* 0 when no response came */
    char request_id[128];          /* x-amz-request-id / x-amzn-RequestId */
    char meta_signature[1100];     /* x-amz-meta-signature (CloudTrail digests: hex of 256-512 bytes) */
    char retry_after[32];
    char last_modified[64];
    char etag[128];
    int body_too_big;              /* the body passed the buffer's cap (the exchange was cut) */
} tw_aws_http_resp;

tw_status tw__aws_conn_new(tw_aws_conn **out, tw_error *err);
void tw__aws_conn_free(tw_aws_conn *c);

/* headers: "Name: value" lines (NULL-terminated list or n entries). body may be NULL for none.
 * TW_EHTTP when the exchange failed below HTTP (connect, timeout: TW_ETIMEOUT), with the reason;
 * TW_ETOOBIG when the body passed out->max. Any HTTP status is TW_OK (resp->status tells). */
tw_status tw__aws_http(tw_aws_conn *c, const char *method, const char *url, const char *const *headers,
                       size_t nheaders, const void *body, size_t body_len, int64_t timeout_ms, tw_buf *out,
                       tw_aws_http_resp *resp, tw_error *err);

#endif
