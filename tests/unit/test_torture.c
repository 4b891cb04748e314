/* Unit test: allocation-failure sweeps ("torture", after curl's torture tests and SQLite's malloc
 * tests). Each scenario (parsers, the rule compiler, configuration loading, transformation, the
 * renderers, the engine) runs once to count its allocations, then again failing the 1st, 2nd, ...
 * Nth of them. Every run must end in one of two ways: an error that says memory ran out
 * (TW_ENOMEM, or in-band: an item rejected or an alert dead-lettered "out of memory"), or a
 * result identical to the run without failures. Nothing may crash, and under SAN=1 LeakSanitizer
 * checks for leaks after every scenario.
 *
 * The binary links tests/unit/failalloc.c with -Wl,--wrap=malloc,... (the Makefile's TORTURE_BIN).
 * By default (CI) long scenarios sample their failure points (the first 150, then evenly spread,
 * then the last 30); TW_TORTURE=full (make torture) fails every one, once and from there on. */
#include <stdlib.h>
#include <unistd.h>

#include "engine_rig.h"
#include "failalloc.h"
#include "target/target.h"
#include "target/transform.h"
#include "trailwatch/trailwatch.h"
#include "tw_test.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() __lsan_do_recoverable_leak_check()
#else
#define LEAK_CHECK() 0
#endif

/* What one run left: its status and a description of its result, written after counting stopped. */
typedef struct outcome {
    tw_status rc;
    tw_buf desc;
} outcome;

typedef struct scenario {
    const char *name;
    int all_threads;               /* count allocations on every thread, not only the caller's */
    void *ctx;
    void (*prepare)(void *ctx);    /* optional, before each run (not counted) */
    /* The work (counted); then tw_failalloc_stop(); then the description into o->desc. */
    void (*run)(void *ctx, outcome *o);
} scenario;

static int full_sweep(void) { return getenv("TW_TORTURE") && strcmp(getenv("TW_TORTURE"), "full") == 0; }

/* The failure points to try out of n allocations. */
static int sampled(unsigned long i, unsigned long n)
{
    if (full_sweep() || n <= 400 || i <= 150 || i + 30 > n)
        return 1;
    unsigned long stride = (n - 180) / 220 + 1;
    return i % stride == 0;
}

static int reports_oom(const outcome *o)
{
    return o->rc == TW_ENOMEM || (o->desc.data && strstr(o->desc.data, "ENOMEM"));
}

static void sweep(const scenario *sc)
{
    outcome ref = {TW_OK, TW_BUF_INIT};
    if (sc->prepare)
        sc->prepare(sc->ctx);
    tw_failalloc_start(0, TW_FAIL_ONCE, sc->all_threads);
    sc->run(sc->ctx, &ref);
    unsigned long n = tw_failalloc_stop();
    if (ref.rc != TW_OK || !ref.desc.data) {
        TW_FAIL_("%s: the run without failures failed (%d): %s", sc->name, ref.rc,
                 ref.desc.data ? ref.desc.data : "");
        tw__buf_free(&ref.desc);
        return;
    }
    unsigned long tried = 0, bad = 0;
    for (int mode = 0; mode < (full_sweep() ? 2 : 1); mode++) {
        for (unsigned long i = 1; i <= n + 1; i++) {
            if (!sampled(i, n))
                continue;
            outcome o = {TW_OK, TW_BUF_INIT};
            if (sc->prepare)
                sc->prepare(sc->ctx);
            tw_failalloc_start(i, mode ? TW_FAIL_FROM : TW_FAIL_ONCE, sc->all_threads);
            sc->run(sc->ctx, &o);
            tw_failalloc_stop();
            unsigned long failed = tw_failalloc_failures();
            tried++;
            const char *d = o.desc.data ? o.desc.data : "";
            int same = o.rc == TW_OK && strcmp(d, ref.desc.data) == 0;
            if (!same && !(failed && reports_oom(&o))) {
                if (bad++ < 5)
                    TW_FAIL_("%s: failing allocation %lu of %lu (%s, %lu failed): status %d, result:\n#   %.600s\n"
                             "#   expected %s or:\n#   %.600s",
                             sc->name, i, n, mode ? "and the rest" : "once", failed, o.rc, d,
                             failed ? "an out-of-memory error" : "(nothing failed)", ref.desc.data);
            }
            tw__buf_free(&o.desc);
        }
    }
    printf("# %-28s %6lu allocations, %6lu failure points tried%s\n", sc->name, n, tried,
           bad ? ", FAILED" : "");
    tw__buf_free(&ref.desc);
    if (LEAK_CHECK())
        TW_FAIL_("%s: leaks (see the LeakSanitizer report above)", sc->name);
}

/* ---- parsers ---- */

static const char EVENT[] =
    "{\"version\":\"0\",\"id\":\"ev-1\",\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":\"aws.dynamodb\","
    "\"account\":\"123456789012\",\"time\":\"2018-01-12T18:06:01Z\",\"region\":\"us-east-1\","
    "\"resources\":[\"arn:aws:dynamodb:us-east-1:123456789012:table/T\",\"arn:b\"],"
    "\"detail\":{\"eventVersion\":\"1.08\",\"eventSource\":\"dynamodb.amazonaws.com\",\"eventName\":\"CreateTable\","
    "\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"10.1.2.3\",\"eventTime\":\"2018-01-12T18:06:01Z\","
    "\"userIdentity\":{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::123456789012:assumed-role/Admin/bob\","
    "\"sessionContext\":{\"sessionIssuer\":{\"userName\":\"Admin\"}}},"
    "\"requestParameters\":{\"tableName\":\"T\",\"n\":42,\"f\":1.5e3,\"t\":true,\"z\":null,"
    "\"keySchema\":[{\"attributeName\":\"id\",\"keyType\":\"HASH\"}],\"tags\":{\"a\":\"b\"}},"
    "\"errorCode\":\"AccessDenied\",\"errorMessage\":\"no <!channel> & \\\"quotes\\\" caf\\u00e9 \\u2603\","
    "\"eventID\":\"11111111-2222-3333-4444-555555555555\"}}";

static void run_json(void *ctx, outcome *o)
{
    (void)ctx;
    tw_json_doc *doc = NULL;
    tw_error err;
    o->rc = tw_json_parse(EVENT, sizeof EVENT - 1, NULL, &doc, &err);
    tw_failalloc_stop();
    char *dump = o->rc ? NULL : tw_json_dump(tw_json_root(doc), NULL);
    tw__buf_puts(&o->desc, dump ? dump : err.msg);
    free(dump);
    tw_json_doc_free(doc);
}

static const char YAML[] = "base: &b {kind: slack, url: 'https://h/x', rate: {per_second: 2}}\n"
                           "targets:\n"
                           "  a: *b\n"
                           "  c: {<<: *b, kind: webhook}\n"
                           "list: [1, 2.5, true, null, \"q\\u00e9\", ~]\n"
                           "text: |\n"
                           "  line one\n"
                           "  line two\n"
                           "folded: >\n"
                           "  a\n"
                           "  b\n"
                           "pattern: '{\"source\": [\"aws.ssm\"]}'\n";

static void run_yaml(void *ctx, outcome *o)
{
    (void)ctx;
    tw_json_doc *doc = NULL;
    tw_error err;
    o->rc = tw_yaml_parse(YAML, sizeof YAML - 1, NULL, &doc, &err);
    tw_failalloc_stop();
    char *dump = o->rc ? NULL : tw_json_dump(tw_json_root(doc), NULL);
    tw__buf_puts(&o->desc, dump ? dump : err.msg);
    free(dump);
    tw_json_doc_free(doc);
}

static const char *const PATTERNS[] = {
    "{\"source\":[\"aws.dynamodb\"],\"detail\":{\"eventName\":[\"CreateTable\",{\"prefix\":\"Delete\"}]}}",
    "{\"detail\":{\"userIdentity\":{\"type\":[{\"anything-but\":[\"AWSService\"]}]},"
    "\"eventName\":[{\"suffix\":\"Table\"}]}}",
    "{\"detail\":{\"sourceIPAddress\":[{\"cidr\":\"10.0.0.0/8\"}],\"errorCode\":[{\"exists\":true}]}}",
    "{\"detail\":{\"userIdentity\":{\"arn\":[{\"wildcard\":\"arn:aws:sts::*:assumed-role/*\"}]}}}",
    "{\"detail\":{\"eventName\":[{\"equals-ignore-case\":\"createtable\"}]}}",
    "{\"detail\":{\"requestParameters\":{\"n\":[{\"numeric\":[\">\",1,\"<=\",42]}]}}}",
    "{\"$or\":[{\"source\":[\"aws.ssm\"]},{\"detail\":{\"errorCode\":[\"AccessDenied\"]}},"
    "{\"resources\":[{\"prefix\":{\"equals-ignore-case\":\"ARN:AWS:DYNAMODB\"}}]}]}",
    "{\"detail\":{\"requestParameters\":{\"tags\":{\"a\":[{\"anything-but\":{\"prefix\":\"x\"}}]}}}}",
};
#define NPATTERNS (sizeof PATTERNS / sizeof PATTERNS[0])

static void run_patterns(void *ctx, outcome *o)
{
    (void)ctx;
    size_t combos[NPATTERNS] = {0};
    tw_error err;
    o->rc = TW_OK;
    for (size_t i = 0; i < NPATTERNS && !o->rc; i++) {
        tw_pattern *p = NULL;
        if (!(o->rc = tw_pattern_parse(PATTERNS[i], strlen(PATTERNS[i]), NULL, &p, &err)))
            combos[i] = tw_pattern_combinations(p);
        tw_pattern_free(p);
    }
    tw_failalloc_stop();
    for (size_t i = 0; i < NPATTERNS && !o->rc; i++)
        tw__buf_printf(&o->desc, "%zu ", combos[i]);
    if (o->rc)
        tw__buf_puts(&o->desc, err.msg);
}

/* The compiler and the matcher: every pattern into one rule set, then matching three events. */
static void run_compile_match(void *ctx, outcome *o)
{
    (void)ctx;
    static const char *const events[] = {
        EVENT,
        "{\"eventVersion\":\"1.08\",\"eventSource\":\"ssm.amazonaws.com\",\"eventName\":\"PutParameter\","
        "\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::1:user/al\\u00efce\"},"
        "\"sourceIPAddress\":\"10.9.9.9\",\"errorCode\":\"AccessDenied\",\"eventType\":\"AwsApiCall\"}",
        "{\"version\":\"0\",\"id\":\"x\",\"source\":\"aws.ssm\",\"detail\":{}}",
    };
    tw_ruleset_builder *b = NULL;
    tw_ruleset *rs = NULL;
    tw_matcher *m = NULL;
    tw_error err = {TW_OK, ""};
    char got[3][128] = {{0}};
    o->rc = tw_ruleset_builder_new(NULL, &b);
    for (size_t i = 0; i < NPATTERNS && !o->rc; i++) {
        tw_pattern *p = NULL;
        char name[16];
        snprintf(name, sizeof name, "r%zu", i);
        if (!(o->rc = tw_pattern_parse(PATTERNS[i], strlen(PATTERNS[i]), NULL, &p, &err)))
            o->rc = tw_ruleset_builder_add(b, name, p, NULL, &err);
    }
    if (!o->rc)
        o->rc = tw_ruleset_build(b, &rs, &err);
    if (!o->rc)
        o->rc = tw_matcher_new(rs, &m);
    for (size_t e = 0; e < 3 && !o->rc; e++) {
        tw_match_result res;
        if (!(o->rc = tw_match(m, events[e], strlen(events[e]), TW_EVENT_AUTO, &res, &err)))
            for (size_t k = 0; k < res.count; k++)
                snprintf(got[e] + strlen(got[e]), sizeof got[e] - strlen(got[e]), "%u ", (unsigned)res.rules[k]);
    }
    tw_failalloc_stop();
    if (!o->rc)
        tw__buf_printf(&o->desc, "[%s] [%s] [%s]", got[0], got[1], got[2]);
    else
        tw__buf_puts(&o->desc, err.msg);
    tw_matcher_free(m);
    tw_ruleset_free(rs);
    tw_ruleset_builder_free(b);
}

static const char RECORDS[] =
    "{\"Records\":[{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\","
    "\"eventID\":\"a\",\"awsRegion\":\"us-east-1\",\"eventTime\":\"2024-01-01T00:00:00Z\"},"
    "{\"eventVersion\":\"1.08\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\",\"eventID\":\"b\","
    "\"requestParameters\":{\"userName\":\"x\\u00e9\"},\"awsRegion\":\"us-east-1\",\"eventTime\":\"2024-01-01T00:00:00Z\"}]}";

/* The event reader (a CloudTrail log file), then wrapping each record into its EventBridge event. */
static void run_reader_wrap(void *ctx, outcome *o)
{
    (void)ctx;
    tw_event_reader *r = NULL;
    tw_error err = {TW_OK, ""};
    char *wrapped[4] = {NULL};
    size_t nw = 0, wl[4];
    o->rc = tw_event_reader_buffer(RECORDS, sizeof RECORDS - 1, NULL, &r, &err);
    while (!o->rc && nw < 4) {
        const char *json;
        size_t len;
        tw_event_where where;
        if ((o->rc = tw_event_reader_next(r, &json, &len, &where, &err)) || !json)
            break;
        o->rc = tw_event_wrap_cloudtrail(json, len, &wrapped[nw], &wl[nw], &err);
        nw += !o->rc;
    }
    tw_failalloc_stop();
    for (size_t i = 0; i < nw && !o->rc; i++) {
        /* a wrapped record's id is new each time: compare the rest */
        tw_json_doc *d = NULL;
        if (tw_json_parse(wrapped[i], wl[i], NULL, &d, NULL) == TW_OK)
            tw__buf_printf(&o->desc, "%s|%s|%s;", tw_json_string(tw_json_get(tw_json_root(d), "detail-type"), NULL),
                          tw_json_string(tw_json_get(tw_json_root(d), "source"), NULL),
                          tw_json_string(tw_json_get(tw_json_get(tw_json_root(d), "detail"), "eventName"), NULL));
        tw_json_doc_free(d);
    }
    if (o->rc)
        tw__buf_puts(&o->desc, err.msg);
    for (size_t i = 0; i < nw; i++)
        free(wrapped[i]);
    tw_event_reader_free(r);
}

/* ---- configuration ---- */

static const char CONFIG[] =
    "server: {listen: false, account: '111122223333', region: eu-west-1}\n"
    "targets:\n"
    "  chat: {kind: slack, url: 'https://hooks.example/x', rate: {per_second: 2}, retry: {max_attempts: 3}}\n"
    "  hook: {kind: webhook, url: 'https://example.com/h', headers: {X-A: b}, auth: {bearer: t}}\n"
    "  log: {kind: file, path: out/alerts.jsonl}\n"
    "rules:\n"
    "  - name: ddb\n"
    "    description: DynamoDB changes\n"
    "    severity: high\n"
    "    pattern: {source: [aws.dynamodb], detail: {eventName: [{prefix: Create}]}}\n"
    "    targets:\n"
    "      - chat\n"
    "      - target: hook\n"
    "        input_transformer:\n"
    "          input_paths_map: {name: $.detail.requestParameters.tableName, who: $.detail.userIdentity.arn}\n"
    "          input_template: '{\"text\": \"<who> made <name>\", \"n\": <name>}'\n"
    "    storm: {keys: [$.detail.requestParameters.tableName], window: 5m}\n"
    "  - name: errors\n"
    "    pattern: '{\"detail\": {\"errorCode\": [{\"exists\": true}]}}'\n"
    "    targets: [log]\n";

static char config_path[128];

static void run_config(void *ctx, outcome *o)
{
    (void)ctx;
    tw_config *cfg = NULL;
    size_t nerr = 0;
    tw_error err = {TW_OK, ""};
    o->rc = tw_config_load(config_path, &cfg, &nerr, NULL, NULL, &err);
    tw_failalloc_stop();
    char *d = cfg ? tw_config_describe(cfg) : NULL;
    tw__buf_puts(&o->desc, d ? d : err.msg);
    /* the configuration loader names the failure in its message */
    if (o->rc && strstr(err.msg, "out of memory"))
        tw__buf_puts(&o->desc, " ENOMEM");
    free(d);
    tw_config_free(cfg);
}

/* ---- input transformation and the renderers ---- */

static void run_transform(void *ctx, outcome *o)
{
    (void)ctx;
    static const char binding[] =
        "{\"InputTransformer\":{\"InputPathsMap\":{\"name\":\"$.detail.requestParameters.tableName\","
        "\"all\":\"$.detail.requestParameters\",\"who\":\"$.detail.userIdentity.arn\"},"
        "\"InputTemplate\":\"{\\\"text\\\": \\\"<who> made <name> <aws.events.rule-name>\\\", \\\"all\\\": <all>,"
        " \\\"ev\\\": <aws.events.event.json>}\"}}";
    tw_json_doc *b = NULL, *ev = NULL;
    tw_transform *xf = NULL;
    tw_buf out = TW_BUF_INIT;
    tw_error err = {TW_OK, ""};
    int is_json = 0;
    tw_xf_ctx x = {"r", "arn:aws:events:us-east-1:1:rule/r", 1, EVENT, sizeof EVENT - 1, tw__slack_escape, NULL};
    o->rc = tw_json_parse(binding, sizeof binding - 1, NULL, &b, &err);
    if (!o->rc)
        o->rc = tw_json_parse(EVENT, sizeof EVENT - 1, NULL, &ev, &err);
    if (!o->rc)
        o->rc = tw__transform_compile(tw_json_root(b), &xf, &err);
    if (!o->rc)
        o->rc = tw__transform_apply(xf, tw_json_root(ev), &x, &out, &is_json, &err);
    tw_failalloc_stop();
    tw__buf_printf(&o->desc, "%d %s", is_json, o->rc ? err.msg : out.data);
    tw__buf_free(&out);
    tw__transform_free(xf);
    tw_json_doc_free(b);
    tw_json_doc_free(ev);
}

typedef struct render_ctx {
    const char *kind, *settings;
    const char *input;             /* NULL: the kind's default message */
    int input_is_json;
} render_ctx;

static void run_render(void *ctx, outcome *o)
{
    const render_ctx *rc = ctx;
    const tw_target_ops *ops = tw__target_kind(rc->kind);
    tw_json_doc *s = NULL, *ev = NULL;
    void *impl = NULL;
    tw_buf out = TW_BUF_INIT;
    tw_error err = {TW_OK, ""};
    o->rc = tw_json_parse(rc->settings, strlen(rc->settings), NULL, &s, &err);
    if (!o->rc)
        o->rc = tw_json_parse(EVENT, sizeof EVENT - 1, NULL, &ev, &err);
    if (!o->rc)
        o->rc = ops->configure(tw_json_root(s), &impl, &err);
    if (!o->rc) {
        tw_alert_ctx a = {tw_json_root(ev), EVENT, sizeof EVENT - 1, "rule-1", "a <b> rule", "high",
                          "arn:aws:events:us-east-1:1:rule/rule-1", rc->input, rc->input ? strlen(rc->input) : 0,
                          rc->input_is_json, 3, 300000, "idem-1", NULL};
        o->rc = tw__target_render(ops, impl, &a, &out, &err);
    }
    tw_failalloc_stop();
    tw__buf_puts(&o->desc, o->rc ? err.msg : out.data ? out.data : "(empty)");
    tw__buf_free(&out);
    if (impl)
        ops->release(impl);
    tw_json_doc_free(s);
    tw_json_doc_free(ev);
}

/* ---- the engine ---- */

static rig engine_rig;
static const char *const SUBMIT[4];
static int64_t dead_seen;          /* dead letters up to this id were described before */

static int dead_note(void *ctx, const tw_dead_letter *dl)
{
    tw_buf *b = ctx;
    if (dl->id > dead_seen) {
        tw__buf_printf(b, " dead(%s)", strstr(dl->reason, "out of memory") ? "ENOMEM" : dl->reason);
        dead_seen = dl->id;
    }
    return 0;
}

/* The dead letters since the last call: an alert that could not be rendered is reported there. */
static void describe_dead(tw_buf *desc)
{
    tw_store *st = NULL;
    if (tw_store_open(engine_rig.dir, &st, NULL) == TW_OK) {
        tw_dlq_list(st, NULL, dead_note, desc, NULL);
        tw_store_close(st);
    }
}

/* Before each engine run: no storm window open, so every run sees the same. */
static void close_all_storms(void *ctx)
{
    (void)ctx;
    tw__engine_close_storms(engine_rig.engine, tw__now_ms() + 3600000, NULL, NULL);
}

/* Before each storm run: two alerts per binding of the storm rule, one suppressed. */
static void open_storms(void *ctx)
{
    close_all_storms(ctx);
    tw_ingest_item it[2] = {{SUBMIT[0], strlen(SUBMIT[0]), TW_EVENT_AUTO}, {SUBMIT[0], strlen(SUBMIT[0]), TW_EVENT_AUTO}};
    tw_ingest_result res[2];
    tw_ingest_opts opts = {.source = "http"};
    tw__engine_submit(engine_rig.engine, it, 2, &opts, res, NULL);
}

static const char *const SUBMIT[4] = {
    /* EVENT without its eventID: a CloudTrail eventID would make every run after the first a duplicate */
    "{\"version\":\"0\",\"id\":\"ev-2\",\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":\"aws.dynamodb\","
    "\"account\":\"123456789012\",\"time\":\"2018-01-12T18:06:01Z\",\"region\":\"us-east-1\",\"resources\":[],"
    "\"detail\":{\"eventSource\":\"dynamodb.amazonaws.com\",\"eventName\":\"CreateTable\",\"awsRegion\":\"us-east-1\","
    "\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":\"bob\"},\"requestParameters\":{\"tableName\":\"T\"},"
    "\"errorCode\":\"AccessDenied\",\"errorMessage\":\"no <!channel> caf\\u00e9\"}}",
    "{\"eventVersion\":\"1.08\",\"eventSource\":\"dynamodb.amazonaws.com\",\"eventName\":\"CreateTable\","
    "\"awsRegion\":\"us-east-1\",\"eventTime\":\"2024-05-01T12:00:00Z\",\"recipientAccountId\":\"1\","
    "\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":\"alice\"},\"errorCode\":\"X\","
    "\"requestParameters\":{\"tableName\":\"t2\"}}",
    "{\"version\":\"0\",\"id\":\"e3\",\"detail-type\":\"d\",\"source\":\"nothing\",\"detail\":{}}",
    "not json",
};

/* Submits a batch (a raw record without eventID, so no run is a duplicate of the one before) and
 * describes each item's result and what reached the outbox or the dead letters. */
static void run_engine(void *ctx, outcome *o)
{
    (void)ctx;
    rig *r = &engine_rig;
    tw_ingest_item items[4];
    tw_ingest_result res[4];
    for (size_t i = 0; i < 4; i++)
        items[i] = (tw_ingest_item){SUBMIT[i], strlen(SUBMIT[i]), TW_EVENT_AUTO};
    tw_ingest_opts opts = {.source = "http"};
    tw_error err = {TW_OK, ""};
    int before = r->committed;
    o->rc = tw__engine_submit(r->engine, items, 4, &opts, res, &err);
    tw_failalloc_stop();
    for (size_t i = 0; i < 4 && !o->rc; i++)
        tw__buf_printf(&o->desc, "[%s %u %d] ", res[i].status == TW_ENOMEM ? "ENOMEM" : tw_strerror(res[i].status),
                      res[i].matched, res[i].duplicate);
    tw__buf_printf(&o->desc, "rows %d", r->committed - before);
    if (o->rc)
        tw__buf_puts(&o->desc, err.msg);
    describe_dead(&o->desc);
}

/* Closes the storm windows the submits opened, rendering their summaries. */
static void run_storms(void *ctx, outcome *o)
{
    (void)ctx;
    rig *r = &engine_rig;
    tw_error err = {TW_OK, ""};
    size_t n = 0;
    int before = r->committed;
    o->rc = tw__engine_close_storms(r->engine, tw__now_ms() + 3600000, &n, &err);
    tw_failalloc_stop();
    tw__buf_printf(&o->desc, "closed %zu rows %d %s", n, r->committed - before, o->rc ? err.msg : "");
    describe_dead(&o->desc);
}

/* ---- the sweeps ---- */

TW_TEST(parsers_fail_cleanly_at_every_allocation)
{
    const scenario s[] = {{"json", 0, NULL, NULL, run_json},
                          {"yaml", 0, NULL, NULL, run_yaml},
                          {"patterns", 0, NULL, NULL, run_patterns},
                          {"reader+wrap", 0, NULL, NULL, run_reader_wrap}};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        sweep(&s[i]);
}

TW_TEST(compiler_and_matcher_fail_cleanly_at_every_allocation)
{
    const scenario s = {"compile+match", 0, NULL, NULL, run_compile_match};
    sweep(&s);
}

TW_TEST(configuration_fails_cleanly_at_every_allocation)
{
    snprintf(config_path, sizeof config_path, "/tmp/tw-torture-XXXXXX");
    REQUIRE(mkdtemp(config_path));
    char dir[128];
    snprintf(dir, sizeof dir, "%s", config_path);
    strcat(config_path, "/trailwatch.yml");
    FILE *f = fopen(config_path, "w");
    REQUIRE(f);
    fputs(CONFIG, f);
    fclose(f);
    const scenario s = {"config", 0, NULL, NULL, run_config};
    sweep(&s);
    unlink(config_path);
    rmdir(dir);
}

TW_TEST(transformation_and_renderers_fail_cleanly_at_every_allocation)
{
    const scenario t = {"transform", 0, NULL, NULL, run_transform};
    sweep(&t);
    static render_ctx kinds[] = {
        {"slack", "{\"url\":\"https://h/x\",\"mention\":\"<!here>\",\"channel\":\"#c\"}", NULL, 0},
        {"slack", "{\"url\":\"https://h/x\",\"mention\":\"<!here>\"}", "\"a <b> text\"", 1},
        {"slack", "{\"url\":\"https://h/x\"}", "[1,2]", 1},
        {"teams", "{\"url\":\"https://h/x\"}", NULL, 0},
        {"teams", "{\"url\":\"https://h/x\",\"format\":\"messagecard\"}", NULL, 0},
        {"teams", "{\"url\":\"https://h/x\"}", "plain text", 0},
        {"discord", "{\"url\":\"https://h/x\",\"username\":\"tw\"}", NULL, 0},
        {"discord", "{\"url\":\"https://h/x\"}", "{\"a\":1}", 1},
        {"pagerduty", "{\"routing_key\":\"R0123456789abcdef0123456789abcdef\"}", NULL, 0},
        {"pagerduty", "{\"routing_key\":\"R0123456789abcdef0123456789abcdef\"}", "[\"x\"]", 1},
        {"webhook", "{\"url\":\"https://h/x\",\"headers\":{\"X-A\":\"b\"}}", NULL, 0},
        {"file", "{\"path\":\"/tmp/unused\"}", "{\"b\": [1, 2]}", 1},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "render %s%s", kinds[i].kind, kinds[i].input ? " (input)" : "");
        const scenario s = {name, 0, &kinds[i], NULL, run_render};
        sweep(&s);
    }
}

TW_TEST(engine_fails_cleanly_at_every_allocation)
{
    REQUIRE(rig_start(&engine_rig, CONFIG) == 0);
    const scenario s = {"engine submit", 0, NULL, close_all_storms, run_engine};
    sweep(&s);
    const scenario st = {"engine close storms", 0, NULL, open_storms, run_storms};
    sweep(&st);
    rig_stop(&engine_rig);
}

TW_TEST_MAIN()
