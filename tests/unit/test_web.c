/* tests/unit/test_web.c: the dashboard's live ring (backlog, resume, gaps, large frames, close), rule
 * statistics and query parameters, without a server. */
#include <string.h>

#include "outbox/store.h"
#include "tw_test.h"
#include "web/web_int.h"

static tw_rule_cfg rules[2];
static tw_config cfg;

static void setup(void)
{
    memset(&cfg, 0, sizeof cfg);
    memset(rules, 0, sizeof rules);
    rules[0].name = (char *)"r0";
    rules[0].severity = (char *)"high";
    rules[1].name = (char *)"r1";
    rules[1].severity = (char *)"low";
    cfg.rules = rules;
    cfg.nrules = 2;
    tw_limits_default(&cfg.lim);
}

static void publish(tw__live *l, int n)
{
    static const uint32_t both[] = {0, 1};
    for (int i = 0; i < n; i++) {
        char ev[128];
        int len = snprintf(ev, sizeof ev, "{\"id\":\"e%d\",\n\"source\":\"s\",\"detail\":{}}", i);
        tw__live_publish(l, &cfg, ev, (size_t)len, both, 2, 1000 + i);
    }
}

/* Opens a stream with this query string and Last-Event-ID header (either may be NULL). */
static tw_http_resp open_stream(tw__live *l, const char *query, const char *last)
{
    tw_http_header h[1] = {{"Last-Event-ID", last}};
    tw_http_req req = {"GET", "/api/stream", query, h, last ? 1 : 0, "", 0, 1, "127.0.0.1"};
    tw_http_resp resp;
    memset(&resp, 0, sizeof resp);
    tw__live_stream(l, &req, &resp);
    return resp;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

TW_TEST(backlog_then_resume_after_last_id)
{
    setup();
    tw__live *l = NULL;
    REQUIRE(tw__live_new(&l) == TW_OK);
    publish(l, 5);
    tw_http_resp r = open_stream(l, "backlog=2", NULL);
    REQUIRE(r.stream.read != NULL);
    char buf[65536];
    long n = r.stream.read(r.stream.ctx, buf, sizeof buf - 1, 1);
    REQUIRE(n > 0);
    buf[n] = '\0';
    CHECK(strstr(buf, "event: hello") != NULL);
    CHECK(count(buf, "event: alert") == 2);
    CHECK(strstr(buf, "\"id\":\"e3\"") && strstr(buf, "\"id\":\"e4\"") && !strstr(buf, "\"id\":\"e2\""));
    CHECK(strstr(buf, "{\"name\":\"r0\",\"severity\":\"high\"},{\"name\":\"r1\",\"severity\":\"low\"}") != NULL);
    CHECK(count(buf, "\ndata: ") == 3 && !strstr(buf, "\n\"source\"")); /* one data: line per alert */
    /* The id of the 4th alert: a reconnect with it gets only the 5th. */
    char *id4 = strstr(buf, "id: ");
    REQUIRE(id4);
    char last[64];
    size_t il = strcspn(id4 + 4, "\n");
    memcpy(last, id4 + 4, il);
    last[il] = '\0';
    r.stream.release(r.stream.ctx);
    tw_http_resp r2 = open_stream(l, NULL, last);
    n = r2.stream.read(r2.stream.ctx, buf, sizeof buf - 1, 1);
    buf[n] = '\0';
    CHECK(count(buf, "event: alert") == 1 && strstr(buf, "\"id\":\"e4\""));
    publish(l, 1);                 /* arrives while the stream waits: no 15 s ping wait */
    n = r2.stream.read(r2.stream.ctx, buf, sizeof buf - 1, 1);
    buf[n] = '\0';
    CHECK(count(buf, "event: alert") == 1 && strstr(buf, "\"id\":\"e0\""));
    tw__live_close(l);
    CHECK(r2.stream.read(r2.stream.ctx, buf, sizeof buf, 1) == TW_HTTP_STREAM_END);
    r2.stream.release(r2.stream.ctx);
    tw__live_free(l);
}

TW_TEST(a_stream_that_fell_behind_the_ring_gets_a_gap)
{
    setup();
    tw__live *l = NULL;
    REQUIRE(tw__live_new(&l) == TW_OK);
    publish(l, 1);
    tw_http_resp r = open_stream(l, "backlog=1", NULL);
    char *buf = malloc(1 << 20);
    REQUIRE(buf);
    long n = r.stream.read(r.stream.ctx, buf, 1 << 20, 1);
    REQUIRE(n > 0);
    publish(l, TW_WEB_LIVE_RING + 10);
    n = r.stream.read(r.stream.ctx, buf, (1 << 20) - 1, 1);
    REQUIRE(n > 0);
    buf[n] = '\0';
    CHECK(strncmp(buf, "event: gap\ndata: {\"missed\":10}", 30) == 0);
    r.stream.release(r.stream.ctx);
    free(buf);
    tw__live_free(l);
}

TW_TEST(a_frame_larger_than_the_read_buffer_arrives_whole_in_parts)
{
    setup();
    tw__live *l = NULL;
    REQUIRE(tw__live_new(&l) == TW_OK);
    tw_http_resp r = open_stream(l, NULL, NULL);
    char buf[4096];
    long n = r.stream.read(r.stream.ctx, buf, sizeof buf, 1);   /* hello */
    REQUIRE(n > 0);
    char ev[3000];
    memset(ev, 'x', sizeof ev);
    memcpy(ev, "{\"a\":\"", 6);
    memcpy(ev + sizeof ev - 2, "\"}", 2);
    static const uint32_t one[] = {0};
    tw__live_publish(l, &cfg, ev, sizeof ev, one, 1, 5);
    char all[8192];
    size_t got = 0;
    while (got < 3000 || memcmp(all + got - 2, "\n\n", 2) != 0) {
        n = r.stream.read(r.stream.ctx, all + got, 700, 1);
        REQUIRE(n > 0 && n <= 700);
        got += (size_t)n;
    }
    all[got] = '\0';
    CHECK(strstr(all, "\"event\":{\"a\":\"xxxx") != NULL);
    CHECK(count(all, "event: alert") == 1);
    r.stream.release(r.stream.ctx);
    tw__live_free(l);
}

static int woken;
static void wake(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&woken, 1, __ATOMIC_SEQ_CST);
}

TW_TEST(an_event_loop_parks_the_stream_and_is_woken)
{
    setup();
    tw__live *l = NULL;
    REQUIRE(tw__live_new(&l) == TW_OK);
    tw_http_resp r = open_stream(l, NULL, NULL);
    r.stream.set_waker(r.stream.ctx, wake, NULL);
    char buf[65536];
    long n = r.stream.read(r.stream.ctx, buf, sizeof buf, 0); /* hello */
    CHECK(n > 0);
    CHECK(r.stream.read(r.stream.ctx, buf, sizeof buf, 0) == TW_HTTP_STREAM_WAIT);
    CHECK(woken == 0);
    publish(l, 1);
    CHECK(woken == 1);
    n = r.stream.read(r.stream.ctx, buf, sizeof buf - 1, 0);
    REQUIRE(n > 0);
    buf[n] = '\0';
    CHECK(count(buf, "event: alert") == 1);
    CHECK(r.stream.read(r.stream.ctx, buf, sizeof buf, 0) == TW_HTTP_STREAM_WAIT);
    tw__live_close(l);             /* the end wakes it too */
    CHECK(woken == 2);
    CHECK(r.stream.read(r.stream.ctx, buf, sizeof buf, 0) == TW_HTTP_STREAM_END);
    r.stream.release(r.stream.ctx);
    tw__live_free(l);
}

TW_TEST(rule_stats_count_per_minute)
{
    tw__rule_stats *rs = NULL;
    REQUIRE(tw__rule_stats_new(&rs) == TW_OK);
    for (int i = 0; i < 200; i++) { /* many names: the table grows */
        char name[24];
        snprintf(name, sizeof name, "rule-%d", i);
        tw__rule_stats_hit(rs, name, 60000LL * 1000 + i);
    }
    tw__rule_stats_hit(rs, "rule-7", 60000LL * 1001);
    tw__rule_stats_free(rs);
}

TW_TEST(query_parameters_are_decoded)
{
    tw_http_req req = {"GET", "/", "a=1&target=my%20hook&x=a+b&empty=&flag&bad=%zz", NULL, 0, "", 0, 1, ""};
    char buf[32];
    CHECK(strcmp(tw__web_query(&req, "target", buf, sizeof buf), "my hook") == 0);
    CHECK(strcmp(tw__web_query(&req, "x", buf, sizeof buf), "a b") == 0);
    CHECK(strcmp(tw__web_query(&req, "empty", buf, sizeof buf), "") == 0);
    CHECK(strcmp(tw__web_query(&req, "flag", buf, sizeof buf), "") == 0);
    CHECK(strcmp(tw__web_query(&req, "bad", buf, sizeof buf), "%zz") == 0);
    CHECK(tw__web_query(&req, "tar", buf, sizeof buf) == NULL);
    char tiny[4];
    CHECK(strcmp(tw__web_query(&req, "target", tiny, sizeof tiny), "my ") == 0);
}

TW_TEST_MAIN()
