/* archive/rollup.c: the counts rollup's arithmetic, blob format and reader's sums (rollup.h). */
#include "archive/rollup.h"

#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

int64_t tw__roll_minute(int64_t key) { return floor_div(key, TW_ROLL_MINUTE_KEYS); }

int64_t tw__roll_minute_ms(int64_t minute) { return (minute * 60 + TW_ARCH_KEY_EPOCH) * 1000; }

int64_t tw__roll_bucket(int64_t ms, int64_t step) { return floor_div(ms, step) * step; }

int64_t tw__roll_hour(int64_t minute) { return floor_div(minute, 60); }

void tw__roll_split(int64_t lo, int64_t hi, int64_t *m0, int64_t *m1, int64_t edge[2][2])
{
    *m0 = tw__roll_minute(lo);
    *m1 = tw__roll_minute(hi);
    if (lo != INT64_MIN && tw__roll_minute(lo - 1) == *m0)
        ++*m0;
    if (hi != INT64_MAX && tw__roll_minute(hi + 1) == *m1)
        --*m1;
    edge[0][0] = edge[1][0] = 1;
    edge[0][1] = edge[1][1] = 0;
    if (*m0 > *m1) {
        if (lo <= hi) {
            edge[0][0] = lo;
            edge[0][1] = hi;
        }
        return;
    }
    if (tw__roll_minute(lo) < *m0) {
        edge[0][0] = lo;
        edge[0][1] = *m0 * TW_ROLL_MINUTE_KEYS - 1;
    }
    if (tw__roll_minute(hi) > *m1) {
        edge[1][0] = (*m1 + 1) * TW_ROLL_MINUTE_KEYS;
        edge[1][1] = hi;
    }
}

/* ---- accumulator ---- */

int tw__roll_add(tw__roll_acc *a, int64_t m, uint32_t dim, int64_t atom, uint64_t n)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        tw__roll_ent *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = (tw__roll_ent){m, atom, dim, n};
    return 0;
}

static int ent_cmp(const void *x, const void *y)
{
    const tw__roll_ent *a = x, *b = y;
    int64_t ha = tw__roll_hour(a->m), hb = tw__roll_hour(b->m);
    if (ha != hb)
        return ha < hb ? -1 : 1;
    if (a->dim != b->dim)
        return a->dim < b->dim ? -1 : 1;
    if (a->atom != b->atom)
        return a->atom < b->atom ? -1 : 1;
    return a->m < b->m ? -1 : a->m > b->m;
}

void tw__roll_coalesce(tw__roll_acc *a)
{
    if (a->n < 2)
        return;
    qsort(a->v, a->n, sizeof *a->v, ent_cmp);
    size_t o = 0;
    for (size_t i = 1; i < a->n; i++) {
        if (ent_cmp(&a->v[o], &a->v[i]) == 0)
            a->v[o].n += a->v[i].n;
        else
            a->v[++o] = a->v[i];
    }
    a->n = o + 1;
}

void tw__roll_free(tw__roll_acc *a)
{
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* ---- blob: per dimension: how many atoms; per atom: its delta, how many minutes; per minute: its
 * delta (from the hour's start for the first), its count. All LEB128. ---- */

static void put_uv(tw_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    tw__buf_append(b, tmp, n);
}

static int get_uv(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

void tw__roll_encode(const tw__roll_ent *e, size_t n, tw_buf *out)
{
    size_t i = 0;
    int64_t base = n ? tw__roll_hour(e[0].m) * 60 : 0;
    for (uint32_t d = 0; d < TW_ROLL_DIMS; d++) {
        size_t atoms = 0;
        for (size_t j = i; j < n && e[j].dim == d; j++)
            atoms += j == i || e[j].atom != e[j - 1].atom;
        put_uv(out, atoms);
        int64_t prev = 0;
        while (i < n && e[i].dim == d) {
            size_t j = i;
            while (j < n && e[j].dim == d && e[j].atom == e[i].atom)
                j++;
            put_uv(out, (uint64_t)(e[i].atom - prev));
            put_uv(out, j - i);
            prev = e[i].atom;
            int64_t pm = base;
            for (; i < j; i++) {
                put_uv(out, (uint64_t)(e[i].m - pm));
                put_uv(out, e[i].n);
                pm = e[i].m;
            }
        }
    }
}

int tw__roll_decode(const void *blob, size_t len, int64_t h, tw__roll_acc *a)
{
    const unsigned char *p = blob, *end = p + len;
    for (uint32_t d = 0; d < TW_ROLL_DIMS; d++) {
        uint64_t na, nm, v, n;
        if (get_uv(&p, end, &na) || na > len)
            return -1;
        int64_t atom = 0;
        for (uint64_t i = 0; i < na; i++) {
            if (get_uv(&p, end, &v) || get_uv(&p, end, &nm) || nm > 60)
                return -1;
            atom += (int64_t)v;
            int64_t m = h * 60;
            for (uint64_t k = 0; k < nm; k++) {
                if (get_uv(&p, end, &v) || v >= 60 || get_uv(&p, end, &n))
                    return -1;
                m += (int64_t)v;
                if (m >= (h + 1) * 60)
                    return -1;
                if (tw__roll_add(a, m, d, atom, n))
                    return -2;
            }
        }
    }
    return p == end ? 0 : -1;
}

/* ---- reader's sums: open addressing over (bucket, atom) ---- */

static size_t slot_of(const tw__roll_agg *g, int64_t bucket, int64_t atom)
{
    size_t j = (size_t)tw__hash_mix((uint64_t)bucket * 0x9e3779b97f4a7c15ull ^ (uint64_t)atom) & (g->cap - 1);
    while (g->slots[j].n && (g->slots[j].bucket != bucket || g->slots[j].atom != atom))
        j = (j + 1) & (g->cap - 1);
    return j;
}

int tw__roll_agg_add(tw__roll_agg *g, int64_t bucket, int64_t atom, uint64_t n)
{
    if (!n)
        return 0;
    if ((g->used + 1) * 2 > g->cap) {
        tw__roll_agg bigger = {NULL, g->cap ? g->cap * 2 : 256, 0};
        if (!(bigger.slots = calloc(bigger.cap, sizeof *bigger.slots)))
            return -1;
        for (size_t i = 0; i < g->cap; i++)
            if (g->slots[i].n)
                bigger.slots[slot_of(&bigger, g->slots[i].bucket, g->slots[i].atom)] = g->slots[i];
        bigger.used = g->used;
        free(g->slots);
        *g = bigger;
    }
    size_t j = slot_of(g, bucket, atom);
    if (!g->slots[j].n) {
        g->slots[j].bucket = bucket;
        g->slots[j].atom = atom;
        g->used++;
    }
    g->slots[j].n += n;
    return 0;
}

static int slot_cmp(const void *x, const void *y)
{
    const struct tw__roll_slot *a = x, *b = y;
    if (a->bucket != b->bucket)
        return a->bucket < b->bucket ? -1 : 1;
    return a->atom < b->atom ? -1 : a->atom > b->atom;
}

int tw__roll_agg_take(tw__roll_agg *g, int (*fn)(void *ud, int64_t bucket, int64_t atom, uint64_t n), void *ud)
{
    size_t o = 0;
    for (size_t i = 0; i < g->cap; i++) /* packed to the front: the table is not used again */
        if (g->slots[i].n)
            g->slots[o++] = g->slots[i];
    if (o > 1)
        qsort(g->slots, o, sizeof *g->slots, slot_cmp);
    int stop = 0;
    for (size_t i = 0; i < o && !stop; i++)
        stop = fn(ud, g->slots[i].bucket, g->slots[i].atom, g->slots[i].n);
    tw__roll_agg_free(g);
    return stop;
}

void tw__roll_agg_free(tw__roll_agg *g)
{
    free(g->slots);
    g->slots = NULL;
    g->cap = g->used = 0;
}
