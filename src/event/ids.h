/*
 * event/ids.h: finding an event's CloudTrail eventID without parsing the whole event (internal).
 *
 * Ownership: reads borrowed text, writes into a caller's buffer.
 */
#ifndef TW_EVENT_IDS_H
#define TW_EVENT_IDS_H

#include <stddef.h>

/* The CloudTrail eventID of a raw record (record = 1: its top-level "eventID") or of an EventBridge
 * event carrying one (record = 0: "detail"."eventID"). Returns its length (written NUL-terminated
 * into out), 0 when there is none, it is not a plain string, or it does not fit in cap - 1 bytes. */
size_t tw__event_cloudtrail_id(const char *json, size_t len, int record, char *out, size_t cap);

/* The top-level "id" of an EventBridge event, under the same rules. */
size_t tw__event_envelope_id(const char *json, size_t len, char *out, size_t cap);

#endif
