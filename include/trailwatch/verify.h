/*
 * trailwatch/verify.h: CloudTrail log file integrity validation (digest files), as `aws cloudtrail
 * validate-logs` does it: each digest's RSA signature (SHA256withRSA over its end time, location,
 * SHA-256 and the previous digest's signature), the chain of previous-digest hashes and signatures,
 * and each log file's SHA-256.
 *
 * Ownership: options are borrowed for the call; findings passed to the callback are valid only during
 * the callback; the summary is the caller's.
 *
 * Where digests come from: an S3 bucket (the digest's own signature is its x-amz-meta-signature
 * metadata), or a local folder holding the bucket's keys (as `aws s3 sync` copies them; a digest's
 * signature is then read from a "<digest>.sig" file holding the hex signature if there is one, else
 * taken from the next digest's previousDigestSignature). Public keys: a file in the form CloudTrail's
 * ListPublicKeys returns ({"PublicKeyList": [{"Value": base64 DER, "Fingerprint": hex}]}), else
 * CloudTrail ListPublicKeys is called.
 */
#ifndef TRAILWATCH_VERIFY_H
#define TRAILWATCH_VERIFY_H

#include <stdint.h>

#include "trailwatch/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tw_verify_kind {
    TW_VERIFY_DIGEST_OK = 0,       /* a digest's signature and chain hold */
    TW_VERIFY_FILE_OK,             /* a log file's hash matches its digest */
    TW_VERIFY_MISSING,             /* a log file or previous digest named by a digest is not there */
    TW_VERIFY_CHANGED,             /* a log file's (or previous digest's) hash differs */
    TW_VERIFY_UNSIGNED,            /* a digest has no signature, no known key, or a signature that fails */
    TW_VERIFY_INVALID,             /* a digest that cannot be read (not gzip/JSON, wrong location) */
} tw_verify_kind;

typedef struct tw_verify_finding {
    tw_verify_kind kind;
    const char *object;            /* "s3://bucket/key" or the local path */
    const char *detail;            /* what was expected and found, "" for the OK kinds */
} tw_verify_finding;

typedef void (*tw_verify_fn)(void *ctx, const tw_verify_finding *f);

typedef struct tw_verify_opts {
    const char *folder;            /* a local copy (the folder holding AWSLogs/), or NULL for S3 */
    const char *bucket;            /* S3: the trail's bucket */
    const char *prefix;            /* the trail's key prefix, NULL or "" for none */
    const char *public_keys;       /* a ListPublicKeys JSON file; NULL: ask CloudTrail */
    const char *region, *profile, *endpoint_url; /* AWS settings (NULL: as the AWS CLI resolves them) */
    int64_t start_ms, end_ms;      /* digests whose end time is in [start, end); 0: unbounded */
} tw_verify_opts;

typedef struct tw_verify_summary {
    uint64_t digests, digests_ok, files, files_ok;
    uint64_t missing, changed, unsigned_digests, invalid;
} tw_verify_summary;

/* Walks every digest (in key order per account and region) and reports each finding. TW_OK when the
 * walk completed (problems are findings, counted in sum); an error when it could not (no access, no
 * keys, an unreadable folder). */
tw_status tw_verify_run(const tw_verify_opts *o, tw_verify_fn fn, void *ctx, tw_verify_summary *sum, tw_error *err);

#ifdef __cplusplus
}
#endif
#endif
