/*
 * pattern/affix.h: byte tries of the prefixes (or reversed suffixes) rules name on one field, so an
 * event value finds every prefix rule it satisfies in one walk over its first bytes, instead of one
 * hash probe per distinct prefix length (internal).
 *
 * Ownership: a tw__affix is a set of flat arrays owned by the rule set (tw__affix_free).
 */
#ifndef TW_PATTERN_AFFIX_H
#define TW_PATTERN_AFFIX_H

#include <stddef.h>
#include <stdint.h>

typedef struct tw__affix {
    uint32_t nnodes;
    uint32_t *child_off;          /* node -> index of its first child (children are contiguous) */
    uint16_t *nchild;             /* node -> number of children (<= 256) */
    uint8_t *byte;                /* node -> the byte leading to it from its parent */
    uint32_t *value;              /* node -> the value filed at it (a key ending here), or UINT32_MAX */
} tw__affix;

typedef struct tw__affix_key {
    const uint8_t *bytes;
    uint32_t len;
    uint32_t value;
} tw__affix_key;

/* Builds the trie of keys (reversed when `reverse`, for suffixes). Keys may repeat; the first
 * value of equal keys is kept. Returns 0 when out of memory. */
int tw__affix_build(tw__affix *t, tw__affix_key *keys, size_t n, int reverse);
void tw__affix_free(tw__affix *t);
size_t tw__affix_memory(const tw__affix *t);

/* The child of node for byte c, or UINT32_MAX. Inline: the walks and the contains scan take one
 * step per byte of an event value. */
static inline uint32_t tw__affix_child(const tw__affix *t, uint32_t node, uint8_t c)
{
    uint32_t lo = t->child_off[node], hi = lo + t->nchild[node];
    if (hi - lo <= 8) {
        for (uint32_t i = lo; i < hi; i++)
            if (t->byte[i] == c)
                return i;
        return UINT32_MAX;
    }
    uint32_t last = hi;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (t->byte[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < last && t->byte[lo] == c ? lo : UINT32_MAX;
}

typedef void (*tw__affix_fn)(void *ctx, uint32_t value);
/* Calls fn for the value of every key that is a prefix of s (a suffix when the trie is reversed,
 * walking s from its end). */
void tw__affix_walk(const tw__affix *t, const char *s, size_t len, int reverse, tw__affix_fn fn, void *ctx);

#endif
