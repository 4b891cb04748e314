/*
 * common/budget.h: a byte budget shared by threads (internal): what requests hold in memory at once.
 *
 * Ownership: a tw__budget is a plain value owned by whoever sets it up; takers give back exactly what
 * they took. Lock-free: a take either fits under the cap and is counted, or is refused whole.
 */
#ifndef TW_COMMON_BUDGET_H
#define TW_COMMON_BUDGET_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct tw__budget {
    _Atomic size_t used;
    size_t cap;                    /* 0: no cap */
} tw__budget;

/* 1 and counted when n more bytes fit (a NULL budget always fits), else 0 and nothing changes. */
static inline int tw__budget_take(tw__budget *b, size_t n)
{
    if (!b || !n)
        return 1;
    size_t cur = atomic_load_explicit(&b->used, memory_order_relaxed);
    do {
        if (b->cap && (n > b->cap || cur > b->cap - n))
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(&b->used, &cur, cur + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 1;
}

static inline void tw__budget_give(tw__budget *b, size_t n)
{
    if (b && n)
        atomic_fetch_sub_explicit(&b->used, n, memory_order_relaxed);
}

#endif
