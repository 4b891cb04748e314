/*
 * fuzz/fuzz_aws_body.h: the checks of fuzz_aws: the parsers of what AWS (or anything posing as it)
 * sends trailwatch (see fuzz_common.h for how bodies are shared).
 *
 * Input: one control byte, then the bytes. The control byte's low 2 bits pick the parser:
 *   0  an S3 ListObjectsV2 answer (XML through expat, DOCTYPE refused, depth and text capped);
 *   1  an SQS message body (S3 / CloudTrail / SNS-wrapped notifications);
 *   2  a credentials document (credential_process, ECS, IMDS);
 *   3  an AWS shared config file (INI): lookups of a few keys, sections and nested settings.
 * Checks: every call ends with a status; on success every key is non-empty, without NUL and within
 * TW_S3_KEY_MAX; credentials have both key parts; INI values fit the buffer they were copied into.
 */
#ifndef TW_FUZZ_AWS_BODY_H
#define TW_FUZZ_AWS_BODY_H

#include "aws/awscfg.h"
#include "aws/creds.h"
#include "aws/s3.h"
#include "fuzz_common.h"
#include "source/notify.h"

FUZZ_FN void fuzz_aws_init(void) {}
FUZZ_FN void fuzz_aws_fini(void) {}

static int fuzz_aws_on_object(void *ctx, const char *bucket, const char *key, int64_t size)
{
    (void)ctx;
    (void)size;
    FUZZ_CHECK(bucket && *bucket && key && *key, "notification object without bucket or key");
    FUZZ_CHECK(strlen(key) <= TW_S3_KEY_MAX * 3, "notification key of %zu bytes", strlen(key));
    return 0;
}

FUZZ_FN void fuzz_aws_check(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    unsigned mode = data[0] & 3;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    tw_error err;
    if (mode == 0) {
        tw_s3_list l;
        if (tw__s3_parse_list(text, len, &l, &err) == TW_OK) {
            for (size_t i = 0; i < l.n; i++) {
                FUZZ_CHECK(l.items[i].key && strlen(l.items[i].key) <= TW_S3_KEY_MAX, "listing key too long");
            }
            tw__s3_list_free(&l);
        } else {
            FUZZ_CHECK(err.code != TW_OK && err.msg[0], "a failed listing without a message");
        }
    } else if (mode == 1) {
        tw_notify_kind kind;
        tw_status rc = tw__notify_parse(text, len, &kind, fuzz_aws_on_object, NULL, &err);
        FUZZ_CHECK(rc == TW_OK || err.msg[0], "a failed notification without a message");
    } else if (mode == 2) {
        tw_aws_cred c;
        if (tw__creds_parse_doc(text, len, "fuzz", &c, &err) == TW_OK) {
            FUZZ_CHECK(c.access_key_id[0] && c.secret_access_key[0], "credentials without a key part");
        }
        tw__creds_wipe(&c);
    } else {
        char *copy = malloc(len + 1);
        if (!copy)
            return;
        memcpy(copy, text, len);
        copy[len] = '\0';
        static const char *const keys[][3] = {{"default", "region", NULL},
                                              {"profile dev", "credential_process", NULL},
                                              {"services local", "s3", "endpoint_url"},
                                              {"a", "k", NULL}};
        for (size_t i = 0; i < 4; i++) {
            char out[64];
            int r = tw__awscfg_get(copy, len, keys[i][0], keys[i][1], keys[i][2], out, sizeof out);
            FUZZ_CHECK(r == -1 || r == 0 || (r == 1 && strlen(out) < sizeof out), "INI lookup result %d", r);
        }
        free(copy);
    }
}

#endif
