/*
 * common/buf.h: a growable byte buffer with a hard cap (internal; the sds of trailwatch).
 *
 * Ownership: a tw_buf owns its data; tw_buf_free releases it. The contents are always NUL-terminated
 * (the NUL is not counted in len), so text can be passed to C string functions.
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
} tw_buf;

#define TW_BUF_INIT {NULL, 0, 0, 0}

void tw_buf_init(tw_buf *b, size_t max);
void tw_buf_free(tw_buf *b);
static inline void tw_buf_reset(tw_buf *b) { b->len = 0; if (b->data) b->data[0] = '\0'; }

/* Makes room for n more bytes. TW_ETOOBIG past max, TW_ENOMEM when allocation fails. */
tw_status tw_buf_reserve(tw_buf *b, size_t n);
tw_status tw_buf_append(tw_buf *b, const void *p, size_t n);
tw_status tw_buf_putc(tw_buf *b, char c);
tw_status tw_buf_puts(tw_buf *b, const char *s);
tw_status tw_buf_printf(tw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
tw_status tw_buf_vprintf(tw_buf *b, const char *fmt, va_list ap);
/* Hands the data to the caller (who frees it) and resets the buffer. Never NULL on success. */
char *tw_buf_detach(tw_buf *b, size_t *len);

#endif
