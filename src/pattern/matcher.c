/* pattern/matcher.c: does one matcher accept one event value. */
#include <math.h>
#include <string.h>

#include "json/number.h"
#include "pattern/casefold.h"
#include "pattern/pattern_int.h"

double tw__value_number(tw__value *v)
{
    if (!v->have_num) {
        v->num = tw__number_to_double(v->s, v->len);
        v->have_num = 1;
    }
    return v->num;
}

const char *tw__value_fold(tw__value *v, tw_arena *scratch, uint32_t *len)
{
    if (!v->have_fold) {
        if (tw__is_ascii(v->s, v->len)) {
            /* ASCII folds byte for byte; skip the copy when nothing changes. */
            size_t i = 0;
            while (i < v->len && !(v->s[i] >= 'A' && v->s[i] <= 'Z'))
                i++;
            if (i == v->len) {
                v->fold = v->s;
                v->flen = v->len;
            } else {
                char *o = tw_arena_alloc(scratch, v->len + 1);
                if (!o)
                    return NULL;
                for (size_t j = 0; j < v->len; j++) {
                    char c = v->s[j];
                    o[j] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
                }
                v->fold = o;
                v->flen = v->len;
            }
        } else {
            tw_buf b = TW_BUF_INIT;
            if (tw__casefold(v->s, v->len, &b)) {
                tw_buf_free(&b);
                return NULL;
            }
            char *o = tw_arena_strndup(scratch, b.data, b.len);
            v->flen = (uint32_t)b.len;
            tw_buf_free(&b);
            if (!o)
                return NULL;
            v->fold = o;
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

int tw__matcher_test(const tw__matcher *m, tw__value *v, tw_arena *scratch)
{
    uint32_t flen;
    const char *f;
    switch ((tw__mkind)m->kind) {
    case TW_M_STRING:
        return is_string(v) && v->len == m->len && memcmp(v->s, m->s, m->len) == 0;
    case TW_M_NUMBER:
        return v->type == TW_JSON_NUMBER && tw__number_equal(m, v);
    case TW_M_NULL:
        return v->type == TW_JSON_NULL;
    case TW_M_TRUE:
        return v->type == TW_JSON_TRUE;
    case TW_M_FALSE:
        return v->type == TW_JSON_FALSE;
    case TW_M_PREFIX:
        return is_string(v) && v->len >= m->len && memcmp(v->s, m->s, m->len) == 0;
    case TW_M_SUFFIX:
        return is_string(v) && v->len >= m->len && memcmp(v->s + v->len - m->len, m->s, m->len) == 0;
    case TW_M_PREFIX_EIC:
        if (!is_string(v) || !(f = tw__value_fold(v, scratch, &flen)))
            return 0;
        return flen >= m->len && memcmp(f, m->s, m->len) == 0;
    case TW_M_SUFFIX_EIC:
        if (!is_string(v) || !(f = tw__value_fold(v, scratch, &flen)))
            return 0;
        return flen >= m->len && memcmp(f + flen - m->len, m->s, m->len) == 0;
    case TW_M_EIC:
        if (!is_string(v) || !(f = tw__value_fold(v, scratch, &flen)))
            return 0;
        return flen == m->len && memcmp(f, m->s, m->len) == 0;
    case TW_M_WILDCARD:
        return is_string(v) && tw__wildcard_match(&m->wc, v->s, v->len);
    case TW_M_NUMERIC: {
        if (v->type != TW_JSON_NUMBER)
            return 0;
        double d = tw__value_number(v);
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
        for (uint32_t i = 0; i < m->nlist; i++)
            if (tw__matcher_test(&m->list[i], v, scratch))
                return 0;
        return 1;
    case TW_M_KIND_COUNT_:
        break;
    }
    return 0;
}
