/* pattern/matcher.c: does one matcher accept one event value. */
#include <math.h>
#include <string.h>

#include "common/utf8.h"
#include "json/lex.h"
#include "json/number.h"
#include "pattern/casefold.h"
#include "pattern/pattern_int.h"
#include "pattern/regex.h"

double tw__value_number(tw__value *v)
{
    if (!v->have_num) {
        v->num = tw__number_to_double(v->s, v->len);
        v->have_num = 1;
    }
    return v->num;
}

/* Bit 7 of each byte of w that is an ASCII capital (w holds no byte >= 0x80). */
static inline uint64_t upper_bits(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t ge_a = w + ones * (0x80 - 'A'), gt_z = w + ones * (0x7f - 'Z');
    return ge_a & ~gt_z & ones * 0x80;
}

/* ASCII folding of a value, 8 bytes at a time: 1 when s is ASCII (folded into o when o is given
 * and some byte changes; *changed says whether one did), 0 at the first non-ASCII byte. */
static int fold_ascii(const char *s, size_t len, char *o, int *changed)
{
    const uint64_t high = 0x8080808080808080ULL;
    uint64_t any = 0, upper = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        any |= w;
        if (w & high)
            return 0;
        uint64_t u = upper_bits(w);
        upper |= u;
        if (o) {
            w |= u >> 2;   /* 0x80 >> 2 = 0x20: 'A' + 0x20 = 'a' */
            memcpy(o + i, &w, 8);
        }
    }
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80)
            return 0;
        upper |= c >= 'A' && c <= 'Z';
        if (o)
            o[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    (void)any;
    *changed = upper != 0;
    return 1;
}

const char *tw__value_fold(tw__value *v, tw_arena *scratch, uint32_t *len)
{
    if (!v->have_fold) {
        int changed = 0;
        /* one pass into per-event scratch (reset with the event); the original is kept when nothing
         * changes */
        char *o = tw__arena_alloc(scratch, v->len + 1);
        if (!o)
            return NULL;
        if (fold_ascii(v->s, v->len, o, &changed)) {
            o[v->len] = '\0';
            v->fold = changed ? o : v->s;
            v->flen = v->len;
        } else {
            /* Simple folding maps one character to one, at most 1.5 times its UTF-8 length: fold
             * straight into the per-event arena (nothing malloc'd per value). */
            o = tw__arena_alloc(scratch, (size_t)v->len * 2 + 4);
            if (!o)
                return NULL;
            const unsigned char *p = (const unsigned char *)v->s, *end = p + v->len;
            size_t n = 0;
            while (p < end) {
                uint32_t cp;
                size_t k = tw__utf8_seq(p, end, &cp);
                if (!k) { /* not UTF-8 (cannot come from a validated event): bytes as they are */
                    o[n++] = (char)*p++;
                    continue;
                }
                p += k;
                n += tw__utf8_put(o + n, tw__fold_cp(cp));
            }
            o[n] = '\0';
            v->fold = o;
            v->flen = (uint32_t)n;
        }
        v->have_fold = 1;
    }
    *len = v->flen;
    return v->fold;
}

int tw__number_equal(const tw__matcher *m, tw__value *v)
{
    double d = tw__value_number(v);
    if (m->num_exact)
        return d == m->d && tw__number_exact(v->s, v->len, d);
    /* The pattern's literal does not survive a double: only the same text matches. */
    return v->len == m->len && memcmp(v->s, m->s, v->len) == 0;
}

static int is_string(const tw__value *v) { return v->type == TW_JSON_STRING; }

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Day of the week, Monday 1 .. Sunday 7 (Sakamoto's method). */
static int weekday(int y, int m, int d)
{
    static const int t[12] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (m < 3)
        y--;
    int w = (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
    return w == 0 ? 7 : w;
}

/* A year has 53 ISO weeks when it starts on a Thursday, or on a Wednesday in a leap year. */
static int iso_weeks(int y)
{
    int j = weekday(y, 1, 1);
    return j == 4 || (j == 3 && is_leap(y)) ? 53 : 52;
}

static int iso_week(int y, int mo, int d)
{
    static const int cum[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int doy = cum[mo - 1] + d + (is_leap(y) && mo > 2);
    int w = (doy - weekday(y, mo, d) + 10) / 7;
    if (w < 1)
        return iso_weeks(y - 1);
    return w > iso_weeks(y) ? 1 : w;
}

int tw__time_part(const char *s, size_t len, int part, double *out)
{
    int y, mo, d, h = 0, mi = 0;
    if (len < 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
        !digits(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return 0;
    int has_time = len >= 16 && (s[10] == 'T' || s[10] == ' ') && s[13] == ':' && digits(s + 11, 2, &h) &&
                   digits(s + 14, 2, &mi) && h < 24 && mi < 60;
    if ((part == TW_TP_MINUTE || part == TW_TP_HOUR) && !has_time)
        return 0;
    switch (part) {
    case TW_TP_MINUTE: *out = mi; return 1;
    case TW_TP_HOUR: *out = h; return 1;
    case TW_TP_DAY: *out = d; return 1;
    case TW_TP_WEEK: *out = iso_week(y, mo, d); return 1;
    case TW_TP_MONTH: *out = mo; return 1;
    case TW_TP_YEAR: *out = y; return 1;
    default: return 0;
    }
}

/* The string kinds test strings; Sigma's (m->sigma) also numbers and booleans, by their JSON text. */
static int stringish(const tw__matcher *m, const tw__value *v)
{
    return v->type == TW_JSON_STRING ||
           (m->sigma && (v->type == TW_JSON_NUMBER || v->type == TW_JSON_TRUE || v->type == TW_JSON_FALSE));
}

/* A Sigma numeric comparison reads a string holding a JSON number ("4769") as that number. */
static int numeric_value(const tw__matcher *m, tw__value *v, double *d)
{
    if (v->type == TW_JSON_NUMBER) {
        *d = tw__value_number(v);
        return 1;
    }
    tw_lex_err e;
    if (!m->sigma || v->type != TW_JSON_STRING || !v->len || (v->s[0] != '-' && (v->s[0] < '0' || v->s[0] > '9')) ||
        tw__lex_number(v->s, v->s + v->len, &e) != v->s + v->len)
        return 0;
    *d = tw__number_to_double(v->s, v->len);
    return 1;
}

int tw__matcher_test(const tw__matcher *m, tw__value *v, tw_arena *scratch)
{
    uint32_t flen;
    const char *f;
    switch ((tw__mkind)m->kind) {
    case TW_M_STRING:
        return stringish(m, v) && v->len == m->len && memcmp(v->s, m->s, m->len) == 0;
    case TW_M_NUMBER:
        return v->type == TW_JSON_NUMBER && tw__number_equal(m, v);
    case TW_M_NULL:
        return v->type == TW_JSON_NULL;
    case TW_M_TRUE:
        return v->type == TW_JSON_TRUE;
    case TW_M_FALSE:
        return v->type == TW_JSON_FALSE;
    case TW_M_PREFIX:
        return stringish(m, v) && v->len >= m->len && memcmp(v->s, m->s, m->len) == 0;
    case TW_M_SUFFIX:
        return stringish(m, v) && v->len >= m->len && memcmp(v->s + v->len - m->len, m->s, m->len) == 0;
    case TW_M_PREFIX_EIC:
        if (!stringish(m, v) || !(f = tw__value_fold(v, scratch, &flen)))
            return 0;
        return flen >= m->len && memcmp(f, m->s, m->len) == 0;
    case TW_M_SUFFIX_EIC:
        if (!stringish(m, v) || !(f = tw__value_fold(v, scratch, &flen)))
            return 0;
        return flen >= m->len && memcmp(f + flen - m->len, m->s, m->len) == 0;
    case TW_M_EIC:
        if (!stringish(m, v) || !(f = tw__value_fold(v, scratch, &flen)))
            return 0;
        return flen == m->len && memcmp(f, m->s, m->len) == 0;
    case TW_M_WILDCARD:
        return stringish(m, v) && tw__wildcard_match(&m->wc, v->s, v->len);
    case TW_M_GLOB:
        if (!stringish(m, v))
            return 0;
        if (m->flags & TW_MF_CASED)
            return tw__glob_match(&m->wc, v->s, v->len);
        return (f = tw__value_fold(v, scratch, &flen)) != NULL && tw__glob_match(&m->wc, f, flen);
    case TW_M_REGEX:
        return stringish(m, v) && m->re && tw__regex_match(m->re, v->s, v->len, scratch, NULL);
    case TW_M_NUMERIC:
    case TW_M_TIMEPART: {
        double d;
        if (m->kind == TW_M_TIMEPART ? !(is_string(v) && tw__time_part(v->s, v->len, m->flags, &d))
                                     : !numeric_value(m, v, &d))
            return 0;
        if (isnan(d))
            return 0;
        if (m->has_lo && (m->lo_incl ? d < m->lo : d <= m->lo))
            return 0;
        if (m->has_hi && (m->hi_incl ? d > m->hi : d >= m->hi))
            return 0;
        return 1;
    }
    case TW_M_EXISTS:
        return 1;
    case TW_M_CIDR:
        return is_string(v) && tw__cidr_match(m, v);
    case TW_M_ANYTHING_BUT:
        if (m->sigma && (v->type == TW_JSON_OBJECT || v->type == TW_JSON_ARRAY))
            return 0; /* a deep field's presence mark is not a value */
        for (uint32_t i = 0; i < m->nlist; i++)
            if (tw__matcher_test(&m->list[i], v, scratch))
                return 0;
        return 1;
    case TW_M_KIND_COUNT_:
        break;
    }
    return 0;
}
