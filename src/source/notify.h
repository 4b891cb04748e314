/*
 * source/notify.h: what an SQS message body announces: S3 event notifications, CloudTrail's SNS
 * delivery notifications ({"s3Bucket", "s3ObjectKey": [...]}), either raw or wrapped in an SNS
 * envelope ({"Type": "Notification", "Message": "<json>"}), and S3's s3:TestEvent (internal).
 *
 * Ownership: reads borrowed text; bucket and key strings passed to the callback are valid only
 * during the call.
 */
#ifndef TW_SOURCE_NOTIFY_H
#define TW_SOURCE_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "trailwatch/error.h"

/* Objects one message may announce: S3 sends one record per message; CloudTrail lists a few keys. */
#define TW_NOTIFY_OBJECTS_MAX 1000u
/* An SQS message body is at most 256 KiB; an SNS envelope nests one JSON document. */
#define TW_NOTIFY_BODY_MAX    (256u * 1024u)

typedef enum tw_notify_kind {
    TW_NOTIFY_OBJECTS = 0,         /* objects announced (the callback got each) */
    TW_NOTIFY_TEST,                /* s3:TestEvent: nothing to do */
    TW_NOTIFY_OTHER,               /* valid JSON, but no S3 objects (SNS confirmations, other events) */
} tw_notify_kind;

/* size: -1 when the notification does not say. Return non-zero to stop. */
typedef int (*tw_notify_fn)(void *ctx, const char *bucket, const char *key, int64_t size);

/* TW_OK with *kind set; TW_EJSON / TW_EEVENT / TW_ELIMIT for bodies that are not notifications
 * (malformed JSON, an S3 key that is not URL-encoded correctly, too many objects). */
tw_status tw__notify_parse(const char *body, size_t len, tw_notify_kind *kind, tw_notify_fn fn, void *ctx,
                           tw_error *err);

#endif
