/* config/match.c: tw__config_match: the rules of a configuration an event matches; tw_config_matcher,
 * the same question asked through the public API (`trailwatch replay`'s dry run). */
#include "config/match.h"

#include <stdlib.h>

#include "common/err.h"
#include "trailwatch/event.h"
#include "trailwatch/server.h"

tw_status tw__config_match(const tw_config *cfg, tw_matcher *m, const char *event, size_t len,
                           tw_match_result *res, tw_error *err)
{
    (void)cfg;
    return tw_match(m, event, len, TW_EVENT_ENVELOPE, res, err);
}

/* ---- the public matcher of a configuration (a replay's dry run) ---- */

struct tw_config_matcher {
    const tw_config *cfg;
    tw_matcher *m;
};

tw_status tw_config_matcher_new(const tw_config *cfg, tw_config_matcher **out, tw_error *err)
{
    *out = NULL;
    tw_config_matcher *cm = calloc(1, sizeof *cm);
    if (!cm)
        return tw__err(err, TW_ENOMEM, "out of memory");
    cm->cfg = cfg;
    if (cfg->ruleset && tw_matcher_new(cfg->ruleset, &cm->m)) {
        free(cm);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    *out = cm;
    return TW_OK;
}

void tw_config_matcher_free(tw_config_matcher *cm)
{
    if (!cm)
        return;
    tw_matcher_free(cm->m);
    free(cm);
}

tw_status tw_config_matcher_run(tw_config_matcher *cm, const char *json, size_t len, tw_rule_name_fn fn, void *ctx,
                                tw_error *err)
{
    const tw_config *cfg = cm->cfg;
    if (len > cfg->lim.event_max)
        return tw__err(err, TW_ETOOBIG, "event of %zu bytes exceeds the limit of %zu bytes", len, cfg->lim.event_max);
    if (!cm->m)
        return TW_OK;              /* no enabled rule */
    char *wrapped = NULL;
    size_t wl = 0;
    if (tw_event_is_cloudtrail_record(json, len)) {
        tw_status rc = tw_event_wrap_cloudtrail(json, len, &wrapped, &wl, err);
        if (rc)
            return rc;
        json = wrapped;
        len = wl;
    }
    tw_match_result mr;
    tw_status rc = tw__config_match(cfg, cm->m, json, len, &mr, err);
    for (size_t i = 0; !rc && i < mr.count; i++)
        fn(ctx, cfg->rules[cfg->ruleset_rule[mr.rules[i]]].name);
    free(wrapped);
    return rc;
}
