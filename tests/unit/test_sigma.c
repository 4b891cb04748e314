/* Unit tests: Sigma internals (globs, the condition grammar, time parts) and the correlator as serve
 * runs it: streaming with allowed lateness, late events dropped, windows closed by the clock, bounded
 * state with eviction, state that survives a restart. */
#include <stdlib.h>
#include <unistd.h>

#include "pattern/boolean.h"
#include "pattern/pattern_int.h"
#include "pattern/regex.h"
#include "pattern/ruleset_int.h"
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

/* The literal every match of a regex contains ("" when none is read), and a subject it must match. */
static void literal_is(const char *re, int caseless, const char *want)
{
    char out[256];
    size_t n = tw__regex_literal(re, strlen(re), caseless, out);
    out[n] = '\0';
    if (strcmp(out, want) != 0) {
        TW_FAIL_("regex %s: literal \"%s\", expected \"%s\"", re, out, want);
    }
}

TW_TEST(regex_literals_are_what_every_match_contains)
{
    literal_is(".+:assumed-role/aws:.+", 0, ":assumed-role/aws:");
    literal_is("^arn:aws:iam::[0-9]{12}:root$", 0, "arn:aws:iam::");
    literal_is("AKIA[A-Z0-9]{16}", 0, "AKIA");
    literal_is("abcd?", 0, "abc");                 /* d is optional */
    literal_is("abcd*", 0, "abc");
    literal_is("abcd{0,2}x", 0, "abc");            /* a brace quantifier drops the character too */
    literal_is("ab+cd", 0, "ab");                  /* b at least once: runs "ab" and "cd", the first kept */
    literal_is("xyzab+cdefgh", 0, "cdefgh");       /* the longer run */
    literal_is("xyzab+c", 0, "xyzab");
    literal_is("Get(Object|Bucket)Acl", 0, "Get");    /* a group is skipped, its alternation too */
    literal_is("(?:abc)?defg", 0, "defg");
    literal_is("a|bcd", 0, "");                    /* top-level alternation: nothing is required */
    literal_is("(?i)powershell", 0, "");           /* an option setting changes what follows */
    literal_is("\\x41BCD", 0, "");                 /* an escape with an argument: give up */
    literal_is("\\d+\\.exe", 0, ".exe");          /* escaped punctuation is literal */
    literal_is("[a-z]+Policy", 0, "Policy");
    literal_is("[]x]+Policy", 0, "Policy");        /* ']' first in a class is literal */
    literal_is("PowerShell", 1, "powershell");      /* caseless: folded */
    literal_is("caf\xc3\xa9?s", 0, "caf");          /* a quantified 2-byte character goes whole */
    literal_is("ab", 0, "ab");
    literal_is("a", 0, "");                        /* one byte is not worth an index key */
    literal_is("x{", 0, "");                       /* a brace that is no quantifier: give up */
    literal_is("abc)", 0, "");
}

/* Sigma rules (a folder or a text) and three pattern rules on fields they use, in one rule set. */
static tw_ruleset *sigma_ruleset(const char *dir, const char *text)
{
    tw_limits lim;
    tw_limits_default(&lim);
    tw_sigma *s = NULL;
    tw_ruleset_builder *b = NULL;
    tw_ruleset *rs = NULL;
    tw_error err;
    size_t nerr = 0;
    if (tw_sigma_new(&lim, &s) || tw_ruleset_builder_new(&lim, &b))
        goto out;
    if (dir ? tw_sigma_load_path(s, dir, &nerr, NULL, NULL, &err)
            : tw_sigma_load_text(s, "t.yml", text, strlen(text), &nerr, NULL, NULL, &err))
        goto out;
    const char *pats[] = {"{\"detail\":{\"eventName\":[\"ConsoleLogin\"]}}",
                          "{\"detail\":{\"userIdentity\":{\"type\":[\"Root\"]}}}",
                          "{\"source\":[{\"prefix\":\"aws.s\"}]}"};
    for (size_t i = 0; i < 3; i++) {
        tw_pattern *p = NULL;
        char name[8];
        snprintf(name, sizeof name, "p%zu", i);
        if (tw_pattern_parse(pats[i], strlen(pats[i]), &lim, &p, &err) ||
            tw_ruleset_builder_add(b, name, p, NULL, &err))
            goto out;
    }
    if (!tw_sigma_add(s, b, &nerr, NULL, NULL, &err))
        tw_ruleset_build(b, &rs, &err);
out:
    tw_ruleset_builder_free(b);
    tw_sigma_free(s);
    return rs;
}

/* The gate (pattern/gate.c) walks most events only through the fields that find candidates; a
 * candidate Sigma rule reading more has its event walked again. Over the recorded CloudTrail data,
 * every event must match the same rules as with the whole trie, and most must not be walked twice. */
TW_TEST(the_gate_changes_no_match)
{
    const char *shared = tw_test_shared_dir();
    REQUIRE(shared);
    char dir[1200], data[1200];
    snprintf(dir, sizeof dir, "%s/data/rules/sigma-cloudtrail", shared);
    snprintf(data, sizeof data, "%s/data/cloudtrail/recorded.jsonl.gz", shared);
    tw_ruleset *gated = sigma_ruleset(dir, NULL), *full = sigma_ruleset(dir, NULL);
    REQUIRE(gated && full);
    CHECK(gated->gnodes != NULL);
    tw__ruleset_drop_gate(full);
    tw_matcher *mg = NULL, *mf = NULL;
    tw_event_reader *rd = NULL;
    tw_limits lim;
    tw_limits_default(&lim);
    tw_error err;
    REQUIRE(tw_matcher_new(gated, &mg) == TW_OK && tw_matcher_new(full, &mf) == TW_OK);
    REQUIRE(tw_event_reader_open(data, &lim, &rd, &err) == TW_OK);
    size_t events = 0, sigma_matches = 0, differ = 0;
    for (;;) {
        const char *json;
        size_t len;
        tw_event_where w;
        if (tw_event_reader_next(rd, &json, &len, &w, &err) != TW_OK || !json)
            break;
        tw_match_result a, b;
        tw_error ea, eb;
        tw_status ra = tw_match(mg, json, len, TW_EVENT_AUTO, &a, &ea), rb = tw_match(mf, json, len, TW_EVENT_AUTO, &b, &eb);
        events++;
        int same = ra == rb && (ra || (a.count == b.count && memcmp(a.rules, b.rules, a.count * sizeof *a.rules) == 0));
        if (!same && differ++ < 5)
            printf("# line %lu: %zu rules with the gate, %zu without\n", w.line, a.count, b.count);
        for (size_t i = 0; !ra && i < a.count; i++)
            sigma_matches += a.rules[i] >= 3;
    }
    printf("# %zu events, %zu Sigma matches, %zu walked twice\n", events, sigma_matches, tw__matcher_rewalks(mg));
    CHECK(events == 27608);
    CHECK_EQ_INT((int)differ, 0);
    CHECK(sigma_matches > 900);
    CHECK(tw__matcher_rewalks(mg) * 10 < events);
    CHECK_EQ_INT((int)tw__matcher_rewalks(mf), 0);
    tw_event_reader_free(rd);
    tw_matcher_free(mg);
    tw_matcher_free(mf);
    tw_ruleset_free(gated);
    tw_ruleset_free(full);
}

/* A rule without anchors is a candidate for every event: the gate records its fields instead of
 * walking every event twice; a rule reading a field beyond the gate has its events walked again. */
TW_TEST(a_rule_without_anchors_keeps_the_gate)
{
    const char *text = "title: deep\nname: deep\nlogsource: {product: aws, service: cloudtrail}\n"
                       "detection:\n  sel:\n    eventName: StopLogging\n    requestParameters.name: trail-1\n"
                       "  condition: sel\n---\n"
                       "title: not the cli\nname: nocli\nlogsource: {product: aws, service: cloudtrail}\n"
                       "detection:\n  cli:\n    userAgent|contains: aws-cli\n  condition: not cli\n";
    tw_ruleset *rs = sigma_ruleset(NULL, text);
    REQUIRE(rs);
    CHECK(rs->gnodes != NULL);
    tw_matcher *m = NULL;
    REQUIRE(tw_matcher_new(rs, &m) == TW_OK);
    const char *ev[] = {
        "{\"eventVersion\":\"1.08\",\"eventSource\":\"cloudtrail.amazonaws.com\",\"eventName\":\"StopLogging\","
        "\"userAgent\":\"aws-cli/2.15\",\"requestParameters\":{\"name\":\"trail-1\"}}",
        "{\"eventVersion\":\"1.08\",\"eventSource\":\"cloudtrail.amazonaws.com\",\"eventName\":\"StopLogging\","
        "\"userAgent\":\"console.amazonaws.com\",\"requestParameters\":{\"name\":\"trail-2\"}}",
        "{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\","
        "\"userAgent\":\"console.amazonaws.com\",\"requestParameters\":{\"name\":\"trail-1\"}}",
        "{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\","
        "\"userAgent\":\"aws-cli/2.15\"}",
    };
    const char *want[] = {"deep", "nocli", "nocli", NULL};
    const size_t rewalks[] = {1, 2, 2, 2};
    for (size_t i = 0; i < 4; i++) {
        tw_match_result res;
        tw_error err;
        REQUIRE(tw_match(m, ev[i], strlen(ev[i]), TW_EVENT_AUTO, &res, &err) == TW_OK);
        size_t nsigma = 0;
        const char *name = "";
        for (size_t k = 0; k < res.count; k++)
            if (res.rules[k] >= 3) {
                nsigma++;
                name = tw_ruleset_name(rs, res.rules[k]);
            }
        CHECK_EQ_INT((int)nsigma, want[i] != NULL);
        CHECK_EQ_STR(name, want[i] ? want[i] : "");
        CHECK_EQ_INT((int)tw__matcher_rewalks(m), (int)rewalks[i]);
    }
    tw_matcher_free(m);
    tw_ruleset_free(rs);
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
