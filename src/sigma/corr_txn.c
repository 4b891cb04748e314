/* sigma/corr_txn.c: correlator transactions. `serve` feeds a batch's events and closes windows, then
 * commits the alerts of the hits to its outbox; when that commit fails the events are sent again (or the
 * windows closed again on the next tick), so what the batch did to the state must be undone, or its
 * events would count twice and a hit could be lost.
 *
 * Each group's observations are copied into an undo log before the transaction first changes the group
 * (groups it creates are noted as new); a rollback puts the copies back, newest first, with the newest
 * eventTime and the counters as they were. The copies are shallow (one memcpy per group): no string
 * of an observation is freed while a transaction is open. Strings of observations dropped meanwhile
 * wait in `grave` (freed at the commit: a copy may point at them); strings of observations taken
 * meanwhile are listed in `added` (freed at a rollback: no copy points at them). */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sigma/correlate_int.h"

static int push(char ***v, size_t *n, size_t *cap, char *s)
{
    if (!s)
        return 1;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        char **p = realloc(*v, nc * sizeof *p);
        if (!p)
            return 0;
        *v = p;
        *cap = nc;
    }
    (*v)[(*n)++] = s;
    return 1;
}

void tw__corr_obs_release(tw_correlator *c, obs *o)
{
    if (c->rolling_back)
        return;   /* its strings are in a copy being put back, or in `added` */
    if (!c->txn) {
        tw__corr_obs_free(o);
        return;
    }
    /* out of memory: the string leaks rather than leave a copy pointing at freed memory; the
     * transaction can no longer be undone */
    if (!push(&c->grave, &c->ngrave, &c->capgrave, o->value) || !push(&c->grave, &c->ngrave, &c->capgrave, o->eid))
        c->txn_incomplete = 1;
}

void tw__corr_obs_taken(tw_correlator *c, const obs *o)
{
    if (c->txn && (!push(&c->added, &c->nadded, &c->capadded, o->value) ||
                   !push(&c->added, &c->nadded, &c->capadded, o->eid)))
        c->txn_incomplete = 1;
}

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

void tw__corr_note(tw_correlator *c, group *g)
{
    if (!c->txn || g->noted == c->txn_gen)
        return;
    g->noted = c->txn_gen;
    undo *u = undo_add(c);
    if (!u || !(u->key = malloc(g->klen + 1)) || (g->n && !(u->ev = malloc(g->n * sizeof *u->ev)))) {
        if (u)
            free(u->key);
        c->txn_incomplete = 1;
        return;
    }
    memcpy(u->key, g->key, g->klen + 1);
    if (g->n)
        memcpy(u->ev, g->ev, g->n * sizeof *u->ev);
    u->klen = g->klen;
    u->corr = g->corr;
    u->existed = 1;
    u->wstart = g->wstart;
    u->n = g->n;
    c->nundo++;
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

/* Forgets the undo log (the copies' arrays; their strings belong to the groups or to `grave`). */
static void undo_clear(tw_correlator *c)
{
    for (size_t i = 0; i < c->nundo; i++) {
        free(c->undo[i].ev);
        free(c->undo[i].key);
    }
    c->nundo = 0;
}

/* Keeps what the transaction did. Under c->lock. */
static void keep(tw_correlator *c)
{
    c->txn = 0;
    for (size_t i = 0; i < c->ngrave; i++)
        free(c->grave[i]);
    c->ngrave = 0;
    c->nadded = 0;
    c->txn_incomplete = 0;
    undo_clear(c);
}

void tw_correlator_begin(tw_correlator *c)
{
    pthread_mutex_lock(&c->lock);
    if (c->txn)
        keep(c);
    c->txn = 1;
    c->txn_gen++;
    c->txn_max_seen = c->max_seen;
    c->txn_st = c->st;
    pthread_mutex_unlock(&c->lock);
}

void tw_correlator_commit(tw_correlator *c)
{
    pthread_mutex_lock(&c->lock);
    keep(c);
    pthread_mutex_unlock(&c->lock);
}

tw_status tw_correlator_rollback(tw_correlator *c, tw_error *err)
{
    pthread_mutex_lock(&c->lock);
    if (c->txn_incomplete) {
        /* some change was not noted: undoing the others would leave a mix; keep it all */
        keep(c);
        pthread_mutex_unlock(&c->lock);
        return tw__err(err, TW_ENOMEM, "out of memory: a failed commit's correlation input was kept");
    }
    c->txn = 0;
    c->rolling_back = 1;
    for (size_t i = c->nundo; i-- > 0;) {
        undo *u = &c->undo[i];
        group *g = tw__corr_group(c, u->corr, u->key, u->klen, u->existed ? 2 : 0);
        if (!u->existed) {
            if (g)
                tw__corr_group_drop(c, g, 0);
            continue;
        }
        if (!g) {   /* out of memory re-creating it: its state is lost (its strings with it) */
            for (size_t k = 0; k < u->n; k++)
                tw__corr_obs_free(&u->ev[k]);
            continue;
        }
        free(g->ev);
        g->ev = u->ev;
        g->n = g->cap = u->n;
        g->wstart = u->wstart;
        tw__corr_mark_dirty(c, g);
        u->ev = NULL;
        if (!g->n)
            tw__corr_group_drop(c, g, 0);
    }
    c->rolling_back = 0;
    for (size_t i = 0; i < c->nadded; i++)
        free(c->added[i]);
    c->nadded = 0;
    c->ngrave = 0;   /* the copies put back hold them again */
    c->max_seen = c->txn_max_seen;
    c->st = c->txn_st;
    undo_clear(c);
    pthread_mutex_unlock(&c->lock);
    return TW_OK;
}

void tw__corr_txn_free(tw_correlator *c)
{
    keep(c);
    free(c->undo);
    free(c->grave);
    free(c->added);
    c->undo = NULL;
    c->grave = c->added = NULL;
    c->capundo = c->capgrave = c->capadded = 0;
}
