/*
 * json/json_int.h: the JSON tree's layout, builders and writer (internal to the library).
 *
 * Ownership: nodes, keys and strings live in the document's arena; builders allocate there and
 * never free. A doc built with tw__json_doc_new is freed with tw_json_doc_free like a parsed one.
 */
#ifndef TW_JSON_JSON_INT_H
#define TW_JSON_JSON_INT_H

#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "trailwatch/json.h"

typedef struct tw_json_member {
    const char *key;
    size_t klen;
    tw_json *val;
} tw_json_member;

struct tw_json {
    uint8_t type;          /* tw_json_type */
    unsigned line, col;    /* source position, 0 when built */
    size_t n;              /* string bytes, number text bytes, items, members */
    size_t cap;            /* allocated items/members (builders) */
    union {
        const char *str;                /* TW_JSON_STRING: decoded, NUL-terminated */
        struct { const char *text; double d; } num;
        tw_json **items;                /* TW_JSON_ARRAY */
        tw_json_member *members;        /* TW_JSON_OBJECT */
    } u;
};

struct tw_json_doc {
    tw_arena arena;
    tw_json *root;
};

/* Builders (YAML loading, request construction). Return NULL when out of memory. */
tw_json_doc *tw__json_doc_new(void);
tw_json *tw__json_new(tw_json_doc *d, tw_json_type t);
tw_json *tw__json_new_string(tw_json_doc *d, const char *s, size_t len);
/* text must be a valid JSON number literal. */
tw_json *tw__json_new_number(tw_json_doc *d, const char *text, size_t len);
tw_json *tw__json_new_double(tw_json_doc *d, double v);
tw_status tw__json_push(tw_json_doc *d, tw_json *arr, tw_json *item);
tw_status tw__json_put(tw_json_doc *d, tw_json *obj, const char *key, size_t klen, tw_json *val);
/* Deep copy of v (from any doc) into d. */
tw_json *tw__json_copy(tw_json_doc *d, const tw_json *v);

/* Writing JSON text. */
tw_status tw__json_write(tw_buf *b, const tw_json *v);
tw_status tw__json_write_string(tw_buf *b, const char *s, size_t len);

/* Bytes of v's compact JSON text, counting stops past cap (returns cap + 1 then). */
size_t tw__json_compact_len(const tw_json *v, size_t cap);

/* Structural equality (numbers compare by value, object members in order). */
int tw__json_equal(const tw_json *a, const tw_json *b);

#endif
