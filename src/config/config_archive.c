/* config/config_archive.c: the `archive:` section (where `serve` keeps every event; docs/CONFIG.md). */
#include <string.h>

#include "config/load_int.h"
#include "json/json_int.h"

/* Retention past 100 years is "forever" written another way: refuse it rather than overflow. */
#define ARCHIVE_RETENTION_MAX (100LL * 366 * 86400000)

void tw__cl_archive_defaults(tw_cfg_ld *ld)
{
    tw_archive_cfg *a = &ld->cfg->archive;
    a->enabled = 1;
    a->backend = TW_ARCHIVE_CFG_SQLITE;
}

void tw__cl_archive(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"enabled", "path", "retention", "backend", "dsn", "when_full", NULL};
    if (!v || v->type == TW_JSON_NULL || tw__cl_keys(ld, v, "archive", known) < 0)
        return;
    tw_archive_cfg *a = &ld->cfg->archive;
    tw__cl_bool(ld, v, "archive", "enabled", &a->enabled);
    const char *s;
    if (tw__cl_string(ld, v, "archive", "path", 1, &s) > 0)
        a->path = tw__cl_join(ld, ld->dir_abs, s);
    const tw_json *r = tw_json_get(v, "retention");
    const char *rs = r && r->type == TW_JSON_STRING ? r->u.str : NULL;
    if (rs && (strcmp(rs, "forever") == 0 || strcmp(rs, "0") == 0))
        a->retention_ms = 0;
    else
        tw__cl_duration(ld, v, "archive", "retention", 3600000, ARCHIVE_RETENTION_MAX, &a->retention_ms);
    if (tw__cl_string(ld, v, "archive", "backend", 1, &s) > 0) {
        if (strcmp(s, "sqlite") == 0)
            a->backend = TW_ARCHIVE_CFG_SQLITE;
        else if (strcmp(s, "postgres") == 0 || strcmp(s, "postgresql") == 0)
            a->backend = TW_ARCHIVE_CFG_POSTGRES;
        else
            tw__cl_err(ld, tw_json_get(v, "backend")->line, TW_ECONFIG,
                       "archive.backend: \"%s\" is not a backend (sqlite or postgres)", s);
    }
    if (tw__cl_string(ld, v, "archive", "when_full", 1, &s) > 0) {
        if (strcmp(s, "wait") == 0)
            a->drop_when_full = 0;
        else if (strcmp(s, "drop") == 0)
            a->drop_when_full = 1;
        else
            tw__cl_err(ld, tw_json_get(v, "when_full")->line, TW_ECONFIG,
                       "archive.when_full: \"%.40s\" is not one of wait, drop", s);
    }
    /* The conninfo may hold a password: it is kept, never shown (describe says only "postgres"). */
    if (tw__cl_string(ld, v, "archive", "dsn", 1, &s) > 0)
        a->dsn = tw__cl_strdup(ld, s);
    if (a->backend == TW_ARCHIVE_CFG_POSTGRES && !a->dsn)
        tw__cl_err(ld, v->line, TW_ECONFIG,
                   "archive: backend postgres needs archive.dsn (a libpq connection string, e.g. "
                   "\"host=db dbname=trailwatch user=trailwatch password=${PGPASSWORD}\")");
}
