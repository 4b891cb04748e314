/* config/config_rules.c: the `rules:` section, rules and bindings from any file, and the rule set
 * built from the enabled rules once every target is known. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "config/load_int.h"
#include "json/json_int.h"

static const char *const severities[] = {"critical", "high", "medium", "low", "info", NULL};

/* The deepest node a message's leading dotted path ("detail.eventName: ...") reaches from v: errors
 * then point at the line that holds the mistake, not only at the start of the pattern. */
static unsigned path_line(const tw_json *v, const char *msg)
{
    unsigned line = tw_json_line(v);
    const char *end = strstr(msg, ": ");
    const char *p = msg;
    while (end && p < end && tw_json_typeof(v) == TW_JSON_OBJECT) {
        const tw_json *next = NULL;
        size_t used = 0;
        for (size_t i = 0; i < v->n; i++) {   /* keys may hold dots: the longest key that fits */
            const tw_json_member *m = &v->u.members[i];
            if (m->klen > used && m->klen <= (size_t)(end - p) && memcmp(p, m->key, m->klen) == 0 &&
                (p + m->klen == end || p[m->klen] == '.')) {
                next = m->val;
                used = m->klen;
            }
        }
        if (!next)
            break;
        v = next;
        if (v->line)
            line = v->line;
        p += used + (p + used < end);
    }
    return line;
}

/* The pattern as JSON text, as written (a string) or serialised (a mapping). */
static char *pattern_text(tw_cfg_ld *ld, const tw_json *pv)
{
    if (!pv || (pv->type != TW_JSON_STRING && pv->type != TW_JSON_OBJECT))
        return tw__cl_strdup(ld, "");
    if (pv->type == TW_JSON_STRING)
        return tw__cl_strndup(ld, pv->u.str, pv->n);
    tw_buf b = TW_BUF_INIT;
    char *s = tw__json_write(&b, pv) == TW_OK ? tw__cl_strndup(ld, b.data, b.len) : tw__cl_strdup(ld, "");
    tw__buf_free(&b);
    return s;
}

int tw__cl_add_rule(tw_cfg_ld *ld, const cl_rule_in *in, uint32_t nbindings)
{
    tw_config *cfg = ld->cfg;
    if (!tw__cl_valid_name(in->name)) {
        tw__cl_err(ld, in->line, TW_ECONFIG, "rule \"%.80s\": a name is 1 to %d of A-Z a-z 0-9 . _ -", in->name,
                   TW_CFG_NAME_MAX);
        return -1;
    }
    for (uint32_t i = 0; i < cfg->nrules; i++)
        if (strcmp(cfg->rules[i].name, in->name) == 0) {
            tw__cl_err(ld, in->line, TW_EEXIST, "rule \"%s\": defined twice (first at %s)", in->name,
                       cfg->rules[i].where);
            return -1;
        }
    char prefix[128];
    snprintf(prefix, sizeof prefix, "rule \"%s\": ", in->name);
    tw_pattern *p = NULL;
    const tw_json *pv = in->pattern;
    tw_error e;
    tw_status rc = TW_OK;
    if (in->no_pattern)
        ;
    else if (!pv || pv->type == TW_JSON_NULL)
        tw__cl_err(ld, in->line, TW_ECONFIG, "%spattern: missing", prefix);
    else if (pv->type == TW_JSON_STRING && !tw__cl_tainted(ld, pv))
        rc = tw_pattern_parse(pv->u.str, pv->n, &cfg->lim, &p, &e);
    else if (pv->type == TW_JSON_OBJECT && !tw__cl_tainted(ld, pv))
        rc = tw_pattern_from_json(pv, &cfg->lim, &p, &e);
    else if (pv->type != TW_JSON_STRING && pv->type != TW_JSON_OBJECT)
        tw__cl_err(ld, pv->line, TW_ECONFIG, "%spattern: must be a mapping (or JSON text), not %s", prefix,
                   tw_json_type_name((tw_json_type)pv->type));
    if (rc && pv)
        tw__cl_err_from(ld, pv->type == TW_JSON_OBJECT ? path_line(pv, e.msg) : pv->line, prefix, &e);
    if (p && !in->enabled && !ld->test) {   /* validated, but not part of the rule set */
        tw_pattern_free(p);
        p = NULL;
    }
    if (cfg->nrules == ld->rules_cap) {
        uint32_t cap = ld->rules_cap ? 2 * ld->rules_cap : 16;
        tw_rule_cfg *r = realloc(cfg->rules, cap * sizeof *r);
        if (!r) {
            tw_pattern_free(p);
            ld->oom = 1;
            return -1;
        }
        cfg->rules = r;
        ld->rules_cap = cap;
    }
    if (tw__buf_append(&ld->patterns, &p, sizeof p)) {
        tw_pattern_free(p);
        ld->oom = 1;
        return -1;
    }
    tw_rule_cfg *r = &cfg->rules[cfg->nrules];
    memset(r, 0, sizeof *r);
    r->name = tw__cl_strdup(ld, in->name);
    r->description = tw__cl_strdup(ld, in->description ? in->description : "");
    r->severity = tw__cl_strdup(ld, in->severity ? in->severity : "medium");
    r->enabled = in->enabled;
    r->storm = in->storm;
    r->where = tw__cl_printf(ld, "%s:%u", ld->file, in->line);
    r->pattern_json = pattern_text(ld, pv);
    r->sigma_index = -1;
    r->bindings = tw__arena_calloc(&cfg->arena, (nbindings ? nbindings : 1) * sizeof *r->bindings);
    if (!r->bindings)
        ld->oom = 1;
    return ld->oom ? -1 : (int)cfg->nrules++;
}

void tw__cl_add_binding(tw_cfg_ld *ld, int rule, const char *target, const tw_json *xf_binding,
                        const char *ctx, unsigned line)
{
    if (rule < 0)
        return;
    char label[200];
    ctx = tw__cl_label(label, sizeof label, ctx);
    tw_rule_cfg *r = &ld->cfg->rules[rule];
    const cl_ref *refs = (const cl_ref *)(const void *)ld->refs.data;
    for (size_t i = 0; i < ld->refs.len / sizeof *refs; i++)
        if (refs[i].rule == (uint32_t)rule && strcmp(refs[i].name, target) == 0) {
            /* One alert per (event, rule, target): the idempotency key would collide. */
            tw__cl_err(ld, line, TW_ECONFIG, "%starget \"%s\" is listed twice", ctx, target);
            return;
        }
    tw_transform *xf = NULL;
    if (xf_binding && !tw__cl_tainted(ld, xf_binding)) {
        tw_error e;
        if (tw__transform_compile(xf_binding, &xf, &e)) {
            unsigned at = path_line(xf_binding, e.msg);
            tw__cl_err_from(ld, at ? at : line, ctx, &e);
            xf = NULL;
        }
    }
    cl_ref ref = {(uint32_t)rule, r->nbindings, tw__cl_strdup(ld, target), ld->file, ld->file_no, line,
                  ld->ref_label};
    if (tw__buf_append(&ld->refs, &ref, sizeof ref)) {
        tw__transform_free(xf);
        ld->oom = 1;
        return;
    }
    r->bindings[r->nbindings++] = (tw_binding){UINT32_MAX, xf};
}

/* ---- trailwatch.yml rules: ---- */

static void storm(tw_cfg_ld *ld, const tw_json *v, const char *ctx, tw_storm_cfg *st)
{
    static const char *const known[] = {"keys", "window", NULL};
    if (!v || v->type == TW_JSON_NULL || tw__cl_keys(ld, v, ctx, known) < 0)
        return;
    char kp[200];
    if (tw__cl_duration(ld, v, ctx, "window", 1000, 7LL * 86400000, &st->window_ms) == 0)
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: missing (how long identical alerts are folded, e.g. 5m)",
                   tw__cl_path(kp, sizeof kp, ctx, "window"));
    const tw_json *keys = tw_json_get(v, "keys");
    tw__cl_path(kp, sizeof kp, ctx, "keys");
    if (!keys || keys->type == TW_JSON_NULL)
        return;
    if (keys->type != TW_JSON_ARRAY || keys->n > 16) {
        tw__cl_err(ld, keys->line, TW_ECONFIG, "%s: must be a list of at most 16 JSONPaths ($.detail.name)", kp);
        return;
    }
    st->keys = tw__arena_calloc(&ld->cfg->arena, (keys->n ? keys->n : 1) * sizeof *st->keys);
    if (!st->keys) {
        ld->oom = 1;
        return;
    }
    for (size_t i = 0; i < keys->n; i++) {
        const char *k;
        char name[240];
        snprintf(name, sizeof name, "%s[%zu]", kp, i);
        if (tw__cl_vstring(ld, keys->u.items[i], name, 1, &k) <= 0)
            continue;
        if (!tw__jsonpath_valid(k))
            tw__cl_err(ld, keys->u.items[i]->line, TW_ECONFIG, "%s: not a JSONPath such as $.detail.name", name);
        else
            st->keys[st->nkeys++] = tw__cl_strdup(ld, k);
    }
}

/* {target: NAME, input | input_path | input_transformer {input_paths_map, input_template}} */
void tw__cl_binding(tw_cfg_ld *ld, int rule, const tw_json *b, const char *ctx)
{
    static const char *const known[] = {"target", "input", "input_path", "input_transformer", NULL};
    static const char *const xf_keys[] = {"input_paths_map", "input_template", NULL};
    const char *name;
    char label[200];
    if (b->type == TW_JSON_STRING) {
        if (tw__cl_vstring(ld, b, ctx, 1, &name) > 0)
            tw__cl_add_binding(ld, rule, name, NULL, ctx, b->line);
        return;
    }
    if (tw__cl_keys(ld, b, ctx, known) < 0)
        return;
    int r = tw__cl_string(ld, b, ctx, "target", 1, &name);
    if (r == 0)
        tw__cl_err(ld, b->line, TW_ECONFIG, "%starget: missing (the name of a target)",
                   tw__cl_label(label, sizeof label, ctx));
    const tw_json *in = tw_json_get(b, "input"), *ip = tw_json_get(b, "input_path"),
                  *it = tw_json_get(b, "input_transformer");
    if (!!in + !!ip + !!it > 1) {
        tw__cl_err(ld, b->line, TW_ETRANSFORM, "%sgive only one of input, input_path, input_transformer",
                   tw__cl_label(label, sizeof label, ctx));
        return;
    }
    char sub[160];
    if (it && tw__cl_keys(ld, it, tw__cl_path(sub, sizeof sub, ctx, "input_transformer"), xf_keys) < 0)
        return;
    /* tw__transform_compile reads these three members (in any spelling) and ignores `target`. */
    if (r > 0)
        tw__cl_add_binding(ld, rule, name, in || ip || it ? b : NULL, ctx, b->line);
}

/* A list of strings (references, tags) into the arena; -1 when invalid (reported). */
static int strings(tw_cfg_ld *ld, const tw_json *v, const char *ctx, const char *key, char ***out, uint32_t *n)
{
    char name[200];
    const tw_json *l = tw_json_get(v, key);
    tw__cl_path(name, sizeof name, ctx, key);
    if (!l || l->type == TW_JSON_NULL)
        return 0;
    if (l->type != TW_JSON_ARRAY || l->n > TW_CFG_LIST_MAX) {
        tw__cl_err(ld, l->line, TW_ECONFIG, "%s: must be a list of at most %d strings", name, TW_CFG_LIST_MAX);
        return -1;
    }
    *out = tw__arena_calloc(&ld->cfg->arena, (l->n ? l->n : 1) * sizeof **out);
    if (!*out) {
        ld->oom = 1;
        return -1;
    }
    for (size_t i = 0; i < l->n; i++) {
        const char *s;
        char item[240];
        snprintf(item, sizeof item, "%s[%zu]", name, i);
        if (tw__cl_vstring(ld, l->u.items[i], item, 1, &s) > 0)
            (*out)[(*n)++] = tw__cl_strdup(ld, s);
    }
    return 1;
}

/* examples: {match: [event...], no_match: [event...]}: kept (as JSON text) only for `rules test`. */
void tw__cl_examples(tw_cfg_ld *ld, const tw_json *v, const char *ctx, tw_rule_cfg *r)
{
    static const char *const known[] = {"match", "no_match", NULL};
    char name[200];
    tw__cl_path(name, sizeof name, ctx, "examples");
    if (!v || v->type == TW_JSON_NULL || tw__cl_keys(ld, v, name, known) < 0)
        return;
    const tw_json *lists[2] = {tw_json_get(v, "match"), tw_json_get(v, "no_match")};
    size_t total = 0;
    for (int w = 0; w < 2; w++) {
        const tw_json *l = lists[w];
        if (l && l->type != TW_JSON_NULL && (l->type != TW_JSON_ARRAY || l->n > TW_CFG_LIST_MAX)) {
            tw__cl_err(ld, l->line, TW_ECONFIG, "%s.%s: must be a list of at most %d events", name,
                       w ? "no_match" : "match", TW_CFG_LIST_MAX);
            lists[w] = NULL;
        } else if (l && l->type == TW_JSON_ARRAY) {
            total += l->n;
        }
    }
    if (!r || !ld->test || !total)
        return;
    r->examples = tw__arena_calloc(&ld->cfg->arena, total * sizeof *r->examples);
    if (!r->examples) {
        ld->oom = 1;
        return;
    }
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; lists[w] && lists[w]->type == TW_JSON_ARRAY && i < lists[w]->n; i++) {
            const tw_json *ev = lists[w]->u.items[i];
            if (ev->type != TW_JSON_OBJECT) {
                tw__cl_err(ld, ev->line, TW_ECONFIG, "%s.%s[%zu]: must be an event (a mapping)", name,
                           w ? "no_match" : "match", i);
                continue;
            }
            size_t len;
            char *text = tw_json_dump(ev, &len);
            char *kept = text ? tw__cl_strndup(ld, text, len) : NULL;
            free(text);
            if (!kept) {
                ld->oom = 1;
                return;
            }
            r->examples[r->nexamples++] = (tw_rule_example){kept, len, ev->line, !w};
        }
}

/* 1 when name is in the pack entry's `disable` list. */
static int disabled_by_entry(const cl_pack *pk, const char *name)
{
    for (size_t i = 0; pk && pk->disable && i < tw_json_size(pk->disable); i++) {
        const char *d = tw_json_string(tw_json_at(pk->disable, i), NULL);
        if (d && strcmp(d, name) == 0)
            return 1;
    }
    return 0;
}

void tw__cl_rule(tw_cfg_ld *ld, const tw_json *v, size_t index, const cl_pack *pk)
{
    static const char *const known[] = {"name", "description", "severity", "enabled", "pattern", "targets",
                                        "storm", "facts", "enrich", "references", "tags", "examples", NULL};
    static const char *const pack_known[] = {"name", "description", "severity", "enabled", "pattern", "storm",
                                             "facts", "enrich", "references", "tags", "examples", NULL};
    char ctx[128], sub[160];
    snprintf(ctx, sizeof ctx, "rules[%zu]", index);
    if (tw__cl_keys(ld, v, ctx, pk ? pack_known : known) < 0 && v->type != TW_JSON_OBJECT)
        return;
    cl_rule_in in = {.enabled = 1, .line = v->line, .pattern = tw_json_get(v, "pattern")};
    int r = tw__cl_string(ld, v, ctx, "name", 1, &in.name);
    if (r == 0)
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: name: missing", ctx);
    if (r <= 0)
        return;
    snprintf(ctx, sizeof ctx, "rule \"%.64s\": ", in.name);
    if (tw__cl_string(ld, v, ctx, "description", 0, &in.description) > 0 && strlen(in.description) > 512)
        tw__cl_err(ld, tw_json_get(v, "description")->line, TW_ECONFIG, "%sdescription: longer than 512 characters", ctx);
    if (tw__cl_string(ld, v, ctx, "severity", 1, &in.severity) > 0) {
        size_t k = 0;
        while (severities[k] && strcmp(severities[k], in.severity) != 0)
            k++;
        if (!severities[k]) {
            char shown[96];
            tw__cl_err(ld, tw_json_get(v, "severity")->line, TW_ECONFIG,
                       "%sseverity: must be critical, high, medium, low or info, not %s", ctx,
                       tw__cl_shown(ld, tw_json_get(v, "severity"), shown, sizeof shown));
        }
    }
    tw__cl_bool(ld, v, ctx, "enabled", &in.enabled);
    if (disabled_by_entry(pk, in.name))
        in.enabled = 0;
    storm(ld, tw_json_get(v, "storm"), tw__cl_path(sub, sizeof sub, ctx, "storm"), &in.storm);
    /* A pack's rules take the targets of the entry that loads it (none when tested). */
    const tw_json *ts = pk ? pk->targets : tw_json_get(v, "targets");
    if (!pk && (!ts || ts->type != TW_JSON_ARRAY || ts->n == 0)) {
        tw__cl_err(ld, ts ? ts->line : v->line, TW_ECONFIG, "%stargets: must be a non-empty list of target names "
                   "or {target: NAME, input_transformer: ...}", ctx);
        ts = NULL;
    }
    if (ts && ts->type != TW_JSON_ARRAY)
        ts = NULL;
    int rule = tw__cl_add_rule(ld, &in, ts ? (uint32_t)ts->n : 0);
    tw_rule_cfg *rc = rule >= 0 ? &ld->cfg->rules[rule] : NULL;
    if (rc) {
        rc->pack = pk ? tw__cl_strdup(ld, pk->name) : NULL;
        rc->severity_given = in.severity != NULL;
        strings(ld, v, ctx, "references", &rc->refs, &rc->nrefs);
        strings(ld, v, ctx, "tags", &rc->tags, &rc->ntags);
        tw__cl_enrich(ld, tw_json_get(v, "enrich"), ctx, rc);
        tw__cl_facts(ld, tw_json_get(v, "facts"), ctx, rc);
    }
    tw__cl_examples(ld, tw_json_get(v, "examples"), ctx, rc);
    if (pk && ts) {
        /* The entry's targets are written in trailwatch.yml: messages point there, labelled by the
         * entry, so that one mistake is reported once, not once per rule of the pack. */
        const char *was_file = ld->file;
        uint32_t was_no = ld->file_no;
        ld->file = pk->entry_file;
        ld->file_no = pk->entry_file_no;
        char label[160];
        snprintf(label, sizeof label, "%s: ", pk->entry_ctx);
        ld->ref_label = tw__cl_strdup(ld, label);
        for (size_t i = 0; i < ts->n; i++) {
            snprintf(sub, sizeof sub, "%s.targets[%zu]", pk->entry_ctx, i);
            tw__cl_binding(ld, rule, ts->u.items[i], sub);
        }
        ld->ref_label = NULL;
        ld->file = was_file;
        ld->file_no = was_no;
        return;
    }
    for (size_t i = 0; ts && i < ts->n; i++) {
        snprintf(sub, sizeof sub, "%stargets[%zu]", ctx, i);
        tw__cl_binding(ld, rule, ts->u.items[i], sub);
    }
}

void tw__cl_rules(tw_cfg_ld *ld, const tw_json *v)
{
    if (!v || v->type == TW_JSON_NULL)
        return;
    if (v->type != TW_JSON_ARRAY) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "rules: must be a list of {name, pattern, targets, ...}");
        return;
    }
    for (size_t i = 0; i < v->n; i++)
        tw__cl_rule(ld, v->u.items[i], i, NULL);
}

/* ---- the end ---- */

void tw__cl_finish_rules(tw_cfg_ld *ld)
{
    tw_config *cfg = ld->cfg;
    const cl_ref *refs = (const cl_ref *)(const void *)ld->refs.data;
    const char **names = calloc(cfg->ntargets + 1, sizeof *names);
    if (!names) {
        ld->oom = 1;
        return;
    }
    for (uint32_t i = 0; i < cfg->ntargets; i++)
        names[i] = cfg->targets[i].name;
    for (size_t i = 0; i < ld->refs.len / sizeof *refs; i++) {
        const cl_ref *f = &refs[i];
        const tw_target_cfg *t = tw__config_target(cfg, f->name);
        if (t) {
            cfg->rules[f->rule].bindings[f->binding].target = (uint32_t)(t - cfg->targets);
            continue;
        }
        ld->file = f->file;
        ld->file_no = f->file_no;
        char label[160];
        if (f->label)
            snprintf(label, sizeof label, "%s", f->label);
        else
            snprintf(label, sizeof label, "rule \"%s\": ", cfg->rules[f->rule].name);
        const cl_bad_target *bad = (const cl_bad_target *)(const void *)ld->bad_targets.data;
        size_t nbad = ld->bad_targets.len / sizeof *bad, k = 0;
        while (k < nbad && strcmp(bad[k].name, f->name) != 0)
            k++;
        if (k < nbad) {   /* defined, but its definition has errors: those say what to fix */
            tw__cl_err(ld, f->line, TW_ECONFIG, "%starget \"%.80s\" cannot be used: its definition at %s has errors",
                       label, f->name, bad[k].where);
            continue;
        }
        const char *near = tw__cl_closest(f->name, names, cfg->ntargets);
        tw__cl_err(ld, f->line, TW_ENOTFOUND, "%sunknown target \"%.80s\"%s%s%s", label, f->name,
                   near ? " (did you mean \"" : "", near ? near : "", near ? "\"?)" : "");
    }
    free(names);
    if (tw__cl_nerrors(ld) || ld->oom)
        return;
    tw_pattern **pats = (tw_pattern **)(void *)ld->patterns.data;
    tw_ruleset_builder *b = NULL;
    tw_error e;
    if (tw_ruleset_builder_new(&cfg->lim, &b) || !(cfg->ruleset_rule = calloc(cfg->nrules + 1, sizeof(uint32_t)))) {
        tw_ruleset_builder_free(b);
        ld->oom = 1;
        return;
    }
    tw_status rc = TW_OK;
    size_t n = 0;
    for (uint32_t i = 0; i < cfg->nrules && !rc; i++) {
        if ((!cfg->rules[i].enabled && !ld->test) || !pats[i])
            continue;
        rc = tw_ruleset_builder_add(b, cfg->rules[i].name, pats[i], NULL, &e);
        pats[i] = NULL;   /* consumed */
        cfg->ruleset_rule[n++] = i;
    }
    if (!rc && cfg->sigma.rules)
        tw__cl_sigma_build(ld, b);
    if (!rc && !ld->oom && !tw__cl_nerrors(ld))
        rc = tw_ruleset_build(b, &cfg->ruleset, &e);
    tw_ruleset_builder_free(b);
    if (rc == TW_ENOMEM)
        ld->oom = 1;
    else if (rc) {
        ld->file = cfg->path;
        ld->file_no = 0;
        tw__cl_err(ld, 0, rc, "%s", e.msg);
    }
}

void tw__cl_free_patterns(tw_cfg_ld *ld)
{
    tw_pattern **pats = (tw_pattern **)(void *)ld->patterns.data;
    for (size_t i = 0; i < ld->patterns.len / sizeof *pats; i++)
        tw_pattern_free(pats[i]);
    tw__buf_free(&ld->patterns);
}
