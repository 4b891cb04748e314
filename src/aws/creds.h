/*
 * aws/creds.h: AWS credentials from the standard chain, cached and refreshed before they expire
 * (internal).
 *
 * Ownership: a tw_aws_creds_provider owns its cached credentials (wiped on free); tw__creds_get
 * copies them into the caller's struct, which the caller wipes (tw__creds_wipe) when done.
 *
 * The chain, in the AWS CLI's order: explicit keys (configuration), the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the profile's keys in
 * ~/.aws/credentials or ~/.aws/config (with aws_session_token), the profile's credential_process,
 * the container endpoint (ECS: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI, with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]), the EC2 instance metadata service (IMDSv2: a session
 * token first; AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_DISABLED). A profile with
 * role_arn gets its credentials from a fetch function (STS AssumeRole, in client.c) right after the
 * environment, as botocore's assume-role provider. Not supported: SSO profiles (credential_process).
 *
 * Errors never contain a key, secret or token.
 */
#ifndef TW_AWS_CREDS_H
#define TW_AWS_CREDS_H

#include <stdint.h>

#include "aws/awscfg.h"
#include "trailwatch/error.h"

/* Session tokens are 1-2 KiB in practice; STS documents no maximum, 8 KiB is far above any seen. */
#define TW_AWS_TOKEN_MAX       8192u
/* What a credential_process or metadata endpoint may print: a small JSON document. */
#define TW_AWS_CREDS_DOC_MAX   (64u * 1024u)
/* Temporary credentials are refreshed this long before they expire (botocore: 15 min advisory). */
#define TW_AWS_CREDS_REFRESH_MS (5 * 60 * 1000)

typedef struct tw_aws_cred {
    char access_key_id[129];
    char secret_access_key[129];
    char session_token[TW_AWS_TOKEN_MAX + 1];
    int64_t expires_ms;            /* 0: does not expire */
    const char *source;            /* "config", "environment", "shared-file", "process", "container", "imds" */
} tw_aws_cred;

typedef struct tw_aws_creds_provider tw_aws_creds_provider;

/* Fetches temporary credentials from elsewhere (AssumeRole): fills out (with expires_ms) or fails. */
typedef tw_status (*tw_creds_fetch_fn)(void *ctx, tw_aws_cred *out, tw_error *err);

/* A role profile's credential_source: one source instead of the chain. */
typedef enum tw_creds_only {
    TW_CREDS_CHAIN = 0,
    TW_CREDS_ONLY_ENVIRONMENT,     /* "Environment" */
    TW_CREDS_ONLY_IMDS,            /* "Ec2InstanceMetadata" */
    TW_CREDS_ONLY_CONTAINER        /* "EcsContainer" */
} tw_creds_only;

/* explicit_id/secret/token: keys given in trailwatch's configuration (NULL: use the chain).
 * metadata_timeout_ms: per request to a metadata endpoint (the SDKs use 1 s). */
tw_status tw__creds_new(const tw_aws_files *files, const char *explicit_id, const char *explicit_secret,
                        const char *explicit_token, int64_t metadata_timeout_ms, tw_aws_creds_provider **out,
                        tw_error *err);
void tw__creds_free(tw_aws_creds_provider *p);

/* The current credentials (resolved on first use, refreshed when they near expiry). Thread-safe.
 * TW_EAUTH with a message naming what was tried when no source has credentials. */
tw_status tw__creds_get(tw_aws_creds_provider *p, tw_aws_cred *out, tw_error *err);
/* Forgets cached temporary credentials (after ExpiredToken), so the next get fetches anew. */
void tw__creds_invalidate(tw_aws_creds_provider *p);
void tw__creds_wipe(tw_aws_cred *c);
/* Called after the environment in the chain, before the profile's keys (role_arn profiles). */
void tw__creds_set_fetch(tw_aws_creds_provider *p, tw_creds_fetch_fn fn, void *ctx);
void tw__creds_set_only(tw_aws_creds_provider *p, tw_creds_only only);
/* Copies keys into c, checking their lengths; what names their origin in errors (never the keys). */
tw_status tw__creds_set_keys(tw_aws_cred *c, const char *id, const char *secret, const char *token, const char *what,
                             tw_error *err);

/* Parses a credential_process / container / IMDS JSON document into out (token key: "SessionToken"
 * or "Token"; "Expiration" ISO 8601). Exposed for tests and fuzzing. */
tw_status tw__creds_parse_doc(const char *text, size_t len, const char *what, tw_aws_cred *out, tw_error *err);

/* "2024-05-01T12:00:00Z" (also with fractional seconds or +00:00) -> epoch ms; -1 when invalid. */
int64_t tw__aws_parse_time(const char *s);

#endif
