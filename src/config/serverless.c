/* config/serverless.c: a Serverless Framework serverless.yml as trailwatch configuration: every
 * function becomes an exec target, every cloudwatchEvent / eventBridge event a rule delivering to it.
 * Keys trailwatch has no use for (plugins, custom, resources, iamRoleStatements, http events, ...)
 * are ignored; the two rule events are checked key by key, as Serverless itself does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "config/load_int.h"
#include "json/json_int.h"

typedef struct sls {
    tw_cfg_ld *ld;
    tw_sls_vars sv;
    const char *service, *stage, *region, *runtime, *code_dir;
    const tw_json *env, *env_override;   /* provider.environment (resolved), the override */
    int64_t timeout_ms;
    const tw_json *memory;               /* provider.memorySize */
} sls;

typedef struct fn_retry {                /* an eventBridge retryPolicy, the target's retry */
    int set;
    unsigned line;
    tw_retry_cfg r;
} fn_retry;

int tw__sls_detect(const tw_json *root)
{
    return tw_json_get(root, "service") && tw_json_get(root, "functions");
}

static const tw_json *get(sls *s, const tw_json *obj, const char *key)
{
    return tw__sls_resolve(&s->sv, tw_json_get(obj, key));
}

/* Adds src's variables to env (a name given again replaces the earlier value). what: src's name in
 * messages; NULL for trailwatch.yml's override, checked where it is (tw__sls_load_file). */
static void merge_env(sls *s, tw_json *env, const tw_json *src, const char *what)
{
    char name[160];
    tw_cfg_ld *ld = s->ld;
    if (!src || src->type == TW_JSON_NULL || (what ? !tw__cl_is_object(ld, src, what) : src->type != TW_JSON_OBJECT))
        return;
    for (size_t i = 0; i < src->n; i++) {
        const tw_json_member *m = &src->u.members[i];
        const tw_json *v = m->val;
        tw_json *val = v->type == TW_JSON_STRING ? (tw_json *)v : NULL;
        snprintf(name, sizeof name, "%s.%.80s", what ? what : "environment", m->key);
        if (v->type == TW_JSON_NULL)
            continue;
        if (v->type == TW_JSON_NUMBER)   /* Lambda environment values are text */
            val = tw__json_new_string(s->sv.doc, v->u.num.text, v->n);
        else if (v->type == TW_JSON_TRUE || v->type == TW_JSON_FALSE)
            val = tw__json_new_string(s->sv.doc, v->type == TW_JSON_TRUE ? "true" : "false",
                                      v->type == TW_JSON_TRUE ? 4 : 5);
        else if (v->type != TW_JSON_STRING) {
            if (what)
                tw__cl_err(ld, v->line, TW_ECONFIG, "%s: must be a string (CloudFormation functions such as Ref "
                       "cannot be resolved without AWS)", name);
            continue;
        }
        if (!val || m->klen == 0 || strchr(m->key, '=')) {
            if (!val)
                ld->oom = 1;
            else if (what)
                tw__cl_err(ld, v->line, TW_ECONFIG, "%s: not a valid variable name", name);
            continue;
        }
        size_t k = 0;
        while (k < env->n && strcmp(env->u.members[k].key, m->key) != 0)
            k++;
        if (k < env->n)
            env->u.members[k].val = val;
        else if (tw__json_put(s->sv.doc, env, m->key, m->klen, val))
            ld->oom = 1;
    }
}

static tw_status put_str(sls *s, tw_json *obj, const char *key, const char *val)
{
    tw_json *v = tw__json_new_string(s->sv.doc, val, strlen(val));
    return v ? tw__json_put(s->sv.doc, obj, key, strlen(key), v) : TW_ENOMEM;
}

/* A cloudwatchEvent or eventBridge event: one rule. */
static void rule_event(sls *s, const char *fn, const char *target, const char *type, const tw_json *raw,
                       size_t index, int n, fn_retry *retry)
{
    static const char *const cwe_keys[] = {"event", "input", "inputPath", "inputTransformer", "description",
                                           "name", "enabled", NULL};
    static const char *const eb_keys[] = {"eventBus", "schedule", "pattern", "name", "description", "enabled",
                                          "input", "inputPath", "inputTransformer", "retryPolicy",
                                          "deadLetterQueueArn", NULL};
    static const char *const xf_keys[] = {"inputPathsMap", "inputTemplate", NULL};
    static const char *const rp_keys[] = {"maximumEventAge", "maximumRetryAttempts", NULL};
    tw_cfg_ld *ld = s->ld;
    int eb = strcmp(type, "eventBridge") == 0;
    char ctx[200], sub[240];
    snprintf(ctx, sizeof ctx, "functions.%.64s.events[%zu].%s", fn, index, type);
    const tw_json *ev = tw__sls_resolve(&s->sv, raw);
    if (!ev || tw__cl_keys(ld, ev, ctx, eb ? eb_keys : cwe_keys) < 0)
        return;
    const tw_json *in = tw_json_get(ev, "input"), *ip = tw_json_get(ev, "inputPath"),
                  *it = tw_json_get(ev, "inputTransformer");
    if (!!in + !!ip + !!it > 1) {
        tw__cl_err(ld, ev->line, TW_ETRANSFORM, "%s: only one of input, inputPath and inputTransformer may be given "
                   "(Serverless: CLOUDWATCH_MULTIPLE_INPUT_PROPERTIES)", ctx);
        return;
    }
    if (it && tw__cl_keys(ld, it, tw__cl_path(sub, sizeof sub, ctx, "inputTransformer"), xf_keys) < 0)
        return;
    cl_rule_in r = {.enabled = 1, .line = ev->line, .pattern = tw_json_get(ev, eb ? "pattern" : "event")};
    if (eb && tw_json_get(ev, "schedule")) {
        tw__cl_err(ld, tw_json_get(ev, "schedule")->line, TW_ECONFIG, "%s.schedule: schedule expressions are not "
                   "supported (trailwatch reacts to events; run scheduled jobs with cron or a systemd timer)", ctx);
        return;
    }
    if (!r.pattern) {
        tw__cl_err(ld, ev->line, TW_ECONFIG, "%s: %s: missing (the event pattern)", ctx, eb ? "pattern" : "event");
        return;
    }
    /* a name, an ARN or a CloudFormation Ref/GetAtt: trailwatch has one bus, where all events arrive */
    const tw_json *bus = eb ? tw_json_get(ev, "eventBus") : NULL;
    size_t bl = bus && bus->type == TW_JSON_STRING ? bus->n : 0;
    if (bus && bus->type != TW_JSON_NULL && !(bl == 7 && strcmp(bus->u.str, "default") == 0) &&
        !(bl > 18 && strcmp(bus->u.str + bl - 18, ":event-bus/default") == 0) &&
        tw__buf_printf(&ld->notes, "  %s: eventBus ignored: trailwatch has one event bus\n", ctx))
        ld->oom = 1;
    const tw_json *rp = eb ? tw_json_get(ev, "retryPolicy") : NULL;
    if (rp && tw__cl_keys(ld, rp, tw__cl_path(sub, sizeof sub, ctx, "retryPolicy"), rp_keys) == 0) {
        tw_retry_cfg rc = {185, 24LL * 3600000, 1000, 300000};
        uint64_t u;
        if (tw__cl_uint(ld, rp, sub, "maximumEventAge", 60, 86400, &u) > 0)
            rc.max_age_ms = (int64_t)u * 1000;
        if (tw__cl_uint(ld, rp, sub, "maximumRetryAttempts", 0, 185, &u) > 0)
            rc.max_attempts = (uint32_t)u;
        /* field by field: the struct has padding, which memcmp would compare too */
        if (retry->set && (retry->r.max_attempts != rc.max_attempts || retry->r.max_age_ms != rc.max_age_ms ||
                           retry->r.base_ms != rc.base_ms || retry->r.cap_ms != rc.cap_ms))
            tw__cl_err(ld, rp->line, TW_ECONFIG, "%s: differs from the retryPolicy at line %u; trailwatch keeps one "
                       "retry policy per function", sub, retry->line);
        *retry = (fn_retry){1, rp->line, rc};
    }
    char *name = NULL;
    if (tw__cl_string(ld, ev, ctx, "name", 1, &r.name) == 0)
        r.name = name = tw__cl_printf(ld, "%s-%d", target, n);
    tw__cl_string(ld, ev, ctx, "description", 0, &r.description);
    tw__cl_bool(ld, ev, ctx, "enabled", &r.enabled);
    int rule = tw__cl_add_rule(ld, &r, 1);
    /* tw__transform_compile reads input / inputPath / inputTransformer and ignores the rest. */
    const tw_json *xf = in || ip || it ? ev : NULL;
    snprintf(sub, sizeof sub, "rule \"%.64s\": ", r.name);
    tw__cl_add_binding(ld, rule, target, xf, sub, ev->line);
}

static void function(sls *s, const char *fn, const tw_json *f)
{
    static const char *const rule_types[] = {"cloudwatchEvent", "eventBridge", NULL};
    tw_cfg_ld *ld = s->ld;
    char ctx[120];
    snprintf(ctx, sizeof ctx, "functions.%.64s", fn);
    if (!f || !tw__cl_is_object(ld, f, ctx))
        return;
    const char *handler = NULL, *runtime = s->runtime, *fname = NULL;
    const char *target = tw__cl_printf(ld, "%s-%s-%s", s->service, s->stage, fn);
    char name[160];
    const tw_json *v;
    if (!tw_json_get(f, "handler"))
        tw__cl_err(ld, f->line, TW_ECONFIG, "%s: handler: missing (module.function, e.g. handler.parameter)", ctx);
    else if ((v = get(s, f, "handler")))
        tw__cl_vstring(ld, v, tw__cl_path(name, sizeof name, ctx, "handler"), 1, &handler);
    if ((v = get(s, f, "runtime")))
        tw__cl_vstring(ld, v, tw__cl_path(name, sizeof name, ctx, "runtime"), 1, &runtime);
    else if (!runtime && !tw_json_get(f, "runtime"))
        tw__cl_err(ld, f->line, TW_ECONFIG, "%s: no runtime (set provider.runtime or %s.runtime, e.g. python3.12)",
                   ctx, ctx);
    if ((v = get(s, f, "name")))
        tw__cl_vstring(ld, v, tw__cl_path(name, sizeof name, ctx, "name"), 1, &fname);
    tw_target_cfg t = {0};
    tw__cl_target_defaults("exec", &t);
    t.timeout_ms = s->timeout_ms;
    if ((v = get(s, f, "timeout")))
        tw__cl_vduration(ld, v, tw__cl_path(name, sizeof name, ctx, "timeout"), 1000, 900000, &t.timeout_ms);
    const tw_json *mem = get(s, f, "memorySize");
    const char *mem_name = mem ? tw__cl_strdup(ld, tw__cl_path(name, sizeof name, ctx, "memorySize"))
                               : "provider.memorySize";
    if (!mem)
        mem = s->memory;
    /* events: rules, and a note of what else the function had */
    const tw_json *events = tw_json_get(f, "events");
    fn_retry retry = {0};
    tw_buf ignored = TW_BUF_INIT;
    int nrules = 0;
    if (events && events->type != TW_JSON_NULL && events->type != TW_JSON_ARRAY)
        tw__cl_err(ld, events->line, TW_ECONFIG, "%s.events: must be a list", ctx);
    for (size_t i = 0; events && events->type == TW_JSON_ARRAY && i < events->n; i++) {
        const tw_json *e = events->u.items[i];
        if (e->type != TW_JSON_OBJECT || e->n != 1) {
            tw__cl_err(ld, e->line, TW_ECONFIG, "%s.events[%zu]: must be a mapping with one event type", ctx, i);
            continue;
        }
        const char *type = e->u.members[0].key;
        if (strcmp(type, rule_types[0]) == 0 || strcmp(type, rule_types[1]) == 0)
            rule_event(s, fn, target, type, e->u.members[0].val, i, ++nrules, &retry);
        else if (tw__buf_printf(&ignored, "%s%.40s", ignored.len ? ", " : "", type))
            ld->oom = 1;
    }
    if (retry.set)
        t.retry = retry.r;
    if (tw__buf_printf(&ld->notes, "  serverless %s: function %s -> exec target %s (%d rule%s)%s%s\n", ld->file, fn,
                      target, nrules, nrules == 1 ? "" : "s", ignored.len ? "; ignored events: " : "",
                      ignored.len ? ignored.data : ""))
        ld->oom = 1;
    tw__buf_free(&ignored);
    if (!handler || !runtime)
        return;
    /* Lambda runs exactly the runtime written; here it is the python3 PATH has: say so when that is
     * another version, instead of running it there silently. */
    const char *have = strncmp(runtime, "python3.", 8) == 0 ? tw__exec_python_version() : NULL;
    if (have && strcmp(runtime + 6, have) != 0 &&
        tw__buf_printf(&ld->warnings, "  %s: function %s: runtime %s, but its handler runs with %s%s%s\n", ld->file,
                      fn, runtime, *have ? "python " : "python3, which is not installed", have,
                      *have ? " (the python3 on PATH)" : ""))
        ld->oom = 1;
    /* the exec kind's settings */
    tw_json *set = tw__json_new(s->sv.doc, TW_JSON_OBJECT), *env = tw__json_new(s->sv.doc, TW_JSON_OBJECT);
    if (!set || !env) {
        ld->oom = 1;
        return;
    }
    set->line = f->line;
    merge_env(s, env, s->env, "provider.environment");
    merge_env(s, env, get(s, f, "environment"), tw__cl_path(name, sizeof name, ctx, "environment"));
    merge_env(s, env, s->env_override, NULL);
    tw_status st = put_str(s, set, "handler", handler);
    st = st ? st : put_str(s, set, "runtime", runtime);
    st = st ? st : put_str(s, set, "code_dir", s->code_dir);
    st = st ? st : put_str(s, set, "function_name", fname ? fname : target);
    uint64_t mb = 1024;   /* Serverless's default memorySize */
    if (mem)
        tw__cl_vuint(ld, mem, mem_name, 128, 10240, &mb);
    char mbt[24];
    snprintf(mbt, sizeof mbt, "%llu", (unsigned long long)mb);
    tw_json *mbv = tw__json_new_number(s->sv.doc, mbt, strlen(mbt));
    st = st ? st : mbv ? tw__json_put(s->sv.doc, set, "memory_size", 11, mbv) : TW_ENOMEM;
    st = st ? st : put_str(s, set, "region", s->region);
    st = st ? st : tw__json_put(s->sv.doc, set, "env", 3, env);
    if (st) {
        ld->oom = 1;
        return;
    }
    tw__cl_add_target(ld, target, "exec", set, &t, f->line);
}

void tw__sls_load(tw_cfg_ld *ld, const char *code_dir, const tw_json *root, const tw_json *env_override)
{
    sls s = {.ld = ld, .sv = {ld, root, tw__cl_new_doc(ld), NULL}, .code_dir = code_dir, .env_override = env_override,
             .stage = "dev", .region = "us-east-1", .timeout_ms = 6000};
    const tw_json *v, *provider = tw_json_get(root, "provider");
    if (!s.sv.doc)
        return;
    /* service: NAME, or Framework v1's {name: NAME} */
    v = get(&s, root, "service");
    if (tw_json_typeof(v) == TW_JSON_OBJECT)
        v = get(&s, v, "name");
    if (v && tw__cl_vstring(ld, v, "service", 1, &s.service) > 0 && !tw__cl_valid_name(s.service))
        tw__cl_err(ld, v->line, TW_ECONFIG, "service: a name is 1 to %d of A-Z a-z 0-9 . _ -", TW_CFG_NAME_MAX);
    if (!s.service)
        return;
    if (provider && !tw__cl_is_object(ld, provider, "provider"))
        provider = NULL;
    const char *pn;
    if ((v = get(&s, provider, "name")) && tw__cl_vstring(ld, v, "provider.name", 1, &pn) > 0 && strcmp(pn, "aws"))
        tw__cl_err(ld, v->line, TW_ECONFIG, "provider.name: trailwatch runs the functions of aws services only");
    if ((v = get(&s, provider, "stage")))
        tw__cl_vstring(ld, v, "provider.stage", 1, &s.stage);
    s.sv.stage = s.stage;
    if ((v = get(&s, provider, "region")))
        tw__cl_vstring(ld, v, "provider.region", 1, &s.region);
    if ((v = get(&s, provider, "runtime")))
        tw__cl_vstring(ld, v, "provider.runtime", 1, &s.runtime);
    if ((v = get(&s, provider, "timeout")))
        tw__cl_vduration(ld, v, "provider.timeout", 1000, 900000, &s.timeout_ms);
    s.memory = get(&s, provider, "memorySize");
    s.env = get(&s, provider, "environment");
    const tw_json *fns = tw_json_get(root, "functions");
    if (!tw__cl_is_object(ld, fns, "functions"))
        return;
    for (size_t i = 0; i < fns->n; i++)
        function(&s, fns->u.members[i].key, fns->u.members[i].val);
}

void tw__sls_load_file(tw_cfg_ld *ld, const char *path, unsigned line, const tw_json *env_override)
{
    const char *shown = strcmp(ld->dir_shown, ".") == 0 || path[0] == '/' ? tw__cl_strdup(ld, path)
                                                                        : tw__cl_join(ld, ld->dir_shown, path);
    const char *abs = tw__cl_join(ld, ld->dir_abs, path);
    const char *slash = strrchr(abs, '/');
    const char *code_dir = tw__cl_strndup(ld, abs, slash == abs ? 1 : (size_t)(slash - abs));
    const char *was_file = ld->file;
    uint32_t was_no = ld->file_no;
    for (size_t i = 0; env_override && i < tw_json_size(env_override); i++) {
        const tw_json *v = tw_json_at(env_override, i);
        const char *k = tw_json_key(env_override, i, NULL);
        if (v->type == TW_JSON_OBJECT || v->type == TW_JSON_ARRAY)
            tw__cl_err(ld, v->line, TW_ECONFIG, "serverless: environment.%.80s: must be a string", k);
        else if (!*k || strchr(k, '='))
            tw__cl_err(ld, v->line, TW_ECONFIG, "serverless: environment.%.80s: not a valid variable name", k);
    }
    ld->file = shown;
    ld->file_no = ++ld->nfiles;
    tw_error e;
    const tw_json *root = tw__cl_read_yaml(ld, abs, &e);
    ld->file = was_file;
    ld->file_no = was_no;
    if (!root) {
        if (e.code)
            tw__cl_err(ld, line, e.code, "serverless: cannot read %s (%s)", shown,
                       strstr(e.msg, ": ") ? strstr(e.msg, ": ") + 2 : e.msg);
        return;
    }
    if (!tw__sls_detect(root)) {
        tw__cl_err(ld, line, TW_ECONFIG, "serverless: %s has no service and functions: not a serverless.yml", shown);
        return;
    }
    ld->file = shown;
    ld->file_no = ld->nfiles;
    tw__sls_load(ld, code_dir, root, env_override);
    ld->file = was_file;
    ld->file_no = was_no;
}
