/*
 * json/skip.h: validate and step over one JSON value without building anything (internal).
 *
 * Ownership: reads borrowed bytes only. This is the matching hot path's workhorse: most of an event
 * is in fields no rule names, and all of it must still be validated (syntax, UTF-8, depth).
 */
#ifndef TW_JSON_SKIP_H
#define TW_JSON_SKIP_H

#include "json/lex.h"

/* p points at the first byte of a value (no leading whitespace). Returns the position just after
 * the value, or NULL with *e set. At most `depth` containers may nest inside (and including) it. */
const char *tw__json_skip(const char *p, const char *end, unsigned depth, tw_lex_err *e);

#endif
