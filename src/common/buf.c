/* common/buf.c: growable, capped byte buffer. */
#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tw__buf_init(tw_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->err = TW_OK;
}

void tw__buf_free(tw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = TW_OK;
}

tw_status tw__buf_reserve(tw_buf *b, size_t n)
{
    if (b->err)
        return b->err;
    size_t max = b->max ? b->max : (size_t)-1 / 2;
    if (n > max || b->len > max - n)
        return b->err = TW_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return TW_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return b->err = TW_ENOMEM;
    b->data = p;
    b->cap = cap;
    return TW_OK;
}

tw_status tw__buf_append(tw_buf *b, const void *p, size_t n)
{
    tw_status rc = tw__buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return TW_OK;
}

tw_status tw__buf_putc(tw_buf *b, char c) { return tw__buf_append(b, &c, 1); }

tw_status tw__buf_puts(tw_buf *b, const char *s) { return tw__buf_append(b, s, strlen(s)); }

tw_status tw__buf_vprintf(tw_buf *b, const char *fmt, va_list ap)
{
    if (b->err)
        return b->err;
    /* Formatted straight into the free room: only text that does not fit is formatted twice. */
    size_t room = b->data ? b->cap - b->len : 0;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    size_t max = b->max ? b->max : (size_t)-1 / 2;
    if (n >= 0 && (size_t)n < room && (size_t)n <= max && b->len <= max - (size_t)n) {
        b->len += (size_t)n;       /* vsnprintf wrote the NUL */
        return TW_OK;
    }
    if (room)
        b->data[b->len] = '\0';   /* the buffer as it was */
    if (n < 0)
        return b->err = TW_EINVAL;
    tw_status rc = tw__buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return TW_OK;
}

tw_status tw__buf_printf(tw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tw_status rc = tw__buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *tw__buf_detach(tw_buf *b, size_t *len)
{
    if (!b->data) {
        b->err = TW_OK;            /* room for the NUL of an empty result, whatever failed before */
        if (tw__buf_reserve(b, 0))
            return NULL;
        b->data[0] = '\0';
    }
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = TW_OK;
    return p;
}
