/*
 * sigma/sigma_int.h: loaded Sigma rules, the condition grammar and the detection compiler (internal
 * to src/sigma/).
 *
 * Ownership: a tw_sigma owns its rules; a rule owns its YAML document (kept for lint and messages),
 * its compiled boolean rule until tw_sigma_add hands it to a builder, and its correlation definition.
 * Strings live in the tw_sigma's arena or in the documents.
 */
#ifndef TW_SIGMA_SIGMA_INT_H
#define TW_SIGMA_SIGMA_INT_H

#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "pattern/boolean.h"
#include "trailwatch/sigma.h"

/* Caps on what one rule may hold, each input-fed. */
#define TW_SIGMA_COND_MAX 4096u        /* bytes of one condition */
#define TW_SIGMA_COND_DEPTH 64u        /* nesting of parentheses and `not` in one condition */
#define TW_SIGMA_ATOMS_MAX 10000u      /* field predicates in one rule */
#define TW_SIGMA_EXPAND_MAX 1024u      /* values one value may expand to (windash, placeholders) */
#define TW_SIGMA_ANCHORS_MAX 64u       /* anchor conjunctions of one rule (beyond: tested on every event) */
#define TW_SIGMA_REFS_MAX 64u          /* rules one correlation names; group-by fields */
#define TW_SIGMA_CHAIN_MAX 16u         /* correlations on top of correlations */

/* ---- condition grammar (cond.c) ---- */

typedef enum sg_cop { SC_ID = 0, SC_AND, SC_OR, SC_NOT, SC_OF } sg_cop;

typedef struct sg_cond {
    sg_cop op;
    int all;                    /* SC_OF: `all of` (else `1 of`) */
    const char *name;           /* SC_ID: the identifier; SC_OF: the pattern, NULL for `them` */
    uint32_t nlen;
    unsigned col;               /* 1-based column in the condition text */
    struct sg_cond *a, *b;      /* AND/OR: both; NOT: a */
} sg_cond;

/* Parses a condition into a tree in arena a. On error returns NULL with "column N: why" in why. */
sg_cond *tw__sigma_cond_parse(tw_arena *a, const char *text, size_t len, char *why, size_t size);

/* 1 when name (n bytes) matches the `x of` pattern p (`*` any run). */
int tw__sigma_glob_name(const char *p, size_t pn, const char *name, size_t n);

/* ---- rules ---- */

typedef enum sg_ctype {
    SG_EVENT_COUNT = 0, SG_VALUE_COUNT, SG_VALUE_SUM, SG_VALUE_AVG, SG_TEMPORAL, SG_TEMPORAL_ORDERED
} sg_ctype;

/* A correlation's condition: the ANDed bounds; `expr` for temporal conditions written as an
 * expression over the rules' names. */
typedef struct sg_bounds {
    int has_lo, lo_incl, has_hi, hi_incl, has_neq;
    double lo, hi, neq;
} sg_bounds;

typedef struct sg_corr {
    sg_ctype type;
    size_t nrefs;
    const char **refs;          /* as written: id or name */
    unsigned *ref_line;
    long *ref_rule;             /* resolved index in tw_sigma (after linking) */
    size_t ngroup;
    const char **group;         /* group-by names (aliases resolve them per rule) */
    const char ***field_of;     /* [group][ref]: the field that rule's events give the group value */
    const char *field;          /* value_count / value_sum / value_avg: condition.field */
    const char **value_field;   /* [ref]: the same through aliases */
    int64_t timespan_ms;
    sg_bounds bounds;
    int has_bounds;
    sg_cond *expr;              /* temporal: condition as an expression over rule names, or NULL */
    int generate;
    unsigned line;
    /* after tw_sigma_add: capture ids of the rule set (detection refs only) */
    uint32_t *cap;              /* [group * nrefs + ref] */
    uint32_t *vcap;             /* [ref]: the value field */
    size_t depth;               /* 1 over detections, 2 over a correlation of detections, ... */
} sg_corr;

typedef struct sg_rule {
    tw_sigma_rule_info info;
    tw_json_doc *doc;
    const tw_json *root;
    tw__brule *compiled;        /* detection, until added to a builder */
    sg_corr *corr;
    int refused;                /* dropped while linking */
    const char **tags_v, **refs_v;
} sg_rule;

struct tw_sigma {
    tw_limits lim;
    tw_arena arena;
    sg_rule **rules;
    size_t n, cap;
    tw_json_doc *placeholders;  /* copy of the table, or NULL */
    int linked;
    long *by_ruleset;           /* ruleset index -> rule index (after tw_sigma_add), -1 */
    size_t nby;
    uint32_t cap_time, cap_id;  /* captures of eventTime and eventID */
    /* per rule (after tw_sigma_add): the correlations that read its events (chains are fed by hits) */
    size_t **users;
    size_t *nusers;
    /* names and ids of the rules, hashed (open addressing, rule index + 1, 0 empty): uniqueness
     * checks stay linear in the number of rules (10,000 generated rules load in well under 2 s) */
    uint32_t *name_ix, *id_ix;
    size_t ix_cap;
};

/* The rule a correlation reference names (id, then name), or -1. */
long tw__sigma_find(const tw_sigma *s, const char *ref, size_t self);

/* Compiles a detection section into a boolean rule. On error returns NULL and writes "LINE: why"
 * information: *line (0 when unknown) and why. (compile.c) */
tw__brule *tw__sigma_compile(const tw_sigma *s, const tw_json *detection, unsigned *line, char *why, size_t size);

/* Parses a correlation section (corr.c). NULL on error with *line and why. */
sg_corr *tw__sigma_corr_parse(tw_sigma *s, const tw_json *corr, unsigned *line, char *why, size_t size);

/* CloudTrail record field paths as trailwatch reads them: `detail.` + the Sigma field. */
#define TW_SIGMA_PREFIX "detail."

#endif
