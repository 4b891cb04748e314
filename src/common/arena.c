/* common/arena.c: chunked bump allocator. */
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct tw_arena_chunk {
    tw_arena_chunk *next;
    size_t size;           /* usable bytes after the header */
    max_align_t data[];
};

#define ARENA_CHUNK_MIN 1024u /* small: many arenas (one per pattern) hold about a kilobyte */

void *tw__arena_alloc(tw_arena *a, size_t n)
{
    n = (n + 7u) & ~(size_t)7u;
    if (n == 0)
        n = 8;
    if (!a->head || a->head->size - a->used < n) {
        size_t size = a->head ? a->head->size * 2 : ARENA_CHUNK_MIN;
        if (size < n)
            size = n;
        if (size > ((size_t)1 << 24) && n < ((size_t)1 << 24))
            size = (size_t)1 << 24; /* grow geometrically, but not without bound */
        tw_arena_chunk *c = malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->next = a->head;
        c->size = size;
        a->head = c;
        a->used = 0;
    }
    void *p = (char *)a->head->data + a->used;
    a->used += n;
    a->total += n;
    return p;
}

void *tw__arena_calloc(tw_arena *a, size_t n)
{
    void *p = tw__arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *tw__arena_strndup(tw_arena *a, const char *s, size_t n)
{
    char *p = tw__arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void tw__arena_reset(tw_arena *a)
{
    if (!a->head)
        return;
    /* Keep only the largest (most recent) chunk. */
    tw_arena_chunk *keep = a->head, *c = keep->next;
    while (c) {
        tw_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    keep->next = NULL;
    a->head = keep;
    a->used = 0;
    a->total = 0;
}

void tw__arena_free(tw_arena *a)
{
    tw_arena_chunk *c = a->head;
    while (c) {
        tw_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = a->total = 0;
}
