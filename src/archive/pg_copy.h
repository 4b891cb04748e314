/*
 * archive/pg_copy.h: PostgreSQL's binary COPY format, written into a buffer (internal).
 *
 * Ownership: a tw__pg_copy owns its buffer; tw__pg_copy_free releases it.
 *
 * Binary COPY (not text) because the bodies are compressed bytes: text COPY would hex-escape them
 * (twice the size) and the server would decode them again. Text columns must be UTF-8 without NUL
 * in PostgreSQL: tw__pg_copy_text replaces what is not (each bad byte, and NUL, by U+FFFD) rather
 * than fail the whole batch for one odd event; tw__pg_text_clean does the same for query values.
 */
#ifndef TW_ARCHIVE_PG_COPY_H
#define TW_ARCHIVE_PG_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct tw__pg_copy {
    tw_buf buf;
} tw__pg_copy;

/* max: the buffer's cap in bytes (a batch past it fails with TW_ETOOBIG). Writes the header. */
void tw__pg_copy_init(tw__pg_copy *c, size_t max);
void tw__pg_copy_free(tw__pg_copy *c);
/* Empties the buffer and writes the header again. */
void tw__pg_copy_reset(tw__pg_copy *c);

void tw__pg_copy_row(tw__pg_copy *c, uint16_t ncols);
void tw__pg_copy_int8(tw__pg_copy *c, int64_t v);
void tw__pg_copy_int4(tw__pg_copy *c, int32_t v);
void tw__pg_copy_int2(tw__pg_copy *c, int16_t v);
/* s == NULL writes SQL NULL. */
void tw__pg_copy_text(tw__pg_copy *c, const char *s, size_t n);
void tw__pg_copy_textz(tw__pg_copy *c, const char *s);
void tw__pg_copy_bytea(tw__pg_copy *c, const void *p, size_t n);
/* The trailer; then data/len are ready for PQputCopyData. Returns the buffer's first error. */
tw_status tw__pg_copy_finish(tw__pg_copy *c, const char **data, size_t *len);

/* 1 when s (n bytes) can be a PostgreSQL text value as it is: valid UTF-8, no NUL. */
int tw__pg_text_ok(const char *s, size_t n);
/* Appends s with each invalid byte and NUL replaced by U+FFFD (the form tw__pg_copy_text stores). */
tw_status tw__pg_text_clean(tw_buf *out, const char *s, size_t n);
/* Appends s as an element of a text[] literal: "..." with " and \ escaped, cleaned as
 * tw__pg_text_clean cleans it (so that it matches the value COPY stored). */
void tw__pg_array_text(tw_buf *b, const char *s);

#endif
