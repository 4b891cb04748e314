/*
 * tests/unit/engine_rig.h: a real engine on a real outbox in a temporary folder, for unit tests
 * (test_engine.c, test_torture.c). No HTTP, no dispatcher: committed rows are counted by the hook.
 *
 * Ownership: a rig owns everything it starts; rig_stop releases it and removes the folder.
 */
#ifndef TW_TESTS_ENGINE_RIG_H
#define TW_TESTS_ENGINE_RIG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/snapshot.h"
#include "engine/engine.h"
#include "outbox/outbox.h"
#include "outbox/store.h"
#include "telemetry/metrics.h"
#include "trailwatch/server.h"

typedef struct rig {
    char dir[64];
    tw_snapshots snaps;
    tw_metrics *metrics;
    tw_engine *engine;
    tw_outbox *ob;
    int committed;                 /* outbox rows handed over */
    char last_body[8192];
} rig;

static inline void on_committed(void *ctx, const tw_alert_row *rows, size_t n)
{
    rig *r = ctx;
    r->committed += (int)n;
    if (n)
        snprintf(r->last_body, sizeof r->last_body, "%.*s", (int)rows[n - 1].body_len, rows[n - 1].body);
}

static inline int rig_start(rig *r, const char *yaml)
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/tw-engine-XXXXXX");
    if (!mkdtemp(r->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/trailwatch.yml", r->dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(yaml, f);
    fclose(f);
    tw_config *cfg = NULL;
    size_t nerr = 0;
    tw_error err;
    if (tw_config_load(path, &cfg, &nerr, NULL, NULL, &err)) {
        printf("# config: %s\n", err.msg);
        return -1;
    }
    tw_outbox_hooks hooks = {r, on_committed};
    if (!(r->metrics = tw__metrics_new()) || tw__snapshots_init(&r->snaps, cfg, &err) ||
        tw__engine_new(&r->snaps, r->metrics, &r->engine, &err) || tw__outbox_start(r->dir, &hooks, &r->ob, &err) ||
        tw__engine_attach(r->engine, r->ob, &err)) {
        printf("# start: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static inline void rig_stop(rig *r)
{
    if (r->engine)
        tw__engine_set_stopping(r->engine);
    tw__outbox_stop(r->ob);
    tw__engine_free(r->engine);
    tw__snapshots_destroy(&r->snaps);
    tw__metrics_free(r->metrics);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", r->dir);
}

#endif
