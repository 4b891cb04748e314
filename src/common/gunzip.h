/*
 * common/gunzip.h: gunzip of a whole in-memory buffer, capped (internal).
 *
 * Ownership: reads borrowed bytes; appends to the caller's tw_buf. Shared by the event reader's
 * in-memory input (event/) and the HTTP sources (source/gzip.c's tw__http_gunzip), which must agree on what
 * counts as corrupt.
 */
#ifndef TW_COMMON_GUNZIP_H
#define TW_COMMON_GUNZIP_H

#include <stddef.h>

#include "common/buf.h"
#include "trailwatch/error.h"

/* 1 when the bytes start with the gzip magic (1f 8b). */
static inline int tw__is_gzip(const void *p, size_t len)
{
    const unsigned char *b = p;
    return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

/* Appends the decompressed bytes of every gzip member in [in, in+len) to out (kept NUL-terminated).
 * At most max bytes of output (0: no cap beyond out's own): TW_ETOOBIG past it. Empty, truncated or
 * corrupt input and bytes after the last member are TW_EGZIP; on any error out may hold a prefix. */
tw_status tw__gunzip(const void *in, size_t len, size_t max, tw_buf *out, tw_error *err);

struct tw__budget;
/* The same, counting the output against a budget shared with other threads (NULL: none): *held
 * (start it at 0) is what this output holds of it, also on failure; the caller gives it back
 * (tw__budget_give) once out is freed. TW_EBUSY when the budget has no room for the next step. */
tw_status tw__gunzip_budget(const void *in, size_t len, size_t max, tw_buf *out, struct tw__budget *budget,
                            size_t *held, tw_error *err);

#endif
