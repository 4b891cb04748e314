/* config/config_dashboard.c: the `dashboard:` section (the web page `serve` shows; docs/CONFIG.md). */
#include <crypt.h>
#include <stdio.h>
#include <string.h>

#include "config/load_int.h"
#include "json/json_int.h"

/* Host names are DNS names: 253 characters at most. */
#define DASH_HOST_MAX 253
#define DASH_HOSTS_MAX 64

void tw__cl_dashboard_defaults(tw_cfg_ld *ld)
{
    tw_dashboard_cfg *d = &ld->cfg->dash;
    d->enabled = 1;
    d->path = tw__cl_strdup(ld, "/");
    d->session_ms = 12LL * 3600000;
}

static void dash_path(tw_cfg_ld *ld, const tw_json *obj)
{
    const char *s;
    if (tw__cl_string(ld, obj, "dashboard", "path", 1, &s) <= 0)
        return;
    size_t n = strlen(s);
    int ok = s[0] == '/' && n < 128;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
             strchr("/-_.", s[i]) != NULL;
    if (!ok || strstr(s, "..") || strncmp(s, "/api/", 5) == 0 || strcmp(s, "/api") == 0) {
        tw__cl_err(ld, tw_json_get(obj, "path")->line, TW_ECONFIG,
                   "dashboard.path: a path such as /dashboard/ (letters, digits, / - _ . ; not under /api/)");
        return;
    }
    ld->cfg->dash.path = n && s[n - 1] == '/' ? tw__cl_strdup(ld, s) : tw__cl_printf(ld, "%s/", s);
}

static void dash_password(tw_cfg_ld *ld, const tw_json *obj)
{
    const char *s;
    if (tw__cl_string(ld, obj, "dashboard", "password_hash", 1, &s) <= 0)
        return;
    /* A usable hash makes crypt() answer with a string of the same method; "*" means it does not know it. */
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *probe = s[0] == '$' ? crypt_r("probe", s, &cd) : NULL;
    if (!probe || probe[0] == '*' || strncmp(probe, s, 3) != 0) {
        tw__cl_err(ld, tw_json_get(obj, "password_hash")->line, TW_ECONFIG,
                   "dashboard.password_hash: not a crypt(3) hash this system knows (make one with "
                   "`trailwatch dashboard hash-password`)");
        return;
    }
    ld->cfg->dash.password_hash = tw__cl_strdup(ld, s);
}

static void dash_hosts(tw_cfg_ld *ld, const tw_json *v)
{
    if (!v || v->type == TW_JSON_NULL)
        return;
    if (v->type != TW_JSON_ARRAY || v->n > DASH_HOSTS_MAX) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "dashboard.hosts: must be a list of at most %d host names",
                   DASH_HOSTS_MAX);
        return;
    }
    tw_dashboard_cfg *d = &ld->cfg->dash;
    d->hosts = tw__arena_calloc(&ld->cfg->arena, (v->n ? v->n : 1) * sizeof *d->hosts);
    if (!d->hosts) {
        ld->oom = 1;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const char *h;
        char name[48];
        snprintf(name, sizeof name, "dashboard.hosts[%zu]", i);
        if (tw__cl_vstring(ld, v->u.items[i], name, 1, &h) <= 0)
            continue;
        if (strlen(h) > DASH_HOST_MAX || strpbrk(h, " /\\@?#")) {
            tw__cl_err(ld, v->u.items[i]->line, TW_ECONFIG, "%s: not a host name", name);
            continue;
        }
        d->hosts[d->nhosts++] = tw__cl_strdup(ld, h);
    }
}

void tw__cl_dashboard(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"enabled", "path", "password_hash", "session", "hosts", NULL};
    if (!v || v->type == TW_JSON_NULL || tw__cl_keys(ld, v, "dashboard", known) < 0)
        return;
    tw_dashboard_cfg *d = &ld->cfg->dash;
    tw__cl_bool(ld, v, "dashboard", "enabled", &d->enabled);
    dash_path(ld, v);
    dash_password(ld, v);
    tw__cl_duration(ld, v, "dashboard", "session", 60000, 30LL * 86400000, &d->session_ms);
    dash_hosts(ld, tw_json_get(v, "hosts"));
}
