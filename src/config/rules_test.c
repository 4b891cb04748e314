/* config/rules_test.c: tw_rules_test: every rule's example events through wrap + tw__config_match,
 * the path `serve` takes, and the checks a pack rule owes its readers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "config/match.h"
#include "trailwatch/event.h"
#include "trailwatch/packs.h"

typedef struct run {
    tw_rule_check_fn fn;
    void *ctx;
    tw_rules_test_counts *c;
} run;

static void emit(run *t, const tw_rule_cfg *r, const char *where, tw_check_kind kind, size_t index,
                 const char *message)
{
    tw_rule_check c = {r->name, r->pack, where, kind, index, message == NULL, message ? message : ""};
    if (message)
        t->c->failed++;
    else
        t->c->passed++;
    if (t->fn)
        t->fn(t->ctx, &c);
}

/* A pack rule is documentation as much as a pattern: say what is missing. */
static void check_rule(run *t, const tw_rule_cfg *r)
{
    char msg[256] = "";
    size_t match = 0, no_match = 0;
    for (uint32_t i = 0; i < r->nexamples; i++)
        r->examples[i].want_match ? match++ : no_match++;
    if (!r->pack)
        return;
    if (!*r->description)
        snprintf(msg, sizeof msg, "no description");
    else if (!r->severity_given)
        snprintf(msg, sizeof msg, "no severity");
    else if (!r->nrefs)
        snprintf(msg, sizeof msg, "no references");
    else if (!match || !no_match)
        snprintf(msg, sizeof msg, "needs examples that must match and examples that must not (examples.%s is empty)",
                 match ? "no_match" : "match");
    emit(t, r, r->where, TW_CHECK_RULE, 0, *msg ? msg : NULL);
}

/* "FILE:LINE" of an example: the rule's file with the example's line. */
static void example_where(const tw_rule_cfg *r, const tw_rule_example *ex, char *out, size_t size)
{
    const char *colon = strrchr(r->where, ':');
    int flen = colon ? (int)(colon - r->where) : (int)strlen(r->where);
    snprintf(out, size, "%.*s:%u", flen, r->where, ex->line);
}

static tw_status one_example(run *t, const tw_config *cfg, tw_matcher *m, uint32_t set_index,
                             const tw_rule_cfg *r, const tw_rule_example *ex, size_t index, tw_error *err)
{
    char where[600], msg[TW_ERROR_MSG_MAX + 64];
    example_where(r, ex, where, sizeof where);
    t->c->examples++;
    const char *text = ex->json;
    size_t len = ex->len;
    char *wrapped = NULL;
    tw_error e;
    tw_status rc = TW_OK;
    if (tw_event_is_cloudtrail_record(text, len)) {
        if ((rc = tw_event_wrap_cloudtrail(text, len, &wrapped, &len, &e))) {
            if (rc == TW_ENOMEM)
                return tw__err(err, rc, "out of memory");
            snprintf(msg, sizeof msg, "invalid CloudTrail record: %s", e.msg);
            emit(t, r, where, ex->want_match ? TW_CHECK_MATCH : TW_CHECK_NO_MATCH, index, msg);
            return TW_OK;
        }
        text = wrapped;
    }
    tw_match_result mr;
    if ((rc = tw__config_match(cfg, m, text, len, &mr, &e))) {
        free(wrapped);
        if (rc == TW_ENOMEM)
            return tw__err(err, rc, "out of memory");
        snprintf(msg, sizeof msg, "invalid event: %s", e.msg);
        emit(t, r, where, ex->want_match ? TW_CHECK_MATCH : TW_CHECK_NO_MATCH, index, msg);
        return TW_OK;
    }
    int matched = 0;
    for (size_t i = 0; i < mr.count && !matched; i++)
        matched = mr.rules[i] == set_index;
    free(wrapped);
    const char *why = NULL;
    if (ex->want_match && !matched)
        why = "did not match";
    else if (!ex->want_match && matched)
        why = "matched";
    emit(t, r, where, ex->want_match ? TW_CHECK_MATCH : TW_CHECK_NO_MATCH, index, why);
    return TW_OK;
}

tw_status tw_rules_test(const tw_config *cfg, tw_rule_check_fn fn, void *ctx, tw_rules_test_counts *counts,
                        tw_error *err)
{
    tw_rules_test_counts local;
    if (!counts)
        counts = &local;
    memset(counts, 0, sizeof *counts);
    run t = {fn, ctx, counts};
    tw_matcher *m = NULL;
    size_t nset = cfg->ruleset ? tw_ruleset_size(cfg->ruleset) : 0;
    /* rule index -> rule set index (UINT32_MAX: not in the set: its pattern was not compiled) */
    uint32_t *set_of = calloc(cfg->nrules + 1, sizeof *set_of);
    tw_status rc = TW_OK;
    if (!set_of || (cfg->ruleset && tw_matcher_new(cfg->ruleset, &m))) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < cfg->nrules; i++)
        set_of[i] = UINT32_MAX;
    for (size_t i = 0; i < nset; i++)
        set_of[cfg->ruleset_rule[i]] = (uint32_t)i;
    for (uint32_t i = 0; i < cfg->nrules && !rc; i++) {
        const tw_rule_cfg *r = &cfg->rules[i];
        counts->rules++;
        check_rule(&t, r);
        if (!r->nexamples) {
            counts->untested += r->pack == NULL;
            continue;
        }
        size_t nth[2] = {0, 0};
        for (uint32_t k = 0; k < r->nexamples && !rc; k++) {
            const tw_rule_example *ex = &r->examples[k];
            size_t index = ++nth[ex->want_match ? 0 : 1];
            if (set_of[i] == UINT32_MAX || !m) {
                char where[600];
                example_where(r, ex, where, sizeof where);
                counts->examples++;
                emit(&t, r, where, ex->want_match ? TW_CHECK_MATCH : TW_CHECK_NO_MATCH, index,
                     "the rule is not in the rule set");
                continue;
            }
            rc = one_example(&t, cfg, m, set_of[i], r, ex, index, err);
        }
    }
out:
    tw_matcher_free(m);
    free(set_of);
    return rc;
}
