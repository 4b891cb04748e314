/* Unit tests: the engine with a real outbox on disk: alerts per (rule, target), metric handles
 * per rule, storm windows closed by the engine with their summary. */
#include "engine_rig.h"
#include "tw_test.h"

static tw_status submit(rig *r, const char *json, tw_ingest_result *res)
{
    tw_ingest_item it = {json, strlen(json), TW_EVENT_AUTO};
    tw_ingest_opts o = {.source = "http"};
    tw_error err;
    return tw__engine_submit(r->engine, &it, 1, &o, res, &err);
}

/* The value of one series in the Prometheus text, -1 when absent. */
static long long metric(rig *r, const char *series)
{
    tw_buf b = TW_BUF_INIT;
    long long v = -1;
    if (tw__metrics_render(r->metrics, &b) == TW_OK && b.data) {
        const char *p = strstr(b.data, series);
        if (p && p[strlen(series)] == ' ')
            v = atoll(p + strlen(series) + 1);
    }
    tw__buf_free(&b);
    return v;
}

static const char *CONFIG = "server: {listen: false}\n"
                            "targets:\n"
                            "  hook: {kind: webhook, url: 'http://127.0.0.1:9/x'}\n"
                            "  chat: {kind: slack, url: 'http://127.0.0.1:9/s'}\n"
                            "rules:\n"
                            "  - name: ssm\n"
                            "    pattern: {source: [aws.ssm]}\n"
                            "    targets: [hook, chat]\n"
                            "  - name: any\n"
                            "    pattern: {detail-type: [{exists: true}]}\n"
                            "    targets: [hook]\n"
                            "  - name: noisy\n"
                            "    pattern: {source: [noisy]}\n"
                            "    targets: [hook]\n"
                            "    storm: {keys: [$.detail.name], window: 1h}\n";

static const char *EVENT = "{\"version\":\"0\",\"id\":\"e1\",\"detail-type\":\"Parameter Store Change\","
                           "\"source\":\"aws.ssm\",\"account\":\"123456789012\",\"time\":\"2024-01-01T00:00:00Z\","
                           "\"region\":\"us-east-1\",\"resources\":[],\"detail\":{\"name\":\"/a\"}}";

TW_TEST(one_alert_per_matched_rule_and_target_and_counters_per_rule)
{
    rig r;
    REQUIRE(rig_start(&r, CONFIG) == 0);
    tw_ingest_result res;
    for (int i = 0; i < 3; i++) {
        REQUIRE(submit(&r, EVENT, &res) == TW_OK);
        CHECK_EQ_INT(res.status, TW_OK);
        CHECK_EQ_INT(res.matched, 2);
    }
    CHECK_EQ_INT(r.committed, 9);             /* (ssm: hook, chat) + (any: hook), three times */
    CHECK_EQ_INT(metric(&r, "trailwatch_rule_matches_total{rule=\"ssm\"}"), 3);
    CHECK_EQ_INT(metric(&r, "trailwatch_rule_matches_total{rule=\"any\"}"), 3);
    CHECK_EQ_INT(metric(&r, "trailwatch_events_received_total{source=\"http\"}"), 3);
    /* the handles are resolved once per configuration: the snapshot holds them */
    tw_snapshot *snap = tw__snapshot_acquire(&r.snaps);
    tw_counter *const *c = snap->ext;
    REQUIRE(c != NULL);
    CHECK_EQ_INT(atomic_load(&c[0]->value), 3);
    tw__snapshot_release(snap);
    rig_stop(&r);
}

static void *make_calls(void *ctx, const tw_config *cfg)
{
    (void)cfg;
    int *n = ctx;
    int *p = malloc(sizeof *p);
    if (p)
        *p = ++*n;
    return p;
}

TW_TEST(snapshot_ext_made_once_and_freed_with_the_snapshot)
{
    tw_config *cfg = NULL;
    tw_error err;
    rig r;
    REQUIRE(rig_start(&r, "rules: []\n") == 0);
    int calls = 0;
    tw_snapshot *snap = tw__snapshot_acquire(&r.snaps);
    int *a = tw__snapshot_ext(snap, make_calls, free, &calls);
    int *b = tw__snapshot_ext(snap, make_calls, free, &calls);
    CHECK(a && a == b && *a == 1);
    CHECK_EQ_INT(calls, 1);
    tw__snapshot_release(snap);
    /* a reload makes a new snapshot: made again for it; the old one is freed with its snapshot */
    size_t nerr;
    char path[128];
    snprintf(path, sizeof path, "%s/trailwatch.yml", r.dir);
    REQUIRE(tw_config_load(path, &cfg, &nerr, NULL, NULL, &err) == TW_OK);
    REQUIRE(tw__snapshots_swap(&r.snaps, cfg, &err) == TW_OK);
    snap = tw__snapshot_acquire(&r.snaps);
    a = tw__snapshot_ext(snap, make_calls, free, &calls);
    CHECK(a && *a == 2);
    tw__snapshot_release(snap);
    rig_stop(&r);
}

static const char *noisy(char *buf, size_t len, const char *name, int i)
{
    snprintf(buf, len,
             "{\"version\":\"0\",\"id\":\"n%d\",\"detail-type\":\"d\",\"source\":\"noisy\",\"account\":\"1\","
             "\"time\":\"2024-01-01T00:00:00Z\",\"region\":\"us-east-1\",\"resources\":[],"
             "\"detail\":{\"name\":\"%s\",\"i\":%d}}",
             i, name, i);
    return buf;
}

/* A window is closed once, by the engine, with a summary that carries the count and the latest
 * event, however long its key (keys used to be cut to 255 bytes when closing, so a long key's
 * window never closed and summarised again and again). */
TW_TEST(storm_window_closed_once_with_its_summary_at_any_key_length)
{
    static const size_t lens[] = {3, 300, 3000};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        rig r;
        REQUIRE(rig_start(&r, CONFIG) == 0);
        char name[4000], ev[5000];
        memset(name, 'n', lens[k]);
        name[lens[k]] = '\0';
        tw_ingest_result res;
        for (int i = 0; i < 4; i++)
            REQUIRE(submit(&r, noisy(ev, sizeof ev, name, i), &res) == TW_OK);
        CHECK_EQ_INT(r.committed, 5);         /* noisy once (3 suppressed) + any x4 */
        size_t closed = 99;
        tw_error err;
        /* an hour later (the window is 1 h long: the storm thread, on real time, leaves it alone) */
        int64_t later = tw__now_ms() + 3600000 + 1000;
        REQUIRE(tw__engine_close_storms(r.engine, later, &closed, &err) == TW_OK);
        CHECK_EQ_INT(closed, 1);
        CHECK_EQ_INT(r.committed, 6);         /* one summary */
        CHECK_CONTAINS(r.last_body, "\"i\":3");
        for (int i = 0; i < 5; i++) {
            REQUIRE(tw__engine_close_storms(r.engine, later + 10000 * i, &closed, &err) == TW_OK);
            CHECK_EQ_INT(closed, 0);
        }
        CHECK_EQ_INT(r.committed, 6);
        rig_stop(&r);
    }
}

TW_TEST_MAIN()
