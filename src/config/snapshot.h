/*
 * config/snapshot.h: the current configuration, swappable while threads use it (internal).
 *
 * Ownership: a snapshot owns its tw_config and a pool of matchers for its rule set. Threads take a
 * reference for as long as they use it (one request, one delivery attempt); a reload swaps in a new
 * snapshot and the old one is freed when its last user lets go, so nothing in flight is dropped.
 */
#ifndef TW_CONFIG_SNAPSHOT_H
#define TW_CONFIG_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/vec.h"
#include "config/config_int.h"

typedef struct tw_snapshot {
    tw_config *cfg;
    _Atomic int refs;
    pthread_mutex_t pool_lock;
    TW_VEC(tw_matcher *) pool;     /* matchers not in use */
    _Atomic(void *) ext;           /* see tw__snapshot_ext */
    void (*ext_free)(void *);
} tw_snapshot;

typedef struct tw_snapshots {
    pthread_mutex_t lock;
    tw_snapshot *cur;
} tw_snapshots;

tw_status tw__snapshots_init(tw_snapshots *s, tw_config *cfg, tw_error *err);
void tw__snapshots_destroy(tw_snapshots *s);
/* Replaces the current configuration (cfg is taken over, even on error). */
tw_status tw__snapshots_swap(tw_snapshots *s, tw_config *cfg, tw_error *err);

tw_snapshot *tw__snapshot_acquire(tw_snapshots *s);
void tw__snapshot_release(tw_snapshot *snap);

/* A matcher for the snapshot's rule set from its pool (created when the pool is empty). */
tw_matcher *tw__snapshot_matcher(tw_snapshot *snap);
void tw__snapshot_matcher_put(tw_snapshot *snap, tw_matcher *m);

/* One slot of data that a higher layer derives from the configuration once per snapshot instead of
 * per event (the engine's metric handle per rule): make(ctx, cfg) runs on first use, free_fn with
 * the snapshot. Returns the data, or NULL when make failed (tried again next time). One user. */
void *tw__snapshot_ext(tw_snapshot *snap, void *(*make)(void *ctx, const tw_config *cfg), void (*free_fn)(void *),
                      void *ctx);

#endif
