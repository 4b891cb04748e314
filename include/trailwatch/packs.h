/*
 * trailwatch/packs.h: rule packs and their tests: every rule's example events, run through the same
 * load, wrap and match as `serve` (`trailwatch rules test`). The pack format: rules/README.md.
 *
 * Ownership: tw_config_load_for_test returns a configuration the caller owns (tw_config_free); the
 * tw_rule_check handed to the callback and its strings are borrowed for the call only.
 */
#ifndef TRAILWATCH_PACKS_H
#define TRAILWATCH_PACKS_H

#include <stddef.h>

#include "trailwatch/error.h"
#include "trailwatch/rulefile.h"
#include "trailwatch/server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Loads a configuration for testing: path (a trailwatch.yml or serverless.yml; NULL for none) and
 * the pack files packs[0..npacks-1]. Unlike tw_config_load, examples are kept, disabled rules are
 * compiled too, and a pack's params take their `example` values (what its examples are written
 * against). Errors are reported as by tw_config_load. */
tw_status tw_config_load_for_test(const char *path, const char *const *packs, size_t npacks, tw_config **out,
                                  size_t *nerrors, tw_report_fn report, void *ctx, tw_error *err);

/* The folder where a pack named without a path ("guard") is looked up: $TRAILWATCH_RULES_DIR when
 * set, else the installed rules folder (PREFIX/share/trailwatch/rules). */
const char *tw_rules_dir(void);

typedef enum tw_check_kind {
    TW_CHECK_MATCH = 0,        /* an example the rule must match */
    TW_CHECK_NO_MATCH = 1,     /* an example the rule must not match */
    TW_CHECK_RULE = 2,         /* the rule itself: a pack rule needs a description, a severity,
                                  references and examples of both kinds */
} tw_check_kind;

typedef struct tw_rule_check {
    const char *rule;          /* the rule's name */
    const char *pack;          /* its pack, NULL for a rule of trailwatch.yml */
    const char *where;         /* "FILE:LINE" of the example (of the rule for TW_CHECK_RULE) */
    tw_check_kind kind;
    size_t index;              /* the example's number in its list, from 1 (0 for TW_CHECK_RULE) */
    int passed;
    const char *message;       /* why it failed: "did not match", "matched", "invalid event: ..."; "" */
} tw_rule_check;

typedef void (*tw_rule_check_fn)(void *ctx, const tw_rule_check *c);

typedef struct tw_rules_test_counts {
    size_t rules;              /* rules looked at */
    size_t untested;           /* rules without examples (trailwatch.yml's; a pack rule fails instead) */
    size_t examples;           /* examples run */
    size_t passed, failed;     /* checks (examples and rules' own checks) */
} tw_rules_test_counts;

/* Runs every example of every rule of cfg (loaded by tw_config_load_for_test), calling fn once per
 * check, passed or not. Returns TW_OK when it could run (failures are in counts), else an error. */
tw_status tw_rules_test(const tw_config *cfg, tw_rule_check_fn fn, void *ctx, tw_rules_test_counts *counts,
                        tw_error *err);

#ifdef __cplusplus
}
#endif
#endif
