/* json/lex.c: strings, numbers and literals, validated in one pass (SSE2 over string bodies). */
#include "json/lex.h"

#include <string.h>

#include "common/utf8.h"
#include "trailwatch/json.h"


static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_hex4(const char *p, const char *end, uint32_t *out)
{
    if (end - p < 4)
        return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0)
            return 0;
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 1;
}

static const char *fail(tw_lex_err *e, const char *at, tw_status code, const char *why)
{
    e->at = at;
    e->code = code;
    e->why = why;
    return NULL;
}

/* Validates one escape sequence at p (pointing at the backslash); returns the position after it. */
static const char *lex_escape(const char *p, const char *end, tw_lex_err *e)
{
    if (end - p < 2)
        return fail(e, p, TW_EJSON, "unterminated string");
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return p + 2;
    case 'u': {
        uint32_t u;
        if (!read_hex4(p + 2, end, &u))
            return fail(e, p, TW_EJSON, "invalid \\u escape (needs four hex digits)");
        if (u >= 0xdc00 && u <= 0xdfff)
            return fail(e, p, TW_EUTF8, "lone low surrogate in \\u escape");
        if (u >= 0xd800 && u <= 0xdbff) {
            uint32_t lo;
            if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !read_hex4(p + 8, end, &lo) ||
                lo < 0xdc00 || lo > 0xdfff)
                return fail(e, p, TW_EUTF8, "high surrogate in \\u escape not followed by a low one");
            return p + 12;
        }
        return p + 6;
    }
    default:
        return fail(e, p, TW_EJSON, "invalid escape in string");
    }
}

const char *tw__lex_string_slow(const char *p, const char *end, int *escaped, tw_lex_err *e)
{
    for (;;) {
#if defined(__SSE2__)
        /* 16 bytes at a time: stop at '"', '\\', a control character or any byte >= 0x80 (the
         * signed compare "< 0x20" catches both of the last two). */
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
                break;
            }
            p += 16;
        }
#endif
        if (p >= end)
            return fail(e, p, TW_EJSON, "unterminated string");
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p;
        if (c == '\\') {
            *escaped = 1;
            p = lex_escape(p, end, e);
            if (!p)
                return NULL;
            continue;
        }
        if (c < 0x20)
            return fail(e, p, TW_EJSON, "control character in string (must be escaped)");
        if (c >= 0x80) {
            uint32_t cp;
            size_t n = tw__utf8_seq((const unsigned char *)p, (const unsigned char *)end, &cp);
            if (!n)
                return fail(e, p, TW_EUTF8, "invalid UTF-8 in string");
            p += n;
            continue;
        }
        p++;
    }
}

size_t tw__lex_unescape(const char *p, size_t len, char *out)
{
    const char *end = p + len;
    char *o = out;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        if (!bs) {
            memmove(o, p, (size_t)(end - p));
            o += end - p;
            break;
        }
        memmove(o, p, (size_t)(bs - p));
        o += bs - p;
        p = bs;
        switch (p[1]) {
        case 'b': *o++ = '\b'; p += 2; break;
        case 'f': *o++ = '\f'; p += 2; break;
        case 'n': *o++ = '\n'; p += 2; break;
        case 'r': *o++ = '\r'; p += 2; break;
        case 't': *o++ = '\t'; p += 2; break;
        case 'u': {
            uint32_t u = 0, lo = 0;
            read_hex4(p + 2, end, &u);
            p += 6;
            if (u >= 0xd800 && u <= 0xdbff) {
                read_hex4(p + 2, end, &lo);
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            o += tw__utf8_put(o, u);
            break;
        }
        default: *o++ = p[1]; p += 2; break;  /* " \ / */
        }
    }
    return (size_t)(o - out);
}

static int is_digit(const char *p, const char *end) { return p < end && *p >= '0' && *p <= '9'; }

const char *tw__lex_number(const char *p, const char *end, tw_lex_err *e)
{
    const char *start = p;
    if (p < end && *p == '-')
        p++;
    if (!is_digit(p, end))
        return fail(e, start, TW_EJSON, "invalid number");
    if (*p == '0') {
        p++;
        if (is_digit(p, end))
            return fail(e, start, TW_EJSON, "invalid number (leading zero)");
    } else {
        while (is_digit(p, end))
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (!is_digit(p, end))
            return fail(e, start, TW_EJSON, "invalid number (digit expected after '.')");
        while (is_digit(p, end))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!is_digit(p, end))
            return fail(e, start, TW_EJSON, "invalid number (digit expected in exponent)");
        while (is_digit(p, end))
            p++;
    }
    return p;
}

const char *tw__lex_literal(const char *p, const char *end, int *type, tw_lex_err *e)
{
    size_t left = (size_t)(end - p);
    if (left >= 4 && memcmp(p, "true", 4) == 0) {
        *type = TW_JSON_TRUE;
        return p + 4;
    }
    if (left >= 5 && memcmp(p, "false", 5) == 0) {
        *type = TW_JSON_FALSE;
        return p + 5;
    }
    if (left >= 4 && memcmp(p, "null", 4) == 0) {
        *type = TW_JSON_NULL;
        return p + 4;
    }
    return fail(e, p, TW_EJSON, "invalid literal (expected true, false or null)");
}
