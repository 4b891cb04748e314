/* engine/dedup.c: a two-generation set of 128-bit id hashes. */
#include "engine/dedup.h"

#include <stdlib.h>

#include "common/hash.h"

typedef struct key {
    uint64_t a, b;           /* a == 0: empty; a == 1: deleted (real hashes avoid both) */
} key;

typedef struct gen {
    key *slots;
    size_t cap, n;
    int64_t started_ms;
} gen;

struct tw_dedup {
    gen cur, prev;
    int64_t window_ms;
};

static key hash_id(const char *id, size_t len)
{
    key k = {tw__hash_bytes(id, len, 0x243f6a8885a308d3ULL), tw__hash_bytes(id, len, 0x13198a2e03707344ULL)};
    if (k.a < 2)
        k.a += 2;
    return k;
}

tw_dedup *tw__dedup_new(int64_t window_ms)
{
    tw_dedup *d = calloc(1, sizeof *d);
    if (d)
        d->window_ms = window_ms > 0 ? window_ms : 1;
    return d;
}

void tw__dedup_free(tw_dedup *d)
{
    if (!d)
        return;
    free(d->cur.slots);
    free(d->prev.slots);
    free(d);
}

static key *find(gen *g, key k)
{
    if (!g->cap)
        return NULL;
    for (size_t i = (size_t)k.a & (g->cap - 1);; i = (i + 1) & (g->cap - 1)) {
        if (g->slots[i].a == 0)
            return NULL;
        if (g->slots[i].a == k.a && g->slots[i].b == k.b)
            return &g->slots[i];
    }
}

static int insert(gen *g, key k)
{
    if ((g->n + 1) * 2 > g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4096;
        key *n = calloc(cap, sizeof *n);
        if (!n)
            return 0;
        for (size_t i = 0; i < g->cap; i++) {
            if (g->slots[i].a < 2)
                continue;
            size_t j = (size_t)g->slots[i].a & (cap - 1);
            while (n[j].a)
                j = (j + 1) & (cap - 1);
            n[j] = g->slots[i];
        }
        free(g->slots);
        g->slots = n;
        g->cap = cap;
    }
    size_t i = (size_t)k.a & (g->cap - 1);
    while (g->slots[i].a >= 2)
        i = (i + 1) & (g->cap - 1);
    g->slots[i] = k;
    g->n++;
    return 1;
}

int tw__dedup_check_add(tw_dedup *d, const char *id, size_t len, int64_t now_ms)
{
    key k = hash_id(id, len);
    if (find(&d->cur, k) || find(&d->prev, k))
        return 1;
    if (!d->cur.started_ms)
        d->cur.started_ms = now_ms;
    if (now_ms - d->cur.started_ms >= d->window_ms / 2 || d->cur.n >= TW_DEDUP_MAX_IDS / 2) {
        free(d->prev.slots);
        d->prev = d->cur;
        d->cur = (gen){NULL, 0, 0, now_ms};
    }
    return insert(&d->cur, k) ? 0 : -1;
}

void tw__dedup_forget(tw_dedup *d, const char *id, size_t len)
{
    key k = hash_id(id, len);
    key *s = find(&d->cur, k);
    if (!s)
        s = find(&d->prev, k);
    if (s)
        s->a = 1; /* tombstone keeps probe chains intact */
}
