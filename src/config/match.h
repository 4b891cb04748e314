/*
 * config/match.h: which rules of a configuration an event matches: the one question the engine and
 * `rules test` both ask (internal).
 *
 * Ownership: the result points into the matcher (valid until its next use), as tw_match's does.
 *
 * Everything that decides whether a rule matches sits behind this function (today the pattern rule
 * set; rule kinds added later hook in here), so that what `rules test` checks is what `serve` does.
 */
#ifndef TW_CONFIG_MATCH_H
#define TW_CONFIG_MATCH_H

#include <stddef.h>

#include "config/config_int.h"
#include "trailwatch/pattern.h"

/* Matches one EventBridge event (JSON text; a raw CloudTrail record must be wrapped first) against
 * cfg's rule set with m (a matcher of cfg->ruleset). res->rules are rule set indexes: the rule is
 * cfg->rules[cfg->ruleset_rule[i]]. */
tw_status tw__config_match(const tw_config *cfg, tw_matcher *m, const char *event, size_t len,
                           tw_match_result *res, tw_error *err);

#endif
