/*
 * common/err.h: filling a tw_error (internal).
 *
 * Ownership: the tw_error belongs to the caller; these helpers only write into it (NULL is allowed).
 */
#ifndef TW_COMMON_ERR_H
#define TW_COMMON_ERR_H

#include "trailwatch/error.h"

/* Sets err->code and a printf-formatted message; returns code so callers can `return tw__err(...)`. */
tw_status tw__err(tw_error *err, tw_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "<formatted>: " to an existing message, to add where (file, line, path) on the way up. */
tw_status tw__err_prefix(tw_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
