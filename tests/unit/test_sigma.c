/* Unit tests: Sigma internals (globs, the condition grammar, time parts) and the correlator as serve
 * runs it: streaming with allowed lateness, late events dropped, windows closed by the clock, bounded
 * state with eviction, state that survives a restart. */
#include <stdlib.h>
#include <unistd.h>

#include "pattern/pattern_int.h"
#include "sigma/sigma_int.h"
#include "trailwatch/trailwatch.h"
#include "tw_test.h"

static int glob(const char *pattern, const char *value)
{
    char enc[256];
    size_t n = 0;
    for (const char *p = pattern; *p; p++)
        enc[n++] = *p == '*' ? TW_GLOB_STAR : *p == '?' ? TW_GLOB_ONE : *p;
    tw_arena a = TW_ARENA_INIT;
    tw__wildcard w;
    int r = -1;
    if (!tw__glob_compile(&a, enc, n, 32, &w))
        r = tw__glob_match(&w, value, strlen(value));
    tw__arena_free(&a);
    return r;
}

TW_TEST(globs_match_runs_and_single_characters)
{
    CHECK_EQ_INT(glob("abc", "abc"), 1);
    CHECK_EQ_INT(glob("abc", "abcd"), 0);
    CHECK_EQ_INT(glob("*", ""), 1);
    CHECK_EQ_INT(glob("a*", "a"), 1);
    CHECK_EQ_INT(glob("*a*b*", "xaxxb"), 1);
    CHECK_EQ_INT(glob("*a*b*", "bxa"), 0);
    CHECK_EQ_INT(glob("a?c", "abc"), 1);
    CHECK_EQ_INT(glob("a?c", "ac"), 0);
    CHECK_EQ_INT(glob("a?c", "a\xc3\xa9" "c"), 1);       /* ? is one character, two bytes here */
    CHECK_EQ_INT(glob("a??c", "a\xc3\xa9" "c"), 0);
    CHECK_EQ_INT(glob("*?", ""), 0);
    CHECK_EQ_INT(glob("*??", "\xe2\x82\xac" "x"), 1);      /* a 3-byte character then one more */
    CHECK_EQ_INT(glob("ab*?b", "abb"), 0);                /* head and tail must not overlap */
    CHECK_EQ_INT(glob("ab*?b", "abxb"), 1);
    CHECK_EQ_INT(glob("**a**", "xax"), 1);
    CHECK_EQ_INT(glob("*a?c*d", "xxabcxd"), 1);
    CHECK_EQ_INT(glob("*a?c*d", "xxabxd"), 0);
}

static const char *cond(const char *text)
{
    static char out[400];
    tw_arena a = TW_ARENA_INIT;
    char why[300];
    sg_cond *c = tw__sigma_cond_parse(&a, text, strlen(text), why, sizeof why);
    if (!c) {
        snprintf(out, sizeof out, "ERR %s", why);
    } else {
        /* prefix form */
        char buf[400] = "";
        struct { const sg_cond *c; int step; } st[64];
        int sp = 0;
        st[sp].c = c;
        st[sp++].step = 0;
        while (sp) {
            const sg_cond *x = st[sp - 1].c;
            int step = st[sp - 1].step++;
            size_t n = strlen(buf);
            if (step == 0) {
                if (x->op == SC_ID)
                    snprintf(buf + n, sizeof buf - n, "%s ", x->name);
                else if (x->op == SC_OF)
                    snprintf(buf + n, sizeof buf - n, "(%s-of %s) ", x->all ? "all" : "1", x->name ? x->name : "them");
                else
                    snprintf(buf + n, sizeof buf - n, "(%s ", x->op == SC_AND ? "and" : x->op == SC_OR ? "or" : "not");
                if (x->op == SC_ID || x->op == SC_OF)
                    sp--;
                else {
                    st[sp].c = x->a;
                    st[sp++].step = 0;
                }
            } else if (step == 1 && x->b) {
                st[sp].c = x->b;
                st[sp++].step = 0;
            } else {
                snprintf(buf + n, sizeof buf - n, ") ");
                sp--;
            }
        }
        snprintf(out, sizeof out, "%s", buf);
    }
    tw__arena_free(&a);
    return out;
}

TW_TEST(conditions_parse_with_sigma_precedence)
{
    CHECK_EQ_STR(cond("a or b and c"), "(or a (and b c ) ) ");
    CHECK_EQ_STR(cond("not a and b"), "(and (not a ) b ) ");
    CHECK_EQ_STR(cond("(a or b) and not 1 of f*"), "(and (or a b ) (not (1-of f*) ) ) ");
    CHECK_EQ_STR(cond("all of them"), "(all-of them) ");
    CHECK_EQ_STR(cond("A AND NOT B"), "(and A (not B ) ) ");
    CHECK_CONTAINS(cond("a and"), "ERR column 6: expected a search identifier");
    CHECK_CONTAINS(cond("a | count() > 5"), "ERR column 3: '|' starts a Sigma v1 aggregation");
    CHECK_CONTAINS(cond("(a"), "expected ')'");
    CHECK_CONTAINS(cond("1 a"), "expected 'of'");
    CHECK_CONTAINS(cond(""), "ERR empty");
    CHECK_CONTAINS(cond("a $ b"), "column 3: expected 'and', 'or' or the end instead of '$'");
    CHECK_CONTAINS(cond("$"), "unexpected character '$'");
    /* nesting is capped, not a stack overflow */
    char deep[600];
    memset(deep, '(', 300);
    strcpy(deep + 300, "a");
    CHECK_CONTAINS(cond(deep), "nested too deeply");
    memset(deep, 0, sizeof deep);
    for (int i = 0; i < 100; i++)
        strcat(deep, "not ");
    strcat(deep, "a");
    CHECK_CONTAINS(cond(deep), "nested too deeply");
    CHECK_EQ_INT(tw__sigma_glob_name("sel*", 4, "selection", 9), 1);
    CHECK_EQ_INT(tw__sigma_glob_name("*_x_*", 5, "a_x_1", 5), 1);
    CHECK_EQ_INT(tw__sigma_glob_name("sel*", 4, "filter", 6), 0);
}

TW_TEST(time_parts_of_iso_dates)
{
    double d;
    CHECK(tw__time_part("2021-07-28T23:30:05Z", 20, TW_TP_HOUR, &d) && d == 23);
    CHECK(tw__time_part("2021-07-28T23:30:05Z", 20, TW_TP_MINUTE, &d) && d == 30);
    CHECK(tw__time_part("2021-01-03", 10, TW_TP_WEEK, &d) && d == 53);   /* 2020 had 53 ISO weeks */
    CHECK(tw__time_part("2024-12-30T00:00:00Z", 20, TW_TP_WEEK, &d) && d == 1);
    CHECK(tw__time_part("2021-07-28", 10, TW_TP_MONTH, &d) && d == 7);
    CHECK(!tw__time_part("2021-07-28", 10, TW_TP_HOUR, &d));              /* no time of day */
    CHECK(!tw__time_part("28/07/2021", 10, TW_TP_DAY, &d));
}

/* ---- the correlator ---- */

typedef struct hits {
    int n;
    double last_value;
    char group[64];
} hits;

static void on_hit(void *ctx, const tw_correlation_hit *h)
{
    hits *x = ctx;
    x->n++;
    x->last_value = h->value;
    snprintf(x->group, sizeof x->group, "%s", h->ngroup && h->group_values[0] ? h->group_values[0] : "-");
}

static const char corr_rules[] =
    "title: e\nname: e\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel: {eventName: E}\n"
    "  condition: sel\n---\n"
    "title: three\nname: three\ncorrelation:\n  type: event_count\n  rules: [e]\n  group-by: [userIdentity.arn]\n"
    "  timespan: 10m\n  condition: {gte: 3}\n---\n"
    "title: quiet\nname: quiet\ncorrelation:\n  type: event_count\n  rules: [e]\n  group-by: [userIdentity.arn]\n"
    "  timespan: 10m\n  condition: {lt: 2}\n";

typedef struct env {
    tw_sigma *s;
    tw_ruleset *rs;
    tw_matcher *m;
    tw_correlator *c;
} env;

static int env_open(env *e, const tw_correlator_opts *o)
{
    tw_error err;
    size_t nerr = 0;
    tw_ruleset_builder *b = NULL;
    memset(e, 0, sizeof *e);
    if (tw_sigma_new(NULL, &e->s) || tw_sigma_load_text(e->s, "c.yml", corr_rules, strlen(corr_rules), &nerr, NULL, NULL, &err) ||
        nerr || tw_ruleset_builder_new(NULL, &b) || tw_sigma_add(e->s, b, &nerr, NULL, NULL, &err) ||
        tw_ruleset_build(b, &e->rs, &err) || tw_matcher_new(e->rs, &e->m) || tw_correlator_new(e->s, e->rs, o, &e->c, &err)) {
        printf("# setup: %s\n", err.msg);
        tw_ruleset_builder_free(b);
        return 0;
    }
    tw_ruleset_builder_free(b);
    return 1;
}

static void env_close(env *e)
{
    tw_correlator_free(e->c);
    tw_matcher_free(e->m);
    tw_ruleset_free(e->rs);
    tw_sigma_free(e->s);
}

/* One event of rule e by arn at minute:second, fed (now: the same time). */
static void feed(env *e, const char *arn, int minute, int second, hits *h)
{
    char ev[300];
    snprintf(ev, sizeof ev, "{\"eventVersion\":\"1.08\",\"eventSource\":\"x.amazonaws.com\",\"eventName\":\"E\","
                            "\"eventID\":\"%s-%d-%d\",\"userIdentity\":{\"arn\":\"%s\"},"
                            "\"eventTime\":\"2024-01-01T01:%02d:%02dZ\"}", arn, minute, second, arn, minute, second);
    tw_match_result res;
    tw_error err;
    if (tw_match(e->m, ev, strlen(ev), TW_EVENT_AUTO, &res, &err) || res.count != 1) {
        TW_FAIL_("event did not match: %s", err.msg);
        return;
    }
    CHECK_EQ_INT(tw_correlator_feed(e->c, e->m, &res, 0, on_hit, h, &err), TW_OK);
}

static int64_t at(int minute) { return 1704070800000LL + minute * 60000LL; } /* 2024-01-01T01:mm */

TW_TEST(streaming_takes_late_events_within_the_lateness_and_drops_older_ones)
{
    tw_correlator_opts o;
    tw_correlator_opts_default(&o);
    o.lateness_ms = 5 * 60000;
    env e;
    REQUIRE(env_open(&e, &o));
    hits h = {0, 0, ""};
    feed(&e, "a", 20, 0, &h);
    feed(&e, "a", 16, 0, &h);  /* 4 minutes late: taken */
    feed(&e, "a", 10, 0, &h);  /* 10 minutes late: dropped */
    CHECK_EQ_INT(h.n, 0);
    feed(&e, "a", 18, 0, &h);  /* third within 10 minutes (16, 18, 20) */
    CHECK_EQ_INT(h.n, 1);
    CHECK_EQ_STR(h.group, "a");
    tw_correlator_stats st;
    tw_correlator_stats_get(e.c, &st);
    CHECK_EQ_INT(st.late, 2);  /* once per correlation reading rule e */
    CHECK_EQ_INT(st.hits, 1);
    env_close(&e);
}

TW_TEST(upper_bounds_are_decided_when_the_clock_closes_the_window)
{
    tw_correlator_opts o;
    tw_correlator_opts_default(&o);
    o.lateness_ms = 60000;
    env e;
    REQUIRE(env_open(&e, &o));
    hits h = {0, 0, ""};
    feed(&e, "q", 0, 0, &h);
    tw_error err;
    CHECK_EQ_INT(tw_correlator_tick(e.c, at(5), on_hit, &h, &err), TW_OK);
    CHECK_EQ_INT(h.n, 0);     /* the 10-minute window is still open */
    CHECK_EQ_INT(tw_correlator_tick(e.c, at(12), on_hit, &h, &err), TW_OK);
    CHECK_EQ_INT(h.n, 1);     /* closed with one event: fewer than 2 */
    CHECK(h.last_value == 1);
    env_close(&e);
}

TW_TEST(state_is_bounded_and_evictions_are_counted)
{
    tw_correlator_opts o;
    tw_correlator_opts_default(&o);
    o.max_groups = 4;
    o.max_group_events = 2;
    env e;
    REQUIRE(env_open(&e, &o));
    hits h = {0, 0, ""};
    char arn[16];
    for (int i = 0; i < 10; i++) {
        snprintf(arn, sizeof arn, "u%d", i);
        feed(&e, arn, 1, i, &h);
    }
    tw_correlator_stats st;
    tw_correlator_stats_get(e.c, &st);
    CHECK(st.groups <= 4);
    CHECK(st.evicted >= 12);  /* two correlations, 10 groups each, 4 kept */
    /* a group over max_group_events drops its oldest: three in a row never make "three" */
    feed(&e, "v", 2, 0, &h);
    feed(&e, "v", 2, 1, &h);
    feed(&e, "v", 2, 2, &h);
    CHECK_EQ_INT(h.n, 0);
    env_close(&e);
}

TW_TEST(state_survives_a_restart)
{
    char dir[] = "/tmp/tw-sigma-state-XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/sigma-state.db", dir);
    tw_correlator_opts o;
    tw_correlator_opts_default(&o);
    o.state_path = path;
    env e;
    hits h = {0, 0, ""};
    REQUIRE(env_open(&e, &o));
    feed(&e, "r", 30, 0, &h);
    feed(&e, "r", 31, 0, &h);
    tw_error err;
    CHECK_EQ_INT(tw_correlator_save(e.c, &err), TW_OK);
    env_close(&e);            /* a restart: everything in memory is gone */
    REQUIRE(env_open(&e, &o));
    tw_correlator_stats st;
    tw_correlator_stats_get(e.c, &st);
    CHECK(st.groups >= 1);
    feed(&e, "r", 32, 0, &h); /* the third event completes the window begun before the restart */
    CHECK_EQ_INT(h.n, 1);
    env_close(&e);
    unlink(path);
    char side[300];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    rmdir(dir);
}

/* serve's transactions (#14): a batch whose commit fails is undone, so its events can come again. */
TW_TEST(a_rolled_back_transaction_leaves_no_trace)
{
    tw_correlator_opts o;
    tw_correlator_opts_default(&o);
    o.max_groups = 2;
    env e;
    REQUIRE(env_open(&e, &o));
    hits h = {0, 0, ""};
    tw_error err;
    tw_correlator_begin(e.c);
    feed(&e, "a", 1, 0, &h);
    feed(&e, "a", 1, 1, &h);
    tw_correlator_commit(e.c);
    tw_correlator_stats before, st;
    tw_correlator_stats_get(e.c, &before);
    /* the batch: two events (the second completes "three"), a new group that evicts "a" */
    tw_correlator_begin(e.c);
    feed(&e, "a", 1, 2, &h);
    feed(&e, "a", 1, 3, &h);
    feed(&e, "b", 1, 4, &h);
    feed(&e, "c", 1, 5, &h);
    CHECK_EQ_INT(h.n, 1);
    CHECK_EQ_INT(tw_correlator_rollback(e.c, &err), TW_OK);
    tw_correlator_stats_get(e.c, &st);
    CHECK_EQ_INT(st.groups, before.groups);
    CHECK_EQ_INT(st.hits, before.hits);
    CHECK_EQ_INT(st.evicted, before.evicted);
    CHECK_EQ_INT(st.events, before.events);
    /* sent again: counted once, the same hit */
    h.n = 0;
    feed(&e, "a", 1, 2, &h);
    CHECK_EQ_INT(h.n, 1);
    CHECK(h.last_value == 3);
    env_close(&e);
}

/* Undo copies are shallow: strings dropped in a transaction live until it ends (ASan/valgrind check
 * that each is freed once, whichever way it ends). */
TW_TEST(transactions_free_what_they_drop_once)
{
    tw_correlator_opts o;
    tw_correlator_opts_default(&o);
    o.max_group_events = 2;
    env e;
    REQUIRE(env_open(&e, &o));
    hits h = {0, 0, ""};
    tw_error err;
    for (int round = 0; round < 2; round++) {
        tw_correlator_begin(e.c);
        feed(&e, "m", 5, 0, &h);
        feed(&e, "m", 5, 1, &h);
        feed(&e, "m", 5, 2, &h);  /* over max_group_events: the oldest is dropped */
        feed(&e, "m", 4, 59, &h); /* older than all: taken and dropped at once */
        feed(&e, "n", 5, 3, &h);
        if (round == 0)
            CHECK_EQ_INT(tw_correlator_rollback(e.c, &err), TW_OK);
        else
            tw_correlator_commit(e.c);
    }
    tw_correlator_stats st;
    tw_correlator_stats_get(e.c, &st);
    CHECK_EQ_INT(st.groups, 4);   /* m and n, for both correlations */
    CHECK_EQ_INT(h.n, 0);         /* never three within max_group_events = 2 */
    env_close(&e);
}

/* Input prepared under one load of the rules, applied to a correlator over another (serve: a batch
 * matched before a reload, applied after it): same definition, same correlation; a changed one drops it. */
static void feed_across(env *from, tw_correlator *to, const char *arn, int second, hits *h)
{
    char ev[300];
    snprintf(ev, sizeof ev, "{\"eventVersion\":\"1.08\",\"eventSource\":\"x.amazonaws.com\",\"eventName\":\"E\","
                            "\"eventID\":\"%s-x-%d\",\"userIdentity\":{\"arn\":\"%s\"},"
                            "\"eventTime\":\"2024-01-01T02:00:%02dZ\"}", arn, second, arn, second);
    tw_match_result res;
    tw_error err;
    tw_correlator_input *in = NULL;
    REQUIRE(tw_match(from->m, ev, strlen(ev), TW_EVENT_AUTO, &res, &err) == TW_OK && res.count == 1);
    CHECK_EQ_INT(tw_correlator_prepare(from->s, from->m, &res, 0, &in, &err), TW_OK);
    CHECK(in != NULL);
    CHECK_EQ_INT(tw_correlator_apply(to, in, on_hit, h, &err), TW_OK);
    tw_correlator_input_free(in);
}

TW_TEST(input_prepared_before_a_reload_goes_to_the_same_correlation)
{
    env a, b;
    REQUIRE(env_open(&a, NULL));
    REQUIRE(env_open(&b, NULL));
    hits h = {0, 0, ""};
    for (int i = 0; i < 3; i++)
        feed_across(&a, b.c, "r", i, &h);
    CHECK_EQ_INT(h.n, 1);
    CHECK_EQ_STR(h.group, "r");
    env_close(&a);
    env_close(&b);
}

TW_TEST(the_same_event_twice_counts_once)
{
    env e;
    REQUIRE(env_open(&e, NULL));
    hits h = {0, 0, ""};
    feed(&e, "d", 3, 0, &h);
    feed(&e, "d", 3, 0, &h);
    feed(&e, "d", 3, 1, &h);
    CHECK_EQ_INT(h.n, 0);
    tw_correlator_stats st;
    tw_correlator_stats_get(e.c, &st);
    CHECK_EQ_INT(st.duplicates, 2);   /* once per correlation reading rule e */
    feed(&e, "d", 3, 2, &h);
    CHECK_EQ_INT(h.n, 1);
    env_close(&e);
}

typedef struct ids {
    int n;
    char id[8][40];
} ids;

static void keep_id(void *ctx, const tw_correlation_hit *h)
{
    ids *x = ctx;
    const char *p = strstr(h->json, "\"id\":\"");
    if (x->n < 8 && p)
        snprintf(x->id[x->n++], 40, "%.36s", p + 6);
}

TW_TEST(a_window_closed_again_after_a_rollback_gives_the_same_hit)
{
    tw_correlator_opts o;
    tw_correlator_opts_default(&o);
    o.lateness_ms = 60000;
    env e;
    REQUIRE(env_open(&e, &o));
    hits h = {0, 0, ""};
    feed(&e, "q", 0, 0, &h);
    ids x = {0, {{0}}};
    tw_error err;
    tw_correlator_begin(e.c);
    CHECK_EQ_INT(tw_correlator_tick(e.c, at(12), keep_id, &x, &err), TW_OK);
    CHECK_EQ_INT(x.n, 1);
    CHECK_EQ_INT(tw_correlator_rollback(e.c, &err), TW_OK);   /* its alert could not be stored */
    tw_correlator_begin(e.c);
    CHECK_EQ_INT(tw_correlator_tick(e.c, at(13), keep_id, &x, &err), TW_OK);
    tw_correlator_commit(e.c);
    CHECK_EQ_INT(x.n, 2);
    CHECK_EQ_STR(x.id[0], x.id[1]);   /* the same idempotency key downstream */
    CHECK_EQ_INT(tw_correlator_tick(e.c, at(14), keep_id, &x, &err), TW_OK);
    CHECK_EQ_INT(x.n, 2);             /* committed: decided once */
    env_close(&e);
}

static void count_hit(void *ctx, const tw_correlation_hit *h)
{
    (void)h;
    ++*(int *)ctx;
}

/* tw_sigma_eval: what query --sigma and replay --sigma evaluate archived events with. */
TW_TEST(sigma_files_evaluate_events_one_by_one)
{
    char dir[] = "/tmp/tw-sigma-eval-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[300];
    snprintf(path, sizeof path, "%s/r.yml", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("title: Stop logging\nname: stop\nlogsource: {product: aws, service: cloudtrail}\n"
          "detection:\n  sel:\n    eventName: StopLogging\n  condition: sel\n---\n"
          "title: twice\nname: twice\ncorrelation:\n  type: event_count\n  rules: [stop]\n  timespan: 1h\n"
          "  condition: {gte: 2}\ngenerate: true\n", f);
    fclose(f);
    tw_limits lim;
    tw_limits_default(&lim);
    tw_sigma_eval *e = NULL;
    tw_error err;
    size_t refused = 0;
    const char *paths[] = {path};
    REQUIRE(tw_sigma_eval_new(paths, 1, NULL, &lim, 1, &e, &refused, NULL, NULL, &err) == TW_OK);
    CHECK_EQ_INT((int)refused, 0);
    size_t n;
    const char *const *names;
    const char *rec = "{\"eventVersion\":\"1.08\",\"eventSource\":\"cloudtrail.amazonaws.com\",\"eventName\":"
                      "\"stoplogging\",\"eventTime\":\"2026-01-01T00:00:00Z\",\"eventID\":\"a\"}";
    const char *eb = "{\"version\":\"0\",\"id\":\"b\",\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":"
                      "\"aws.cloudtrail\",\"detail\":{\"eventName\":\"StopLogging\",\"eventTime\":\"2026-01-01T00:10:00Z\"}}";
    CHECK_EQ_INT(tw_sigma_eval_event(e, rec, strlen(rec), &n, &names, &err), TW_OK);
    REQUIRE(n == 1);
    CHECK_EQ_STR(names[0], "stop");
    CHECK_EQ_INT(tw_sigma_eval_event(e, eb, strlen(eb), &n, &names, &err), TW_OK);
    CHECK_EQ_INT((int)n, 1);
    CHECK_EQ_INT(tw_sigma_eval_event(e, "{\"a\":1}", 7, &n, &names, &err), TW_OK);
    CHECK_EQ_INT((int)n, 0);
    CHECK(tw_sigma_eval_event(e, "{\"a\":", 5, &n, &names, &err) != TW_OK);
    int nhits = 0;
    CHECK_EQ_INT(tw_sigma_eval_finish(e, count_hit, &nhits, &err), TW_OK);
    CHECK_EQ_INT(nhits, 1);
    tw_sigma_eval_free(e);
    const char *missing[] = {"/nonexistent/sigma"};
    CHECK(tw_sigma_eval_new(missing, 1, NULL, &lim, 0, &e, &refused, NULL, NULL, &err) != TW_OK);
    CHECK(e == NULL);
    unlink(path);
    rmdir(dir);
}

TW_TEST_MAIN()
