/*
 * event/envelope.h: how a raw CloudTrail record maps onto the EventBridge envelope (internal).
 *
 * Ownership: pure functions over borrowed strings; results point into static storage or the input.
 * Used both by the matcher (which never builds the wrapped JSON) and by the event writer (which does).
 */
#ifndef TW_EVENT_ENVELOPE_H
#define TW_EVENT_ENVELOPE_H

#include <stddef.h>

/* detail-type for a CloudTrail eventType ("AwsApiCall" -> "AWS API Call via CloudTrail"). Records
 * without a (known) eventType are API calls: early records (eventVersion 1.0x) had no eventType. */
const char *tw__envelope_detail_type(const char *event_type, size_t len);

/* The service part of eventSource: "dynamodb.amazonaws.com" -> "dynamodb" (returned as a span of
 * the input). Sources not ending in .amazonaws.com keep everything before their first dot. */
void tw__envelope_service(const char *event_source, size_t len, size_t *svc_len);

#endif
