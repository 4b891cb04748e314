/* archive/pg_post.c: posting lists by term bucket for the PostgreSQL archive (see pg_post.h). */
#include "archive/pg_post.h"

#include <stdlib.h>
#include <string.h>

#include "archive/backend.h"
#include "archive/pg_schema.h"
#include "common/buf.h"
#include "common/err.h"

void tw__pg_post_init(tw__pg_post *p)
{
    memset(p, 0, sizeof *p);
    tw__buf_init(&p->row, 0);
}

void tw__pg_post_free(tw__pg_post *p)
{
    free(p->pairs);
    free(p->keys);
    tw__buf_free(&p->row);
    memset(p, 0, sizeof *p);
}

tw_status tw__pg_post_add(tw__pg_post *p, int64_t period, int32_t h, int64_t k, tw_error *err)
{
    if (p->npairs == p->pairs_cap) {
        size_t cap = p->pairs_cap ? p->pairs_cap * 2 : 4096;
        tw__pg_pair *v = realloc(p->pairs, cap * sizeof *v);
        if (!v)
            return tw__err(err, TW_ENOMEM, "archive: out of memory");
        p->pairs = v;
        p->pairs_cap = cap;
    }
    /* a month's first ms is a whole day: days since 1970 fit 32 bits */
    p->pairs[p->npairs++] = (tw__pg_pair){k, h, (int32_t)(period / 86400000)};
    return TW_OK;
}

/* (month, bucket, term, key): a row is a run of one month and bucket, its terms in hash order. */
static int pair_cmp(const void *a, const void *b)
{
    const tw__pg_pair *x = a, *y = b;
    if (x->period != y->period)
        return x->period < y->period ? -1 : 1;
    int32_t bx = tw__pg_post_bucket(x->h), by = tw__pg_post_bucket(y->h);
    if (bx != by)
        return bx < by ? -1 : 1;
    if (x->h != y->h)
        return (uint32_t)x->h < (uint32_t)y->h ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

static size_t varint(unsigned char *out, uint64_t v)
{
    size_t n = 0;
    do {
        out[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* One term's keys (pairs [i, j), sorted) after k0: into keys, repeats dropped. */
static void term_keys(tw_buf *keys, const tw__pg_pair *v, size_t i, size_t j, int64_t k0)
{
    unsigned char t[10];
    int64_t prev = k0;
    for (size_t a = i; a < j; a++) {
        if (a > i && v[a].k == prev)
            continue;
        tw__buf_append(keys, t, varint(t, (uint64_t)(v[a].k - prev)));
        prev = v[a].k;
    }
}

tw_status tw__pg_post_copy(tw__pg_post *p, tw__pg_copy *out, tw_error *err)
{
    if (!p->npairs)
        return TW_OK;
    qsort(p->pairs, p->npairs, sizeof *p->pairs, pair_cmp);
    tw_buf keys = TW_BUF_INIT;
    tw_status s = TW_OK;
    const tw__pg_pair *v = p->pairs;
    for (size_t i = 0; i < p->npairs;) {
        int32_t b = tw__pg_post_bucket(v[i].h);
        size_t end = i;
        int64_t k0 = v[i].k, k1 = v[i].k;
        while (end < p->npairs && v[end].period == v[i].period && tw__pg_post_bucket(v[end].h) == b) {
            if (v[end].k < k0)
                k0 = v[end].k;
            if (v[end].k > k1)
                k1 = v[end].k;
            end++;
        }
        tw_buf_reset(&p->row);
        for (size_t t = i; t < end;) {
            size_t u = t;
            while (u < end && v[u].h == v[t].h)
                u++;
            tw_buf_reset(&keys);
            term_keys(&keys, v, t, u, k0);
            unsigned char hdr[14];
            uint32_t h = (uint32_t)v[t].h;
            hdr[0] = (unsigned char)(h >> 24);
            hdr[1] = (unsigned char)(h >> 16);
            hdr[2] = (unsigned char)(h >> 8);
            hdr[3] = (unsigned char)h;
            size_t hn = 4 + varint(hdr + 4, keys.len);
            tw__buf_append(&p->row, hdr, hn);
            tw__buf_append(&p->row, keys.data ? keys.data : "", keys.len);
            t = u;
        }
        if (tw_buf_error(&keys) || tw_buf_error(&p->row)) {
            s = tw__err(err, TW_ENOMEM, "archive: out of memory");
            break;
        }
        p->rows_written++;
        tw__pg_copy_row(out, 4);
        tw__pg_copy_int4(out, b);
        tw__pg_copy_int8(out, k0);
        tw__pg_copy_int8(out, k1);
        tw__pg_copy_bytea(out, p->row.data ? p->row.data : "", p->row.len);
        i = end;
    }
    tw__buf_free(&keys);
    p->npairs = 0;
    return s;
}

void tw__pg_post_start(tw__pg_post *p) { p->nkeys = 0; }

static int get_varint(const unsigned char *d, size_t n, size_t *i, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; *i < n && shift < 64; shift += 7) {
        unsigned char c = d[(*i)++];
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

static tw_status damaged(tw_error *err, int64_t k0)
{
    return tw__err(err, TW_ECORRUPT, "postgres: the index row of bucket at key %lld is damaged", (long long)k0);
}

tw_status tw__pg_post_decode(tw__pg_post *p, int32_t h, int64_t k0, const unsigned char *d, size_t n, int64_t lo,
                             int64_t hi, tw_error *err)
{
    for (size_t i = 0; i < n;) {
        uint64_t len;
        if (n - i < 5)
            return damaged(err, k0);
        uint32_t th = (uint32_t)d[i] << 24 | (uint32_t)d[i + 1] << 16 | (uint32_t)d[i + 2] << 8 | d[i + 3];
        i += 4;
        if (!get_varint(d, n, &i, &len) || len > n - i)
            return damaged(err, k0);
        if (th != (uint32_t)h) {
            if (th > (uint32_t)h)
                break; /* terms are in hash order: h is not in this row */
            i += (size_t)len;
            continue;
        }
        size_t end = i + (size_t)len;
        int64_t k = k0;
        for (int first = 1; i < end; first = 0) {
            uint64_t dlt;
            if (!get_varint(d, end, &i, &dlt) || (!first && !dlt) || dlt > (uint64_t)INT64_MAX - (uint64_t)k)
                return damaged(err, k0);
            k += (int64_t)dlt;
            if (k < lo || k > hi)
                continue;
            if (p->nkeys == p->keys_cap) {
                size_t cap = p->keys_cap ? p->keys_cap * 2 : 1024;
                int64_t *v = realloc(p->keys, cap * sizeof *v);
                if (!v)
                    return tw__err(err, TW_ENOMEM, "archive: out of memory");
                p->keys = v;
                p->keys_cap = cap;
            }
            p->keys[p->nkeys++] = k;
        }
        break;
    }
    return TW_OK;
}

tw_status tw__pg_post_decode_all(tw__pg_post *p, int64_t k0, const unsigned char *d, size_t n, tw_error *err)
{
    int64_t sec = INT64_MIN, period = 0;
    for (size_t i = 0; i < n;) {
        uint64_t len;
        if (n - i < 5)
            return damaged(err, k0);
        int32_t h = (int32_t)((uint32_t)d[i] << 24 | (uint32_t)d[i + 1] << 16 | (uint32_t)d[i + 2] << 8 | d[i + 3]);
        i += 4;
        if (!get_varint(d, n, &i, &len) || len > n - i)
            return damaged(err, k0);
        size_t end = i + (size_t)len;
        int64_t k = k0;
        for (int first = 1; i < end; first = 0) {
            uint64_t dlt;
            if (!get_varint(d, end, &i, &dlt) || (!first && !dlt) || dlt > (uint64_t)INT64_MAX - (uint64_t)k)
                return damaged(err, k0);
            k += (int64_t)dlt;
            int64_t t = tw__arch_key_time(k);
            if (t != sec) {
                int64_t hi;
                sec = t;
                tw__pg_period_of(t, &period, &hi);
            }
            tw_status s = tw__pg_post_add(p, period, h, k, err);
            if (s)
                return s;
        }
    }
    return TW_OK;
}

static int key_asc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int key_desc(const void *a, const void *b) { return key_asc(b, a); }

void tw__pg_post_sort(tw__pg_post *p, int desc)
{
    if (p->nkeys < 2)
        return;
    /* rows read in k0 order of one bucket usually give the keys in order already: no sort then */
    size_t i = 1;
    while (i < p->nkeys && p->keys[i - 1] < p->keys[i])
        i++;
    if (i < p->nkeys) {
        qsort(p->keys, p->nkeys, sizeof *p->keys, desc ? key_desc : key_asc);
        return;
    }
    if (desc)
        for (size_t a = 0, b = p->nkeys - 1; a < b; a++, b--) {
            int64_t t = p->keys[a];
            p->keys[a] = p->keys[b];
            p->keys[b] = t;
        }
}
