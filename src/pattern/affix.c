/* pattern/affix.c: flat byte tries built from sorted keys, children stored contiguously. */
#include "pattern/affix.h"

#include <stdlib.h>
#include <string.h>

static uint8_t at(const tw__affix_key *k, uint32_t i, int reverse)
{
    return reverse ? k->bytes[k->len - 1 - i] : k->bytes[i];
}

static int cmp_keys(const void *a, const void *b, void *arg)
{
    const tw__affix_key *x = a, *y = b;
    int reverse = *(const int *)arg;
    uint32_t n = x->len < y->len ? x->len : y->len;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t p = at(x, i, reverse), q = at(y, i, reverse);
        if (p != q)
            return p < q ? -1 : 1;
    }
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->value < y->value ? -1 : x->value > y->value;
}

typedef struct builder {
    tw__affix *t;
    uint32_t cap;
    tw__affix_key *keys;
    int reverse;
} builder;

static int grow(builder *b, uint32_t need)
{
    if (need <= b->cap)
        return 1;
    uint32_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    tw__affix *t = b->t;
    void *p1 = realloc(t->child_off, cap * sizeof *t->child_off);
    if (p1)
        t->child_off = p1;
    void *p2 = realloc(t->nchild, cap * sizeof *t->nchild);
    if (p2)
        t->nchild = p2;
    void *p3 = realloc(t->byte, cap * sizeof *t->byte);
    if (p3)
        t->byte = p3;
    void *p4 = realloc(t->value, cap * sizeof *t->value);
    if (p4)
        t->value = p4;
    if (!p1 || !p2 || !p3 || !p4)
        return 0;
    b->cap = cap;
    return 1;
}

/* Node `node` stands for the common first `depth` bytes of keys [lo, hi) (sorted). */
static int fill(builder *b, uint32_t node, size_t lo, size_t hi, uint32_t depth)
{
    tw__affix *t = b->t;
    /* Keys ending exactly here come first in sorted order. */
    t->value[node] = UINT32_MAX;
    while (lo < hi && b->keys[lo].len == depth) {
        if (t->value[node] == UINT32_MAX)
            t->value[node] = b->keys[lo].value;
        lo++;
    }
    uint32_t nchild = 0;
    for (size_t i = lo; i < hi; i++)
        if (i == lo || at(&b->keys[i], depth, b->reverse) != at(&b->keys[i - 1], depth, b->reverse))
            nchild++;
    uint32_t first = t->nnodes;
    if (!grow(b, first + nchild))
        return 0;
    t->child_off[node] = first;
    t->nchild[node] = (uint16_t)nchild;
    t->nnodes += nchild;
    uint32_t c = first;
    for (size_t i = lo; i < hi;) {
        uint8_t by = at(&b->keys[i], depth, b->reverse);
        size_t j = i;
        while (j < hi && at(&b->keys[j], depth, b->reverse) == by)
            j++;
        t->byte[c] = by;
        if (!fill(b, c, i, j, depth + 1))
            return 0;
        c++;
        i = j;
    }
    return 1;
}

int tw__affix_build(tw__affix *t, tw__affix_key *keys, size_t n, int reverse)
{
    memset(t, 0, sizeof *t);
    qsort_r(keys, n, sizeof *keys, cmp_keys, &reverse);
    builder b = {t, 0, keys, reverse};
    if (!grow(&b, 1)) {
        tw__affix_free(t);
        return 0;
    }
    t->nnodes = 1;
    t->byte[0] = 0;
    if (!fill(&b, 0, 0, n, 0)) {
        tw__affix_free(t);
        return 0;
    }
    return 1;
}

void tw__affix_free(tw__affix *t)
{
    free(t->child_off);
    free(t->nchild);
    free(t->byte);
    free(t->value);
    memset(t, 0, sizeof *t);
}

size_t tw__affix_memory(const tw__affix *t)
{
    return (size_t)t->nnodes * (sizeof *t->child_off + sizeof *t->nchild + sizeof *t->byte + sizeof *t->value);
}

void tw__affix_walk(const tw__affix *t, const char *s, size_t len, int reverse, tw__affix_fn fn, void *ctx)
{
    if (!t->nnodes)
        return;
    uint32_t node = 0;
    if (t->value[0] != UINT32_MAX)
        fn(ctx, t->value[0]); /* the empty prefix: every string */
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)(reverse ? s[len - 1 - i] : s[i]);
        if ((node = tw__affix_child(t, node, c)) == UINT32_MAX)
            return;
        if (t->value[node] != UINT32_MAX)
            fn(ctx, t->value[node]);
    }
}
