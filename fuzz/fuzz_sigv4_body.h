/*
 * fuzz/fuzz_sigv4_body.h: the checks of fuzz_sigv4 (see fuzz_common.h for how bodies are shared).
 *
 * Input: a raw HTTP request, as in the tests/fixtures/sigv4 captures: "METHOD TARGET [VERSION]" where
 * TARGET is path[?query], then "Name: value" lines up to an empty line (a line without ':' is a
 * header with no value), then the body. Lines end in "\n" or "\r\n"; a NUL ends a field early.
 *   1. tw__sigv4_verify with a fixed key (AKIDEXAMPLE, the captures' secret, their clock, 900 s skew;
 *      S3 rules when the Authorization names the s3 service): TW_OK iff res.fail is TW_SIGV4_OK,
 *      TW_EAUTH iff an authentication failure, anything else is INTERNAL; every result string is
 *      terminated; no message holds the secret or anything that looks like a full signature.
 *   2. The same request (minus Authorization, X-Amz-Date, X-Amz-Security-Token; Host added when
 *      missing) is signed with tw__sigv4_sign. When signing succeeds, the request plus the headers it
 *      returns must verify (unless the caller set x-amz-content-sha256 itself), with the signer's
 *      key id, region and service; the same request with one signature digit changed must fail as
 *      InvalidSignature.
 */
#ifndef TW_FUZZ_SIGV4_BODY_H
#define TW_FUZZ_SIGV4_BODY_H

#include <strings.h>
#include <time.h>

#include "aws/sigv4.h"
#include "fuzz_common.h"

#define FZ_SIGV4_AKID "AKIDEXAMPLE"
#define FZ_SIGV4_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define FZ_SIGV4_MAX_HEADERS 160   /* more than TW_SIGV4_MAX_HEADERS, to reach that cap */

static struct {
    time_t now;                                   /* 2026-11-28T09:00:00Z, when the captures were made */
    char long_secret[TW_SIGV4_MAX_SECRET + 2];    /* one byte over the cap */
} fz_sigv4;

FUZZ_FN const char *fuzz_sigv4_secret_for(void *ctx, const char *akid)
{
    (void)ctx;
    if (strcmp(akid, FZ_SIGV4_AKID) == 0)
        return FZ_SIGV4_SECRET;
    if (strcmp(akid, "AKIDLONGSECRET") == 0)
        return fz_sigv4.long_secret;
    return NULL;
}

FUZZ_FN void fuzz_sigv4_init(void)
{
    struct tm tm = {0};
    tm.tm_year = 2026 - 1900;
    tm.tm_mon = 10;
    tm.tm_mday = 28;
    tm.tm_hour = 9;
    fz_sigv4.now = timegm(&tm);
    memset(fz_sigv4.long_secret, 'k', sizeof fz_sigv4.long_secret - 1);
}

FUZZ_FN void fuzz_sigv4_fini(void) {}

typedef struct fz_http {
    char *buf;                                    /* the input, NUL-terminated, cut in place */
    const char *method, *path, *query;
    tw_sigv4_header h[FZ_SIGV4_MAX_HEADERS + 4];
    size_t nh;
    const char *body;
    size_t body_len;
} fz_http;

/* The next line of [*p, end): NUL-terminated in place, "\r\n" or "\n" removed. */
FUZZ_FN char *fuzz_sigv4_line(char **p, char *end)
{
    char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl) {
        *p = end;
        return s;
    }
    *nl = '\0';
    if (nl > s && nl[-1] == '\r')
        nl[-1] = '\0';
    *p = nl + 1;
    return s;
}

FUZZ_FN int fuzz_sigv4_parse(fz_http *r, const uint8_t *data, size_t size)
{
    memset(r, 0, sizeof *r);
    if (!(r->buf = malloc(size + 1)))
        return 0;
    memcpy(r->buf, data, size);
    r->buf[size] = '\0';
    char *p = r->buf, *end = r->buf + size;
    char *line = fuzz_sigv4_line(&p, end);
    r->method = line;
    char *sp = strchr(line, ' ');
    if (sp) {
        *sp = '\0';
        char *target = sp + 1, *sp2 = strchr(target, ' ');
        if (sp2)
            *sp2 = '\0';
        char *q = strchr(target, '?');
        if (q) {
            *q = '\0';
            r->query = q + 1;
        }
        r->path = target;
    }
    while (p < end) {
        line = fuzz_sigv4_line(&p, end);
        if (!*line)
            break;
        if (r->nh == FZ_SIGV4_MAX_HEADERS)
            continue;
        char *colon = strchr(line, ':');
        const char *v = NULL;
        if (colon) {
            *colon = '\0';
            v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
        }
        r->h[r->nh++] = (tw_sigv4_header){line, v};
    }
    r->body = p;
    r->body_len = (size_t)(end - p);
    return 1;
}

FUZZ_FN const char *fuzz_sigv4_header(const fz_http *r, const char *name)
{
    for (size_t i = 0; i < r->nh; i++)
        if (strcasecmp(r->h[i].name, name) == 0)
            return r->h[i].value ? r->h[i].value : "";
    return NULL;
}

/* A run of 64 hex digits: a whole signature or hash, which messages must never hold. */
FUZZ_FN int fuzz_sigv4_has_hex64(const char *s)
{
    size_t run = 0;
    for (; *s; s++) {
        int hex = (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F');
        run = hex ? run + 1 : 0;
        if (run >= 64)
            return 1;
    }
    return 0;
}

FUZZ_FN tw_status fuzz_sigv4_verify(const tw_sigv4_request *req, int s3, tw_sigv4_result *res,
                                    tw_error *err)
{
    tw_sigv4_verifier v = {fuzz_sigv4_secret_for, NULL, fz_sigv4.now, 900, s3, 0};
    memset(err, 0, sizeof *err);
    tw_status rc = tw__sigv4_verify(req, &v, res, err);
    FUZZ_CHECK((rc == TW_OK) == (res->fail == TW_SIGV4_OK), "rc %d, fail %d", rc, res->fail);
    FUZZ_CHECK(rc == TW_OK || rc == TW_EAUTH || res->fail == TW_SIGV4_INTERNAL, "rc %d, fail %d", rc,
               res->fail);
    FUZZ_CHECK(rc != TW_EAUTH || (res->fail > TW_SIGV4_OK && res->fail < TW_SIGV4_INTERNAL),
               "TW_EAUTH with fail %d", res->fail);
    FUZZ_CHECK(rc == TW_OK || (err->code == rc && err->msg[0] && tw__sigv4_fail_code(res->fail)),
               "failure %d without a message or code", rc);
    FUZZ_CHECK(!strstr(err->msg, FZ_SIGV4_SECRET) && !strstr(err->msg, "wJalr") &&
                   !strstr(err->msg, "kkkkkkkk"),
               "a message holds the secret: %s", err->msg);
    FUZZ_CHECK(!fuzz_sigv4_has_hex64(err->msg), "a message holds a full signature: %s", err->msg);
    FUZZ_CHECK(memchr(res->access_key_id, 0, sizeof res->access_key_id) &&
                   memchr(res->region, 0, sizeof res->region) && memchr(res->service, 0, sizeof res->service) &&
                   memchr(res->date, 0, sizeof res->date),
               "an unterminated result field");
    return rc;
}

/* Signs the request (as a client would send it) and checks that the result verifies. */
FUZZ_FN void fuzz_sigv4_sign(const fz_http *r, int s3, int with_token)
{
    tw_sigv4_header hs[TW_SIGV4_MAX_SIGNED_HEADERS + TW_SIGV4_ADDED_MAX];
    size_t n = 0;
    int host = 0;
    for (size_t i = 0; i < r->nh && n < TW_SIGV4_MAX_SIGNED_HEADERS - 4; i++) {
        const char *name = r->h[i].name;
        if (!strcasecmp(name, "authorization") || !strcasecmp(name, "x-amz-date") ||
            !strcasecmp(name, "x-amz-security-token") || !r->h[i].value)
            continue;
        host = host || !strcasecmp(name, "host");
        hs[n++] = r->h[i];
    }
    if (!host)
        hs[n++] = (tw_sigv4_header){"Host", "events.us-east-1.amazonaws.com"};
    tw_sigv4_request req = {r->method, r->path, r->query, hs, n, r->body, r->body_len};
    tw_sigv4_credentials cred = {FZ_SIGV4_AKID, FZ_SIGV4_SECRET, with_token ? "FQoGZXIvYXdzEBYaDEXAMPLE" : NULL};
    tw_sigv4_signer s = {"us-east-1", s3 ? "s3" : "events", fz_sigv4.now, s3};
    tw_sigv4_signed out;
    tw_error err = {0};
    tw_status rc = tw__sigv4_sign(&req, &cred, &s, &out, &err);
    FUZZ_CHECK(rc == TW_OK || (err.code == rc && err.msg[0]), "signing failed without a message");
    FUZZ_CHECK(!strstr(err.msg, FZ_SIGV4_SECRET), "a message holds the secret: %s", err.msg);
    if (rc)
        return;
    tw_sigv4_header added[TW_SIGV4_ADDED_MAX];
    size_t na = tw__sigv4_added_headers(&out, added);
    FUZZ_CHECK(na >= 2 && na <= TW_SIGV4_ADDED_MAX, "%zu added headers", na);
    memcpy(hs + n, added, na * sizeof added[0]);
    req.nheaders = n + na;
    int own_hash = 0;
    for (size_t i = 0; i < n; i++)
        own_hash = own_hash || !strcasecmp(hs[i].name, "x-amz-content-sha256");
    tw_sigv4_result res;
    rc = fuzz_sigv4_verify(&req, s3, &res, &err);
    if (own_hash)
        return;
    FUZZ_CHECK(rc == TW_OK, "a request signed by tw__sigv4_sign does not verify: %s\n    %s", err.msg,
               out.authorization);
    if (rc)
        return;
    FUZZ_CHECK(!strcmp(res.access_key_id, FZ_SIGV4_AKID) && !strcmp(res.region, "us-east-1") &&
                   !strcmp(res.service, s.service),
               "verified as %s/%s/%s", res.access_key_id, res.region, res.service);
    /* one digit of the signature changed */
    size_t alen = strlen(out.authorization);
    char *last = out.authorization + alen - 1;
    *last = *last == '0' ? '1' : '0';
    rc = fuzz_sigv4_verify(&req, s3, &res, &err);
    FUZZ_CHECK(rc == TW_EAUTH && res.fail == TW_SIGV4_INVALID_SIGNATURE,
               "a changed signature gives %d (fail %d): %s", rc, res.fail, err.msg);
}

FUZZ_FN void fuzz_sigv4_check(const uint8_t *data, size_t size)
{
    fz_http r;
    if (!fuzz_sigv4_parse(&r, data, size))
        return;
    const char *auth = fuzz_sigv4_header(&r, "authorization");
    int s3 = auth && strstr(auth, "/s3/aws4_request") != NULL;
    tw_sigv4_request req = {r.method, r.path, r.query, r.h, r.nh, r.body, r.body_len};
    tw_sigv4_result res;
    tw_error err;
    fuzz_sigv4_verify(&req, s3, &res, &err);
    fuzz_sigv4_sign(&r, s3, (int)(size & 1));
    free(r.buf);
}

#endif
