/* sigma/corr_txn.c: correlator transactions. `serve` feeds a batch's events and closes windows, then
 * commits the alerts of the hits to its outbox; when that commit fails the events are sent again (or the
 * windows closed again on the next tick), so what the batch did to the state must be undone, or its
 * events would count twice and a hit could be lost. Each group is copied into an undo log before the
 * transaction first changes it (groups created by it are noted as new); a rollback puts the copies back,
 * newest first, with the newest eventTime and the counters as they were. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sigma/correlate_int.h"

static undo *undo_add(tw_correlator *c)
{
    if (c->nundo == c->capundo) {
        size_t cap = c->capundo ? c->capundo * 2 : 16;
        undo *u = realloc(c->undo, cap * sizeof *u);
        if (!u)
            return NULL;
        c->undo = u;
        c->capundo = cap;
    }
    undo *u = &c->undo[c->nundo];
    memset(u, 0, sizeof *u);
    return u;
}

static char *dup_str(const char *s, int *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = 0;
    return d;
}

void tw__corr_note(tw_correlator *c, group *g)
{
    if (!c->txn || g->noted == c->txn_gen)
        return;
    g->noted = c->txn_gen;
    undo *u = undo_add(c);
    int ok = u != NULL;
    if (ok && (u->key = malloc(g->klen + 1)) && (!g->n || (u->ev = calloc(g->n, sizeof *u->ev)))) {
        memcpy(u->key, g->key, g->klen + 1);
        u->klen = g->klen;
        u->corr = g->corr;
        u->existed = 1;
        u->wstart = g->wstart;
        for (size_t i = 0; i < g->n; i++) {
            u->ev[i] = g->ev[i];
            u->ev[i].value = dup_str(g->ev[i].value, &ok);
            u->ev[i].eid = dup_str(g->ev[i].eid, &ok);
        }
        u->n = g->n;
        c->nundo++;
        if (ok)
            return;
        c->nundo--;
    }
    if (u) {
        for (size_t i = 0; i < u->n; i++)
            tw__corr_obs_free(&u->ev[i]);
        free(u->ev);
        free(u->key);
    }
    c->txn_incomplete = 1;
}

void tw__corr_note_created(tw_correlator *c, group *g)
{
    if (!c->txn)
        return;
    g->noted = c->txn_gen;
    undo *u = undo_add(c);
    if (!u || !(u->key = malloc(g->klen + 1))) {
        c->txn_incomplete = 1;
        return;
    }
    memcpy(u->key, g->key, g->klen + 1);
    u->klen = g->klen;
    u->corr = g->corr;
    c->nundo++;
}

static void undo_clear(tw_correlator *c)
{
    for (size_t i = 0; i < c->nundo; i++) {
        for (size_t k = 0; k < c->undo[i].n; k++)
            tw__corr_obs_free(&c->undo[i].ev[k]);
        free(c->undo[i].ev);
        free(c->undo[i].key);
    }
    c->nundo = 0;
    c->txn_incomplete = 0;
}

void tw_correlator_begin(tw_correlator *c)
{
    pthread_mutex_lock(&c->lock);
    undo_clear(c);
    c->txn = 1;
    c->txn_gen++;
    c->txn_max_seen = c->max_seen;
    c->txn_st = c->st;
    pthread_mutex_unlock(&c->lock);
}

void tw_correlator_commit(tw_correlator *c)
{
    pthread_mutex_lock(&c->lock);
    c->txn = 0;
    undo_clear(c);
    pthread_mutex_unlock(&c->lock);
}

tw_status tw_correlator_rollback(tw_correlator *c, tw_error *err)
{
    pthread_mutex_lock(&c->lock);
    c->txn = 0;   /* what follows changes groups without noting them */
    for (size_t i = c->nundo; i-- > 0;) {
        undo *u = &c->undo[i];
        group *g = tw__corr_group(c, u->corr, u->key, u->klen, u->existed ? 2 : 0);
        if (!u->existed) {
            if (g)
                tw__corr_group_drop(c, g, 0);
            continue;
        }
        if (!g) {
            c->txn_incomplete = 1;
            continue;
        }
        for (size_t k = 0; k < g->n; k++)
            tw__corr_obs_free(&g->ev[k]);
        free(g->ev);
        g->ev = u->ev;
        g->n = g->cap = u->n;
        g->wstart = u->wstart;
        g->dirty = 1;
        u->ev = NULL;
        u->n = 0;
        if (!g->n)
            tw__corr_group_drop(c, g, 0);
    }
    int incomplete = c->txn_incomplete;
    c->max_seen = c->txn_max_seen;
    c->st = c->txn_st;
    undo_clear(c);
    pthread_mutex_unlock(&c->lock);
    if (incomplete)
        return tw__err(err, TW_ENOMEM, "out of memory: correlation state could not be fully restored");
    return TW_OK;
}

void tw__corr_txn_free(tw_correlator *c)
{
    undo_clear(c);
    free(c->undo);
    c->undo = NULL;
    c->capundo = 0;
}
