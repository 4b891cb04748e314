/*
 * pattern/casefold.h: Unicode simple case folding (CaseFolding.txt statuses C and S) (internal).
 *
 * Ownership: pure functions; output goes to a caller-owned tw_buf.
 * Both sides of equals-ignore-case are folded, so the relation is symmetric ("ours" in the spec).
 */
#ifndef TW_PATTERN_CASEFOLD_H
#define TW_PATTERN_CASEFOLD_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

uint32_t tw__fold_cp(uint32_t cp);

/* Appends the folding of the valid UTF-8 text s to out. */
tw_status tw__casefold(const char *s, size_t len, tw_buf *out);

/* 1 when s is pure ASCII (the common case: fold with a table lookup per byte). */
int tw__is_ascii(const char *s, size_t len);

#endif
