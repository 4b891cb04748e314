/*
 * aws/sqs.h: the SQS calls trailwatch makes (AWS JSON 1.0 protocol): ReceiveMessage, DeleteMessage,
 * ChangeMessageVisibility (internal).
 *
 * Ownership: a tw_sqs_batch owns its messages' text (tw__sqs_batch_free).
 */
#ifndef TW_AWS_SQS_H
#define TW_AWS_SQS_H

#include <stddef.h>

#include "aws/client.h"

/* ReceiveMessage returns at most 10 messages (API limit). */
#define TW_SQS_MAX_MESSAGES 10u
/* A message body is at most 256 KiB (SQS limit); receipt handles are ~1 KiB. */
#define TW_SQS_RESP_MAX (4u * 1024u * 1024u)

typedef struct tw_sqs_msg {
    char *id;
    char *receipt;
    char *body;
    size_t body_len;
    unsigned receive_count;        /* ApproximateReceiveCount */
} tw_sqs_msg;

typedef struct tw_sqs_batch {
    tw_sqs_msg msgs[TW_SQS_MAX_MESSAGES];
    size_t n;
} tw_sqs_batch;

/* wait_s: long-poll seconds (0..20); visibility_s: 0 for the queue's own. */
tw_status tw__sqs_receive(tw_aws_client *c, const char *queue_url, unsigned max, unsigned wait_s,
                          unsigned visibility_s, tw_sqs_batch *out, tw_error *err);
void tw__sqs_batch_free(tw_sqs_batch *b);
tw_status tw__sqs_delete(tw_aws_client *c, const char *queue_url, const char *receipt, tw_error *err);
tw_status tw__sqs_visibility(tw_aws_client *c, const char *queue_url, const char *receipt, unsigned seconds,
                             tw_error *err);

#endif
