/* web/access.c: who may use the dashboard (docs/DASHBOARD.md): loopback clients when no access keys
 * are configured (the API's rule), else a login (an access key with its secret: full; the read-only
 * password of dashboard.password_hash: read) or a SigV4-signed request; CSRF tokens for calls that
 * change something; a Host check against DNS rebinding for the keyless loopback mode. */
#include <crypt.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/sigv4.h"
#include "common/err.h"
#include "json/json_int.h"
#include "outbox/store.h"
#include "telemetry/log.h"
#include "web/web_int.h"

#define TOKEN_BYTES 24             /* 192 bits, 48 hex characters */
#define TOKEN_HEX (2 * TOKEN_BYTES)
/* Failed logins per client address and minute before it must wait (a password guessing brake). */
#define LOGIN_FAILS_PER_MINUTE 10
#define LOGIN_PEERS 64

typedef struct session {
    char token[TOKEN_HEX + 1];     /* "" = free slot */
    char csrf[TOKEN_HEX + 1];
    tw__web_role role;
    int64_t expires_ms, created_ms;
} session;

typedef struct login_peer {
    char addr[48];
    int64_t minute;
    int fails;
} login_peer;

struct tw__sessions {
    pthread_mutex_t lock;
    session s[TW_WEB_SESSIONS_MAX];
    login_peer peers[LOGIN_PEERS];
    char loopback_csrf[TOKEN_HEX + 1]; /* the keyless loopback mode's token (one per process) */
};

static int random_hex(char *out)
{
    unsigned char raw[TOKEN_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return 0;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < TOKEN_BYTES; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[TOKEN_HEX] = '\0';
    return 1;
}

tw_status tw__sessions_new(tw__sessions **out)
{
    tw__sessions *s = calloc(1, sizeof *s);
    if (!s)
        return TW_ENOMEM;
    if (!random_hex(s->loopback_csrf)) {
        free(s);
        return TW_ESYS;
    }
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return TW_OK;
}

void tw__sessions_free(tw__sessions *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, sizeof *s - sizeof s->lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int same_token(const char *a, const char *b)
{
    return strlen(a) == TOKEN_HEX && strlen(b) == TOKEN_HEX && CRYPTO_memcmp(a, b, TOKEN_HEX) == 0;
}

/* The session token from the Cookie header ("" when none). */
static void cookie_token(const tw_http_req *req, char out[TOKEN_HEX + 1])
{
    out[0] = '\0';
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, "Cookie") != 0)
            continue;
        for (const char *p = req->headers[i].value; (p = strstr(p, "tw_session=")) != NULL; p++) {
            if (p != req->headers[i].value && p[-1] != ' ' && p[-1] != ';')
                continue;
            const char *v = p + 11;
            size_t n = strcspn(v, "; ");
            if (n == TOKEN_HEX) {
                memcpy(out, v, n);
                out[n] = '\0';
                return;
            }
        }
    }
}

static session *find_session(tw__sessions *ss, const char *token, int64_t now)
{
    for (int i = 0; i < TW_WEB_SESSIONS_MAX; i++) {
        session *s = &ss->s[i];
        if (s->token[0] && same_token(s->token, token)) {
            if (s->expires_ms > now)
                return s;
            memset(s, 0, sizeof *s);
        }
    }
    return NULL;
}

/* Host names a page reached through DNS rebinding cannot carry: localhost, IP literals, and the
 * configured dashboard.hosts. */
static int host_ok(const tw_config *cfg, const tw_http_req *req)
{
    const char *h = tw__http_req_header(req, "Host");
    if (!h || !*h || h[0] == '[')  /* none (HTTP/1.0), or an IPv6 literal */
        return 1;
    char host[256];
    size_t n = strcspn(h, ":");
    if (n >= sizeof host)
        return 0;
    for (size_t i = 0; i < n; i++)
        host[i] = (char)tolower((unsigned char)h[i]);
    host[n] = '\0';
    if (strcmp(host, "localhost") == 0 || (n > 10 && strcmp(host + n - 10, ".localhost") == 0))
        return 1;
    if (strspn(host, "0123456789.") == n)
        return 1;
    for (uint32_t i = 0; i < cfg->dash.nhosts; i++)
        if (strcasecmp(cfg->dash.hosts[i], host) == 0)
            return 1;
    return 0;
}

static const char *secret_for(void *ctx, const char *akid)
{
    const tw_config *cfg = ctx;
    for (uint32_t i = 0; i < cfg->nkeys; i++)
        if (strcmp(cfg->keys[i].id, akid) == 0)
            return cfg->keys[i].secret;
    return NULL;
}

static void write_logins(tw_buf *b, const tw_config *cfg)
{
    tw__buf_printf(b, "\"logins\":{\"keys\":%s,\"password\":%s}", cfg->nkeys ? "true" : "false",
                  cfg->dash.password_hash ? "true" : "false");
}

/* headers_only: decided before the body is read (a signature's payload hash is taken on trust, to
 * be checked with the body by the full check later). */
static int access_check(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp,
                        tw__web_auth *auth, int headers_only)
{
    memset(auth, 0, sizeof *auth);
    char token[TOKEN_HEX + 1];
    cookie_token(req, token);
    if (token[0]) {
        tw__sessions *ss = w->sessions;
        pthread_mutex_lock(&ss->lock);
        session *s = find_session(ss, token, tw__now_ms());
        if (s) {
            auth->role = s->role;
            auth->mode = "session";
            memcpy(auth->csrf, s->csrf, sizeof s->csrf);
        }
        pthread_mutex_unlock(&ss->lock);
        if (s)
            return 1;
    }
    if (!cfg->nkeys && req->loopback) {
        if (!host_ok(cfg, req)) {
            tw__web_error(resp, 403, "this Host name is not allowed (add it to dashboard.hosts)");
            return 0;
        }
        auth->role = TW_WEB_FULL;
        auth->mode = "loopback";
        memcpy(auth->csrf, w->sessions->loopback_csrf, sizeof w->sessions->loopback_csrf);
        return 1;
    }
    const char *authz = tw__http_req_header(req, "Authorization");
    if (cfg->nkeys && authz && strncmp(authz, "AWS4-HMAC-SHA256 ", 17) == 0) {
        tw_sigv4_request sr = {req->method, req->path, req->query, req->headers, req->nheaders, req->body,
                               req->body_len};
        tw_sigv4_verifier v = {secret_for, (void *)cfg, time(NULL), 300, 0, headers_only};
        tw_sigv4_result res;
        tw_error err;
        char scope[160];
        if (tw__sigv4_verify(&sr, &v, &res, &err) == TW_OK) {
            if (!tw__http_scope_problem(cfg, &res, scope, sizeof scope)) {
                auth->role = TW_WEB_FULL;
                auth->mode = "sigv4";
                return 1;
            }
            snprintf(err.msg, sizeof err.msg, "%s", scope);
        }
        tw__log(TW_LOG_WARN, "request refused", "path", req->path, "reason", tw__sigv4_fail_code(res.fail),
               "access_key", res.access_key_id, NULL);
        tw__web_error(resp, 403, err.msg);
        return 0;
    }
    if (!cfg->nkeys && !cfg->dash.password_hash) {
        tw__web_error(resp, 403, "no access keys are configured: only loopback clients may use the dashboard");
        return 0;
    }
    tw__http_resp_json(resp, 401, "{\"error\":\"login required\",");
    write_logins(&resp->body, cfg);
    tw__buf_putc(&resp->body, '}');
    return 0;
}

int tw__web_access(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp, tw__web_auth *auth)
{
    return access_check(w, cfg, req, resp, auth, 0);
}

int tw__web_access_early(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp)
{
    tw__web_auth auth;
    return access_check(w, cfg, req, resp, &auth, 1);
}

/* A browser names where a request comes from (Origin, Sec-Fetch-Site); another site's page may not
 * send requests that change something, whatever cookies it rides on. */
static int same_origin(const tw_http_req *req)
{
    const char *site = tw__http_req_header(req, "Sec-Fetch-Site");
    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
        return 0;
    const char *origin = tw__http_req_header(req, "Origin"), *host = tw__http_req_header(req, "Host");
    if (!origin)
        return 1;
    const char *rest = strncmp(origin, "http://", 7) == 0 ? origin + 7 : strncmp(origin, "https://", 8) == 0 ? origin + 8 : NULL;
    return rest && host && strcasecmp(rest, host) == 0;
}

int tw__web_csrf_ok(const tw__web_auth *auth, const tw_http_req *req, tw_http_resp *resp)
{
    if (strcmp(auth->mode, "sigv4") == 0)
        return 1;                  /* a signature is not something a browser adds on its own */
    const char *t = tw__http_req_header(req, "X-CSRF-Token");
    if (!same_origin(req) || !t || !same_token(t, auth->csrf)) {
        tw__web_error(resp, 403, "missing or wrong X-CSRF-Token (take it from GET /api/session)");
        return 0;
    }
    return 1;
}

static void write_session(tw_http_resp *resp, const tw_config *cfg, const tw__web_auth *auth)
{
    /* archive: whether Search and Timeline have something to ask (the archive module's calls). */
    tw__http_resp_json(resp, 200, "{\"role\":\"%s\",\"mode\":\"%s\",\"csrf\":\"%s\",\"archive\":%s,\"path\":",
                      auth->role == TW_WEB_FULL ? "full" : "read", auth->mode, auth->csrf,
                      tw__web_archive_on(cfg) ? "true" : "false");
    tw__json_write_string(&resp->body, cfg->dash.path, strlen(cfg->dash.path));
    tw__buf_putc(&resp->body, ',');
    write_logins(&resp->body, cfg);
    tw__buf_putc(&resp->body, '}');
}

void tw__web_session(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp)
{
    tw__web_auth auth;
    if (tw__web_access(w, cfg, req, resp, &auth))
        write_session(resp, cfg, &auth);
}

/* 1 when this address may try again (and counts a failure when fail is set). */
static int login_brake(tw__sessions *ss, const char *peer, int fail)
{
    int64_t minute = tw__now_ms() / 60000;
    login_peer *p = NULL, *oldest = &ss->peers[0];
    for (int i = 0; i < LOGIN_PEERS && !p; i++) {
        if (strcmp(ss->peers[i].addr, peer) == 0)
            p = &ss->peers[i];
        else if (ss->peers[i].minute < oldest->minute)
            oldest = &ss->peers[i];
    }
    if (!p) {
        if (!fail)
            return 1;
        p = oldest;
        snprintf(p->addr, sizeof p->addr, "%s", peer);
        p->fails = 0;
    }
    if (p->minute != minute) {
        p->minute = minute;
        p->fails = 0;
    }
    p->fails += fail;
    return p->fails < LOGIN_FAILS_PER_MINUTE;
}

static int check_key(const tw_config *cfg, const char *id, const char *secret)
{
    for (uint32_t i = 0; i < cfg->nkeys; i++) {
        const char *s = cfg->keys[i].secret;
        if (strcmp(cfg->keys[i].id, id) == 0)
            return strlen(s) == strlen(secret) && CRYPTO_memcmp(s, secret, strlen(s)) == 0;
    }
    return 0;
}

static int check_password(const char *hash, const char *password)
{
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return 0;
    const char *h = crypt_r(password, hash, cd);
    int ok = h && h[0] != '*' && strlen(h) == strlen(hash) && CRYPTO_memcmp(h, hash, strlen(hash)) == 0;
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return ok;
}

void tw__web_login(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp)
{
    tw__sessions *ss = w->sessions;
    if (!same_origin(req)) {
        tw__web_error(resp, 403, "cross-site login refused");
        return;
    }
    pthread_mutex_lock(&ss->lock);
    int may = login_brake(ss, req->peer ? req->peer : "", 0);
    pthread_mutex_unlock(&ss->lock);
    if (!may) {
        tw__web_error(resp, 429, "too many failed logins from this address: wait a minute");
        tw__http_resp_header(resp, "Retry-After", "60");
        return;
    }
    tw_json_doc *doc = NULL;
    tw_error err;
    tw_limits lim = cfg->lim;
    lim.event_max = req->body_len + 1;
    if (tw_json_parse(req->body, req->body_len, &lim, &doc, &err) ||
        tw_json_typeof(tw_json_root(doc)) != TW_JSON_OBJECT) {
        tw_json_doc_free(doc);
        tw__web_error(resp, 400, "the request is not a JSON object {\"password\": ...} or "
                                 "{\"access_key_id\": ..., \"secret_access_key\": ...}");
        return;
    }
    const tw_json *root = tw_json_root(doc);
    const char *pw = tw_json_string(tw_json_get(root, "password"), NULL);
    const char *id = tw_json_string(tw_json_get(root, "access_key_id"), NULL);
    const char *secret = tw_json_string(tw_json_get(root, "secret_access_key"), NULL);
    tw__web_role role = TW_WEB_NONE;
    if (id && secret && check_key(cfg, id, secret))
        role = TW_WEB_FULL;
    else if (pw && cfg->dash.password_hash && check_password(cfg->dash.password_hash, pw))
        role = TW_WEB_READ;
    tw_json_doc_free(doc);
    if (!role) {
        pthread_mutex_lock(&ss->lock);
        login_brake(ss, req->peer ? req->peer : "", 1);
        pthread_mutex_unlock(&ss->lock);
        tw__log(TW_LOG_WARN, "dashboard login refused", "peer", req->peer ? req->peer : "", NULL);
        tw__web_error(resp, 401, "wrong password or key");
        return;
    }
    int64_t now = tw__now_ms();
    session fresh;
    memset(&fresh, 0, sizeof fresh);
    if (!random_hex(fresh.token) || !random_hex(fresh.csrf)) {
        tw__web_error(resp, 500, "no randomness for a session token");
        return;
    }
    fresh.role = role;
    fresh.created_ms = now;
    fresh.expires_ms = now + cfg->dash.session_ms;
    pthread_mutex_lock(&ss->lock);
    session *slot = &ss->s[0];
    for (int i = 0; i < TW_WEB_SESSIONS_MAX; i++) {
        session *s = &ss->s[i];
        if (!s->token[0] || s->expires_ms <= now) {
            slot = s;
            break;
        }
        if (s->created_ms < slot->created_ms)
            slot = s;              /* full: the oldest login goes */
    }
    *slot = fresh;
    pthread_mutex_unlock(&ss->lock);
    char cookie[128];
    snprintf(cookie, sizeof cookie, "tw_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld", fresh.token,
             (long long)(cfg->dash.session_ms / 1000));
    tw__http_resp_header(resp, "Set-Cookie", cookie);
    tw__web_auth auth = {role, "session", ""};
    memcpy(auth.csrf, fresh.csrf, sizeof fresh.csrf);
    tw__log(TW_LOG_INFO, "dashboard login", "peer", req->peer ? req->peer : "", "role",
           role == TW_WEB_FULL ? "full" : "read", NULL);
    write_session(resp, cfg, &auth);
    OPENSSL_cleanse(&fresh, sizeof fresh);
}

void tw__web_logout(tw_web *w, const tw_http_req *req, tw_http_resp *resp)
{
    char token[TOKEN_HEX + 1];
    cookie_token(req, token);
    tw__sessions *ss = w->sessions;
    pthread_mutex_lock(&ss->lock);
    session *s = token[0] ? find_session(ss, token, tw__now_ms()) : NULL;
    if (s)
        memset(s, 0, sizeof *s);
    pthread_mutex_unlock(&ss->lock);
    tw__http_resp_header(resp, "Set-Cookie", "tw_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    tw__http_resp_json(resp, 200, "{\"logged_out\":true}");
}
