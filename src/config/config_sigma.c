/* config/config_sigma.c: the `sigma:` section: Sigma rule files and folders compiled into the rule
 * set beside the pattern rules, the targets their alerts go to, the correlation settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "config/load_int.h"
#include "json/json_int.h"
#include "trailwatch/sigma.h"

/* A refusal from the Sigma loader or linker, already "FILE:LINE: rule \"TITLE\": why": an error, or
 * with `on_refused: warn` a warning (`rules check` shows it, `serve` logs it) and the rule left out. */
static void report(void *ctx, const char *msg)
{
    tw_cfg_ld *ld = ctx;
    if (ld->sigma_warn)
        tw__buf_printf(&ld->warnings, "  %s (left out: sigma.on_refused is warn)\n", msg);
    else
        tw__cl_err_text(ld, TW_ECONFIG, msg);
}

/* One Sigma rule as a configuration rule bound to targets (ts: a list, written at the entry ctx). */
static void add_rule(tw_cfg_ld *ld, size_t si, const tw_json *ts, const char *ctx)
{
    tw_config *cfg = ld->cfg;
    const tw_sigma_rule_info *info = tw_sigma_rule(cfg->sigma.rules, si);
    if (!tw__cl_valid_name(info->name)) {
        /* messages of the rule file, not of trailwatch.yml */
        char msg[TW_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s:%u: rule \"%.80s\": its name \"%.80s\" cannot name an alert rule (1 to %d of "
                 "A-Z a-z 0-9 . _ -): give the rule a `name:`", info->file, info->line, info->title, info->name,
                 TW_CFG_NAME_MAX);
        tw__cl_err_text(ld, TW_ECONFIG, msg);
        return;
    }
    cl_rule_in in = {.name = info->name, .description = info->title, .severity = info->severity, .enabled = 1,
                     .no_pattern = 1, .line = info->line};
    const char *was = ld->file;   /* a clash of names is reported at the Sigma rule */
    ld->file = info->file;
    int rule = tw__cl_add_rule(ld, &in, ts ? (uint32_t)ts->n : 0);
    ld->file = was;
    if (rule < 0)
        return;
    tw_rule_cfg *r = &cfg->rules[rule];
    r->sigma_kind = info->kind == TW_SIGMA_CORRELATION ? "correlation" : "detection";
    r->sigma_index = (long)si;
    r->severity_given = 1;
    r->where = tw__cl_printf(ld, "%s:%u", info->file, info->line);
    if (strlen(r->description) > 512)
        r->description[512] = '\0';
    r->refs = tw__arena_calloc(&cfg->arena, (info->nreferences + info->ntags + 1) * sizeof *r->refs);
    if (!r->refs) {
        ld->oom = 1;
        return;
    }
    r->tags = r->refs + info->nreferences;
    for (size_t i = 0; i < info->nreferences && i < TW_CFG_LIST_MAX; i++)
        r->refs[r->nrefs++] = tw__cl_strdup(ld, info->references[i]);
    for (size_t i = 0; i < info->ntags && i < TW_CFG_LIST_MAX; i++)
        r->tags[r->ntags++] = tw__cl_strdup(ld, info->tags[i]);
    cfg->sigma.rule_of[si] = (uint32_t)rule;
    if (info->kind == TW_SIGMA_DETECTION && info->doc) {
        /* trailwatch's `examples` in a Sigma rule (other Sigma tools ignore attributes they do not know) */
        char rctx[128];
        snprintf(rctx, sizeof rctx, "rule \"%.64s\": ", info->name);
        ld->file = info->file;
        tw__cl_examples(ld, tw_json_get(info->doc, "examples"), rctx, r);
        ld->file = was;
    }
    /* The entry's targets are written once in trailwatch.yml: labelled by the entry, a mistake there
     * is reported once, not once per rule. */
    char label[160], sub[200];
    snprintf(label, sizeof label, "%s: ", ctx);
    ld->ref_label = tw__cl_strdup(ld, label);
    for (size_t i = 0; ts && i < ts->n; i++) {
        snprintf(sub, sizeof sub, "%s.targets[%zu]", ctx, i);
        tw__cl_binding(ld, rule, ts->u.items[i], sub);
    }
    ld->ref_label = NULL;
}

static void placeholders(tw_cfg_ld *ld, const tw_json *v)
{
    tw_error e;
    const tw_json *table = v;
    if (!v || v->type == TW_JSON_NULL)
        return;
    if (v->type == TW_JSON_STRING) {   /* a YAML or JSON file, relative to this one */
        const char *was = ld->file;
        const char *path = tw__cl_join(ld, ld->dir_abs, v->u.str);
        ld->file = path;
        table = tw__cl_read_yaml(ld, path, &e);
        ld->file = was;
        if (!table) {
            if (e.code)
                tw__cl_err(ld, v->line, e.code, "sigma.placeholders: %s", e.msg);
            return;
        }
    }
    if (table->type != TW_JSON_OBJECT) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "sigma.placeholders: must be a mapping {NAME: [values]} or the name of a "
                   "file holding one");
        return;
    }
    if (tw_sigma_set_placeholders(ld->cfg->sigma.rules, table, &e))
        tw__cl_err_from(ld, v->line, "sigma.placeholders: ", &e);
}

void tw__cl_sigma(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"paths", "targets", "placeholders", "lateness", "max_groups",
                                        "max_group_events", "save_interval", "on_refused", NULL};
    static const char *const entry_keys[] = {"path", "targets", NULL};
    tw_config *cfg = ld->cfg;
    if (!v || v->type == TW_JSON_NULL)
        return;
    if (tw__cl_keys(ld, v, "sigma", known) < 0)
        return;
    tw_correlator_opts co;
    tw_correlator_opts_default(&co);
    cfg->sigma.lateness_ms = co.lateness_ms;
    cfg->sigma.max_groups = co.max_groups;
    cfg->sigma.max_group_events = co.max_group_events;
    cfg->sigma.save_ms = 5000;
    tw__cl_duration(ld, v, "sigma", "lateness", 0, 7LL * 86400000, &cfg->sigma.lateness_ms);
    tw__cl_duration(ld, v, "sigma", "save_interval", 100, 3600000, &cfg->sigma.save_ms);
    uint64_t u;
    if (tw__cl_uint(ld, v, "sigma", "max_groups", 1, 100000000, &u) > 0)
        cfg->sigma.max_groups = (size_t)u;
    if (tw__cl_uint(ld, v, "sigma", "max_group_events", 1, 1000000, &u) > 0)
        cfg->sigma.max_group_events = (size_t)u;
    const char *orf;
    if (tw__cl_string(ld, v, "sigma", "on_refused", 1, &orf) > 0) {
        if (strcmp(orf, "warn") == 0)
            ld->sigma_warn = 1;
        else if (strcmp(orf, "error") != 0)
            tw__cl_err(ld, tw_json_get(v, "on_refused")->line, TW_ECONFIG, "sigma.on_refused: must be error (a "
                       "refused rule is an error, the default) or warn (it is left out, with a warning)");
    }
    const tw_json *paths = tw_json_get(v, "paths"), *deflt = tw_json_get(v, "targets");
    if (!paths || paths->type != TW_JSON_ARRAY || !paths->n || paths->n > TW_CFG_LIST_MAX) {
        tw__cl_err(ld, paths ? paths->line : v->line, TW_ECONFIG, "sigma.paths: must be a non-empty list of Sigma rule "
                   "files or folders (or {path, targets})");
        return;
    }
    if (deflt && deflt->type != TW_JSON_NULL && (deflt->type != TW_JSON_ARRAY || !deflt->n)) {
        tw__cl_err(ld, deflt->line, TW_ECONFIG, "sigma.targets: must be a non-empty list of target names or "
                   "{target: NAME, input_transformer: ...}");
        return;
    }
    if (deflt && deflt->type == TW_JSON_NULL)
        deflt = NULL;
    if (tw_sigma_new(&cfg->lim, &cfg->sigma.rules)) {
        ld->oom = 1;
        return;
    }
    placeholders(ld, tw_json_get(v, "placeholders"));
    for (size_t i = 0; i < paths->n && !ld->oom; i++) {
        const tw_json *e = paths->u.items[i], *ts = deflt;
        const char *p = NULL;
        char ctx[64];
        snprintf(ctx, sizeof ctx, "sigma.paths[%zu]", i);
        if (e->type == TW_JSON_STRING) {
            if (tw__cl_vstring(ld, e, ctx, 1, &p) <= 0)
                continue;
        } else {
            if (tw__cl_keys(ld, e, ctx, entry_keys) < 0)
                continue;
            int r = tw__cl_string(ld, e, ctx, "path", 1, &p);
            if (r == 0)
                tw__cl_err(ld, e->line, TW_ECONFIG, "%s: needs a path (a Sigma rule file or folder)", ctx);
            const tw_json *own = tw_json_get(e, "targets");
            if (own && own->type != TW_JSON_NULL) {
                if (own->type != TW_JSON_ARRAY || !own->n) {
                    tw__cl_err(ld, own->line, TW_ECONFIG, "%s.targets: must be a non-empty list of target names", ctx);
                    continue;
                }
                ts = own;
            }
            if (r <= 0)
                continue;
        }
        if (!ts) {
            tw__cl_err(ld, e->line, TW_ECONFIG, "%s: no targets for its alerts: give sigma.targets, or targets in "
                       "this entry ({path: ..., targets: [...]})", ctx);
            continue;
        }
        size_t before = tw_sigma_count(cfg->sigma.rules), nerr = 0;
        tw_error err;
        tw_status rc = tw_sigma_load_path(cfg->sigma.rules, tw__cl_join(ld, ld->dir_abs, p), &nerr, report, ld, &err);
        if (rc == TW_ENOMEM) {
            ld->oom = 1;
            return;
        }
        if (rc) {
            tw__cl_err(ld, e->line, rc, "%s: %s", ctx, err.msg);
            continue;
        }
        size_t after = tw_sigma_count(cfg->sigma.rules);
        if (after == before && !nerr)
            tw__cl_err(ld, e->line, TW_ECONFIG, "%s: \"%s\" holds no Sigma rules (*.yml, *.yaml)", ctx, p);
        uint32_t *ro = realloc(cfg->sigma.rule_of, (after + 1) * sizeof *ro);
        if (!ro) {
            ld->oom = 1;
            return;
        }
        cfg->sigma.rule_of = ro;
        for (size_t k = before; k < after; k++) {
            ro[k] = UINT32_MAX;
            add_rule(ld, k, ts, ctx);
        }
    }
}

void tw__cl_sigma_build(tw_cfg_ld *ld, tw_ruleset_builder *b)
{
    tw_config *cfg = ld->cfg;
    tw_sigma *s = cfg->sigma.rules;
    size_t nerr = 0;
    tw_error e;
    tw_status rc = tw_sigma_add(s, b, &nerr, report, ld, &e);
    if (rc == TW_ENOMEM) {
        ld->oom = 1;
        return;
    }
    if (rc) {
        tw__cl_err_text(ld, rc, e.msg);
        return;
    }
    for (size_t i = 0; i < tw_sigma_count(s); i++) {
        const tw_sigma_rule_info *info = tw_sigma_rule(s, i);
        uint32_t ri = cfg->sigma.rule_of[i];
        if (ri == UINT32_MAX)
            continue;
        tw_rule_cfg *r = &cfg->rules[ri];
        if (info->refused) {   /* dropped while linking (reported): it runs nowhere */
            r->enabled = 0;
            for (uint32_t k = 0; k < r->nbindings; k++)
                tw__transform_free(r->bindings[k].xf);
            r->nbindings = 0;
            continue;
        }
        if (info->kind == TW_SIGMA_CORRELATION) {
            cfg->sigma.ncorrelations++;
            /* Each worker would count only the events it fetched: a correlation over events spread
             * across workers would under-count, silently. Refused until the state is shared. */
            if (cfg->cluster.role == TW_CLUSTER_BOTH || cfg->cluster.role == TW_CLUSTER_WORKER) {
                char msg[900];
                snprintf(msg, sizeof msg, "%s:%u: rule \"%.120s\": a Sigma correlation cannot run in cluster mode "
                         "(cluster.role: %s): each worker would count only the events it takes and under-count; "
                         "run correlations on a trailwatch serve without a cluster: section (docs/CLUSTER.md)",
                         info->file, info->line, info->name,
                         cfg->cluster.role == TW_CLUSTER_BOTH ? "both" : "worker");
                tw__cl_err_text(ld, TW_ECONFIG, msg);
            }
        } else if (info->ruleset_index >= 0) {
            cfg->ruleset_rule[info->ruleset_index] = ri;
        }
        if (!info->alerts) {
            /* only an input of `generate: false` correlations: it matches, but alerts nowhere */
            for (uint32_t k = 0; k < r->nbindings; k++)
                tw__transform_free(r->bindings[k].xf);
            r->nbindings = 0;
        }
    }
}

void tw__cl_sigma_free(tw_config *cfg)
{
    tw_sigma_free(cfg->sigma.rules);
    free(cfg->sigma.rule_of);
}
