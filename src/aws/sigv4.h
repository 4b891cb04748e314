/*
 * aws/sigv4.h: AWS Signature Version 4, header form (internal). Verifies requests signed by AWS
 * clients (awscli v1/v2, boto3, curl --aws-sigv4) and signs trailwatch's own calls to S3, SQS, SSM.
 *
 * Ownership: every input is borrowed for the duration of one call; results go into caller-owned,
 * fixed-size structs, so nothing is handed out to free. Secrets and derived keys are wiped before
 * a call returns; no message ever holds a secret or a full signature.
 *
 * Algorithm: strict SigV4 as AWS and botocore compute it: the query is decoded and re-encoded
 * (RFC 3986), sorted by key then value, a bare key becomes "key="; non-S3 paths are normalised
 * (dot segments, repeated '/') and encoded again; S3 paths are taken as sent. libcurl 7.88's
 * signer skips the query rules, so its unsorted or bare-key requests do not verify (by design).
 */
#ifndef TW_AWS_SIGV4_H
#define TW_AWS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "common/buf.h"
#include "trailwatch/error.h"

/* Caps on input-fed sizes (to move to include/trailwatch/limits.h). */
/* Request headers looked at: AWS clients send about 10; common HTTP servers stop near 100. */
#define TW_SIGV4_MAX_HEADERS        128u
/* One canonical header value (duplicates joined): the usual 8 KiB server limit on a header line. */
#define TW_SIGV4_MAX_HEADER_LEN     8192u
/* Authorization header: real clients send ~250 bytes; 2 KiB fits 32 signed names of 40 bytes. */
#define TW_SIGV4_MAX_AUTH_LEN       2048u
/* Names in SignedHeaders: AWS clients sign 3 to 6; also caps the headers trailwatch signs. */
#define TW_SIGV4_MAX_SIGNED_HEADERS 32u
/* Query parameters: S3 ListObjectsV2 sends fewer than 10; each one costs a sort entry. */
#define TW_SIGV4_MAX_QUERY_PARAMS   256u
/* Canonical request bytes: bounds path + query (x3 when re-encoded) + signed header values. */
#define TW_SIGV4_MAX_CANONICAL      (64u * 1024u)
/* Access key id: IAM documents 16 to 128 characters. */
#define TW_SIGV4_MAX_KEY_ID         128u
/* Secret access key: AWS secrets are 40 characters; the HMAC key buffer is sized by this. */
#define TW_SIGV4_MAX_SECRET         128u
/* Region or service name in the credential scope: the longest AWS names are ~25 characters. */
#define TW_SIGV4_MAX_SCOPE_PART     64u

#define TW_SIGV4_DATE_LEN 16u      /* "20261128T085806Z" */
#define TW_SIGV4_HEX_LEN  64u      /* hex SHA-256 / signature */

/* A header as a name/value pair of C strings. Names match in any case; a name given twice is signed
 * as the values joined with ',' (as AWS does). */
typedef struct tw_sigv4_header {
    const char *name;
    const char *value;
} tw_sigv4_header;

/* One HTTP request as seen on the wire (verification) or about to be sent (signing). */
typedef struct tw_sigv4_request {
    const char *method;              /* "GET", "POST" */
    const char *path;                /* raw, as sent (may hold %XX); NULL or "" means "/" */
    const char *query;               /* raw, without '?'; NULL or "" when there is none */
    const tw_sigv4_header *headers;
    size_t nheaders;
    const void *body;                /* may be NULL when body_len is 0 */
    size_t body_len;
} tw_sigv4_request;

/* Why verification failed. Each kind maps to the AWS JSON error code the server sends. */
typedef enum tw_sigv4_fail {
    TW_SIGV4_OK = 0,
    TW_SIGV4_MISSING_AUTHENTICATION_TOKEN, /* no Authorization header at all */
    TW_SIGV4_INCOMPLETE_SIGNATURE,         /* malformed Authorization, no date, host unsigned */
    TW_SIGV4_INVALID_SIGNATURE,            /* signature or payload hash does not match */
    TW_SIGV4_SIGNATURE_EXPIRED,            /* X-Amz-Date outside the allowed skew */
    TW_SIGV4_UNRECOGNIZED_CLIENT,          /* unknown access key id */
    TW_SIGV4_INTERNAL,                     /* out of memory, libcrypto failure, bad arguments */
    TW_SIGV4_FAIL_COUNT_                   /* not a kind: one past the last */
} tw_sigv4_fail;

/* "MissingAuthenticationTokenException", "IncompleteSignatureException",
 * "InvalidSignatureException" (also for SIGNATURE_EXPIRED, as AWS does),
 * "UnrecognizedClientException", "InternalFailure"; NULL for TW_SIGV4_OK. */
const char *tw__sigv4_fail_code(tw_sigv4_fail kind);

/* Returns the secret for an access key id, or NULL when the key is unknown. The string must stay
 * valid until tw__sigv4_verify returns. */
typedef const char *(*tw_sigv4_secret_fn)(void *ctx, const char *access_key_id);

typedef struct tw_sigv4_verifier {
    tw_sigv4_secret_fn secret_for;
    void *ctx;                       /* passed to secret_for */
    time_t now;                      /* the current time (a parameter so tests can fix it) */
    long max_skew;                   /* seconds X-Amz-Date may differ from now; AWS uses 900 */
    int s3;                          /* S3 rules: raw path, x-amz-content-sha256 UNSIGNED-PAYLOAD */
    /* Before the body has arrived (a server deciding whether to read it): the body is not looked at.
     * With x-amz-content-sha256, the whole signature is checked over that hash (the body must be
     * verified again once read); without it, everything but the signature (form, signed headers,
     * time, a known key). */
    int headers_only;
} tw_sigv4_verifier;

/* What verification found out; filled as far as parsing got, also on failure (for logs). */
typedef struct tw_sigv4_result {
    tw_sigv4_fail fail;
    char access_key_id[TW_SIGV4_MAX_KEY_ID + 1];
    char region[TW_SIGV4_MAX_SCOPE_PART + 1];
    char service[TW_SIGV4_MAX_SCOPE_PART + 1];
    char date[TW_SIGV4_DATE_LEN + 1];   /* the request time, ISO 8601 basic */
} tw_sigv4_result;

/* Verifies the Authorization header of req. TW_OK, or TW_EAUTH with res->fail set and err->msg the
 * AWS-style message to send back; TW_ENOMEM / TW_EINVAL / TW_ESYS with res->fail = INTERNAL.
 * Requests over a cap fail as IncompleteSignature. The caller checks region and service in res. */
tw_status tw__sigv4_verify(const tw_sigv4_request *req, const tw_sigv4_verifier *v,
                          tw_sigv4_result *res, tw_error *err);

typedef struct tw_sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;       /* NULL or "" unless the credentials are temporary */
} tw_sigv4_credentials;

typedef struct tw_sigv4_signer {
    const char *region;              /* "us-east-1" */
    const char *service;             /* "s3", "sqs", "ssm" */
    time_t now;
    int s3;                          /* add x-amz-content-sha256; do not re-encode the path */
} tw_sigv4_signer;

/* The headers to add to a signed request. security_token is borrowed from the credentials. */
typedef struct tw_sigv4_signed {
    char amz_date[TW_SIGV4_DATE_LEN + 1];
    char content_sha256[TW_SIGV4_HEX_LEN + 1];  /* "" unless this call added the header */
    char authorization[TW_SIGV4_MAX_AUTH_LEN + 1];
    const char *security_token;                 /* NULL when there is none */
} tw_sigv4_signed;

#define TW_SIGV4_ADDED_MAX 4u

/* Signs req. req->headers must hold Host (exactly as it will be sent) and every other header to
 * sign (at most TW_SIGV4_MAX_SIGNED_HEADERS - 3, else TW_ELIMIT); all of them are signed, so pass
 * only headers sent verbatim. They must not hold Authorization, X-Amz-Date or X-Amz-Security-Token
 * (added here). An x-amz-content-sha256 header given by the caller (e.g. UNSIGNED-PAYLOAD) is used
 * as the payload hash, else SHA-256(body).
 * path and query are as they will be sent; the query may be unsorted or hold bare keys. */
tw_status tw__sigv4_sign(const tw_sigv4_request *req, const tw_sigv4_credentials *cred,
                        const tw_sigv4_signer *s, tw_sigv4_signed *out, tw_error *err);

/* Lists the headers to add, X-Amz-Date first and Authorization last. Returns how many (2 to 4). */
size_t tw__sigv4_added_headers(const tw_sigv4_signed *sig, tw_sigv4_header out[TW_SIGV4_ADDED_MAX]);

/* Building blocks, exposed for callers building URLs and for tests. */

/* Appends s[0..n) percent-encoded: RFC 3986 unreserved bytes kept, '/' kept if keep_slash, every
 * other byte as %XX (upper-case). */
tw_status tw__sigv4_uri_encode(tw_buf *out, const char *s, size_t n, int keep_slash);
/* Appends the canonical query of a raw query string ("b=2&a" -> "a=&b=2"). TW_ELIMIT past
 * TW_SIGV4_MAX_QUERY_PARAMS. */
tw_status tw__sigv4_canonical_query(tw_buf *out, const char *query);
/* Appends the canonical URI of a raw path (S3: as is; others: normalised and encoded again). */
tw_status tw__sigv4_canonical_uri(tw_buf *out, const char *path, int s3);
/* Appends the canonical request. signed_headers is the ';'-separated lower-case list, in order. */
tw_status tw__sigv4_canonical_request(tw_buf *out, const tw_sigv4_request *req,
                                      const char *signed_headers, const char *payload_hash, int s3);
/* kSigning = HMAC chain over "AWS4" + secret, date (yyyymmdd), region, service, "aws4_request". */
tw_status tw__sigv4_signing_key(const char *secret, const char *date8, const char *region,
                                const char *service, unsigned char key[32]);
/* hex(HMAC(key, StringToSign)) for the canonical request. */
tw_status tw__sigv4_signature(const unsigned char key[32], const char *amz_date, const char *date8,
                              const char *region, const char *service, const tw_buf *canonical,
                              char sig[TW_SIGV4_HEX_LEN + 1]);
/* "20261128T085806Z" (UTC). */
void tw__sigv4_format_date(time_t t, char out[TW_SIGV4_DATE_LEN + 1]);

#endif
