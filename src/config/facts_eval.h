/*
 * config/facts_eval.h: the values an alert's templates see besides the event: the rule's facts
 * (docs/FACTS.md) and enrichment results, as one "extra" object (internal).
 *
 * Ownership: everything is built in the caller's document; the result lives as long as it.
 *
 * The extra object is {"enrichment": {...}, "facts": {NAME: value, ...}}: input transformers (and
 * facts) resolve `$.facts.NAME` and `$.enrichment.NAME` in it before looking in the event.
 */
#ifndef TW_CONFIG_FACTS_EVAL_H
#define TW_CONFIG_FACTS_EVAL_H

#include "config/config_int.h"

/* Builds the extra object for one alert of rule r on event (enrichment: NULL when none). *extra is
 * NULL when there is nothing to add. A fact that fails (a cap) is null and the first failure is
 * returned (the alert is still rendered, with *extra set); TW_ENOMEM leaves *extra NULL. */
tw_status tw__config_rule_extra(const tw_config *cfg, const tw_rule_cfg *r, const tw_json *event,
                                const tw_json *enrichment, tw_json_doc *doc, const tw_json **extra, tw_error *err);

#endif
