/*
 * source/sqssrc.h: CloudTrail log files announced on an SQS queue (S3 event notifications or
 * CloudTrail's SNS notifications, raw or SNS-wrapped) (internal).
 *
 * Ownership: the server owns the tw_sqssrc; stop joins its threads. Settings are copied at start;
 * the AWS client is borrowed and must outlive the source.
 *
 * A message is deleted only after every log file it announces is durably accepted (alerts committed
 * and the file marked done), so a crash leaves it on the queue to come back after its visibility
 * timeout. While a message's files are being read, a heartbeat renews its visibility every third
 * of the timeout, so a big file does not make it reappear to another reader. Several trailwatch
 * processes on one queue share the work: SQS hands each message to one of them; a message that
 * comes back (crash, timeout) finds its files done or has its repeated records dropped by eventID.
 * s3:TestEvent and messages that announce nothing are deleted; bodies that are not notifications
 * are deleted and counted as rejected (an SQS redrive policy would only circle them).
 */
#ifndef TW_SOURCE_SQSSRC_H
#define TW_SOURCE_SQSSRC_H

#include "aws/client.h"
#include "config/config_int.h"
#include "engine/engine.h"
#include "telemetry/metrics.h"

typedef struct tw_sqssrc tw_sqssrc;

tw_status tw__sqssrc_start(tw_engine *e, tw_metrics *m, tw_aws_client *c, const tw_sqssrc_cfg *cfg,
                          const tw_limits *lim, tw_sqssrc **out, tw_error *err);
/* 1 when the last receive returned no message. */
int tw__sqssrc_idle(const tw_sqssrc *s);
void tw__sqssrc_stop(tw_sqssrc *s);

#endif
