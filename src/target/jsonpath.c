/* target/jsonpath.c: the JSONPath subset EventBridge input transformation uses ($, .name, [0], ['name']).
 *
 * Paths are short (<= TW_JSONPATH_MAX, the AWS limit for InputPath and InputPathsMap values), so they
 * are re-scanned on every lookup instead of being compiled: one pass, no allocation. Wildcards,
 * filters, slices and recursive descent are refused: EventBridge evaluates paths to one value. */
#include <string.h>

#include "target/transform.h"

#define TW_JSONPATH_MAX 256    /* AWS: InputPath and InputPathsMap values are 1..256 characters */
#define TW_JSONPATH_INDEX_DIGITS 9

/* One step of a path: a member name (decoded into name) or an array index. */
typedef struct step {
    int is_index;
    size_t index;
    char name[TW_JSONPATH_MAX + 1];
    size_t nlen;
} step;

/* Characters that end a dot-notation name or may not appear in one. */
static int name_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && !strchr(".[]*'\"?()@,:=<>!", c);
}

/* Reads the step at *p; returns 1 and advances, 0 at the end, -1 when the syntax is not accepted. */
static int next_step(const char **p, step *st)
{
    const char *s = *p;
    if (!*s)
        return 0;
    if (*s == '.') {
        s++;
        size_t n = 0;
        while (name_char((unsigned char)s[n]))
            n++;
        if (n == 0 || n > TW_JSONPATH_MAX)
            return -1;                          /* "..", "$.", "$.*", "$.[0]" */
        memcpy(st->name, s, n);
        st->name[n] = '\0';
        st->nlen = n;
        st->is_index = 0;
        *p = s + n;
        return 1;
    }
    if (*s != '[')
        return -1;
    s++;
    if (*s >= '0' && *s <= '9') {
        size_t v = 0, digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (++digits > TW_JSONPATH_INDEX_DIGITS)
                return -1;
            v = v * 10 + (size_t)(*s++ - '0');
        }
        if (*s != ']')
            return -1;
        st->is_index = 1;
        st->index = v;
        *p = s + 1;
        return 1;
    }
    if (*s != '\'' && *s != '"')
        return -1;                              /* [*], [-1], [?(...)], [1:2] */
    char q = *s++;
    size_t n = 0;
    for (;;) {
        char c = *s++;
        if (c == '\0')
            return -1;
        if (c == q)
            break;
        if (c == '\\') {                        /* \' \" \\ */
            c = *s++;
            if (c != '\'' && c != '"' && c != '\\')
                return -1;
        }
        if (n >= TW_JSONPATH_MAX)
            return -1;
        st->name[n++] = c;
    }
    if (*s != ']')
        return -1;
    st->name[n] = '\0';
    st->nlen = n;
    st->is_index = 0;
    *p = s + 1;
    return 1;
}

int tw__jsonpath_valid(const char *path)
{
    if (!path || path[0] != '$' || strlen(path) > TW_JSONPATH_MAX)
        return 0;
    const char *p = path + 1;
    step st;
    int r;
    while ((r = next_step(&p, &st)) == 1) {
    }
    return r == 0;
}

/* The last member of obj named exactly name (names may hold any byte but NUL). */
static const tw_json *member(const tw_json *obj, const char *name, size_t nlen)
{
    if (tw_json_typeof(obj) != TW_JSON_OBJECT)
        return NULL;
    for (size_t i = tw_json_size(obj); i-- > 0;) {
        size_t klen;
        const char *k = tw_json_key(obj, i, &klen);
        if (klen == nlen && memcmp(k, name, nlen) == 0)
            return tw_json_at(obj, i);
    }
    return NULL;
}

const tw_json *tw__jsonpath_get(const tw_json *v, const char *path) { return tw__jsonpath_get_in(v, NULL, path); }

const tw_json *tw__jsonpath_get_in(const tw_json *v, const tw_json *extra, const char *path)
{
    if (!v || !tw__jsonpath_valid(path))
        return NULL;
    const char *p = path + 1;
    step st;
    int first = 1;
    while (v && next_step(&p, &st) == 1) {
        const tw_json *x = first && !st.is_index ? member(extra, st.name, st.nlen) : NULL;
        first = 0;
        if (x)
            v = x;
        else if (st.is_index)
            v = tw_json_typeof(v) == TW_JSON_ARRAY && st.index < tw_json_size(v) ? tw_json_at(v, st.index)
                                                                                 : NULL;
        else
            v = member(v, st.name, st.nlen);
    }
    return v;
}
