/*
 * tests/unit/test_pg_post.c: the PostgreSQL archive's posting rows (archive/pg_post.c) without a
 * server: what is written decodes to exactly each term's keys, rows never span a month, a bucket
 * gets one row per month and batch, rows decoded whole (a merge) are written again alike, and a
 * damaged row is an error, never a crash or a wrong key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "archive/backend.h"
#include "archive/pg_post.h"
#include "archive/pg_schema.h"
#include "tw_test.h"

typedef struct row {
    int32_t b;
    int64_t k0, k1;
    unsigned char *data;
    size_t len;
} row;

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t be64(const unsigned char *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

/* Parses the binary COPY written by tw__pg_post_copy back into rows. */
static size_t parse(const tw__pg_copy *c, row *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)c->buf.data;
    size_t n = c->buf.len, i = 19, m = 0;
    while (i + 2 <= n) {
        int16_t f = (int16_t)(p[i] << 8 | p[i + 1]);
        i += 2;
        if (f == -1)
            break;
        if (f != 4 || m == cap)
            return (size_t)-1;
        row *r = &out[m++];
        i += 4;
        r->b = (int32_t)be32(p + i);
        i += 4 + 4;
        r->k0 = (int64_t)be64(p + i);
        i += 8 + 4;
        r->k1 = (int64_t)be64(p + i);
        i += 8;
        r->len = be32(p + i);
        i += 4;
        r->data = (unsigned char *)p + i;
        i += r->len;
    }
    return m;
}

#define NTERMS 300
#define NEV 5000
#define T0 1769900400000LL /* 2026-01-31T23:00:00Z: event e at T0 + e s, February from e = 3600 on */

static int64_t key_of(int e) { return tw__arch_key_lo(T0 + (int64_t)e * 1000) + e % 3; }
static int64_t period_of_event(int e)
{
    int64_t lo, hi;
    tw__pg_period_of(T0 + (int64_t)e * 1000, &lo, &hi);
    return lo;
}

TW_TEST(round_trip)
{
    tw__pg_post p;
    tw__pg_copy c;
    tw__pg_post_init(&p);
    tw__pg_copy_init(&c, 0);
    int32_t terms[NTERMS];
    for (int t = 0; t < NTERMS; t++)
        terms[t] = (int32_t)(0x9e3779b9u * (uint32_t)(t + 1)); /* spread over the buckets, signs both */
    terms[1] = terms[0] + 1;                                    /* two terms in one bucket */
    tw_error err;
    /* keys over two months (January and February); event e has terms (e * 7 + j * 13) % NTERMS */
    int64_t feb = key_of(3600);
    for (int e = 0; e < NEV; e++) {
        int64_t k = key_of(e);
        int64_t period = period_of_event(e);
        for (int j = 0; j < 4; j++)
            REQUIRE(tw__pg_post_add(&p, period, terms[(e * 7 + j * 13) % NTERMS], k, &err) == TW_OK);
        REQUIRE(tw__pg_post_add(&p, period, terms[(e * 7) % NTERMS], k, &err) == TW_OK); /* a repeat */
    }
    REQUIRE(tw__pg_post_copy(&p, &c, &err) == TW_OK);
    CHECK_EQ_INT(p.npairs, 0);
    static row rows[2 * TW__PG_POST_BUCKETS];
    size_t nrows = parse(&c, rows, 2 * TW__PG_POST_BUCKETS);
    REQUIRE(nrows != (size_t)-1 && nrows > 0);
    for (size_t r = 0; r < nrows; r++) {
        CHECK(rows[r].k0 <= rows[r].k1);
        CHECK((rows[r].k1 < feb) == (rows[r].k0 < feb)); /* one month per row */
        CHECK(rows[r].b >= 0 && rows[r].b < TW__PG_POST_BUCKETS);
        for (size_t q = 0; q < r; q++)
            CHECK(!(rows[q].b == rows[r].b && (rows[q].k0 < feb) == (rows[r].k0 < feb)));
    }
    /* each term: every key, once, ascending (and descending on request), within [lo, hi] */
    for (int t = 0; t < NTERMS; t++) {
        for (int pass = 0; pass < 2; pass++) {
            int64_t lo = pass ? key_of(1000) : INT64_MIN, hi = pass ? key_of(4000) : INT64_MAX;
            tw__pg_post_start(&p);
            for (size_t r = 0; r < nrows; r++)
                if (rows[r].b == tw__pg_post_bucket(terms[t]))
                    REQUIRE(tw__pg_post_decode(&p, terms[t], rows[r].k0, rows[r].data, rows[r].len, lo, hi, &err) ==
                            TW_OK);
            tw__pg_post_sort(&p, pass);
            size_t want = 0;
            for (int e = 0; e < NEV; e++) {
                int64_t k = key_of(e);
                int has = 0;
                for (int j = 0; j < 4; j++)
                    has |= (e * 7 + j * 13) % NTERMS == t;
                if (!has || k < lo || k > hi)
                    continue;
                size_t at = pass ? p.nkeys - 1 - want : want;
                REQUIRE(want < p.nkeys);
                CHECK(p.keys[at] == k);
                want++;
            }
            CHECK_EQ_INT(p.nkeys, want);
        }
    }
    /* merging: every row decoded whole and written again gives the same rows */
    tw__pg_copy c2;
    tw__pg_copy_init(&c2, 0);
    for (size_t r = 0; r < nrows; r++)
        REQUIRE(tw__pg_post_decode_all(&p, rows[r].k0, rows[r].data, rows[r].len, &err) == TW_OK);
    REQUIRE(tw__pg_post_copy(&p, &c2, &err) == TW_OK);
    CHECK_EQ_INT(c2.buf.len, c.buf.len);
    CHECK(memcmp(c2.buf.data, c.buf.data, c.buf.len) == 0);
    tw__pg_copy_free(&c2);
    /* a term absent from a row gives nothing */
    tw__pg_post_start(&p);
    REQUIRE(tw__pg_post_decode(&p, 12345, rows[0].k0, rows[0].data, rows[0].len, INT64_MIN, INT64_MAX, &err) == TW_OK);
    CHECK_EQ_INT(p.nkeys, 0);
    tw__pg_copy_free(&c);
    tw__pg_post_free(&p);
}

TW_TEST(damaged_rows)
{
    tw__pg_post p;
    tw__pg_copy c;
    tw__pg_post_init(&p);
    tw__pg_copy_init(&c, 0);
    tw_error err;
    int32_t h = 0x12345678;
    for (int64_t k = 100; k < 200; k++)
        REQUIRE(tw__pg_post_add(&p, 0, h, k * 1000, &err) == TW_OK);
    REQUIRE(tw__pg_post_copy(&p, &c, &err) == TW_OK);
    row rows[2];
    REQUIRE(parse(&c, rows, 2) == 1);
    unsigned char buf[4096];
    REQUIRE(rows[0].len < sizeof buf);
    /* cut anywhere: an error or a prefix of the keys, never a key that was not written */
    for (size_t cut = 0; cut < rows[0].len; cut++) {
        memcpy(buf, rows[0].data, cut);
        tw__pg_post_start(&p);
        tw_status s = tw__pg_post_decode(&p, h, rows[0].k0, buf, cut, INT64_MIN, INT64_MAX, &err);
        CHECK(s == TW_OK || s == TW_ECORRUPT);
        for (size_t i = 0; i < p.nkeys; i++)
            CHECK(p.keys[i] == (int64_t)(100 + i) * 1000);
    }
    /* a length past the row */
    memcpy(buf, rows[0].data, rows[0].len);
    buf[4] = 0x7f;
    tw__pg_post_start(&p);
    CHECK(tw__pg_post_decode(&p, h, rows[0].k0, buf, 5, INT64_MIN, INT64_MAX, &err) == TW_ECORRUPT);
    CHECK_CONTAINS(err.msg, "damaged");
    /* a zero delta after the first key */
    unsigned char z[] = {0x12, 0x34, 0x56, 0x78, 2, 5, 0};
    tw__pg_post_start(&p);
    CHECK(tw__pg_post_decode(&p, h, 0, z, sizeof z, INT64_MIN, INT64_MAX, &err) == TW_ECORRUPT);
    tw__pg_copy_free(&c);
    tw__pg_post_free(&p);
}

TW_TEST_MAIN()
