/* pattern/glob.c: Sigma wildcards. `*` (TW_GLOB_STAR) is any run and `?` (TW_GLOB_ONE) exactly one
 * character; everything else is literal. Split at the stars like EventBridge wildcards; a segment may
 * hold `?`, so it has a fixed length in characters and the leftmost occurrence of each middle segment is
 * still the best choice: matching stays without backtracking, O(value x segment) at worst. */
#include <string.h>

#include "pattern/pattern_int.h"

const char *tw__glob_compile(tw_arena *a, const char *s, size_t len, unsigned max_stars, tw__wildcard *out)
{
    uint32_t stars = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == TW_GLOB_STAR && (i == 0 || s[i - 1] != TW_GLOB_STAR))
            stars++;
    if (stars > max_stars)
        return "too many '*' in one wildcard (over the limit)";
    out->nseg = stars + 1;
    out->seg = tw__arena_alloc(a, sizeof(char *) * out->nseg);
    out->seglen = tw__arena_alloc(a, sizeof(uint32_t) * out->nseg);
    char *buf = tw__arena_alloc(a, len + 1);
    if (!out->seg || !out->seglen || !buf)
        return "out of memory";
    memcpy(buf, s, len);
    buf[len] = '\0';
    uint32_t k = 0;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != TW_GLOB_STAR)
            continue;
        if (i > 0 && buf[i - 1] == TW_GLOB_STAR) { /* "**" is one star */
            start = i + 1;
            continue;
        }
        out->seg[k] = buf + start;
        out->seglen[k++] = (uint32_t)(i - start);
        start = i + 1;
    }
    out->seg[k] = buf + start;
    out->seglen[k] = (uint32_t)(len - start);
    return NULL;
}

/* Bytes of the UTF-8 character starting with lead byte c (valid text). */
static size_t char_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4; }

/* Where segment g (n bytes) ends when it matches s at p, or NULL. */
static const char *match_at(const char *g, size_t n, const char *p, const char *end)
{
    for (size_t i = 0; i < n; i++) {
        if (p >= end)
            return NULL;
        if (g[i] == TW_GLOB_ONE) {
            p += char_len((unsigned char)*p);
            if (p > end)
                return NULL;
        } else if (g[i] != *p++) {
            return NULL;
        }
    }
    return p;
}

/* Leftmost occurrence of the segment in [p, end): its end in *after, or NULL. */
static const char *find(const char *g, size_t n, const char *p, const char *end, const char **after)
{
    if (!memchr(g, TW_GLOB_ONE, n)) {
        const char *hit = memmem(p, (size_t)(end - p), g, n);
        if (hit)
            *after = hit + n;
        return hit;
    }
    for (; p < end; p += char_len((unsigned char)*p)) {
        const char *e = match_at(g, n, p, end);
        if (e) {
            *after = e;
            return p;
        }
    }
    return NULL;
}

/* Characters the segment takes from a value (a `?` is one, a literal character is itself). */
static size_t seg_chars(const char *g, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += g[i] == TW_GLOB_ONE || ((unsigned char)g[i] & 0xc0) != 0x80;
    return c;
}

int tw__glob_match(const tw__wildcard *g, const char *s, size_t len)
{
    const char *end = s + len, *p;
    uint32_t last = g->nseg - 1;
    if (g->nseg == 1)
        return (p = match_at(g->seg[0], g->seglen[0], s, end)) != NULL && p == end;
    if (!(p = match_at(g->seg[0], g->seglen[0], s, end)))
        return 0;
    /* The tail starts `chars` characters before the end, and must not overlap the head. */
    size_t chars = seg_chars(g->seg[last], g->seglen[last]);
    const char *tail = end;
    while (chars-- > 0) {
        if (tail <= p)
            return 0;
        do
            tail--;
        while (tail > p && ((unsigned char)*tail & 0xc0) == 0x80);
    }
    if (tail < p || match_at(g->seg[last], g->seglen[last], tail, end) != end)
        return 0;
    for (uint32_t i = 1; i < last; i++) {
        if (!g->seglen[i])
            continue;
        const char *after;
        if (!find(g->seg[i], g->seglen[i], p, tail, &after) || after > tail)
            return 0;
        p = after;
    }
    return 1;
}
