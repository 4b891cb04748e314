/* config/config_targets.c: the `targets:` section: generic keys (kind, rate, retry, timeout) read
 * here, the rest handed to the kind's configure(). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "config/load_int.h"
#include "json/json_int.h"

#define TW_CFG_KINDS_MAX 32            /* room for the registry's kinds in a did-you-mean list */

void tw__cl_target_defaults(const char *kind, tw_target_cfg *t)
{
    /* EventBridge's target retry policy; backoff from 1 s doubling to 5 min. */
    t->retry = (tw_retry_cfg){185, 24LL * 3600000, 1000, 300000};
    const tw_target_ops *ops = tw__target_kind(kind);   /* an unknown kind is reported elsewhere */
    t->rate = ops ? (tw_rate_cfg){ops->policy.rate_per_second, ops->policy.rate_burst} : (tw_rate_cfg){0, 0};
    t->timeout_ms = ops && ops->policy.timeout_ms ? ops->policy.timeout_ms : 10000;
    t->max_pending = TW_DEFAULT_MAX_PENDING;
    t->when_full = 0;
}

/* The line of the setting a kind's message names ("url: must be ...", "headers.X: ...",
 * "unknown setting \"bogus\" ..."). */
static unsigned setting_line(const tw_json *settings, const char *msg, unsigned dflt)
{
    static const char unknown[] = "unknown setting \"";
    if (strncmp(msg, unknown, sizeof unknown - 1) == 0)
        msg += sizeof unknown - 1;
    size_t n = strcspn(msg, ":.[ \"");
    for (size_t i = 0; i < tw_json_size(settings); i++) {
        size_t kl;
        const char *k = tw_json_key(settings, i, &kl);
        if (kl == n && strncmp(k, msg, n) == 0)
            return tw_json_line(tw_json_at(settings, i));
    }
    return dflt;
}

int tw__cl_add_target(tw_cfg_ld *ld, const char *name, const char *kind, const tw_json *settings,
                      const tw_target_cfg *generic, unsigned line)
{
    tw_config *cfg = ld->cfg;
    if (!tw__cl_valid_name(name)) {
        tw__cl_err(ld, line, TW_ECONFIG, "target \"%.80s\": a name is 1 to %d of A-Z a-z 0-9 . _ -", name,
                   TW_CFG_NAME_MAX);
        return -1;
    }
    const tw_target_cfg *dup = tw__config_target(cfg, name);
    if (dup) {
        tw__cl_err(ld, line, TW_EEXIST, "target \"%s\": defined twice (first at %s)", name, dup->where);
        return -1;
    }
    const tw_target_ops *ops = tw__target_kind(kind);
    if (!ops) {
        const char *names[TW_CFG_KINDS_MAX + 1];
        size_t n = 0;
        for (const tw_target_ops *k; n < TW_CFG_KINDS_MAX && (k = tw__target_kind_at(n)); n++)
            names[n] = k->kind;
        names[n] = NULL;
        const char *near = tw__cl_closest(kind, names, n);
        char list[256];
        if (near)
            tw__cl_err(ld, line, TW_ECONFIG, "target \"%s\": unknown kind \"%.40s\" (did you mean \"%s\"?)", name,
                       kind, near);
        else
            tw__cl_err(ld, line, TW_ECONFIG, "target \"%s\": unknown kind \"%.40s\" (kinds: %s)", name, kind,
                       tw__target_kind_list(list, sizeof list));
        return -1;
    }
    void *impl = NULL;
    if (!tw__cl_tainted(ld, settings)) {   /* else its ${VAR} error was reported already */
        tw_error e;
        tw_error_clear(&e);
        if (ops->configure(settings, &impl, &e)) {
            char prefix[128];
            snprintf(prefix, sizeof prefix, "target \"%s\": ", name);
            tw__cl_err_from(ld, setting_line(settings, e.msg, line), prefix, &e);
            impl = NULL;
        }
    }
    if (cfg->ntargets == ld->targets_cap) {
        uint32_t cap = ld->targets_cap ? 2 * ld->targets_cap : 8;
        tw_target_cfg *t = realloc(cfg->targets, cap * sizeof *t);
        if (!t) {
            if (impl)
                ops->release(impl);
            ld->oom = 1;
            return -1;
        }
        cfg->targets = t;
        ld->targets_cap = cap;
    }
    tw_target_cfg *t = &cfg->targets[cfg->ntargets];
    *t = *generic;
    t->name = tw__cl_strdup(ld, name);
    t->ops = ops;
    t->impl = impl;
    t->where = tw__cl_printf(ld, "%s:%u", ld->file, line);
    return (int)cfg->ntargets++;
}

static void rate(tw_cfg_ld *ld, const tw_json *v, const char *ctx, tw_target_cfg *t)
{
    static const char *const known[] = {"per_second", "burst", NULL};
    if (!v || v->type == TW_JSON_NULL || tw__cl_keys(ld, v, ctx, known) < 0)
        return;
    double ps, burst;
    int r = tw__cl_number(ld, v, ctx, "per_second", 0, 1e6, &ps);
    if (r > 0) {
        t->rate.per_second = ps;
        if (t->rate.burst < 1)
            t->rate.burst = ps < 1 ? 1 : ceil(ps);
    }
    if (tw__cl_number(ld, v, ctx, "burst", 1, 1e6, &burst) > 0)
        t->rate.burst = burst;
    if (t->rate.per_second == 0)
        t->rate.burst = 0;
}

static void retry(tw_cfg_ld *ld, const tw_json *v, const char *ctx, tw_target_cfg *t)
{
    static const char *const known[] = {"max_attempts", "max_age", "base", "cap", NULL};
    if (!v || v->type == TW_JSON_NULL || tw__cl_keys(ld, v, ctx, known) < 0)
        return;
    uint64_t n;
    if (tw__cl_uint(ld, v, ctx, "max_attempts", 0, 100000, &n) > 0)
        t->retry.max_attempts = (uint32_t)n;
    tw__cl_duration(ld, v, ctx, "max_age", 0, 30LL * 86400000, &t->retry.max_age_ms);
    tw__cl_duration(ld, v, ctx, "base", 1, 3600000, &t->retry.base_ms);
    tw__cl_duration(ld, v, ctx, "cap", 1, 86400000, &t->retry.cap_ms);
    if (t->retry.cap_ms < t->retry.base_ms)
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: cap must not be shorter than base", ctx);
}

/* The kind's own keys, with relative file paths resolved against the configuration's folder. */
static const tw_json *kind_settings(tw_cfg_ld *ld, const char *kind, const tw_json *obj)
{
    static const char *const generic[] = {"kind", "rate", "retry", "timeout", "max_pending", "when_full", NULL};
    const tw_target_ops *ops = tw__target_kind(kind);
    tw_json_doc *doc = tw__cl_new_doc(ld);
    tw_json *s = doc ? tw__json_new(doc, TW_JSON_OBJECT) : NULL;
    if (!s) {
        ld->oom = 1;
        return NULL;
    }
    s->line = obj->line;
    for (size_t i = 0; i < obj->n; i++) {
        const tw_json_member *m = &obj->u.members[i];
        int skip = 0;
        for (size_t g = 0; generic[g]; g++)
            skip |= strcmp(m->key, generic[g]) == 0;
        if (skip)
            continue;
        tw_json *val = m->val;
        int is_path = 0;
        for (size_t p = 0; ops && ops->policy.path_settings && ops->policy.path_settings[p]; p++)
            is_path |= strcmp(m->key, ops->policy.path_settings[p]) == 0;
        if (is_path && val->type == TW_JSON_STRING && val->n && val->u.str[0] != '/' && strlen(val->u.str) == val->n) {
            const char *p = tw__cl_join(ld, ld->dir_abs, val->u.str);
            val = tw__json_new_string(doc, p, strlen(p));
            if (!val) {
                ld->oom = 1;
                return NULL;
            }
            val->line = m->val->line;
            val->col = m->val->col;
            if (tw__cl_substituted(ld, m->val))
                tw__cl_mark(ld, &ld->subst, val);
        }
        if (tw__json_put(doc, s, m->key, m->klen, val)) {
            ld->oom = 1;
            return NULL;
        }
    }
    return s;
}

/* A target whose definition failed: rules naming it say so (its own error says why). */
static void bad_target(tw_cfg_ld *ld, const char *name, unsigned line)
{
    cl_bad_target b = {tw__cl_strdup(ld, name), tw__cl_printf(ld, "%s:%u", ld->file, line)};
    if (tw__buf_append(&ld->bad_targets, &b, sizeof b))
        ld->oom = 1;
}

static void one_target(tw_cfg_ld *ld, const char *name, const tw_json *obj)
{
    unsigned line = obj->line;
    char ctx[128], sub[160];
    snprintf(ctx, sizeof ctx, "target \"%.80s\": ", name);
    if (!tw__cl_valid_name(name)) {
        tw__cl_err(ld, line, TW_ECONFIG, "target \"%.80s\": a name is 1 to %d of A-Z a-z 0-9 . _ -", name,
                   TW_CFG_NAME_MAX);
        return;
    }
    if (!tw__cl_is_object(ld, obj, ctx)) {
        bad_target(ld, name, line);
        return;
    }
    const char *kind = NULL;
    int r = tw__cl_string(ld, obj, ctx, "kind", 1, &kind);
    char list[256];
    if (r == 0)
        tw__cl_err(ld, obj->line, TW_ECONFIG, "%skind: missing (%s)", ctx, tw__target_kind_list(list, sizeof list));
    if (r <= 0) {
        bad_target(ld, name, line);
        return;
    }
    if (!tw__target_kind(kind))   /* reported by tw__cl_add_target, at the kind's own line */
        line = tw_json_get(obj, "kind")->line;
    tw_target_cfg t = {0};
    tw__cl_target_defaults(kind, &t);
    rate(ld, tw_json_get(obj, "rate"), tw__cl_path(sub, sizeof sub, ctx, "rate"), &t);
    retry(ld, tw_json_get(obj, "retry"), tw__cl_path(sub, sizeof sub, ctx, "retry"), &t);
    tw__cl_duration(ld, obj, ctx, "timeout", 1, 3600000, &t.timeout_ms);
    uint64_t cap;
    if (tw__cl_uint(ld, obj, ctx, "max_pending", 0, TW_MAX_MAX_PENDING, &cap) > 0)
        t.max_pending = (int64_t)cap;
    const char *full = NULL;
    if (tw__cl_string(ld, obj, ctx, "when_full", 1, &full) > 0) {
        if (strcmp(full, "reject") == 0)
            t.when_full = 0;
        else if (strcmp(full, "drop_oldest") == 0)
            t.when_full = 1;
        else
            tw__cl_err(ld, tw_json_get(obj, "when_full")->line, TW_ECONFIG,
                       "%swhen_full: \"%.40s\" is not one of reject, drop_oldest", ctx, full);
    }
    const tw_json *settings = kind_settings(ld, kind, obj);
    if ((!settings || tw__cl_add_target(ld, name, kind, settings, &t, line) < 0) && !tw__config_target(ld->cfg, name))
        bad_target(ld, name, line);
}

void tw__cl_targets(tw_cfg_ld *ld, const tw_json *v)
{
    if (!v || v->type == TW_JSON_NULL || !tw__cl_is_object(ld, v, "targets"))
        return;
    for (size_t i = 0; i < v->n; i++)   /* a name given twice is reported by tw__cl_add_target */
        one_target(ld, v->u.members[i].key, v->u.members[i].val);
}
