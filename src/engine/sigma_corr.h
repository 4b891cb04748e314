/*
 * engine/sigma_corr.h: the Sigma correlator of `serve` (internal to src/engine/): one correlator for
 * the configuration in use, fed with every event's matches, ticked by the engine's timer thread, its
 * state saved in DATA_DIR/sigma-state.db (periodically and when it is freed) and read back on start
 * and after a reload (state of unchanged correlations carries over).
 *
 * Ownership: a tw__ecorr owns its correlator and holds a reference on the snapshot whose Sigma rules
 * and rule set the correlator reads; hits handed out are owned by the caller (tw__ecorr_hits_free).
 *
 * Threads: any number of threads may feed; the correlator locks.
 */
#ifndef TW_ENGINE_SIGMA_CORR_H
#define TW_ENGINE_SIGMA_CORR_H

#include <stdint.h>

#include "common/vec.h"
#include "config/snapshot.h"
#include "telemetry/metrics.h"

typedef struct tw__ecorr tw__ecorr;

typedef struct tw__ecorr_hit {
    uint32_t rule;                 /* the correlation's index in the snapshot's cfg->rules */
    char *json;                    /* the hit as an EventBridge-shaped event */
    size_t len;
    char *id;                      /* its "id" */
} tw__ecorr_hit;

typedef TW_VEC(tw__ecorr_hit) tw__ecorr_hits;

void tw__ecorr_hits_free(tw__ecorr_hits *h);

tw__ecorr *tw__ecorr_new(tw_snapshots *snaps, tw_metrics *m);
/* Saves the state and frees everything. */
void tw__ecorr_free(tw__ecorr *ec);

/* Feeds one event's matches (m just matched it with snap's rule set). Events matched under another
 * snapshot than the correlator's (during a reload) are skipped. Hits are appended to out (rules of
 * snap->cfg). */
void tw__ecorr_feed(tw__ecorr *ec, tw_snapshot *snap, tw_matcher *m, const tw_match_result *mr, int64_t now_ms,
                    tw__ecorr_hits *out);

/* Timer: follows a reload, closes windows whose time is up (hits into out, rules of *snap_out, a
 * reference the caller releases; NULL when there are none), saves the state when save_interval has
 * passed, and updates the metrics. */
void tw__ecorr_tick(tw__ecorr *ec, int64_t now_ms, tw__ecorr_hits *out, tw_snapshot **snap_out);

#endif
