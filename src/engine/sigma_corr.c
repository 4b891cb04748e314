/* engine/sigma_corr.c: the Sigma correlator of `serve`: follows the configuration, keeps its state
 * in the data directory, counts what it evicts. */
#include "engine/sigma_corr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/log.h"
#include "trailwatch/sigma.h"

#define TW_SIGMA_STATE_FILE "sigma-state.db"

struct tw__ecorr {
    tw_snapshots *snaps;
    pthread_mutex_t lock;          /* held by a transaction, from tw__ecorr_begin to tw__ecorr_end */
    tw_snapshot *snap;             /* the configuration the correlator reads (a reference), or NULL */
    tw_correlator *corr;           /* NULL: that configuration has no correlations (or it failed) */
    int64_t last_save_ms;
    int open_failed;               /* the configuration has correlations, the correlator could not open */
    int64_t open_log_ms;
    tw_correlator_stats counted;   /* of corr: what the counters hold already */
    tw_counter *groups, *evicted, *late, *hits, *dups;
};

void tw__ecorr_hits_free(tw__ecorr_hits *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].json);
        free(h->v[i].id);
    }
    TW_VEC_FREE(h);
}

tw__ecorr *tw__ecorr_new(tw_snapshots *snaps, tw_metrics *m)
{
    tw__ecorr *ec = calloc(1, sizeof *ec);
    if (!ec)
        return NULL;
    ec->snaps = snaps;
    pthread_mutex_init(&ec->lock, NULL);
    if (m) {
        ec->groups = tw__metrics_gauge(m, "trailwatch_sigma_groups", "Sigma correlation states held (per correlation "
                                      "and group-by values)", "");
        ec->evicted = tw__metrics_counter(m, "trailwatch_sigma_evicted_total", "Sigma correlation states (or events of "
                                         "a state) dropped to stay within sigma.max_groups / max_group_events", "");
        ec->late = tw__metrics_counter(m, "trailwatch_sigma_late_total", "Events dropped by Sigma correlations: older "
                                      "than the newest eventTime minus sigma.lateness", "");
        ec->hits = tw__metrics_counter(m, "trailwatch_sigma_correlation_hits_total", "Sigma correlation hits", "");
        ec->dups = tw__metrics_counter(m, "trailwatch_sigma_duplicates_total", "Events Sigma correlations took "
                                      "once only: the same rule, eventTime and eventID came again", "");
    }
    return ec;
}

/* Adds what corr counted since the last call to the counters. Under ec->lock. */
static void count_stats(tw__ecorr *ec)
{
    if (!ec->corr)
        return;
    tw_correlator_stats st;
    tw_correlator_stats_get(ec->corr, &st);
    if (ec->evicted)
        tw_count(ec->evicted, st.evicted - ec->counted.evicted);
    if (ec->late)
        tw_count(ec->late, st.late - ec->counted.late);
    if (ec->hits)
        tw_count(ec->hits, st.hits - ec->counted.hits);
    if (ec->dups)
        tw_count(ec->dups, st.duplicates - ec->counted.duplicates);
    if (ec->groups)
        tw_gauge_set(ec->groups, st.groups);
    ec->counted = st;
}

/* Saves and drops the correlator. Under ec->lock. */
static void drop(tw__ecorr *ec)
{
    count_stats(ec);
    tw_correlator_free(ec->corr);   /* saves */
    ec->corr = NULL;
    memset(&ec->counted, 0, sizeof ec->counted);
    tw__snapshot_release(ec->snap);
    ec->snap = NULL;
}

/* Opens the correlator of ec->snap (reading its saved state). Under ec->lock. */
static void open_corr(tw__ecorr *ec, int64_t now_ms)
{
    const tw_config *cfg = ec->snap->cfg;
    ec->open_failed = 0;
    if (!cfg->sigma.rules || !cfg->sigma.ncorrelations)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", cfg->data_dir, TW_SIGMA_STATE_FILE);
    tw_correlator_opts o;
    tw_correlator_opts_default(&o);
    o.lateness_ms = cfg->sigma.lateness_ms;
    o.max_groups = cfg->sigma.max_groups;
    o.max_group_events = cfg->sigma.max_group_events;
    o.state_path = path;
    tw_error err;
    if (tw_correlator_new(cfg->sigma.rules, cfg->ruleset, &o, &ec->corr, &err)) {
        /* matching and alerting go on; the correlations do not run until it opens (tried again with
         * every batch and tick: a full disk, say, passes) */
        ec->corr = NULL;
        ec->open_failed = 1;
        if (now_ms - ec->open_log_ms >= 10000) {
            tw__log(TW_LOG_ERROR, "Sigma correlations cannot run; trying again", "error", err.msg, NULL);
            ec->open_log_ms = now_ms;
        }
    }
}

/* Moves to snap (the current configuration; the reference is taken over). Under ec->lock. */
static void follow(tw__ecorr *ec, tw_snapshot *snap, int64_t now_ms)
{
    drop(ec);
    ec->snap = snap;
    ec->last_save_ms = now_ms;
    ec->open_log_ms = 0;
    open_corr(ec, now_ms);
}

void tw__ecorr_free(tw__ecorr *ec)
{
    if (!ec)
        return;
    drop(ec);
    pthread_mutex_destroy(&ec->lock);
    free(ec);
}

typedef struct collect {
    const tw_config *cfg;
    tw__ecorr_hits *out;
} collect;

static void on_hit(void *ctx, const tw_correlation_hit *h)
{
    collect *c = ctx;
    uint32_t rule = c->cfg->sigma.rule_of[h->rule];
    if (rule == UINT32_MAX)
        return;
    char *json = malloc(h->json_len + 1), *id = NULL;
    const char *ip = json ? strstr(h->json, "\"id\":\"") : NULL;   /* the correlator writes a uuid there */
    const char *ie = ip ? strchr(ip + 6, '"') : NULL;
    if (ie)
        id = strndup(ip + 6, (size_t)(ie - ip - 6));
    tw__ecorr_hit *x = json && id ? TW_VEC_ADD(c->out) : NULL;
    if (!x) {
        tw__log(TW_LOG_ERROR, "Sigma correlation hit lost: out of memory", "rule", h->info->name, NULL);
        free(json);
        free(id);
        return;
    }
    memcpy(json, h->json, h->json_len);
    json[h->json_len] = '\0';
    *x = (tw__ecorr_hit){rule, json, h->json_len, id};
}

void tw__ecorr_prepare(tw__ecorr *ec, tw_snapshot *snap, tw_matcher *m, const tw_match_result *mr, int64_t now_ms,
                       tw_correlator_input **in)
{
    (void)ec;
    if (!snap->cfg->sigma.ncorrelations || !mr->count)
        return;
    tw_error err;
    if (tw_correlator_prepare(snap->cfg->sigma.rules, m, mr, now_ms, in, &err))
        tw__log(TW_LOG_ERROR, "Sigma correlation input lost", "error", err.msg, NULL);
}

tw_snapshot *tw__ecorr_begin(tw__ecorr *ec, int64_t now_ms)
{
    pthread_mutex_lock(&ec->lock);
    tw_snapshot *cur = tw__snapshot_acquire(ec->snaps);
    if (cur != ec->snap)
        follow(ec, cur, now_ms);
    else
        tw__snapshot_release(cur);
    if (ec->open_failed)
        open_corr(ec, now_ms);
    if (!ec->corr)
        return NULL;
    tw_correlator_begin(ec->corr);
    atomic_fetch_add(&ec->snap->refs, 1);
    return ec->snap;
}

void tw__ecorr_apply(tw__ecorr *ec, tw_correlator_input *in, tw__ecorr_hits *out)
{
    if (!ec->corr || !in)
        return;
    collect c = {ec->snap->cfg, out};
    tw_error err;
    if (tw_correlator_apply(ec->corr, in, on_hit, &c, &err))
        tw__log(TW_LOG_ERROR, "Sigma correlation input lost", "error", err.msg, NULL);
}

void tw__ecorr_tick(tw__ecorr *ec, int64_t now_ms, tw__ecorr_hits *out)
{
    if (!ec->corr)
        return;
    collect c = {ec->snap->cfg, out};
    tw_error err;
    if (tw_correlator_tick(ec->corr, now_ms, on_hit, &c, &err))
        tw__log(TW_LOG_ERROR, "Sigma correlation windows not closed", "error", err.msg, NULL);
}

void tw__ecorr_end(tw__ecorr *ec, int committed, int64_t now_ms)
{
    if (ec->corr) {
        tw_error err;
        if (committed) {
            tw_correlator_commit(ec->corr);
        } else if (tw_correlator_rollback(ec->corr, &err)) {
            tw__log(TW_LOG_ERROR, "Sigma correlation state not restored after a failed commit", "error", err.msg,
                    NULL);
        }
        /* after every commit (only the groups it changed are written, no fsync): what the outbox
         * holds, the state holds, so a crash neither forgets counted events nor lets a window that
         * fired fire again; after a rollback, at the next commit or save_interval */
        if (committed || now_ms - ec->last_save_ms >= ec->snap->cfg->sigma.save_ms) {
            ec->last_save_ms = now_ms;
            if (tw_correlator_save(ec->corr, &err))
                tw__log(TW_LOG_ERROR, "cannot save Sigma correlation state", "error", err.msg, NULL);
        }
        count_stats(ec);
    }
    pthread_mutex_unlock(&ec->lock);
}
