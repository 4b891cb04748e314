/*
 * common/buf.h: a growable byte buffer with a hard cap (internal; the sds of trailwatch).
 *
 * Ownership: a tw_buf owns its data; tw__buf_free releases it. The contents are always NUL-terminated
 * (the NUL is not counted in len), so text can be passed to C string functions.
 *
 * Errors are sticky (as sqlite3_str's): the first failure (TW_ETOOBIG past max, TW_ENOMEM) is kept
 * in err, and every later append returns it without changing the contents. Code that writes many
 * pieces (renderers) may ignore the appends' results and check tw_buf_error once at the end; what
 * was written before the failure stays readable. tw_buf_reset and tw__buf_free clear the error.
 */
#ifndef TW_COMMON_BUF_H
#define TW_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "trailwatch/error.h"

typedef struct tw_buf {
    char *data;   /* NULL until the first append */
    size_t len;
    size_t cap;   /* allocated bytes (len + 1 <= cap) */
    size_t max;   /* len never exceeds this; 0 = SIZE_MAX */
    tw_status err; /* the first failure, sticky (see above); TW_OK when none */
} tw_buf;

#define TW_BUF_INIT {NULL, 0, 0, 0, TW_OK}

void tw__buf_init(tw_buf *b, size_t max);
void tw__buf_free(tw_buf *b);
/* Empties the buffer (keeping its memory) and clears its error. */
static inline void tw_buf_reset(tw_buf *b)
{
    b->len = 0;
    b->err = TW_OK;
    if (b->data)
        b->data[0] = '\0';
}
/* The first failure of any append since init/reset, or TW_OK. */
static inline tw_status tw_buf_error(const tw_buf *b) { return b->err; }

/* Makes room for n more bytes. TW_ETOOBIG past max, TW_ENOMEM when allocation fails. */
tw_status tw__buf_reserve(tw_buf *b, size_t n);
tw_status tw__buf_append(tw_buf *b, const void *p, size_t n);
tw_status tw__buf_putc(tw_buf *b, char c);
tw_status tw__buf_puts(tw_buf *b, const char *s);
tw_status tw__buf_printf(tw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
tw_status tw__buf_vprintf(tw_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hands the data to the caller (who frees it) and resets the buffer. Never NULL on success; NULL
 * when memory for an empty buffer cannot be had. Check tw_buf_error first if a failed append
 * matters: the data is what was written before it. */
char *tw__buf_detach(tw_buf *b, size_t *len);

#endif
