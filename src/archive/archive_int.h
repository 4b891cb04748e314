/*
 * archive/archive_int.h: the tw_archive handle, shared by archive.c (open, queue, flush, stats) and
 * query.c (find, who, counts) (internal).
 *
 * Ownership: the handle owns its backend, the queued events (copied into its arena) and the queue's
 * index.
 */
#ifndef TW_ARCHIVE_INT_H
#define TW_ARCHIVE_INT_H

#include "archive/backend.h"
#include "archive/extract.h"
#include "common/arena.h"
#include "common/vec.h"

/* Index terms kept per event (see extract.h): beyond it, resources are not indexed. */
#define TW_ARCH_MAX_TERMS (TW_ARCH_MAX_RESOURCES + TW_ARCH_MAX_IDENTITIES + 4u)

struct tw_archive {
    tw__archive_backend *be;
    int readonly;
    int check_stored;              /* tw_archive_check_stored: add looks ids up among stored events */
    tw_arena qa;                   /* queued bodies, strings and terms */
    TW_VEC(tw__arch_rec) recs;     /* the queue */
    TW_VEC(const char *) ids;      /* recs' ids ("" none), for the queue's own dedup */
    uint64_t *idset;               /* open addressing over ids: index + 1, 0 empty */
    size_t idset_cap;
    uint64_t committed;
    uint64_t dropped;              /* stored repeats the backend dropped at commit */
    int32_t terms[TW_ARCH_MAX_TERMS];
};

/* Row of an extracted event (strings borrowed from f; body given). */
void tw__arch_row(const tw__arch_fields *f, int64_t key, const char *body, size_t len, tw_archive_row *row);

#endif
