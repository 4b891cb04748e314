/*
 * tests/unit/test_archive_pg.c: the PostgreSQL archive backend against the SQLite one, on the same
 * real CloudTrail records: every query answers exactly alike (rows, order, bodies byte for byte,
 * cursors, counts, prune), and two handles (two nodes) writing the same events store them once.
 *
 * Needs a PostgreSQL: tests/e2e/test_archive_pg.py starts one (initdb + pg_ctl on a temporary
 * folder) and runs this with TW_TEST_PG_DSN (a fresh database) and TW_TEST_DATA (a .jsonl.gz of
 * CloudTrail records). Without them every test here is skipped.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "archive/codec.h"
#include "archive/extract.h"
#include "archive/pg_post.h"
#include "common/buf.h"
#include "common/gunzip.h"
#include "trailwatch/archive.h"
#include "tw_test.h"

static const char *dsn(void) { return getenv("TW_TEST_PG_DSN"); }

/* Run on its own (make check's unit layer) there is no server: say so once instead of reporting
 * tests that compared nothing as passed. */
__attribute__((constructor)) static void skip_without_server(void)
{
    if (!getenv("TW_TEST_PG_DSN")) {
        printf("1..0 # SKIP no PostgreSQL: tests/e2e/test_archive_pg.py runs this with one\n");
        exit(0);
    }
}

/* ---- the shared input ---- */

static char *data;   /* the records, one per line */
static size_t data_len;
static char sqlite_path[256];
static tw_archive *sq, *pq;
static uint64_t raw_added;
static size_t stride = 1; /* TW_TEST_STRIDE: only every stride-th line (a shorter run, same spread) */

static int load_data(void)
{
    if (data)
        return 1;
    const char *path = getenv("TW_TEST_DATA");
    if (!path)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    tw_buf gz = TW_BUF_INIT, out = TW_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        tw__buf_append(&gz, chunk, n);
    fclose(f);
    tw_error err;
    int ok = tw__gunzip(gz.data, gz.len, (size_t)1 << 30, &out, &err) == TW_OK;
    tw__buf_free(&gz);
    if (!ok)
        return 0;
    data = tw__buf_detach(&out, &data_len);
    return data != NULL;
}

typedef struct added {
    size_t ok, dup, bad;
    uint64_t bytes; /* of the events added */
} added;

#include <time.h>
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Adds every line from..to (line numbers) to a. */
/* every: commit after the first TW_ARCH_DICT_MIN_EVENTS events (so that the dictionary is trained
 * as with big batches), then after each `every` (0: only at the end and when the queue is full) */
static tw_status add_lines_every(tw_archive *a, size_t from, size_t to, size_t every, added *c, tw_error *err)
{
    size_t line = 0;
    for (char *p = data, *end = data + data_len; p < end && line < to; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (line >= from && len && line % stride == 0) {
            tw_status s = tw_archive_add(a, p, len, 1700000000000LL, err);
            if (s == TW_OK) {
                c->ok++;
                c->bytes += len;
                if (every && (c->ok == TW_ARCH_DICT_MIN_EVENTS || (c->ok > TW_ARCH_DICT_MIN_EVENTS &&
                                                                   c->ok % every == 0)) &&
                    (s = tw_archive_flush(a, err)))
                    return s;
            }
            else if (s == TW_EEXIST)
                c->dup++;
            else if (s == TW_EJSON || s == TW_EEVENT || s == TW_EUTF8)
                c->bad++;
            else
                return s;
        }
        p += len + 1;
    }
    return tw_archive_flush(a, err);
}

static tw_status add_lines(tw_archive *a, size_t from, size_t to, added *c, tw_error *err)
{
    return add_lines_every(a, from, to, 0, c, err);
}

/* PostgreSQL gets the records in small batches: many batches, so its posting rows are merged
 * (TW_ARCHIVE_PG_MERGE_BATCHES) several times while it loads, and every comparison below runs on
 * merged rows and on the rows of the batches since the last merge. */
#define PG_BATCH 40

/* Both archives, filled once with the same records. */
static int setup(void)
{
    if (sq)
        return 1;
    if (!dsn() || !load_data())
        return 0;
    if (getenv("TW_TEST_STRIDE") && atoi(getenv("TW_TEST_STRIDE")) > 0)
        stride = (size_t)atoi(getenv("TW_TEST_STRIDE"));
    snprintf(sqlite_path, sizeof sqlite_path, "/tmp/tw-archive-pg-%d.db", (int)getpid());
    unlink(sqlite_path);
    tw_archive_opts so = {TW_ARCHIVE_SQLITE, sqlite_path, NULL, 0}, po = {TW_ARCHIVE_POSTGRES, NULL, dsn(), 0};
    tw_error err;
    if (tw_archive_open(&sq, &so, &err) || tw_archive_open(&pq, &po, &err)) {
        printf("# open: %s\n", err.msg);
        return 0;
    }
    added a = {0}, b = {0};
    double t0 = now_s(), t1;
    if (add_lines(sq, 0, SIZE_MAX, &a, &err) || ((t1 = now_s()), add_lines_every(pq, 0, SIZE_MAX, PG_BATCH, &b, &err))) {
        printf("# add: %s\n", err.msg);
        return 0;
    }
    printf("# ingest: sqlite %.2f s, postgres %.2f s\n", t1 - t0, now_s() - t1);
    raw_added = b.bytes;
    printf("# added sqlite %zu (+%zu dup, %zu bad), postgres %zu (+%zu dup, %zu bad); committed %llu / %llu\n", a.ok,
           a.dup, a.bad, b.ok, b.dup, b.bad, (unsigned long long)tw_archive_committed(sq),
           (unsigned long long)tw_archive_committed(pq));
    return 1;
}

#define NEED()                                                                            \
    do {                                                                                  \
        if (!setup()) {                                                                   \
            printf("# no PostgreSQL (TW_TEST_PG_DSN) or data (TW_TEST_DATA): skipped\n"); \
            return;                                                                       \
        }                                                                                 \
    } while (0)

/* ---- rows as text, to compare ---- */

static int collect(void *ud, const tw_archive_row *r)
{
    tw_buf *b = ud;
    tw__buf_printf(b, "%lld|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%d|", (long long)r->time_ms, r->id, r->event_name,
                  r->event_source, r->account, r->region, r->principal, r->principal_type, r->role, r->session,
                  r->behind, r->source_ip, r->error_code, r->read_only);
    tw__buf_append(b, r->json, r->json_len);
    tw__buf_putc(b, '\n');
    return 0;
}

static size_t lines(const tw_buf *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->data[i] == '\n';
    return n;
}

/* find on both; the outputs (and next cursors) must be identical. Returns the row count. */
static size_t same_find(const tw_archive_query *q, const char *what)
{
    tw_buf a = TW_BUF_INIT, b = TW_BUF_INIT;
    char ca[TW_ARCHIVE_CURSOR_MAX] = "", cb[TW_ARCHIVE_CURSOR_MAX] = "";
    tw_error ea, eb;
    tw_status sa = tw_archive_find(sq, q, collect, &a, ca, sizeof ca, &ea);
    tw_status sb = tw_archive_find(pq, q, collect, &b, cb, sizeof cb, &eb);
    CHECK_EQ_INT(sa, sb);
    if (sb)
        printf("# %s: postgres: %s\n", what, eb.msg);
    size_t n = lines(&a);
    if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0)) {
        TW_FAIL_("%s: sqlite %zu rows, postgres %zu rows, not the same", what, n, lines(&b));
    }
    CHECK_EQ_STR(ca, cb);
    tw__buf_free(&a);
    tw__buf_free(&b);
    return n;
}

static size_t same_who(const char *resource, int64_t from, int64_t to)
{
    tw_buf a = TW_BUF_INIT, b = TW_BUF_INIT;
    tw_error ea, eb;
    tw_status sa = tw_archive_who(sq, resource, from, to, collect, &a, &ea);
    tw_status sb = tw_archive_who(pq, resource, from, to, collect, &b, &eb);
    CHECK_EQ_INT(sa, sb);
    size_t n = lines(&a);
    if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
        TW_FAIL_("who %s: sqlite %zu rows, postgres %zu rows, not the same", resource, n, lines(&b));
    tw__buf_free(&a);
    tw__buf_free(&b);
    return n;
}

static int count_row(void *ud, int64_t bucket, const char *group, uint64_t n)
{
    tw__buf_printf(ud, "%lld|%s|%llu\n", (long long)bucket, group, (unsigned long long)n);
    return 0;
}

/* Counts (the rollups, #12) on both alike: every step and grouping, ranges cut mid-minute. */
static void same_counts(const char *what)
{
    tw_archive_stats st;
    tw_error err;
    REQUIRE(tw_archive_stats_get(sq, &st, &err) == TW_OK);
    const int64_t ranges[][2] = {{0, 0},
                                 {st.first_ms, st.last_ms}, /* the first and last events in partial minutes */
                                 {st.first_ms + 12345, st.last_ms - 54321},
                                 {st.first_ms / 60000 * 60000, st.last_ms / 60000 * 60000 - 1},
                                 {st.first_ms + 90500, st.first_ms + 91999},
                                 {(st.first_ms + st.last_ms) / 2 + 777, 0}};
    static const int64_t steps[] = {60000, 3600000, 420000, 86400000};
    static const char *const by[] = {NULL, "source", "account", "region", "event_name"};
    for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++)
        for (size_t s = 0; s < sizeof steps / sizeof *steps; s++)
            for (size_t i = 0; i < sizeof by / sizeof *by; i++) {
                tw_buf a = TW_BUF_INIT, b = TW_BUF_INIT;
                tw_archive_query q;
                memset(&q, 0, sizeof q);
                q.from_ms = ranges[r][0];
                q.to_ms = ranges[r][1];
                CHECK(tw_archive_counts(sq, &q, steps[s], by[i], count_row, &a, &err) == TW_OK);
                CHECK(tw_archive_counts(pq, &q, steps[s], by[i], count_row, &b, &err) == TW_OK);
                if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
                    TW_FAIL_("%s: counts range %zu step %lld by %s differ", what, r, (long long)steps[s],
                             by[i] ? by[i] : "(none)");
                tw__buf_free(&a);
                tw__buf_free(&b);
            }
}

/* ---- tests ---- */

/* The rows a load in batches of PG_BATCH leaves: fewer than one row per batch and bucket touched
 * (counted here; without merging there would be at least that many: one per batch, month and
 * bucket). */
TW_TEST(pg_posting_rows_merged)
{
    NEED();
    size_t unmerged = 0, nacc = 0, line = 0;
    static uint8_t touched[TW__PG_POST_BUCKETS];
    memset(touched, 0, sizeof touched);
    for (char *p = data, *end = data + data_len; p < end; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        tw__arch_fields f;
        if (len && line % stride == 0 && tw__arch_extract(p, len, &f, NULL) == TW_OK) {
            int32_t terms[256];
            size_t n = tw__arch_terms(&f, terms, 256);
            for (size_t i = 0; i < n; i++)
                if (!touched[tw__pg_post_bucket(terms[i])]++)
                    unmerged++;
            tw__arch_fields_free(&f);
            nacc++; /* the batches add_lines_every commits */
            if (nacc == TW_ARCH_DICT_MIN_EVENTS || (nacc > TW_ARCH_DICT_MIN_EVENTS && nacc % PG_BATCH == 0)) {
                memset(touched, 0, sizeof touched);
            }
        }
        p += len + 1;
    }
    PGconn *c = PQconnectdb(dsn());
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, "SELECT count(*) FROM tw_post");
    REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
    size_t rows = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    printf("# posting rows: %zu (without merging: %zu)\n", rows, unmerged);
    CHECK(rows > 0);
    CHECK(rows < unmerged);
}

TW_TEST(pg_same_stats)
{
    NEED();
    tw_archive_stats a, b;
    tw_error err;
    REQUIRE(tw_archive_stats_get(sq, &a, &err) == TW_OK);
    REQUIRE(tw_archive_stats_get(pq, &b, &err) == TW_OK);
    CHECK(a.events > 20000 / stride);
    CHECK_EQ_INT(a.events, b.events);
    CHECK_EQ_INT(a.first_ms, b.first_ms);
    CHECK_EQ_INT(a.last_ms, b.last_ms);
    CHECK_EQ_INT(b.raw_bytes, raw_added); /* the events' JSON as added */
    CHECK(b.dictionary);
    CHECK(b.ratio > 2.0);
    CHECK(b.bytes_on_disk > 0);
    printf("# events %llu; sqlite ratio %.1f on disk %llu; postgres ratio %.1f on disk %llu\n",
           (unsigned long long)a.events, a.ratio, (unsigned long long)a.bytes_on_disk, b.ratio,
           (unsigned long long)b.bytes_on_disk);
}

TW_TEST(pg_same_find)
{
    NEED();
    double t0 = now_s();
    tw_archive_query q;
    memset(&q, 0, sizeof q);
    CHECK(same_find(&q, "everything") > 20000 / stride);
    q.event_name = "PutBucketPolicy";
    CHECK(same_find(&q, "event_name") > 0);
    memset(&q, 0, sizeof q);
    q.pattern = "{\"source\":[\"aws.s3\"],\"detail\":{\"eventName\":[\"GetObject\",\"PutObject\",\"DeleteObject\"]}}";
    CHECK(same_find(&q, "pattern s3") > 0);
    q.pattern = "{\"detail\":{\"errorCode\":[{\"exists\":true}]}}";
    CHECK(same_find(&q, "pattern errorCode exists") > 0);
    q.pattern = "{\"region\":[\"us-east-1\"],\"detail\":{\"eventName\":[{\"prefix\":\"Create\"}]}}";
    CHECK(same_find(&q, "pattern region + prefix") > 0);
    memset(&q, 0, sizeof q);
    q.from_ms = 1627603200000LL; /* 2021-07-30 */
    q.to_ms = 1627689599999LL;
    CHECK(same_find(&q, "one day") > 0);
    q.who = "root";
    same_find(&q, "who root, one day");
    memset(&q, 0, sizeof q);
    q.resource = "arn:aws:s3:::dev-bucket";
    same_find(&q, "resource");
    q.resource = NULL;
    q.event_name = "NoSuchEventName";
    CHECK_EQ_INT(same_find(&q, "nothing"), 0);
    printf("# %s: %.2f s\n", "pg_same_find", now_s() - t0);
}

/* Principals and resources taken from the data itself: each one's find and who agree. Distinct
 * resources only, and at most ~60,000 rows in all (a bucket's who is ~15,000 rows here). */
TW_TEST(pg_same_who_and_resources)
{
    NEED();
    double t0 = now_s();
    size_t checked = 0, rows = 0, line = 0;
    char seen[64][256];
    size_t nseen = 0;
    for (char *p = data, *end = data + data_len; p < end && checked < 40 && rows < 60000; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (line % (53 * stride) == 0) {
            tw__arch_fields f;
            if (tw__arch_extract(p, len, &f, NULL) == TW_OK) {
                for (size_t i = 0; i < f.nresources && i < 3; i++) {
                    const char *r = f.resources[i];
                    const char *sl = strchr(r, '/');
                    int dup = strlen(r) >= sizeof seen[0] || (strncmp(r, "arn:aws:s3:::", 13) == 0 && sl);
                    for (size_t k = 0; k < nseen && !dup; k++)
                        dup = strcmp(seen[k], r) == 0;
                    if (dup || nseen == 64)
                        continue;
                    snprintf(seen[nseen++], sizeof seen[0], "%s", r);
                    rows += same_who(r, 0, 0);
                    rows += same_who(r, 1627603200000LL, 1627689599999LL); /* 2021-07-30 only */
                    tw_archive_query q;
                    memset(&q, 0, sizeof q);
                    q.resource = r;
                    q.limit = 50;
                    same_find(&q, r);
                    checked++;
                }
                if (*f.principal && line % 4 == 0) {
                    tw_archive_query q;
                    memset(&q, 0, sizeof q);
                    q.who = f.principal;
                    q.limit = 200;
                    same_find(&q, f.principal);
                }
            }
            tw__arch_fields_free(&f);
        }
        p += len + 1;
    }
    printf("# %zu resources compared, %zu who rows\n", checked, rows);
    CHECK(checked >= 20);
    CHECK(rows > 0);
    printf("# %s: %.2f s\n", "pg_same_who_and_resources", now_s() - t0);
}

TW_TEST(pg_same_paging)
{
    NEED();
    double t0 = now_s();
    tw_archive_query q;
    memset(&q, 0, sizeof q);
    q.limit = 100;
    char ca[TW_ARCHIVE_CURSOR_MAX] = "", cb[TW_ARCHIVE_CURSOR_MAX] = "";
    for (int page = 0; page < 5; page++) {
        tw_buf a = TW_BUF_INIT, b = TW_BUF_INIT;
        tw_error err;
        tw_archive_query qa = q, qb = q;
        qa.cursor = page ? ca : NULL;
        qb.cursor = page ? cb : NULL;
        char na[TW_ARCHIVE_CURSOR_MAX] = "", nb[TW_ARCHIVE_CURSOR_MAX] = "";
        CHECK(tw_archive_find(sq, &qa, collect, &a, na, sizeof na, &err) == TW_OK);
        CHECK(tw_archive_find(pq, &qb, collect, &b, nb, sizeof nb, &err) == TW_OK);
        CHECK_EQ_INT(lines(&a), 100);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        CHECK_EQ_STR(na, nb);
        memcpy(ca, na, sizeof ca);
        memcpy(cb, nb, sizeof cb);
        tw__buf_free(&a);
        tw__buf_free(&b);
    }
    printf("# %s: %.2f s\n", "pg_same_paging", now_s() - t0);
}

TW_TEST(pg_same_counts)
{
    NEED();
    double t0 = now_s();
    static const char *const by[] = {NULL, "source", "account", "region", "event_name"};
    for (size_t i = 0; i < sizeof by / sizeof *by; i++) {
        tw_buf a = TW_BUF_INIT, b = TW_BUF_INIT;
        tw_archive_query q;
        memset(&q, 0, sizeof q);
        tw_error err;
        CHECK(tw_archive_counts(sq, &q, 3600000, by[i], count_row, &a, &err) == TW_OK);
        CHECK(tw_archive_counts(pq, &q, 3600000, by[i], count_row, &b, &err) == TW_OK);
        CHECK(a.len > 0);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
            TW_FAIL_("counts by %s differ", by[i] ? by[i] : "(none)");
        tw__buf_free(&a);
        tw__buf_free(&b);
    }
    same_counts("counts");
    printf("# %s: %.2f s\n", "pg_same_counts", now_s() - t0);
}

/* Adding the same records again (this node, then another node's handle) stores nothing new. */
TW_TEST(pg_dedup_across_handles)
{
    NEED();
    tw_archive *other = NULL;
    tw_archive_opts po = {TW_ARCHIVE_POSTGRES, NULL, dsn(), 0};
    tw_error err;
    REQUIRE(tw_archive_open(&other, &po, &err) == TW_OK);
    tw_archive_stats before, after;
    REQUIRE(tw_archive_stats_get(pq, &before, &err) == TW_OK);
    added a = {0}, b = {0};
    CHECK(add_lines(pq, 0, 3000, &a, &err) == TW_OK);
    CHECK(add_lines(other, 1000, 5000, &b, &err) == TW_OK);
    REQUIRE(tw_archive_stats_get(pq, &after, &err) == TW_OK);
    CHECK_EQ_INT(after.events, before.events);
    CHECK_EQ_INT(tw_archive_committed(other), 0);
    tw_archive_close(other);
}

typedef struct writer {
    const char *dsn;
    size_t from, to;
    tw_status s;
    uint64_t committed;
} writer;

static void *write_thread(void *ud)
{
    writer *w = ud;
    tw_archive *a = NULL;
    tw_archive_opts o = {TW_ARCHIVE_POSTGRES, NULL, w->dsn, 0};
    tw_error err;
    added c = {0};
    w->s = tw_archive_open(&a, &o, &err);
    if (!w->s)
        w->s = add_lines(a, w->from, w->to, &c, &err);
    if (w->s)
        printf("# writer: %s\n", err.msg);
    w->committed = tw_archive_committed(a);
    tw_archive_close(a);
    return NULL;
}

/* Two nodes archiving the same events at the same time into an empty database: each event once. */
TW_TEST(pg_two_writers_at_once)
{
    NEED();
    const char *d2 = getenv("TW_TEST_PG_DSN2"); /* an empty second database */
    if (!d2) {
        printf("# no TW_TEST_PG_DSN2: skipped\n");
        return;
    }
    writer w[2] = {{d2, 0, 12000, 0, 0}, {d2, 4000, 16000, 0, 0}}; /* line numbers */
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, write_thread, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(w[0].s, TW_OK);
    CHECK_EQ_INT(w[1].s, TW_OK);
    tw_archive *a = NULL, *s = NULL;
    tw_archive_opts o = {TW_ARCHIVE_POSTGRES, NULL, d2, 1};
    char path[300];
    snprintf(path, sizeof path, "%s.two", sqlite_path);
    unlink(path);
    tw_archive_opts so = {TW_ARCHIVE_SQLITE, path, NULL, 0};
    tw_error err;
    REQUIRE(tw_archive_open(&a, &o, &err) == TW_OK);
    REQUIRE(tw_archive_open(&s, &so, &err) == TW_OK);
    added c = {0};
    CHECK(add_lines(s, 0, 16000, &c, &err) == TW_OK);
    tw_archive_stats sa, sb;
    CHECK(tw_archive_stats_get(a, &sa, &err) == TW_OK);
    CHECK(tw_archive_stats_get(s, &sb, &err) == TW_OK);
    printf("# two writers: committed %llu + %llu, stored %llu, one writer alone stores %llu\n",
           (unsigned long long)w[0].committed, (unsigned long long)w[1].committed, (unsigned long long)sa.events,
           (unsigned long long)sb.events);
    CHECK_EQ_INT(sa.events, sb.events);
    CHECK_EQ_INT(w[0].committed + w[1].committed, sb.events);
    tw_archive_close(a);
    tw_archive_close(s);
    unlink(path);
}

TW_TEST(pg_readonly_and_errors)
{
    tw_archive *a = NULL;
    tw_error err;
    tw_archive_opts bad = {TW_ARCHIVE_POSTGRES, NULL, "host=127.0.0.1 port=1 user=tw password=s3cret dbname=x", 0};
    CHECK(tw_archive_open(&a, &bad, &err) == TW_EDB);
    CHECK_CONTAINS(err.msg, "cannot connect");
    CHECK(strstr(err.msg, "s3cret") == NULL);
    tw_archive_opts none = {TW_ARCHIVE_POSTGRES, NULL, NULL, 0};
    CHECK(tw_archive_open(&a, &none, &err) == TW_EINVAL);
    CHECK_CONTAINS(err.msg, "dsn");
}

/* An archive made before the counts rollup (#12): read-only, its counts come from the events; the
 * first writable open counts the rollup from them. */
TW_TEST(pg_rollup_built_for_an_older_archive)
{
    NEED();
    PGconn *c = PQconnectdb(dsn());
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, "DROP TABLE tw_rollup; DELETE FROM tw_meta WHERE key = 'rollup'");
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    tw_error err;
    tw_archive_close(pq);
    tw_archive_opts ro = {TW_ARCHIVE_POSTGRES, NULL, dsn(), 1}, rw = {TW_ARCHIVE_POSTGRES, NULL, dsn(), 0};
    REQUIRE(tw_archive_open(&pq, &ro, &err) == TW_OK);
    same_counts("read-only, no rollup");
    tw_archive_close(pq);
    REQUIRE(tw_archive_open(&pq, &rw, &err) == TW_OK);
    r = PQexec(c, "SELECT (SELECT count(*) FROM tw_rollup) > 0, (SELECT count(*) FROM tw_meta WHERE key = 'rollup')");
    REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
    CHECK_EQ_STR(PQgetvalue(r, 0, 0), "t");
    CHECK_EQ_STR(PQgetvalue(r, 0, 1), "1");
    PQclear(r);
    PQfinish(c);
    same_counts("rollup built");
}

/* Last: prune removes the same events from both. */
TW_TEST(pg_same_prune)
{
    NEED();
    uint64_t ra = 0, rb = 0;
    tw_error err;
    int64_t cut = 1627646400000LL; /* 2021-07-30T12:00:00Z: days before drop, that day is trimmed */
    CHECK(tw_archive_prune(sq, cut, &ra, &err) == TW_OK);
    CHECK(tw_archive_prune(pq, cut, &rb, &err) == TW_OK);
    CHECK(ra > 0);
    CHECK_EQ_INT(ra, rb);
    tw_archive_query q;
    memset(&q, 0, sizeof q);
    CHECK(same_find(&q, "after prune") > 0);
    same_counts("after prune");
    tw_archive_close(sq);
    tw_archive_close(pq);
    sq = pq = NULL;
    unlink(sqlite_path);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", sqlite_path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", sqlite_path);
    unlink(wal);
    free(data);
    data = NULL;
}

TW_TEST_MAIN()
