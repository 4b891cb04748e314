/*
 * json/number.h: JSON number literals as values (internal).
 *
 * Ownership: pure functions over borrowed, already validated literals.
 *
 * Pattern semantics compare numbers numerically when both sides survive the trip through a double,
 * and by literal text otherwise ("12345678901234567890" must not equal "12345678901234567168").
 */
#ifndef TW_JSON_NUMBER_H
#define TW_JSON_NUMBER_H

#include <stddef.h>

/* The literal's value, correctly rounded; +-HUGE_VAL on overflow. Never reads past text + n. */
double tw__number_to_double(const char *text, size_t n);

/* 1 when the literal denotes exactly the decimal value of the shortest representation of d
 * (d being its double), i.e. converting it to a double lost nothing a reader would notice;
 * 0 otherwise (too many digits, out of range). */
int tw__number_exact(const char *text, size_t n, double d);

#endif
