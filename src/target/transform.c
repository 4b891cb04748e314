/* target/transform.c: compiling a binding's Input / InputPath / InputTransformer (transform_apply.c
 * applies it).
 *
 * A template is split once, at load time, into literal runs and placeholders, and each placeholder
 * is given its position: inside a JSON string literal, standing alone as a JSON value, or in plain
 * text. Whether the template is JSON is decided by substituting a neutral value for every
 * placeholder (nothing inside strings, `null` elsewhere) and parsing the result: whatever a
 * placeholder later resolves to is inserted so that the text stays valid JSON (escaped inside
 * strings, serialised elsewhere), so a template that parses once always produces valid JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "json/json_int.h"
#include "target/transform_int.h"

const char *const tw__xf_predefined[] = {
    [XF_P_RULE_ARN] = "aws.events.rule-arn",
    [XF_P_RULE_NAME] = "aws.events.rule-name",
    [XF_P_INGESTION] = "aws.events.event.ingestion-time",
    [XF_P_EVENT] = "aws.events.event",
    [XF_P_EVENT_JSON] = "aws.events.event.json",
};

/* ---- compiling ---- */

typedef struct spelled {
    const char *key;        /* as written */
    const tw_json *val;
    int spelling;           /* 0 PascalCase, 1 camelCase, 2 snake_case */
} spelled;

/* Finds the member spelled any of names[0..2] (PascalCase, camelCase, snake_case). A null value
 * counts as absent (an empty YAML key). Returns how many are present; out is left as given (with
 * spelling 0) when none is. */
static int find3(const tw_json *obj, const char *const names[3], spelled *out)
{
    int found = 0;
    out->spelling = 0;
    for (size_t i = 0; i < tw_json_size(obj); i++) {
        size_t klen;
        const char *k = tw_json_key(obj, i, &klen);
        const tw_json *v = tw_json_at(obj, i);
        if (tw_json_typeof(v) == TW_JSON_NULL)
            continue;
        for (int s = 0; s < 3; s++) {
            if (strlen(names[s]) == klen && memcmp(names[s], k, klen) == 0) {
                out->key = k;
                out->val = v;
                out->spelling = s;
                found++;
                break;
            }
        }
    }
    return found;
}

static int name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static tw_status compile_input(tw_transform *xf, const spelled *in, tw_error *err)
{
    if (tw_json_typeof(in->val) == TW_JSON_STRING) {
        size_t len;
        const char *s = tw_json_string(in->val, &len);
        if (len > XF_TEXT_MAX)
            return tw__err(err, TW_ETRANSFORM, "%s: longer than %d bytes", in->key, XF_TEXT_MAX);
        tw_json_doc *d = NULL;
        tw_error perr;
        if (tw_json_parse(s, len, NULL, &d, &perr) != TW_OK)
            return tw__err(err, TW_ETRANSFORM, "%s: must be a JSON text: %s", in->key, perr.msg);
        tw_json_doc_free(d);
        xf->text = tw__arena_strndup(&xf->arena, s, len);
        xf->len = len;
    } else {
        /* serverless.yml style: `input: {key: value}` is sent as its JSON text. */
        size_t len;
        char *s = tw_json_dump(in->val, &len);
        if (!s)
            return tw__err(err, TW_ENOMEM, "%s: out of memory", in->key);
        if (len > XF_TEXT_MAX) {
            free(s);
            return tw__err(err, TW_ETRANSFORM, "%s: longer than %d bytes as JSON", in->key, XF_TEXT_MAX);
        }
        xf->text = tw__arena_strndup(&xf->arena, s, len);
        xf->len = len;
        free(s);
    }
    xf->mode = XF_MODE_INPUT;
    return xf->text ? TW_OK : tw__err(err, TW_ENOMEM, "%s: out of memory", in->key);
}

static tw_status compile_path(tw_transform *xf, const spelled *in, tw_error *err)
{
    size_t len;
    const char *s = tw_json_string(in->val, &len);
    if (!s || len == 0)
        return tw__err(err, TW_ETRANSFORM, "%s: must be a non-empty JSONPath string", in->key);
    if (len > XF_PATH_MAX)
        return tw__err(err, TW_ETRANSFORM, "%s: longer than %d characters", in->key, XF_PATH_MAX);
    if (!tw__jsonpath_valid(s))
        return tw__err(err, TW_ETRANSFORM,
                       "%s: \"%s\" is not a supported JSONPath ($, $.a.b, $.a[0], $['a.b']; no wildcards "
                       "or filters)", in->key, s);
    xf->mode = XF_MODE_PATH;
    xf->text = tw__arena_strndup(&xf->arena, s, len);
    xf->len = len;
    return xf->text ? TW_OK : tw__err(err, TW_ENOMEM, "%s: out of memory", in->key);
}

static tw_status compile_map(tw_transform *xf, const char *where, const tw_json *map, tw_error *err)
{
    if (tw_json_typeof(map) != TW_JSON_OBJECT)
        return tw__err(err, TW_ETRANSFORM, "%s: must be a mapping of names to JSONPaths", where);
    size_t n = tw_json_size(map);
    if (n > XF_VARS_MAX)
        return tw__err(err, TW_ETRANSFORM, "%s: %zu entries, at most %d allowed", where, n, XF_VARS_MAX);
    xf->vars = tw__arena_calloc(&xf->arena, (n ? n : 1) * sizeof *xf->vars);
    if (!xf->vars)
        return tw__err(err, TW_ENOMEM, "%s: out of memory", where);
    for (size_t i = 0; i < n; i++) {
        size_t klen, plen;
        const char *k = tw_json_key(map, i, &klen);
        const tw_json *v = tw_json_at(map, i);
        if (klen == 0 || klen > XF_NAME_MAX)
            return tw__err(err, TW_ETRANSFORM, "%s: names must be 1..%d characters", where, XF_NAME_MAX);
        for (size_t j = 0; j < klen; j++)
            if (!name_char((unsigned char)k[j]))
                return tw__err(err, TW_ETRANSFORM,
                               "%s: name \"%.64s\" may only hold letters, digits, '_', '.' and '-'", where, k);
        if (klen >= 3 && strncasecmp(k, "AWS", 3) == 0)
            return tw__err(err, TW_ETRANSFORM, "%s: name \"%s\" is reserved (names may not start with AWS)",
                           where, k);
        for (size_t j = 0; j < xf->nvars; j++)
            if (strcmp(xf->vars[j].name, k) == 0)
                return tw__err(err, TW_ETRANSFORM, "%s: name \"%s\" is defined twice", where, k);
        const char *p = tw_json_string(v, &plen);
        if (!p)
            return tw__err(err, TW_ETRANSFORM, "%s.%s: must be a JSONPath string", where, k);
        if (plen > XF_PATH_MAX || !tw__jsonpath_valid(p))
            return tw__err(err, TW_ETRANSFORM,
                           "%s.%s: \"%.300s\" is not a supported JSONPath ($, $.a.b, $.a[0], $['a.b']; no "
                           "wildcards or filters; at most %d characters)", where, k, p, XF_PATH_MAX);
        xf->vars[xf->nvars].name = tw__arena_strndup(&xf->arena, k, klen);
        xf->vars[xf->nvars].path = tw__arena_strndup(&xf->arena, p, plen);
        if (!xf->vars[xf->nvars].name || !xf->vars[xf->nvars].path)
            return tw__err(err, TW_ENOMEM, "%s: out of memory", where);
        xf->nvars++;
    }
    return TW_OK;
}

/* The placeholder's id: index in vars, -predefined id, or -1000 when undefined. */
static int lookup(const tw_transform *xf, const char *name, size_t len)
{
    for (int p = XF_P_RULE_ARN; p <= XF_P_EVENT_JSON; p++)
        if (strlen(tw__xf_predefined[p]) == len && memcmp(tw__xf_predefined[p], name, len) == 0)
            return -p;
    for (size_t i = 0; i < xf->nvars; i++)
        if (strlen(xf->vars[i].name) == len && memcmp(xf->vars[i].name, name, len) == 0)
            return (int)i;
    return -1000;
}

static tw_status compile_template(tw_transform *xf, const char *where, const char *mapname, const tw_json *tpl,
                                  tw_error *err)
{
    size_t len;
    const char *s = tw_json_string(tpl, &len);
    if (!s)
        return tw__err(err, TW_ETRANSFORM, "%s: must be a string", where);
    if (len == 0 || len > XF_TEXT_MAX)
        return tw__err(err, TW_ETRANSFORM, "%s: must be 1..%d bytes", where, XF_TEXT_MAX);
    if (!(s = xf->text = tw__arena_strndup(&xf->arena, s, len)))
        return tw__err(err, TW_ENOMEM, "%s: out of memory", where);
    xf->len = len;
    /* At most one literal and one placeholder per 3 bytes ("<x>"), plus the tail. */
    xf->segs = tw__arena_calloc(&xf->arena, (len / 3 * 2 + 2) * sizeof *xf->segs);
    if (!xf->segs)
        return tw__err(err, TW_ENOMEM, "%s: out of memory", where);

    int in_string = 0;
    size_t lit = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string && c == '\\') {
            i++;                                 /* the escaped character cannot end the string */
            continue;
        }
        if (c == '"') {
            in_string = !in_string;
            continue;
        }
        if (c != '<')
            continue;
        size_t j = i + 1;
        while (j < len && name_char((unsigned char)s[j]))
            j++;
        if (j == i + 1 || j >= len || s[j] != '>')
            continue;                            /* "a < b", "<!here>": text, not a placeholder */
        int id = lookup(xf, s + i + 1, j - i - 1);
        if (id == -1000)
            return tw__err(err, TW_ETRANSFORM, "%s: placeholder <%.*s> is not defined in %s", where,
                           (int)(j - i - 1 > 200 ? 200 : j - i - 1), s + i + 1, mapname);
        if (i > lit)
            xf->segs[xf->nsegs++] = (xf_seg){s + lit, i - lit, 0, 0};
        xf->segs[xf->nsegs++] = (xf_seg){NULL, 0, id, in_string ? XF_AT_STRING : XF_AT_VALUE};
        lit = j + 1;
        i = j;
    }
    if (len > lit)
        xf->segs[xf->nsegs++] = (xf_seg){s + lit, len - lit, 0, 0};

    /* JSON or text: parse the template with neutral values in place of the placeholders. */
    tw_buf probe = TW_BUF_INIT;
    tw_status rc = TW_OK;
    for (size_t i = 0; i < xf->nsegs && !rc; i++) {
        const xf_seg *g = &xf->segs[i];
        rc = g->lit ? tw__buf_append(&probe, g->lit, g->len) : g->at == XF_AT_VALUE ? tw__buf_puts(&probe, "null") : 0;
    }
    tw_json_doc *d = NULL;
    tw_status prc = rc || !probe.data ? rc : tw_json_parse(probe.data, probe.len, NULL, &d, NULL);
    xf->json = !rc && probe.data && prc == TW_OK;
    tw_json_doc_free(d);
    tw__buf_free(&probe);
    if (!rc && prc == TW_ENOMEM)              /* not "not JSON": only unknown for want of memory */
        rc = prc;
    if (rc)
        return tw__err(err, rc, "%s: out of memory", where);

    for (size_t i = 0; i < xf->nsegs; i++) {
        xf_seg *g = &xf->segs[i];
        if (g->lit)
            continue;
        if (!xf->json)
            g->at = XF_AT_TEXT;
        if ((g->var == -XF_P_EVENT || g->var == -XF_P_EVENT_JSON) && g->at != XF_AT_VALUE)
            return tw__err(err, TW_ETRANSFORM,
                           "%s: <%s> may only stand alone as a JSON value (not inside a string or text)",
                           where, tw__xf_predefined[-g->var]);
    }
    xf->mode = XF_MODE_TEMPLATE;
    return TW_OK;
}

static tw_status compile_transformer(tw_transform *xf, const spelled *in, tw_error *err)
{
    static const char *const map_names[3] = {"InputPathsMap", "inputPathsMap", "input_paths_map"};
    static const char *const tpl_names[3] = {"InputTemplate", "inputTemplate", "input_template"};
    char where[160];
    if (tw_json_typeof(in->val) != TW_JSON_OBJECT)
        return tw__err(err, TW_ETRANSFORM, "%s: must be a mapping with InputPathsMap and InputTemplate", in->key);
    for (size_t i = 0; i < tw_json_size(in->val); i++) {
        const char *k = tw_json_key(in->val, i, NULL);
        int known = 0;
        for (int s = 0; s < 3; s++)
            known |= strcmp(k, map_names[s]) == 0 || strcmp(k, tpl_names[s]) == 0;
        if (!known)
            return tw__err(err, TW_ETRANSFORM, "%s: unknown member \"%.64s\" (expected %s and %s)", in->key, k,
                           map_names[0], tpl_names[0]);
    }
    /* Messages about a missing member use the spelling of the InputTransformer key itself. */
    spelled map = {map_names[in->spelling], NULL, 0}, tpl = {tpl_names[in->spelling], NULL, 0};
    if (find3(in->val, map_names, &map) > 1 || find3(in->val, tpl_names, &tpl) > 1)
        return tw__err(err, TW_ETRANSFORM, "%s: %s or %s is given twice", in->key, map_names[in->spelling],
                       tpl_names[in->spelling]);
    tw_status rc;
    if (map.val) {
        snprintf(where, sizeof where, "%s.%s", in->key, map.key);
        if ((rc = compile_map(xf, where, map.val, err)))
            return rc;
    }
    snprintf(where, sizeof where, "%s.%s", in->key, tpl.key);
    if (!tpl.val)
        return tw__err(err, TW_ETRANSFORM, "%s: required", where);
    return compile_template(xf, where, map.key, tpl.val, err);
}

tw_status tw__transform_compile(const tw_json *binding, tw_transform **out, tw_error *err)
{
    static const char *const forms[3][3] = {
        {"Input", "input", "input"},
        {"InputPath", "inputPath", "input_path"},
        {"InputTransformer", "inputTransformer", "input_transformer"},
    };
    *out = NULL;
    if (!binding)
        return TW_OK;
    if (tw_json_typeof(binding) != TW_JSON_OBJECT)
        return tw__err(err, TW_ETRANSFORM, "a rule's target binding must be a mapping");
    spelled found[3] = {{0}};
    int n = 0, which = -1;
    for (int f = 0; f < 3; f++) {
        int c = find3(binding, forms[f], &found[f]);
        n += c;
        if (c)
            which = f;
    }
    if (n == 0)
        return TW_OK;
    if (n > 1)
        return tw__err(err, TW_ETRANSFORM, "use at most one of Input, InputPath and InputTransformer "
                                           "(in any spelling)");
    tw_transform *xf = calloc(1, sizeof *xf);
    if (!xf)
        return tw__err(err, TW_ENOMEM, "out of memory");
    tw_status rc = which == 0 ? compile_input(xf, &found[0], err)
                   : which == 1 ? compile_path(xf, &found[1], err)
                                : compile_transformer(xf, &found[2], err);
    if (rc) {
        tw__transform_free(xf);
        return rc;
    }
    *out = xf;
    return TW_OK;
}

void tw__transform_free(tw_transform *xf)
{
    if (!xf)
        return;
    tw__arena_free(&xf->arena);
    free(xf);
}
