/* config/sls_vars.c: Serverless Framework variables in the parts of serverless.yml trailwatch reads:
 * ${env:VAR}, ${self:path.to.value}, ${opt:name, default} (no CLI options here: always the
 * default), ${sls:stage}, fallbacks ('text', "text", numbers, true/false, another variable, or a
 * bare v1-style reference such as self:provider.stage). Other sources (ssm:, s3:, cf:, aws:,
 * file(...)) need AWS or more files: reported, never guessed. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "config/load_int.h"
#include "json/json_int.h"

#define VAR_DEPTH 32   /* nested variables and ${self:} chains; deeper is a cycle */
#define VAR_PARAMS 8

typedef struct span { const char *p; size_t n; } span;

static span trim(const char *p, size_t n)
{
    while (n && isspace((unsigned char)*p))
        p++, n--;
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    return (span){p, n};
}

/* Index of the '}' closing the variable that starts at s[i] ("${"), n when unterminated. */
static size_t var_end(const char *s, size_t n, size_t i)
{
    int depth = 0;
    char q = 0;
    for (size_t j = i; j < n; j++) {
        char c = s[j];
        if (q) {
            q = c == q ? 0 : q;
        } else if ((c == '\'' || c == '"') && depth >= 1) {   /* quoted defaults may hold } */
            q = c;
        } else if (c == '$' && j + 1 < n && s[j + 1] == '{') {
            depth++;
            j++;
        } else if (c == '}' && --depth == 0) {
            return j;
        }
    }
    return n;
}

/* The comma-separated parameters of a variable's inside, commas in quotes or nested ${} kept. */
static size_t split(const char *s, size_t n, span *out)
{
    size_t np = 0, start = 0;
    int depth = 0;
    char q = 0;
    for (size_t j = 0; j <= n; j++) {
        char c = j < n ? s[j] : ',';
        if (q) {
            q = c == q ? 0 : q;
            continue;
        }
        if (j < n && (c == '\'' || c == '"'))
            q = c;
        else if (c == '$' && j + 1 < n && s[j + 1] == '{')
            depth++, j++;
        else if (c == '}' && depth > 0)
            depth--;
        else if (c == ',' && depth == 0) {
            if (np == VAR_PARAMS)
                return np + 1;
            out[np++] = trim(s + start, j - start);
            start = j + 1;
        }
    }
    return np;
}

static int resolve_text(tw_sls_vars *sv, const char *s, size_t n, unsigned line, int depth, const tw_json **out);
static const tw_json *resolve(tw_sls_vars *sv, const tw_json *v, int depth);

static tw_json *new_string(tw_sls_vars *sv, const char *s, size_t n, unsigned line, int from_env)
{
    tw_json *v = tw__json_new_string(sv->doc, s, n);
    if (!v) {
        sv->ld->oom = 1;
        return NULL;
    }
    v->line = line;
    if (from_env)
        tw__cl_mark(sv->ld, &sv->ld->subst, v);
    return v;
}

static int json_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    size_t d = i;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    if (i == d || (s[d] == '0' && i - d > 1))
        return 0;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == f)
            return 0;
    }
    return i == n;
}

/* ${self:a.b.0.c}: members by name, list items by index. */
static const tw_json *self_path(const tw_json *v, const char *p, size_t n)
{
    while (v && n) {
        size_t k = 0;
        while (k < n && p[k] != '.')
            k++;
        const tw_json *next = NULL;
        if (v->type == TW_JSON_OBJECT) {
            for (size_t i = 0; i < v->n; i++)   /* the last of duplicates, as tw_json_get */
                if (v->u.members[i].klen == k && memcmp(v->u.members[i].key, p, k) == 0)
                    next = v->u.members[i].val;
        } else if (v->type == TW_JSON_ARRAY && k > 0 && k < 10) {
            size_t idx = 0, ok = 1;
            for (size_t i = 0; i < k; i++)
                ok &= isdigit((unsigned char)p[i]) != 0, idx = idx * 10 + (size_t)(p[i] - '0');
            next = ok && idx < v->n ? v->u.items[idx] : NULL;
        }
        v = next;
        p += k + (k < n);
        n -= k + (k < n);
    }
    return v;
}

/* One reference ("env:X", "self:a.b"...). 1: found (*out), 0: not there (why says so), -1: error. */
static int lookup(tw_sls_vars *sv, span ref, unsigned line, int depth, const tw_json **out, char *why, size_t wn)
{
    const char *colon = memchr(ref.p, ':', ref.n);
    if (ref.n >= 5 && strncmp(ref.p, "file(", 5) == 0) {
        tw__cl_err(sv->ld, line, TW_ECONFIG, "${%.*s}: file() variables are not supported: put the value in "
                   "serverless.yml or the environment (${env:NAME})", (int)(ref.n > 80 ? 80 : ref.n), ref.p);
        return -1;
    }
    if (!colon) {
        tw__cl_err(sv->ld, line, TW_ECONFIG, "${%.*s}: not a Serverless variable (${env:NAME} reads the environment, "
                   "${self:path} this file)", (int)(ref.n > 80 ? 80 : ref.n), ref.p);
        return -1;
    }
    span src = {ref.p, (size_t)(colon - ref.p)}, addr = {colon + 1, ref.n - src.n - 1};
    char name[104];
    snprintf(name, sizeof name, "%.*s", (int)(addr.n > 100 ? 100 : addr.n), addr.p);
    if (src.n == 3 && memcmp(src.p, "env", 3) == 0) {
        const char *val = getenv(name);
        if (!val) {
            snprintf(why, wn, "environment variable %s is not set", name);
            return 0;
        }
        return (*out = new_string(sv, val, strlen(val), line, 1)) ? 1 : -1;
    }
    if (src.n == 4 && memcmp(src.p, "self", 4) == 0) {
        const tw_json *v = self_path(sv->root, addr.p, addr.n);
        if (!v) {
            snprintf(why, wn, "%s is not in this file", *name ? name : "(the file)");
            return 0;
        }
        if (depth + 1 >= VAR_DEPTH) {
            tw__cl_err(sv->ld, line, TW_ECONFIG, "${self:%s}: variables refer to each other in a cycle", name);
            return -1;
        }
        return (*out = resolve(sv, v, depth + 1)) ? 1 : -1;
    }
    if (src.n == 3 && memcmp(src.p, "opt", 3) == 0) {
        snprintf(why, wn, "trailwatch takes no Serverless CLI options; give a default (${opt:%s, 'value'})", name);
        return 0;
    }
    if (src.n == 3 && memcmp(src.p, "sls", 3) == 0 && strcmp(name, "stage") == 0) {
        if (!sv->stage) {
            tw__cl_err(sv->ld, line, TW_ECONFIG, "${sls:stage}: cannot be used to define the stage itself");
            return -1;
        }
        return (*out = new_string(sv, sv->stage, strlen(sv->stage), line, 0)) ? 1 : -1;
    }
    tw__cl_err(sv->ld, line, TW_ECONFIG, "${%.*s}: variable source \"%.*s\" is not supported (trailwatch resolves env:, "
               "self:, opt: with a default, and sls:stage)", (int)(ref.n > 80 ? 80 : ref.n), ref.p,
               (int)(src.n > 40 ? 40 : src.n), src.p);
    return -1;
}

/* The inside of one ${...}: a reference and its fallbacks. 1: resolved (*out), -1: error. */
static int resolve_var(tw_sls_vars *sv, const char *s, size_t n, unsigned line, int depth, const tw_json **out)
{
    span par[VAR_PARAMS];
    size_t np = split(s, n, par);
    if (np == 0 || np > VAR_PARAMS || par[0].n == 0) {
        tw__cl_err(sv->ld, line, TW_ECONFIG, "${%.*s}: not a valid variable", (int)(n > 80 ? 80 : n), s);
        return -1;
    }
    char why[300] = "", scratch[300];
    for (size_t k = 0; k < np; k++) {
        span p = par[k];
        const tw_json *inner = NULL;
        int r;
        if (p.n >= 2 && (p.p[0] == '\'' || p.p[0] == '"') && p.p[p.n - 1] == p.p[0] && k > 0)
            return (*out = new_string(sv, p.p + 1, p.n - 2, line, 0)) ? 1 : -1;
        if (k > 0 && (json_number(p.p, p.n) || (p.n == 4 && !memcmp(p.p, "true", 4)) ||
                      (p.n == 5 && !memcmp(p.p, "false", 5)))) {
            tw_json *v = p.p[0] == 't' ? tw__json_new(sv->doc, TW_JSON_TRUE)
                         : p.p[0] == 'f' ? tw__json_new(sv->doc, TW_JSON_FALSE)
                                         : tw__json_new_number(sv->doc, p.p, p.n);
            if (!v)
                sv->ld->oom = 1;
            else
                v->line = line;
            return (*out = v) ? 1 : -1;
        }
        if (k > 0 && p.n >= 2 && p.p[0] == '$' && p.p[1] == '{') {   /* another variable, whole */
            return resolve_text(sv, p.p, p.n, line, depth + 1, out);
        }
        span ref = p;
        if (memmem(p.p, p.n, "${", 2)) {   /* ${self:custom.${opt:stage, 'dev'}.url} */
            if (resolve_text(sv, p.p, p.n, line, depth + 1, &inner) < 0)
                return -1;
            if (inner->type != TW_JSON_STRING) {
                tw__cl_err(sv->ld, line, TW_ECONFIG, "${%.*s}: a nested variable must give text", (int)(n > 80 ? 80 : n), s);
                return -1;
            }
            ref = (span){inner->u.str, inner->n};
        }
        r = lookup(sv, ref, line, depth, out, k == 0 ? why : scratch, sizeof why);
        if (r)
            return r;
    }
    tw__cl_err(sv->ld, line, TW_ECONFIG, "${%.*s}: %s", (int)(n > 80 ? 80 : n), s, why);
    return -1;
}

static int resolve_text(tw_sls_vars *sv, const char *s, size_t n, unsigned line, int depth, const tw_json **out)
{
    if (depth >= VAR_DEPTH) {
        tw__cl_err(sv->ld, line, TW_ECONFIG, "variables nest too deep (a ${self:} cycle?)");
        return -1;
    }
    const char *first = memmem(s, n, "${", 2);
    if (first == s && var_end(s, n, 0) == n - 1)   /* one variable: its value, whatever its type */
        return resolve_var(sv, s + 2, n - 3, line, depth, out);
    tw_buf b = TW_BUF_INIT;
    int from_env = 0, rc = 1;
    for (size_t i = 0; i < n && rc > 0;) {
        const char *v = memmem(s + i, n - i, "${", 2);
        size_t at = v ? (size_t)(v - s) : n;
        if (tw__buf_append(&b, s + i, at - i))
            rc = -1, sv->ld->oom = 1;
        if (!v || rc < 0)
            break;
        size_t end = var_end(s, n, at);
        if (end >= n) {
            tw__cl_err(sv->ld, line, TW_ECONFIG, "unterminated ${ in a variable");
            rc = -1;
            break;
        }
        const tw_json *part = NULL;
        if (resolve_var(sv, s + at + 2, end - at - 2, line, depth, &part) < 0) {
            rc = -1;
            break;
        }
        from_env |= tw__cl_substituted(sv->ld, part);
        tw_status st = TW_OK;
        if (part->type == TW_JSON_STRING)
            st = tw__buf_append(&b, part->u.str, part->n);
        else if (part->type == TW_JSON_NUMBER)
            st = tw__buf_append(&b, part->u.num.text, part->n);
        else if (part->type == TW_JSON_TRUE || part->type == TW_JSON_FALSE)
            st = tw__buf_puts(&b, part->type == TW_JSON_TRUE ? "true" : "false");
        else {
            tw__cl_err(sv->ld, line, TW_ECONFIG, "${%.*s}: a %s cannot be part of a string", (int)(end - at - 2 > 80 ? 80 : end - at - 2),
                       s + at + 2, tw_json_type_name((tw_json_type)part->type));
            rc = -1;
        }
        if (st)
            rc = -1, sv->ld->oom = 1;
        i = end + 1;
    }
    if (rc > 0)
        rc = (*out = new_string(sv, b.data ? b.data : "", b.len, line, from_env)) ? 1 : -1;
    tw__buf_free(&b);
    return rc;
}

/* One pass: children first; a container is copied only when some child changed (and the first
 * unchanged children are shared, not copied), so the work is linear in the subtree. */
static const tw_json *resolve(tw_sls_vars *sv, const tw_json *v, int depth)
{
    if (!v)
        return NULL;
    if (v->type == TW_JSON_STRING) {
        const tw_json *r = NULL;
        if (!memmem(v->u.str, v->n, "${", 2))
            return v;
        return resolve_text(sv, v->u.str, v->n, v->line, depth, &r) > 0 ? r : NULL;
    }
    if (v->type != TW_JSON_ARRAY && v->type != TW_JSON_OBJECT)
        return v;
    tw_json *c = NULL;
    int ok = 1;
    for (size_t i = 0; i < v->n; i++) {   /* every child, so that every error is reported */
        const tw_json *old = tw_json_at(v, i), *item = resolve(sv, old, depth);
        if (!item) {
            ok = 0;
            continue;
        }
        if (item == old && !c)
            continue;
        if (!c) {   /* the first change: a copy holding the children so far */
            if (!(c = tw__json_new(sv->doc, (tw_json_type)v->type))) {
                sv->ld->oom = 1;
                return NULL;
            }
            c->line = v->line;
            c->col = v->col;
            for (size_t k = 0; k < i; k++)
                if (v->type == TW_JSON_ARRAY ? tw__json_push(sv->doc, c, v->u.items[k])
                                             : tw__json_put(sv->doc, c, v->u.members[k].key, v->u.members[k].klen,
                                                            v->u.members[k].val)) {
                    sv->ld->oom = 1;
                    return NULL;
                }
        }
        if (v->type == TW_JSON_ARRAY ? tw__json_push(sv->doc, c, (tw_json *)item)
                                     : tw__json_put(sv->doc, c, v->u.members[i].key, v->u.members[i].klen,
                                                    (tw_json *)item)) {
            sv->ld->oom = 1;
            return NULL;
        }
    }
    return !ok ? NULL : c ? c : v;
}

const tw_json *tw__sls_resolve(tw_sls_vars *sv, const tw_json *v) { return resolve(sv, v, 0); }
