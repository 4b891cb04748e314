/*
 * trailwatch/rulefile.h: a rules file for `trailwatch match`: a YAML or JSON mapping of rule names to
 * event patterns ({"name": pattern, ...}), compiled into a rule set.
 *
 * Ownership: the caller owns the returned tw_ruleset (tw_ruleset_free).
 *
 * Every invalid rule is reported, not only the first: err holds the first message and *nerrors the
 * count; report (when not NULL) is called once per error with "FILE:LINE: rule \"NAME\": reason".
 */
#ifndef TRAILWATCH_RULEFILE_H
#define TRAILWATCH_RULEFILE_H

#include <stddef.h>

#include "trailwatch/error.h"
#include "trailwatch/limits.h"
#include "trailwatch/pattern.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*tw_report_fn)(void *ctx, const char *message);

tw_status tw_rulefile_load(const char *path, const tw_limits *lim, tw_ruleset **out, size_t *nerrors,
                           tw_report_fn report, void *ctx, tw_error *err);

/* The same rules added to a builder (beside other rules, Sigma ones say); *nerrors is added to. */
tw_status tw_rulefile_add(const char *path, const tw_limits *lim, tw_ruleset_builder *b, size_t *nerrors,
                          tw_report_fn report, void *ctx, tw_error *err);

/* Reads a whole file (at most max bytes) into a malloc'd, NUL-terminated buffer the caller frees. */
tw_status tw_read_file(const char *path, size_t max, char **out, size_t *len, tw_error *err);

#ifdef __cplusplus
}
#endif
#endif
