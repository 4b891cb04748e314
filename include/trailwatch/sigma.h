/*
 * trailwatch/sigma.h: Sigma rules (v2) run natively: load detection and correlation rules from YAML,
 * compile the detections into a tw_ruleset beside event patterns, correlate their matches over time,
 * lint them.
 *
 * Ownership: the caller owns a tw_sigma (tw_sigma_free) and a tw_correlator (tw_correlator_free);
 * rule information and hits point into them (valid until they are freed, hits during the callback).
 * A tw_correlator reads its tw_sigma and tw_ruleset: both must outlive it.
 *
 * Semantics (docs/SIGMA.md; ../shared/reference/sigma.md): logsource product aws, service cloudtrail;
 * a field `a.b` is read in a raw CloudTrail record and as `detail.a.b` of an EventBridge delivery;
 * strings match case-insensitively (ASCII and Unicode simple folding) unless `|cased`; `*` and `?`
 * are wildcards; numbers and booleans also compare by their JSON text; an array matches by any
 * element and an object by any value below it; `null` means absent or JSON null; regexes are PCRE2.
 * A rule using anything trailwatch cannot evaluate exactly is refused with the reason and the line,
 * never loaded in part.
 *
 * Threads: a tw_sigma is built by one thread, then read-only. A tw_correlator may be fed from any
 * number of threads (it locks).
 */
#ifndef TRAILWATCH_SIGMA_H
#define TRAILWATCH_SIGMA_H

#include <stddef.h>
#include <stdint.h>

#include "trailwatch/error.h"
#include "trailwatch/json.h"
#include "trailwatch/limits.h"
#include "trailwatch/pattern.h"
#include "trailwatch/rulefile.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tw_sigma tw_sigma;

typedef enum tw_sigma_kind {
    TW_SIGMA_DETECTION = 0,
    TW_SIGMA_CORRELATION = 1,
} tw_sigma_kind;

typedef struct tw_sigma_rule_info {
    tw_sigma_kind kind;
    const char *name;            /* unique: the rule's `name`, else its file's stem (stem-N for the
                                    N-th document of a file when earlier ones took the stem) */
    const char *title, *id, *status, *description, *author, *date;   /* "" when absent */
    const char *level;           /* informational, low, medium, high, critical ("" when absent) */
    const char *severity;        /* trailwatch's: info, low, medium (default), high, critical */
    const char *file;
    unsigned line;               /* where its document starts */
    size_t ntags, nreferences;
    const char *const *tags;
    const char *const *references;
    int alerts;                  /* alerts on its own (not only an input of generate:false correlations) */
    int refused;                 /* dropped while linking (a correlation over a missing rule, a cycle) */
    long ruleset_index;          /* detection: its index in the rule set it was added to, else -1 */
    const tw_json *doc;          /* the rule's YAML document as parsed: attributes trailwatch adds to
                                    Sigma's (`examples` for `rules test`) are read from it */
    /* correlations */
    const char *corr_type;       /* event_count, value_count, value_sum, value_avg, temporal, temporal_ordered */
    int64_t timespan_ms;
} tw_sigma_rule_info;

tw_status tw_sigma_new(const tw_limits *lim, tw_sigma **out);
void tw_sigma_free(tw_sigma *s);

/* Placeholders for `|expand`: an object {"Name": ["value", ...] or "value"} (copied). A rule naming
 * a placeholder the table does not hold is refused. */
tw_status tw_sigma_set_placeholders(tw_sigma *s, const tw_json *table, tw_error *err);

/* Loads a rule file (every document of it) or every *.yml / *.yaml file below a folder (sorted,
 * recursively). Each refused rule is reported as "FILE:LINE: rule \"TITLE\": reason" and counted in
 * *nerrors; the others are kept. Returns an error only when nothing could be read (err says why). */
tw_status tw_sigma_load_path(tw_sigma *s, const char *path, size_t *nerrors, tw_report_fn report, void *ctx,
                             tw_error *err);
/* The same from text; name stands for the file in messages and rule names. */
tw_status tw_sigma_load_text(tw_sigma *s, const char *name, const char *text, size_t len, size_t *nerrors,
                             tw_report_fn report, void *ctx, tw_error *err);

size_t tw_sigma_count(const tw_sigma *s);
const tw_sigma_rule_info *tw_sigma_rule(const tw_sigma *s, size_t i);

/* Links the correlations (references by id or name, chains, cycles, aliases; refused ones are
 * reported and dropped with the correlations that build on them) and adds every detection rule to
 * the builder under its name. Call once, after loading. */
tw_status tw_sigma_add(tw_sigma *s, tw_ruleset_builder *b, size_t *nerrors, tw_report_fn report, void *ctx,
                       tw_error *err);

/* The Sigma rule (index for tw_sigma_rule) a rule-set index stands for, -1 when it is not one. */
long tw_sigma_of_ruleset(const tw_sigma *s, size_t ruleset_index);

/* ---- lint ---- */

/* Checks loaded rules for likely mistakes: fields CloudTrail never has (`status`), a `|contains`
 * value that looks like a field name (a missing `|fieldref`), values whose case differs from what
 * CloudTrail writes (`MFAUsed: 'NO'`), and similar. Calls report once per finding with
 * "FILE:LINE: rule \"TITLE\": warning: ..." and returns the count. */
size_t tw_sigma_lint(const tw_sigma *s, tw_report_fn report, void *ctx);

/* ---- correlations ---- */

typedef struct tw_correlator tw_correlator;

typedef struct tw_correlator_opts {
    int64_t lateness_ms;         /* how far behind the newest eventTime an event may arrive (15 min) */
    size_t max_groups;           /* group-by states kept; the least recently used are evicted (100,000) */
    size_t max_group_events;     /* events one group keeps within its timespan (1,000) */
    const char *state_path;      /* SQLite file holding the state across restarts; NULL: memory only */
    int batch;                   /* 1: buffer every input and process it in eventTime order in
                                    tw_correlator_finish (files, replays); 0: streaming with lateness */
} tw_correlator_opts;

void tw_correlator_opts_default(tw_correlator_opts *o);

typedef struct tw_correlation_hit {
    size_t rule;                 /* the correlation, for tw_sigma_rule */
    const tw_sigma_rule_info *info;
    int64_t first_ms, last_ms;   /* eventTime of the first and last event of the window */
    double value;                /* the count, distinct values, sum or average that met the condition */
    size_t ngroup;
    const char *const *group_names;
    const char *const *group_values;   /* NULL: the field was absent */
    size_t nevents;
    const char *const *event_ids;      /* ids of (up to 16 of) the events that made it */
    const char *json;            /* the hit as an EventBridge-shaped event, to alert with */
    size_t json_len;
} tw_correlation_hit;

typedef void (*tw_correlation_fn)(void *ctx, const tw_correlation_hit *hit);

tw_status tw_correlator_new(const tw_sigma *s, const tw_ruleset *rs, const tw_correlator_opts *o,
                            tw_correlator **out, tw_error *err);
void tw_correlator_free(tw_correlator *c);

/* Feeds one event's matches (m and res from tw_match on the correlator's rule set). now_ms stands in
 * for the eventTime of events without one. Hits are reported through fn before it returns. */
tw_status tw_correlator_feed(tw_correlator *c, tw_matcher *m, const tw_match_result *res, int64_t now_ms,
                             tw_correlation_fn fn, void *ctx, tw_error *err);
/* The same, in two steps, so that what an event does to the state can wait for the commit of its
 * alerts (serve): prepare reads the match (m still holds it) into *in (allocated on first use; NULL
 * when nothing correlates it; free it with tw_correlator_input_free) without touching a correlator;
 * apply feeds it to c, whose rules may be another load of the same files (after a reload: input of a
 * correlation that changed or is gone is dropped). */
typedef struct tw_correlator_input tw_correlator_input;
tw_status tw_correlator_prepare(const tw_sigma *s, tw_matcher *m, const tw_match_result *res, int64_t now_ms,
                                tw_correlator_input **in, tw_error *err);
tw_status tw_correlator_apply(tw_correlator *c, tw_correlator_input *in, tw_correlation_fn fn, void *ctx,
                              tw_error *err);
void tw_correlator_input_free(tw_correlator_input *in);

/* Transactions: begin, then feed/apply/tick, then commit (keep what they did) or rollback (undo it: the
 * state, newest eventTime and counters are as at begin, as if the events had never come). One
 * transaction at a time: the caller serialises them; only its thread feeds while one is open. A save
 * during a transaction writes its changes. Rollback fails only when out of memory kept it from
 * restoring everything. */
void tw_correlator_begin(tw_correlator *c);
void tw_correlator_commit(tw_correlator *c);
tw_status tw_correlator_rollback(tw_correlator *c, tw_error *err);

/* Closes windows that ended: conditions with an upper bound (lt, lte, eq) are decided at the end of
 * their window, once the newest eventTime (or now_ms, when later than it plus the lateness) passed it. */
tw_status tw_correlator_tick(tw_correlator *c, int64_t now_ms, tw_correlation_fn fn, void *ctx, tw_error *err);
/* End of input: processes a batch, then closes every open window. */
tw_status tw_correlator_finish(tw_correlator *c, tw_correlation_fn fn, void *ctx, tw_error *err);

/* Writes the state changed since the last save to opts.state_path (one transaction); a no-op without
 * one. tw_correlator_free saves too. */
tw_status tw_correlator_save(tw_correlator *c, tw_error *err);

typedef struct tw_correlator_stats {
    size_t groups;               /* states held now */
    uint64_t events;             /* inputs taken */
    uint64_t late;               /* inputs dropped: older than the newest eventTime minus the lateness */
    uint64_t evicted;            /* states dropped to stay under max_groups (or events over max_group_events) */
    uint64_t hits;
    uint64_t duplicates;         /* inputs dropped: the same event (rule, eventTime, id) was taken already */
} tw_correlator_stats;

void tw_correlator_stats_get(tw_correlator *c, tw_correlator_stats *out);

/* ---- Sigma files on their own, one event at a time (query --sigma, replay --sigma) ---- */

/* Rule files compiled into a rule set of their own, with a matcher and (correlate) a batch-mode
 * correlator: the caller owns it (tw_sigma_eval_free); names handed out are borrowed from it. */
typedef struct tw_sigma_eval tw_sigma_eval;

/* Loads paths (files or folders), refusals reported as tw_sigma_load_path does and counted in
 * *nrefused (those rules are left out); placeholders: the `|expand` table or NULL. Fails when a path
 * cannot be read or nothing loads. */
tw_status tw_sigma_eval_new(const char *const *paths, size_t npaths, const tw_json *placeholders,
                            const tw_limits *lim, int correlate, tw_sigma_eval **out, size_t *nrefused,
                            tw_report_fn report, void *ctx, tw_error *err);
void tw_sigma_eval_free(tw_sigma_eval *e);

/* Matches one event (a raw CloudTrail record or an EventBridge envelope): *nmatched detection rules,
 * their names in *names (valid until the next call). Correlations take the event when enabled. */
tw_status tw_sigma_eval_event(tw_sigma_eval *e, const char *json, size_t len, size_t *nmatched,
                              const char *const **names, tw_error *err);

/* End of input: the correlation hits, in eventTime order (nothing without correlations). */
tw_status tw_sigma_eval_finish(tw_sigma_eval *e, tw_correlation_fn fn, void *ctx, tw_error *err);

/* The loaded rules (for tw_sigma_rule, tw_sigma_count). */
const tw_sigma *tw_sigma_eval_rules(const tw_sigma_eval *e);

#ifdef __cplusplus
}
#endif
#endif
