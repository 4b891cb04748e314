/*
 * aws/awscfg.h: the AWS CLI's shared files (~/.aws/config, ~/.aws/credentials) and environment, read
 * the way the AWS CLI and SDKs read them (internal).
 *
 * Ownership: a tw_aws_files owns the two files' text (read once, capped); lookups copy into the
 * caller's buffers. Nothing here keeps a secret beyond the struct, which tw__awscfg_free wipes.
 *
 * INI as botocore parses it: "[section]" headers, "key = value" lines, '#' and ';' comment lines,
 * keys compared case-sensitively after trimming; an indented "sub = value" line under "key =" with an
 * empty value is a nested setting (the `services` sections: "s3 =\n  endpoint_url = ...").
 * Config file sections are "[default]", "[profile NAME]", "[services NAME]"; the credentials file's
 * are "[NAME]".
 */
#ifndef TW_AWS_AWSCFG_H
#define TW_AWS_AWSCFG_H

#include <stddef.h>

#include "trailwatch/error.h"

/* A shared file larger than this is not an AWS CLI file (real ones are a few KiB). */
#define TW_AWSCFG_FILE_MAX   (1024u * 1024u)
/* Values longer than this are refused (session tokens are ~1-2 KiB; URLs and commands less). */
#define TW_AWSCFG_VALUE_MAX  8192u

typedef struct tw_aws_files {
    char *config;                  /* text of the config file, NULL when absent */
    size_t config_len;
    char *credentials;             /* text of the credentials file, NULL when absent */
    size_t credentials_len;
    char profile[128];             /* the profile in use: AWS_PROFILE, AWS_DEFAULT_PROFILE, "default" */
    int profile_given;             /* named explicitly (then a missing profile is an error) */
} tw_aws_files;

/* Reads both files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/...). profile: the
 * profile to use, NULL for the environment's choice. Missing files are fine; unreadable or oversized
 * ones are errors naming the file. */
tw_status tw__awscfg_load(tw_aws_files *f, const char *profile, tw_error *err);
void tw__awscfg_free(tw_aws_files *f);

/* Looks key up in section of text (a whole section name, "profile x"); sub: a nested key or NULL.
 * Returns 1 and copies the value (trimmed) into out, 0 when absent, -1 when longer than outsz - 1. */
int tw__awscfg_get(const char *text, size_t len, const char *section, const char *key, const char *sub,
                   char *out, size_t outsz);

/* The profile's setting: the credentials file's [NAME] first (for keys), then the config file's
 * [profile NAME] ([default] for "default"). Same returns as tw__awscfg_get. */
int tw__awscfg_profile(const tw_aws_files *f, const char *key, char *out, size_t outsz);

/* 1 when the profile exists in either file. */
int tw__awscfg_has_profile(const tw_aws_files *f);

/* The endpoint URL a service's calls go to, as the AWS CLI resolves it (botocore's configured
 * endpoint URLs): AWS_ENDPOINT_URL_<SERVICE_ID>, AWS_ENDPOINT_URL, the profile's `services` section
 * for the service, the profile's endpoint_url; none when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true.
 * service_env: the service id as in the variable name ("S3", "SQS", "SSM", "CLOUDTRAIL");
 * service_key: as in the config file ("s3", "sqs", "ssm", "cloudtrail"). Returns 1 when found. */
int tw__awscfg_endpoint(const tw_aws_files *f, const char *service_env, const char *service_key, char *out,
                        size_t outsz);

#endif
