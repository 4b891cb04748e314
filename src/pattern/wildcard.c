/* pattern/wildcard.c: "*" wildcards split into literal segments, matched left to right in linear time. */
#include <string.h>

#include "pattern/pattern_int.h"

const char *tw__wildcard_compile(tw_arena *a, const char *s, size_t len, unsigned max_stars,
                                 tw__wildcard *out)
{
    /* First pass: validate escapes, count stars. */
    uint32_t stars = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\') {
            if (i + 1 >= len || (s[i + 1] != '*' && s[i + 1] != '\\'))
                return "invalid escape in \"wildcard\" (only \\* and \\\\ are allowed)";
            i++;
        } else if (s[i] == '*') {
            if (i + 1 < len && s[i + 1] == '*')
                return "\"wildcard\" must not contain consecutive '*'";
            stars++;
        }
    }
    if (stars > max_stars)
        return "\"wildcard\" has too many '*' (over the limit)";
    out->nseg = stars + 1;
    out->seg = tw__arena_alloc(a, sizeof(char *) * out->nseg);
    out->seglen = tw__arena_alloc(a, sizeof(uint32_t) * out->nseg);
    char *buf = tw__arena_alloc(a, len + 1);
    if (!out->seg || !out->seglen || !buf)
        return "out of memory";
    uint32_t k = 0;
    size_t o = 0, start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\') {
            buf[o++] = s[++i];
        } else if (s[i] == '*') {
            out->seg[k] = buf + start;
            out->seglen[k++] = (uint32_t)(o - start);
            start = o;
        } else {
            buf[o++] = s[i];
        }
    }
    out->seg[k] = buf + start;
    out->seglen[k] = (uint32_t)(o - start);
    return NULL;
}

int tw__wildcard_match(const tw__wildcard *wc, const char *s, size_t len)
{
    uint32_t last = wc->nseg - 1;
    if (wc->nseg == 1)
        return len == wc->seglen[0] && memcmp(s, wc->seg[0], len) == 0;
    /* Head must be a prefix and tail a suffix, without overlapping. */
    size_t head = wc->seglen[0], tail = wc->seglen[last];
    if (head + tail > len || memcmp(s, wc->seg[0], head) != 0 ||
        memcmp(s + len - tail, wc->seg[last], tail) != 0)
        return 0;
    /* Middle segments: leftmost occurrence of each, in order, is optimal when '*' is the only
     * wildcard, so no backtracking is needed. */
    const char *p = s + head, *end = s + len - tail;
    for (uint32_t i = 1; i < last; i++) {
        size_t n = wc->seglen[i];
        if (n == 0)
            continue;
        const char *hit = memmem(p, (size_t)(end - p), wc->seg[i], n);
        if (!hit)
            return 0;
        p = hit + n;
    }
    return 1;
}
