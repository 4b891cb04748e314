/*
 * archive/pg_copy.c: PostgreSQL binary COPY encoding (see pg_copy.h).
 *
 * Format (PostgreSQL docs, "COPY ... Binary Format"): signature "PGCOPY\n\377\r\n\0", int32 flags,
 * int32 header-extension length; per tuple an int16 field count and per field an int32 length
 * (-1 = NULL) and the value in the type's binary send form; an int16 -1 trailer. All network order.
 * The send form of text is its bytes, of bytea its bytes, of int8/int4 big-endian integers.
 */
#include "archive/pg_copy.h"

#include <string.h>

#include "common/utf8.h"

static const char SIGNATURE[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};

static void put_be(tw_buf *b, uint64_t v, int bytes)
{
    unsigned char t[8];
    for (int i = 0; i < bytes; i++)
        t[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    tw__buf_append(b, t, (size_t)bytes);
}

static void header(tw__pg_copy *c)
{
    tw__buf_append(&c->buf, SIGNATURE, sizeof SIGNATURE);
    put_be(&c->buf, 0, 4); /* flags: no OIDs */
    put_be(&c->buf, 0, 4); /* no header extension */
}

void tw__pg_copy_init(tw__pg_copy *c, size_t max)
{
    tw__buf_init(&c->buf, max);
    header(c);
}

void tw__pg_copy_free(tw__pg_copy *c) { tw__buf_free(&c->buf); }

void tw__pg_copy_reset(tw__pg_copy *c)
{
    tw_buf_reset(&c->buf);
    header(c);
}

void tw__pg_copy_row(tw__pg_copy *c, uint16_t ncols) { put_be(&c->buf, ncols, 2); }

void tw__pg_copy_int8(tw__pg_copy *c, int64_t v)
{
    put_be(&c->buf, 8, 4);
    put_be(&c->buf, (uint64_t)v, 8);
}

void tw__pg_copy_int4(tw__pg_copy *c, int32_t v)
{
    put_be(&c->buf, 4, 4);
    put_be(&c->buf, (uint32_t)v, 4);
}

void tw__pg_copy_int2(tw__pg_copy *c, int16_t v)
{
    put_be(&c->buf, 2, 4);
    put_be(&c->buf, (uint16_t)v, 2);
}

int tw__pg_text_ok(const char *s, size_t n)
{
    return memchr(s, '\0', n) == NULL && tw__utf8_check(s, n) == n;
}

tw_status tw__pg_text_clean(tw_buf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        uint32_t cp;
        size_t k = *p ? tw__utf8_seq(p, end, &cp) : 0;
        if (k == 0) {
            tw__buf_append(out, "\xEF\xBF\xBD", 3);
            p++;
        } else {
            tw__buf_append(out, p, k);
            p += k;
        }
    }
    return tw_buf_error(out);
}

void tw__pg_copy_text(tw__pg_copy *c, const char *s, size_t n)
{
    if (!s) {
        put_be(&c->buf, 0xFFFFFFFFu, 4);
        return;
    }
    if (tw__pg_text_ok(s, n)) {
        put_be(&c->buf, n, 4);
        tw__buf_append(&c->buf, s, n);
        return;
    }
    /* Rare: write a placeholder length, the cleaned text, then the real length. */
    size_t at = c->buf.len;
    put_be(&c->buf, 0, 4);
    tw__pg_text_clean(&c->buf, s, n);
    if (tw_buf_error(&c->buf) == TW_OK) {
        size_t m = c->buf.len - at - 4;
        unsigned char *q = (unsigned char *)c->buf.data + at;
        for (int i = 0; i < 4; i++)
            q[i] = (unsigned char)(m >> (8 * (3 - i)));
    }
}

void tw__pg_copy_textz(tw__pg_copy *c, const char *s) { tw__pg_copy_text(c, s, s ? strlen(s) : 0); }

void tw__pg_copy_bytea(tw__pg_copy *c, const void *p, size_t n)
{
    put_be(&c->buf, n, 4);
    tw__buf_append(&c->buf, p, n);
}

tw_status tw__pg_copy_finish(tw__pg_copy *c, const char **data, size_t *len)
{
    put_be(&c->buf, 0xFFFF, 2);
    *data = c->buf.data;
    *len = c->buf.len;
    return tw_buf_error(&c->buf);
}

/* An element of a text[] literal: "..." with " and \ escaped (the value cleaned as COPY cleans it). */
void tw__pg_array_text(tw_buf *b, const char *s)
{
    tw_buf tmp = TW_BUF_INIT;
    size_t n = strlen(s);
    if (!tw__pg_text_ok(s, n)) {
        tw__pg_text_clean(&tmp, s, n);
        s = tmp.data ? tmp.data : "";
    }
    tw__buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            tw__buf_putc(b, '\\');
        tw__buf_putc(b, *s);
    }
    tw__buf_putc(b, '"');
    tw__buf_free(&tmp);
}
