/* tests/unit/test_archive.c: the archive: extract on real records (every principal type), the
 * codec's round trip, the SQLite backend (add, dedup, find, who, counts, stats, prune, damage). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/codec.h"
#include "archive/extract.h"
#include "trailwatch/archive.h"
#include "tw_test.h"

#define NREC 10
static char *recs[NREC];
static size_t lens[NREC];

static void load(void)
{
    if (recs[0])
        return;
    const char *root = getenv("TW_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/archive/records.jsonl", root && *root ? root : ".");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    for (int i = 0; i < NREC && (n = getline(&line, &cap, f)) > 0; i++) {
        while (n && line[n - 1] == '\n')
            n--;
        recs[i] = strndup(line, (size_t)n);
        lens[i] = (size_t)n;
    }
    free(line);
    fclose(f);
}

static int has(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

TW_TEST(extract_iam_user_run_instances)
{
    load();
    REQUIRE(recs[0]);
    tw__arch_fields f;
    tw_error err;
    REQUIRE(tw__arch_extract(recs[0], lens[0], &f, &err) == TW_OK);
    CHECK(strcmp(f.id, "86eac0ac-8521-4126-aa32-a22f2b74d02e") == 0);
    CHECK(strcmp(f.event_name, "RunInstances") == 0);
    CHECK(strcmp(f.event_source, "ec2.amazonaws.com") == 0);
    CHECK(strcmp(f.source, "aws.ec2") == 0);
    CHECK(strcmp(f.detail_type, "AWS API Call via CloudTrail") == 0);
    CHECK(strcmp(f.account, "123837392027") == 0);
    CHECK_EQ_INT(f.time_ms, 1688990121000LL);
    CHECK(strcmp(f.principal, "arn:aws:iam::123837392027:user/bert-jan") == 0);
    CHECK(strcmp(f.principal_type, "IAMUser") == 0);
    CHECK(has(f.identities, f.nidentities, "bert-jan"));
    CHECK(has(f.resources, f.nresources, "i-0dbc91f429e48eeed"));
    CHECK(has(f.resources, f.nresources, "ami-029eb80bc237bec6f"));
    CHECK(has(f.resources, f.nresources, "r-0ac0088de73525c3c"));
    CHECK(!has(f.resources, f.nresources, "123837392027")); /* ownerId is not a resource */
    CHECK(tw__arch_has_resource(&f, "i-0dbc91f429e48eeed"));
    CHECK(tw__arch_has_resource(&f, "arn:aws:ec2:us-east-1:123837392027:instance/i-0dbc91f429e48eeed"));
    CHECK(tw__arch_has_identity(&f, "arn:aws:iam::123837392027:user/bert-jan"));
    CHECK(tw__arch_mutating(&f));
    tw__arch_fields_free(&f);
}

TW_TEST(extract_security_group_and_bucket)
{
    load();
    REQUIRE(recs[7]);
    tw__arch_fields f;
    REQUIRE(tw__arch_extract(recs[1], lens[1], &f, NULL) == TW_OK);
    CHECK(has(f.resources, f.nresources, "sg-04cfb7a4712d75b00"));
    CHECK(has(f.resources, f.nresources, "sgr-0bb31cddb2c27f401"));
    CHECK(!has(f.resources, f.nresources, "0.0.0.0/0"));
    tw__arch_fields_free(&f);
    REQUIRE(tw__arch_extract(recs[7], lens[7], &f, NULL) == TW_OK);
    CHECK(has(f.resources, f.nresources, "stratus-red-team-ctlr-bucket-zqfsvooxqj"));
    CHECK(tw__arch_has_resource(&f, "arn:aws:s3:::stratus-red-team-ctlr-bucket-zqfsvooxqj"));
    tw__arch_fields_free(&f);
}

/* An S3 object's ARN names the object, not its bucket; the bucket's ARN (or BUCKET/) names the bucket. */
TW_TEST(s3_object_and_bucket)
{
    static const char put[] =
        "{\"eventVersion\":\"1.08\",\"eventID\":\"e1\",\"eventName\":\"PutObject\",\"eventSource\":\"s3.amazonaws.com\","
        "\"eventTime\":\"2026-12-01T10:00:00Z\",\"readOnly\":false,"
        "\"requestParameters\":{\"bucketName\":\"logs\",\"key\":\"a/b.gz\"},"
        "\"resources\":[{\"type\":\"AWS::S3::Object\",\"ARN\":\"arn:aws:s3:::logs/a/b.gz\"},"
        "{\"type\":\"AWS::S3::Bucket\",\"ARN\":\"arn:aws:s3:::logs\"}]}";
    static const char head[] =
        "{\"eventVersion\":\"1.08\",\"eventID\":\"e2\",\"eventName\":\"HeadBucket\",\"eventSource\":\"s3.amazonaws.com\","
        "\"eventTime\":\"2026-12-01T10:00:00Z\",\"requestParameters\":{\"bucketName\":\"logs\"},"
        "\"resources\":[{\"type\":\"AWS::S3::Bucket\",\"ARN\":\"arn:aws:s3:::logs/\"}]}";
    tw__arch_fields f;
    REQUIRE(tw__arch_extract(put, sizeof put - 1, &f, NULL) == TW_OK);
    CHECK(tw__arch_has_resource(&f, "arn:aws:s3:::logs/a/b.gz"));
    CHECK(!tw__arch_has_resource(&f, "arn:aws:s3:::logs/a/c.gz"));
    CHECK(!tw__arch_has_resource(&f, "arn:aws:s3:::other/a/b.gz"));
    CHECK(tw__arch_has_resource(&f, "arn:aws:s3:::logs"));
    CHECK(tw__arch_has_resource(&f, "logs"));
    tw__arch_fields_free(&f);
    REQUIRE(tw__arch_extract(head, sizeof head - 1, &f, NULL) == TW_OK);
    CHECK(!tw__arch_has_resource(&f, "arn:aws:s3:::logs/a/b.gz"));   /* it names the bucket only */
    CHECK(tw__arch_has_resource(&f, "arn:aws:s3:::logs"));
    CHECK(tw__arch_has_resource(&f, "arn:aws:s3:::logs/"));
    CHECK(!tw__arch_has_resource(&f, "arn:aws:s3:::log"));
    tw__arch_fields_free(&f);
}

TW_TEST(extract_principals)
{
    load();
    REQUIRE(recs[9]);
    tw__arch_fields f;
    /* assumed role: role ARN from sessionIssuer, session name from the ARN */
    REQUIRE(tw__arch_extract(recs[2], lens[2], &f, NULL) == TW_OK);
    CHECK(strcmp(f.principal_type, "AssumedRole") == 0);
    CHECK(strcmp(f.principal, "arn:aws:sts::342082656213:assumed-role/CloudTrailRoleForCloudWatchLogs/CloudTrail") == 0);
    CHECK(strcmp(f.role, "arn:aws:iam::342082656213:role/service-role/CloudTrailRoleForCloudWatchLogs") == 0);
    CHECK(strcmp(f.session, "CloudTrail") == 0);
    CHECK(strcmp(f.behind, "") == 0);
    CHECK(tw__arch_has_identity(&f, "CloudTrailRoleForCloudWatchLogs"));
    CHECK(has(f.resources, f.nresources, "aws-cloudtrail-logs-342082656213-238d380d"));
    tw__arch_fields_free(&f);
    /* root */
    REQUIRE(tw__arch_extract(recs[3], lens[3], &f, NULL) == TW_OK);
    CHECK(strcmp(f.principal_type, "Root") == 0);
    CHECK(strcmp(f.principal, "arn:aws:iam::342082656213:root") == 0);
    CHECK(tw__arch_has_identity(&f, "root"));
    CHECK(!tw__arch_mutating(&f)); /* ListFunctions: readOnly true */
    tw__arch_fields_free(&f);
    /* AWS service */
    REQUIRE(tw__arch_extract(recs[5], lens[5], &f, NULL) == TW_OK);
    CHECK(strcmp(f.principal_type, "AWSService") == 0);
    CHECK(strcmp(f.principal, "cloudtrail.amazonaws.com") == 0);
    CHECK(has(f.resources, f.nresources, "falsimentis-log"));
    tw__arch_fields_free(&f);
    /* federated user: the IAM user behind it is the issuer */
    REQUIRE(tw__arch_extract(recs[6], lens[6], &f, NULL) == TW_OK);
    CHECK(strcmp(f.principal_type, "FederatedUser") == 0);
    CHECK(strcmp(f.principal, "arn:aws:sts::742491224508:federated-user/stratus_red_team") == 0);
    CHECK(strcmp(f.role, "arn:aws:iam::742491224508:user/stratus-red-team-user-federation-user") == 0);
    CHECK(strcmp(f.session, "stratus_red_team") == 0);
    CHECK(tw__arch_has_identity(&f, "stratus-red-team-user-federation-user"));
    tw__arch_fields_free(&f);
    /* the identity behind a session: sourceIdentity first, onBehalfOf also searchable */
    REQUIRE(tw__arch_extract(recs[8], lens[8], &f, NULL) == TW_OK);
    CHECK(strcmp(f.behind, "alice@example.com") == 0);
    CHECK(tw__arch_has_identity(&f, "alice@example.com"));
    CHECK(tw__arch_has_identity(&f, "94482488-3041-7026-18f3-be45837cd0e4"));
    tw__arch_fields_free(&f);
    /* an EventBridge envelope: fields from the envelope and its detail, id = detail.eventID */
    REQUIRE(tw__arch_extract(recs[9], lens[9], &f, NULL) == TW_OK);
    CHECK(strcmp(f.id, "00000000-0000-4000-8000-0000000e0b01") == 0);
    CHECK(strcmp(f.source, "aws.ec2") == 0);
    CHECK(strcmp(f.event_name, "RunInstances") == 0);
    CHECK(has(f.resources, f.nresources, "i-0dbc91f429e48eeed"));
    CHECK_EQ_INT(f.time_ms, 1688990121000LL);
    tw__arch_fields_free(&f);
}

TW_TEST(extract_bad_input)
{
    tw__arch_fields f;
    tw_error err;
    CHECK(tw__arch_extract("[1,2]", 5, &f, &err) == TW_EEVENT);
    tw__arch_fields_free(&f);
    CHECK(tw__arch_extract("{\"a\":", 5, &f, &err) == TW_EJSON);
    tw__arch_fields_free(&f);
    CHECK(tw__arch_extract("{}", 2, &f, &err) == TW_OK);
    CHECK(strcmp(f.principal, "") == 0 && f.time_ms == 0);
    tw__arch_fields_free(&f);
}

TW_TEST(time_parse)
{
    CHECK_EQ_INT(tw__arch_parse_time("1970-01-01T00:00:00Z", 20), 0);
    CHECK_EQ_INT(tw__arch_parse_time("2021-07-28T12:00:00.250Z", 24), 1627473600250LL);
    CHECK_EQ_INT(tw__arch_parse_time("2021-07-28T14:00:00+02:00", 25), 1627473600000LL);
    CHECK_EQ_INT(tw__arch_parse_time("2021-07-28", 10), 1627430400000LL);
    CHECK_EQ_INT(tw__arch_parse_time("...", 3), -1);
    CHECK_EQ_INT(tw__arch_parse_time("2021-13-01T00:00:00Z", 20), -1);
}

TW_TEST(codec_round_trip)
{
    load();
    REQUIRE(recs[9]);
    tw__codec *c;
    tw_error err;
    REQUIRE(tw__codec_new(3, &c, &err) == TW_OK);
    /* a dictionary trained on many bodies (the fixtures repeated with a counter) */
    enum { N = 400 };
    char *bodies[N];
    size_t blens[N];
    for (int i = 0; i < N; i++) {
        blens[i] = (size_t)asprintf(&bodies[i], "{\"n\":%d,\"r\":%s}", i, recs[i % NREC]);
    }
    void *dict = NULL;
    size_t dict_len = 0;
    REQUIRE(tw__codec_train((const char *const *)bodies, blens, N, &dict, &dict_len, &err) == TW_OK);
    REQUIRE(tw__codec_load_dict(c, 1, dict, dict_len, &err) == TW_OK);
    for (uint32_t d = 0; d <= 1; d++) {
        tw_buf out = TW_BUF_INIT;
        size_t raw = 0;
        REQUIRE(tw__codec_pack(c, d, (const char *const *)bodies, blens, 100, &out, &raw, &err) == TW_OK);
        CHECK(out.len < raw / 4);
        tw__block b = {0};
        REQUIRE(tw__codec_unpack(c, d, out.data, out.len, &b, &err) == TW_OK);
        CHECK_EQ_INT(b.n, 100);
        for (uint32_t i = 0; i < 100; i++) {
            const char *body;
            size_t len;
            REQUIRE(tw__block_body(&b, i, &body, &len, &err) == TW_OK);
            CHECK(len == blens[i] && memcmp(body, bodies[i], len) == 0);
        }
        CHECK(tw__block_body(&b, 100, &(const char *){0}, &(size_t){0}, &err) == TW_ECORRUPT);
        /* damage: every truncation and a flipped byte are errors, never a crash */
        for (size_t cut = 0; cut < out.len; cut += 7)
            CHECK(tw__codec_unpack(c, d, out.data, cut, &b, &err) == TW_ECORRUPT);
        out.data[out.len / 2] ^= 0x55;
        tw__codec_unpack(c, d, out.data, out.len, &b, &err);
        tw__block_free(&b);
        tw__buf_free(&out);
    }
    tw_buf out = TW_BUF_INIT;
    size_t raw;
    tw__block b = {0};
    REQUIRE(tw__codec_pack(c, 1, (const char *const *)bodies, blens, 3, &out, &raw, &err) == TW_OK);
    CHECK(tw__codec_unpack(c, 0, out.data, out.len, &b, &err) == TW_ECORRUPT); /* wrong dictionary */
    CHECK(tw__codec_unpack(c, 2, out.data, out.len, &b, &err) == TW_ECORRUPT); /* unknown dictionary */
    tw__block_free(&b);
    tw__buf_free(&out);
    for (int i = 0; i < N; i++)
        free(bodies[i]);
    free(dict);
    tw__codec_free(c);
}

/* ---- the SQLite backend through the public API ---- */

static char dbpath[256];

static tw_archive *fresh(void)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/tw-archive-test-%d.db", (int)getpid());
    unlink(dbpath);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", dbpath);
    unlink(wal);
    tw_archive_opts o = {TW_ARCHIVE_SQLITE, dbpath, NULL, 0};
    tw_archive *a = NULL;
    tw_error err;
    if (tw_archive_open(&a, &o, &err))
        printf("# open: %s\n", err.msg);
    return a;
}

typedef struct got {
    int n;
    char ids[64][64];
    char names[64][64];
    char principals[64][128];
    int64_t times[64];
    int bytes_ok;
} got;

static int collect(void *ud, const tw_archive_row *r)
{
    got *g = ud;
    if (g->n < 64) {
        snprintf(g->ids[g->n], 64, "%s", r->id);
        snprintf(g->names[g->n], 64, "%s", r->event_name);
        snprintf(g->principals[g->n], 128, "%s", r->principal);
        g->times[g->n] = r->time_ms;
        for (int i = 0; i < NREC; i++)
            if (r->json_len == lens[i] && memcmp(r->json, recs[i], lens[i]) == 0)
                g->bytes_ok++;
    }
    g->n++;
    return 0;
}

TW_TEST(sqlite_add_find_dedup)
{
    load();
    REQUIRE(recs[9]);
    tw_archive *a = fresh();
    REQUIRE(a);
    tw_error err;
    for (int i = 0; i < NREC; i++)
        CHECK(tw_archive_add(a, recs[i], lens[i], 0, &err) == TW_OK);
    /* a duplicate within the queue */
    CHECK(tw_archive_add(a, recs[0], lens[0], 0, &err) == TW_EEXIST);
    CHECK(strstr(err.msg, "86eac0ac-8521-4126-aa32-a22f2b74d02e") != NULL);
    CHECK(tw_archive_flush(a, &err) == TW_OK);
    CHECK_EQ_INT(tw_archive_committed(a), NREC);
    /* and one already stored: dropped at commit, counted */
    CHECK(tw_archive_add(a, recs[4], lens[4], 0, &err) == TW_OK);
    CHECK(tw_archive_flush(a, &err) == TW_OK);
    CHECK_EQ_INT(tw_archive_committed(a), NREC);
    CHECK_EQ_INT(tw_archive_duplicates(a), 1);
    CHECK(tw_archive_add(a, "{\"eventVersion\":", 16, 0, &err) == TW_EJSON);

    got g = {0};
    tw_archive_query q = {0};
    REQUIRE(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_OK);
    CHECK_EQ_INT(g.n, NREC);
    CHECK_EQ_INT(g.bytes_ok, NREC); /* byte for byte */
    for (int i = 1; i < g.n && i < 64; i++)
        CHECK(g.times[i - 1] >= g.times[i]); /* newest first */

    memset(&g, 0, sizeof g);
    q.resource = "i-0dbc91f429e48eeed";
    REQUIRE(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 2); /* the record and the envelope */

    memset(&g, 0, sizeof g);
    q.resource = NULL;
    q.who = "bert-jan";
    REQUIRE(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 4);

    memset(&g, 0, sizeof g);
    q.who = "arn:aws:iam::342082656213:role/service-role/CloudTrailRoleForCloudWatchLogs";
    REQUIRE(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 2);

    memset(&g, 0, sizeof g);
    q.who = "alice@example.com";
    REQUIRE(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 1);

    /* pattern: cidr on the security group ingress fields */
    memset(&g, 0, sizeof g);
    q.who = NULL;
    q.pattern = "{\"detail\":{\"eventName\":[\"AuthorizeSecurityGroupIngress\"],"
                "\"requestParameters\":{\"ipPermissions\":{\"items\":{\"ipRanges\":{\"items\":{\"cidrIp\":"
                "[\"0.0.0.0/0\"]}}}}}}}";
    REQUIRE(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 1);
    CHECK(strcmp(g.ids[0], "7e96f0e7-4d78-423d-b3f5-391370685b30") == 0);

    memset(&g, 0, sizeof g);
    q.pattern = "{\"source\":[\"aws.ec2\"]}";
    REQUIRE(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 3);
    q.pattern = "{\"source\":[{\"bad\":1}]}";
    CHECK(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_EPATTERN);
    q.pattern = NULL;

    /* paging: limit 3, then the rest from the cursor, no row twice */
    char cur[TW_ARCHIVE_CURSOR_MAX];
    memset(&g, 0, sizeof g);
    q.limit = 3;
    REQUIRE(tw_archive_find(a, &q, collect, &g, cur, sizeof cur, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 3);
    CHECK(cur[0] != '\0');
    q.cursor = cur;
    q.limit = 0;
    REQUIRE(tw_archive_find(a, &q, collect, &g, cur, sizeof cur, &err) == TW_OK);
    CHECK_EQ_INT(g.n, NREC);
    for (int i = 0; i < g.n; i++)
        for (int j = 0; j < i; j++)
            CHECK(strcmp(g.ids[i], g.ids[j]) != 0);
    q.cursor = "zz";
    CHECK(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_EINVAL);

    /* time range */
    memset(&g, 0, sizeof g);
    tw_archive_query t = {0};
    REQUIRE(tw_archive_parse_time("2023-07-10T12:00:00Z", &t.from_ms, &err) == TW_OK);
    REQUIRE(tw_archive_find(a, &t, collect, &g, NULL, 0, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 3); /* CreateBucket 12:00:23, the sg 12:10:05, GetCallerIdentity 2024 */

    /* who: changes only, oldest first */
    memset(&g, 0, sizeof g);
    REQUIRE(tw_archive_who(a, "sg-04cfb7a4712d75b00", 0, 0, collect, &g, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 1);
    CHECK(strcmp(g.principals[0], "arn:aws:iam::123837392027:user/bert-jan") == 0);
    memset(&g, 0, sizeof g);
    REQUIRE(tw_archive_who(a, "falsimentis-log", 0, 0, collect, &g, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 0); /* GetBucketAcl reads */

    tw_archive_stats st;
    REQUIRE(tw_archive_stats_get(a, &st, &err) == TW_OK);
    CHECK_EQ_INT(st.events, NREC);
    CHECK(st.raw_bytes > st.stored_bytes && st.bytes_on_disk > 0);
    CHECK(st.first_ms == 1627473600000LL - 12 * 3600000LL + 55692000LL || st.first_ms > 0);

    uint64_t removed = 0;
    REQUIRE(tw_archive_prune(a, 1672531200000LL /* 2023-01-01 */, &removed, &err) == TW_OK);
    CHECK_EQ_INT(removed, 5);
    REQUIRE(tw_archive_stats_get(a, &st, &err) == TW_OK);
    CHECK_EQ_INT(st.events, NREC - 5);
    tw_archive_close(a);
    unlink(dbpath);
}

static int count_cb(void *ud, int64_t bucket, const char *group, uint64_t n)
{
    (void)bucket;
    (void)group;
    *(uint64_t *)ud += n;
    return 0;
}

TW_TEST(sqlite_many_and_dictionary)
{
    load();
    REQUIRE(recs[9]);
    tw_archive *a = fresh();
    REQUIRE(a);
    tw_error err;
    /* enough events for a dictionary and several blocks: the fixtures with fresh ids */
    char buf[8192];
    int added = 0;
    for (int i = 0; i < 3000; i++) {
        const char *r = recs[i % 8];
        const char *idp = strstr(r, "\"eventID\":\"");
        REQUIRE(idp);
        size_t pre = (size_t)(idp - r) + 11;
        int n = snprintf(buf, sizeof buf, "%.*s%08d-0000-4000-8000-000000000000%s", (int)pre, r, i, idp + 11 + 36);
        REQUIRE(n > 0 && (size_t)n < sizeof buf);
        if (tw_archive_add(a, buf, (size_t)n, 0, &err) == TW_OK)
            added++;
        else
            printf("# %s\n", err.msg);
    }
    CHECK_EQ_INT(added, 3000);
    REQUIRE(tw_archive_flush(a, &err) == TW_OK);
    tw_archive_stats st;
    REQUIRE(tw_archive_stats_get(a, &st, &err) == TW_OK);
    CHECK_EQ_INT(st.events, 3000);
    CHECK(st.dictionary);
    CHECK(st.ratio > 8);
    uint64_t total = 0;
    tw_archive_query q = {0};
    REQUIRE(tw_archive_counts(a, &q, 86400000, "event_name", count_cb, &total, &err) == TW_OK);
    CHECK_EQ_INT(total, 3000);
    CHECK(tw_archive_counts(a, &q, 86400000, "nope", count_cb, &total, &err) == TW_EINVAL);
    got g = {0};
    q.resource = "i-0dbc91f429e48eeed";
    q.limit = 5;
    REQUIRE(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 5);
    tw_archive_close(a);

    /* read-only while the file exists; a second writer sees the dictionary */
    tw_archive_opts o = {TW_ARCHIVE_SQLITE, dbpath, NULL, 1};
    REQUIRE(tw_archive_open(&a, &o, &err) == TW_OK);
    CHECK(tw_archive_add(a, recs[0], lens[0], 0, &err) == TW_EINVAL);
    memset(&g, 0, sizeof g);
    q.limit = 0;
    q.resource = NULL;
    q.event_name = "CreateBucket";
    REQUIRE(tw_archive_find(a, &q, collect, &g, NULL, 0, &err) == TW_OK);
    CHECK_EQ_INT(g.n, 375);
    tw_archive_close(a);
    unlink(dbpath);
}

TW_TEST(sqlite_damaged_file)
{
    tw_archive *a = fresh();
    REQUIRE(a);
    tw_archive_close(a);
    /* not an archive at all */
    int fd = open(dbpath, O_WRONLY | O_TRUNC);
    REQUIRE(fd >= 0);
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);
    tw_archive_opts o = {TW_ARCHIVE_SQLITE, dbpath, NULL, 0};
    tw_error err;
    CHECK(tw_archive_open(&a, &o, &err) == TW_ECORRUPT);
    CHECK(strstr(err.msg, dbpath) != NULL);
    o.readonly = 1;
    CHECK(tw_archive_open(&a, &o, &err) == TW_ECORRUPT);
    unlink(dbpath);
    /* missing, read-only */
    CHECK(tw_archive_open(&a, &o, &err) != TW_OK);
}

TW_TEST_MAIN()
