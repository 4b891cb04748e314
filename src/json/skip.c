/* json/skip.c: iterative validate-and-skip over one JSON value (a bit per open container). */
#include "json/skip.h"

#include <stdint.h>

#include "trailwatch/limits.h"

static const char *fail(tw_lex_err *e, const char *at, tw_status code, const char *why)
{
    e->at = at;
    e->code = code;
    e->why = why;
    return NULL;
}

const char *tw__json_skip(const char *p, const char *end, unsigned depth, tw_lex_err *e)
{
    uint64_t is_obj[TW_MAX_JSON_DEPTH / 64 + 1]; /* bit set: open container is an object */
    unsigned open = 0;
    int dummy;

value:
    if (p >= end)
        return fail(e, p, TW_EJSON, "unexpected end of input (expected a value)");
    switch (*p) {
    case '"':
        p = tw__lex_string(p + 1, end, &dummy, e);
        if (!p)
            return NULL;
        p++;
        goto after_value;
    case '{':
    case '[': {
        if (open >= depth || open >= TW_MAX_JSON_DEPTH)
            return fail(e, p, TW_EDEPTH, "nesting too deep");
        int obj = *p == '{';
        uint64_t bit = (uint64_t)1 << (open % 64);
        if (obj)
            is_obj[open / 64] |= bit;
        else
            is_obj[open / 64] &= ~bit;
        open++;
        p = tw__lex_ws(p + 1, end);
        if (p < end && *p == (obj ? '}' : ']')) {
            open--;
            p++;
            goto after_value;
        }
        if (obj)
            goto key;
        goto value;
    }
    case 't':
    case 'f':
    case 'n':
        p = tw__lex_literal(p, end, &dummy, e);
        if (!p)
            return NULL;
        goto after_value;
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9')) {
            p = tw__lex_number(p, end, e);
            if (!p)
                return NULL;
            goto after_value;
        }
        return fail(e, p, TW_EJSON, "unexpected character (expected a value)");
    }

key:
    if (p >= end || *p != '"')
        return fail(e, p, TW_EJSON, "expected a string key in object");
    p = tw__lex_string(p + 1, end, &dummy, e);
    if (!p)
        return NULL;
    p = tw__lex_ws(p + 1, end);
    if (p >= end || *p != ':')
        return fail(e, p, TW_EJSON, "expected ':' after object key");
    p = tw__lex_ws(p + 1, end);
    goto value;

after_value:
    if (open == 0)
        return p;
    p = tw__lex_ws(p, end);
    if (p >= end)
        return fail(e, p, TW_EJSON, "unexpected end of input inside a container");
    {
        int obj = (int)((is_obj[(open - 1) / 64] >> ((open - 1) % 64)) & 1);
        if (*p == ',') {
            p = tw__lex_ws(p + 1, end);
            if (obj)
                goto key;
            goto value;
        }
        if (*p == (obj ? '}' : ']')) {
            open--;
            p++;
            goto after_value;
        }
        return fail(e, p, TW_EJSON, obj ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
    }
}
