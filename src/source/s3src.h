/*
 * source/s3src.h: CloudTrail log files polled from an S3 bucket (internal).
 *
 * Ownership: the server owns the tw_s3src; stop joins its threads. The settings are copied at start
 * (a reload does not change them); the AWS client is borrowed and must outlive the source.
 *
 * Layout: [PREFIX/]AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_
 * YYYYMMDDTHHMMZ_UNIQUE.json.gz (single-account and organization trails; accounts, regions and
 * organizations are discovered with delimiter listings unless configured). Each account/region is a
 * stream listed with ListObjectsV2 in key order from a start-after key built from a time, so a
 * restart lists only from where it stopped.
 *
 * Position and late files: a stream's position is the delivery time (from the key) up to which
 * every file it listed is done; it is kept in DATA_DIR/s3-positions (rewritten atomically). A poll
 * lists from position - lookback (default 1 h), because a file named with an earlier delivery time
 * can appear after later ones; files already done are skipped by the engine's done marks
 * ("s3://BUCKET/KEY", committed with the file's alerts), so nothing is read twice and a file that
 * appears late within the lookback is not missed. A file that fails holds the position back until
 * it is read. Digest and Insights files are skipped.
 *
 * With `verify`, the digests are validated after a poll every interval (trailwatch/verify.h); when
 * something is missing, changed or unsigned, an event {"source": "trailwatch", "detail-type":
 * "CloudTrail Log File Validation Failed", "detail": {counts, findings}} goes into the engine like
 * any other, for rules to alert on.
 */
#ifndef TW_SOURCE_S3SRC_H
#define TW_SOURCE_S3SRC_H

#include "aws/client.h"
#include "config/config_int.h"
#include "engine/engine.h"
#include "telemetry/metrics.h"

typedef struct tw_s3src tw_s3src;

/* profile: aws.profile (for digest validation's own client), NULL for none. */
tw_status tw__s3src_start(tw_engine *e, tw_metrics *m, tw_aws_client *c, const tw_s3src_cfg *cfg,
                         const char *profile, const char *data_dir, const tw_limits *lim, tw_s3src **out,
                         tw_error *err);
/* 1 between polls once at least one full poll has completed. */
int tw__s3src_idle(const tw_s3src *s);
void tw__s3src_stop(tw_s3src *s);

/* Delivery time (epoch ms) in a log file's name ("..._20240501T1205Z_..."), -1 when none. */
int64_t tw__s3src_key_time(const char *key);

#endif
