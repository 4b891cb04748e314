/*
 * config/load_int.h: the state of one tw_config_load and the helpers its parts share (internal to
 * src/config: config.c, config_util.c, env.c, config_targets.c, config_rules.c, serverless.c,
 * sls_vars.c).
 *
 * Ownership: the loader owns every document it parses or builds (freed when the load ends), the
 * pending error messages and target references; what it adds to ld->cfg belongs to the tw_config
 * (strings in cfg->arena, arrays malloc'd, released by tw_config_free).
 *
 * Errors are collected, not returned: every helper reports through tw__cl_err and the load goes on
 * where it can; tw_config_load sorts the messages by file and line and reports them all at the end.
 * Helpers that read a value return 1 (present and valid), 0 (absent) or -1 (invalid, reported).
 *
 * Secrets: a string that came from the environment (${VAR}, ${env:VAR}) is never quoted in a
 * message (tw__cl_shown), because it may be a webhook URL or a key.
 */
#ifndef TW_CONFIG_LOAD_INT_H
#define TW_CONFIG_LOAD_INT_H

#include <stdint.h>

#include "common/buf.h"
#include "config/config_int.h"
#include "trailwatch/json.h"

/* Rule and target names: [A-Za-z0-9._-]{1,64}, EventBridge's rule name alphabet. */
#define TW_CFG_NAME_MAX 64
/* A rule's references, tags and examples, a pack's params and `disable` list: written by people, a
 * few each; the cap keeps a generated or hostile file from growing the configuration without end. */
#define TW_CFG_LIST_MAX 1000

typedef struct tw_cfg_ld {
    tw_config *cfg;
    const char *file;           /* the file being read, as messages show it */
    uint32_t file_no;           /* its order among the files read (messages sort by it) */
    uint32_t nfiles;
    char *dir_shown;            /* the main file's folder as given ("." for none): for messages */
    char *dir_abs;              /* ... and absolute: relative paths in settings resolve against it */
    int oom;                    /* an allocation failed: the load fails with TW_ENOMEM */
    tw_buf msgs;                /* cl_msg[]: errors so far */
    uint32_t seq;
    tw_buf subst;               /* const tw_json *[]: strings that took a value from the environment */
    tw_buf tainted;             /* const tw_json *[]: strings whose substitution failed (reported) */
    tw_buf docs;                /* tw_json_doc *[]: every document of this load, freed at the end */
    tw_buf refs;                /* cl_ref[]: rule -> target references, resolved at the end */
    tw_buf patterns;            /* tw_pattern *[]: per rule, NULL when invalid or disabled */
    tw_buf notes;               /* lines for tw_config_describe (cfg->notes) */
    tw_buf warnings;            /* lines for cfg->warnings */
    uint32_t rules_cap, targets_cap;
    int test;                   /* loading for `rules test`: examples kept, every rule compiled and
                                   matched (enabled or not), packs take their params' examples and
                                   need no targets */
    const char *ref_label;      /* set while a pack's bindings are added: their cl_ref label */
    int sigma_warn;             /* sigma.on_refused: warn: refused Sigma rules are warnings */
    tw_buf bad_targets;         /* cl_bad_target[]: targets defined with errors, so that a rule naming
                                   one is told so rather than "unknown target" */
} tw_cfg_ld;

typedef struct cl_ref {         /* a binding whose target is named but not yet looked up */
    uint32_t rule, binding;
    const char *name;           /* in cfg->arena */
    const char *file;           /* in cfg->arena */
    uint32_t file_no;
    unsigned line;
    const char *label;          /* message prefix ("packs[0]: "), NULL: `rule "NAME": ` */
} cl_ref;

/* ---- messages (config_util.c) ---- */

/* Records "FILE:LINE: <fmt>" (just "FILE: <fmt>" when line is 0) for the current file. */
void tw__cl_err(tw_cfg_ld *ld, unsigned line, tw_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records text as it is (already "FILE:LINE: ..."): what another module reported. */
void tw__cl_err_text(tw_cfg_ld *ld, tw_status code, const char *text);
/* Records a library error e under "FILE:LINE: <prefix>" (prefix may be ""). */
void tw__cl_err_from(tw_cfg_ld *ld, unsigned line, const char *prefix, const tw_error *e);
size_t tw__cl_nerrors(const tw_cfg_ld *ld);
/* Keeps a document until the load ends (frees it and sets ld->oom when that fails). */
tw_json_doc *tw__cl_keep(tw_cfg_ld *ld, tw_json_doc *doc);
tw_json_doc *tw__cl_new_doc(tw_cfg_ld *ld);

/* A string in cfg->arena; on allocation failure sets ld->oom and returns a static "". */
char *tw__cl_strdup(tw_cfg_ld *ld, const char *s);
char *tw__cl_strndup(tw_cfg_ld *ld, const char *s, size_t n);
char *tw__cl_printf(tw_cfg_ld *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* p when absolute, else dir/p, in cfg->arena. */
char *tw__cl_join(tw_cfg_ld *ld, const char *dir, const char *p);

/* Reads path and parses it as YAML (its syntax errors are reported against ld->file). NULL when it
 * failed: read_err->code is then set when the file could not be read at all (not reported). */
const tw_json *tw__cl_read_yaml(tw_cfg_ld *ld, const char *path, tw_error *read_err);
/* Sorts, reports and frees the messages (config_util.c); returns how many were reported. */
size_t tw__cl_flush_msgs(tw_cfg_ld *ld, tw_report_fn report, void *ctx, tw_error *first);

/* ---- reading values (config_util.c) ---- */

/* The name of key inside ctx for messages: ctx "server", key "listen" -> "server.listen"; a ctx
 * ending in ": " (a label such as `rule "x": `) is followed by key directly. */
const char *tw__cl_path(char *buf, size_t size, const char *ctx, const char *key);
/* ctx as a message prefix: "server" -> "server: ", `rule "x": ` as it is, "" as it is. */
const char *tw__cl_label(char *buf, size_t size, const char *ctx);
/* A value quoted for a message, or "(a value from the environment)" when it came from there. */
const char *tw__cl_shown(tw_cfg_ld *ld, const tw_json *v, char *buf, size_t size);
int tw__cl_substituted(const tw_cfg_ld *ld, const tw_json *v);
/* 1 when some string under v failed substitution (already reported: skip dependent checks). */
int tw__cl_tainted(const tw_cfg_ld *ld, const tw_json *v);

/* Checks that obj (a mapping, else reported) has only the known keys (NULL-terminated list) and
 * none twice; unknown keys get a "did you mean" when a known one is close. Returns -1 when obj is
 * not a mapping, else 0 (also after reporting unknown keys: the known ones are still read). */
int tw__cl_keys(tw_cfg_ld *ld, const tw_json *obj, const char *ctx, const char *const *known);
/* The known word closest to w (edit distance, '-' = '_', any case), NULL when none is close. */
const char *tw__cl_closest(const char *w, const char *const *known, size_t n);

int tw__cl_is_object(tw_cfg_ld *ld, const tw_json *v, const char *name);
int tw__cl_vstring(tw_cfg_ld *ld, const tw_json *v, const char *name, int nonempty, const char **out);
int tw__cl_vbool(tw_cfg_ld *ld, const tw_json *v, const char *name, int *out);
int tw__cl_vuint(tw_cfg_ld *ld, const tw_json *v, const char *name, uint64_t min, uint64_t max, uint64_t *out);
int tw__cl_vnumber(tw_cfg_ld *ld, const tw_json *v, const char *name, double min, double max, double *out);
int tw__cl_vduration(tw_cfg_ld *ld, const tw_json *v, const char *name, int64_t min_ms, int64_t max_ms,
                     int64_t *out);
int tw__cl_vsize(tw_cfg_ld *ld, const tw_json *v, const char *name, size_t min, size_t max, size_t *out);
/* The same for obj's member key (absent or null: 0). */
int tw__cl_string(tw_cfg_ld *ld, const tw_json *obj, const char *ctx, const char *key, int nonempty,
                  const char **out);
int tw__cl_bool(tw_cfg_ld *ld, const tw_json *obj, const char *ctx, const char *key, int *out);
int tw__cl_uint(tw_cfg_ld *ld, const tw_json *obj, const char *ctx, const char *key, uint64_t min,
                uint64_t max, uint64_t *out);
int tw__cl_number(tw_cfg_ld *ld, const tw_json *obj, const char *ctx, const char *key, double min,
                  double max, double *out);
int tw__cl_duration(tw_cfg_ld *ld, const tw_json *obj, const char *ctx, const char *key, int64_t min_ms,
                    int64_t max_ms, int64_t *out);
int tw__cl_size(tw_cfg_ld *ld, const tw_json *obj, const char *ctx, const char *key, size_t min,
                size_t max, size_t *out);

/* 1 when name is a valid rule or target name ([A-Za-z0-9._-]{1,64}). */
int tw__cl_valid_name(const char *name);
/* "10s", "1h30m", "250ms" for messages. */
const char *tw__cl_fmt_duration(int64_t ms, char *buf, size_t size);
/* Parses "256k", "1m", "262144" (binary units; optional b / ib). 1 on success. */
int tw__cl_parse_size(const char *s, size_t *out);

/* ---- ${VAR} substitution (env.c) ---- */

/* A copy of v in doc with ${VAR}, ${VAR:-default} replaced in every string value (keys are left
 * alone) and $${ turned into ${; errors reported at the string's line. NULL when out of memory. */
tw_json *tw__cl_subst_tree(tw_cfg_ld *ld, tw_json_doc *doc, const tw_json *v);
/* Marks v as holding text from the environment (never quoted in messages). */
void tw__cl_mark(tw_cfg_ld *ld, tw_buf *set, const tw_json *v);

typedef struct cl_bad_target {
    const char *name;           /* in cfg->arena */
    const char *where;          /* "FILE:LINE" of its definition */
} cl_bad_target;

/* ---- dashboard: (config_dashboard.c) ---- */

void tw__cl_dashboard_defaults(tw_cfg_ld *ld);
void tw__cl_dashboard(tw_cfg_ld *ld, const tw_json *v);

/* ---- archive: (config_archive.c) ---- */

void tw__cl_archive_defaults(tw_cfg_ld *ld);
void tw__cl_archive(tw_cfg_ld *ld, const tw_json *v);

/* ---- targets (config_targets.c) ---- */

/* The defaults of a kind: rate (slack 1/s burst 3, discord 0.5/s burst 5), timeout, retry. */
void tw__cl_target_defaults(const char *kind, tw_target_cfg *t);
/* Adds a target: configures the kind with settings (the kind-specific keys only). line: where the
 * target is defined. Returns its index, or -1 when it could not be added (reported). */
int tw__cl_add_target(tw_cfg_ld *ld, const char *name, const char *kind, const tw_json *settings,
                      const tw_target_cfg *generic, unsigned line);
/* The `targets:` mapping of trailwatch.yml. */
void tw__cl_targets(tw_cfg_ld *ld, const tw_json *targets);

/* ---- rules (config_rules.c) ---- */

typedef struct cl_rule_in {     /* one rule, whichever file it comes from */
    const char *name, *description, *severity;
    int enabled;
    int no_pattern;             /* a Sigma rule: compiled by tw_sigma_add, not from `pattern` */
    const tw_json *pattern;     /* an object, or a string of JSON text */
    unsigned line, pattern_line;
    tw_storm_cfg storm;
} cl_rule_in;

/* The rule pack a rule is read from (config_packs.c); NULL for trailwatch.yml's own rules. */
typedef struct cl_pack {
    const char *name;           /* the pack's name, in cfg->arena */
    const tw_json *targets;     /* the `packs:` entry's targets (a list in trailwatch.yml), NULL in tests */
    const char *entry_file;     /* trailwatch.yml, where the entry and its targets are written */
    uint32_t entry_file_no;
    const char *entry_ctx;      /* "packs[0]": message prefix for the targets */
    const tw_json *disable;     /* the entry's list of rule names to load disabled, or NULL */
} cl_pack;

/* One rule mapping (trailwatch.yml's `rules:` or a pack's): name, description, severity, enabled,
 * pattern, storm, references, tags, examples, and targets (not in packs: the entry gives them). */
void tw__cl_rule(tw_cfg_ld *ld, const tw_json *v, size_t index, const cl_pack *pk);

/* Adds a rule (compiles and keeps its pattern) with room for nbindings; returns its index or -1. */
int tw__cl_add_rule(tw_cfg_ld *ld, const cl_rule_in *in, uint32_t nbindings);
/* Adds binding to rule: target by name (looked up at the end), transformation compiled from the
 * binding object (Input/InputPath/InputTransformer in any spelling tw__transform_compile takes).
 * ctx labels messages; line: where the binding is. */
void tw__cl_add_binding(tw_cfg_ld *ld, int rule, const char *target, const tw_json *xf_binding,
                        const char *ctx, unsigned line);
/* One entry of a rule's targets: a target name or {target, input | input_path | input_transformer}. */
void tw__cl_binding(tw_cfg_ld *ld, int rule, const tw_json *b, const char *ctx);
/* A rule's examples: {match: [event...], no_match: [event...]}: checked, and kept for `rules test`. */
void tw__cl_examples(tw_cfg_ld *ld, const tw_json *v, const char *ctx, tw_rule_cfg *r);
/* The `rules:` list of trailwatch.yml. */
void tw__cl_rules(tw_cfg_ld *ld, const tw_json *rules);
/* Looks every target reference up and, when nothing failed, builds the rule set from the enabled
 * rules. */
void tw__cl_finish_rules(tw_cfg_ld *ld);
void tw__cl_free_patterns(tw_cfg_ld *ld);

/* ---- facts and data tables (config_facts.c) ---- */

/* The `data:` mapping of trailwatch.yml: NAME: file (YAML or JSON, relative to this file). */
void tw__cl_data(tw_cfg_ld *ld, const tw_json *data);
/* A rule's `facts:` mapping, compiled into r (ctx labels messages). */
void tw__cl_facts(tw_cfg_ld *ld, const tw_json *facts, const char *ctx, tw_rule_cfg *r);

/* ---- sigma: (config_sigma.c) ---- */

/* The `sigma:` mapping: loads the rule files (each refusal is an error at its FILE:LINE) and adds a
 * rule per Sigma rule, bound to the targets of its entry (or sigma.targets). */
void tw__cl_sigma(tw_cfg_ld *ld, const tw_json *v);
/* From tw__cl_finish_rules: links the correlations and adds the detections to the builder. */
void tw__cl_sigma_build(tw_cfg_ld *ld, tw_ruleset_builder *b);
void tw__cl_sigma_free(tw_config *cfg);

/* ---- rule packs (config_packs.c) ---- */

/* The `packs:` list of trailwatch.yml. */
void tw__cl_packs(tw_cfg_ld *ld, const tw_json *packs);
/* Loads one pack file for `rules test` (params from their examples, no targets). */
void tw__cl_pack_for_test(tw_cfg_ld *ld, const char *path);

/* ---- AWS (config_aws.c) ---- */

/* The top-level `aws:` mapping. */
void tw__cl_aws(tw_cfg_ld *ld, const tw_json *v);
/* sources.s3 and sources.sqs. */
void tw__cl_s3_source(tw_cfg_ld *ld, const tw_json *v);
void tw__cl_sqs_source(tw_cfg_ld *ld, const tw_json *v);
/* A rule's `enrich:` mapping (NAME: {service, action, input_paths_map, request, timeout, cache, rate}). */
void tw__cl_enrich(tw_cfg_ld *ld, const tw_json *v, const char *ctx, tw_rule_cfg *r);

/* ---- cluster: (config_cluster.c) ---- */

void tw__cl_cluster(tw_cfg_ld *ld, const tw_json *cluster);

/* ---- serverless.yml (serverless.c) ---- */

/* 1 when root looks like a Serverless Framework service (top-level `service` and `functions`). */
int tw__sls_detect(const tw_json *root);
/* Adds the service's functions (exec targets) and events (rules); ld->file names it in messages.
 * code_dir: its folder (absolute); env_override: a mapping (from trailwatch.yml, already
 * substituted) or NULL. */
void tw__sls_load(tw_cfg_ld *ld, const char *code_dir, const tw_json *root, const tw_json *env_override);
/* Reads and loads one serverless.yml: a `serverless:` entry of trailwatch.yml, path relative to
 * its folder; messages about the file itself point at line of trailwatch.yml. */
void tw__sls_load_file(tw_cfg_ld *ld, const char *path, unsigned line, const tw_json *env_override);

/* ---- Serverless variables (sls_vars.c) ---- */

typedef struct tw_sls_vars {
    tw_cfg_ld *ld;
    const tw_json *root;        /* the serverless.yml as parsed: what ${self:...} reads */
    tw_json_doc *doc;           /* where resolved copies are built */
    const char *stage;          /* ${sls:stage}, once provider.stage is known */
} tw_sls_vars;

/* v with every ${env:X}, ${self:a.b}, ${opt:x, default}, ${sls:stage} resolved (v itself when it
 * holds none). A string that is one variable takes the value's type. Returns NULL after an error
 * (reported at the string's line: unset variables, unsupported sources such as ssm:, cf:, file()). */
const tw_json *tw__sls_resolve(tw_sls_vars *sv, const tw_json *v);

#endif
