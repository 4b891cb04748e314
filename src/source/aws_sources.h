/*
 * source/aws_sources.h: the parts of `serve` that read from AWS: one shared AWS client (created only
 * when the configuration uses AWS), the S3 bucket source and the SQS source (internal).
 *
 * Ownership: the server owns the tw_aws_sources; stop joins the sources and frees the client. The
 * client's settings (`aws:`) and the sources' are taken at start: a reload does not change them.
 */
#ifndef TW_SOURCE_AWS_SOURCES_H
#define TW_SOURCE_AWS_SOURCES_H

#include "aws/client.h"
#include "config/config_int.h"
#include "engine/engine.h"
#include "telemetry/metrics.h"

typedef struct tw_aws_sources tw_aws_sources;

/* Builds the client's settings from cfg->aws (the pointers stay cfg's). */
void tw__aws_settings_from_config(const tw_config *cfg, tw_aws_settings *s, tw_aws_endpoint *eps);

/* *out stays NULL when the configuration uses no AWS at all (no S3/SQS source, no enrichment, no
 * exec target). Also sets the engine's enricher and the exec targets' AWS environment. */
tw_status tw__aws_sources_start(tw_engine *e, tw_metrics *m, const tw_config *cfg, const char *data_dir,
                               tw_aws_sources **out, tw_error *err);
/* The shared client (NULL when none). */
tw_aws_client *tw__aws_sources_client(const tw_aws_sources *a);
/* 1 when NULL or every source is between polls. */
int tw__aws_sources_idle(const tw_aws_sources *a);
/* Stops the sources (first, with the other inputs). */
void tw__aws_sources_stop(tw_aws_sources *a);
/* Then, once deliveries are over: the enricher, the exec environment hook, the client. */
void tw__aws_sources_free(tw_aws_sources *a);

#endif
