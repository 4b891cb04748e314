/*
 * trailwatch/json.h: JSON documents for everything off the matching hot path (patterns, rule files,
 * API requests, configuration): parse into a tree, inspect it, write it back.
 *
 * Ownership: a tw_json_doc owns every tw_json node reachable from it; nodes and the strings they
 * return stay valid until tw_json_doc_free(). Strings returned by tw_json_dump() belong to the caller
 * (free()).
 *
 * Parsing is strict RFC 8259: UTF-8 only (no lone surrogates, even escaped), no trailing commas,
 * no comments, nesting and size capped by tw_limits. Number literals are kept as written, beside
 * their double value, because pattern semantics compare some numbers by their text. Objects keep
 * every member in order, duplicates included; tw_json_get() returns the last one ("last wins").
 */
#ifndef TRAILWATCH_JSON_H
#define TRAILWATCH_JSON_H

#include <stddef.h>

#include "trailwatch/error.h"
#include "trailwatch/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_json_doc tw_json_doc;
typedef struct tw_json tw_json;

typedef enum tw_json_type {
    TW_JSON_NULL = 0,
    TW_JSON_FALSE = 1,
    TW_JSON_TRUE = 2,
    TW_JSON_NUMBER = 3,
    TW_JSON_STRING = 4,
    TW_JSON_ARRAY = 5,
    TW_JSON_OBJECT = 6,
} tw_json_type;

/* Parses one JSON text (surrounding whitespace allowed). lim may be NULL for the defaults; the size
 * cap used is lim->event_max. Errors name line, column and the reason. */
tw_status tw_json_parse(const char *text, size_t len, const tw_limits *lim, tw_json_doc **out,
                        tw_error *err);
void tw_json_doc_free(tw_json_doc *doc);
const tw_json *tw_json_root(const tw_json_doc *doc);

tw_json_type tw_json_typeof(const tw_json *v);
const char *tw_json_type_name(tw_json_type t);   /* "string", "object", ... */

/* Strings: the decoded UTF-8 bytes, NUL-terminated (len excludes the NUL; the text may hold NULs). */
const char *tw_json_string(const tw_json *v, size_t *len);
/* Numbers: the value as a double, and the literal exactly as written. */
double tw_json_number(const tw_json *v);
const char *tw_json_number_text(const tw_json *v, size_t *len);

/* Arrays and objects: item / member count; tw_json_at is the i-th item or member value. */
size_t tw_json_size(const tw_json *v);
const tw_json *tw_json_at(const tw_json *v, size_t i);
const char *tw_json_key(const tw_json *v, size_t i, size_t *len);
/* The value of the last member named key (NUL-terminated), or NULL (also when v is not an object). */
const tw_json *tw_json_get(const tw_json *v, const char *key);

/* Where the value starts in its source: 1-based line and column (0 when built, not parsed). */
unsigned tw_json_line(const tw_json *v);
unsigned tw_json_column(const tw_json *v);

/* Compact JSON text of v, malloc'd; NULL when out of memory. */
char *tw_json_dump(const tw_json *v, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
