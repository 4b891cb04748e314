/* json/number.c: literal -> double, and the "survives a double" test. */
#include "json/number.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Correct rounding of a double needs at most 768 significant digits; longer literals are cut there. */
#define NUM_BUF 800

double tw__number_to_double(const char *text, size_t n)
{
    /* Fast path: short integers are exact in a double. */
    if (n > 0 && n <= 15) {
        size_t i = text[0] == '-';
        if (i < n) {
            uint64_t v = 0;
            size_t j = i;
            for (; j < n && text[j] >= '0' && text[j] <= '9'; j++)
                v = v * 10 + (uint64_t)(text[j] - '0');
            if (j == n)
                return i ? -(double)v : (double)v;
        }
    }
    char buf[NUM_BUF + 32];
    if (n < NUM_BUF) {
        memcpy(buf, text, n);
        buf[n] = '\0';
        return strtod(buf, NULL);
    }
    /* Very long literal: keep sign, the first NUM_BUF-40 mantissa digits and the exponent. */
    size_t i = 0, o = 0;
    long exp10 = 0;
    if (text[i] == '-')
        buf[o++] = text[i++];
    buf[o++] = '0';
    buf[o++] = '.';
    size_t kept = 0;
    int seen_point = 0, leading = 1;
    for (; i < n && text[i] != 'e' && text[i] != 'E'; i++) {
        char c = text[i];
        if (c == '.') {
            seen_point = 1;
            continue;
        }
        if (leading && c == '0') {
            if (seen_point)
                exp10--;
            continue;
        }
        leading = 0;
        if (!seen_point)
            exp10++;
        if (kept < NUM_BUF - 40) {
            buf[o++] = c;
            kept++;
        }
    }
    if (i < n) {
        long e = strtol(text + i + 1, NULL, 10); /* exponent digits end at text+n or a delimiter */
        exp10 += e;
    }
    if (!kept)
        return text[0] == '-' ? -0.0 : 0.0;
    snprintf(buf + o, 32, "e%ld", exp10);
    return strtod(buf, NULL);
}

/* Decimal normal form: sign, significant digits without leading/trailing zeros, and the power of
 * ten of the first digit. Returns 0 if the literal has more than cap significant digits. */
typedef struct decimal {
    int neg;
    char digits[40];
    size_t nd;
    long exp;
} decimal;

static int decimal_of(const char *t, size_t n, decimal *d)
{
    size_t i = 0;
    d->neg = 0;
    d->nd = 0;
    d->exp = 0;
    if (i < n && t[i] == '-') {
        d->neg = 1;
        i++;
    }
    long point = 0;        /* digits before the decimal point, counted from the first significant */
    int seen_point = 0, leading = 1;
    size_t trailing_zeros = 0;
    for (; i < n && t[i] != 'e' && t[i] != 'E'; i++) {
        char c = t[i];
        if (c == '.') {
            seen_point = 1;
            continue;
        }
        if (leading && c == '0') {
            if (seen_point)
                point--;
            continue;
        }
        leading = 0;
        if (!seen_point)
            point++;
        if (c == '0') {
            trailing_zeros++;
            continue;
        }
        /* flush pending zeros, then this digit */
        if (d->nd + trailing_zeros + 1 > sizeof d->digits)
            return 0;
        while (trailing_zeros) {
            d->digits[d->nd++] = '0';
            trailing_zeros--;
        }
        d->digits[d->nd++] = c;
    }
    long e = 0;
    if (i < n) {
        i++;
        int eneg = 0;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            eneg = t[i++] == '-';
        for (; i < n; i++) {
            if (e < 100000)
                e = e * 10 + (t[i] - '0');
        }
        if (eneg)
            e = -e;
    }
    d->exp = d->nd ? point + e : 0;
    if (!d->nd)
        d->neg = 0; /* -0 == 0 */
    return 1;
}

int tw__number_exact(const char *text, size_t n, double d)
{
    if (!isfinite(d))
        return 0;
    decimal lit;
    if (!decimal_of(text, n, &lit))
        return 0;
    char buf[64];
    for (int prec = 0; prec <= 17; prec++) {
        int len = snprintf(buf, sizeof buf, "%.*e", prec, d);
        if (strtod(buf, NULL) == d) {
            decimal shortest;
            if (!decimal_of(buf, (size_t)len, &shortest))
                return 0;
            return lit.neg == shortest.neg && lit.nd == shortest.nd && lit.exp == shortest.exp &&
                   memcmp(lit.digits, shortest.digits, lit.nd) == 0;
        }
    }
    return 0;
}
