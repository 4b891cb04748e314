/*
 * common/arena.h: a bump allocator for trees that die together (internal).
 *
 * Ownership: the arena owns every block it hands out; tw__arena_free releases them all at once;
 * tw__arena_reset keeps the first chunk for reuse so steady-state use allocates nothing.
 */
#ifndef TW_COMMON_ARENA_H
#define TW_COMMON_ARENA_H

#include <stddef.h>

typedef struct tw_arena_chunk tw_arena_chunk;

typedef struct tw_arena {
    tw_arena_chunk *head;
    size_t used;      /* bytes handed out in head */
    size_t total;     /* bytes handed out overall (for limits) */
} tw_arena;

#define TW_ARENA_INIT {NULL, 0, 0}

/* Returns 8-byte-aligned memory or NULL. n may be 0 (returns a valid unique pointer). */
void *tw__arena_alloc(tw_arena *a, size_t n);
void *tw__arena_calloc(tw_arena *a, size_t n);
/* Copies n bytes and adds a NUL. */
char *tw__arena_strndup(tw_arena *a, const char *s, size_t n);
void tw__arena_reset(tw_arena *a);
void tw__arena_free(tw_arena *a);

#endif
