/* sigma/load.c: Sigma rule files (multi-document YAML, folders) into a tw_sigma: the envelope
 * (title, id, name, logsource, level, tags, references), the detection compiled at once, the
 * correlation parsed; every refusal reported with the file, the line and the reason. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/hash.h"
#include "json/json_int.h"
#include "sigma/sigma_int.h"
#include "trailwatch/yaml.h"

tw_status tw_sigma_new(const tw_limits *lim, tw_sigma **out)
{
    tw_sigma *s = calloc(1, sizeof *s);
    if (!s)
        return TW_ENOMEM;
    if (lim)
        s->lim = *lim;
    else
        tw_limits_default(&s->lim);
    *out = s;
    return TW_OK;
}

static void rule_free(sg_rule *r)
{
    if (!r)
        return;
    tw__brule_free(r->compiled);
    tw_json_doc_free(r->doc);
    free(r->corr ? r->corr->ref_rule : NULL);
    free(r);
}

void tw_sigma_free(tw_sigma *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        rule_free(s->rules[i]);
    for (size_t i = 0; s->users && i < s->n; i++)
        free(s->users[i]);
    free(s->users);
    free(s->nusers);
    free(s->rules);
    free(s->name_ix);
    free(s->id_ix);
    free(s->by_ruleset);
    tw_json_doc_free(s->placeholders);
    tw__arena_free(&s->arena);
    free(s);
}

tw_status tw_sigma_set_placeholders(tw_sigma *s, const tw_json *table, tw_error *err)
{
    tw_json_doc_free(s->placeholders);
    s->placeholders = NULL;
    if (!table)
        return TW_OK;
    if (tw_json_typeof(table) != TW_JSON_OBJECT)
        return tw__err(err, TW_ECONFIG, "placeholders must be a mapping of names to lists of values");
    for (size_t i = 0; i < tw_json_size(table); i++) {
        const tw_json *v = tw_json_at(table, i);
        size_t n = tw_json_typeof(v) == TW_JSON_ARRAY ? tw_json_size(v) : 1;
        for (size_t k = 0; k < n; k++) {
            const tw_json *e = tw_json_typeof(v) == TW_JSON_ARRAY ? tw_json_at(v, k) : v;
            if (tw_json_typeof(e) != TW_JSON_STRING && tw_json_typeof(e) != TW_JSON_NUMBER)
                return tw__err(err, TW_ECONFIG, "placeholder %s: values must be strings or numbers",
                               tw_json_key(table, i, NULL));
        }
    }
    tw_json_doc *d = tw__json_doc_new();
    if (!d || !(d->root = tw__json_copy(d, table))) {
        tw_json_doc_free(d);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    s->placeholders = d;
    return TW_OK;
}

size_t tw_sigma_count(const tw_sigma *s) { return s ? s->n : 0; }

const tw_sigma_rule_info *tw_sigma_rule(const tw_sigma *s, size_t i)
{
    return s && i < s->n ? &s->rules[i]->info : NULL;
}

long tw_sigma_of_ruleset(const tw_sigma *s, size_t ruleset_index)
{
    return s && ruleset_index < s->nby ? s->by_ruleset[ruleset_index] : -1;
}

/* ---- one document ---- */

typedef struct ldctx {
    tw_sigma *s;
    const char *file;
    const char *stem;
    size_t *nerrors;
    tw_report_fn report;
    void *rctx;
    size_t docs;                /* rules taken from this file so far */
} ldctx;

static void refuse(ldctx *c, unsigned line, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void refuse(ldctx *c, unsigned line, const char *title, const char *fmt, ...)
{
    char why[600], msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (title && *title)
        snprintf(msg, sizeof msg, "%s:%u: rule \"%.120s\": %s", c->file, line, title, why);
    else
        snprintf(msg, sizeof msg, "%s:%u: %s", c->file, line, why);
    (*c->nerrors)++;
    if (c->report)
        c->report(c->rctx, msg);
}

static const char *str_of(tw_sigma *s, const tw_json *v)
{
    if (tw_json_typeof(v) != TW_JSON_STRING)
        return "";
    size_t n;
    const char *t = tw_json_string(v, &n);
    return tw__arena_strndup(&s->arena, t, n);
}

/* A list of strings (a single string counts as one). NULL with *bad set when an item is no string. */
static const char **str_list(tw_sigma *s, const tw_json *v, size_t *n, const tw_json **bad)
{
    *n = 0;
    *bad = NULL;
    if (!v || tw_json_typeof(v) == TW_JSON_NULL)
        return NULL;
    size_t k = tw_json_typeof(v) == TW_JSON_ARRAY ? tw_json_size(v) : 1;
    const char **out = tw__arena_alloc(&s->arena, (k + 1) * sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < k; i++) {
        const tw_json *e = tw_json_typeof(v) == TW_JSON_ARRAY ? tw_json_at(v, i) : v;
        if (tw_json_typeof(e) != TW_JSON_STRING) {
            *bad = e;
            return NULL;
        }
        out[i] = str_of(s, e);
    }
    out[k] = NULL;
    *n = k;
    return out;
}

static const char *severity_of(const char *level)
{
    static const char *const map[][2] = {{"informational", "info"}, {"low", "low"}, {"medium", "medium"},
                                         {"high", "high"}, {"critical", "critical"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(level, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* The rule whose name (by_id: id) is key, or -1. */
static long ix_find(const tw_sigma *s, int by_id, const char *key)
{
    const uint32_t *tab = by_id ? s->id_ix : s->name_ix;
    if (!s->ix_cap)
        return -1;
    size_t mask = s->ix_cap - 1, h = (size_t)tw__hash_bytes(key, strlen(key), by_id);
    for (size_t i = h & mask; tab[i]; i = (i + 1) & mask) {
        const tw_sigma_rule_info *in = &s->rules[tab[i] - 1]->info;
        if (strcmp(by_id ? in->id : in->name, key) == 0)
            return (long)tab[i] - 1;
    }
    return -1;
}

static void ix_put(uint32_t *tab, size_t cap, const char *key, int by_id, uint32_t rule)
{
    size_t mask = cap - 1, i = (size_t)tw__hash_bytes(key, strlen(key), by_id) & mask;
    while (tab[i])
        i = (i + 1) & mask;
    tab[i] = rule + 1;
}

/* Files rule s->n - 1 under its name and id; 0 when out of memory. */
static int ix_add(tw_sigma *s)
{
    if (2 * s->n > s->ix_cap) {
        size_t cap = s->ix_cap ? 2 * s->ix_cap : 64;
        uint32_t *nt = calloc(cap, sizeof *nt), *it = calloc(cap, sizeof *it);
        if (!nt || !it) {
            free(nt);
            free(it);
            return 0;
        }
        free(s->name_ix);
        free(s->id_ix);
        s->name_ix = nt;
        s->id_ix = it;
        s->ix_cap = cap;
        for (size_t k = 0; k + 1 < s->n; k++) {
            ix_put(nt, cap, s->rules[k]->info.name, 0, (uint32_t)k);
            if (*s->rules[k]->info.id)
                ix_put(it, cap, s->rules[k]->info.id, 1, (uint32_t)k);
        }
    }
    const tw_sigma_rule_info *in = &s->rules[s->n - 1]->info;
    ix_put(s->name_ix, s->ix_cap, in->name, 0, (uint32_t)(s->n - 1));
    if (*in->id)
        ix_put(s->id_ix, s->ix_cap, in->id, 1, (uint32_t)(s->n - 1));
    return 1;
}

static int name_taken(const tw_sigma *s, const char *name) { return ix_find(s, 0, name) >= 0; }

static int check_logsource(ldctx *c, const tw_json *ls, const char *title, unsigned line)
{
    if (!ls) {
        refuse(c, line, title, "logsource is missing (trailwatch runs product: aws, service: cloudtrail)");
        return 0;
    }
    if (tw_json_typeof(ls) != TW_JSON_OBJECT) {
        refuse(c, tw_json_line(ls), title, "logsource must be a mapping");
        return 0;
    }
    const tw_json *p = tw_json_get(ls, "product"), *sv = tw_json_get(ls, "service"), *cat = tw_json_get(ls, "category");
    const char *ps = tw_json_typeof(p) == TW_JSON_STRING ? tw_json_string(p, NULL) : "";
    const char *ss = tw_json_typeof(sv) == TW_JSON_STRING ? tw_json_string(sv, NULL) : "";
    if (strcasecmp(ps, "aws") != 0 || strcasecmp(ss, "cloudtrail") != 0 || cat) {
        const char *cs = tw_json_typeof(cat) == TW_JSON_STRING ? tw_json_string(cat, NULL) : cat ? "?" : "";
        refuse(c, tw_json_line(ls), title, "logsource (category '%s', product '%s', service '%s'): trailwatch "
               "evaluates rules for product aws, service cloudtrail (CloudTrail records)", cs, ps, ss);
        return 0;
    }
    return 1;
}

/* Fills the envelope every rule has; 0 when refused (reported). */
static int envelope(ldctx *c, sg_rule *r, const tw_json *root, unsigned line)
{
    tw_sigma *s = c->s;
    tw_sigma_rule_info *in = &r->info;
    const tw_json *t = tw_json_get(root, "title");
    in->title = str_of(s, t);
    in->file = tw__arena_strndup(&s->arena, c->file, strlen(c->file));
    in->line = line;
    in->ruleset_index = -1;
    if (!t || tw_json_typeof(t) != TW_JSON_STRING || !*in->title) {
        refuse(c, t ? tw_json_line(t) : line, NULL, "a Sigma rule needs a title");
        return 0;
    }
    in->id = str_of(s, tw_json_get(root, "id"));
    in->status = str_of(s, tw_json_get(root, "status"));
    in->description = str_of(s, tw_json_get(root, "description"));
    in->author = str_of(s, tw_json_get(root, "author"));
    in->date = str_of(s, tw_json_get(root, "date"));
    const tw_json *lv = tw_json_get(root, "level");
    in->level = str_of(s, lv);
    in->severity = "medium";
    if (lv && tw_json_typeof(lv) != TW_JSON_NULL) {
        const char *sev = tw_json_typeof(lv) == TW_JSON_STRING ? severity_of(in->level) : NULL;
        if (!sev) {
            refuse(c, tw_json_line(lv), in->title, "level must be informational, low, medium, high or critical");
            return 0;
        }
        in->severity = sev;
    }
    const tw_json *bad;
    const tw_json *tags = tw_json_get(root, "tags"), *refs = tw_json_get(root, "references");
    r->tags_v = str_list(s, tags, &in->ntags, &bad);
    if (bad) {
        refuse(c, tw_json_line(bad), in->title, "tags must be a list of strings");
        return 0;
    }
    r->refs_v = str_list(s, refs, &in->nreferences, &bad);
    if (bad) {
        refuse(c, tw_json_line(bad), in->title, "references must be a list of strings");
        return 0;
    }
    in->tags = r->tags_v;
    in->references = r->refs_v;
    /* the name rules are known by: `name`, else the file's stem */
    const tw_json *nm = tw_json_get(root, "name");
    char buf[300];
    if (nm) {
        if (tw_json_typeof(nm) != TW_JSON_STRING || !tw_json_string(nm, NULL)[0]) {
            refuse(c, tw_json_line(nm), in->title, "name must be a non-empty string");
            return 0;
        }
        in->name = str_of(s, nm);
    } else {
        snprintf(buf, sizeof buf, "%s", c->stem);
        for (size_t k = 2; name_taken(s, buf); k++)
            snprintf(buf, sizeof buf, "%s-%zu", c->stem, k);
        in->name = tw__arena_strndup(&s->arena, buf, strlen(buf));
    }
    if (!in->name || name_taken(s, in->name)) {
        refuse(c, nm ? tw_json_line(nm) : line, in->title, "name \"%s\" is used by another rule", in->name);
        return 0;
    }
    long other = *in->id ? ix_find(s, 1, in->id) : -1;
    if (other >= 0) {
        refuse(c, tw_json_line(tw_json_get(root, "id")), in->title, "id %s is used by another rule (%s:%u)",
               in->id, s->rules[other]->info.file, s->rules[other]->info.line);
        return 0;
    }
    return 1;
}

static int add_rule(tw_sigma *s, sg_rule *r)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        sg_rule **p = realloc(s->rules, cap * sizeof *p);
        if (!p)
            return 0;
        s->rules = p;
        s->cap = cap;
    }
    s->rules[s->n++] = r;
    if (!ix_add(s)) {
        s->n--;
        return 0;
    }
    return 1;
}

static tw_status on_doc(void *ctx, tw_json_doc *doc, size_t index, unsigned line, tw_error *err)
{
    ldctx *c = ctx;
    (void)index;
    sg_rule *r = calloc(1, sizeof *r);
    if (!r) {
        tw_json_doc_free(doc);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    r->doc = doc;
    const tw_json *root = r->root = r->info.doc = tw_json_root(doc);
    if (tw_json_typeof(root) != TW_JSON_OBJECT) {
        refuse(c, line, NULL, "a Sigma rule is a mapping (title, logsource, detection, ...)");
        goto drop;
    }
    if (line < tw_json_line(root))
        line = tw_json_line(root);
    if (!envelope(c, r, root, line))
        goto drop;
    const tw_json *det = tw_json_get(root, "detection"), *corr = tw_json_get(root, "correlation");
    if (tw_json_get(root, "filter") && !det && !corr) {
        refuse(c, line, r->info.title, "Sigma filters (meta filters) are not supported: put the exclusion in "
               "the rule's condition");
        goto drop;
    }
    if ((det != NULL) == (corr != NULL)) {
        refuse(c, line, r->info.title, det ? "a rule has either a detection or a correlation, not both"
                                           : "a rule needs a detection (or a correlation)");
        goto drop;
    }
    char why[600];
    unsigned at = 0;
    if (det) {
        r->info.kind = TW_SIGMA_DETECTION;
        if (!check_logsource(c, tw_json_get(root, "logsource"), r->info.title, line))
            goto drop;
        if (tw_json_typeof(det) != TW_JSON_OBJECT) {
            refuse(c, tw_json_line(det), r->info.title, "detection must be a mapping");
            goto drop;
        }
        if (!(r->compiled = tw__sigma_compile(c->s, det, &at, why, sizeof why))) {
            refuse(c, at ? at : line, r->info.title, "%s", why);
            goto drop;
        }
    } else {
        r->info.kind = TW_SIGMA_CORRELATION;
        if (!(r->corr = tw__sigma_corr_parse(c->s, corr, &at, why, sizeof why))) {
            refuse(c, at ? at : line, r->info.title, "%s", why);
            goto drop;
        }
        const tw_json *g = tw_json_get(root, "generate");
        if (g && tw_json_typeof(g) != TW_JSON_TRUE && tw_json_typeof(g) != TW_JSON_FALSE) {
            refuse(c, tw_json_line(g), r->info.title, "generate must be true or false");
            goto drop;
        }
        if (g)
            r->corr->generate = tw_json_typeof(g) == TW_JSON_TRUE;
        static const char *const types[] = {"event_count", "value_count", "value_sum", "value_avg", "temporal",
                                            "temporal_ordered"};
        r->info.corr_type = types[r->corr->type];
        r->info.timespan_ms = r->corr->timespan_ms;
    }
    if (strcmp(r->info.status, "unsupported") == 0) {
        refuse(c, tw_json_line(tw_json_get(root, "status")), r->info.title,
               "status: unsupported (the rule says it cannot be used as it is)");
        goto drop;
    }
    if (!add_rule(c->s, r)) {
        rule_free(r);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    c->docs++;
    return TW_OK;
drop:
    rule_free(r);
    return TW_OK;
}

tw_status tw_sigma_load_text(tw_sigma *s, const char *name, const char *text, size_t len, size_t *nerrors,
                             tw_report_fn report, void *ctx, tw_error *err)
{
    size_t dummy = 0;
    if (!nerrors)
        nerrors = &dummy;
    /* the stem names rules that have no `name` */
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    char stem[256];
    snprintf(stem, sizeof stem, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem && (strcmp(dot, ".yml") == 0 || strcmp(dot, ".yaml") == 0))
        *dot = '\0';
    ldctx c = {s, name, stem, nerrors, report, ctx, 0};
    tw_error e;
    tw_status rc = tw_yaml_parse_stream(text, len, &s->lim, on_doc, &c, &e);
    if (rc == TW_ENOMEM)
        return tw__err(err, rc, "%s: %s", name, e.msg);
    if (rc) {
        unsigned line = 0, col = 0;
        int used = 0;
        if (sscanf(e.msg, "line %u, column %u: %n", &line, &col, &used) == 2 && used > 0)
            refuse(&c, line, NULL, "%s (column %u); the rest of the file is not read", e.msg + used, col);
        else
            refuse(&c, 0, NULL, "%s", e.msg);
    }
    return TW_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_rule_file(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && ((l > 4 && strcmp(n + l - 4, ".yml") == 0) || (l > 5 && strcmp(n + l - 5, ".yaml") == 0));
}

static tw_status load_file(tw_sigma *s, const char *path, size_t *nerrors, tw_report_fn report, void *ctx,
                           tw_error *err)
{
    char *text;
    size_t len;
    tw_status rc = tw_read_file(path, s->lim.file_max, &text, &len, err);
    if (rc)
        return rc;
    rc = tw_sigma_load_text(s, path, text, len, nerrors, report, ctx, err);
    free(text);
    return rc;
}

static tw_status load_dir(tw_sigma *s, const char *path, unsigned depth, size_t *nerrors, tw_report_fn report,
                          void *ctx, tw_error *err)
{
    if (depth > 16)
        return TW_OK; /* deep enough: a link loop, not a rule collection */
    DIR *d = opendir(path);
    if (!d)
        return tw__err(err, TW_EIO, "%s: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    tw_status rc = TW_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) {
                rc = tw__err(err, TW_ENOMEM, "out of memory");
                break;
            }
            names = p;
        }
        if (!(names[n] = malloc(strlen(path) + strlen(de->d_name) + 2))) {
            rc = tw__err(err, TW_ENOMEM, "out of memory");
            break;
        }
        sprintf(names[n++], "%s/%s", path, de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && !rc; i++) {
        struct stat st;
        if (stat(names[i], &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = load_dir(s, names[i], depth + 1, nerrors, report, ctx, err);
        else if (S_ISREG(st.st_mode) && is_rule_file(strrchr(names[i], '/') + 1))
            rc = load_file(s, names[i], nerrors, report, ctx, err);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

tw_status tw_sigma_load_path(tw_sigma *s, const char *path, size_t *nerrors, tw_report_fn report, void *ctx,
                             tw_error *err)
{
    size_t dummy = 0;
    if (!nerrors)
        nerrors = &dummy;
    struct stat st;
    if (stat(path, &st) != 0)
        return tw__err(err, TW_EIO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        /* a trailing slash would double in the names */
        char p[4096];
        snprintf(p, sizeof p, "%s", path);
        size_t l = strlen(p);
        while (l > 1 && p[l - 1] == '/')
            p[--l] = '\0';
        return load_dir(s, p, 0, nerrors, report, ctx, err);
    }
    return load_file(s, path, nerrors, report, ctx, err);
}
