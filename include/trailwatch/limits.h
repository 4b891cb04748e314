/*
 * trailwatch/limits.h: every limit on input-fed sizes and depths, in one place, with its reason.
 *
 * Ownership: tw_limits is a plain value owned by the caller; functions that take one copy what they need.
 *
 * TW_DEFAULT_* are the values tw_limits_default() fills in; a program may raise or lower them per
 * instance (trailwatch's command line and configuration do). TW_MAX_* are fixed ceilings that no
 * configuration can exceed, because structures are sized by them.
 */
#ifndef TRAILWATCH_LIMITS_H
#define TRAILWATCH_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Events: EventBridge rejects entries over 256 KiB (PutEvents doc); AWS raised this to 1 MiB in
 * 2026, so the limit is configurable, default the strict value. */
#define TW_DEFAULT_EVENT_MAX        (256u * 1024u)
#define TW_MAX_EVENT_MAX            (64u * 1024u * 1024u)

/* JSON nesting: PutEvents documents a Detail nesting limit of 1000 levels, so accept at least that;
 * the scanner keeps one byte of stack per level. */
#define TW_DEFAULT_JSON_DEPTH       1000u
#define TW_MAX_JSON_DEPTH           10000u

/* Pattern text: EventPattern is limited to 4096 characters by the EventBridge API model. */
#define TW_DEFAULT_PATTERN_MAX      4096u
#define TW_MAX_PATTERN_MAX          (1024u * 1024u)

/* $or: every combination becomes one conjunction in the automaton; EventBridge caps this near 1000. */
#define TW_DEFAULT_OR_COMBINATIONS  1000u

/* Wildcards are matched segment by segment (linear in the value); the number of '*' bounds the work
 * per value and the size of the compiled form. EventBridge rejects "complex" wildcards too. */
#define TW_DEFAULT_WILDCARD_STARS   32u

/* Rules in one set: each rule costs a few hundred bytes compiled; 1 M keeps a set well under 1 GB. */
#define TW_DEFAULT_RULES_MAX        1000000u

/* Values recorded per event for fields that some rule names (array elements count one each). A
 * 256 KiB event holds at most ~128 K values; the cap keeps scratch memory bounded for larger limits. */
#define TW_DEFAULT_EVENT_VALUES     (256u * 1024u)

/* Array consistency is decided by a backtracking search; this caps the steps spent on one event so
 * that a hostile event cannot make matching quadratic or worse. Real events need a handful. */
#define TW_DEFAULT_MATCH_STEPS      (1u << 20)

/* One line of JSON-lines input may hold an event plus framing; lines beyond this are skipped. */
#define TW_DEFAULT_LINE_MAX         (TW_DEFAULT_EVENT_MAX * 4u)

/* A CloudTrail log file: CloudTrail writes files of a few MB; 512 MiB uncompressed is generous and
 * still protects against gzip bombs. */
#define TW_DEFAULT_FILE_MAX         (512u * 1024u * 1024u)

/* Segments of one field path ("a.b.c" has 3). An event may spell any run of segments as one
 * dotted key, so the path trie holds an edge per run: quadratic in the segments. Real patterns
 * name paths of 2 to 6 segments. */
#define TW_MAX_PATH_SEGMENTS        64u

/* Object keys longer than this are never field names a rule can name (paths are < pattern size). */
#define TW_MAX_KEY_LEN              TW_MAX_PATTERN_MAX

/* The HTTP listener of `trailwatch serve` (server.* settings; defaults here, reasons beside them). */
/* Headers must be complete this long after a connection opens or its previous response went out: a
 * client that trickles bytes cannot hold a connection open for ever (slow loris). */
#define TW_DEFAULT_HTTP_HEADER_TIMEOUT_MS   10000
/* Headers and body together: 64 MiB at ~1.5 MB/s. Not reset by each byte that arrives. */
#define TW_DEFAULT_HTTP_REQUEST_TIMEOUT_MS  60000
/* Open connections: each costs a socket and a lazily committed 128 KiB buffer, no thread. */
#define TW_DEFAULT_HTTP_MAX_CONNECTIONS     4096u
/* Open connections from one client address, so that one client cannot take all of them. A proxy in
 * front counts as one client: raise it there. */
#define TW_DEFAULT_HTTP_MAX_PER_CLIENT      64u
/* Request bodies held in memory at once across all requests (a 64 MiB Firehose body is one). */
#define TW_DEFAULT_HTTP_BODY_BYTES          (256u * 1024u * 1024u)
/* Decompressed (gzip) bytes held at once across all requests: gzip bombs cannot add up. Two
 * full-size (64 MiB) bodies at once; 40 concurrent bombs then stay under 300 MB of RSS. */
#define TW_DEFAULT_HTTP_GUNZIP_BYTES        (128u * 1024u * 1024u)

/* serve's archive queue (events accepted, not yet written to the archive): the writer must never
 * hold up alerts, so past this the newest events are dropped from the archive (counted, logged);
 * 64 MiB is a few seconds of PutEvents at full speed. */
#define TW_ARCHIVE_QUEUE_BYTES              (64u * 1024u * 1024u)
#define TW_ARCHIVE_QUEUE_EVENTS             200000u
/* GET /api/events: rows per page (default and cap); a page is built in memory. */
#define TW_ARCHIVE_API_LIMIT_DEFAULT        100u
#define TW_ARCHIVE_API_LIMIT_MAX            1000u
/* GET /api/who/RESOURCE: entries returned (the oldest first; past it the answer says truncated). */
#define TW_ARCHIVE_API_WHO_MAX              10000u
/* GET /api/events/timeline: buckets per series (a year by hour is 8784). */
#define TW_ARCHIVE_API_BUCKETS_MAX          10000u
/* Query parameters of the archive's calls (a pattern is at most TW_DEFAULT_PATTERN_MAX). */
#define TW_ARCHIVE_API_PARAM_MAX            8192u
/* Bytes of one PostgreSQL archive COPY (a batch's events, or their resource ids), held in memory while
 * it is sent: the archive flushes far earlier (1,000 events are ~1 MB compressed). */
#define TW_ARCHIVE_PG_BATCH_BYTES           (256u * 1024u * 1024u)
/* PostgreSQL archive: the posting rows of the batches a handle wrote are merged into one row per
 * month and term bucket once they hold this many (term, event) pairs or come from this many batches
 * (a query reads one row per merge, not one per batch). The merge holds the pairs in memory: 16
 * bytes each, 32 MB at the cap. */
#define TW_ARCHIVE_PG_MERGE_PAIRS           2000000u
#define TW_ARCHIVE_PG_MERGE_BATCHES         64u
/* ... and a merge whose key range holds more than this many bytes of posting rows (events archived
 * out of time order: other rows in the range) leaves the rows unmerged rather than load them. */
#define TW_ARCHIVE_PG_MERGE_BYTES           (64u * 1024u * 1024u)

/* The outbox (targets.X.max_pending; the dispatcher's window). */
/* Alerts waiting for one target: beyond it the target's when_full policy applies (refuse new events
 * with 503, or dead-letter the oldest). About 2 GB of disk at ~2 KB an alert: a long outage of a busy
 * target; a cap makes a dead destination a visible refusal instead of a disk filling up. */
#define TW_DEFAULT_MAX_PENDING      1000000
#define TW_MAX_MAX_PENDING          1000000000ULL
/* Alerts of one target the dispatcher holds in memory (ids and due times, ~100 bytes each; bodies are
 * read when sent); the rest wait in SQLite and are paged in by due time. Enough to keep a target's
 * deliveries in flight fed between pages. */
#define TW_OUTBOX_WINDOW            1024u
/* The outbox's WAL, in 4 KB pages: past TW_OUTBOX_CKPT_PAGES (16 MB) a thread of its own copies it
 * into the database, so that the writer's commits do not wait for that copy and its fsync; past
 * TW_OUTBOX_WAL_MAX_PAGES (64 MB: that thread cannot keep up, or fails) the writer copies it itself,
 * so the file stays bounded. */
#define TW_OUTBOX_CKPT_PAGES        4000
#define TW_OUTBOX_WAL_MAX_PAGES     16000

typedef struct tw_limits {
    size_t event_max;        /* bytes of one event's JSON text */
    unsigned json_depth;     /* nesting levels of any JSON text */
    size_t pattern_max;      /* bytes of one pattern's JSON text */
    unsigned or_combinations;/* conjunctions one pattern may expand to */
    unsigned wildcard_stars; /* '*' in one wildcard */
    size_t rules_max;        /* rules in one rule set */
    size_t event_values;     /* recorded values per event */
    size_t match_steps;      /* consistency search steps per event */
    size_t line_max;         /* bytes of one input line */
    size_t file_max;         /* bytes of one (decompressed) input file */
} tw_limits;

/* Fills *l with the TW_DEFAULT_* values. */
void tw_limits_default(tw_limits *l);

#ifdef __cplusplus
}
#endif
#endif
