/*
 * pattern/execute_int.h: the per-thread matcher state (internal to src/pattern/).
 *
 * Ownership: a tw_matcher owns every array here; they grow to the largest event seen and are then
 * reused, so steady-state matching allocates nothing. Per-event "clearing" is a generation counter.
 */
#ifndef TW_PATTERN_EXECUTE_INT_H
#define TW_PATTERN_EXECUTE_INT_H

#include "json/lex.h"
#include "pattern/ruleset_int.h"

/* Two readings of one event's root object: 0 = as an EventBridge event, 1 = as a raw CloudTrail
 * record wrapped as "detail". In TW_EVENT_AUTO both are recorded in one pass and one is kept. */
#define TW_INTERP_EVENT 0
#define TW_INTERP_RECORD 1

typedef struct tw__elem {      /* an array element that holds a container */
    uint32_t parent;           /* enclosing element (0: none) */
    uint32_t array;            /* array instance, unique per event */
} tw__elem;

/* Root keys captured while walking, to wrap a record and to name the event. */
enum {
    TW_CAP_EVENT_VERSION = 0,
    TW_CAP_EVENT_SOURCE,
    TW_CAP_DETAIL_TYPE,
    TW_CAP_EVENT_TYPE,
    TW_CAP_RECIPIENT,
    TW_CAP_EVENT_TIME,
    TW_CAP_AWS_REGION,
    TW_CAP_EVENT_ID,
    TW_CAP_ID,
    TW_CAP_COUNT_
};

typedef struct tw__capture {
    const char *s;             /* string value (decoded), NULL when absent or not a string */
    uint32_t len;
    uint8_t seen;              /* the key was present (any value) */
} tw__capture;

struct tw_matcher {
    const tw_ruleset *rs;
    const tw__node *nodes;     /* the trie this walk records through: rs->nodes, or the gate's */
    const tw__kid *kids;
    int gated;                 /* this event's values were recorded through the gate trie only */
    size_t rewalks;            /* events walked again past the gate (for tests) */
    uint32_t gen;

    tw__value *vals;           /* recorded values (index 0 unused: links are index + 1) */
    uint32_t nvals, capvals;
    uint32_t *head[2], *head_gen[2];  /* per field and reading: first value */
    uint32_t *touched[2], ntouched[2];

    tw__elem *elems;           /* index 0 = "not in a constraining array" */
    uint32_t nelems, capelems, narrays;
    uint32_t interp;           /* reading being recorded */

    uint32_t *conj_gen, *cands, ncands;
    uint32_t *rule_gen, *result, nresult;
    uint32_t *pred_mark;       /* per predicate: gen << 1 | holds, this event's memo (one word: one miss) */
    uint32_t *bool_gen;        /* per rule: gen when its boolean program was evaluated (NULL: none) */
    uint32_t deep_node;        /* the node whose object or array is recorded whole for its deep field */
    uint32_t *deep_gen[2];     /* per field and reading: gen | TW_DEEP_PENDING when objects or arrays
                                  wait to be expanded, gen once they were */
    uint32_t last_interp;      /* reading of the last event matched (captures) */
    uint32_t *chosen;
    size_t steps;

    tw__capture cap[TW_CAP_COUNT_];
    char synth[96];            /* "aws." + service, and a generated id */
    uint64_t rng;
    tw_arena scratch;          /* decoded strings and foldings of this event */
    tw_lex_err lexerr;
    tw_status fail;            /* set by the walk on errors other than lexing */
    int over_limit;            /* more values than lim.event_values: reported after validation */
    const char *fail_at;
    const char *fail_why;
};

/* Whether predicate pid holds for some value of the event (memoized per event; execute.c). */
int tw__pred_possible(tw_matcher *m, uint32_t pid, uint32_t interp);

/* Records the scalars inside the objects and arrays a deep field holds (once per event; walk.c).
 * 0 when out of memory or over the values limit (then the field's values are incomplete). */
int tw__deep_expand_pending(tw_matcher *m, uint32_t f, uint32_t interp);

/* deep_gen[i][f] is gen | TW_DEEP_PENDING while objects or arrays of f wait to be expanded (walk.c
 * sets it when it records one): most fields hold none, and then expanding costs one compare. */
#define TW_DEEP_PENDING 0x80000000u

static inline int tw__deep_expand(tw_matcher *m, uint32_t f, uint32_t interp)
{
    if (m->deep_gen[interp][f] != (m->gen | TW_DEEP_PENDING))
        return 1;
    return tw__deep_expand_pending(m, f, interp);
}

/* Walks the event's root object, recording values (walk.c). Sets *is_record. */
tw_status tw__walk_event(tw_matcher *m, const char *json, size_t len, tw_event_kind kind, int *is_record,
                         tw_error *err);

#endif
