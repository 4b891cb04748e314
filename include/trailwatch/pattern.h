/*
 * trailwatch/pattern.h: EventBridge event patterns: validate one, compile many named rules into one
 * rule set, match events against it.
 *
 * Ownership: the caller owns every handle it creates (tw_pattern, tw_ruleset_builder, tw_ruleset,
 * tw_matcher) and frees it with the matching *_free; strings passed in are copied; results point into
 * the matcher and stay valid until its next tw_match call.
 *
 * Threads: a built tw_ruleset is immutable and may be shared by any number of threads; each thread
 * matches with its own tw_matcher (the per-event scratch space, so matching allocates nothing once
 * warm). Builders and matchers are single-threaded.
 *
 * Semantics: docs/PATTERNS.md (EventBridge's event-pattern language, as trailwatch implements it).
 */
#ifndef TRAILWATCH_PATTERN_H
#define TRAILWATCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#include "trailwatch/error.h"
#include "trailwatch/json.h"
#include "trailwatch/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- one pattern ---- */

typedef struct tw_pattern tw_pattern;

/* Parses and validates a pattern given as JSON text. Errors name the JSON path and the reason, as
 * EventBridge's InvalidEventPatternException does: `detail.eventName: "prefix" must be a string`.
 * lim may be NULL for the defaults. */
tw_status tw_pattern_parse(const char *json, size_t len, const tw_limits *lim, tw_pattern **out,
                           tw_error *err);
/* The same from an already parsed tree (a YAML rule file, say); the tree is only read. */
tw_status tw_pattern_from_json(const tw_json *v, const tw_limits *lim, tw_pattern **out, tw_error *err);
void tw_pattern_free(tw_pattern *p);
/* Number of conjunctions the pattern expands to once every $or is multiplied out. */
size_t tw_pattern_combinations(const tw_pattern *p);

/* ---- rule sets ---- */

typedef struct tw_ruleset_builder tw_ruleset_builder;
typedef struct tw_ruleset tw_ruleset;

tw_status tw_ruleset_builder_new(const tw_limits *lim, tw_ruleset_builder **out);
void tw_ruleset_builder_free(tw_ruleset_builder *b);
/* Adds a rule; the pattern is consumed (freed by the builder, even on error). Rule indexes count from
 * 0 in the order of addition; *index may be NULL. Names must be unique (TW_EEXIST). */
tw_status tw_ruleset_builder_add(tw_ruleset_builder *b, const char *name, tw_pattern *pattern,
                                 size_t *index, tw_error *err);
/* Compiles every rule added so far into one automaton. The builder may be freed afterwards. */
tw_status tw_ruleset_build(tw_ruleset_builder *b, tw_ruleset **out, tw_error *err);
void tw_ruleset_free(tw_ruleset *rs);

size_t tw_ruleset_size(const tw_ruleset *rs);
const char *tw_ruleset_name(const tw_ruleset *rs, size_t index);
/* Bytes held by the compiled set (for reporting). */
size_t tw_ruleset_memory(const tw_ruleset *rs);

/* ---- matching ---- */

/* How to read the event's JSON. */
typedef enum tw_event_kind {
    TW_EVENT_AUTO = 0,        /* a raw CloudTrail record (eventVersion + eventSource, no detail-type)
                                 is wrapped as EventBridge would; anything else is an event */
    TW_EVENT_ENVELOPE = 1,    /* an EventBridge event as is */
    TW_EVENT_CLOUDTRAIL = 2,  /* a raw CloudTrail record: always wrapped */
} tw_event_kind;

typedef struct tw_matcher tw_matcher;

typedef struct tw_match_result {
    const uint32_t *rules;    /* indexes of the matching rules, ascending */
    size_t count;
    tw_event_kind kind;       /* TW_EVENT_ENVELOPE or TW_EVENT_CLOUDTRAIL: how the event was read */
    const char *id;           /* the event's "id" (a wrapped record: its "eventID"), NULL if none; */
    size_t id_len;            /*   not NUL-terminated, valid until the next tw_match */
} tw_match_result;

tw_status tw_matcher_new(const tw_ruleset *rs, tw_matcher **out);
void tw_matcher_free(tw_matcher *m);

/* Matches one event (one JSON object) against the rule set. The whole text is validated: invalid
 * JSON, invalid UTF-8, nesting or size over the limits and non-objects are errors naming where. */
tw_status tw_match(tw_matcher *m, const char *json, size_t len, tw_event_kind kind,
                   tw_match_result *res, tw_error *err);

#ifdef __cplusplus
}
#endif
#endif
