/*
 * engine/dedup.h: CloudTrail eventIDs seen recently, to drop duplicate deliveries (internal).
 *
 * Ownership: the set owns its tables; keys are stored as 128-bit hashes, never as strings.
 *
 * Two generations: lookups check both, inserts go to the current one, and every half window (or
 * when the current one holds half the capacity) the previous generation is dropped. An id is
 * remembered for at least half the window and at most the whole of it, in bounded memory.
 */
#ifndef TW_ENGINE_DEDUP_H
#define TW_ENGINE_DEDUP_H

#include <stddef.h>
#include <stdint.h>

/* The most ids remembered: 2 M ids of 16 bytes in tables at most half full: ~64 MB at worst. */
#define TW_DEDUP_MAX_IDS (2u * 1024u * 1024u)

typedef struct tw_dedup tw_dedup;

tw_dedup *tw__dedup_new(int64_t window_ms);
void tw__dedup_free(tw_dedup *d);
/* 1 when id was seen in the window; otherwise remembers it (at now_ms) and returns 0. -1 when out
 * of memory (treated as "not seen": a duplicate alert is better than a lost one). Not thread-safe. */
int tw__dedup_check_add(tw_dedup *d, const char *id, size_t len, int64_t now_ms);
/* Forgets an id added by check_add (its batch could not be made durable). */
void tw__dedup_forget(tw_dedup *d, const char *id, size_t len);

#endif
