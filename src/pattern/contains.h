/*
 * pattern/contains.h: an Aho-Corasick automaton over the literal segments that wildcards of one
 * field are anchored on, so one pass over an event value finds every wildcard whose segment occurs
 * in it, wherever it occurs (internal).
 *
 * Ownership: arrays owned by the rule set (tw__ac_free).
 */
#ifndef TW_PATTERN_CONTAINS_H
#define TW_PATTERN_CONTAINS_H

#include "pattern/affix.h"

typedef struct tw__ac {
    tw__affix trie;               /* the goto function: a forward trie of the segments */
    uint32_t *fail;               /* node -> longest proper suffix that is also a trie node */
    uint32_t *out;                /* node -> next node on its fail chain holding a value, or UINT32_MAX */
    uint8_t starts[256];          /* 1: a key starts with this byte (at the root, others are skipped) */
    uint8_t *one;                 /* the key when there is only one (a Sigma field usually has one
                                     contains value): found by memmem, faster than byte steps */
    uint32_t onelen, oneval;
} tw__ac;

/* Builds the automaton of keys (their order is changed). Returns 0 when out of memory. */
int tw__ac_build(tw__ac *ac, tw__affix_key *keys, size_t n);
void tw__ac_free(tw__ac *ac);
size_t tw__ac_memory(const tw__ac *ac);
/* Calls fn for the value of every key occurring in s (once per occurrence). */
void tw__ac_scan(const tw__ac *ac, const char *s, size_t len, tw__affix_fn fn, void *ctx);

#endif
