/* config/config_facts.c: a rule's `facts:` (expressions computed per matched event, docs/FACTS.md),
 * the `data:` tables they read, and the per-alert "extra" object templates see as `$.facts.NAME`. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "config/facts_eval.h"
#include "config/load_int.h"
#include "json/json_int.h"

/* A rule's facts: a handful each (the DynamoDB price needs six). */
#define TW_CFG_FACTS_MAX 64

static int ident(const char *s)
{
    static const char *const reserved[] = {"data", "true", "false", "null", "and", "or", "not", NULL};
    size_t n = strlen(s);
    if (n == 0 || n > TW_CFG_NAME_MAX || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    for (size_t i = 0; reserved[i]; i++)
        if (strcmp(s, reserved[i]) == 0)
            return 0;
    return 1;
}

void tw__cl_data(tw_cfg_ld *ld, const tw_json *v)
{
    if (!v || v->type == TW_JSON_NULL || !tw__cl_is_object(ld, v, "data"))
        return;
    tw_config *cfg = ld->cfg;
    if (!cfg->data_doc && !(cfg->data_doc = tw__json_doc_new())) {
        ld->oom = 1;
        return;
    }
    tw_json *tables = tw__json_new(cfg->data_doc, TW_JSON_OBJECT);
    if (!tables) {
        ld->oom = 1;
        return;
    }
    cfg->data = tables;
    for (size_t i = 0; i < v->n; i++) {
        const tw_json_member *m = &v->u.members[i];
        char ctx[96];
        const char *p;
        snprintf(ctx, sizeof ctx, "data.%.64s", m->key);
        if (!ident(m->key)) {
            tw__cl_err(ld, m->val->line, TW_ECONFIG, "%s: a table's name is a letter or _, then letters, digits "
                       "or _ (it is written data.NAME in facts)", ctx);
            continue;
        }
        if (tw__cl_vstring(ld, m->val, ctx, 1, &p) <= 0)
            continue;
        const char *abs = tw__cl_join(ld, ld->dir_abs, p);
        const char *shown = strcmp(ld->dir_shown, ".") == 0 || p[0] == '/' ? tw__cl_strdup(ld, p)
                                                                          : tw__cl_join(ld, ld->dir_shown, p);
        const char *was = ld->file;
        uint32_t was_no = ld->file_no;
        ld->file = shown;
        ld->file_no = ++ld->nfiles;
        tw_error e;
        const tw_json *root = tw__cl_read_yaml(ld, abs, &e);
        ld->file = was;
        ld->file_no = was_no;
        if (!root) {
            if (e.code)
                tw__cl_err(ld, m->val->line, e.code, "%s: cannot read %s (%s)", ctx, shown,
                           strstr(e.msg, ": ") ? strstr(e.msg, ": ") + 2 : e.msg);
            continue;
        }
        tw_json *copy = tw__json_copy(cfg->data_doc, root);
        if (!copy || tw__json_put(cfg->data_doc, tables, m->key, m->klen, copy))
            ld->oom = 1;
    }
}

typedef struct data_check {
    tw_cfg_ld *ld;
    unsigned line;
    const char *ctx;
} data_check;

static void check_table(void *c, const char *name, size_t len)
{
    data_check *dc = c;
    const tw_json *tables = dc->ld->cfg->data;
    for (size_t i = 0; i < tw_json_size(tables); i++) {
        size_t kl;
        const char *k = tw_json_key(tables, i, &kl);
        if (kl == len && memcmp(k, name, len) == 0)
            return;
    }
    tw__cl_err(dc->ld, dc->line, TW_ECONFIG, "%s: data.%.*s: no such data table (tables come from `data:` in "
               "trailwatch.yml)", dc->ctx, (int)(len > 64 ? 64 : len), name);
}

void tw__cl_facts(tw_cfg_ld *ld, const tw_json *v, const char *ctx, tw_rule_cfg *r)
{
    char name[200];
    tw__cl_path(name, sizeof name, ctx, "facts");
    if (!v || v->type == TW_JSON_NULL || !tw__cl_is_object(ld, v, name))
        return;
    if (v->n > TW_CFG_FACTS_MAX) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: at most %d facts", name, TW_CFG_FACTS_MAX);
        return;
    }
    r->facts = tw__arena_calloc(&ld->cfg->arena, (v->n ? v->n : 1) * sizeof *r->facts);
    const char *names[TW_CFG_FACTS_MAX];
    if (!r->facts) {
        ld->oom = 1;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const tw_json_member *m = &v->u.members[i];
        char fctx[300];
        snprintf(fctx, sizeof fctx, "%s.%.64s", name, m->key);
        if (!ident(m->key)) {
            tw__cl_err(ld, m->val->line, TW_ECONFIG, "%s: a fact's name is a letter or _, then letters, digits or "
                       "_ (not data, true, false, null, and, or, not)", fctx);
            continue;
        }
        for (uint32_t k = 0; k < r->nfacts; k++)
            if (strcmp(names[k], m->key) == 0)
                tw__cl_err(ld, m->val->line, TW_ECONFIG, "%s: defined twice", fctx);
        /* YAML reads `hours: 730` as a number: its text is the expression all the same */
        const char *text = m->val->type == TW_JSON_STRING ? m->val->u.str
                           : m->val->type == TW_JSON_NUMBER ? m->val->u.num.text
                           : m->val->type == TW_JSON_TRUE ? "true" : m->val->type == TW_JSON_FALSE ? "false" : NULL;
        if (!text) {
            tw__cl_err(ld, m->val->line, TW_ECONFIG, "%s: must be an expression (a string)", fctx);
            continue;
        }
        if (tw__cl_tainted(ld, m->val))
            continue;
        tw_expr *e = NULL;
        tw_error err;
        if (tw__expr_compile(text, strlen(text), names, r->nfacts, &e, &err)) {
            if (err.code == TW_ENOMEM)
                ld->oom = 1;
            else
                tw__cl_err(ld, m->val->line, err.code, "%s: %s", fctx, err.msg);
            continue;
        }
        data_check dc = {ld, m->val->line, fctx};
        tw__expr_data_refs(e, check_table, &dc);
        names[r->nfacts] = tw__cl_strdup(ld, m->key);
        r->facts[r->nfacts].name = (char *)names[r->nfacts];
        r->facts[r->nfacts++].expr = e;
    }
}

tw_status tw__config_rule_extra(const tw_config *cfg, const tw_rule_cfg *r, const tw_json *event,
                                const tw_json *enrichment, tw_json_doc *doc, const tw_json **extra, tw_error *err)
{
    *extra = NULL;
    if (!r->nfacts && !enrichment)
        return TW_OK;
    tw_json *obj = tw__json_new(doc, TW_JSON_OBJECT);
    tw_json *facts = r->nfacts ? tw__json_new(doc, TW_JSON_OBJECT) : NULL;
    const tw_json *values[TW_CFG_FACTS_MAX];
    if (!obj || (r->nfacts && !facts) ||
        (enrichment && tw__json_put(doc, obj, "enrichment", 10, tw__json_copy(doc, enrichment))) ||
        (facts && tw__json_put(doc, obj, "facts", 5, facts)))
        return tw__err(err, TW_ENOMEM, "out of memory");
    tw_status first = TW_OK;
    for (uint32_t i = 0; i < r->nfacts; i++) {
        /* a fact sees the facts before it by name, and as $.facts.NAME like the templates */
        tw_expr_env env = {event, obj, cfg->data, values, doc};
        const tw_json *v = NULL;
        tw_error e;
        tw_status rc = tw__expr_eval(r->facts[i].expr, &env, &v, &e);
        if (rc == TW_ENOMEM)
            return tw__err(err, rc, "out of memory");
        if (rc && !first)
            first = tw__err(err, rc, "fact %s: %s", r->facts[i].name, e.msg);
        tw_json *copy = v ? tw__json_copy(doc, v) : tw__json_new(doc, TW_JSON_NULL);
        if (!copy || tw__json_put(doc, facts, r->facts[i].name, strlen(r->facts[i].name), copy))
            return tw__err(err, TW_ENOMEM, "out of memory");
        values[i] = copy;
    }
    *extra = obj;
    return first;
}
