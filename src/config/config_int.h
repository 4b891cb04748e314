/*
 * config/config_int.h: a loaded configuration, as the server reads it (internal).
 *
 * Ownership: the tw_config owns everything reachable from it: strings (in its arena), each target's
 * kind-specific settings (released through its ops), each binding's transform, the rule set.
 * Immutable once loaded; a reload builds a whole new one.
 *
 * Both trailwatch.yml (config.c) and serverless.yml (serverless.c) load into this shape.
 */
#ifndef TW_CONFIG_CONFIG_INT_H
#define TW_CONFIG_CONFIG_INT_H

#include <stdint.h>

#include "common/arena.h"
#include "expr/expr.h"
#include "target/target.h"
#include "target/transform.h"
#include "trailwatch/limits.h"
#include "trailwatch/pattern.h"
#include "trailwatch/server.h"

typedef struct tw_binding {        /* a rule's target, with its input transformation */
    uint32_t target;               /* index in cfg->targets */
    tw_transform *xf;              /* NULL: the event as is */
} tw_binding;

typedef struct tw_storm_cfg {      /* alert storm control, per rule */
    uint32_t nkeys;
    char **keys;                   /* JSONPaths ("$.detail.eventName") whose values make alerts "identical" */
    int64_t window_ms;             /* 0: off */
} tw_storm_cfg;

typedef struct tw_rule_example {   /* an event a rule must (or must not) match: `rules test` */
    char *json;                    /* the event as JSON text */
    size_t len;
    unsigned line;                 /* where it is written */
    int want_match;
} tw_rule_example;

typedef struct tw_fact_cfg {       /* one of a rule's facts: NAME: EXPRESSION (docs/FACTS.md) */
    char *name;
    tw_expr *expr;                 /* may use the facts before it, by their index */
} tw_fact_cfg;

/* One enrichment of a rule: a JSON-protocol AWS call made before its alerts are rendered, its
 * answer placed at enrichment.<name> in the event the targets' transformers see (src/enrich/). */
typedef struct tw_enrich_cfg {
    char *name;                    /* [A-Za-z0-9_-], unique per rule */
    char *service, *action;        /* "ssm", "DescribeParameters" */
    char *target_prefix;           /* X-Amz-Target prefix for services trailwatch does not know, else NULL */
    tw_transform *request;         /* builds the request body from the event (an input transformer) */
    int64_t timeout_ms;            /* the call's deadline, retries included (default 3 s) */
    int64_t cache_ms;              /* answers reused for the same request (default 60 s; 0: none) */
    double rate, burst;            /* calls per second to this service+action (default 5, burst 10) */
    char *where;                   /* FILE:LINE */
} tw_enrich_cfg;

typedef struct tw_rule_cfg {
    char *name;
    char *description;             /* "" when none */
    char *severity;                /* critical | high | medium | low | info (default medium) */
    int enabled;
    uint32_t nbindings;
    tw_binding *bindings;
    tw_storm_cfg storm;
    uint32_t nenrich;
    tw_enrich_cfg *enrich;         /* in the order given; NULL when none */
    char *where;                   /* "FILE:LINE" of the rule, for messages */
    char *pack;                    /* the rule pack it came from, NULL for trailwatch.yml's own rules */
    int severity_given;            /* severity was written, not the default */
    uint32_t nrefs, ntags;
    char **refs;                   /* references (URLs, benchmark sections) */
    char **tags;
    uint32_t nexamples;            /* kept only when loaded for `rules test` */
    tw_rule_example *examples;
    uint32_t nfacts;               /* computed per matched event, in order; `$.facts.NAME` in templates */
    tw_fact_cfg *facts;
    char *pattern_json;            /* the pattern as JSON text (the dashboard shows it) */
    const char *sigma_kind;        /* NULL: a pattern rule; "detection" or "correlation": from `sigma:` */
    long sigma_index;              /* its index in cfg->sigma.rules (tw_sigma_rule), -1 when none */
} tw_rule_cfg;

/* `sigma:` (docs/SIGMA.md): Sigma rules compiled into the rule set beside the patterns. */
typedef struct tw_sigma_cfg {
    struct tw_sigma *rules;        /* NULL: no sigma: section */
    uint32_t *rule_of;             /* Sigma rule index -> index in cfg->rules (UINT32_MAX: none) */
    size_t ncorrelations;          /* correlations that run (serve keeps a correlator when > 0) */
    int64_t lateness_ms;           /* how far behind the newest eventTime an event may arrive (15m) */
    int64_t save_ms;               /* how often correlation state is written to the data dir (5s) */
    size_t max_groups, max_group_events;
} tw_sigma_cfg;

typedef struct tw_retry_cfg {
    uint32_t max_attempts;         /* default 185 (EventBridge's) */
    int64_t max_age_ms;            /* default 24 h */
    int64_t base_ms;               /* first backoff, default 1 s */
    int64_t cap_ms;                /* longest backoff, default 5 min */
} tw_retry_cfg;

typedef struct tw_rate_cfg {
    double per_second;             /* 0: unlimited */
    double burst;
} tw_rate_cfg;

typedef struct tw_target_cfg {
    char *name;
    const tw_target_ops *ops;      /* the kind */
    void *impl;                    /* the kind's parsed settings (ops->configure / ops->release) */
    tw_retry_cfg retry;
    tw_rate_cfg rate;
    int64_t timeout_ms;            /* per delivery attempt, default 10 s (exec: 30 s) */
    int64_t max_pending;           /* alerts waiting for delivery at most (TW_DEFAULT_MAX_PENDING); 0: no cap */
    int when_full;                 /* at max_pending: TW_WHEN_FULL_REJECT (0) or TW_WHEN_FULL_DROP_OLDEST (1) */
    char *where;
} tw_target_cfg;

typedef struct tw_dashboard_cfg { /* the web dashboard (src/web/) */
    int enabled;                   /* default on */
    char *path;                    /* where the page is served; starts and ends with '/' (default "/") */
    char *password_hash;           /* crypt(3) hash for the read-only login; NULL: none */
    int64_t session_ms;            /* how long a login lasts (default 12 h) */
    uint32_t nhosts;
    char **hosts;                  /* Host names accepted from loopback clients besides localhost and IP
                                      literals (a guard against DNS rebinding) */
} tw_dashboard_cfg;

typedef enum { TW_ARCHIVE_CFG_SQLITE = 0, TW_ARCHIVE_CFG_POSTGRES = 1 } tw_archive_cfg_backend;

typedef struct tw_archive_cfg {    /* the event archive `serve` writes (src/server/archiver.c) */
    int enabled;                   /* default on */
    char *path;                    /* the SQLite file; NULL: DATA_DIR/archive.db (tw__config_archive_path) */
    int64_t retention_ms;          /* events older than this are pruned; 0 (default): kept forever */
    int backend;                   /* tw_archive_cfg_backend */
    char *dsn;                     /* postgres conninfo (may hold a password: never shown) */
    int drop_when_full;            /* when_full: drop: a full writer queue drops events instead of
                                      holding the sender back (default wait) */
} tw_archive_cfg;

typedef struct tw_access_key {
    char *id;
    char *secret;
} tw_access_key;

/* `aws:` — how trailwatch reaches AWS (src/aws/client.h); all optional. */
typedef struct tw_aws_cfg {
    char *profile, *region, *endpoint_url;
    uint32_t nendpoints;
    char **endpoint_services, **endpoint_urls;
    int64_t timeout_ms;            /* per attempt, 0: the client's default (10 s) */
    uint32_t max_attempts;         /* 0: the client's default (3) */
} tw_aws_cfg;

/* sources.s3: a CloudTrail bucket polled with ListObjectsV2 (src/source/s3src.c). */
typedef struct tw_s3src_cfg {
    char *bucket;
    char *prefix;                  /* the trail's key prefix, "" when none */
    char *organization;            /* "o-..." for an organization trail; NULL: whatever AWSLogs/ holds */
    uint32_t naccounts, nregions;
    char **accounts, **regions;    /* none: every one found in the bucket */
    int64_t start_ms;              /* files delivered from this time; -1: one day before the first start */
    int64_t poll_ms;               /* between listings (default 60 s) */
    int64_t lookback_ms;           /* files named this much before the position are listed again (1 h) */
    uint32_t workers;              /* objects fetched at once (default 4) */
    int verify;                    /* validate digests (trailwatch verify) and raise an event on failure */
    char *verify_keys;             /* public keys file; NULL: CloudTrail ListPublicKeys */
    int64_t verify_ms;             /* how often (default 1 h) */
} tw_s3src_cfg;

/* sources.sqs: a queue of S3 / CloudTrail notifications (src/source/sqssrc.c). */
typedef struct tw_sqssrc_cfg {
    char *queue_url;
    uint32_t wait_s;               /* long poll (default 20) */
    uint32_t visibility_s;         /* asked on receive and renewed while a file is processed (default 300) */
    uint32_t workers;              /* receiving threads (default 1) */
} tw_sqssrc_cfg;

typedef struct tw_sources_cfg {
    int eventbridge;               /* POST / : PutEvents, TestEventPattern (default on) */
    int http;                      /* POST /events (default on) */
    int firehose;                  /* POST <firehose_path> */
    char *firehose_path;           /* default /firehose */
    char *firehose_key;            /* X-Amz-Firehose-Access-Key expected; NULL: none required */
    char *http_key;                /* POST /events: a key callers may give in http_key_header instead of
                                      signing (EventBridge API destinations); NULL: none */
    char *http_key_header;         /* default x-api-key */
    char *folder;                  /* CloudTrail log files folder, NULL: none */
    int folder_watch;              /* keep watching after the first pass (default on) */
    tw_s3src_cfg *s3;              /* NULL: none */
    tw_sqssrc_cfg *sqs;            /* NULL: none */
} tw_sources_cfg;

/* cluster: (docs/CLUSTER.md). Absent: the embedded single-process mode, nothing of NATS is used. */
typedef enum tw_cluster_role {
    TW_CLUSTER_OFF = 0,
    TW_CLUSTER_BOTH,               /* publishes what its sources take and runs matcher workers */
    TW_CLUSTER_INGEST,             /* sources publish to JetStream; nothing is matched here */
    TW_CLUSTER_WORKER              /* only matches what the stream holds */
} tw_cluster_role;

typedef struct tw_cluster_cfg {
    tw_cluster_role role;
    uint32_t nurls;
    char **urls;                   /* nats://[user:password@]host:port: may hold a secret, never shown */
    char *name;                    /* this node in metrics and `cluster status`; NULL: host-pid */
    const char *stream, *subject, *consumer;
    char *credentials;             /* a NATS .creds file (JWT and nkey seed); NULL: none */
    uint32_t replicas;             /* of the stream and consumer, when trailwatch creates them */
    int64_t duplicate_window_ms;   /* the stream's Nats-Msg-Id window */
    int64_t max_age_ms;            /* 0: events wait in the stream until a worker takes them */
    uint64_t max_bytes;            /* 0: no cap; else publishing fails (and senders retry) when full */
    int64_t ack_wait_ms;           /* a worker's time to commit and ack before redelivery */
    uint64_t max_deliver;          /* 0: unlimited */
    uint32_t fetch_batch;          /* events per fetch (and per engine call) */
    uint32_t fetchers;             /* fetch loops per worker process */
    uint32_t max_ack_pending;      /* events handed out and not yet acked, whole consumer */
    int64_t publish_timeout_ms;    /* how long a source keeps retrying a publish (leader elections) */
} tw_cluster_cfg;

typedef struct tw_http_cfg {       /* the HTTP listener (fixed while running: a reload cannot change it) */
    int64_t header_timeout_ms;
    int64_t request_timeout_ms;
    uint32_t max_connections;
    uint32_t max_per_client;       /* 0: no cap per client address */
    size_t body_bytes;             /* request bodies in memory at once */
    size_t gunzip_bytes;           /* decompressed bytes in memory at once */
} tw_http_cfg;

struct tw_config {
    tw_arena arena;
    char *path;
    char *data_dir;                /* default "./var" next to the config file */
    char *listen;                  /* "host:port", default 127.0.0.1:8080; "" = no HTTP listener */
    char *account;                 /* the account id PutEvents events get (default 123456789012) */
    char *region;                  /* default us-east-1 */
    uint32_t nregions;
    char **regions;                /* more regions signed API requests may be scoped to */
    int any_region;                /* server.regions: "*" */
    tw_http_cfg http;
    uint32_t nkeys;
    tw_access_key *keys;           /* SigV4 keys; none: the API refuses non-loopback listeners */
    tw_limits lim;
    int64_t drain_ms;              /* how long SIGTERM waits for deliveries in flight (default 10 s) */
    int64_t dedup_window_ms;       /* how long a CloudTrail eventID is remembered (default 24 h) */
    tw_sources_cfg src;
    tw_aws_cfg aws;
    tw_cluster_cfg cluster;
    tw_dashboard_cfg dash;
    tw_sigma_cfg sigma;
    tw_archive_cfg archive;
    uint32_t nrules;
    tw_rule_cfg *rules;
    uint32_t ntargets;
    tw_target_cfg *targets;
    tw_ruleset *ruleset;           /* enabled rules only */
    uint32_t *ruleset_rule;        /* ruleset index -> index in rules */
    tw_json_doc *data_doc;         /* the `data:` tables, NULL when none */
    const tw_json *data;           /* {NAME: table, ...}: what `data` is in facts */
    char *warnings;                /* lines worth a warning (a runtime that is not installed), "" when
                                      none: `rules check` shows them, `serve` logs them at start */
    char *notes;                   /* extra lines for tw_config_describe (what a serverless.yml had
                                      that trailwatch ignores), "" when none */
};

/* The archive's SQLite file: archive.path, or DATA_DIR/archive.db; into buf. */
const char *tw__config_archive_path(const tw_config *cfg, char *buf, size_t cap);

/* Hands cfg's rule set to the caller (who frees it); cfg keeps none. */
tw_ruleset *tw__config_take_ruleset(tw_config *cfg);

/* Looks a target up by name; NULL when unknown. */
const tw_target_cfg *tw__config_target(const tw_config *cfg, const char *name);

/* Parses "10s", "5m", "24h", "250ms", "1d", or a bare number of seconds; 0 on error. */
int tw__parse_duration(const char *s, int64_t *ms);

#endif
