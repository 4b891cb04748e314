/* config/snapshot.c: reference-counted configuration snapshots. */
#include "config/snapshot.h"

#include <stdlib.h>

#include "common/err.h"

static tw_snapshot *snapshot_new(tw_config *cfg)
{
    tw_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = cfg;
    s->refs = 1;
    pthread_mutex_init(&s->pool_lock, NULL);
    return s;
}

static void snapshot_free(tw_snapshot *s)
{
    for (size_t i = 0; i < s->pool.n; i++)
        tw_matcher_free(s->pool.v[i]);
    TW_VEC_FREE(&s->pool);
    if (s->ext && s->ext_free)
        s->ext_free(s->ext);
    pthread_mutex_destroy(&s->pool_lock);
    tw_config_free(s->cfg);
    free(s);
}

tw_status tw__snapshots_init(tw_snapshots *s, tw_config *cfg, tw_error *err)
{
    pthread_mutex_init(&s->lock, NULL);
    if (!(s->cur = snapshot_new(cfg))) {
        tw_config_free(cfg);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    return TW_OK;
}

void tw__snapshots_destroy(tw_snapshots *s)
{
    if (s->cur)
        tw__snapshot_release(s->cur);
    s->cur = NULL;
    pthread_mutex_destroy(&s->lock);
}

tw_status tw__snapshots_swap(tw_snapshots *s, tw_config *cfg, tw_error *err)
{
    tw_snapshot *n = snapshot_new(cfg);
    if (!n) {
        tw_config_free(cfg);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&s->lock);
    tw_snapshot *old = s->cur;
    s->cur = n;
    pthread_mutex_unlock(&s->lock);
    tw__snapshot_release(old);
    return TW_OK;
}

tw_snapshot *tw__snapshot_acquire(tw_snapshots *s)
{
    pthread_mutex_lock(&s->lock);
    tw_snapshot *snap = s->cur;
    atomic_fetch_add(&snap->refs, 1);
    pthread_mutex_unlock(&s->lock);
    return snap;
}

void tw__snapshot_release(tw_snapshot *snap)
{
    if (snap && atomic_fetch_sub(&snap->refs, 1) == 1)
        snapshot_free(snap);
}

tw_matcher *tw__snapshot_matcher(tw_snapshot *snap)
{
    tw_matcher *m = NULL;
    pthread_mutex_lock(&snap->pool_lock);
    if (snap->pool.n)
        m = snap->pool.v[--snap->pool.n];
    pthread_mutex_unlock(&snap->pool_lock);
    if (!m && tw_matcher_new(snap->cfg->ruleset, &m))
        return NULL;
    return m;
}

void tw__snapshot_matcher_put(tw_snapshot *snap, tw_matcher *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&snap->pool_lock);
    tw_status rc = TW_VEC_PUSH(&snap->pool, m);
    pthread_mutex_unlock(&snap->pool_lock);
    if (rc)
        tw_matcher_free(m);
}

void *tw__snapshot_ext(tw_snapshot *snap, void *(*make)(void *ctx, const tw_config *cfg), void (*free_fn)(void *),
                      void *ctx)
{
    void *p = atomic_load_explicit(&snap->ext, memory_order_acquire);
    if (p)
        return p;
    pthread_mutex_lock(&snap->pool_lock);
    if (!(p = snap->ext) && (p = make(ctx, snap->cfg))) {
        snap->ext_free = free_fn;
        atomic_store_explicit(&snap->ext, p, memory_order_release);
    }
    pthread_mutex_unlock(&snap->pool_lock);
    return p;
}
