/* sigma/eval.c: Sigma files compiled on their own and evaluated one event at a time, for commands
 * that read events from elsewhere than the live stream (query --sigma, replay --sigma). */
#include <stdlib.h>

#include "common/err.h"
#include "trailwatch/sigma.h"

struct tw_sigma_eval {
    tw_sigma *s;
    tw_ruleset *rs;
    tw_matcher *m;
    tw_correlator *corr;         /* NULL: not asked for, or no correlations */
    const char **names;          /* per match: the rules' names */
    size_t cap;
};

void tw_sigma_eval_free(tw_sigma_eval *e)
{
    if (!e)
        return;
    tw_correlator_free(e->corr);
    tw_matcher_free(e->m);
    tw_ruleset_free(e->rs);
    tw_sigma_free(e->s);
    free(e->names);
    free(e);
}

tw_status tw_sigma_eval_new(const char *const *paths, size_t npaths, const tw_json *placeholders,
                            const tw_limits *lim, int correlate, tw_sigma_eval **out, size_t *nrefused,
                            tw_report_fn report, void *ctx, tw_error *err)
{
    size_t dummy = 0;
    if (!nrefused)
        nrefused = &dummy;
    *out = NULL;
    tw_ruleset_builder *b = NULL;
    tw_sigma_eval *e = calloc(1, sizeof *e);
    tw_status rc = TW_OK;
    if (!e || tw_sigma_new(lim, &e->s) || tw_ruleset_builder_new(lim, &b)) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto out;
    }
    if (placeholders && (rc = tw_sigma_set_placeholders(e->s, placeholders, err)))
        goto out;
    for (size_t i = 0; i < npaths; i++)
        if ((rc = tw_sigma_load_path(e->s, paths[i], nrefused, report, ctx, err)))
            goto out;
    if ((rc = tw_sigma_add(e->s, b, nrefused, report, ctx, err)) || (rc = tw_ruleset_build(b, &e->rs, err)))
        goto out;
    size_t ndet = 0, ncorr = 0;
    for (size_t i = 0; i < tw_sigma_count(e->s); i++) {
        const tw_sigma_rule_info *r = tw_sigma_rule(e->s, i);
        if (r->refused)
            continue;
        ndet += r->kind == TW_SIGMA_DETECTION;
        ncorr += r->kind == TW_SIGMA_CORRELATION;
    }
    if (!ndet) {
        rc = tw__err(err, TW_EINVAL, "no Sigma detection rule could be loaded");
        goto out;
    }
    if ((rc = tw_matcher_new(e->rs, &e->m))) {
        rc = tw__err(err, rc, "out of memory");
        goto out;
    }
    if (correlate && ncorr) {
        tw_correlator_opts o;
        tw_correlator_opts_default(&o);
        o.batch = 1;   /* archived events come in any order: correlated in eventTime order at the end */
        if ((rc = tw_correlator_new(e->s, e->rs, &o, &e->corr, err)))
            goto out;
    }
    *out = e;
    e = NULL;
out:
    tw_ruleset_builder_free(b);
    tw_sigma_eval_free(e);
    return rc;
}

tw_status tw_sigma_eval_event(tw_sigma_eval *e, const char *json, size_t len, size_t *nmatched,
                              const char *const **names, tw_error *err)
{
    tw_match_result res;
    *nmatched = 0;
    *names = NULL;
    tw_status rc = tw_match(e->m, json, len, TW_EVENT_AUTO, &res, err);
    if (rc)
        return rc;
    if (res.count > e->cap) {
        const char **n = realloc(e->names, res.count * sizeof *n);
        if (!n)
            return tw__err(err, TW_ENOMEM, "out of memory");
        e->names = n;
        e->cap = res.count;
    }
    for (size_t i = 0; i < res.count; i++)
        e->names[i] = tw_ruleset_name(e->rs, res.rules[i]);
    *nmatched = res.count;
    *names = e->names;
    if (e->corr && res.count)
        return tw_correlator_feed(e->corr, e->m, &res, 0, NULL, NULL, err);
    return TW_OK;
}

tw_status tw_sigma_eval_finish(tw_sigma_eval *e, tw_correlation_fn fn, void *ctx, tw_error *err)
{
    return e->corr ? tw_correlator_finish(e->corr, fn, ctx, err) : TW_OK;
}

const tw_sigma *tw_sigma_eval_rules(const tw_sigma_eval *e) { return e->s; }
