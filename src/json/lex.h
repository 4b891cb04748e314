/*
 * json/lex.h: the JSON token scanners shared by the tree parser and the hot-path event scanner.
 *
 * Ownership: pure functions over borrowed bytes. Each scanner takes the position of a token and
 * returns the position just past it, or NULL with *why set to a static reason (the caller adds where).
 */
#ifndef TW_JSON_LEX_H
#define TW_JSON_LEX_H

#include <stddef.h>
#include <stdint.h>

#include "trailwatch/error.h"

/* Why a token was rejected: a static message and the status class (TW_EJSON or TW_EUTF8). */
typedef struct tw_lex_err {
    const char *why;
    tw_status code;
    const char *at;      /* where in the input */
} tw_lex_err;

/* p points just after the opening quote. Returns the position of the closing quote, validating
 * escapes, control characters and UTF-8. *escaped is set when the string holds a backslash. */
const char *tw__lex_string(const char *p, const char *end, int *escaped, tw_lex_err *e);

/* Decodes the raw string body [p, p+len) (already validated by tw__lex_string) into out, which must
 * have room for len bytes (decoding never grows). Returns the decoded length. */
size_t tw__lex_unescape(const char *p, size_t len, char *out);

/* p points at '-' or a digit. Returns the position after the number literal. */
const char *tw__lex_number(const char *p, const char *end, tw_lex_err *e);

/* p points at 't', 'f' or 'n'. Returns the position after the literal; *type receives the tw_json_type. */
const char *tw__lex_literal(const char *p, const char *end, int *type, tw_lex_err *e);

static inline const char *tw__lex_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

#endif
