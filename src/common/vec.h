/*
 * common/vec.h: a typed growable array (internal), so that array growth is written once.
 *
 * Ownership: a vector owns the storage of its elements (v); TW_VEC_FREE releases that storage, not
 * what the elements point to. Taking v over (v = NULL afterwards) hands the storage to the taker.
 *
 *     TW_VEC(tw_alert_row) rows = TW_VEC_INIT;     // or: typedef TW_VEC(tw_alert_row) row_vec;
 *     if (TW_VEC_PUSH(&rows, row))                 // TW_OK, or TW_ENOMEM (rows unchanged)
 *         goto nomem;
 *     tw_alert_row *r = TW_VEC_ADD(&rows);         // one more zeroed element; NULL when out of memory
 *     TW_VEC_FREE(&rows);
 *
 * The vector argument is evaluated more than once: pass a plain name or &name. Capacity doubles
 * from 16 elements; a size that would overflow is out of memory, like a failed realloc.
 */
#ifndef TW_COMMON_VEC_H
#define TW_COMMON_VEC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "trailwatch/error.h"

#define TW_VEC(T)                                                                               \
    struct {                                                                                    \
        T *v;                                                                                   \
        size_t n, cap;                                                                          \
    }
#define TW_VEC_INIT {NULL, 0, 0}

/* Makes room for `more` elements after the n in use (*vp is the T * to grow). */
tw_status tw__vec_reserve(void *vp, size_t *cap, size_t n, size_t more, size_t elem);

#define TW_VEC_RESERVE(vec, more) tw__vec_reserve(&(vec)->v, &(vec)->cap, (vec)->n, (more), sizeof *(vec)->v)
#define TW_VEC_PUSH(vec, x) (TW_VEC_RESERVE(vec, 1) ? TW_ENOMEM : ((vec)->v[(vec)->n++] = (x), TW_OK))
#define TW_VEC_ADD(vec) (TW_VEC_RESERVE(vec, 1) ? NULL : memset(&(vec)->v[(vec)->n++], 0, sizeof *(vec)->v))
#define TW_VEC_FREE(vec) (free((vec)->v), (vec)->v = NULL, (vec)->n = (vec)->cap = 0)

#endif
