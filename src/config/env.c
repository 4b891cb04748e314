/* config/env.c: ${VAR} and ${VAR:-default} in trailwatch.yml's string values, replaced after YAML
 * parsing: a value from the environment is always one string, whatever it holds, so it can never
 * add keys, change types or end a quoted scalar. $${ is a literal ${. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "config/load_int.h"
#include "json/json_int.h"

/* Substitutes s (n bytes) into out. Returns 1 when something came from the environment, 0 when not,
 * -1 on an error (reported at line). */
static int subst_string(tw_cfg_ld *ld, const char *s, size_t n, unsigned line, tw_buf *out)
{
    int used = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '$' || i + 1 >= n) {
            if (tw__buf_putc(out, s[i++]))
                goto oom;
            continue;
        }
        if (s[i + 1] == '$' && i + 2 < n && s[i + 2] == '{') {       /* $${ -> ${ */
            if (tw__buf_append(out, "${", 2))
                goto oom;
            i += 3;
            continue;
        }
        if (s[i + 1] != '{') {
            if (tw__buf_putc(out, s[i++]))
                goto oom;
            continue;
        }
        size_t start = i + 2, end = start;
        while (end < n && s[end] != '}')
            end++;
        if (end >= n) {
            tw__cl_err(ld, line, TW_ECONFIG, "unterminated ${ (write $${ for a literal ${)");
            return -1;
        }
        size_t name_end = start;
        while (name_end < end && (isalnum((unsigned char)s[name_end]) || s[name_end] == '_'))
            name_end++;
        int has_default = name_end + 1 < end && s[name_end] == ':' && s[name_end + 1] == '-';
        if (name_end == start || isdigit((unsigned char)s[start]) || (name_end != end && !has_default)) {
            tw__cl_err(ld, line, TW_ECONFIG,
                       "invalid reference ${%.*s}: write ${NAME} or ${NAME:-default} (NAME: letters, digits, _), "
                       "or $${ for a literal ${", (int)(end - start > 60 ? 60 : end - start), s + start);
            return -1;
        }
        char name[256];
        size_t nl = name_end - start;
        if (nl >= sizeof name) {
            tw__cl_err(ld, line, TW_ECONFIG, "environment variable name longer than %zu characters", sizeof name - 1);
            return -1;
        }
        memcpy(name, s + start, nl);
        name[nl] = '\0';
        const char *val = getenv(name);
        if (has_default && (!val || !*val)) {
            if (tw__buf_append(out, s + name_end + 2, end - (name_end + 2)))
                goto oom;
        } else if (!val) {
            tw__cl_err(ld, line, TW_ECONFIG, "environment variable %s is not set", name);
            return -1;
        } else {
            if (tw__buf_puts(out, val))
                goto oom;
            used = 1;
        }
        i = end + 1;
    }
    return used;
oom:
    ld->oom = 1;
    return -1;
}

tw_json *tw__cl_subst_tree(tw_cfg_ld *ld, tw_json_doc *doc, const tw_json *v)
{
    tw_json *c = NULL;
    switch (v->type) {
    case TW_JSON_STRING: {
        if (!memchr(v->u.str, '$', v->n)) {
            c = tw__json_new_string(doc, v->u.str, v->n);
            break;
        }
        tw_buf b = TW_BUF_INIT;
        int r = subst_string(ld, v->u.str, v->n, v->line, &b);
        c = r < 0 ? tw__json_new_string(doc, v->u.str, v->n) : tw__json_new_string(doc, b.data ? b.data : "", b.len);
        tw__buf_free(&b);
        if (c && r < 0)
            tw__cl_mark(ld, &ld->tainted, c);
        if (c && r > 0)
            tw__cl_mark(ld, &ld->subst, c);
        break;
    }
    case TW_JSON_ARRAY:
        c = tw__json_new(doc, TW_JSON_ARRAY);
        for (size_t i = 0; c && i < v->n; i++) {
            tw_json *item = tw__cl_subst_tree(ld, doc, v->u.items[i]);
            if (!item || tw__json_push(doc, c, item))
                return NULL;
        }
        break;
    case TW_JSON_OBJECT:
        c = tw__json_new(doc, TW_JSON_OBJECT);
        for (size_t i = 0; c && i < v->n; i++) {
            const tw_json_member *m = &v->u.members[i];
            tw_json *val = tw__cl_subst_tree(ld, doc, m->val);
            if (!val || tw__json_put(doc, c, m->key, m->klen, val))
                return NULL;
        }
        break;
    default:
        c = tw__json_copy(doc, v);
    }
    if (c) {
        c->line = v->line;
        c->col = v->col;
    }
    return c;
}
