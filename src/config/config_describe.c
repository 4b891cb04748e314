/* config/config_describe.c: tw_config_describe: a loaded configuration summarised for people
 * (`trailwatch rules check`). Names, kinds, numbers and paths only: never a setting's value (URLs,
 * keys, tokens, commands), never an access key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "config/load_int.h"

static void describe_target(tw_buf *b, const tw_config *cfg, uint32_t ti)
{
    const tw_target_cfg *t = &cfg->targets[ti];
    char age[32], base[32], cap[32], to[32];
    unsigned used = 0;
    for (uint32_t i = 0; i < cfg->nrules; i++)
        for (uint32_t j = 0; j < cfg->rules[i].nbindings; j++)
            used += cfg->rules[i].bindings[j].target == ti;
    tw__buf_printf(b, "target %s: %s", t->name, t->ops ? t->ops->kind : "?");
    if (t->rate.per_second > 0)
        tw__buf_printf(b, ", at most %g/s (burst %g)", t->rate.per_second, t->rate.burst);
    tw__buf_printf(b, ", timeout %s, retry %u times within %s (backoff %s to %s)",
                  tw__cl_fmt_duration(t->timeout_ms, to, sizeof to), t->retry.max_attempts,
                  tw__cl_fmt_duration(t->retry.max_age_ms, age, sizeof age),
                  tw__cl_fmt_duration(t->retry.base_ms, base, sizeof base),
                  tw__cl_fmt_duration(t->retry.cap_ms, cap, sizeof cap));
    if (used)
        tw__buf_printf(b, "; used by %u rule%s\n", used, used == 1 ? "" : "s");
    else
        tw__buf_puts(b, "; no rule uses it\n");
}

static void describe_rule(tw_buf *b, const tw_config *cfg, const tw_rule_cfg *r)
{
    char w[32];
    const char *kind = !r->sigma_kind ? "rule" : r->sigma_kind[0] == 'c' ? "sigma correlation" : "sigma rule";
    tw__buf_printf(b, "%s %s: %s%s ->", kind, r->name, r->severity, r->enabled ? "" : ", disabled");
    if (r->sigma_kind && !r->nbindings)
        tw__buf_puts(b, " (no alerts of its own: an input of its correlations)");
    for (uint32_t j = 0; j < r->nbindings; j++) {
        const tw_binding *bd = &r->bindings[j];
        tw__buf_printf(b, "%s %s%s", j ? "," : "", bd->target < cfg->ntargets ? cfg->targets[bd->target].name : "?",
                      bd->xf ? " (transformed)" : "");
    }
    if (r->storm.window_ms) {
        tw__buf_printf(b, "; storm control %s", tw__cl_fmt_duration(r->storm.window_ms, w, sizeof w));
        for (uint32_t k = 0; k < r->storm.nkeys; k++)
            tw__buf_printf(b, "%s%s", k ? ", " : " by ", r->storm.keys[k]);
    }
    tw__buf_printf(b, " (%s)\n", r->where);
}

char *tw_config_describe(const tw_config *cfg)
{
    if (!cfg)
        return NULL;
    tw_buf b = TW_BUF_INIT;
    const tw_sources_cfg *s = &cfg->src;
    uint32_t enabled = 0;
    for (uint32_t i = 0; i < cfg->nrules; i++)
        enabled += cfg->rules[i].enabled != 0;
    tw__buf_printf(&b, "configuration %s: %u rule%s (%u enabled), %u target%s\n", cfg->path, cfg->nrules,
                  cfg->nrules == 1 ? "" : "s", enabled, cfg->ntargets, cfg->ntargets == 1 ? "" : "s");
    tw__buf_printf(&b, "data dir: %s\n", cfg->data_dir);
    if (*cfg->listen)
        tw__buf_printf(&b, "listen: %s (account %s, region %s, %u access key%s)\n", cfg->listen, cfg->account,
                      cfg->region, cfg->nkeys, cfg->nkeys == 1 ? "" : "s");
    else
        tw__buf_printf(&b, "listen: none (no HTTP listener)\n");
    tw__buf_puts(&b, "sources:");
    int any = 0;
    if (*cfg->listen && s->eventbridge)
        any = 1, tw__buf_puts(&b, " eventbridge (POST /)");
    if (*cfg->listen && s->http)
        tw__buf_printf(&b, "%s http (POST /events%s)", any++ ? "," : "", s->http_key ? ", API key accepted" : "");
    if (*cfg->listen && s->firehose)
        tw__buf_printf(&b, "%s firehose (POST %s%s)", any++ ? "," : "", s->firehose_path,
                      s->firehose_key ? ", access key required" : "");
    if (s->folder)
        tw__buf_printf(&b, "%s folder %s%s", any++ ? "," : "", s->folder, s->folder_watch ? " (watched)" : " (once)");
    if (s->s3)
        tw__buf_printf(&b, "%s s3 bucket %s%s%s%s", any++ ? "," : "", s->s3->bucket ? s->s3->bucket : "?",
                      *s->s3->prefix ? " prefix " : "", s->s3->prefix, s->s3->verify ? " (digests verified)" : "");
    if (s->sqs)
        tw__buf_printf(&b, "%s sqs %s", any++ ? "," : "", s->sqs->queue_url ? s->sqs->queue_url : "?");
    tw__buf_puts(&b, any ? "\n" : " none\n");
    if (cfg->archive.enabled) {
        char path[4096], ret[32];
        if (cfg->archive.backend == TW_ARCHIVE_CFG_POSTGRES)
            tw__buf_puts(&b, "archive: postgres (archive.dsn)");
        else
            tw__buf_printf(&b, "archive: sqlite %s", tw__config_archive_path(cfg, path, sizeof path));
        tw__buf_printf(&b, ", every event kept %s%s\n", cfg->archive.retention_ms ? "for " : "forever",
                      cfg->archive.retention_ms ? tw__cl_fmt_duration(cfg->archive.retention_ms, ret, sizeof ret) : "");
    } else {
        tw__buf_puts(&b, "archive: off (archive.enabled: false)\n");
    }
    tw__buf_printf(&b, "limits: events up to %zu bytes, JSON depth %u\n", cfg->lim.event_max, cfg->lim.json_depth);
    for (uint32_t i = 0; i < cfg->ntargets; i++)
        describe_target(&b, cfg, i);
    for (uint32_t i = 0; i < cfg->nrules; i++)
        describe_rule(&b, cfg, &cfg->rules[i]);
    if (cfg->notes && *cfg->notes)
        tw__buf_printf(&b, "notes:\n%s", cfg->notes);
    if (cfg->warnings && *cfg->warnings)
        tw__buf_printf(&b, "warnings:\n%s", cfg->warnings);
    size_t len;
    char *out = b.data ? tw__buf_detach(&b, &len) : NULL;
    tw__buf_free(&b);
    return out;
}

const char *tw__config_archive_path(const tw_config *cfg, char *buf, size_t cap)
{
    if (cfg->archive.path)
        snprintf(buf, cap, "%s", cfg->archive.path);
    else
        snprintf(buf, cap, "%s/archive.db", cfg->data_dir ? cfg->data_dir : ".");
    return buf;
}

int tw_config_archive(const tw_config *cfg, char *path, size_t cap, int *backend, const char **dsn)
{
    tw__config_archive_path(cfg, path, cap);
    if (backend)
        *backend = cfg->archive.backend;
    if (dsn)
        *dsn = cfg->archive.dsn;
    return cfg->archive.enabled;
}
