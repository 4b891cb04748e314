/* aws/client.c: signed AWS API calls: endpoints, signing, retries, error codes. */
#include "aws/client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "aws/awscfg.h"
#include "aws/creds.h"
#include "aws/http.h"
#include "aws/sigv4.h"
#include "aws/xml.h"
#include "common/err.h"

#define POOL_MAX      16           /* idle connections kept (keep-alive); more threads make more */
#define BACKOFF_CAP_MS 20000       /* the SDKs' MAX_BACKOFF */

/* Services trailwatch knows by name: signing name, the id in AWS_ENDPOINT_URL_<ID>, the key in the
 * config file's services section, and for JSON-protocol services the X-Amz-Target prefix. */
typedef struct svc {
    const char *name, *env_id, *cfg_key, *target, *json_version;
} svc;

static const svc SERVICES[] = {
    {"s3", "S3", "s3", NULL, NULL},
    {"sqs", "SQS", "sqs", "AmazonSQS", "1.0"},
    {"ssm", "SSM", "ssm", "AmazonSSM", "1.1"},
    {"cloudtrail", "CLOUDTRAIL", "cloudtrail", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101", "1.1"},
    {"dynamodb", "DYNAMODB", "dynamodb", "DynamoDB_20120810", "1.0"},
    {"events", "EVENTBRIDGE", "eventbridge", "AWSEvents", "1.1"},
    {"logs", "CLOUDWATCH_LOGS", "cloudwatch_logs", "Logs_20140328", "1.1"},
    {"kms", "KMS", "kms", "TrentService", "1.1"},
    {"secretsmanager", "SECRETS_MANAGER", "secrets_manager", "secretsmanager", "1.1"},
    {"ecs", "ECS", "ecs", "AmazonEC2ContainerServiceV20141113", "1.1"},
    {"ecr", "ECR", "ecr", "AmazonEC2ContainerRegistry_V20150921", "1.1"},
    {"organizations", "ORGANIZATIONS", "organizations", "AWSOrganizationsV20161128", "1.1"},
    {"config", "CONFIG_SERVICE", "config_service", "StarlingDoveService", "1.1"},
    {"kinesis", "KINESIS", "kinesis", "Kinesis_20131202", "1.1"},
    {"codebuild", "CODEBUILD", "codebuild", "CodeBuild_20161006", "1.1"},
    {"acm", "ACM", "acm", "CertificateManager", "1.1"},
    {"cognito-idp", "COGNITO_IDENTITY_PROVIDER", "cognito_identity_provider", "AWSCognitoIdentityProviderService", "1.1"},
    {"glue", "GLUE", "glue", "AWSGlue", "1.1"},
    {"athena", "ATHENA", "athena", "AmazonAthena", "1.1"},
    {"sts", "STS", "sts", NULL, NULL},
};
#define NSERVICES (sizeof SERVICES / sizeof SERVICES[0])

typedef struct endpoint {
    char service[64];
    char url[TW_AWS_URL_MAX];
    int configured;
} endpoint;

struct tw_aws_client {
    tw_aws_creds_provider *creds;
    char region[64];
    char profile[128];
    int profile_given;
    endpoint eps[NSERVICES + TW_AWS_ENDPOINTS_MAX];
    size_t neps;
    char default_ep[TW_AWS_URL_MAX];   /* configured for all services, "" when none */
    int64_t timeout_ms, base_ms;
    unsigned max_attempts;
    pthread_mutex_t lock;
    tw_aws_conn *pool[POOL_MAX];
    size_t npool;
    _Atomic uint64_t calls;
    tw_aws_files files;                /* kept for endpoint lookups of unknown services */
    pthread_mutex_t files_lock;
    struct role *role;                 /* role_arn profiles: how to assume the role, NULL otherwise */
};

static const svc *find_svc(const char *name)
{
    for (size_t i = 0; i < NSERVICES; i++)
        if (strcmp(SERVICES[i].name, name) == 0)
            return &SERVICES[i];
    return NULL;
}

const char *tw__aws_json_target(const char *service, const char **json_version)
{
    const svc *s = find_svc(service);
    if (!s || !s->target)
        return NULL;
    if (json_version)
        *json_version = s->json_version;
    return s->target;
}

static const char *envs(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int valid_url(const char *u)
{
    return (strncmp(u, "http://", 7) == 0 && u[7]) || (strncmp(u, "https://", 8) == 0 && u[8]);
}

/* Resolves (and remembers) the endpoint of one service. */
static endpoint *resolve_endpoint(tw_aws_client *c, const char *service)
{
    for (size_t i = 0; i < c->neps; i++)
        if (strcmp(c->eps[i].service, service) == 0)
            return &c->eps[i];
    if (c->neps == sizeof c->eps / sizeof c->eps[0] || strlen(service) >= sizeof c->eps[0].service)
        return NULL;
    endpoint *e = &c->eps[c->neps];
    memset(e, 0, sizeof *e);
    snprintf(e->service, sizeof e->service, "%s", service);
    const svc *s = find_svc(service);
    char env_id[64], key[64];
    size_t i = 0;
    for (; service[i] && i < sizeof env_id - 1; i++) {
        char ch = service[i];
        env_id[i] = ch == '-' ? '_' : (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
        key[i] = ch == '-' ? '_' : ch;
    }
    env_id[i] = key[i] = '\0';
    if (c->default_ep[0]) {
        snprintf(e->url, sizeof e->url, "%s", c->default_ep);
        e->configured = 1;
    } else if (tw__awscfg_endpoint(&c->files, s ? s->env_id : env_id, s ? s->cfg_key : key, e->url,
                                   sizeof e->url) == 1) {
        e->configured = 1;
    } else {
        const char *dom = strncmp(c->region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
        snprintf(e->url, sizeof e->url, "https://%s.%s.%s", service, c->region, dom);
    }
    size_t n = strlen(e->url);
    while (n > 8 && e->url[n - 1] == '/')
        e->url[--n] = '\0';
    c->neps++;
    return e;
}

const char *tw__aws_endpoint(const tw_aws_client *cc, const char *service, int *configured)
{
    tw_aws_client *c = (tw_aws_client *)cc;
    pthread_mutex_lock(&c->files_lock);
    endpoint *e = resolve_endpoint(c, service);
    pthread_mutex_unlock(&c->files_lock);
    if (configured)
        *configured = e ? e->configured : 0;
    return e ? e->url : NULL;
}

const char *tw__aws_client_region(const tw_aws_client *c) { return c->region; }
uint64_t tw__aws_calls(const tw_aws_client *c) { return atomic_load(&c->calls); }

static tw_status client_new(const tw_aws_settings *s, unsigned depth, tw_creds_only only, int no_role,
                            tw_aws_client **out, tw_error *err);

/* ---- role_arn profiles: STS AssumeRole with the source profile's credentials ---- */

typedef struct role {
    tw_aws_client *source;             /* signs the AssumeRole calls */
    char arn[TW_AWS_ROLE_ARN_MAX + 1];
    char session[65];
    char external_id[TW_AWS_EXTERNAL_ID_MAX + 1];
    long duration_s;
    char profile[128];
} role;

static void role_free(role *r)
{
    if (!r)
        return;
    tw__aws_client_free(r->source);
    free(r);
}

typedef struct sts_creds {
    char id[129], secret[129], expiration[64];
    char *token;                       /* TW_AWS_TOKEN_MAX + 1 */
    int too_long;
} sts_creds;

static void sts_take(char *dst, size_t cap, const char *text, size_t len, int *too_long)
{
    if (len >= cap) {
        *too_long = 1;
        return;
    }
    memcpy(dst, text, len);
    dst[len] = '\0';
}

static int on_sts_xml(void *ctx, const char *path, const char *text, size_t len)
{
    sts_creds *k = ctx;
    static const char pre[] = "AssumeRoleResponse/AssumeRoleResult/Credentials/";
    if (!text || strncmp(path, pre, sizeof pre - 1) != 0)
        return 0;
    const char *leaf = path + sizeof pre - 1;
    if (strcmp(leaf, "AccessKeyId") == 0)
        sts_take(k->id, sizeof k->id, text, len, &k->too_long);
    else if (strcmp(leaf, "SecretAccessKey") == 0)
        sts_take(k->secret, sizeof k->secret, text, len, &k->too_long);
    else if (strcmp(leaf, "SessionToken") == 0)
        sts_take(k->token, TW_AWS_TOKEN_MAX + 1, text, len, &k->too_long);
    else if (strcmp(leaf, "Expiration") == 0)
        sts_take(k->expiration, sizeof k->expiration, text, len, &k->too_long);
    return 0;
}

/* The creds provider's fetch: one AssumeRole call (the query protocol: a form POST, an XML answer). */
static tw_status assume_role(void *ctx, tw_aws_cred *out, tw_error *err)
{
    tw_aws_client *c = ctx;
    const role *ro = c->role;
    tw_buf body = TW_BUF_INIT;
    tw_aws_resp resp;
    sts_creds k;
    memset(&resp, 0, sizeof resp);
    memset(&k, 0, sizeof k);
    tw_status rc = TW_ENOMEM;
    char dur[24];
    snprintf(dur, sizeof dur, "%ld", ro->duration_s);
    if (!(k.token = calloc(1, TW_AWS_TOKEN_MAX + 1)) ||
        tw__buf_puts(&body, "Action=AssumeRole&Version=2011-06-15&RoleArn=") || tw__aws_encode(&body, ro->arn, 0) ||
        tw__buf_puts(&body, "&RoleSessionName=") || tw__aws_encode(&body, ro->session, 0) ||
        tw__buf_puts(&body, "&DurationSeconds=") || tw__buf_puts(&body, dur) ||
        (ro->external_id[0] &&
         (tw__buf_puts(&body, "&ExternalId=") || tw__aws_encode(&body, ro->external_id, 0)))) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto out;
    }
    const char *hs[1] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8"};
    tw_aws_req r = {"sts", "AssumeRole", "POST", "/", NULL, hs, 1, body.data, body.len, 64 * 1024, 0, 0, 0};
    if ((rc = tw__aws_call(ro->source, &r, &resp, err))) {
        tw__err_prefix(err, "profile \"%s\": assuming role %s", ro->profile, ro->arn);
        goto out;
    }
    if ((rc = tw__xml_walk(resp.body.data ? resp.body.data : "", resp.body.len, on_sts_xml, &k, err))) {
        tw__err_prefix(err, "profile \"%s\": the AssumeRole answer", ro->profile);
        goto out;
    }
    if (k.too_long || !k.id[0] || !k.secret[0] || !k.token[0]) {
        rc = tw__err(err, TW_EAUTH, "profile \"%s\": the AssumeRole answer for %s has no usable credentials",
                     ro->profile, ro->arn);
        goto out;
    }
    if ((rc = tw__creds_set_keys(out, k.id, k.secret, k.token, "AssumeRole", err)))
        goto out;
    out->expires_ms = k.expiration[0] ? tw__aws_parse_time(k.expiration) : 0;
    if (out->expires_ms < 0)
        out->expires_ms = 0;
out:
    if (k.token) {
        OPENSSL_cleanse(k.token, TW_AWS_TOKEN_MAX + 1);
        free(k.token);
    }
    OPENSSL_cleanse(&k, sizeof k);
    if (body.data)
        OPENSSL_cleanse(body.data, body.len);
    tw__buf_free(&body);
    if (resp.body.data)
        OPENSSL_cleanse(resp.body.data, resp.body.len);
    tw__aws_resp_free(&resp);
    return rc;
}

static int valid_session_name(const char *s)
{
    size_t n = strlen(s);
    return n >= 2 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=,.@-") == n;
}

/* Reads the profile's role_arn settings (botocore's names) and builds the client that assumes it. */
static tw_status role_setup(tw_aws_client *c, const tw_aws_settings *s, unsigned depth, tw_error *err)
{
    role *ro = NULL;
    char src[128], cs[64], v[64];
    tw_status rc = TW_OK;
    if (!(ro = calloc(1, sizeof *ro)))
        return tw__err(err, TW_ENOMEM, "out of memory");
    snprintf(ro->profile, sizeof ro->profile, "%s", c->profile);
    int h = tw__awscfg_profile(&c->files, "role_arn", ro->arn, sizeof ro->arn);
    if (h == 0)
        goto out;
    if (h < 0 || strncmp(ro->arn, "arn:", 4) != 0) {
        rc = tw__err(err, TW_ECONFIG, "AWS profile \"%s\": role_arn is not an IAM role ARN", c->profile);
        goto out;
    }
    if (depth >= TW_AWS_ROLE_CHAIN_MAX) {
        rc = tw__err(err, TW_ECONFIG, "AWS profile \"%s\": more than %u role profiles lead here (a source_profile "
                     "loop?)", c->profile, TW_AWS_ROLE_CHAIN_MAX);
        goto out;
    }
    if (tw__awscfg_profile(&c->files, "mfa_serial", v, sizeof v) != 0) {
        rc = tw__err(err, TW_ECONFIG, "AWS profile \"%s\": role_arn with mfa_serial needs a code typed at a "
                     "terminal; give a server a role without MFA, or a credential_process", c->profile);
        goto out;
    }
    int hs = tw__awscfg_profile(&c->files, "source_profile", src, sizeof src);
    int hc = tw__awscfg_profile(&c->files, "credential_source", cs, sizeof cs);
    if (hs < 0 || hc < 0 || (hs > 0) == (hc > 0)) {
        rc = tw__err(err, TW_ECONFIG, "AWS profile \"%s\": role_arn needs exactly one of source_profile and "
                     "credential_source", c->profile);
        goto out;
    }
    int hn = tw__awscfg_profile(&c->files, "role_session_name", ro->session, sizeof ro->session);
    if (hn == 0)
        snprintf(ro->session, sizeof ro->session, "trailwatch-%lld", (long long)time(NULL));
    else if (hn < 0 || !valid_session_name(ro->session)) {
        rc = tw__err(err, TW_ECONFIG, "AWS profile \"%s\": role_session_name must be 2-64 characters of letters, "
                     "digits and _+=,.@-", c->profile);
        goto out;
    }
    if (tw__awscfg_profile(&c->files, "external_id", ro->external_id, sizeof ro->external_id) < 0) {
        rc = tw__err(err, TW_ECONFIG, "AWS profile \"%s\": external_id is longer than %u characters", c->profile,
                     TW_AWS_EXTERNAL_ID_MAX);
        goto out;
    }
    ro->duration_s = 3600;
    int hd = tw__awscfg_profile(&c->files, "duration_seconds", v, sizeof v);
    if (hd != 0) {
        char *end;
        ro->duration_s = hd > 0 ? strtol(v, &end, 10) : 0;
        if (hd < 0 || *end || ro->duration_s < 900 || ro->duration_s > 43200) {
            rc = tw__err(err, TW_ECONFIG, "AWS profile \"%s\": duration_seconds must be 900 to 43200", c->profile);
            goto out;
        }
    }
    tw_aws_settings ss = *s;
    ss.region = c->region;
    tw_creds_only only = TW_CREDS_CHAIN;
    if (hs > 0) {
        ss.profile = src;
    } else {
        ss.profile = c->profile;
        if (strcmp(cs, "Environment") == 0)
            only = TW_CREDS_ONLY_ENVIRONMENT;
        else if (strcmp(cs, "Ec2InstanceMetadata") == 0)
            only = TW_CREDS_ONLY_IMDS;
        else if (strcmp(cs, "EcsContainer") == 0)
            only = TW_CREDS_ONLY_CONTAINER;
        else {
            rc = tw__err(err, TW_ECONFIG, "AWS profile \"%s\": credential_source must be Environment, "
                         "Ec2InstanceMetadata or EcsContainer", c->profile);
            goto out;
        }
    }
    /* a profile naming itself as source_profile uses its own keys (botocore), not its role again;
     * credential_source reads one source for the same profile, without its role */
    int no_role = hs == 0 || strcmp(src, c->profile) == 0;
    rc = client_new(&ss, depth + 1, only, no_role, &ro->source, err);
    if (rc) {
        tw__err_prefix(err, "AWS profile \"%s\": its source", c->profile);
        goto out;
    }
    c->role = ro;
    ro = NULL;
    tw__creds_set_fetch(c->creds, assume_role, c);
out:
    role_free(ro);
    return rc;
}


tw_status tw__aws_client_new(const tw_aws_settings *s, tw_aws_client **out, tw_error *err)
{
    return client_new(s, 0, TW_CREDS_CHAIN, 0, out, err);
}

/* depth: how many role profiles lead here (source_profile chains); only: a role's credential_source;
 * no_role: the profile's role_arn is not followed (the client is that role's source). */
static tw_status client_new(const tw_aws_settings *s, unsigned depth, tw_creds_only only, int no_role,
                            tw_aws_client **out, tw_error *err)
{
    static const tw_aws_settings none = {0};
    if (!s)
        s = &none;
    *out = NULL;
    tw_aws_client *c = calloc(1, sizeof *c);
    if (!c)
        return tw__err(err, TW_ENOMEM, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->files_lock, NULL);
    c->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : 10000;
    c->base_ms = s->retry_base_ms > 0 ? s->retry_base_ms : 1000;
    c->max_attempts = s->max_attempts ? s->max_attempts : 3;
    const char *ma = envs("AWS_MAX_ATTEMPTS");
    if (!s->max_attempts && ma && atoi(ma) > 0 && atoi(ma) <= 20)
        c->max_attempts = (unsigned)atoi(ma);
    tw_status rc = tw__awscfg_load(&c->files, s->profile, err);
    if (rc)
        goto fail;
    snprintf(c->profile, sizeof c->profile, "%s", c->files.profile);
    c->profile_given = c->files.profile_given;
    const char *region = s->region ? s->region : envs("AWS_REGION");
    if (!region)
        region = envs("AWS_DEFAULT_REGION");
    char pregion[64];
    if (!region && tw__awscfg_profile(&c->files, "region", pregion, sizeof pregion) == 1)
        region = pregion;
    if (!region)
        region = "us-east-1";
    if (strlen(region) >= sizeof c->region || strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(region)) {
        rc = tw__err(err, TW_ECONFIG, "AWS region \"%.64s\" is not a region name", region);
        goto fail;
    }
    snprintf(c->region, sizeof c->region, "%s", region);
    if (s->endpoint_url) {
        if (!valid_url(s->endpoint_url) || strlen(s->endpoint_url) >= TW_AWS_URL_MAX) {
            rc = tw__err(err, TW_ECONFIG, "aws endpoint_url must be an http(s) URL");
            goto fail;
        }
        snprintf(c->default_ep, sizeof c->default_ep, "%s", s->endpoint_url);
    }
    if (s->nendpoints > TW_AWS_ENDPOINTS_MAX) {
        rc = tw__err(err, TW_ELIMIT, "more than %u aws endpoints", TW_AWS_ENDPOINTS_MAX);
        goto fail;
    }
    for (size_t i = 0; i < s->nendpoints; i++) {
        const tw_aws_endpoint *e = &s->endpoints[i];
        if (!e->service || !*e->service || strlen(e->service) >= sizeof c->eps[0].service || !e->url ||
            !valid_url(e->url) || strlen(e->url) >= TW_AWS_URL_MAX) {
            rc = tw__err(err, TW_ECONFIG, "aws endpoints.%.64s must be an http(s) URL", e->service ? e->service : "?");
            goto fail;
        }
        endpoint *d = &c->eps[c->neps++];
        snprintf(d->service, sizeof d->service, "%s", e->service);
        snprintf(d->url, sizeof d->url, "%s", e->url);
        size_t n = strlen(d->url);
        while (n > 8 && d->url[n - 1] == '/')
            d->url[--n] = '\0';
        d->configured = 1;
    }
    if ((rc = tw__creds_new(&c->files, s->access_key_id, s->secret_access_key, s->session_token, 1000, &c->creds,
                            err)))
        goto fail;
    if (only != TW_CREDS_CHAIN)
        tw__creds_set_only(c->creds, only);
    else if (!no_role && !s->access_key_id && !s->secret_access_key && (rc = role_setup(c, s, depth, err)))
        goto fail;
    *out = c;
    return TW_OK;
fail:
    tw__aws_client_free(c);
    return rc;
}

void tw__aws_client_free(tw_aws_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->npool; i++)
        tw__aws_conn_free(c->pool[i]);
    tw__creds_free(c->creds);
    role_free(c->role);
    tw__awscfg_free(&c->files);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->files_lock);
    free(c);
}

static tw_aws_conn *take_conn(tw_aws_client *c, tw_error *err)
{
    tw_aws_conn *k = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->npool)
        k = c->pool[--c->npool];
    pthread_mutex_unlock(&c->lock);
    if (!k && tw__aws_conn_new(&k, err))
        return NULL;
    return k;
}

static void give_conn(tw_aws_client *c, tw_aws_conn *k)
{
    pthread_mutex_lock(&c->lock);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = k;
        k = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    tw__aws_conn_free(k);
}

tw_status tw__aws_encode(tw_buf *out, const char *s, int keep_slash)
{
    return tw__sigv4_uri_encode(out, s, strlen(s), keep_slash);
}

void tw__aws_resp_free(tw_aws_resp *r)
{
    tw__buf_free(&r->body);
}

/* ---- error answers ---- */

typedef struct xml_err {
    char code[128];
    char msg[256];
} xml_err;

static int on_xml_err(void *ctx, const char *path, const char *text, size_t len)
{
    xml_err *x = ctx;
    const char *leaf = strrchr(path, '/');
    leaf = leaf ? leaf + 1 : path;
    char *dst = strcmp(leaf, "Code") == 0 ? x->code : strcmp(leaf, "Message") == 0 ? x->msg : NULL;
    size_t cap = dst == x->code ? sizeof x->code : sizeof x->msg;
    if (dst && text && !dst[0])
        snprintf(dst, cap, "%.*s", (int)(len < cap ? len : cap - 1), text);
    return 0;
}

/* The error code and message of a non-2xx answer: JSON {"__type","message"} or XML <Error>. */
static void parse_error(const tw_buf *b, char *code, size_t codesz, char *msg, size_t msgsz)
{
    code[0] = msg[0] = '\0';
    const char *p = b->data ? b->data : "";
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    if (*p == '{') {
        tw_json_doc *doc = NULL;
        if (tw_json_parse(b->data, b->len, NULL, &doc, NULL) == TW_OK) {
            const tw_json *r = tw_json_root(doc);
            const char *keys[] = {"__type", "code", "Code"};
            for (size_t i = 0; i < 3 && !code[0]; i++) {
                const tw_json *v = tw_json_get(r, keys[i]);
                const char *s = tw_json_typeof(v) == TW_JSON_STRING ? tw_json_string(v, NULL) : NULL;
                if (s) {
                    const char *h = strrchr(s, '#');
                    snprintf(code, codesz, "%s", h ? h + 1 : s);
                }
            }
            const char *mkeys[] = {"message", "Message", "errorMessage"};
            for (size_t i = 0; i < 3 && !msg[0]; i++) {
                const tw_json *v = tw_json_get(r, mkeys[i]);
                if (tw_json_typeof(v) == TW_JSON_STRING)
                    snprintf(msg, msgsz, "%s", tw_json_string(v, NULL));
            }
        }
        tw_json_doc_free(doc);
    } else if (*p == '<') {
        xml_err x = {"", ""};
        tw__xml_walk(b->data, b->len, on_xml_err, &x, NULL);
        snprintf(code, codesz, "%s", x.code);
        snprintf(msg, msgsz, "%s", x.msg);
    }
    /* what goes into messages stays printable */
    for (char *q = msg; *q; q++)
        if ((unsigned char)*q < 0x20)
            *q = ' ';
    for (char *q = code; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == '"')
            *q = '_';
}

static int in_list(const char *code, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(code, *list) == 0)
            return 1;
    return 0;
}

static const char *const THROTTLING[] = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException", NULL};
static const char *const TRANSIENT[] = {"RequestTimeout", "RequestTimeoutException", "InternalError",
                                        "InternalFailure", "ServiceUnavailable", NULL};
static const char *const AUTH[] = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "UnrecognizedClientException", "InvalidSignatureException",
    "AccessDenied", "AccessDeniedException", "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
    "MissingAuthenticationToken", "MissingAuthenticationTokenException", "IncompleteSignature",
    "IncompleteSignatureException", "AuthFailure", "InvalidToken", "RequestExpired", "UnauthorizedOperation", NULL};
static const char *const EXPIRED[] = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", NULL};
static const char *const NOT_FOUND[] = {"NoSuchBucket", "NoSuchKey", "ResourceNotFoundException", "ParameterNotFound",
                                        "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue",
                                        "TrailNotFoundException", "NotFound", NULL};

static int retryable(long status, const char *code)
{
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504 ||
           in_list(code, THROTTLING) || in_list(code, TRANSIENT);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Full jitter, as the SDKs' standard mode: rand(0,1) * min(base * 2^attempt, 20 s). */
static int64_t backoff_ms(const tw_aws_client *c, unsigned attempt)
{
    int64_t cap = c->base_ms;
    for (unsigned i = 0; i < attempt && cap < BACKOFF_CAP_MS; i++)
        cap *= 2;
    if (cap > BACKOFF_CAP_MS)
        cap = BACKOFF_CAP_MS;
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (uint32_t)rand();
    return (int64_t)((double)r / 4294967296.0 * (double)cap);
}

/* ---- one signed exchange ---- */

/* "http://h:1/base" -> host "h:1", base path "/base" (no trailing '/'). */
static int split_url(const char *url, char *host, size_t hostsz, const char **base)
{
    const char *a = strstr(url, "://");
    if (!a)
        return 0;
    a += 3;
    size_t n = strcspn(a, "/?#");
    if (!n || n >= hostsz)
        return 0;
    memcpy(host, a, n);
    host[n] = '\0';
    *base = a + n;
    return 1;
}

typedef struct built {
    char host[512];
    tw_buf url;
    const char *lines[TW_SIGV4_MAX_SIGNED_HEADERS + TW_SIGV4_ADDED_MAX];
    char *owned[TW_SIGV4_MAX_SIGNED_HEADERS + TW_SIGV4_ADDED_MAX];
    size_t nlines, nowned;
} built;

static void built_free(built *b)
{
    tw__buf_free(&b->url);
    for (size_t i = 0; i < b->nowned; i++) {
        OPENSSL_cleanse(b->owned[i], strlen(b->owned[i]));
        free(b->owned[i]);
    }
    b->nowned = 0;
}

static tw_status sign_and_build(tw_aws_client *c, const tw_aws_req *r, const endpoint *ep, const tw_aws_cred *cred,
                                built *b, tw_error *err)
{
    const char *base;
    if (!split_url(ep->url, b->host, sizeof b->host, &base))
        return tw__err(err, TW_ECONFIG, "%s: endpoint URL %s has no host", r->service, ep->url);
    size_t bl = strcspn(base, "?#");
    while (bl && base[bl - 1] == '/')
        bl--;
    const char *path = r->path && *r->path ? r->path : "/";
    tw__buf_init(&b->url, TW_AWS_URL_MAX * 8);
    tw_buf fullpath = TW_BUF_INIT;
    tw_status rc = tw__buf_printf(&fullpath, "%.*s%s", (int)bl, base, path);
    if (rc)
        goto out;
    tw_sigv4_header hs[TW_SIGV4_MAX_SIGNED_HEADERS];
    size_t nh = 0;
    char *hdrcopy[TW_SIGV4_MAX_SIGNED_HEADERS];
    size_t ncopy = 0;
    if (r->nheaders + 1 > TW_SIGV4_MAX_SIGNED_HEADERS - 3) {
        rc = tw__err(err, TW_ELIMIT, "%s %s: too many headers", r->service, r->action);
        goto out;
    }
    hs[nh++] = (tw_sigv4_header){"Host", b->host};
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *colon = strchr(r->headers[i], ':');
        char *name = colon ? strndup(r->headers[i], (size_t)(colon - r->headers[i])) : NULL;
        if (!name) {
            rc = tw__err(err, TW_EINVAL, "%s %s: malformed header", r->service, r->action);
            goto hdr_out;
        }
        hdrcopy[ncopy++] = name;
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        hs[nh++] = (tw_sigv4_header){name, v};
    }
    tw_sigv4_request sreq = {r->method, fullpath.data, r->query, hs, nh, r->body, r->body_len};
    tw_sigv4_credentials sc = {cred->access_key_id, cred->secret_access_key, cred->session_token};
    tw_sigv4_signer sg = {c->region, r->service, time(NULL), r->s3};
    tw_sigv4_signed sig;
    if ((rc = tw__sigv4_sign(&sreq, &sc, &sg, &sig, err)))
        goto hdr_out;
    if ((rc = tw__buf_printf(&b->url, "%.*s%s%s%s", (int)(base - ep->url), ep->url, fullpath.data,
                            r->query && *r->query ? "?" : "", r->query ? r->query : "")))
        goto hdr_out;
    tw_sigv4_header added[TW_SIGV4_ADDED_MAX];
    size_t na = tw__sigv4_added_headers(&sig, added);
    for (size_t i = 0; i < nh + na; i++) {
        const tw_sigv4_header *h = i < nh ? &hs[i] : &added[i - nh];
        size_t len = strlen(h->name) + strlen(h->value) + 3;
        char *line = malloc(len);
        if (!line) {
            rc = tw__err(err, TW_ENOMEM, "out of memory");
            break;
        }
        snprintf(line, len, "%s: %s", h->name, h->value);
        b->owned[b->nowned++] = line;
        b->lines[b->nlines++] = line;
    }
    OPENSSL_cleanse(&sig, sizeof sig);
hdr_out:
    for (size_t i = 0; i < ncopy; i++)
        free(hdrcopy[i]);
out:
    tw__buf_free(&fullpath);
    return rc;
}

static tw_status status_for(long http, const char *code)
{
    if (in_list(code, AUTH) || (!*code && (http == 401 || http == 403)))
        return TW_EAUTH;
    if (in_list(code, NOT_FOUND) || (!*code && http == 404))
        return TW_ENOTFOUND;
    return TW_EHTTP;
}

tw_status tw__aws_call(tw_aws_client *c, const tw_aws_req *r, tw_aws_resp *resp, tw_error *err)
{
    memset(resp, 0, sizeof *resp);
    tw__buf_init(&resp->body, r->max_response ? r->max_response : TW_AWS_RESP_MAX);
    const char *action = r->action ? r->action : r->method;
    pthread_mutex_lock(&c->files_lock);
    endpoint *ep = resolve_endpoint(c, r->service);
    pthread_mutex_unlock(&c->files_lock);
    if (!ep)
        return tw__err(err, TW_ELIMIT, "%s %s: too many services", r->service, action);
    tw_aws_conn *k = take_conn(c, err);
    if (!k)
        return TW_ENOMEM;
    int64_t timeout = r->timeout_ms > 0 ? r->timeout_ms : c->timeout_ms;
    int refreshed = 0;
    tw_status rc = TW_OK;
    for (unsigned attempt = 0;; attempt++) {
        resp->attempts = attempt + 1;
        if (r->deadline_ms) {
            int64_t left = r->deadline_ms - mono_ms();
            if (left <= 0) {
                rc = tw__err(err, TW_ETIMEOUT, "%s %s: no answer within the time allowed (%u attempts)", r->service,
                             action, attempt);
                break;
            }
            if (left < timeout)
                timeout = left;
        }
        tw_aws_cred cred;
        if ((rc = tw__creds_get(c->creds, &cred, err))) {
            tw__err_prefix(err, "%s %s", r->service, action);
            break;
        }
        built b;
        memset(&b, 0, sizeof b);
        rc = sign_and_build(c, r, ep, &cred, &b, err);
        tw__creds_wipe(&cred);
        tw_aws_http_resp hr;
        if (!rc) {
            atomic_fetch_add(&c->calls, 1);
            rc = tw__aws_http(k, r->method, b.url.data, b.lines, b.nlines, r->body, r->body_len, timeout, &resp->body,
                              &hr, err);
        }
        built_free(&b);
        if (rc == TW_EHTTP || rc == TW_ETIMEOUT) {
            /* no answer: the endpoint is down or far; retried like a 5xx */
            int64_t pause = backoff_ms(c, attempt);
            if (attempt + 1 >= c->max_attempts || (r->deadline_ms && mono_ms() + pause >= r->deadline_ms)) {
                if (rc == TW_ETIMEOUT)
                    tw__err_prefix(err, "%s %s: timed out after %u attempts", r->service, action, attempt + 1);
                else
                    tw__err_prefix(err, "%s %s: cannot reach the endpoint after %u attempts", r->service, action,
                                   attempt + 1);
                break;
            }
            sleep_ms(pause);
            continue;
        }
        if (rc)
            break;
        resp->status = hr.status;
        memcpy(resp->request_id, hr.request_id, sizeof resp->request_id);
        memcpy(resp->meta_signature, hr.meta_signature, sizeof resp->meta_signature);
        if (hr.status >= 200 && hr.status < 300)
            break;
        char msg[256];
        parse_error(&resp->body, resp->error_code, sizeof resp->error_code, msg, sizeof msg);
        if (in_list(resp->error_code, EXPIRED) && !refreshed) {
            refreshed = 1;
            tw__creds_invalidate(c->creds);
            continue;
        }
        int64_t pause = backoff_ms(c, attempt);
        if (retryable(hr.status, resp->error_code) && attempt + 1 < c->max_attempts &&
            !(r->deadline_ms && mono_ms() + pause >= r->deadline_ms)) {
            sleep_ms(pause);
            continue;
        }
        char tries[32] = "";
        if (attempt)
            snprintf(tries, sizeof tries, ", %u attempts", attempt + 1);
        rc = tw__err(err, status_for(hr.status, resp->error_code), "%s %s: %s%s%s (HTTP %ld%s)", r->service, action,
                     resp->error_code[0] ? resp->error_code : "error", msg[0] ? ": " : "", msg, hr.status, tries);
        break;
    }
    give_conn(c, k);
    return rc;
}

/* ---- JSON protocol ---- */

tw_status tw__aws_json(tw_aws_client *c, const char *service, const char *action, const char *target_prefix,
                       const char *body, size_t len, int64_t timeout_ms, tw_json_doc **out, tw_error *err)
{
    *out = NULL;
    const char *ver = "1.1";
    const char *prefix = target_prefix ? target_prefix : tw__aws_json_target(service, &ver);
    if (!prefix)
        return tw__err(err, TW_EINVAL, "%s %s: not a known JSON-protocol service (give its target prefix)", service,
                       action);
    char target[256], ctype[64];
    if (snprintf(target, sizeof target, "X-Amz-Target: %s.%s", prefix, action) >= (int)sizeof target)
        return tw__err(err, TW_EINVAL, "%s: action name too long", service);
    snprintf(ctype, sizeof ctype, "Content-Type: application/x-amz-json-%s", ver);
    const char *hs[3] = {target, ctype, "x-amzn-query-mode: true"};
    if (!body) {
        body = "{}";
        len = 2;
    }
    tw_aws_req r = {service, action, "POST", "/", NULL, hs, strcmp(service, "sqs") == 0 ? 3u : 2u, body, len, 0,
                    timeout_ms, 0, timeout_ms > 0 ? mono_ms() + timeout_ms : 0};
    tw_aws_resp resp;
    tw_status rc = tw__aws_call(c, &r, &resp, err);
    if (!rc) {
        tw_limits lim;
        tw_limits_default(&lim);
        lim.event_max = TW_AWS_RESP_MAX;
        tw_error perr;
        if (tw_json_parse(resp.body.data ? resp.body.data : "{}", resp.body.data ? resp.body.len : 2, &lim, out, &perr))
            rc = tw__err(err, TW_EJSON, "%s %s: the answer is not JSON: %s", service, action, perr.msg);
    }
    tw__aws_resp_free(&resp);
    return rc;
}

/* ---- the environment of child processes ---- */

static tw_status push_env(char ***arr, size_t *n, size_t *cap, const char *name, const char *value)
{
    if (*n + 2 > *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **p = realloc(*arr, nc * sizeof *p);
        if (!p)
            return TW_ENOMEM;
        *arr = p;
        *cap = nc;
    }
    size_t len = strlen(name) + strlen(value) + 2;
    char *s = malloc(len);
    if (!s)
        return TW_ENOMEM;
    snprintf(s, len, "%s=%s", name, value);
    (*arr)[(*n)++] = s;
    (*arr)[*n] = NULL;
    return TW_OK;
}

tw_status tw__aws_child_env(tw_aws_client *c, char ***out, size_t *n, tw_error *err)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    tw_status rc = push_env(out, n, &cap, "AWS_REGION", c->region);
    if (!rc)
        rc = push_env(out, n, &cap, "AWS_DEFAULT_REGION", c->region);
    if (!rc && c->default_ep[0])
        rc = push_env(out, n, &cap, "AWS_ENDPOINT_URL", c->default_ep);
    /* Every service with a configured endpoint: the known ones and those named in the configuration. */
    for (size_t i = 0; !rc && i < NSERVICES; i++)
        tw__aws_endpoint(c, SERVICES[i].name, NULL);
    pthread_mutex_lock(&c->files_lock);
    for (size_t i = 0; !rc && i < c->neps; i++) {
        if (!c->eps[i].configured || (c->default_ep[0] && strcmp(c->eps[i].url, c->default_ep) == 0))
            continue;
        const svc *s = find_svc(c->eps[i].service);
        char name[96], id[64];
        size_t j = 0;
        for (const char *p = c->eps[i].service; *p && j < sizeof id - 1; p++)
            id[j++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        id[j] = '\0';
        snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", s ? s->env_id : id);
        rc = push_env(out, n, &cap, name, c->eps[i].url);
    }
    pthread_mutex_unlock(&c->files_lock);
    tw_aws_cred cred;
    tw_error cerr;
    if (!rc && tw__creds_get(c->creds, &cred, &cerr) == TW_OK) {
        rc = push_env(out, n, &cap, "AWS_ACCESS_KEY_ID", cred.access_key_id);
        if (!rc)
            rc = push_env(out, n, &cap, "AWS_SECRET_ACCESS_KEY", cred.secret_access_key);
        if (!rc && cred.session_token[0])
            rc = push_env(out, n, &cap, "AWS_SESSION_TOKEN", cred.session_token);
        tw__creds_wipe(&cred);
    }
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            free((*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
        return tw__err(err, rc, "out of memory building the AWS environment");
    }
    return TW_OK;
}
