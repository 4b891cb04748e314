/*
 * aws/client.h: signed AWS API calls from C: credentials chain, region, endpoint per service,
 * SigV4, retries with AWS's standard backoff (internal; the one way trailwatch talks to AWS).
 *
 * Ownership: a tw_aws_client is created once (tw__aws_client_new) and shared by any number of
 * threads; it owns its credentials provider and a pool of connections. A tw_aws_resp owns its body
 * (tw__aws_resp_free). Requests are borrowed for the duration of the call.
 *
 * Errors: non-2xx answers become TW_EHTTP (TW_EAUTH for credential/signature codes, TW_ENOTFOUND
 * for NoSuchKey/NoSuchBucket/ResourceNotFound...) with "SERVICE ACTION: Code: message (HTTP n)";
 * unreachable endpoints "SERVICE ACTION: cannot reach URL: reason". No message ever carries a key,
 * secret, token or signature.
 *
 * Retries (the SDKs' "standard" mode): up to max_attempts (default 3) for throttling codes, 429,
 * 500/502/503/504 and connection failures; before attempt i+1 a sleep of rand(0,1) * min(base * 2^i,
 * 20 s). An ExpiredToken answer refreshes the credentials once.
 */
#ifndef TW_AWS_CLIENT_H
#define TW_AWS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "trailwatch/error.h"
#include "trailwatch/json.h"

/* Default cap on a response body kept in memory (API answers; S3 objects pass their own cap). */
#define TW_AWS_RESP_MAX        (16u * 1024u * 1024u)
/* Endpoint URL, region, profile strings: far above any real one. */
#define TW_AWS_URL_MAX         2048u
#define TW_AWS_ENDPOINTS_MAX   32u
/* role_arn profiles whose source_profile is itself a role: the SDKs follow chains; 4 is deeper than
 * any real setup and stops a source_profile loop. */
#define TW_AWS_ROLE_CHAIN_MAX  4u
/* IAM's limits: a role ARN is at most 2048 characters, an external id at most 1224. */
#define TW_AWS_ROLE_ARN_MAX    2048u
#define TW_AWS_EXTERNAL_ID_MAX 1224u

typedef struct tw_aws_endpoint {
    const char *service;           /* "s3", "sqs", "ssm", ... (signing name) */
    const char *url;
} tw_aws_endpoint;

/* What trailwatch.yml's `aws:` section (or a command line) says; everything optional. */
typedef struct tw_aws_settings {
    const char *profile;           /* NULL: AWS_PROFILE, AWS_DEFAULT_PROFILE, "default" */
    const char *region;            /* NULL: AWS_REGION, AWS_DEFAULT_REGION, the profile's, us-east-1 */
    const char *endpoint_url;      /* all services; NULL: the environment's and the profile's */
    const tw_aws_endpoint *endpoints; /* per service, winning over everything */
    size_t nendpoints;
    const char *access_key_id;     /* explicit keys (rare: prefer the chain) */
    const char *secret_access_key;
    const char *session_token;
    int64_t timeout_ms;            /* per attempt; default 10 s */
    unsigned max_attempts;         /* default 3 */
    int64_t retry_base_ms;         /* default 1000 */
} tw_aws_settings;

typedef struct tw_aws_client tw_aws_client;

tw_status tw__aws_client_new(const tw_aws_settings *s, tw_aws_client **out, tw_error *err);
void tw__aws_client_free(tw_aws_client *c);
const char *tw__aws_client_region(const tw_aws_client *c);
/* The endpoint base URL for a service ("http://127.0.0.1:5000" or "https://ssm.REGION.amazonaws.com"),
 * and whether it was configured (an override: S3 then uses path-style addressing). */
const char *tw__aws_endpoint(const tw_aws_client *c, const char *service, int *configured);

/* Environment lines ("NAME=value") giving a child process the same AWS settings: region, profile,
 * configured endpoints, and the resolved credentials (as Lambda gives its functions). Appends to
 * out (a NULL-terminated malloc'd array; *n counts entries). The caller frees each and the array. */
tw_status tw__aws_child_env(tw_aws_client *c, char ***out, size_t *n, tw_error *err);

typedef struct tw_aws_req {
    const char *service;           /* signing name and endpoint key: "s3", "sqs", "ssm", "cloudtrail" */
    const char *action;            /* for messages: "ListObjectsV2", "DescribeParameters" */
    const char *method;            /* "GET", "POST" */
    const char *path;              /* encoded, from the endpoint's root ("/bucket/key"); NULL = "/" */
    const char *query;             /* encoded "a=1&b=2" (any order), or NULL */
    const char *const *headers;    /* extra "Name: value" lines to send and sign (Content-Type, X-Amz-Target) */
    size_t nheaders;
    const void *body;
    size_t body_len;
    size_t max_response;           /* 0: TW_AWS_RESP_MAX */
    int64_t timeout_ms;            /* 0: the client's */
    int s3;                        /* S3 signing rules (x-amz-content-sha256, raw path) */
    int64_t deadline_ms;           /* CLOCK_MONOTONIC ms after which no attempt starts or waits; 0: none */
} tw_aws_req;

typedef struct tw_aws_resp {
    long status;
    tw_buf body;
    char error_code[128];          /* the AWS error code of a non-2xx answer, "" otherwise */
    char request_id[128];
    char meta_signature[1100];     /* x-amz-meta-signature (CloudTrail digest files) */
    unsigned attempts;
} tw_aws_resp;

/* One call with retries. TW_OK only for a 2xx answer. */
tw_status tw__aws_call(tw_aws_client *c, const tw_aws_req *r, tw_aws_resp *resp, tw_error *err);
void tw__aws_resp_free(tw_aws_resp *r);

/* An AWS JSON protocol call (SSM, CloudTrail, DynamoDB, SQS, ...): service is the signing name;
 * action the operation; body the JSON input ("{}" when NULL). The output is parsed into *out. Known
 * services take their target prefix and JSON version from a table; others need target_prefix
 * (then JSON 1.1). timeout_ms (0: the client's) bounds the whole call, retries included. */
tw_status tw__aws_json(tw_aws_client *c, const char *service, const char *action, const char *target_prefix,
                       const char *body, size_t len, int64_t timeout_ms, tw_json_doc **out, tw_error *err);

/* The target prefix and JSON version of a known JSON-protocol service, NULL when unknown. */
const char *tw__aws_json_target(const char *service, const char **json_version);

/* Appends s percent-encoded for a query value or S3 key (RFC 3986; '/' kept when keep_slash). */
tw_status tw__aws_encode(tw_buf *out, const char *s, int keep_slash);

/* Calls the client makes, by service and action (for tests and the benchmark: "API calls made"). */
uint64_t tw__aws_calls(const tw_aws_client *c);

#endif
