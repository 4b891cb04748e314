/*
 * source/s3obj.h: one CloudTrail log file read from S3 into the engine, shared by the S3 bucket
 * source and the SQS notification source (internal).
 *
 * Ownership: the caller owns the batch (one per thread) and the client; nothing is kept between
 * calls.
 *
 * A file is marked done as "s3://BUCKET/KEY" with its size, in the same transaction as its last
 * events' alerts (as the folder source marks paths), so the bucket poller and the queue never read
 * a finished file twice, and a file cut short by a crash is read again (its repeated records are
 * dropped by eventID).
 */
#ifndef TW_SOURCE_S3OBJ_H
#define TW_SOURCE_S3OBJ_H

#include <stdint.h>

#include "aws/client.h"
#include "source/batch.h"
#include "trailwatch/limits.h"

typedef enum tw_s3obj_result {
    TW_S3OBJ_DONE = 0,             /* read and submitted; durable */
    TW_S3OBJ_ALREADY,              /* marked done before */
    TW_S3OBJ_NOT_CLOUDTRAIL,       /* complete but not {"Records":[...]}: marked done, counted rejected */
    TW_S3OBJ_GONE,                 /* the object no longer exists */
} tw_s3obj_result;

/* size: the object's size from a listing or notification, -1 when unknown (then it is fetched
 * before the done check). Returns TW_OK with *res set, or an error worth retrying later (network,
 * throttling, corrupt gzip, the engine failing). */
tw_status tw__s3obj_ingest(tw_aws_client *c, tw_src_batch *b, const tw_limits *lim, const char *bucket,
                           const char *key, int64_t size, tw_s3obj_result *res, size_t *records, tw_error *err);

/* 1 for a CloudTrail log file's key (…/CloudTrail/…_CloudTrail_….json.gz or .json), 0 for digests,
 * Insights files and anything else. */
int tw__s3obj_is_log_key(const char *key);

#endif
