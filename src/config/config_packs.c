/* config/config_packs.c: rule packs: the `packs:` entries of trailwatch.yml and the pack files they
 * load (format: rules/README.md), with their params.
 *
 * A pack is a file of rules without targets; the entry that loads it gives the targets, the values of
 * the pack's params and the rules to load disabled. A string that is exactly "${param:NAME}"
 * anywhere in the pack's rules is replaced by the param's value, whatever its type (a list of ARNs
 * in a pattern), so a pack is written once and configured in one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "config/load_int.h"
#include "json/json_int.h"
#include "trailwatch/packs.h"

#include "paths.h"        /* TW_RULES_DIR, from the Makefile's PREFIX */

typedef struct param {
    const char *name;
    const tw_json *value;           /* NULL: not given (reported) */
} param;

/* A pack's params: a handful (the guard has one); the cap bounds the per-entry work. */
#define PACK_PARAMS_MAX 64

typedef struct pack_ld {
    param params[PACK_PARAMS_MAX];
    size_t nparams;
    tw_json_doc *doc;               /* where substituted copies live */
} pack_ld;

#define PARAM_OPEN "${param:"

/* v with every "${param:NAME}" string replaced by the param's value (copied into pl->doc). */
static tw_json *subst(tw_cfg_ld *ld, pack_ld *pl, const tw_json *v)
{
    tw_json *c;
    switch (v->type) {
    case TW_JSON_STRING: {
        const char *s = v->u.str;
        if (!strstr(s, PARAM_OPEN))
            return (tw_json *)v;
        size_t n = strlen(s), open = strlen(PARAM_OPEN);
        if (strncmp(s, PARAM_OPEN, open) != 0 || s[n - 1] != '}' || memchr(s + open, '}', n - open - 1)) {
            tw__cl_err(ld, v->line, TW_ECONFIG, "${param:NAME} must be the whole value (it may stand for a list)");
            return NULL;
        }
        for (size_t i = 0; i < pl->nparams; i++)
            if (strlen(pl->params[i].name) == n - open - 1 && strncmp(pl->params[i].name, s + open, n - open - 1) == 0) {
                if (!pl->params[i].value)
                    return NULL;                            /* reported where the entry is */
                if (!(c = tw__json_copy(pl->doc, pl->params[i].value)))
                    ld->oom = 1;
                else
                    c->line = v->line;
                return c;
            }
        tw__cl_err(ld, v->line, TW_ECONFIG, "%.200s: the pack declares no such param", s);
        return NULL;
    }
    case TW_JSON_ARRAY:
    case TW_JSON_OBJECT:
        if (!(c = tw__json_new(pl->doc, (tw_json_type)v->type))) {
            ld->oom = 1;
            return NULL;
        }
        c->line = v->line;
        c->col = v->col;
        for (size_t i = 0; i < v->n; i++) {
            const tw_json *item = v->type == TW_JSON_ARRAY ? v->u.items[i] : v->u.members[i].val;
            tw_json *copy = subst(ld, pl, item);
            if (!copy)
                return NULL;
            tw_status rc = v->type == TW_JSON_ARRAY ? tw__json_push(pl->doc, c, copy)
                                                    : tw__json_put(pl->doc, c, v->u.members[i].key,
                                                                   v->u.members[i].klen, copy);
            if (rc) {
                ld->oom = 1;
                return NULL;
            }
        }
        return c;
    default:
        return (tw_json *)v;
    }
}

/* The pack's `params:` declarations, valued from the entry (or, for tests, their examples). Reports a
 * missing value at the entry (entry_line in the entry's file). */
static void declare_params(tw_cfg_ld *ld, pack_ld *pl, const tw_json *decl, const tw_json *given,
                           const cl_pack *pk, unsigned entry_line)
{
    static const char *const keys[] = {"description", "example", "default", NULL};
    if (decl && decl->type != TW_JSON_NULL && !tw__cl_is_object(ld, decl, "params"))
        decl = NULL;
    for (size_t i = 0; decl && decl->type == TW_JSON_OBJECT && i < decl->n; i++) {
        const tw_json_member *m = &decl->u.members[i];
        char ctx[128];
        snprintf(ctx, sizeof ctx, "params.%.64s", m->key);
        if (pl->nparams == PACK_PARAMS_MAX) {
            tw__cl_err(ld, m->val->line, TW_ECONFIG, "params: at most %d", PACK_PARAMS_MAX);
            return;
        }
        if (!tw__cl_valid_name(m->key))
            tw__cl_err(ld, m->val->line, TW_ECONFIG, "%s: a name is 1 to %d of A-Z a-z 0-9 . _ -", ctx, TW_CFG_NAME_MAX);
        if (m->val->type != TW_JSON_NULL)
            tw__cl_keys(ld, m->val, ctx, keys);
        const tw_json *ex = tw_json_get(m->val, "example"), *def = tw_json_get(m->val, "default");
        const tw_json *val = ld->test ? (ex ? ex : def) : tw_json_get(given, m->key);
        if (!val && !ld->test)
            val = def;
        pl->params[pl->nparams++] = (param){tw__cl_strdup(ld, m->key), val};
        if (!val && ld->test) {
            tw__cl_err(ld, m->val->line, TW_ECONFIG, "%s: needs an example (rules test uses it)", ctx);
        } else if (!val) {
            const char *was = ld->file;
            uint32_t was_no = ld->file_no;
            const char *desc = tw_json_string(tw_json_get(m->val, "description"), NULL);
            ld->file = pk->entry_file;
            ld->file_no = pk->entry_file_no;
            tw__cl_err(ld, entry_line, TW_ECONFIG, "%s: params.%s: required by pack \"%s\"%s%s", pk->entry_ctx,
                           m->key, pk->name, desc ? ": " : "", desc ? desc : "");
            ld->file = was;
            ld->file_no = was_no;
        }
    }
    /* Values for params the pack does not declare are mistakes (a typo would leave the real one
     * unset and be reported as missing; say which was meant). */
    for (size_t i = 0; given && given->type == TW_JSON_OBJECT && i < given->n; i++) {
        const char *k = given->u.members[i].key;
        const char *names[PACK_PARAMS_MAX];
        size_t n = 0, j;
        for (j = 0; j < pl->nparams && strcmp(pl->params[j].name, k) != 0; j++)
            names[n++] = pl->params[j].name;
        if (j < pl->nparams)
            continue;
        const char *near = tw__cl_closest(k, names, n);
        const char *was = ld->file;
        uint32_t was_no = ld->file_no;
        ld->file = pk->entry_file;
        ld->file_no = pk->entry_file_no;
        tw__cl_err(ld, given->u.members[i].val->line, TW_ECONFIG, "%s: params: pack \"%s\" has no param \"%.64s\"%s%s%s",
                   pk->entry_ctx, pk->name, k, near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "");
        ld->file = was;
        ld->file_no = was_no;
    }
}

/* Reads the pack file at abs (shown as `shown`) and adds its rules. entry_line: where trailwatch.yml
 * loads it (0 for tests). */
static void load_pack(tw_cfg_ld *ld, const char *shown, const char *abs, cl_pack *pk, const tw_json *given,
                      unsigned entry_line)
{
    static const char *const keys[] = {"pack", "description", "references", "params", "rules", NULL};
    const char *was_file = ld->file;
    uint32_t was_no = ld->file_no;
    ld->file = shown;
    ld->file_no = ++ld->nfiles;
    tw_error e;
    const tw_json *root = tw__cl_read_yaml(ld, abs, &e);
    pack_ld pl = {.nparams = 0};
    if (!root) {
        ld->file = pk->entry_file ? pk->entry_file : shown;
        ld->file_no = pk->entry_file ? pk->entry_file_no : ld->file_no;
        if (e.code)
            tw__cl_err(ld, entry_line, e.code, "%s%scannot read pack %s (%s)", pk->entry_ctx ? pk->entry_ctx : "",
                       pk->entry_ctx ? ": " : "", shown, strstr(e.msg, ": ") ? strstr(e.msg, ": ") + 2 : e.msg);
        goto out;
    }
    if (root->type != TW_JSON_OBJECT || !tw_json_get(root, "rules")) {
        tw__cl_err(ld, root->line, TW_ECONFIG, "a rule pack is a mapping with pack, description, rules "
                                               "(rules/README.md)");
        goto out;
    }
    tw__cl_keys(ld, root, "", keys);
    const char *name = NULL;
    if (tw__cl_string(ld, root, "", "pack", 1, &name) == 0)
        tw__cl_err(ld, root->line, TW_ECONFIG, "pack: missing (the pack's name)");
    if (name && !tw__cl_valid_name(name)) {
        tw__cl_err(ld, tw_json_get(root, "pack")->line, TW_ECONFIG, "pack: a name is 1 to %d of A-Z a-z 0-9 . _ -",
                   TW_CFG_NAME_MAX);
        name = NULL;
    }
    const char *desc;
    tw__cl_string(ld, root, "", "description", 0, &desc);
    pk->name = tw__cl_strdup(ld, name ? name : "?");
    if (!pk->entry_ctx)
        pk->entry_ctx = tw__cl_printf(ld, "pack %s", pk->name);
    if (!(pl.doc = tw__cl_new_doc(ld)))
        goto out;
    declare_params(ld, &pl, tw_json_get(root, "params"), given, pk, entry_line);
    const tw_json *rules = tw_json_get(root, "rules");
    if (rules->type != TW_JSON_ARRAY) {
        tw__cl_err(ld, rules->line, TW_ECONFIG, "rules: must be a list of {name, description, severity, pattern, "
                                                "examples, ...}");
        goto out;
    }
    for (size_t i = 0; i < rules->n; i++) {
        tw_json *r = subst(ld, &pl, rules->u.items[i]);
        if (r)
            tw__cl_rule(ld, r, i, pk);
    }
    /* The entry's `disable` names must be rules of this pack. */
    for (size_t i = 0; pk->disable && i < tw_json_size(pk->disable); i++) {
        const tw_json *d = tw_json_at(pk->disable, i);
        const char *dn = tw_json_string(d, NULL);
        const char *names[1024];
        size_t n = 0, j;
        for (j = 0; dn && j < rules->n; j++) {
            const char *rn = tw_json_string(tw_json_get(rules->u.items[j], "name"), NULL);
            if (rn && strcmp(rn, dn) == 0)
                break;
            if (rn && n < 1024)
                names[n++] = rn;
        }
        if (dn && j < rules->n)
            continue;
        const char *near = dn ? tw__cl_closest(dn, names, n) : NULL;
        ld->file = pk->entry_file;
        ld->file_no = pk->entry_file_no;
        tw__cl_err(ld, d->line, TW_ECONFIG, "%s: disable[%zu]: pack \"%s\" has no rule %s%.80s%s%s%s%s", pk->entry_ctx,
                   i, pk->name, dn ? "\"" : "", dn ? dn : "(not a name)", dn ? "\"" : "",
                   near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "");
    }
out:
    ld->file = was_file;
    ld->file_no = was_no;
}

const char *tw_rules_dir(void)
{
    const char *env = getenv("TRAILWATCH_RULES_DIR");
    return env && *env ? env : TW_RULES_DIR;
}

/* A pack's file: a path (relative to trailwatch.yml's folder), or a bare name ("guard") looked up as
 * NAME.yml in $TRAILWATCH_RULES_DIR, then in the installed rules folder. */
static const char *pack_path(tw_cfg_ld *ld, const char *p)
{
    size_t n = strlen(p);
    int bare = !strchr(p, '/') && !(n > 4 && strcmp(p + n - 4, ".yml") == 0) &&
               !(n > 5 && strcmp(p + n - 5, ".yaml") == 0);
    if (!bare)
        return tw__cl_join(ld, ld->dir_abs, p);
    const char *env = getenv("TRAILWATCH_RULES_DIR");
    const char *dirs[] = {env && *env ? env : NULL, TW_RULES_DIR};
    for (size_t i = 0; i < 2; i++) {
        if (!dirs[i])
            continue;
        const char *cand = tw__cl_printf(ld, "%s/%s.yml", dirs[i], p);
        if (access(cand, R_OK) == 0)
            return cand;
    }
    return tw__cl_printf(ld, "%s/%s.yml", env && *env ? env : TW_RULES_DIR, p);
}

void tw__cl_packs(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"path", "targets", "params", "disable", NULL};
    if (!v || v->type == TW_JSON_NULL)
        return;
    if (v->type != TW_JSON_ARRAY) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "packs: must be a list of {path, targets, params, disable}");
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const tw_json *e = v->u.items[i];
        char ctx[48], sub[80];
        snprintf(ctx, sizeof ctx, "packs[%zu]", i);
        if (tw__cl_keys(ld, e, ctx, known) < 0)
            continue;
        const char *p = NULL;
        int r = tw__cl_string(ld, e, ctx, "path", 1, &p);
        if (r == 0)
            tw__cl_err(ld, e->line, TW_ECONFIG, "%s: path: missing (a pack file, or a pack name such as guard)", ctx);
        const tw_json *ts = tw_json_get(e, "targets"), *params = tw_json_get(e, "params"),
                      *dis = tw_json_get(e, "disable");
        if (!ts || ts->type != TW_JSON_ARRAY || ts->n == 0) {
            tw__cl_err(ld, ts ? ts->line : e->line, TW_ECONFIG, "%s: targets: must be a non-empty list of target "
                       "names or {target: NAME, input_transformer: ...}: every rule of the pack delivers to them", ctx);
            r = -1;
        }
        if (params && params->type != TW_JSON_NULL && !tw__cl_is_object(ld, params, tw__cl_path(sub, sizeof sub, ctx, "params")))
            r = -1;
        if (dis && dis->type != TW_JSON_NULL && (dis->type != TW_JSON_ARRAY || dis->n > TW_CFG_LIST_MAX)) {
            tw__cl_err(ld, dis->line, TW_ECONFIG, "%s: disable: must be a list of rule names", ctx);
            r = -1;
        }
        if (r <= 0)
            continue;
        cl_pack pk = {NULL, ts, ld->file, ld->file_no, tw__cl_strdup(ld, ctx), dis && dis->type == TW_JSON_ARRAY ? dis : NULL};
        const char *abs = pack_path(ld, p);
        const char *shown = strchr(p, '/') || strstr(p, ".y") ? (strcmp(ld->dir_shown, ".") == 0 || p[0] == '/'
                                                                     ? tw__cl_strdup(ld, p)
                                                                     : tw__cl_join(ld, ld->dir_shown, p))
                                                              : abs;
        load_pack(ld, shown, abs, &pk, params && params->type == TW_JSON_OBJECT ? params : NULL, e->line);
    }
}

void tw__cl_pack_for_test(tw_cfg_ld *ld, const char *path)
{
    cl_pack pk = {NULL, NULL, NULL, 0, NULL, NULL};
    load_pack(ld, tw__cl_strdup(ld, path), tw__cl_join(ld, ld->dir_abs, path), &pk, NULL, 0);
}
