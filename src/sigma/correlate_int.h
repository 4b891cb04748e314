/*
 * sigma/correlate_int.h: the correlator's state, shared by correlate.c (windows, conditions, hits)
 * and corr_store.c (SQLite persistence) (internal to src/sigma/).
 *
 * Ownership: the tw_correlator owns its groups; a group owns its observations and their strings.
 *
 * State is kept per (correlation, group-by values): the observations (events of the referenced rules,
 * or hits of referenced correlations) inside the correlation's timespan, sorted by eventTime. Groups
 * are bounded (max_groups, least recently used evicted; max_group_events per group, oldest dropped).
 */
#ifndef TW_SIGMA_CORRELATE_INT_H
#define TW_SIGMA_CORRELATE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "sigma/sigma_int.h"

typedef struct obs {
    int64_t t;                  /* eventTime, ms since the epoch */
    uint32_t ref;               /* which of the correlation's rules */
    int has_num;
    double num;                 /* value_sum / value_avg */
    char *value;                /* value_count: the value (NULL: absent) */
    char *eid;                  /* the event's id (NULL: none) */
} obs;

typedef struct group {
    size_t corr;                /* rule index of the correlation */
    uint64_t hash;
    char *key;                  /* the group-by values, encoded (see key_encode) */
    size_t klen;
    obs *ev;
    size_t n, cap;
    int64_t wstart;             /* closing mode: start of the open window; INT64_MIN when none */
    struct group *hnext;        /* hash chain */
    struct group *prev, *next;  /* LRU list, most recent first */
    int dirty;                  /* changed since the last save: on the dirty list */
    struct group *dprev, *dnext;
    uint64_t noted;             /* the transaction whose undo log holds this group's state before it */
} group;

typedef struct pending {        /* a batch input waiting for its turn (batch mode) */
    int64_t t;
    uint64_t seq;
    size_t corr;
    char *key;
    size_t klen;
    obs o;
} pending;

typedef struct undo {           /* a group as it was before a transaction changed it (corr_txn.c) */
    size_t corr;
    char *key;
    size_t klen;
    int existed;                /* 0: the transaction created it */
    int64_t wstart;
    obs *ev;
    size_t n;
} undo;

typedef struct in_entry {       /* one observation prepared from a match, not yet applied */
    size_t corr;
    char *key;
    size_t klen;
    obs o;
} in_entry;

struct tw_correlator_input {
    const tw_sigma *s;          /* the rules its correlation indexes refer to */
    in_entry *v;
    size_t n, cap;
};

typedef struct chained {        /* a hit's observation for a correlation built on the one that fired */
    size_t corr;
    char *key;
    size_t klen;
    obs o;
    unsigned depth;
} chained;

struct tw_correlator {
    const tw_sigma *s;
    const tw_ruleset *rs;
    tw_correlator_opts o;
    pthread_mutex_t lock;
    group **buckets;
    size_t nbuckets, ngroups;
    group *lru_head, *lru_tail;
    group *dirty_head;          /* groups changed since the last save (a save then writes only them) */
    int64_t max_seen;           /* newest eventTime taken (INT64_MIN: none) */
    tw_correlator_stats st;
    chained *q;                 /* hits waiting to be fed up their chains */
    size_t nq, capq;
    /* batch mode */
    pending *pend;
    size_t npend, cappend;
    uint64_t seq;
    /* transaction (corr_txn.c): the undo log of the groups it changed */
    int txn;
    uint64_t txn_gen;
    undo *undo;
    size_t nundo, capundo;
    int txn_incomplete;         /* out of memory noting a group: a rollback cannot restore everything */
    int rolling_back;           /* groups dropped now leave their strings alone */
    /* Undo copies are shallow: strings of observations dropped during a transaction are freed at its
     * commit (a copy may point at them), strings of observations it took at its rollback. */
    char **grave, **added;
    size_t ngrave, capgrave, nadded, capadded;
    int64_t txn_max_seen;
    tw_correlator_stats txn_st;
    /* persistence (corr_store.c) */
    struct sqlite3 *db;
    char **deleted;             /* keys of groups gone since the last save: "corr\0key" */
    size_t *deleted_len;
    size_t ndeleted, capdeleted;
};

/* correlate.c */
group *tw__corr_group(tw_correlator *c, size_t corr, const char *key, size_t klen, int create);
void tw__corr_group_drop(tw_correlator *c, group *g, int count_eviction);
void tw__corr_mark_dirty(tw_correlator *c, group *g);
void tw__corr_clear_dirty(tw_correlator *c);
/* A stable text naming a correlation's definition: state saved under another definition is dropped. */
void tw__corr_signature(const tw_sigma *s, size_t corr, char *out, size_t size);

/* corr_txn.c */
/* Keeps g's state in the undo log before the open transaction changes it (once per transaction). */
void tw__corr_note(tw_correlator *c, group *g);
void tw__corr_note_created(tw_correlator *c, group *g);
void tw__corr_obs_free(obs *o);
/* An observation leaves a group: its strings are freed (kept until the commit in a transaction). */
void tw__corr_obs_release(tw_correlator *c, obs *o);
/* An observation joins a group (its strings are freed if the transaction is rolled back). */
void tw__corr_obs_taken(tw_correlator *c, const obs *o);
void tw__corr_txn_free(tw_correlator *c);

/* corr_store.c */
tw_status tw__corr_store_open(tw_correlator *c, tw_error *err);
tw_status tw__corr_store_save(tw_correlator *c, tw_error *err);
void tw__corr_store_close(tw_correlator *c);
void tw__corr_note_deleted(tw_correlator *c, const group *g);

#endif
