/* tests/unit/test_sources.c: gzip, base64 and the in-memory event reader; the Firehose endpoint and
 * POST /events handlers; the CloudTrail folder source - all against a fake engine (fake_engine.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/base64.h"
#include "common/budget.h"
#include "common/gunzip.h"
#include "config/config_int.h"
#include "fake_engine.h"
#include "telemetry/metrics.h"
#include "source/folder.h"
#include "source/http.h"
#include "trailwatch/event.h"
#include "tw_test.h"

/* ---- helpers ---- */

static char *gz(const void *data, size_t len, size_t *out_len)
{
    z_stream z = {0};
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, len) + 64;
    char *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(data, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

/* Fixtures: $TW_SOURCE_DIR (tests/run.py) or the current directory, + tests/fixtures/firehose/. */
static char *fixture(const char *name, size_t *len)
{
    const char *root = getenv("TW_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/firehose/%s", root && *root ? root : ".", name);
    return read_all(path, len);
}

static uint64_t counter(tw_metrics *m, const char *name, const char *labels)
{
    tw_counter *c = tw__metrics_counter(m, name, "test", labels);
    return c ? atomic_load(&c->value) : 0;
}

typedef struct env {
    tw_engine e;
    tw_metrics *m;
    tw_config cfg;
    tw_source_ctx ctx;
} env;

static void env_init(env *v, int validate)
{
    memset(v, 0, sizeof *v);
    fake_init(&v->e, validate);
    v->m = tw__metrics_new();
    tw_limits_default(&v->cfg.lim);
    v->ctx = (tw_source_ctx){&v->e, &v->cfg, v->m, NULL};
}

static void env_free(env *v)
{
    fake_free(&v->e);
    tw__metrics_free(v->m);
}

/* Calls a handler; headers are name, value pairs ending with NULL. */
static void call(tw_http_handler fn, env *v, const char *method, const char *body, size_t len, const char *const *hdr,
                 tw_http_resp *resp)
{
    tw_http_header h[16];
    size_t n = 0;
    for (; hdr && hdr[2 * n] && n < 16; n++)
        h[n] = (tw_http_header){hdr[2 * n], hdr[2 * n + 1]};
    tw_http_req req = {method, "/", NULL, h, n, body, len, 1, "127.0.0.1"};
    memset(resp, 0, sizeof *resp);
    tw__buf_init(&resp->body, 0);
    fn(&v->ctx, &req, resp);
}

static const char *body_of(const tw_http_resp *r) { return r->body.data ? r->body.data : ""; }

/* {"requestId":"<id>","timestamp":<ms now>} exactly, and the error variant's errorMessage. */
static int firehose_body_ok(const tw_http_resp *r, const char *id, const char *error_part)
{
    char prefix[512];
    snprintf(prefix, sizeof prefix, "{\"requestId\":\"%s\",\"timestamp\":", id);
    const char *b = body_of(r);
    if (strncmp(b, prefix, strlen(prefix)) != 0 || strcmp(r->content_type, "application/json") != 0)
        return 0;
    char *end;
    long long ts = strtoll(b + strlen(prefix), &end, 10);
    if (llabs(ts - (long long)time(NULL) * 1000) > 60000)
        return 0;
    for (uint32_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i][0], "Content-Encoding") == 0)
            return 0;
    if (!error_part)
        return strcmp(end, "}") == 0;
    return strncmp(end, ",\"errorMessage\":\"", 17) == 0 && strstr(end, error_part) && end[strlen(end) - 1] == '}';
}

static const char *json_str(const tw_json *v, const char *key)
{
    const tw_json *s = tw_json_get(v, key);
    return tw_json_typeof(s) == TW_JSON_STRING ? tw_json_string(s, NULL) : "";
}

/* The value of key (an "id" or "eventID") in a recorded item, copied into out. */
static const char *item_field(const fake_item *it, const char *key, char *out, size_t cap)
{
    tw_json_doc *doc = NULL;
    out[0] = '\0';
    if (tw_json_parse(it->json, it->len, NULL, &doc, NULL) == TW_OK)
        snprintf(out, cap, "%s", json_str(tw_json_root(doc), key));
    tw_json_doc_free(doc);
    return out;
}

#define FH_HEADERS(id) "X-Amz-Firehose-Protocol-Version", "1.0", "X-Amz-Firehose-Request-Id", id, \
                       "Content-Type", "application/json"

/* ---- gzip, base64, in-memory reader ---- */

static tw_status gunz(const void *in, size_t len, size_t max, tw_buf *out, tw_error *err)
{
    size_t held = 0;
    tw_status rc = tw__http_gunzip(NULL, in, len, max, out, &held, err);
    tw__gunzip_done(NULL, &held);
    return rc;
}

TW_TEST(gunzip_members_truncation_corruption_cap)
{
    const char *text = "{\"a\":1}\n";
    size_t n1;
    char *one = gz(text, strlen(text), &n1);
    char two[256];
    memcpy(two, one, n1);
    memcpy(two + n1, one, n1);
    tw_buf out = TW_BUF_INIT;
    tw_error err;
    REQUIRE(gunz(two, 2 * n1, 1000, &out, &err) == TW_OK);
    CHECK_EQ_STR(out.data, "{\"a\":1}\n{\"a\":1}\n");
    tw_buf_reset(&out);
    CHECK_EQ_INT(gunz(one, n1 - 4, 1000, &out, &err), TW_EGZIP);
    CHECK_CONTAINS(err.msg, "truncated");
    tw_buf_reset(&out);
    CHECK_EQ_INT(gunz(two, 2 * n1 - 1, 1000, &out, &err), TW_EGZIP);
    tw_buf_reset(&out);
    CHECK_EQ_INT(gunz(one, n1, 7, &out, &err), TW_ETOOBIG);
    tw_buf_reset(&out);
    CHECK_EQ_INT(gunz(one, n1, 8, &out, &err), TW_OK); /* exactly the cap */
    CHECK_EQ_INT(out.len, 8);
    tw_buf_reset(&out);
    CHECK_EQ_INT(gunz("", 0, 10, &out, &err), TW_EGZIP);
    two[n1] = 'x'; /* garbage after the first member */
    tw_buf_reset(&out);
    CHECK_EQ_INT(gunz(two, n1 + 4, 1000, &out, &err), TW_EGZIP);
    memcpy(two, one, n1);
    two[12] ^= 0x55; /* corrupt deflate data */
    tw_buf_reset(&out);
    CHECK_EQ_INT(gunz(two, n1, 1000, &out, &err), TW_EGZIP);
    tw__buf_free(&out);
    free(one);
}

/* Decompressed bytes are counted against one budget across requests: what one request holds is
 * refused to the next (TW_EBUSY), and all of it comes back when they are done (issue #10, defect 6). */
TW_TEST(gunzip_budget_across_requests)
{
    size_t big = 3u << 20, n;
    char *zeros = calloc(1, big);
    REQUIRE(zeros);
    char *bomb = gz(zeros, big, &n);
    tw__budget b = {0, 4u << 20};
    tw_source_ctx ctx = {NULL, NULL, NULL, &b};
    tw_buf one = TW_BUF_INIT, two = TW_BUF_INIT;
    size_t h1 = 0, h2 = 0;
    tw_error err;
    REQUIRE(tw__http_gunzip(&ctx, bomb, n, 0, &one, &h1, &err) == TW_OK);
    CHECK_EQ_INT(one.len, big);
    CHECK(h1 >= big && h1 <= b.cap);
    CHECK_EQ_INT(tw__http_gunzip(&ctx, bomb, n, 0, &two, &h2, &err), TW_EBUSY);
    CHECK_CONTAINS(err.msg, "budget");
    CHECK(b.used <= b.cap);
    tw__buf_free(&two);
    tw__gunzip_done(&ctx, &h2);
    tw__buf_free(&one);
    tw__gunzip_done(&ctx, &h1);
    CHECK_EQ_INT(b.used, 0);
    REQUIRE(tw__http_gunzip(&ctx, bomb, n, 0, &two, &h2, &err) == TW_OK); /* room again */
    tw__buf_free(&two);
    tw__gunzip_done(&ctx, &h2);
    CHECK_EQ_INT(b.used, 0);
    free(bomb);
    free(zeros);
}

TW_TEST(base64_strict)
{
    unsigned char out[16];
    CHECK_EQ_INT(tw__base64_decode("aGVsbG8gd29ybGQ=", 16, out), 11);
    CHECK(memcmp(out, "hello world", 11) == 0);
    CHECK_EQ_INT(tw__base64_decode("QQ==", 4, out), 1);
    CHECK_EQ_INT(tw__base64_decode("QUI=", 4, out), 2);
    CHECK_EQ_INT(tw__base64_decode("QUJD", 4, out), 3);
    CHECK_EQ_INT(tw__base64_decode("", 0, out), 0);
    CHECK_EQ_INT(tw__base64_decode("QR==", 4, out), (size_t)-1);   /* bits under the padding */
    CHECK_EQ_INT(tw__base64_decode("QQ", 2, out), (size_t)-1);     /* unpadded */
    CHECK_EQ_INT(tw__base64_decode("QQ==QUJD", 8, out), (size_t)-1); /* padding inside */
    CHECK_EQ_INT(tw__base64_decode("QU J", 4, out), (size_t)-1);
    CHECK_EQ_INT(tw__base64_decode("QUJ-", 4, out), (size_t)-1);   /* base64url is not accepted */
    CHECK_EQ_INT(tw__base64_decode("Q===", 4, out), (size_t)-1);
}

TW_TEST(reader_buffer_formats_and_lifetime)
{
    static const char *const inputs[] = {"{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}", "[{\"a\":1},{\"b\":2},\n{\"c\":3}]",
                                         "{\"Records\":[{\"a\":1},{\"b\":2},{\"c\":3}]}"};
    for (int gzipped = 0; gzipped < 2; gzipped++)
        for (size_t i = 0; i < 3; i++) {
            size_t len = strlen(inputs[i]);
            char *data = gzipped ? gz(inputs[i], len, &len) : strdup(inputs[i]);
            tw_event_reader *r;
            tw_error err;
            REQUIRE(tw_event_reader_buffer(data, len, NULL, &r, &err) == TW_OK);
            free(data); /* the reader has its own copy */
            const char *ev[4];
            size_t lens[4], n = 0;
            tw_event_where w;
            while (n < 4 && tw_event_reader_next(r, &ev[n], &lens[n], &w, &err) == TW_OK && ev[n])
                n++;
            CHECK_EQ_INT(n, 3);
            static const tw_event_format formats[] = {TW_FORMAT_LINES, TW_FORMAT_ARRAY, TW_FORMAT_RECORDS};
            CHECK_EQ_INT(w.format, formats[i]);
            /* Every event's text is still there after the end. */
            CHECK(n == 3 && lens[0] == 7 && memcmp(ev[0], "{\"a\":1}", 7) == 0 && memcmp(ev[2], "{\"c\":3}", 7) == 0);
            tw_event_reader_free(r);
        }
    size_t len;
    char *data = gz("{\"a\":1}\n", 8, &len);
    tw_event_reader *r = NULL;
    tw_error err;
    CHECK_EQ_INT(tw_event_reader_buffer(data, len - 3, NULL, &r, &err), TW_EGZIP);
    CHECK(r == NULL);
    tw_limits lim;
    tw_limits_default(&lim);
    lim.file_max = 4;
    CHECK_EQ_INT(tw_event_reader_buffer(data, len, &lim, &r, &err), TW_ETOOBIG);
    CHECK_EQ_INT(tw_event_reader_buffer("{\"a\":1}", 7, &lim, &r, &err), TW_ETOOBIG);
    free(data);
    REQUIRE(tw_event_reader_buffer("", 0, NULL, &r, &err) == TW_OK);
    const char *ev;
    size_t n;
    tw_event_where w;
    CHECK(tw_event_reader_next(r, &ev, &n, &w, &err) == TW_OK && ev == NULL);
    tw_event_reader_free(r);
}

static void put_file(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(data, 1, len, fp);
        fclose(fp);
    }
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *de; d && (de = readdir(d));)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* One reader for many files (the folder source): each file reads as if opened afresh, whatever the
 * one before was (gzip or not, a document or lines, broken), and a file read to its end is closed. */
TW_TEST(reader_reopen_reads_each_file_afresh)
{
    char dir[] = "/tmp/tw-reopen-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char p[4][64];
    for (int i = 0; i < 4; i++)
        snprintf(p[i], sizeof p[i], "%s/%d", dir, i);
    size_t len;
    const char *doc = "{\"Records\":[{\"a\":1},{\"b\":2}]}";
    char *z = gz(doc, strlen(doc), &len);
    put_file(p[0], z, len);
    put_file(p[1], "{\"c\":3}\n{\"d\":4}\n{\"e\":5}\n", 24);
    put_file(p[2], z, len - 4); /* truncated gzip */
    free(z);
    put_file(p[3], "[{\"f\":6}]", 9);
    static const size_t want[] = {2, 3, 2, 1};
    static const tw_event_format formats[] = {TW_FORMAT_RECORDS, TW_FORMAT_LINES, TW_FORMAT_RECORDS, TW_FORMAT_ARRAY};
    static const char *const first[] = {"{\"a\":1}", "{\"c\":3}", "{\"a\":1}", "{\"f\":6}"};
    int fds = open_fds();
    tw_event_reader *r = NULL;
    tw_error err;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 4; i++) {
            if (!r)
                REQUIRE(tw_event_reader_open(p[i], NULL, &r, &err) == TW_OK);
            else
                REQUIRE(tw_event_reader_reopen(r, p[i], &err) == TW_OK);
            const char *ev, *ev0 = NULL;
            size_t n = 0, l, l0 = 0;
            tw_event_where w = {0};
            tw_status rc;
            while ((rc = tw_event_reader_next(r, &ev, &l, &w, &err)) == TW_OK && ev) {
                if (!n++) {
                    ev0 = ev;
                    l0 = l;
                }
            }
            CHECK_EQ_INT(rc, i == 2 ? TW_EGZIP : TW_OK);
            CHECK_EQ_INT(n, want[i]);
            CHECK_EQ_INT(w.format, formats[i]);
            CHECK(ev0 && l0 == strlen(first[i]) && memcmp(ev0, first[i], l0) == 0);
            CHECK_EQ_INT(open_fds(), fds); /* read to its end (or its break): closed */
        }
    /* a path that cannot be opened leaves the reader as it was, ready for the next */
    CHECK_EQ_INT(tw_event_reader_reopen(r, "/nonexistent/tw-file", &err), TW_EIO);
    CHECK_CONTAINS(err.msg, "/nonexistent/tw-file");
    REQUIRE(tw_event_reader_reopen(r, p[1], &err) == TW_OK);
    const char *ev;
    size_t l;
    tw_event_where w;
    CHECK(tw_event_reader_next(r, &ev, &l, &w, &err) == TW_OK && ev && l == 7 && memcmp(ev, "{\"c\":3}", 7) == 0);
    tw_event_reader_free(r);
    CHECK_EQ_INT(open_fds(), fds); /* freed in the middle of a file: closed */
    REQUIRE(tw_event_reader_buffer("{}", 2, NULL, &r, &err) == TW_OK);
    CHECK_EQ_INT(tw_event_reader_reopen(r, p[0], &err), TW_EINVAL);
    tw_event_reader_free(r);
    for (int i = 0; i < 4; i++)
        unlink(p[i]);
    rmdir(dir);
}

/* ---- Firehose ---- */

static void check_fixture_request(const char *file, const char *headers_encoding)
{
    size_t len, elen;
    char *body = fixture(file, &len), *exp_text = fixture("expected.json", &elen);
    REQUIRE(body && exp_text);
    tw_json_doc *exp = NULL;
    REQUIRE(tw_json_parse(exp_text, elen, NULL, &exp, NULL) == TW_OK);
    int cwl = strncmp(file, "cwl", 3) == 0;
    const tw_json *x = tw_json_get(tw_json_root(exp), cwl ? "cwl" : "eventbridge");
    const char *id = json_str(x, "requestId");
    env v;
    env_init(&v, 1);
    const char *hdr[] = {FH_HEADERS(id), headers_encoding ? "Content-Encoding" : NULL, headers_encoding, NULL};
    tw_http_resp resp;
    call(tw__firehose_handle, &v, "POST", body, len, hdr, &resp);
    CHECK_EQ_INT(resp.status, 200);
    CHECK(firehose_body_ok(&resp, id, NULL));
    const tw_json *ids = tw_json_get(x, cwl ? "cloudtrail" : "ids");
    CHECK_EQ_INT(v.e.nitems, tw_json_number(tw_json_get(x, "submitted")));
    for (size_t i = 0; i < tw_json_size(ids) && i < v.e.nitems; i++) {
        char got[128];
        const fake_item *it = &v.e.items[i];
        const char *key = cwl || strstr(it->json, "\"eventVersion\"") == it->json + 1 ? "eventID" : "id";
        CHECK_EQ_STR(item_field(it, key, got, sizeof got), tw_json_string(tw_json_at(ids, i), NULL));
        CHECK_EQ_INT(it->kind, cwl ? TW_EVENT_CLOUDTRAIL : TW_EVENT_AUTO);
    }
    CHECK_EQ_STR(v.e.last_source, "firehose");
    CHECK_EQ_INT(counter(v.m, "trailwatch_events_rejected_total", "source=\"firehose\""),
                 tw_json_number(tw_json_get(x, "rejected")));
    CHECK_EQ_INT(counter(v.m, "trailwatch_firehose_records_total", ""), tw_json_number(tw_json_get(x, "records")));
    if (cwl)
        CHECK_EQ_INT(counter(v.m, "trailwatch_firehose_control_messages_total", ""), 1);
    CHECK_EQ_INT(counter(v.m, "trailwatch_firehose_requests_total", "code=\"200\""), 1);
    tw__buf_free(&resp.body);
    tw_json_doc_free(exp);
    env_free(&v);
    free(body);
    free(exp_text);
}

TW_TEST(firehose_cloudwatch_logs_records) { check_fixture_request("cwl-request.json", NULL); }
TW_TEST(firehose_cloudwatch_logs_gzip_body) { check_fixture_request("cwl-request.json.gz", "gzip"); }
TW_TEST(firehose_eventbridge_records) { check_fixture_request("eventbridge-request.json", NULL); }
TW_TEST(firehose_eventbridge_gzip_body) { check_fixture_request("eventbridge-request.json.gz", "GZIP"); }

/* The AWS doc's own sample request: the awslogs record is one CloudTrail record, "hello world" not. */
TW_TEST(firehose_aws_sample_request)
{
    const char *shared = tw_test_shared_dir();
    REQUIRE(shared);
    char path[1200];
    snprintf(path, sizeof path, "%s/reference/samples/firehose-http-request-body.json", shared);
    size_t len;
    char *body = read_all(path, &len);
    REQUIRE(body);
    env v;
    env_init(&v, 1);
    const char *id = "ed4acda5-034f-9f42-bba1-f29aea6d7d8f";
    const char *hdr[] = {FH_HEADERS(id), NULL};
    tw_http_resp resp;
    call(tw__firehose_handle, &v, "POST", body, len, hdr, &resp);
    CHECK_EQ_INT(resp.status, 200);
    CHECK(firehose_body_ok(&resp, id, NULL));
    REQUIRE(v.e.nitems == 1);
    char got[64];
    CHECK_EQ_STR(item_field(&v.e.items[0], "eventName", got, sizeof got), "CreateTable");
    CHECK_EQ_INT(counter(v.m, "trailwatch_events_rejected_total", "source=\"firehose\""), 1);
    tw__buf_free(&resp.body);
    env_free(&v);
    free(body);
}

/* A body of records from raw bytes (each base64'd here). */
static char *fh_body(const char *id, const char *const *records, size_t n, const size_t *lens)
{
    tw_buf b = TW_BUF_INIT;
    tw__buf_printf(&b, "{\"requestId\":\"%s\",\"timestamp\":1578090901599,\"records\":[", id);
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(records[i]);
        char *enc = malloc(len / 3 * 4 + 8);
        static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *s = (const unsigned char *)records[i];
        size_t o = 0, j = 0;
        for (; j + 3 <= len; j += 3) {
            uint32_t x = (uint32_t)s[j] << 16 | (uint32_t)s[j + 1] << 8 | s[j + 2];
            enc[o++] = al[x >> 18], enc[o++] = al[(x >> 12) & 63], enc[o++] = al[(x >> 6) & 63], enc[o++] = al[x & 63];
        }
        if (len - j == 1) {
            enc[o++] = al[s[j] >> 2], enc[o++] = al[(s[j] & 3) << 4], enc[o++] = '=', enc[o++] = '=';
        } else if (len - j == 2) {
            uint32_t x = (uint32_t)s[j] << 8 | s[j + 1];
            enc[o++] = al[x >> 10], enc[o++] = al[(x >> 4) & 63], enc[o++] = al[(x << 2) & 63], enc[o++] = '=';
        }
        tw__buf_printf(&b, "%s{\"data\":\"%.*s\"}", i ? "," : "", (int)o, enc);
        free(enc);
    }
    tw__buf_puts(&b, "]}");
    return tw__buf_detach(&b, NULL);
}

static int fh_status(env *v, const char *id, const char *body, size_t len, const char *const *extra, tw_http_resp *resp)
{
    const char *hdr[12] = {FH_HEADERS(id)};
    for (size_t i = 0; extra && extra[i]; i++)
        hdr[6 + i] = extra[i];
    call(tw__firehose_handle, v, "POST", body, len, hdr, resp);
    return resp->status;
}

TW_TEST(firehose_access_key)
{
    env v;
    env_init(&v, 1);
    char key[] = "s3cr3t-key-0123456789";
    v.cfg.src.firehose_key = key;
    const char *rec[] = {"{\"id\":\"1\",\"source\":\"x\"}"};
    char *body = fh_body("r1", rec, 1, NULL);
    tw_http_resp resp;
    const char *none[] = {NULL}, *wrong[] = {"X-Amz-Firehose-Access-Key", "s3cr3t-key-0123456780", NULL},
               *shorter[] = {"X-Amz-Firehose-Access-Key", "s3cr3t", NULL},
               *right[] = {"x-amz-firehose-access-key", "s3cr3t-key-0123456789", NULL};
    CHECK_EQ_INT(fh_status(&v, "r1", body, strlen(body), none, &resp), 401);
    CHECK(firehose_body_ok(&resp, "r1", "X-Amz-Firehose-Access-Key"));
    tw__buf_free(&resp.body);
    CHECK_EQ_INT(fh_status(&v, "r1", body, strlen(body), wrong, &resp), 401);
    tw__buf_free(&resp.body);
    CHECK_EQ_INT(fh_status(&v, "r1", body, strlen(body), shorter, &resp), 401);
    tw__buf_free(&resp.body);
    CHECK_EQ_INT(v.e.nitems, 0);
    CHECK_EQ_INT(fh_status(&v, "r1", body, strlen(body), right, &resp), 200);
    CHECK(firehose_body_ok(&resp, "r1", NULL));
    tw__buf_free(&resp.body);
    CHECK_EQ_INT(v.e.nitems, 1);
    CHECK_EQ_INT(counter(v.m, "trailwatch_firehose_requests_total", "code=\"401\""), 3);
    free(body);
    env_free(&v);
}

TW_TEST(firehose_malformed_requests)
{
    env v;
    env_init(&v, 1);
    const char *good = "{\"id\":\"1\"}";
    const char *rec[] = {good};
    char *body = fh_body("r1", rec, 1, NULL);
    tw_http_resp resp;
    /* requestId must equal the header */
    CHECK_EQ_INT(fh_status(&v, "r2", body, strlen(body), NULL, &resp), 400);
    CHECK(firehose_body_ok(&resp, "r2", "requestId"));
    tw__buf_free(&resp.body);
    /* headers */
    const char *hdr_noid[] = {"X-Amz-Firehose-Protocol-Version", "1.0", NULL};
    call(tw__firehose_handle, &v, "POST", body, strlen(body), hdr_noid, &resp);
    CHECK_EQ_INT(resp.status, 400);
    CHECK(firehose_body_ok(&resp, "", "X-Amz-Firehose-Request-Id"));
    tw__buf_free(&resp.body);
    const char *hdr_badid[] = {"X-Amz-Firehose-Protocol-Version", "1.0", "X-Amz-Firehose-Request-Id", "r\x01\"", NULL};
    call(tw__firehose_handle, &v, "POST", body, strlen(body), hdr_badid, &resp);
    CHECK_EQ_INT(resp.status, 400);
    CHECK(firehose_body_ok(&resp, "", "printable")); /* not echoed */
    tw__buf_free(&resp.body);
    const char *hdr_nover[] = {"X-Amz-Firehose-Request-Id", "r1", NULL};
    call(tw__firehose_handle, &v, "POST", body, strlen(body), hdr_nover, &resp);
    CHECK_EQ_INT(resp.status, 400);
    tw__buf_free(&resp.body);
    const char *hdr_v2[] = {"X-Amz-Firehose-Request-Id", "r1", "X-Amz-Firehose-Protocol-Version", "2.0", NULL};
    call(tw__firehose_handle, &v, "POST", body, strlen(body), hdr_v2, &resp);
    CHECK_EQ_INT(resp.status, 400);
    tw__buf_free(&resp.body);
    const char *hdr_ok[] = {FH_HEADERS("r1"), NULL};
    call(tw__firehose_handle, &v, "GET", "", 0, hdr_ok, &resp);
    CHECK_EQ_INT(resp.status, 405);
    CHECK(resp.nheaders == 1 && strcmp(resp.headers[0][0], "Allow") == 0);
    tw__buf_free(&resp.body);
    free(body);
    /* body: one bad base64 record fails the whole request before anything is submitted */
    static const char *const bad[] = {
        "{\"requestId\":\"r1\",\"timestamp\":1,\"records\":[{\"data\":\"eyJpZCI6IjEifQ==\"},{\"data\":\"e30\"}]}",
        "{\"requestId\":\"r1\",\"timestamp\":1,\"records\":[{\"data\":\"eyJpZCI6IjEifQ==\"},{\"data\":\"e3!=\"}]}",
        "{\"requestId\":\"r1\",\"timestamp\":1,\"records\":[{\"data\":\"eyJpZCI6IjEifQ==\"},{\"nodata\":1}]}",
        "{\"requestId\":\"r1\",\"timestamp\":1,\"records\":[]}",
        "{\"requestId\":\"r1\",\"records\":[{\"data\":\"e30=\"}]}",
        "{\"requestId\":\"r1\",\"timestamp\":1,\"records\":{}}",
        "{\"requestId\":\"r1\",\"timestamp\":1,\"records\":[{\"data\":\"e30=\"}]",
        "[]",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(fh_status(&v, "r1", bad[i], strlen(bad[i]), NULL, &resp), 400);
        CHECK(firehose_body_ok(&resp, "r1", ""));
        tw__buf_free(&resp.body);
    }
    CHECK_EQ_INT(v.e.nitems, 0);
    const char *br[] = {"Content-Encoding", "br", NULL}, *gzhdr[] = {"Content-Encoding", "gzip", NULL};
    CHECK_EQ_INT(fh_status(&v, "r1", "{}", 2, br, &resp), 400);
    tw__buf_free(&resp.body);
    CHECK_EQ_INT(fh_status(&v, "r1", "{}", 2, gzhdr, &resp), 400); /* says gzip, is not */
    tw__buf_free(&resp.body);
    env_free(&v);
}

TW_TEST(firehose_size_caps)
{
    env v;
    env_init(&v, 1);
    tw_http_resp resp;
    /* over 64 MiB as sent, and as gzip that expands past it: 413, which Firehose does not retry */
    size_t big = 64u * 1024u * 1024u + 1;
    char *huge = calloc(1, big);
    CHECK_EQ_INT(fh_status(&v, "r1", huge, big, NULL, &resp), 413);
    CHECK(firehose_body_ok(&resp, "r1", "larger"));
    tw__buf_free(&resp.body);
    size_t zlen;
    char *bomb = gz(huge, big, &zlen);
    const char *gzhdr[] = {"Content-Encoding", "gzip", NULL};
    CHECK_EQ_INT(fh_status(&v, "r1", bomb, zlen, gzhdr, &resp), 413);
    tw__buf_free(&resp.body);
    free(bomb);
    free(huge);
    /* a record over 1,024,000 decoded bytes */
    size_t n = 1024001;
    char *rec = malloc(n);
    memset(rec, ' ', n);
    const char *recs[] = {rec};
    char *body = fh_body("r1", recs, 1, &n);
    CHECK_EQ_INT(fh_status(&v, "r1", body, strlen(body), NULL, &resp), 400);
    tw__buf_free(&resp.body);
    free(body);
    /* 10001 records */
    const char **many = malloc(10001 * sizeof *many);
    for (size_t i = 0; i < 10001; i++)
        many[i] = "{}";
    body = fh_body("r1", many, 10001, NULL);
    CHECK_EQ_INT(fh_status(&v, "r1", body, strlen(body), NULL, &resp), 400);
    tw__buf_free(&resp.body);
    free(body);
    body = fh_body("r1", many, 10000, NULL);
    CHECK_EQ_INT(fh_status(&v, "r1", body, strlen(body), NULL, &resp), 200);
    tw__buf_free(&resp.body);
    CHECK_EQ_INT(v.e.nitems, 10000);
    CHECK(v.e.max_batch <= 1000);
    free(body);
    free(many);
    free(rec);
    env_free(&v);
}

/* One CWL message of 2500 log events goes in batches of at most 1000; a message over the event size
 * limit is rejected alone; the engine failing is a 500 (retried by Firehose). */
TW_TEST(firehose_batches_and_engine_failure)
{
    env v;
    env_init(&v, 1);
    tw_buf msg = TW_BUF_INIT;
    tw__buf_puts(&msg, "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"1\",\"logGroup\":\"g\",\"logStream\":\"s\","
                      "\"subscriptionFilters\":[\"f\"],\"logEvents\":[");
    for (int i = 0; i < 2500; i++)
        tw__buf_printf(&msg, "%s{\"id\":\"%d\",\"timestamp\":1,\"message\":\"{\\\"eventVersion\\\":\\\"1.08\\\","
                            "\\\"eventID\\\":\\\"e%d\\\"}\"}", i ? "," : "", i, i);
    tw__buf_printf(&msg, ",{\"id\":\"x\",\"timestamp\":1,\"message\":\"%0300000d\"}]}", 0);
    size_t zlen;
    char *z = gz(msg.data, msg.len, &zlen);
    const char *recs[] = {z};
    char *body = fh_body("r1", recs, 1, &zlen);
    tw_http_resp resp;
    CHECK_EQ_INT(fh_status(&v, "r1", body, strlen(body), NULL, &resp), 200);
    tw__buf_free(&resp.body);
    CHECK_EQ_INT(v.e.nitems, 2500);
    CHECK_EQ_INT(v.e.submits, 3);
    CHECK(v.e.max_batch == 1000);
    CHECK_EQ_INT(counter(v.m, "trailwatch_events_rejected_total", "source=\"firehose\""), 1);
    v.e.fail = 1;
    CHECK_EQ_INT(fh_status(&v, "r1", body, strlen(body), NULL, &resp), 500);
    CHECK(firehose_body_ok(&resp, "r1", "could not store"));
    tw__buf_free(&resp.body);
    free(body);
    free(z);
    tw__buf_free(&msg);
    env_free(&v);
}

/* ---- POST /events ---- */

static tw_http_resp ingest(env *v, const char *body, size_t len, const char *ctype, const char *encoding)
{
    const char *hdr[] = {"Content-Type", ctype, encoding ? "Content-Encoding" : NULL, encoding, NULL};
    tw_http_resp resp;
    call(tw__ingest_handle, v, "POST", body, len, ctype ? hdr : hdr + 2, &resp);
    return resp;
}

TW_TEST(ingest_json_lines_with_bad_lines)
{
    env v;
    env_init(&v, 1);
    const char *body = "{\"id\":\"1\"}\n\n{\"id\":\"2\",\"dup\":1}\n{\"id\":\"3\"\n[1]\n{\"id\":\"4\"}\r\n";
    tw_http_resp r = ingest(&v, body, strlen(body), "application/x-ndjson", NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.content_type, "application/json");
    CHECK_CONTAINS(body_of(&r), "{\"accepted\":3,\"duplicates\":1,\"rejected\":2,\"errors\":[{\"line\":4,\"index\":2,"
                                "\"message\":\"");
    CHECK_CONTAINS(body_of(&r), "{\"line\":5,\"index\":3,\"message\":\"an event must be a JSON object\"}]}");
    CHECK_EQ_INT(v.e.nitems, 5);
    CHECK_EQ_INT(v.e.items[0].kind, TW_EVENT_AUTO);
    CHECK_EQ_STR(v.e.last_source, "http");
    CHECK_EQ_INT(counter(v.m, "trailwatch_events_rejected_total", "source=\"http\""), 2);
    tw__buf_free(&r.body);
    env_free(&v);
}

TW_TEST(ingest_array_records_gzip)
{
    env v;
    env_init(&v, 1);
    const char *arr = "[{\"id\":\"a\"},\n {\"id\":\"b\"}, 7]";
    tw_http_resp r = ingest(&v, arr, strlen(arr), "application/json; charset=utf-8", NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(body_of(&r), "{\"accepted\":2,\"duplicates\":0,\"rejected\":1,\"errors\":[{\"line\":2,\"index\":2,"
                              "\"message\":\"an event must be a JSON object\"}]}");
    tw__buf_free(&r.body);
    /* a real CloudTrail log file, gzip recognised by its magic (no Content-Encoding) */
    const char *shared = tw_test_shared_dir();
    REQUIRE(shared);
    char path[1200];
    snprintf(path, sizeof path,
             "%s/reference/samples/123456789012_CloudTrail_us-east-1_20180112T1810Z_Mu0KsOhtH1ar15ZZ.json.gz", shared);
    size_t len;
    char *file = read_all(path, &len);
    REQUIRE(file);
    fake_reset_items(&v.e);
    r = ingest(&v, file, len, NULL, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK_CONTAINS(body_of(&r), "\"rejected\":0,\"errors\":[]}");
    CHECK(v.e.nitems > 0 && strstr(v.e.items[0].json, "\"eventSource\""));
    size_t n1 = v.e.nitems;
    tw__buf_free(&r.body);
    /* the same file gzip'd again with Content-Encoding: gzip (two levels) */
    size_t zlen;
    char *z = gz(file, len, &zlen);
    fake_reset_items(&v.e);
    r = ingest(&v, z, zlen, "application/octet-stream", "gzip");
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(v.e.nitems, n1);
    tw__buf_free(&r.body);
    free(z);
    free(file);
    env_free(&v);
}

TW_TEST(ingest_refusals)
{
    env v;
    env_init(&v, 1);
    tw_http_resp r = ingest(&v, "{}", 2, "application/x-www-form-urlencoded", NULL);
    CHECK_EQ_INT(r.status, 415);
    tw__buf_free(&r.body);
    r = ingest(&v, "{}", 2, "application/json", "br");
    CHECK_EQ_INT(r.status, 415);
    tw__buf_free(&r.body);
    r = ingest(&v, "{}", 2, "application/cloudevents+json", NULL);
    CHECK_EQ_INT(r.status, 200);
    tw__buf_free(&r.body);
    r = ingest(&v, " \n", 2, "text/plain", NULL);
    CHECK_EQ_INT(r.status, 400);
    CHECK_CONTAINS(body_of(&r), "{\"error\":\"empty body");
    tw__buf_free(&r.body);
    r = ingest(&v, "hello", 5, NULL, NULL);
    CHECK_EQ_INT(r.status, 400);
    CHECK_CONTAINS(body_of(&r), "not JSON");
    tw__buf_free(&r.body);
    size_t zlen;
    char *z = gz("{\"id\":1}\n", 9, &zlen);
    r = ingest(&v, z, zlen - 2, NULL, NULL);
    CHECK_EQ_INT(r.status, 400);
    CHECK_CONTAINS(body_of(&r), "truncated");
    tw__buf_free(&r.body);
    r = ingest(&v, "{}", 2, NULL, "gzip");
    CHECK_EQ_INT(r.status, 400);
    tw__buf_free(&r.body);
    CHECK_EQ_INT(v.e.nitems, 1);
    size_t big = 64u * 1024u * 1024u + 1;
    char *huge = calloc(1, big);
    r = ingest(&v, huge, big, NULL, NULL);
    CHECK_EQ_INT(r.status, 413);
    tw__buf_free(&r.body);
    char *bomb = gz(huge, big, &zlen);
    r = ingest(&v, bomb, zlen, NULL, NULL);
    CHECK_EQ_INT(r.status, 413);
    tw__buf_free(&r.body);
    free(bomb);
    free(huge);
    v.e.fail = 1;
    size_t glen;
    char *good = gz("{\"id\":1}\n", 9, &glen);
    r = ingest(&v, good, glen, NULL, NULL);
    CHECK_EQ_INT(r.status, 500);
    CHECK_EQ_STR(body_of(&r), "{\"error\":\"could not store the events: fake: disk full\",\"accepted\":0}");
    tw__buf_free(&r.body);
    tw_http_resp g;
    call(tw__ingest_handle, &v, "GET", "", 0, NULL, &g);
    CHECK_EQ_INT(g.status, 405);
    tw__buf_free(&g.body);
    free(good);
    free(z);
    env_free(&v);
}

TW_TEST(ingest_error_list_capped)
{
    env v;
    env_init(&v, 1);
    tw_buf b = TW_BUF_INIT;
    for (int i = 0; i < 150; i++)
        tw__buf_puts(&b, "{bad\n");
    for (int i = 0; i < 1500; i++)
        tw__buf_printf(&b, "{\"n\":%d}\n", i);
    tw_http_resp r = ingest(&v, b.data, b.len, "application/jsonl", NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK_CONTAINS(body_of(&r), "{\"accepted\":1500,\"duplicates\":0,\"rejected\":150,\"errors\":[{\"line\":1,");
    CHECK_CONTAINS(body_of(&r), "{\"line\":100,\"index\":99,");
    CHECK(!strstr(body_of(&r), "\"line\":101,"));
    CHECK(v.e.max_batch <= 1000);
    tw__buf_free(&r.body);
    tw__buf_free(&b);
    env_free(&v);
}


/* ---- the CloudTrail folder ---- */

#define WAIT_UNTIL(cond, ms)                                                                      \
    do {                                                                                          \
        for (int w_ = 0; w_ < (ms) / 10 && !(cond); w_++)                                         \
            usleep(10000);                                                                        \
    } while (0)

static int mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* The .json.gz files under dir, sorted (paths relative to base). */
static void list_logs(const char *base, const char *rel, char ***out, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    struct dirent **ents;
    int k = scandir(path, &ents, NULL, alphasort);
    for (int i = 0; i < k; i++) {
        char sub[1024];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", ents[i]->d_name);
        if (ents[i]->d_name[0] != '.') {
            if (ents[i]->d_type == DT_DIR)
                list_logs(base, sub, out, n);
            else if (strstr(sub, ".json.gz")) {
                *out = realloc(*out, (*n + 1) * sizeof **out);
                (*out)[(*n)++] = strdup(sub);
            }
        }
        free(ents[i]);
    }
    free(ents);
}

static size_t count_records(const char *path)
{
    tw_event_reader *r;
    size_t n = 0;
    if (tw_event_reader_open(path, NULL, &r, NULL))
        return 0;
    const char *json;
    size_t len;
    tw_event_where w;
    while (tw_event_reader_next(r, &json, &len, &w, NULL) == TW_OK && json)
        n++;
    tw_event_reader_free(r);
    return n;
}

static int copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = read_all(from, &len);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", to);
    *strrchr(dir, '/') = '\0';
    int rc = data && mkdirs(dir) == 0 ? write_all(to, data, len) : -1;
    free(data);
    return rc;
}

typedef struct tree {
    char root[256];               /* realpath of the temp folder */
    char **files;                 /* copied log files, absolute, in the order the folder takes them */
    size_t *records;
    size_t n, total;
} tree;

/* A temp copy of every 100th log file of the shared S3 layout (a few dozen, several regions and days),
 * plus what must be left alone: digests, dot files, other files, a JSON that is not a log file. */
static int make_tree(tree *t)
{
    memset(t, 0, sizeof *t);
    const char *shared = tw_test_shared_dir();
    if (!shared)
        return -1;
    char base[1100], tmpl[] = "/tmp/tw-folder-XXXXXX";
    snprintf(base, sizeof base, "%s/data/cloudtrail/s3-layout", shared);
    if (!mkdtemp(tmpl) || !realpath(tmpl, t->root))
        return -1;
    char **all = NULL;
    size_t nall = 0;
    list_logs(base, "", &all, &nall);
    for (size_t i = 0; i < nall; i++) {
        if (i % 100 == 0) {
            char from[2200], to[1400];
            snprintf(from, sizeof from, "%s/%s", base, all[i]);
            snprintf(to, sizeof to, "%s/%s", t->root, all[i]);
            if (copy_file(from, to) == 0) {
                t->files = realloc(t->files, (t->n + 1) * sizeof *t->files);
                t->records = realloc(t->records, (t->n + 1) * sizeof *t->records);
                t->files[t->n] = strdup(to);
                t->total += t->records[t->n++] = count_records(to);
            }
        }
        free(all[i]);
    }
    free(all);
    /* Digest files: in CloudTrail-Digest/, and one misplaced beside the logs (its name tells). */
    char p[1400], sample[1200];
    snprintf(sample, sizeof sample, "%s/reference/samples/cloudtrail-digest-file.json", shared);
    snprintf(p, sizeof p, "%s/AWSLogs/342082656213/CloudTrail-Digest/us-west-1/2021/07/29/"
                          "342082656213_CloudTrail-Digest_us-west-1_t_us-west-1_20210729T010203Z.json.gz", t->root);
    copy_file(sample, p);
    snprintf(p, sizeof p, "%s/AWSLogs/342082656213_CloudTrail-Digest_us-west-1_t_us-west-1_20210729T010204Z.json",
             t->root);
    copy_file(sample, p);
    snprintf(p, sizeof p, "%s/.partial.json.gz", t->root);
    copy_file(t->files[0], p);
    snprintf(p, sizeof p, "%s/readme.txt", t->root);
    write_all(p, "hello", 5);
    snprintf(p, sizeof p, "%s/zz-notes.json", t->root); /* sorts last: no Records */
    write_all(p, "{\"note\":\"not a log file\"}\n", 26);
    return t->n >= 30 ? 0 : -1;
}

static void free_tree(tree *t)
{
    if (t->root[0])
        rm_tree(t->root);
    for (size_t i = 0; i < t->n; i++)
        free(t->files[i]);
    free(t->files);
    free(t->records);
}

static int marked(tw_engine *e, const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 &&
           tw__engine_file_done(e, path, st.st_size, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
}

/* What was submitted when a count is off (which file went in twice, or in part). */
static void dump_marks(tw_engine *e, const char *root)
{
    pthread_mutex_lock(&e->lock);
    printf("#   %zu items, %zu marks:\n", e->nitems, e->nmarks);
    for (size_t i = 0; i < e->nmarks; i++)
        printf("#     commit %zu: %s (%lld bytes, items before %zu)\n", e->marks[i].commit,
               e->marks[i].path + strlen(root), (long long)e->marks[i].size, e->marks[i].items_before);
    pthread_mutex_unlock(&e->lock);
}

static uint64_t files_metric(tw_metrics *m, const char *result)
{
    char label[64];
    snprintf(label, sizeof label, "result=\"%s\"", result);
    return counter(m, "trailwatch_folder_files_total", label);
}

/* Each of files[0..n) is marked exactly once. The folder submits from several threads, so the check is
 * per thread: its marks come in file order, and each file's records (records[i]) are exactly the
 * items that thread submitted since its previous mark, so they precede the mark that came with its
 * last batch. Marks of other files must have no records (a rejected file). */
static void check_marks_per_thread(tw_engine *e, char *const *files, const size_t *records, size_t n)
{
    size_t last_file[FAKE_STREAMS], last_items[FAKE_STREAMS];
    int any[FAKE_STREAMS] = {0};
    memset(last_items, 0, sizeof last_items);
    size_t *seen = calloc(n ? n : 1, sizeof *seen);
    REQUIRE(seen);
    for (size_t m = 0; m < e->nmarks; m++) {
        const fake_mark *k = &e->marks[m];
        size_t i = 0;
        while (i < n && strcmp(files[i], k->path) != 0)
            i++;
        REQUIRE(k->stream < FAKE_STREAMS);
        if (i == n) {
            CHECK_EQ_INT(k->stream_before, last_items[k->stream]); /* no records of its own */
            continue;
        }
        seen[i]++;
        if (any[k->stream])
            CHECK(i > last_file[k->stream]);
        CHECK_EQ_INT(k->stream_before - last_items[k->stream], records[i]);
        any[k->stream] = 1;
        last_file[k->stream] = i;
        last_items[k->stream] = k->stream_before;
    }
    for (size_t i = 0; i < n; i++)
        if (seen[i] != 1) {
            CHECK_EQ_INT(seen[i], 1);
            printf("#   %s marked %zu times\n", files[i], seen[i]);
        }
    free(seen);
}

static const fake_mark *mark_of(const tw_engine *e, const char *path)
{
    for (size_t i = 0; i < e->nmarks; i++)
        if (strcmp(e->marks[i].path, path) == 0)
            return &e->marks[i];
    return NULL;
}

TW_TEST(folder_first_pass_then_done_files_skipped)
{
    tree t;
    REQUIRE(make_tree(&t) == 0);
    env v;
    env_init(&v, 1);
    tw_folder *f = NULL;
    tw_error err;
    REQUIRE(tw__folder_start(&v.e, v.m, t.root, 0, &f, &err) == TW_OK);
    WAIT_UNTIL(tw__folder_idle(f), 20000);
    CHECK(tw__folder_idle(f));
    tw__folder_stop(f);

    CHECK_EQ_INT(v.e.nitems, t.total);
    CHECK_EQ_INT(v.e.nmarks, t.n + 1); /* + zz-notes.json, rejected and marked */
    check_marks_per_thread(&v.e, t.files, t.records, t.n);
    for (size_t i = 0; i < t.n; i++)
        CHECK(marked(&v.e, t.files[i]));
    for (size_t i = 0; i < v.e.nitems; i++)
        CHECK(v.e.items[i].kind == TW_EVENT_CLOUDTRAIL);
    int notes = 0;
    for (size_t i = 0; i < v.e.nmarks; i++)
        notes += strstr(v.e.marks[i].path, "zz-notes.json") != NULL;
    CHECK_EQ_INT(notes, 1);
    for (size_t i = 0; i < v.e.nmarks; i++)
        CHECK(!strstr(v.e.marks[i].path, "Digest") && !strstr(v.e.marks[i].path, "partial"));
    CHECK_EQ_STR(v.e.last_source, "folder");
    CHECK_EQ_INT(files_metric(v.m, "processed"), t.n);
    CHECK_EQ_INT(files_metric(v.m, "rejected"), 1);
    CHECK_EQ_INT(counter(v.m, "trailwatch_folder_records_total", ""), t.total);

    /* A second start finds every file done. */
    size_t before = v.e.nitems, submits = v.e.submits;
    REQUIRE(tw__folder_start(&v.e, v.m, t.root, 0, &f, &err) == TW_OK);
    WAIT_UNTIL(tw__folder_idle(f), 20000);
    tw__folder_stop(f);
    CHECK_EQ_INT(v.e.nitems, before);
    CHECK_EQ_INT(v.e.submits, submits);
    CHECK_EQ_INT(files_metric(v.m, "already_done"), t.n + 1);

    CHECK_EQ_INT(tw__folder_start(&v.e, v.m, "/nonexistent/trail", 0, &f, &err), TW_ENOTFOUND);
    env_free(&v);
    free_tree(&t);
}

/* Many records: batches of at most 1000, and only the last one marks the file. */
TW_TEST(folder_big_file_marked_with_last_batch)
{
    char root[] = "/tmp/tw-folder-XXXXXX";
    REQUIRE(mkdtemp(root));
    tw_buf b = TW_BUF_INIT;
    tw__buf_puts(&b, "{\"Records\":[");
    for (int i = 0; i < 2500; i++)
        tw__buf_printf(&b, "%s{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\"eventID\":\"e%d\"}",
                      i ? "," : "", i);
    tw__buf_puts(&b, "]}");
    char path[300];
    snprintf(path, sizeof path, "%s/big.json", root);
    REQUIRE(write_all(path, b.data, b.len) == 0);
    env v;
    env_init(&v, 1);
    tw_folder *f = NULL;
    REQUIRE(tw__folder_start(&v.e, v.m, root, 0, &f, NULL) == TW_OK);
    WAIT_UNTIL(tw__folder_idle(f), 10000);
    tw__folder_stop(f);
    CHECK_EQ_INT(v.e.nitems, 2500);
    CHECK_EQ_INT(v.e.submits, 3);
    CHECK(v.e.max_batch == 1000);
    CHECK(v.e.nmarks == 1 && v.e.marks[0].items_before == 2500);
    /* The engine failing: nothing is marked, and the file is counted as failed (retried later). */
    fake_free(&v.e);
    fake_init(&v.e, 1);
    v.e.fail = 1;
    REQUIRE(tw__folder_start(&v.e, v.m, root, 0, &f, NULL) == TW_OK);
    WAIT_UNTIL(tw__folder_idle(f), 10000);
    tw__folder_stop(f);
    CHECK_EQ_INT(v.e.nmarks, 0);
    CHECK_EQ_INT(files_metric(v.m, "failed"), 1);
    env_free(&v);
    tw__buf_free(&b);
    rm_tree(root);
}

/* Small files are committed many at a time (one commit marks them all, in the transaction of their
 * records), each file whole, in order; a restart finds every one of them done. A commit per file,
 * each waited for, made a folder of small files slow on a busy machine. */
TW_TEST(folder_small_files_share_commits)
{
    char root[] = "/tmp/tw-folder-XXXXXX";
    REQUIRE(mkdtemp(root));
    enum { NFILES = 600, PER_FILE = 3 };
    char path[300];
    for (int i = 0; i < NFILES; i++) {
        char text[600];
        int n = snprintf(text, sizeof text, "{\"Records\":[");
        for (int k = 0; k < PER_FILE; k++)
            n += snprintf(text + n, sizeof text - (size_t)n,
                          "%s{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\"eventID\":\"f%d-%d\"}",
                          k ? "," : "", i, k);
        n += snprintf(text + n, sizeof text - (size_t)n, "]}");
        snprintf(path, sizeof path, "%s/f%04d.json", root, i);
        REQUIRE(write_all(path, text, (size_t)n) == 0);
    }
    env v;
    env_init(&v, 1);
    tw_folder *f = NULL;
    REQUIRE(tw__folder_start(&v.e, v.m, root, 1, &f, NULL) == TW_OK);
    WAIT_UNTIL(tw__folder_idle(f), 20000);
    CHECK_EQ_INT(v.e.nitems, NFILES * PER_FILE);
    REQUIRE(v.e.nmarks == NFILES);
    CHECK(v.e.submits <= 4); /* 600 files, 256 per commit at most: 3 commits, not 600 */
    char *files[NFILES];
    size_t records[NFILES];
    for (size_t i = 0; i < NFILES; i++) {
        snprintf(path, sizeof path, "%s/f%04zu.json", root, i);
        REQUIRE((files[i] = strdup(path)));
        records[i] = PER_FILE;
        CHECK(marked(&v.e, path));
    }
    check_marks_per_thread(&v.e, files, records, NFILES);
    const fake_mark *m0 = mark_of(&v.e, files[0]), *m100 = mark_of(&v.e, files[100]);
    CHECK(m0 && m100 && m0->commit == m100->commit);
    for (size_t i = 0; i < NFILES; i++)
        free(files[i]);
    CHECK_EQ_INT(files_metric(v.m, "processed"), NFILES);
    CHECK_EQ_INT(counter(v.m, "trailwatch_folder_records_total", ""), NFILES * PER_FILE);
    /* one more file while watching: committed before the source is idle again */
    snprintf(path, sizeof path, "%s/g.json", root);
    REQUIRE(write_all(path, "{\"Records\":[]}", 14) == 0);
    WAIT_UNTIL(marked(&v.e, path) && tw__folder_idle(f), 10000);
    CHECK(marked(&v.e, path));
    tw__folder_stop(f);

    size_t submits = v.e.submits;
    REQUIRE(tw__folder_start(&v.e, v.m, root, 0, &f, NULL) == TW_OK);
    WAIT_UNTIL(tw__folder_idle(f), 20000);
    tw__folder_stop(f);
    CHECK_EQ_INT(v.e.submits, submits);
    CHECK_EQ_INT(files_metric(v.m, "already_done"), NFILES + 1);

    /* The engine failing: none of the files is marked, each is counted as failed (retried later). */
    fake_free(&v.e);
    fake_init(&v.e, 1);
    v.e.fail = 1;
    REQUIRE(tw__folder_start(&v.e, v.m, root, 0, &f, NULL) == TW_OK);
    WAIT_UNTIL(tw__folder_idle(f), 20000);
    tw__folder_stop(f);
    CHECK_EQ_INT(v.e.nmarks, 0);
    CHECK_EQ_INT(files_metric(v.m, "failed"), NFILES + 1);
    env_free(&v);
    rm_tree(root);
}

/* Descriptors of this process open on a file under dir (the folder's reader must not keep one). */
static int fds_under(const char *dir)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *de; d && (de = readdir(d));) {
        char link[300], target[1024];
        snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
        ssize_t k = readlink(link, target, sizeof target - 1);
        if (k > 0) {
            target[k] = '\0';
            n += strncmp(target, dir, strlen(dir)) == 0 && target[strlen(dir)] == '/';
        }
    }
    if (d)
        closedir(d);
    return n;
}

TW_TEST(folder_watch_new_files_and_truncated_gzip)
{
    tree t;
    REQUIRE(make_tree(&t) == 0);
    env v;
    env_init(&v, 1);
    tw_folder *f = NULL;
    REQUIRE(tw__folder_start(&v.e, v.m, t.root, 1, &f, NULL) == TW_OK);
    WAIT_UNTIL(tw__folder_idle(f), 20000);
    REQUIRE(fake_count(&v.e) == t.total);
    size_t len;
    char *data = read_all(t.files[0], &len);
    REQUIRE(data);
    size_t expect = t.total;

    /* Written in place (IN_CLOSE_WRITE) into a watched directory. */
    char p1[400];
    snprintf(p1, sizeof p1, "%s/AWSLogs/new-1.json.gz", t.root);
    REQUIRE(write_all(p1, data, len) == 0);
    expect += t.records[0];
    WAIT_UNTIL(fake_count(&v.e) == expect && marked(&v.e, p1), 10000);
    CHECK(marked(&v.e, p1));

    /* A new directory tree with a file written at once: found by walking the new directory. */
    char d2[400], p2[500];
    snprintf(d2, sizeof d2, "%s/AWSLogs/999999999999/CloudTrail/eu-north-1/2026/11/28", t.root);
    REQUIRE(mkdirs(d2) == 0);
    snprintf(p2, sizeof p2, "%s/999999999999_CloudTrail_eu-north-1_20261128T1000Z_x.json.gz", d2);
    REQUIRE(write_all(p2, data, len) == 0);
    expect += t.records[0];
    WAIT_UNTIL(fake_count(&v.e) == expect && marked(&v.e, p2), 10000);
    CHECK(marked(&v.e, p2));

    /* Renamed into place (IN_MOVED_TO), the way sync tools finish a download. */
    char tmp[400], p3[500];
    snprintf(tmp, sizeof tmp, "%s/AWSLogs/.download.tmp", t.root);
    snprintf(p3, sizeof p3, "%s/new-3.json.gz", d2);
    REQUIRE(write_all(tmp, data, len) == 0);
    REQUIRE(rename(tmp, p3) == 0);
    expect += t.records[0];
    WAIT_UNTIL(fake_count(&v.e) == expect && marked(&v.e, p3), 10000);
    CHECK(marked(&v.e, p3));
    WAIT_UNTIL(tw__folder_idle(f), 10000);
    CHECK_EQ_INT(fds_under(t.root), 0); /* the reader is kept for the next file, its file is closed */

    /* A truncated .json.gz: nothing submitted, not marked; completed later, it is processed. */
    char p4[500];
    snprintf(p4, sizeof p4, "%s/trunc.json.gz", d2);
    REQUIRE(write_all(p4, data, len / 2) == 0);
    WAIT_UNTIL(files_metric(v.m, "failed") == 1, 10000);
    CHECK_EQ_INT(files_metric(v.m, "failed"), 1);
    CHECK(!marked(&v.e, p4));
    CHECK_EQ_INT(fake_count(&v.e), expect);
    WAIT_UNTIL(tw__folder_idle(f), 10000);
    CHECK_EQ_INT(fds_under(t.root), 0); /* one reader serves every file; none stays open */
    if (fake_count(&v.e) != expect)
        dump_marks(&v.e, t.root);
    tw_counter *failing = tw__metrics_gauge(v.m, "trailwatch_folder_files_failing", "test", "");
    CHECK(failing && atomic_load(&failing->value) == 1);
    REQUIRE(write_all(p4, data, len) == 0);
    expect += t.records[0];
    /* the gauge is set just after the file is marked: wait for both */
    WAIT_UNTIL(fake_count(&v.e) == expect && marked(&v.e, p4) && failing && atomic_load(&failing->value) == 0,
               10000);
    CHECK(marked(&v.e, p4));
    CHECK(failing && atomic_load(&failing->value) == 0);
    CHECK_EQ_INT(fake_count(&v.e), expect);

    tw__folder_stop(f);
    free(data);
    env_free(&v);
    free_tree(&t);
}

/* The whole shared S3 layout (3,872 files, 30,477 records) through the folder source: the source's own
 * cost per file must leave the engine most of the 10 s budget. */
TW_TEST(folder_whole_shared_layout)
{
    const char *shared = tw_test_shared_dir();
    REQUIRE(shared);
    char base[1100];
    snprintf(base, sizeof base, "%s/data/cloudtrail/s3-layout", shared);
    env v;
    env_init(&v, 0);
    v.e.keep_text = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tw_folder *f = NULL;
    REQUIRE(tw__folder_start(&v.e, v.m, base, 0, &f, NULL) == TW_OK);
    WAIT_UNTIL(tw__folder_idle(f), 120000);
    tw__folder_stop(f);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("# whole s3-layout: %zu records, %zu files in %.2f s\n", v.e.nitems, v.e.nmarks, s);
    CHECK_EQ_INT(v.e.nitems, 30477);
    CHECK_EQ_INT(v.e.nmarks, 3872);
    /* Speed is the benchmark's business (bench/run --serve); here only completeness counts. */
    env_free(&v);
}

TW_TEST_MAIN()
