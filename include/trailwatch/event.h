/*
 * trailwatch/event.h: events from files and streams, and CloudTrail records as EventBridge events.
 *
 * Ownership: the caller owns a tw_event_reader and frees it with tw_event_reader_free; the event text
 * returned by tw_event_reader_next belongs to the reader and is valid until the next call. Buffers
 * written by tw_event_wrap_cloudtrail are malloc'd and belong to the caller (free()).
 *
 * Input formats, detected from the first bytes (after gzip, which is recognised by its magic bytes):
 *   - JSON lines: one event per line (blank lines are ignored);
 *   - a CloudTrail log file: one object {"Records": [record, ...]};
 *   - a JSON array of events or records (Stratus Red Team and similar exports).
 * A bad line or element is reported (TW_E* from next, with where it is) and reading carries on with
 * the next one; corrupt or truncated gzip is reported once, after the events before it.
 */
#ifndef TRAILWATCH_EVENT_H
#define TRAILWATCH_EVENT_H

#include <stddef.h>

#include "trailwatch/error.h"
#include "trailwatch/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_event_reader tw_event_reader;

typedef enum tw_event_format {
    TW_FORMAT_LINES = 0,
    TW_FORMAT_RECORDS = 1,    /* {"Records": [...]} */
    TW_FORMAT_ARRAY = 2,      /* [...] */
} tw_event_format;

typedef struct tw_event_where {
    unsigned long line;       /* 1-based line of the event (JSON lines) or of the element's start */
    unsigned long index;      /* 0-based element index (documents); event count (JSON lines) */
    tw_event_format format;
} tw_event_where;

/* Opens path ("-" is standard input). lim may be NULL for the defaults (line_max, file_max). */
tw_status tw_event_reader_open(const char *path, const tw_limits *lim, tw_event_reader **out, tw_error *err);
/* Reads from an open descriptor, which the reader does not close. */
tw_status tw_event_reader_fd(int fd, const tw_limits *lim, tw_event_reader **out, tw_error *err);
/* Reads from memory (buf is copied; gzip recognised by its magic is decompressed at once, so corrupt
 * or truncated gzip and input over lim->file_max are errors of this call, and nothing is read). The
 * event text returned by next stays valid until the reader is freed, not only until the next call. */
tw_status tw_event_reader_buffer(const char *buf, size_t len, const tw_limits *lim, tw_event_reader **out,
                                 tw_error *err);
/* Reads another file (path, or "-") with the buffers of r, which forgets the input it had (and closes
 * it if it opened it): a folder of many small files costs no allocation per file. On an error r is
 * unchanged. TW_EINVAL for a reader made by tw_event_reader_buffer. */
tw_status tw_event_reader_reopen(tw_event_reader *r, const char *path, tw_error *err);
void tw_event_reader_free(tw_event_reader *r);

/* The next event's JSON text. TW_OK with *json set; TW_OK with *json == NULL at the end; an error for
 * one bad line or element (err says what; *where says where), after which reading may go on. A
 * document that is not valid JSON is an error at the place it breaks, and ends the input. */
tw_status tw_event_reader_next(tw_event_reader *r, const char **json, size_t *len, tw_event_where *where,
                               tw_error *err);

/* Bytes of (decompressed) input consumed so far. */
size_t tw_event_reader_bytes(const tw_event_reader *r);

/* Wraps a raw CloudTrail record (JSON text of one object) in the EventBridge envelope EventBridge
 * would deliver: version "0", a new UUID id, detail-type from eventType, source "aws."+service,
 * account, time, region, resources [], detail = the record verbatim. */
tw_status tw_event_wrap_cloudtrail(const char *record, size_t len, char **out, size_t *out_len,
                                   tw_error *err);

/* 1 when the object text is a raw CloudTrail record (eventVersion and eventSource, no detail-type),
 * judged from its top-level keys only. */
int tw_event_is_cloudtrail_record(const char *json, size_t len);

#ifdef __cplusplus
}
#endif
#endif
