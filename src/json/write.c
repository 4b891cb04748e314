/* json/write.c: JSON text from trees and strings (compact, always valid, UTF-8 passed through). */
#include <stdio.h>
#include <string.h>

#include "json/json_int.h"

tw_status tw__json_write_string(tw_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    tw_status rc = tw__buf_reserve(b, len + 2);
    if (rc)
        return rc;
    if ((rc = tw__buf_putc(b, '"')))
        return rc;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        if (run && (rc = tw__buf_append(b, s + i - run, run)))
            return rc;
        run = 0;
        char esc[7];
        size_t n = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if ((rc = tw__buf_append(b, esc, n)))
            return rc;
    }
    if (run && (rc = tw__buf_append(b, s + len - run, run)))
        return rc;
    return tw__buf_putc(b, '"');
}

tw_status tw__json_write(tw_buf *b, const tw_json *v)
{
    tw_status rc = TW_OK;
    switch (v->type) {
    case TW_JSON_NULL: return tw__buf_append(b, "null", 4);
    case TW_JSON_TRUE: return tw__buf_append(b, "true", 4);
    case TW_JSON_FALSE: return tw__buf_append(b, "false", 5);
    case TW_JSON_NUMBER: return tw__buf_append(b, v->u.num.text, v->n);
    case TW_JSON_STRING: return tw__json_write_string(b, v->u.str, v->n);
    case TW_JSON_ARRAY:
        if ((rc = tw__buf_putc(b, '[')))
            return rc;
        for (size_t i = 0; i < v->n; i++) {
            if (i && (rc = tw__buf_putc(b, ',')))
                return rc;
            if ((rc = tw__json_write(b, v->u.items[i])))
                return rc;
        }
        return tw__buf_putc(b, ']');
    case TW_JSON_OBJECT:
        if ((rc = tw__buf_putc(b, '{')))
            return rc;
        for (size_t i = 0; i < v->n; i++) {
            const tw_json_member *m = &v->u.members[i];
            if (i && (rc = tw__buf_putc(b, ',')))
                return rc;
            if ((rc = tw__json_write_string(b, m->key, m->klen)) || (rc = tw__buf_putc(b, ':')) ||
                (rc = tw__json_write(b, m->val)))
                return rc;
        }
        return tw__buf_putc(b, '}');
    }
    return TW_EINVAL;
}

static size_t string_len(const char *s, size_t len)
{
    size_t n = 2;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        n += c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f' ? 2
             : c < 0x20                                                                   ? 6
                                                                                          : 1;
    }
    return n;
}

size_t tw__json_compact_len(const tw_json *v, size_t cap)
{
    size_t n = 0;
    switch (v->type) {
    case TW_JSON_NULL: case TW_JSON_TRUE: return 4;
    case TW_JSON_FALSE: return 5;
    case TW_JSON_NUMBER: return v->n;
    case TW_JSON_STRING: return string_len(v->u.str, v->n);
    case TW_JSON_ARRAY:
        n = 2 + (v->n ? v->n - 1 : 0);
        for (size_t i = 0; i < v->n && n <= cap; i++)
            n += tw__json_compact_len(v->u.items[i], cap - n + 1);
        break;
    case TW_JSON_OBJECT:
        n = 2 + (v->n ? v->n - 1 : 0);
        for (size_t i = 0; i < v->n && n <= cap; i++)
            n += string_len(v->u.members[i].key, v->u.members[i].klen) + 1 +
                 tw__json_compact_len(v->u.members[i].val, cap - n + 1);
        break;
    }
    return n > cap ? cap + 1 : n;
}
