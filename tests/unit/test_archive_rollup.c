/* tests/unit/test_archive_rollup.c: the SQLite archive's counts rollup (#12): the counts it answers
 * equal what the events themselves say, after batches out of time order, repeated eventIDs, a prune
 * that cuts through a minute, a version 2 archive (migrated, or read-only), and a writer killed with
 * SIGKILL mid-ingest. */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archive/rollup.h"
#include "common/buf.h"
#include "trailwatch/archive.h"
#include "tw_test.h"

#define NEV 1600
#define BASE_S 1767225600LL /* 2026-01-01T00:00:00Z, the key epoch: events on both sides of it */

static const char *const NAMES[] = {"RunInstances", "GetObject", "AssumeRole", "PutRolePolicy", "ListBuckets"};
static const char *const SRCS[] = {"ec2", "s3", "sts", "iam"};
static const char *const ACCTS[] = {"111111111111", "222222222222", "333333333333"};
static const char *const REGIONS[] = {"us-east-1", "eu-west-1", ""}; /* "": no awsRegion */

typedef struct ev {
    int64_t sec;
    int name, src, acct, region;
} ev;

static ev evs[NEV];
static char dbpath[256];

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void gen(void)
{
    for (int i = 0; i < NEV; i++) {
        /* two days around the epoch, some on whole minutes and hours */
        int64_t off = (int64_t)(next_rand() % (2 * 86400)) - 86400;
        if (i % 10 == 0)
            off -= off % 60;
        if (i % 37 == 0)
            off -= off % 3600;
        evs[i] = (ev){BASE_S + off, (int)(next_rand() % 5), (int)(next_rand() % 4), (int)(next_rand() % 3),
                      (int)(next_rand() % 3)};
    }
}

static size_t render(int i, char *buf, size_t cap)
{
    const ev *e = &evs[i];
    time_t t = (time_t)e->sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char region[64] = "";
    if (*REGIONS[e->region])
        snprintf(region, sizeof region, "\"awsRegion\":\"%s\",", REGIONS[e->region]);
    int n = snprintf(buf, cap,
                     "{\"eventVersion\":\"1.08\",\"eventID\":\"%08x-0000-4000-8000-000000000000\",\"eventTime\":\"%s\","
                     "\"eventSource\":\"%s.amazonaws.com\",\"eventName\":\"%s\",%s\"recipientAccountId\":\"%s\","
                     "\"sourceIPAddress\":\"10.0.0.1\",\"userIdentity\":{\"type\":\"IAMUser\","
                     "\"arn\":\"arn:aws:iam::%s:user/u%d\",\"userName\":\"u%d\"},\"eventType\":\"AwsApiCall\"}",
                     i, when, SRCS[e->src], NAMES[e->name], region, ACCTS[e->acct], ACCTS[e->acct], i % 7, i % 7);
    return (size_t)n;
}

static void paths(void)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/tw-rollup-test-%d.db", (int)getpid());
}

static void remove_db(void)
{
    char p[300];
    unlink(dbpath);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
}

static tw_archive *open_db(int readonly)
{
    tw_archive_opts o = {TW_ARCHIVE_SQLITE, dbpath, NULL, readonly};
    tw_archive *a = NULL;
    tw_error err;
    if (tw_archive_open(&a, &o, &err)) {
        printf("# open: %s\n", err.msg);
        return NULL;
    }
    return a;
}

/* ---- counts as "bucket|group=n" lines, sorted: one string to compare ---- */

typedef struct tally {
    char **keys;
    uint64_t *n;
    size_t len, cap;
} tally;

static void tally_add(tally *t, int64_t bucket, const char *group, uint64_t n)
{
    /* appended; repeats are summed by tally_text */
    char k[256];
    snprintf(k, sizeof k, "%020lld|%s", (long long)bucket, group);
    if (t->len == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->keys = realloc(t->keys, t->cap * sizeof *t->keys);
        t->n = realloc(t->n, t->cap * sizeof *t->n);
    }
    t->keys[t->len] = strdup(k);
    t->n[t->len++] = n;
}

typedef struct kn {
    char *k;
    uint64_t n;
} kn;

static int cmp_kn(const void *a, const void *b) { return strcmp(((const kn *)a)->k, ((const kn *)b)->k); }

/* The tally as one sorted text, repeats summed (the caller frees it). */
static char *tally_text(tally *t)
{
    kn *v = malloc((t->len + 1) * sizeof *v);
    for (size_t i = 0; i < t->len; i++)
        v[i] = (kn){t->keys[i], t->n[i]};
    qsort(v, t->len, sizeof *v, cmp_kn);
    tw_buf b;
    tw__buf_init(&b, 0);
    for (size_t i = 0; i < t->len;) {
        uint64_t n = 0;
        size_t j = i;
        for (; j < t->len && strcmp(v[j].k, v[i].k) == 0; j++)
            n += v[j].n;
        tw__buf_printf(&b, "%s=%llu\n", v[i].k, (unsigned long long)n);
        i = j;
    }
    for (size_t i = 0; i < t->len; i++)
        free(t->keys[i]);
    free(v);
    free(t->keys);
    free(t->n);
    memset(t, 0, sizeof *t);
    size_t len;
    char *s = tw__buf_detach(&b, &len);
    return s ? s : strdup("");
}

static int count_cb(void *ud, int64_t bucket, const char *group, uint64_t n)
{
    tally_add(ud, bucket, group, n);
    return 0;
}

static int64_t floor_bucket(int64_t ms, int64_t step) { return tw__roll_bucket(ms, step); }

/* What the generated events [0, upto) with kept[i] say, over [from, to] (0 open), by one dimension
 * (-1 total, else the backend's column order: name, source, account, region). */
static char *expected(const int *kept, int upto, int64_t from, int64_t to, int64_t step, int dim, const char *only_name)
{
    tally t = {0};
    for (int i = 0; i < upto; i++) {
        if (!kept[i])
            continue;
        int64_t ms = evs[i].sec * 1000;
        if ((from && ms < from / 1000 * 1000) || (to && ms > to))
            continue;
        if (only_name && strcmp(NAMES[evs[i].name], only_name) != 0)
            continue;
        char src[32];
        snprintf(src, sizeof src, "aws.%s", SRCS[evs[i].src]);
        const char *g = dim < 0 ? "" : dim == 0 ? NAMES[evs[i].name] : dim == 1 ? src
                                     : dim == 2 ? ACCTS[evs[i].acct] : REGIONS[evs[i].region];
        tally_add(&t, floor_bucket(ms, step), g, 1);
    }
    return tally_text(&t);
}

static const char *const BY[] = {NULL, "event_name", "source", "account", "region"};

static char *counted(tw_archive *a, int64_t from, int64_t to, int64_t step, const char *by, const char *name)
{
    tally t = {0};
    tw_archive_query q = {0};
    q.from_ms = from;
    q.to_ms = to;
    q.event_name = name;
    tw_error err;
    if (tw_archive_counts(a, &q, step, by, count_cb, &t, &err) != TW_OK)
        printf("# counts: %s\n", err.msg);
    return tally_text(&t);
}

/* Every step, grouping and range shape against the events. */
static int check_all(tw_archive *a, const int *kept, int upto)
{
    static const int64_t steps[] = {60000, 3600000, 5400000}; /* 90 min: buckets across hours */
    int64_t b = BASE_S * 1000;
    /* two stored events inside minutes (not on their first or last second), far apart: a range
     * from the one's second to the other's has an event in each partial minute at its ends */
    int64_t e1 = 0, e2 = 0;
    for (int i = 0; i < upto; i++) {
        int64_t sec = evs[i].sec, in = ((sec % 60) + 60) % 60;
        if (!kept[i] || in == 0 || in == 59)
            continue;
        if (!e1 || sec < e1)
            e1 = sec;
        if (!e2 || sec > e2)
            e2 = sec;
    }
    const int64_t ranges[][2] = {
        {e1 * 1000 + 250, e2 * 1000 + 999},       /* events in both partial minutes */
        {e1 * 1000 + 250, e1 * 1000 + 250},       /* one second */
        {0, 0},                                   /* open */
        {b - 3600000 + 17123, b + 7200000 - 2500}, /* partial minutes at both ends */
        {b - 600000, b + 600000 - 1},             /* whole minutes */
        {b + 30500, b + 45999},                   /* inside one minute */
        {b - 59000, b + 1000},                    /* across one minute boundary */
        {b + 86400000 / 2 + 1, 0},                /* from only */
    };
    int bad = 0;
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++)
        for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++)
            for (int d = -1; d < 4; d++) {
                char *want = expected(kept, upto, ranges[r][0], ranges[r][1], steps[s], d, NULL);
                char *got = counted(a, ranges[r][0], ranges[r][1], steps[s], BY[d + 1], NULL);
                if (strcmp(want, got) != 0) {
                    if (!bad++)
                        printf("# step %lld range %zu by %s:\n# want %.300s\n# got  %.300s\n", (long long)steps[s], r,
                               BY[d + 1] ? BY[d + 1] : "total", want, got);
                }
                free(want);
                free(got);
            }
    /* a filter the rollup does not hold: counted from the events */
    char *want = expected(kept, upto, ranges[3][0], ranges[3][1], 60000, 3, "AssumeRole");
    char *got = counted(a, ranges[3][0], ranges[3][1], 60000, "region", "AssumeRole");
    if (strcmp(want, got) != 0 && !bad++)
        printf("# event_name filter:\n# want %.300s\n# got  %.300s\n", want, got);
    free(want);
    free(got);
    return bad;
}

static int add_range(tw_archive *a, int from, int to, int stride, int *kept)
{
    char buf[2048];
    tw_error err;
    int ok = 0;
    for (int i = from; i < to; i += stride) {
        size_t n = render(i, buf, sizeof buf);
        tw_status s = tw_archive_add(a, buf, n, 0, &err);
        if (s == TW_OK) {
            kept[i] = 1;
            ok++;
        } else if (s != TW_EEXIST) {
            printf("# add: %s\n", err.msg);
        }
    }
    if (tw_archive_flush(a, &err)) {
        printf("# flush: %s\n", err.msg);
        return -1;
    }
    return ok;
}

TW_TEST(rollup_blob_round_trip)
{
    tw__roll_acc a = {0}, b = {0};
    int64_t h = -3; /* before the key epoch */
    REQUIRE(tw__roll_add(&a, h * 60 + 59, 3, 0, 2) == 0);
    REQUIRE(tw__roll_add(&a, h * 60, 1, 900000, 1) == 0);
    REQUIRE(tw__roll_add(&a, h * 60 + 7, 1, 900000, 300) == 0);
    REQUIRE(tw__roll_add(&a, h * 60 + 7, 1, 900000, 5) == 0);
    REQUIRE(tw__roll_add(&a, h * 60 + 7, 0, 4, 1) == 0);
    tw__roll_coalesce(&a);
    CHECK_EQ_INT(a.n, 4);
    tw_buf out;
    tw__buf_init(&out, 0);
    tw__roll_encode(a.v, a.n, &out);
    REQUIRE(!tw_buf_error(&out));
    REQUIRE(tw__roll_decode(out.data, out.len, h, &b) == 0);
    tw__roll_coalesce(&b);
    REQUIRE(b.n == a.n);
    for (size_t i = 0; i < a.n; i++)
        CHECK(a.v[i].m == b.v[i].m && a.v[i].dim == b.v[i].dim && a.v[i].atom == b.v[i].atom && a.v[i].n == b.v[i].n);
    CHECK_EQ_INT(b.v[2].n, 305); /* the repeats summed */
    /* damaged: truncated, or a minute outside its hour */
    b.n = 0;
    CHECK(tw__roll_decode(out.data, out.len - 1, h, &b) == -1);
    b.n = 0;
    const unsigned char bad[] = {1, 1, 1, 60, 1, 0, 0, 0};
    CHECK(tw__roll_decode(bad, sizeof bad, h, &b) == -1);
    CHECK(tw__roll_minute(-1) == -1 && tw__roll_minute(0) == 0 && tw__roll_hour(-1) == -1 && tw__roll_hour(59) == 0);
    tw__buf_free(&out);
    tw__roll_free(&a);
    tw__roll_free(&b);
}

TW_TEST(rollup_equals_events_after_batches_duplicates_prune)
{
    gen();
    paths();
    remove_db();
    static int kept[NEV];
    memset(kept, 0, sizeof kept);
    tw_archive *a = open_db(0);
    REQUIRE(a);
    /* batches out of time order; a third of the events come again later (dropped by eventID) */
    REQUIRE(add_range(a, 0, NEV / 2, 1, kept) == NEV / 2);
    REQUIRE(add_range(a, NEV / 2, NEV, 2, kept) > 0);
    REQUIRE(add_range(a, 0, NEV, 3, kept) >= 0);
    REQUIRE(add_range(a, NEV / 2 + 1, NEV, 2, kept) > 0);
    CHECK(tw_archive_duplicates(a) > 0);
    int stored = 0;
    for (int i = 0; i < NEV; i++)
        stored += kept[i];
    CHECK_EQ_INT(stored, NEV);
    CHECK_EQ_INT(check_all(a, kept, NEV), 0);

    /* a prune that cuts through a minute and an hour: the cut's second stays */
    tw_error err;
    int64_t cut = (BASE_S - 5000 + 31) * 1000 + 400;
    uint64_t removed = 0;
    REQUIRE(tw_archive_prune(a, cut, &removed, &err) == TW_OK);
    uint64_t gone = 0;
    for (int i = 0; i < NEV; i++)
        if (evs[i].sec < cut / 1000) {
            kept[i] = 0;
            gone++;
        }
    CHECK_EQ_INT(removed, gone);
    CHECK_EQ_INT(check_all(a, kept, NEV), 0);
    tw_archive_close(a);

    /* what is on disk, read-only */
    a = open_db(1);
    REQUIRE(a);
    CHECK_EQ_INT(check_all(a, kept, NEV), 0);
    tw_archive_close(a);
    remove_db();
}

static int sql(const char *q)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(dbpath, &db);
    if (!rc)
        rc = sqlite3_exec(db, q, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static long long version(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (!sqlite3_open(dbpath, &db) && !sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = 'schema'", -1, &st, NULL) &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

TW_TEST(rollup_version_2_archive)
{
    gen();
    paths();
    remove_db();
    static int kept[NEV];
    memset(kept, 0, sizeof kept);
    tw_archive *a = open_db(0);
    REQUIRE(a);
    REQUIRE(add_range(a, 0, NEV, 1, kept) == NEV);
    tw_archive_close(a);
    /* what version 2 wrote: the same tables without the rollup */
    REQUIRE(sql("DROP TABLE roll; UPDATE meta SET v = 2 WHERE k = 'schema'") == SQLITE_OK);
    /* read-only: counted from the events */
    a = open_db(1);
    REQUIRE(a);
    CHECK_EQ_INT(check_all(a, kept, NEV), 0);
    tw_archive_close(a);
    CHECK_EQ_INT(version(), 2);
    /* opened for writing: the rollup is built from the events, and kept from then on */
    a = open_db(0);
    REQUIRE(a);
    CHECK_EQ_INT(version(), 3);
    CHECK_EQ_INT(check_all(a, kept, NEV), 0);
    tw_archive_close(a);
    /* a later layout than this build's: a clear error */
    REQUIRE(sql("UPDATE meta SET v = 4 WHERE k = 'schema'") == SQLITE_OK);
    tw_archive_opts o = {TW_ARCHIVE_SQLITE, dbpath, NULL, 0};
    tw_error err;
    CHECK(tw_archive_open(&a, &o, &err) != TW_OK);
    CHECK_CONTAINS(err.msg, "schema version 4 is newer");
    remove_db();
}

/* The counts that tw_archive_find's rows say (a scan of the bodies), by account or in total. */
static char *scanned(tw_archive *a, int64_t step, int by_account);

typedef struct scan_ud {
    tally *t;
    int64_t step;
    int by_account;
} scan_ud;

static int scan_row(void *ud, const tw_archive_row *r)
{
    scan_ud *s = ud;
    tally_add(s->t, floor_bucket(r->time_ms / 1000 * 1000, s->step), s->by_account ? r->account : "", 1);
    return 0;
}

static char *scanned(tw_archive *a, int64_t step, int by_account)
{
    tally t = {0};
    scan_ud s = {&t, step, by_account};
    tw_archive_query q = {0};
    tw_error err;
    if (tw_archive_find(a, &q, scan_row, &s, NULL, 0, &err) != TW_OK)
        printf("# find: %s\n", err.msg);
    return tally_text(&t);
}

TW_TEST(rollup_survives_sigkill)
{
    gen();
    paths();
    remove_db();
    for (int round = 0; round < 4; round++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            /* the writer: small batches, over and over (repeats are dropped), until killed */
            tw_archive *a = open_db(0);
            static int k[NEV];
            for (int pass = 0; a && pass < 1000; pass++)
                for (int i = 0; i < NEV; i += 40)
                    add_range(a, i, i + 40 < NEV ? i + 40 : NEV, 1, k);
            _exit(0);
        }
        struct timespec ts = {0, (long)(40 + 60 * round) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        /* what survived: the rollup agrees with the events, whatever got committed */
        tw_archive *a = open_db(0);
        REQUIRE(a);
        char *want = scanned(a, 3600000, 1), *got = counted(a, 0, 0, 3600000, "account", NULL);
        CHECK_EQ_STR(got, want);
        free(want);
        free(got);
        want = scanned(a, 60000, 0);
        got = counted(a, 0, 0, 60000, NULL, NULL);
        CHECK_EQ_STR(got, want);
        free(want);
        free(got);
        tw_archive_close(a);
    }
    remove_db();
}

TW_TEST_MAIN()
