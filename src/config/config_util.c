/* config/config_util.c: what the configuration loader's parts share: collected messages, arena
 * strings, key checks with "did you mean", typed values. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "config/load_int.h"
#include "json/json_int.h"

typedef struct cl_msg {
    uint32_t file_no, seq;
    unsigned line;
    tw_status code;
    char *text;
} cl_msg;

static void add_msg(tw_cfg_ld *ld, unsigned line, tw_status code, const char *text)
{
    cl_msg m = {ld->file_no, ld->seq++, line, code, strdup(text)};
    if (!m.text || tw__buf_append(&ld->msgs, &m, sizeof m)) {
        free(m.text);
        ld->oom = 1;
    }
}

void tw__cl_err(tw_cfg_ld *ld, unsigned line, tw_status code, const char *fmt, ...)
{
    char why[TW_ERROR_MSG_MAX], full[2 * TW_ERROR_MSG_MAX];   /* cut to TW_ERROR_MSG_MAX in the end */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (line)
        snprintf(full, sizeof full, "%s:%u: %s", ld->file, line, why);
    else
        snprintf(full, sizeof full, "%s: %s", ld->file, why);
    add_msg(ld, line, code, full);
}

void tw__cl_err_text(tw_cfg_ld *ld, tw_status code, const char *text)
{
    /* sorted after the current file's own messages that carry a line */
    add_msg(ld, UINT32_MAX, code, text);
}

void tw__cl_err_from(tw_cfg_ld *ld, unsigned line, const char *prefix, const tw_error *e)
{
    if (e->code == TW_ENOMEM) {
        ld->oom = 1;
        return;
    }
    tw__cl_err(ld, line, e->code ? e->code : TW_ECONFIG, "%s%s", prefix, e->msg);
}

size_t tw__cl_nerrors(const tw_cfg_ld *ld) { return ld->msgs.len / sizeof(cl_msg); }

static int msg_cmp(const void *a, const void *b)
{
    const cl_msg *x = a, *y = b;
    if (x->file_no != y->file_no)
        return x->file_no < y->file_no ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* De-duplicates too: a YAML alias repeats its node's errors at the same line. */
size_t tw__cl_flush_msgs(tw_cfg_ld *ld, tw_report_fn report, void *ctx, tw_error *first)
{
    size_t n = tw__cl_nerrors(ld), shown = 0;
    cl_msg *m = (cl_msg *)(void *)ld->msgs.data;
    if (n)
        qsort(m, n, sizeof *m, msg_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(m[i].text, m[i - 1].text) == 0)
            continue;
        if (shown++ == 0 && first)
            tw__err(first, m[i].code, "%s", m[i].text);
        if (report)
            report(ctx, m[i].text);
    }
    for (size_t i = 0; i < n; i++)
        free(m[i].text);
    tw__buf_free(&ld->msgs);
    return shown;
}

tw_json_doc *tw__cl_keep(tw_cfg_ld *ld, tw_json_doc *doc)
{
    if (!doc || tw__buf_append(&ld->docs, &doc, sizeof doc)) {
        tw_json_doc_free(doc);
        ld->oom = 1;
        return NULL;
    }
    return doc;
}

tw_json_doc *tw__cl_new_doc(tw_cfg_ld *ld) { return tw__cl_keep(ld, tw__json_doc_new()); }

static char empty_[1];

char *tw__cl_strndup(tw_cfg_ld *ld, const char *s, size_t n)
{
    char *p = tw__arena_strndup(&ld->cfg->arena, s, n);
    if (!p) {
        ld->oom = 1;
        return empty_;
    }
    return p;
}

char *tw__cl_strdup(tw_cfg_ld *ld, const char *s) { return tw__cl_strndup(ld, s, strlen(s)); }

char *tw__cl_printf(tw_cfg_ld *ld, const char *fmt, ...)
{
    tw_buf b = TW_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    tw_status rc = tw__buf_vprintf(&b, fmt, ap);
    va_end(ap);
    char *p = rc ? (ld->oom = 1, empty_) : tw__cl_strndup(ld, b.data, b.len);
    tw__buf_free(&b);
    return p;
}

char *tw__cl_join(tw_cfg_ld *ld, const char *dir, const char *p)
{
    if (p[0] == '/')
        return tw__cl_strdup(ld, p);
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    if (p[0] == '.' && p[1] == '/')
        p += 2;
    return tw__cl_printf(ld, "%.*s/%s", (int)dl, dir, p);
}

/* ---- names and messages ---- */

const char *tw__cl_label(char *buf, size_t size, const char *ctx)
{
    size_t n = strlen(ctx);
    snprintf(buf, size, "%s%s", ctx, !n || (n >= 2 && ctx[n - 2] == ':' && ctx[n - 1] == ' ') ? "" : ": ");
    return buf;
}

const char *tw__cl_path(char *buf, size_t size, const char *ctx, const char *key)
{
    size_t n = strlen(ctx);
    if (!n)
        snprintf(buf, size, "%s", key);
    else if (n >= 2 && ctx[n - 2] == ':' && ctx[n - 1] == ' ')
        snprintf(buf, size, "%s%s", ctx, key);
    else
        snprintf(buf, size, "%s.%s", ctx, key);
    return buf;
}

static int in_set(const tw_buf *set, const tw_json *v)
{
    const tw_json *const *p = (const tw_json *const *)(const void *)set->data;
    for (size_t i = 0, n = set->len / sizeof *p; i < n; i++)
        if (p[i] == v)
            return 1;
    return 0;
}

void tw__cl_mark(tw_cfg_ld *ld, tw_buf *set, const tw_json *v)
{
    if (tw__buf_append(set, &v, sizeof v))
        ld->oom = 1;
}

int tw__cl_substituted(const tw_cfg_ld *ld, const tw_json *v) { return in_set(&ld->subst, v); }

int tw__cl_tainted(const tw_cfg_ld *ld, const tw_json *v)
{
    if (!ld->tainted.len || !v)
        return 0;
    if (v->type == TW_JSON_STRING)
        return in_set(&ld->tainted, v);
    for (size_t i = 0; i < tw_json_size(v); i++)
        if (tw__cl_tainted(ld, tw_json_at(v, i)))
            return 1;
    return 0;
}

const char *tw__cl_shown(tw_cfg_ld *ld, const tw_json *v, char *buf, size_t size)
{
    if (tw__cl_substituted(ld, v))
        return "(a value from the environment)";
    size_t len;
    const char *s = tw_json_string(v, &len);
    if (s)
        snprintf(buf, size, "\"%.*s\"%s", (int)(len > 60 ? 60 : len), s, len > 60 ? "..." : "");
    else if (v && v->type == TW_JSON_NUMBER)
        snprintf(buf, size, "%.*s", (int)(v->n > 60 ? 60 : v->n), v->u.num.text);
    else
        snprintf(buf, size, "%s", v ? tw_json_type_name((tw_json_type)v->type) : "nothing");
    return buf;
}

/* ---- unknown keys ---- */

static int fold(int c) { return c == '-' ? '_' : tolower(c); }

/* Edit distance with adjacent transpositions ("lgo" is one step from "log"). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t rows[3][65], *pp = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = fold((unsigned char)a[i - 1]), cb = fold((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + (ca != cb);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ca == fold((unsigned char)b[j - 2]) && fold((unsigned char)a[i - 2]) == cb &&
                pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *tw__cl_closest(const char *w, const char *const *known, size_t n)
{
    const char *best = NULL;
    size_t bd = SIZE_MAX, len = strlen(w);
    for (size_t i = 0; i < n && known[i]; i++) {
        size_t d = distance(w, known[i]);
        if (d < bd) {
            bd = d;
            best = known[i];
        }
    }
    /* Close: a typo or two, and never most of the word. */
    size_t limit = len <= 3 ? 1 : len <= 8 ? 2 : 3;
    return bd <= limit ? best : NULL;
}

int tw__cl_is_object(tw_cfg_ld *ld, const tw_json *v, const char *name)
{
    if (tw_json_typeof(v) == TW_JSON_OBJECT)
        return 1;
    tw__cl_err(ld, v ? v->line : 0, TW_ECONFIG, "%s: must be a mapping, not %s", name,
               tw_json_type_name(tw_json_typeof(v)));
    return 0;
}

int tw__cl_keys(tw_cfg_ld *ld, const tw_json *obj, const char *ctx, const char *const *known)
{
    char name[256];
    if (!tw__cl_is_object(ld, obj, *ctx ? ctx : "(top level)"))
        return -1;
    size_t nk = 0;
    while (known[nk])
        nk++;
    /* "server: unknown key ...", "rule \"x\": unknown key ...", "unknown key ..." at the top. */
    size_t cl = strlen(ctx);
    const char *sep = !cl || (cl >= 2 && ctx[cl - 2] == ':' && ctx[cl - 1] == ' ') ? "" : ": ";
    for (size_t i = 0; i < obj->n; i++) {
        const tw_json_member *m = &obj->u.members[i];
        unsigned line = m->val->line;
        /* Top-level "x-..." keys are the user's own: a place for YAML anchors (as in Compose files). */
        if (!cl && strncmp(m->key, "x-", 2) == 0)
            continue;
        int found = 0;
        for (size_t k = 0; k < nk && !found; k++)
            found = strcmp(m->key, known[k]) == 0;
        if (!found) {
            const char *near = tw__cl_closest(m->key, known, nk);
            tw__cl_err(ld, line, TW_ECONFIG, "%s%sunknown key \"%.80s\"%s%s%s", ctx, sep, m->key,
                       near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "");
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(obj->u.members[j].key, m->key) == 0) {
                tw__cl_err(ld, line, TW_ECONFIG, "%s: given twice (also at line %u)",
                           tw__cl_path(name, sizeof name, ctx, m->key), obj->u.members[j].val->line);
                break;
            }
    }
    return 0;
}

/* ---- typed values ---- */

static int wrong(tw_cfg_ld *ld, const tw_json *v, const char *name, const char *what)
{
    char shown[96];
    if (tw__cl_tainted(ld, v))   /* its ${VAR} error says it all */
        return -1;
    tw__cl_err(ld, v->line, TW_ECONFIG, "%s: must be %s, not %s", name, what, tw__cl_shown(ld, v, shown, sizeof shown));
    return -1;
}

int tw__cl_vstring(tw_cfg_ld *ld, const tw_json *v, const char *name, int nonempty, const char **out)
{
    if (!v || v->type == TW_JSON_NULL)
        return 0;
    if (v->type != TW_JSON_STRING)
        return wrong(ld, v, name, "a string");
    if (nonempty && v->n == 0) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: must not be empty", name);
        return -1;
    }
    if (strlen(v->u.str) != v->n) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: must not contain NUL characters", name);
        return -1;
    }
    *out = v->u.str;
    return 1;
}

/* Text a typed value may be written as: a string only when it came from the environment (where
 * everything is text); otherwise YAML's own types are required. */
static const char *env_text(tw_cfg_ld *ld, const tw_json *v)
{
    return v->type == TW_JSON_STRING && tw__cl_substituted(ld, v) ? v->u.str : NULL;
}

int tw__cl_vbool(tw_cfg_ld *ld, const tw_json *v, const char *name, int *out)
{
    if (!v || v->type == TW_JSON_NULL)
        return 0;
    const char *t = env_text(ld, v);
    if (v->type == TW_JSON_TRUE || v->type == TW_JSON_FALSE)
        *out = v->type == TW_JSON_TRUE;
    else if (t && (strcmp(t, "true") == 0 || strcmp(t, "false") == 0))
        *out = t[0] == 't';
    else
        return wrong(ld, v, name, "true or false");
    return 1;
}

static int num_text(tw_cfg_ld *ld, const tw_json *v, double *d)
{
    if (v->type == TW_JSON_NUMBER) {
        *d = v->u.num.d;
        return 1;
    }
    const char *t = env_text(ld, v);
    char *end;
    if (!t || !*t || isspace((unsigned char)*t))
        return 0;
    *d = strtod(t, &end);
    return *end == '\0' && isfinite(*d);
}

int tw__cl_vnumber(tw_cfg_ld *ld, const tw_json *v, const char *name, double min, double max, double *out)
{
    if (!v || v->type == TW_JSON_NULL)
        return 0;
    double d;
    if (!num_text(ld, v, &d))
        return wrong(ld, v, name, "a number");
    if (d < min || d > max) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: must be between %g and %g", name, min, max);
        return -1;
    }
    *out = d;
    return 1;
}

int tw__cl_vuint(tw_cfg_ld *ld, const tw_json *v, const char *name, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!v || v->type == TW_JSON_NULL)
        return 0;
    double d;
    if (!num_text(ld, v, &d) || d != floor(d))
        return wrong(ld, v, name, "a whole number");
    if (d < (double)min || d > (double)max) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: must be between %" PRIu64 " and %" PRIu64, name, min, max);
        return -1;
    }
    *out = (uint64_t)d;
    return 1;
}

int tw__cl_vduration(tw_cfg_ld *ld, const tw_json *v, const char *name, int64_t min_ms, int64_t max_ms,
                     int64_t *out)
{
    if (!v || v->type == TW_JSON_NULL)
        return 0;
    int64_t ms;
    const char *t = v->type == TW_JSON_NUMBER ? v->u.num.text : v->type == TW_JSON_STRING ? v->u.str : NULL;
    if (!t || !tw__parse_duration(t, &ms))
        return wrong(ld, v, name, "a duration such as 10s, 5m, 24h, 250ms, 1d or a number of seconds");
    if (ms < min_ms || ms > max_ms) {
        char a[32], b[32];
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: must be between %s and %s", name,
                   tw__cl_fmt_duration(min_ms, a, sizeof a), tw__cl_fmt_duration(max_ms, b, sizeof b));
        return -1;
    }
    *out = ms;
    return 1;
}

int tw__cl_vsize(tw_cfg_ld *ld, const tw_json *v, const char *name, size_t min, size_t max, size_t *out)
{
    if (!v || v->type == TW_JSON_NULL)
        return 0;
    size_t n;
    const char *t = v->type == TW_JSON_NUMBER ? v->u.num.text : v->type == TW_JSON_STRING ? v->u.str : NULL;
    if (!t || !tw__cl_parse_size(t, &n))
        return wrong(ld, v, name, "a size such as 262144, 256k or 1m");
    if (n < min || n > max) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: must be between %zu and %zu bytes", name, min, max);
        return -1;
    }
    *out = n;
    return 1;
}

#define MEMBER_GETTER(fn, vfn, params, args)                                                       \
    int fn(tw_cfg_ld *ld, const tw_json *obj, const char *ctx, const char *key params)             \
    {                                                                                              \
        char name[256];                                                                            \
        return vfn(ld, tw_json_get(obj, key), tw__cl_path(name, sizeof name, ctx, key) args);      \
    }
#define P(...) , __VA_ARGS__
MEMBER_GETTER(tw__cl_string, tw__cl_vstring, P(int nonempty, const char **out), P(nonempty, out))
MEMBER_GETTER(tw__cl_bool, tw__cl_vbool, P(int *out), P(out))
MEMBER_GETTER(tw__cl_uint, tw__cl_vuint, P(uint64_t min, uint64_t max, uint64_t *out), P(min, max, out))
MEMBER_GETTER(tw__cl_number, tw__cl_vnumber, P(double min, double max, double *out), P(min, max, out))
MEMBER_GETTER(tw__cl_duration, tw__cl_vduration, P(int64_t min_ms, int64_t max_ms, int64_t *out),
              P(min_ms, max_ms, out))
MEMBER_GETTER(tw__cl_size, tw__cl_vsize, P(size_t min, size_t max, size_t *out), P(min, max, out))

int tw__cl_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TW_CFG_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
            return 0;
    return 1;
}

const char *tw__cl_fmt_duration(int64_t ms, char *buf, size_t size)
{
    static const struct { const char *u; int64_t ms; } units[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t o = 0;
    buf[0] = '\0';
    if (ms == 0)
        snprintf(buf, size, "0s");
    for (size_t i = 0; i < 5 && ms > 0; i++)
        if (ms >= units[i].ms) {
            int w = snprintf(buf + o, size > o ? size - o : 0, "%" PRId64 "%s", ms / units[i].ms, units[i].u);
            o += w > 0 ? (size_t)w : 0;
            ms %= units[i].ms;
        }
    return buf;
}

int tw__cl_parse_size(const char *s, size_t *out)
{
    if (!isdigit((unsigned char)*s))
        return 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mul = 1;
    switch (tolower((unsigned char)*end)) {
    case 'k': mul = 1ull << 10; end++; break;
    case 'm': mul = 1ull << 20; end++; break;
    case 'g': mul = 1ull << 30; end++; break;
    default: break;
    }
    if (mul > 1 && tolower((unsigned char)end[0]) == 'i' && tolower((unsigned char)end[1]) == 'b')
        end += 2;
    else if (tolower((unsigned char)*end) == 'b')
        end++;
    if (*end || v > SIZE_MAX / mul)
        return 0;
    *out = (size_t)(v * mul);
    return 1;
}
