/* source/aws_sources.c: the AWS client and the S3 / SQS sources of one `serve`. */
#include "source/aws_sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "enrich/enrich.h"
#include "target/target.h"
#include "source/s3src.h"
#include "source/sqssrc.h"
#include "telemetry/log.h"

struct tw_aws_sources {
    tw_aws_client *client;
    tw_s3src *s3;
    tw_sqssrc *sqs;
    tw_enricher *enricher;
    tw_engine *engine;
};

/* The exec targets' AWS environment: trailwatch's region, endpoints and credentials. */
static char **child_env(void *ctx)
{
    tw_aws_sources *a = ctx;
    char **lines = NULL;
    size_t n = 0;
    tw_error err;
    if (tw__aws_child_env(a->client, &lines, &n, &err))
        return NULL;
    return lines;
}

void tw__aws_settings_from_config(const tw_config *cfg, tw_aws_settings *s, tw_aws_endpoint *eps)
{
    memset(s, 0, sizeof *s);
    const tw_aws_cfg *a = &cfg->aws;
    s->profile = a->profile;
    s->region = a->region;
    s->endpoint_url = a->endpoint_url;
    for (uint32_t i = 0; i < a->nendpoints && i < TW_AWS_ENDPOINTS_MAX; i++)
        eps[i] = (tw_aws_endpoint){a->endpoint_services[i], a->endpoint_urls[i]};
    s->endpoints = eps;
    s->nendpoints = a->nendpoints < TW_AWS_ENDPOINTS_MAX ? a->nendpoints : TW_AWS_ENDPOINTS_MAX;
    s->timeout_ms = a->timeout_ms;
    s->max_attempts = a->max_attempts;
}

static int uses_aws(const tw_config *cfg)
{
    if (cfg->src.s3 || cfg->src.sqs)
        return 1;
    for (uint32_t i = 0; i < cfg->nrules; i++)
        if (cfg->rules[i].nenrich)
            return 1;
    for (uint32_t i = 0; i < cfg->ntargets; i++)
        if (strcmp(cfg->targets[i].ops->kind, "exec") == 0)
            return 1; /* Lambda-style handlers get the AWS environment */
    return 0;
}

tw_status tw__aws_sources_start(tw_engine *e, tw_metrics *m, const tw_config *cfg, const char *data_dir,
                               tw_aws_sources **out, tw_error *err)
{
    *out = NULL;
    if (!uses_aws(cfg))
        return TW_OK;
    tw_aws_sources *a = calloc(1, sizeof *a);
    if (!a)
        return tw__err(err, TW_ENOMEM, "out of memory");
    a->engine = e;
    tw_aws_settings st;
    tw_aws_endpoint eps[TW_AWS_ENDPOINTS_MAX];
    tw__aws_settings_from_config(cfg, &st, eps);
    tw_status rc = tw__aws_client_new(&st, &a->client, err);
    char why[TW_ERROR_MSG_MAX + 32] = "";
    if (rc) {
        if (cfg->src.s3 || cfg->src.sqs) {
            tw__err_prefix(err, "aws");
            free(a);
            return rc;
        }
        /* Without S3/SQS sources a broken AWS setup only affects enrichment: say so and go on. */
        snprintf(why, sizeof why, "AWS settings unusable: %s", err->msg);
        tw__log(TW_LOG_WARN, "AWS settings unusable: enrichments fail, handlers get no AWS settings", "error",
               err->msg, NULL);
        tw_error_clear(err);
    }
    if ((rc = tw__enricher_new(a->client, why, m, &a->enricher, err))) {
        tw__aws_sources_free(a);
        return rc;
    }
    tw__engine_set_enricher(e, a->enricher);
    if (a->client)
        tw__target_exec_env(child_env, a);
    if (cfg->src.s3 &&
        (rc = tw__s3src_start(e, m, a->client, cfg->src.s3, cfg->aws.profile, data_dir, &cfg->lim, &a->s3, err)))
        goto fail;
    if (cfg->src.sqs && (rc = tw__sqssrc_start(e, m, a->client, cfg->src.sqs, &cfg->lim, &a->sqs, err)))
        goto fail;
    *out = a;
    return TW_OK;
fail:
    tw__aws_sources_stop(a);
    tw__aws_sources_free(a);
    return rc;
}

tw_aws_client *tw__aws_sources_client(const tw_aws_sources *a) { return a ? a->client : NULL; }

int tw__aws_sources_idle(const tw_aws_sources *a)
{
    return !a || ((!a->s3 || tw__s3src_idle(a->s3)) && (!a->sqs || tw__sqssrc_idle(a->sqs)));
}

void tw__aws_sources_stop(tw_aws_sources *a)
{
    if (!a)
        return;
    tw__s3src_stop(a->s3);
    tw__sqssrc_stop(a->sqs);
    a->s3 = NULL;
    a->sqs = NULL;
}

void tw__aws_sources_free(tw_aws_sources *a)
{
    if (!a)
        return;
    tw__aws_sources_stop(a);
    if (a->client)
        tw__target_exec_env(NULL, NULL);
    if (a->engine)
        tw__engine_set_enricher(a->engine, NULL);
    tw__enricher_free(a->enricher);
    tw__aws_client_free(a->client);
    free(a);
}
