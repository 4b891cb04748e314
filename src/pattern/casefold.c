/* pattern/casefold.c: simple case folding from the generated Unicode table. */
#include "pattern/casefold.h"

#include <string.h>

#include "casefold_table.h"
#include "common/utf8.h"

uint32_t tw__fold_cp(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    size_t lo = 0, hi = sizeof tw__casefold_table / sizeof tw__casefold_table[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tw__casefold_table[mid][0] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sizeof tw__casefold_table / sizeof tw__casefold_table[0] && tw__casefold_table[lo][0] == cp)
        return tw__casefold_table[lo][1];
    return cp;
}

int tw__is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

tw_status tw__casefold(const char *s, size_t len, tw_buf *out)
{
    /* Folding maps one code point to one code point; the UTF-8 form grows by at most half. */
    tw_status rc = tw__buf_reserve(out, len + len / 2 + 4);
    if (rc)
        return rc;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    char *o = out->data + out->len;
    while (p < end) {
        if (*p < 0x80) {
            unsigned c = *p++;
            *o++ = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            continue;
        }
        uint32_t cp;
        size_t n = tw__utf8_seq(p, end, &cp);
        if (!n) { /* not reachable for validated input; copy the byte through */
            *o++ = (char)*p++;
            continue;
        }
        p += n;
        o += tw__utf8_put(o, tw__fold_cp(cp));
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    return TW_OK;
}
