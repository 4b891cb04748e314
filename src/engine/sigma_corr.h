/*
 * engine/sigma_corr.h: the Sigma correlator of `serve` (internal to src/engine/): one correlator for
 * the configuration in use, fed with every event's matches, ticked by the engine's timer thread, its
 * state saved in DATA_DIR/sigma-state.db (after each commit, and when it is freed) and read back on start
 * and after a reload (state of unchanged correlations carries over).
 *
 * Ownership: a tw__ecorr owns its correlator and holds a reference on the snapshot whose Sigma rules
 * and rule set the correlator reads; hits handed out are owned by the caller (tw__ecorr_hits_free).
 *
 * Threads: any number of threads may prepare; transactions (apply, tick) run one at a time.
 */
#ifndef TW_ENGINE_SIGMA_CORR_H
#define TW_ENGINE_SIGMA_CORR_H

#include <stdint.h>

#include "common/vec.h"
#include "config/snapshot.h"
#include "telemetry/metrics.h"
#include "trailwatch/sigma.h"

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

/* Reads one event's matches (m just matched it with snap's rule set) into *in, for tw__ecorr_apply once
 * the batch is done. Does not wait for a transaction. */
void tw__ecorr_prepare(tw__ecorr *ec, tw_snapshot *snap, tw_matcher *m, const tw_match_result *mr, int64_t now_ms,
                       tw_correlator_input **in);

/* A transaction: what apply and tick do to the state is kept only if the commit of their hits' alerts
 * succeeds (tw__ecorr_end(ec, 1)); otherwise it is undone, so the events can be sent again and the
 * windows closed again without counting twice or losing a hit. One at a time (begin waits).
 * begin follows a reload and returns the configuration the hits are of (a reference the caller
 * releases after end), or NULL when it has no correlations (apply and tick then do nothing). */
tw_snapshot *tw__ecorr_begin(tw__ecorr *ec, int64_t now_ms);
/* Feeds prepared input (of this or an earlier configuration); hits are appended to out. */
void tw__ecorr_apply(tw__ecorr *ec, tw_correlator_input *in, tw__ecorr_hits *out);
/* Closes windows whose time is up (hits into out). */
void tw__ecorr_tick(tw__ecorr *ec, int64_t now_ms, tw__ecorr_hits *out);
/* Ends the transaction: committed says whether the hits' alerts (and the events) were stored. Saves what
 * it changed after a commit (and, after a rollback, when save_interval has passed); updates the metrics. */
void tw__ecorr_end(tw__ecorr *ec, int committed, int64_t now_ms);

#endif
