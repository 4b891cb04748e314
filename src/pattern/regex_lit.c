/* pattern/regex_lit.c: the literal text every match of a regular expression contains.
 *
 * A `|re` value would otherwise be an anchor that is tested: the expression run over every value of
 * its field in every event. A run of literal bytes that any match must contain lets the rule set file
 * the rule under a contains key instead (found by the field's Aho-Corasick scan); the expression
 * still decides. The reading is deliberately narrow: anything it does not follow (alternation at the
 * top, option settings, escapes with arguments, odd braces) gives no literal, never a wrong one. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "pattern/regex.h"

/* Index just past the class opening at pat[i] ('['), or 0 when it does not close. */
static size_t skip_class(const char *pat, size_t len, size_t i)
{
    i++;
    if (i < len && pat[i] == '^')
        i++;
    if (i < len && pat[i] == ']') /* a ']' first is literal */
        i++;
    while (i < len) {
        char c = pat[i];
        if (c == '\\') {
            i += 2;
        } else if (c == '[' && i + 1 < len && (pat[i + 1] == ':' || pat[i + 1] == '.' || pat[i + 1] == '=')) {
            const char *end = NULL;
            for (size_t j = i + 2; j + 1 < len && !end; j++)
                if (pat[j] == pat[i + 1] && pat[j + 1] == ']')
                    end = pat + j;
            if (!end)
                return 0;
            i = (size_t)(end - pat) + 2;
        } else if (c == ']') {
            return i + 1;
        } else {
            i++;
        }
    }
    return 0;
}

/* Index just past the group opening at pat[i] ('('), or 0 when it is not one this reading skips
 * (an option setting such as (?i) changes what follows it; verbs, comments, conditionals). */
static size_t skip_group(const char *pat, size_t len, size_t i)
{
    if (i + 1 < len && pat[i + 1] == '*')
        return 0;
    if (i + 1 < len && pat[i + 1] == '?') {
        char k = i + 2 < len ? pat[i + 2] : '\0';
        int ok = k == ':' || k == '=' || k == '!' || k == '>' || k == '|' ||
                 (k == '<' && i + 3 < len && (pat[i + 3] == '=' || pat[i + 3] == '!'));
        if (!ok)
            return 0;
    }
    unsigned depth = 0;
    while (i < len) {
        char c = pat[i];
        if (c == '\\') {
            i += 2;
        } else if (c == '[') {
            if (!(i = skip_class(pat, len, i)))
                return 0;
        } else if (c == '(') {
            if (i + 1 < len && pat[i + 1] == '?' && i + 2 < len && isalpha((unsigned char)pat[i + 2]))
                return 0; /* an option setting inside: e.g. (?i) */
            depth++;
            i++;
        } else if (c == ')') {
            i++;
            if (--depth == 0)
                return i;
        } else {
            i++;
        }
    }
    return 0;
}

/* {n}, {n,}, {n,m}, {,m}: a quantifier; returns the index past it, 0 if the brace is anything else. */
static size_t skip_braces(const char *pat, size_t len, size_t i)
{
    size_t j = i + 1, digits = 0;
    while (j < len && (isdigit((unsigned char)pat[j]) || pat[j] == ',')) {
        digits += isdigit((unsigned char)pat[j]) != 0;
        j++;
    }
    return j < len && pat[j] == '}' && digits ? j + 1 : 0;
}

typedef struct runs {
    char *cur, *best;
    size_t ncur, nbest;
} runs;

static void end_run(runs *r)
{
    if (r->ncur > r->nbest) {
        memcpy(r->best, r->cur, r->ncur);
        r->nbest = r->ncur;
    }
    r->ncur = 0;
}

/* A quantifier allowing zero repetitions: the character before it is not required. */
static void drop_last(runs *r)
{
    while (r->ncur && ((unsigned char)r->cur[r->ncur - 1] & 0xc0) == 0x80)
        r->ncur--;
    if (r->ncur)
        r->ncur--;
}

size_t tw__regex_literal(const char *pat, size_t len, int caseless, char *out)
{
    runs r = {malloc(len + 1), out, 0, 0};
    if (!r.cur)
        return 0;
    size_t i = 0;
    int ok = 1;
    while (i < len && ok) {
        unsigned char c = (unsigned char)pat[i];
        size_t j;
        switch (c) {
        case '|':
        case ')':
            ok = 0;
            break;
        case '(':
            end_run(&r);
            if (!(j = skip_group(pat, len, i)))
                ok = 0;
            i = j;
            break;
        case '[':
            end_run(&r);
            if (!(j = skip_class(pat, len, i)))
                ok = 0;
            i = j;
            break;
        case '\\': {
            unsigned char d = i + 1 < len ? (unsigned char)pat[i + 1] : 0;
            if (!d) {
                ok = 0;
            } else if (isalnum(d)) {
                /* character types and assertions take no argument; \x, \p, \Q, back references do */
                if (!strchr("dDwWsShHvVRbBAzZGX", d))
                    ok = 0;
                end_run(&r);
            } else if (caseless && d >= 0x80) {
                end_run(&r);
            } else {
                r.cur[r.ncur++] = (char)(caseless && isupper(d) ? tolower(d) : d);
            }
            i += 2;
            break;
        }
        case '.':
        case '^':
        case '$':
        case '+': /* the character before is still required at least once */
            end_run(&r);
            i++;
            break;
        case '*':
        case '?':
            drop_last(&r);
            end_run(&r);
            i++;
            break;
        case '{':
            drop_last(&r);
            end_run(&r);
            if (!(j = skip_braces(pat, len, i)))
                ok = 0;
            i = j;
            break;
        default:
            if (caseless && c >= 0x80) {
                /* Unicode case equivalence beyond ASCII is left to the expression */
                end_run(&r);
                i++;
                while (i < len && ((unsigned char)pat[i] & 0xc0) == 0x80)
                    i++;
                break;
            }
            r.cur[r.ncur++] = (char)(caseless && isupper(c) ? tolower(c) : c);
            i++;
            break;
        }
    }
    if (ok)
        end_run(&r);
    free(r.cur);
    return ok && r.nbest >= 2 ? r.nbest : 0;
}
