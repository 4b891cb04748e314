/* event/ids.c: the eventID of a record or of an event's detail, by skimming keys. */
#include "event/ids.h"

#include <string.h>

#include "json/skip.h"
#include "trailwatch/limits.h"

/* Walks the members of the object at p; for the member named `name` returns its value's start. */
static const char *member(const char *p, const char *end, const char *name, size_t nlen)
{
    tw_lex_err e;
    p = tw__lex_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p = tw__lex_ws(p + 1, end);
    while (p < end && *p == '"') {
        int esc = 0;
        const char *close = tw__lex_string(p + 1, end, &esc, &e);
        if (!close)
            return NULL;
        int hit = !esc && (size_t)(close - p - 1) == nlen && memcmp(p + 1, name, nlen) == 0;
        p = tw__lex_ws(close + 1, end);
        if (p >= end || *p != ':')
            return NULL;
        p = tw__lex_ws(p + 1, end);
        if (hit)
            return p;
        if (!(p = tw__json_skip(p, end, TW_MAX_JSON_DEPTH, &e)))
            return NULL;
        p = tw__lex_ws(p, end);
        if (p >= end || *p != ',')
            return NULL;
        p = tw__lex_ws(p + 1, end);
    }
    return NULL;
}

/* The plain string value of member name of the object at p, into out. */
static size_t string_member(const char *p, const char *end, const char *name, size_t nlen, char *out, size_t cap)
{
    if (!(p = member(p, end, name, nlen)) || *p != '"')
        return 0;
    tw_lex_err e;
    int esc = 0;
    const char *close = tw__lex_string(p + 1, end, &esc, &e);
    size_t n = close ? (size_t)(close - p - 1) : 0;
    if (!close || esc || n == 0 || n >= cap)
        return 0;
    memcpy(out, p + 1, n);
    out[n] = '\0';
    return n;
}

size_t tw__event_cloudtrail_id(const char *json, size_t len, int record, char *out, size_t cap)
{
    const char *end = json + len, *p = json;
    if (!record && !(p = member(p, end, "detail", 6)))
        return 0;
    return string_member(p, end, "eventID", 7, out, cap);
}

size_t tw__event_envelope_id(const char *json, size_t len, char *out, size_t cap)
{
    return string_member(json, json + len, "id", 2, out, cap);
}
