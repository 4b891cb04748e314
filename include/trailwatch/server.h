/*
 * trailwatch/server.h: `trailwatch serve`: configuration, the server's lifecycle, logs, dead letters.
 *
 * Ownership: tw_config_load returns a configuration the caller owns until it hands it to
 * tw_server_start or tw_server_reload, which take it over (and free it, even on error). The caller
 * owns the tw_server (tw_server_free after tw_server_stop) and any tw_store it opens.
 *
 * Threads: the server runs its own threads (HTTP, sources, the outbox writer, delivery). Its
 * functions are called from one controlling thread (the CLI's main loop, which turns SIGTERM into
 * tw_server_stop and SIGHUP into a reload); logs arrive on the installed sink from any thread.
 */
#ifndef TRAILWATCH_SERVER_H
#define TRAILWATCH_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "trailwatch/error.h"
#include "trailwatch/rulefile.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- logs ---- */

typedef enum tw_log_level { TW_LOG_DEBUG = 0, TW_LOG_INFO, TW_LOG_WARN, TW_LOG_ERROR } tw_log_level;

/* One log event as a complete JSON object text ({"ts":..,"level":..,"msg":..,...}), no newline. */
typedef void (*tw_log_sink)(void *ctx, tw_log_level level, const char *json, size_t len);
void tw_log_set_sink(tw_log_sink sink, void *ctx, tw_log_level min_level);

/* ---- configuration ---- */

typedef struct tw_config tw_config;

/* Loads trailwatch.yml, or a Serverless Framework serverless.yml (recognised by its `service` and
 * `functions` keys). Every error is reported through report ("FILE:LINE: what"), the first is also
 * in err, and *nerrors counts them. ${VAR} is replaced by the environment variable VAR. */
tw_status tw_config_load(const char *path, tw_config **out, size_t *nerrors, tw_report_fn report, void *ctx,
                         tw_error *err);
void tw_config_free(tw_config *cfg);

/* A short human summary of a loaded configuration (rules, targets, sources), one line each, for
 * `trailwatch rules check`; the caller frees it (free()). Never contains secrets. */
char *tw_config_describe(const tw_config *cfg);
const char *tw_config_data_dir(const tw_config *cfg);
/* The configured listener "host:port" ("" for none) and CloudTrail folder (NULL for none). */
const char *tw_config_listen(const tw_config *cfg);
const char *tw_config_folder(const tw_config *cfg);
/* The configuration's archive (`archive:`): the SQLite file (archive.path, default DATA_DIR/archive.db)
 * into path, *backend (0 sqlite, 1 postgres; may be NULL), *dsn the postgres conninfo or NULL (may
 * be NULL; borrowed from cfg; it may hold a password: never print it). Returns archive.enabled. */
int tw_config_archive(const tw_config *cfg, char *path, size_t cap, int *backend, const char **dsn);
/* Warnings about a valid configuration, one per line ("" when none): things that work, but not as
 * written (a serverless.yml runtime python3.6 that runs on another python3). `serve` logs them. */
const char *tw_config_warnings(const tw_config *cfg);

/* ---- the server ---- */

typedef struct tw_server tw_server;

typedef struct tw_server_options {
    int stdin_events;          /* also read JSON lines events from standard input */
    const char *listen;        /* overrides the configured "host:port" when not NULL */
    /* `trailwatch replay --deliver`: no listener, no source, no archive, no cluster: events come
     * only from tw_server_replay. */
    int replay;
    const char *data_dir;      /* overrides the configured data directory (its outbox) when not NULL */
} tw_server_options;

tw_status tw_server_start(tw_config *cfg, const tw_server_options *opt, tw_server **out, tw_error *err);
/* Swaps in a new configuration without dropping events; on error the old one stays. */
tw_status tw_server_reload(tw_server *s, tw_config *cfg, tw_error *err);
/* The port the HTTP listener is bound to (after a ":0" listen), 0 without one. */
int tw_server_port(const tw_server *s);
/* 1 once every input is exhausted and the server has nothing left to do but serve HTTP (used by
 * `serve --stdin` to end after stdin's EOF when no listener is configured). */
int tw_server_idle(const tw_server *s);
/* What the server has done since it started (the first run's summary, `serve --summary`). */
typedef struct tw_server_stats {
    uint64_t files_processed;  /* CloudTrail log files read from the folder */
    uint64_t files_done;       /* ... skipped: read completely before (recorded in the data dir) */
    uint64_t files_rejected;   /* ... not CloudTrail log files */
    uint64_t files_failed;     /* ... that could not be read completely (retried when they change) */
    uint64_t records;          /* CloudTrail records read from the folder */
    uint64_t received;         /* events taken in from every source */
    uint64_t duplicates;       /* dropped: their CloudTrail eventID was seen before (every source) */
    uint64_t matches;          /* (event, rule) matches: an alert per target of the rule */
    uint64_t folded;           /* alerts counted into an open storm window instead of sent */
} tw_server_stats;

void tw_server_get_stats(tw_server *s, tw_server_stats *st);
/* Calls fn for every rule of the running configuration, in its order: events it matched and its
 * alerts folded by storm control. */
typedef void (*tw_rule_stats_fn)(void *ctx, const char *rule, uint64_t matches, uint64_t folded);
void tw_server_rule_stats(tw_server *s, tw_rule_stats_fn fn, void *ctx);
/* 1 once the folder source (when configured) has read every file it found at start. */
int tw_server_folder_ready(const tw_server *s);

/* Stops accepting, finishes what was accepted (alerts stay in the outbox for the next start), stops
 * every thread. Bounded by the drain timeout; never loses an accepted alert. */
void tw_server_stop(tw_server *s);
void tw_server_free(tw_server *s);

/* ---- replay (`trailwatch replay`) ---- */

/* Runs archived events through a replay server's engine (tw_server_options.replay) as serve runs
 * what it receives: wrapped, matched, rendered and committed to the outbox, whose dispatcher
 * delivers them with serve's retries and dead letters. Unlike serve, the events are neither
 * checked against the CloudTrail dedup set (which would drop every event seen within
 * server.dedup_window, i.e. all recent ones) nor archived again. *matched (may be NULL) is
 * incremented by the (event, rule) matches. An invalid event is skipped and counted in *invalid
 * (may be NULL); an error means nothing of this call was stored. */
tw_status tw_server_replay(tw_server *s, const char *const *events, const size_t *lens, size_t n, uint64_t *matched,
                           uint64_t *invalid, tw_error *err);
/* Alerts the replay server has still to deliver (0: all delivered or dead-lettered). */
uint64_t tw_server_pending(tw_server *s);

/* The rules of a configuration as one matcher, for a replay's dry run: which enabled rules of cfg
 * (borrowed; it must outlive the matcher) an event matches, decided as serve decides it (a raw
 * CloudTrail record is wrapped first). */
typedef struct tw_config_matcher tw_config_matcher;
tw_status tw_config_matcher_new(const tw_config *cfg, tw_config_matcher **out, tw_error *err);
void tw_config_matcher_free(tw_config_matcher *m);
/* fn is called once per matching rule with its name (borrowed for the call). TW_OK also when none
 * matched; an error (naming what is wrong) for an invalid event. */
typedef void (*tw_rule_name_fn)(void *ctx, const char *rule);
tw_status tw_config_matcher_run(tw_config_matcher *m, const char *json, size_t len, tw_rule_name_fn fn, void *ctx,
                                tw_error *err);

/* ---- the dashboard ---- */

/* A crypt(3) hash (yescrypt, "$y$...") of password for dashboard.password_hash, into out (at least
 * 128 bytes). */
tw_status tw_dashboard_hash_password(const char *password, char *out, size_t cap, tw_error *err);

/* ---- dead letters (used by `trailwatch dlq`, also while a server runs) ---- */

typedef struct tw_store tw_store;

tw_status tw_store_open(const char *data_dir, tw_store **out, tw_error *err);
void tw_store_close(tw_store *st);

typedef struct tw_dead_letter {
    int64_t id;
    const char *target, *rule, *event_id;
    const char *reason;        /* why it was dead-lettered */
    const char *response;      /* the destination's last response body, may be "" */
    int64_t created_ms, failed_ms;
    uint32_t attempts;
    const char *payload;       /* the request body that was to be delivered */
    size_t payload_len;
} tw_dead_letter;

typedef int (*tw_dead_letter_fn)(void *ctx, const tw_dead_letter *dl); /* return non-zero to stop */

tw_status tw_dlq_list(tw_store *st, const char *target, tw_dead_letter_fn fn, void *ctx, tw_error *err);
tw_status tw_dlq_get(tw_store *st, int64_t id, tw_dead_letter_fn fn, void *ctx, tw_error *err);
/* Moves dead letters back into the outbox (id 0: every one, optionally only of `target`); a running
 * server picks them up within a second. */
tw_status tw_dlq_redrive(tw_store *st, int64_t id, const char *target, size_t *moved, tw_error *err);

#ifdef __cplusplus
}
#endif
#endif
