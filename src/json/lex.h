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

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Why a token was rejected: a static message and the status class (TW_EJSON or TW_EUTF8). */
typedef struct tw_lex_err {
    const char *why;
    tw_status code;
    const char *at;      /* where in the input */
} tw_lex_err;

/* tw__lex_string from p on, for the strings that are not plain ASCII ending within the bytes the
 * inline scan below looks at (escapes, UTF-8, errors, the last 15 bytes of the input). */
const char *tw__lex_string_slow(const char *p, const char *end, int *escaped, tw_lex_err *e);

/* p points just after the opening quote. Returns the position of the closing quote, validating
 * escapes, control characters and UTF-8. *escaped is set when the string holds a backslash.
 * Inline for the common case (most keys and values are short ASCII): 16 bytes at a time, stopping at
 * '"', '\\', a control character or any byte >= 0x80 (the signed compare "< 0x20" catches both). */
static inline const char *tw__lex_string(const char *p, const char *end, int *escaped, tw_lex_err *e)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(v, space));
        int mask = _mm_movemask_epi8(m);
        if (mask) {
            p += __builtin_ctz((unsigned)mask);
            return *p == '"' ? p : tw__lex_string_slow(p, end, escaped, e);
        }
        p += 16;
    }
#endif
    return tw__lex_string_slow(p, end, escaped, e);
}

/* Decodes the raw string body [p, p+len) (already validated by tw__lex_string) into out, which must
 * have room for len bytes (decoding never grows). Returns the decoded length. */
size_t tw__lex_unescape(const char *p, size_t len, char *out);

/* p points at '-' or a digit. Returns the position after the number literal. */
const char *tw__lex_number(const char *p, const char *end, tw_lex_err *e);

/* p points at 't', 'f' or 'n'. Returns the position after the literal; *type receives the tw_json_type. */
const char *tw__lex_literal(const char *p, const char *end, int *type, tw_lex_err *e);

static inline const char *tw__lex_ws(const char *p, const char *end)
{
    /* one compare turns away every byte above ' ' (all but whitespace in compact JSON) */
    while (p < end && (unsigned char)*p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

#endif
