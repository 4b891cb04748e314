/*
 * pattern/boolean.h: boolean rules, the layer above the predicates (internal to the library).
 *
 * A Sigma rule is not a conjunction of leaves: it ANDs, ORs and negates selections, compares one field
 * with another, searches keywords anywhere. It is compiled into a tw__brule: atoms (predicates, each a
 * tw__leaf, shared and indexed with the event patterns' predicates in one tw_ruleset), a tree of
 * AND / OR / NOT over them, and anchors (conjunctions of atoms, one of which holds whenever the rule
 * does). The rule set files the anchors in its index like any conjunction; when one is a candidate for
 * an event, the tree is evaluated over the predicates' per-event memo (execute.c). A rule without
 * anchors (`not filter` alone) is evaluated for every event.
 *
 * Ownership: a tw__brule owns everything in its arena; tw__ruleset_builder_add_boolean consumes it.
 * The rule set keeps its own compiled copy (tw__bset) and every regex its matchers use.
 */
#ifndef TW_PATTERN_BOOLEAN_H
#define TW_PATTERN_BOOLEAN_H

#include <stdint.h>

#include "common/arena.h"
#include "pattern/pattern_int.h"
#include "trailwatch/pattern.h"

enum { TW_BA_PRED = 0, TW_BA_FIELDREF };                              /* atom kinds */
enum { TW_FR_EQ = 0, TW_FR_PREFIX, TW_FR_SUFFIX, TW_FR_CONTAINS };    /* field reference comparisons */

typedef struct tw__batom {
    uint8_t kind;
    uint8_t op;                 /* TW_BA_FIELDREF: TW_FR_* (field OP referenced field) */
    uint8_t neq;                /* TW_BA_FIELDREF: both present and no pair of values compares */
    uint8_t cased;              /* TW_BA_FIELDREF: compare bytes, not case-folded text */
    tw__leaf leaf;              /* PRED: the predicate; FIELDREF: leaf.path is the field (deep) */
    const char *ref;            /* FIELDREF: the referenced field's path (deep) */
    uint32_t reflen;
} tw__batom;

enum { TW_BN_ATOM = 0, TW_BN_AND, TW_BN_OR, TW_BN_NOT, TW_BN_TRUE, TW_BN_FALSE };

typedef struct tw__bnode {
    uint8_t op;
    uint32_t a;                 /* ATOM: atom index; NOT: child node; AND/OR: first index in kids */
    uint32_t n;                 /* AND/OR: children */
} tw__bnode;

typedef struct tw__brule {
    tw_arena arena;
    uint32_t natoms, nnodes, nkids, root;
    tw__batom *atoms;
    tw__bnode *nodes;
    uint32_t *kids;             /* node indexes */
    /* Anchors: conjunction i is anchor_atoms[anchor_off[i] .. + anchor_len[i]) (PRED atoms only).
     * Whenever the rule holds, one of them holds. None: the rule is evaluated on every event. */
    uint32_t nanchors;
    uint32_t *anchor_off, *anchor_len, *anchor_atoms;
} tw__brule;

void tw__brule_free(tw__brule *r);

/* Adds a boolean rule (consumed, freed even on error) beside the pattern rules; same naming and index
 * rules as tw_ruleset_builder_add. Regexes are compiled again by the rule set (it owns those). */
tw_status tw__ruleset_builder_add_boolean(tw_ruleset_builder *b, const char *name, tw__brule *r, size_t *index,
                                          tw_error *err);

/* Asks the rule set to record a field's deep values for every event (a correlation's group-by), so
 * the caller can read them after tw_match (tw__matcher_capture). *id names it in the built rule set. */
tw_status tw__ruleset_builder_capture(tw_ruleset_builder *b, const char *path, size_t len, uint32_t *id);

/* ---- in the built rule set ---- */

typedef struct tw__batom_c {    /* a compiled atom */
    uint8_t kind, op, neq, cased;
    uint32_t pred;              /* PRED: predicate id */
    uint32_t field, reffield;   /* FIELDREF: deep field ids */
} tw__batom_c;

typedef struct tw__bset {
    uint32_t *root_of;          /* rule index -> its root node, TW_NONE for pattern rules */
    tw__batom_c *atoms;
    tw__bnode *nodes;           /* atom and node indexes absolute */
    uint32_t nnodes;
    uint32_t *kids;
    uint32_t ncaptures;
    uint32_t *capture_field;    /* capture id -> deep field id */
    uint32_t nregex;
    struct tw__regex **regex;   /* compiled for the matchers (owned) */
    uint8_t *rewalk;            /* rule index -> its program reads a field the gate trie does not
                                   record: a candidate event is walked again (gate.c; NULL: no gate) */
} tw__bset;

void tw__bset_free(tw__bset *s);

struct tw_matcher;
/* Evaluates boolean rule `rule` on the event just walked (reading interp). */
int tw__bool_eval(struct tw_matcher *m, uint32_t rule, uint32_t interp);

/* Calls fn for each value recorded for capture id (deep values of its field, in document order),
 * after tw_match; strings are valid until the next tw_match. Returns the count. */
typedef void (*tw__value_fn)(void *ctx, const tw__value *v);
size_t tw__matcher_capture(struct tw_matcher *m, uint32_t id, tw__value_fn fn, void *ctx);

#endif
