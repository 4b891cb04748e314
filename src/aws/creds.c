/* aws/creds.c: the credentials chain (environment, shared files, credential_process, ECS, IMDSv2). */
#include "aws/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "aws/http.h"
#include "common/err.h"
#include "trailwatch/json.h"

extern char **environ;

#define PROCESS_TIMEOUT_MS 60000   /* credential_process: an SSO helper may wait for a browser */

struct tw_aws_creds_provider {
    pthread_mutex_t lock;
    tw_aws_cred cached;
    int have;
    int explicit_keys;
    int64_t md_timeout_ms;
    char process[TW_AWSCFG_VALUE_MAX + 1]; /* the profile's credential_process, "" when none */
    tw_aws_cred profile_keys;      /* keys found in the shared files, if any */
    int have_profile_keys;
    char profile[128];
    int profile_given, profile_exists;
    int64_t failed_until_ms;       /* after a failed resolution: answer with failed_msg until then */
    tw_error failed;
    tw_creds_fetch_fn fetch;       /* role_arn profiles: AssumeRole through the source's client */
    void *fetch_ctx;
    tw_creds_only only;            /* credential_source: one source instead of the chain */
};

/* A chain that found nothing is asked again only after this: every exec delivery and enrichment
 * would otherwise wait on the instance metadata service of a machine that has none. */
#define FAILURE_HOLD_MS 30000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *envs(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

void tw__creds_wipe(tw_aws_cred *c) { OPENSSL_cleanse(c, sizeof *c); }

tw_status tw__creds_set_keys(tw_aws_cred *c, const char *id, const char *secret, const char *token, const char *what,
                          tw_error *err)
{
    memset(c, 0, sizeof *c);
    if (!id || !*id || !secret || !*secret)
        return tw__err(err, TW_EAUTH, "%s: an access key id and a secret access key are both needed", what);
    if (snprintf(c->access_key_id, sizeof c->access_key_id, "%s", id) >= (int)sizeof c->access_key_id ||
        snprintf(c->secret_access_key, sizeof c->secret_access_key, "%s", secret) >=
            (int)sizeof c->secret_access_key ||
        snprintf(c->session_token, sizeof c->session_token, "%s", token ? token : "") >=
            (int)sizeof c->session_token) {
        tw__creds_wipe(c);
        return tw__err(err, TW_ETOOBIG, "%s: a key or token is longer than trailwatch accepts", what);
    }
    return TW_OK;
}

int64_t tw__aws_parse_time(const char *s)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int h = atoi(p + 1), m = atoi(p + 4);
        off = (int64_t)(h * 3600 + m * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : ((int64_t)t - off) * 1000;
}

static const char *jstr(const tw_json *o, const char *k)
{
    const tw_json *v = tw_json_get(o, k);
    return tw_json_typeof(v) == TW_JSON_STRING ? tw_json_string(v, NULL) : NULL;
}

tw_status tw__creds_parse_doc(const char *text, size_t len, const char *what, tw_aws_cred *out, tw_error *err)
{
    tw_json_doc *doc = NULL;
    tw_limits lim;
    tw_limits_default(&lim);
    lim.event_max = TW_AWS_CREDS_DOC_MAX;
    lim.json_depth = 16;
    tw_error perr;
    if (tw_json_parse(text, len, &lim, &doc, &perr))
        return tw__err(err, TW_EAUTH, "%s: the answer is not a credentials document (%s)", what, perr.msg);
    const tw_json *r = tw_json_root(doc);
    tw_status rc;
    const char *code = jstr(r, "Code");
    if (code && strcmp(code, "Success") != 0) {
        rc = tw__err(err, TW_EAUTH, "%s: the endpoint answered Code %.64s", what, code);
        goto out;
    }
    const char *token = jstr(r, "SessionToken");
    if (!token)
        token = jstr(r, "Token");
    if ((rc = tw__creds_set_keys(out, jstr(r, "AccessKeyId"), jstr(r, "SecretAccessKey"), token, what, err)))
        goto out;
    const char *exp = jstr(r, "Expiration");
    if (exp && *exp) {
        out->expires_ms = tw__aws_parse_time(exp);
        if (out->expires_ms < 0) {
            tw__creds_wipe(out);
            rc = tw__err(err, TW_EAUTH, "%s: Expiration is not an ISO 8601 time", what);
        }
    }
out:
    tw_json_doc_free(doc);
    return rc;
}

/* ---- credential_process ---- */

static tw_status run_process(const char *cmd, tw_aws_cred *out, tw_error *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return tw__err(err, TW_ESYS, "credential_process: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    char sh[] = "/bin/sh", dash_c[] = "-c";
    char *argv[] = {sh, dash_c, (char *)cmd, NULL};
    pid_t pid;
    int sr = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (sr != 0) {
        close(fds[0]);
        return tw__err(err, TW_ESYS, "credential_process: cannot start /bin/sh: %s", strerror(sr));
    }
    tw_buf b;
    tw__buf_init(&b, TW_AWS_CREDS_DOC_MAX);
    tw_status rc = TW_OK;
    int64_t deadline = now_ms() + PROCESS_TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {fds[0], POLLIN, 0};
        if (left <= 0) {
            rc = tw__err(err, TW_ETIMEOUT, "credential_process: no answer within %d s", PROCESS_TIMEOUT_MS / 1000);
            kill(pid, SIGKILL);
            break;
        }
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        char tmp[4096];
        ssize_t got = r > 0 ? read(fds[0], tmp, sizeof tmp) : 0;
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (tw__buf_append(&b, tmp, (size_t)got)) {
            rc = tw__err(err, TW_ETOOBIG, "credential_process: more than %u bytes of output", TW_AWS_CREDS_DOC_MAX);
            kill(pid, SIGKILL);
            break;
        }
    }
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!rc && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
        rc = tw__err(err, TW_EAUTH, "credential_process: the command failed (exit status %d)",
                     WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    if (!rc)
        rc = tw__creds_parse_doc(b.data ? b.data : "", b.len, "credential_process", out, err);
    if (b.data)
        OPENSSL_cleanse(b.data, b.len);
    tw__buf_free(&b);
    return rc;
}

/* ---- metadata endpoints ---- */

static tw_status md_request(tw_aws_conn *c, const char *method, const char *url, const char *hdr, int64_t timeout,
                            tw_buf *out, long *status, tw_error *err)
{
    tw_aws_http_resp r;
    const char *hs[1] = {hdr};
    tw_status rc = tw__aws_http(c, method, url, hs, hdr ? 1 : 0, strcmp(method, "PUT") == 0 ? "" : NULL, 0,
                                timeout, out, &r, err);
    *status = r.status;
    return rc;
}

static tw_status container_creds(const tw_aws_creds_provider *p, tw_aws_cred *out, tw_error *err)
{
    const char *rel = envs("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), *full = envs("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    char url[2048], hdr[4200] = "";
    if (rel)
        snprintf(url, sizeof url, "http://169.254.170.2%s", rel);
    else
        snprintf(url, sizeof url, "%s", full);
    /* As the SDKs: plain http only to loopback or the ECS/EKS link-local agents (the token and the
     * credentials would otherwise cross a network in the clear). */
    if (!rel && strncmp(url, "https://", 8) != 0) {
        static const char *const ok[] = {"127.0.0.1", "localhost", "[::1]", "169.254.170.2", "169.254.170.23",
                                         "[fd00:ec2::23]", NULL};
        const char *h = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
        size_t hl = h ? strcspn(h, ":/") : 0;
        if (h && *h == '[')
            hl = strcspn(h, "]") + 1;
        int allowed = 0;
        for (size_t i = 0; h && ok[i] && !allowed; i++)
            allowed = strlen(ok[i]) == hl && strncmp(h, ok[i], hl) == 0;
        if (!allowed)
            return tw__err(err, TW_EAUTH, "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to loopback "
                                          "or the container agent (169.254.170.2/.23)");
    }
    const char *tok = envs("AWS_CONTAINER_AUTHORIZATION_TOKEN"), *tokfile = envs("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    char fromfile[4096];
    if (!tok && tokfile) {
        FILE *f = fopen(tokfile, "r");
        size_t n = f ? fread(fromfile, 1, sizeof fromfile - 1, f) : 0;
        if (f)
            fclose(f);
        if (!f)
            return tw__err(err, TW_EAUTH, "container credentials: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        while (n && (fromfile[n - 1] == '\n' || fromfile[n - 1] == '\r'))
            n--;
        fromfile[n] = '\0';
        tok = fromfile;
    }
    if (tok)
        snprintf(hdr, sizeof hdr, "Authorization: %s", tok);
    tw_aws_conn *c = NULL;
    tw_buf b;
    tw__buf_init(&b, TW_AWS_CREDS_DOC_MAX);
    long st = 0;
    tw_status rc = tw__aws_conn_new(&c, err);
    if (!rc)
        rc = md_request(c, "GET", url, tok ? hdr : NULL, p->md_timeout_ms, &b, &st, err);
    if (!rc && st != 200)
        rc = tw__err(err, TW_EAUTH, "container credentials endpoint %s answered HTTP %ld", url, st);
    if (!rc)
        rc = tw__creds_parse_doc(b.data ? b.data : "", b.len, "container credentials", out, err);
    OPENSSL_cleanse(hdr, sizeof hdr);
    OPENSSL_cleanse(fromfile, sizeof fromfile);
    if (b.data)
        OPENSSL_cleanse(b.data, b.len);
    tw__buf_free(&b);
    tw__aws_conn_free(c);
    return rc;
}

static tw_status imds_creds(const tw_aws_creds_provider *p, tw_aws_cred *out, tw_error *err)
{
    const char *base = envs("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!base)
        base = "http://169.254.169.254";
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    char url[2048], hdr[200], role[256];
    tw_aws_conn *c = NULL;
    tw_buf b;
    tw__buf_init(&b, TW_AWS_CREDS_DOC_MAX);
    long st = 0;
    tw_status rc = tw__aws_conn_new(&c, err);
    if (rc)
        goto out;
    snprintf(url, sizeof url, "%.*s/latest/api/token", (int)bl, base);
    if ((rc = md_request(c, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 21600", p->md_timeout_ms, &b, &st,
                         err)))
        goto out;
    if (st != 200 || b.len == 0 || b.len > 120) {
        rc = tw__err(err, TW_EAUTH, "instance metadata (IMDSv2) at %.*s: no session token (HTTP %ld)", (int)bl, base,
                     st);
        goto out;
    }
    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", b.data);
    snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/", (int)bl, base);
    if ((rc = md_request(c, "GET", url, hdr, p->md_timeout_ms, &b, &st, err)))
        goto out;
    size_t rl = strcspn(b.data ? b.data : "", "\r\n");
    if (st != 200 || rl == 0 || rl >= sizeof role) {
        rc = tw__err(err, TW_EAUTH, "instance metadata at %.*s: no IAM role attached to this instance (HTTP %ld)",
                     (int)bl, base, st);
        goto out;
    }
    memcpy(role, b.data, rl);
    role[rl] = '\0';
    snprintf(url, sizeof url, "%.*s/latest/meta-data/iam/security-credentials/%s", (int)bl, base, role);
    if ((rc = md_request(c, "GET", url, hdr, p->md_timeout_ms, &b, &st, err)))
        goto out;
    if (st != 200) {
        rc = tw__err(err, TW_EAUTH, "instance metadata: credentials of role %s: HTTP %ld", role, st);
        goto out;
    }
    rc = tw__creds_parse_doc(b.data ? b.data : "", b.len, "instance metadata", out, err);
out:
    OPENSSL_cleanse(hdr, sizeof hdr);
    if (b.data)
        OPENSSL_cleanse(b.data, b.len);
    tw__buf_free(&b);
    tw__aws_conn_free(c);
    return rc;
}

/* ---- the chain ---- */

tw_status tw__creds_new(const tw_aws_files *files, const char *explicit_id, const char *explicit_secret,
                        const char *explicit_token, int64_t metadata_timeout_ms, tw_aws_creds_provider **out,
                        tw_error *err)
{
    *out = NULL;
    tw_aws_creds_provider *p = calloc(1, sizeof *p);
    if (!p)
        return tw__err(err, TW_ENOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    p->md_timeout_ms = metadata_timeout_ms > 0 ? metadata_timeout_ms : 1000;
    snprintf(p->profile, sizeof p->profile, "%s", files->profile);
    p->profile_given = files->profile_given;
    p->profile_exists = tw__awscfg_has_profile(files);
    tw_status rc = TW_OK;
    if (explicit_id || explicit_secret) {
        if ((rc = tw__creds_set_keys(&p->cached, explicit_id, explicit_secret, explicit_token, "aws credentials in the configuration",
                           err)))
            goto fail;
        p->cached.source = "config";
        p->have = p->explicit_keys = 1;
        *out = p;
        return TW_OK;
    }
    if (p->profile_given && !p->profile_exists && !envs("AWS_ACCESS_KEY_ID")) {
        rc = tw__err(err, TW_ECONFIG, "AWS profile \"%s\" is not in the AWS config or credentials file", p->profile);
        goto fail;
    }
    char id[129], secret[129], *token = malloc(TW_AWS_TOKEN_MAX + 1);
    if (!token) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto fail;
    }
    int hi = tw__awscfg_profile(files, "aws_access_key_id", id, sizeof id);
    int hs = tw__awscfg_profile(files, "aws_secret_access_key", secret, sizeof secret);
    int ht = tw__awscfg_profile(files, "aws_session_token", token, TW_AWS_TOKEN_MAX + 1);
    if (hi < 0 || hs < 0 || ht < 0)
        rc = tw__err(err, TW_ETOOBIG, "AWS profile \"%s\": a key or token is longer than trailwatch accepts", p->profile);
    else if (hi > 0 || hs > 0)
        rc = tw__creds_set_keys(&p->profile_keys, hi > 0 ? id : NULL, hs > 0 ? secret : NULL, ht > 0 ? token : NULL,
                      "AWS profile keys", err);
    p->have_profile_keys = !rc && (hi > 0 || hs > 0);
    OPENSSL_cleanse(id, sizeof id);
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(token, TW_AWS_TOKEN_MAX + 1);
    free(token);
    if (rc)
        goto fail;
    p->profile_keys.source = "shared-file";
    if (tw__awscfg_profile(files, "credential_process", p->process, sizeof p->process) < 0) {
        rc = tw__err(err, TW_ETOOBIG, "AWS profile \"%s\": credential_process is too long", p->profile);
        goto fail;
    }
    *out = p;
    return TW_OK;
fail:
    tw__creds_free(p);
    return rc;
}

void tw__creds_free(tw_aws_creds_provider *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    OPENSSL_cleanse(p, sizeof *p);
    free(p);
}

static int md_disabled(void)
{
    const char *v = envs("AWS_EC2_METADATA_DISABLED");
    return v && strcasecmp(v, "true") == 0;
}

/* Walks the chain; the first source that has credentials wins. */
static tw_status resolve_only(tw_aws_creds_provider *p, tw_aws_cred *c, tw_error *err)
{
    tw_status rc;
    switch (p->only) {
    case TW_CREDS_ONLY_ENVIRONMENT: {
        const char *id = envs("AWS_ACCESS_KEY_ID"), *secret = envs("AWS_SECRET_ACCESS_KEY");
        if (!id && !secret)
            return tw__err(err, TW_EAUTH, "profile \"%s\": credential_source Environment, but AWS_ACCESS_KEY_ID is "
                           "not set", p->profile);
        rc = tw__creds_set_keys(c, id, secret, envs("AWS_SESSION_TOKEN"), "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                                err);
        c->source = "environment";
        return rc;
    }
    case TW_CREDS_ONLY_CONTAINER:
        rc = container_creds(p, c, err);
        c->source = "container";
        return rc;
    default:
        rc = imds_creds(p, c, err);
        c->source = "imds";
        return rc;
    }
}

static tw_status resolve(tw_aws_creds_provider *p, tw_aws_cred *c, tw_error *err)
{
    if (p->only != TW_CREDS_CHAIN)
        return resolve_only(p, c, err);
    const char *id = envs("AWS_ACCESS_KEY_ID"), *secret = envs("AWS_SECRET_ACCESS_KEY");
    if (id || secret) {
        tw_status rc = tw__creds_set_keys(c, id, secret, envs("AWS_SESSION_TOKEN"), "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", err);
        c->source = "environment";
        return rc;
    }
    if (p->fetch) {
        /* botocore's order: the assume-role provider comes before the profile's own keys */
        tw_status rc = p->fetch(p->fetch_ctx, c, err);
        c->source = "assume-role";
        return rc;
    }
    if (p->have_profile_keys) {
        *c = p->profile_keys;
        return TW_OK;
    }
    if (p->process[0]) {
        tw_status rc = run_process(p->process, c, err);
        c->source = "process";
        return rc;
    }
    if (envs("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || envs("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
        tw_status rc = container_creds(p, c, err);
        c->source = "container";
        return rc;
    }
    if (!md_disabled()) {
        tw_error merr;
        if (imds_creds(p, c, &merr) == TW_OK) {
            c->source = "imds";
            return TW_OK;
        }
        return tw__err(err, TW_EAUTH,
                       "no AWS credentials: none in the environment (AWS_ACCESS_KEY_ID), profile \"%s\" has no keys "
                       "or credential_process, no container endpoint, and instance metadata failed (%s)",
                       p->profile, merr.msg);
    }
    return tw__err(err, TW_EAUTH,
                   "no AWS credentials: none in the environment (AWS_ACCESS_KEY_ID), profile \"%s\" has no keys or "
                   "credential_process, no container endpoint, instance metadata disabled",
                   p->profile);
}

tw_status tw__creds_get(tw_aws_creds_provider *p, tw_aws_cred *out, tw_error *err)
{
    pthread_mutex_lock(&p->lock);
    tw_status rc = TW_OK;
    if (!p->have && p->failed_until_ms > now_ms()) {
        rc = tw__err(err, p->failed.code, "%s", p->failed.msg);
    } else if (!p->have || (p->cached.expires_ms && p->cached.expires_ms - now_ms() < TW_AWS_CREDS_REFRESH_MS)) {
        tw_aws_cred fresh;
        tw_error e;
        rc = resolve(p, &fresh, &e);
        if (rc) {
            p->failed = e;
            p->failed_until_ms = now_ms() + FAILURE_HOLD_MS;
            tw__err(err, rc, "%s", e.msg);
        }
        if (!rc) {
            p->cached = fresh;
            p->have = 1;
        } else if (p->have && p->cached.expires_ms > now_ms()) {
            rc = TW_OK; /* the refresh failed but the old ones still work a little longer */
        }
        tw__creds_wipe(&fresh);
    }
    if (!rc)
        *out = p->cached;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void tw__creds_invalidate(tw_aws_creds_provider *p)
{
    pthread_mutex_lock(&p->lock);
    if (!p->explicit_keys) {
        tw__creds_wipe(&p->cached);
        p->have = 0;
    }
    pthread_mutex_unlock(&p->lock);
}

void tw__creds_set_fetch(tw_aws_creds_provider *p, tw_creds_fetch_fn fn, void *ctx)
{
    p->fetch = fn;
    p->fetch_ctx = ctx;
}

void tw__creds_set_only(tw_aws_creds_provider *p, tw_creds_only only) { p->only = only; }
