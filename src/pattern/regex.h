/*
 * pattern/regex.h: Sigma's `|re` values as PCRE2 (Debian libpcre2-8) with JIT (internal).
 *
 * Ownership: a tw__regex is created by tw__regex_compile and freed by tw__regex_free; the rule set
 * owns the ones its matchers point to. A compiled regex is immutable: any number of threads may match
 * with it at once.
 *
 * Event text is attacker-controlled (userAgent, ARNs), so every match runs under a match limit and a
 * depth limit (TW_REGEX_MATCH_LIMIT, TW_REGEX_DEPTH_LIMIT) and a heap limit: a pattern that would
 * backtrack catastrophically on a hostile value stops and counts as "no match" instead of stalling
 * the matcher. The match is unanchored (a regex matches anywhere in the value, as in rsigma and the
 * SIEM backends), case-sensitive unless TW_MF_RE_I.
 */
#ifndef TW_PATTERN_REGEX_H
#define TW_PATTERN_REGEX_H

#include <stddef.h>

#include "common/arena.h"

/* Backtracking steps one match may take (PCRE2's default is 10,000,000: far too many per value). */
#define TW_REGEX_MATCH_LIMIT 100000u
/* Nested backtracking frames (interpreter only; JIT ignores it). */
#define TW_REGEX_DEPTH_LIMIT 1000u
/* KiB of heap the interpreter may use for its frames. */
#define TW_REGEX_HEAP_LIMIT_KB 1024u
/* Bytes of one expression: Sigma regexes are a line or two. */
#define TW_REGEX_MAX 4096u

typedef struct tw__regex tw__regex;

/* Compiles (UTF mode, TW_MF_RE_* flags) and JIT-compiles when the platform can. Returns 1, or 0 with
 * PCRE2's message and the offset written to why (size bytes); 0 with *out NULL and "out of memory". */
int tw__regex_compile(const char *pat, size_t len, unsigned flags, tw__regex **out, char *why, size_t size);
void tw__regex_free(tw__regex *re);

/* 1 when the expression matches somewhere in s; 0 when not, or when a limit stopped it (then *limited
 * is set if not NULL). scratch holds the per-call match data (a per-event arena: nothing is malloc'd). */
int tw__regex_match(const tw__regex *re, const char *s, size_t len, tw_arena *scratch, int *limited);

/* The longest run of bytes (at least 2) that every match of the expression contains, lower-cased
 * when caseless (ASCII only), written to out (room for len bytes); its length, or 0 when there is
 * none or the expression uses something this reading does not follow (regex_lit.c). A value without
 * the run cannot match: the rule set files the expression under it as a contains key. */
size_t tw__regex_literal(const char *pat, size_t len, int caseless, char *out);

#endif
