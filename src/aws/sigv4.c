/* aws/sigv4.c: AWS Signature Version 4: canonical request, signing key, signing, verification. */
#include "aws/sigv4.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/arena.h"
#include "common/err.h"

static const char ALGORITHM[] = "AWS4-HMAC-SHA256";
static const char TERMINATOR[] = "aws4_request";
static const char UNSIGNED_PAYLOAD[] = "UNSIGNED-PAYLOAD";

/* The exact texts AWS sends, so clients print what they would print against AWS. */
static const char MSG_MISMATCH[] =
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details.";
static const char MSG_UNKNOWN_KEY[] = "The security token included in the request is invalid.";
static const char MSG_NO_AUTH[] = "Missing Authentication Token";
static const char MSG_NO_DATE[] =
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.";
static const char MSG_HOST_UNSIGNED[] =
    "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.";

/* ---- characters and hex -------------------------------------------------------------------- */

static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 9110 token characters: what a header name may hold. */
static int is_tchar(unsigned char c)
{
    return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The whitespace Python's str.split() drops for ASCII, which botocore's Trimall relies on. */
static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

/* ASCII-only, so the result does not depend on the locale. */
static int casecmp(const char *a, const char *b)
{
    while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return lower((unsigned char)*a) - lower((unsigned char)*b);
}

/* Does the C string a equal the n bytes at b, ignoring ASCII case? */
static int name_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!a[i] || lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return a[n] == '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[n] == '\0';
}

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- hashing ------------------------------------------------------------------------------- */

static int sha256_hex(const void *p, size_t n, char hex[TW_SIGV4_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(p ? p : "", n, md, &len, EVP_sha256(), NULL) || len != 32)
        return 0;
    to_hex(md, 32, hex);
    return 1;
}

static int hmac(const void *key, size_t klen, const void *msg, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    return HMAC(EVP_sha256(), key, (int)klen, msg, n, out, &len) != NULL && len == 32;
}

tw_status tw__sigv4_signing_key(const char *secret, const char *date8, const char *region,
                                const char *service, unsigned char key[32])
{
    unsigned char k0[4 + TW_SIGV4_MAX_SECRET], a[32], b[32];
    size_t n = strlen(secret);
    tw_status rc = TW_EINVAL;
    if (n > TW_SIGV4_MAX_SECRET)
        goto out;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, n);
    rc = TW_ESYS;
    if (!hmac(k0, 4 + n, date8, strlen(date8), a) || !hmac(a, 32, region, strlen(region), b) ||
        !hmac(b, 32, service, strlen(service), a) ||
        !hmac(a, 32, TERMINATOR, sizeof TERMINATOR - 1, key))
        goto out;
    rc = TW_OK;
out:
    OPENSSL_cleanse(k0, sizeof k0);
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    return rc;
}

tw_status tw__sigv4_signature(const unsigned char key[32], const char *amz_date, const char *date8,
                              const char *region, const char *service, const tw_buf *canonical,
                              char sig[TW_SIGV4_HEX_LEN + 1])
{
    char cr_hash[TW_SIGV4_HEX_LEN + 1];
    unsigned char mac[32];
    tw_buf sts = TW_BUF_INIT;
    tw_status rc = TW_ESYS;
    if (!sha256_hex(canonical->data, canonical->len, cr_hash))
        goto out;
    rc = tw__buf_printf(&sts, "%s\n%s\n%s/%s/%s/%s\n%s", ALGORITHM, amz_date, date8, region, service,
                       TERMINATOR, cr_hash);
    if (rc)
        goto out;
    rc = TW_ESYS;
    if (!hmac(key, 32, sts.data, sts.len, mac))
        goto out;
    to_hex(mac, 32, sig);
    rc = TW_OK;
out:
    tw__buf_free(&sts);
    return rc;
}

/* ---- dates --------------------------------------------------------------------------------- */

void tw__sigv4_format_date(time_t t, char out[TW_SIGV4_DATE_LEN + 1])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, TW_SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) == 0)
        out[0] = '\0';
}

static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "20261128T085806Z". Rejects out-of-range fields by formatting the result back. */
static int parse_iso_date(const char *s, time_t *t)
{
    if (strlen(s) != TW_SIGV4_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
        return 0;
    struct tm tm = {0};
    int year = digits(s, 4), mon = digits(s + 4, 2), day = digits(s + 6, 2);
    int hour = digits(s + 9, 2), min = digits(s + 11, 2), sec = digits(s + 13, 2);
    if (year < 0 || mon < 0 || day < 0 || hour < 0 || min < 0 || sec < 0)
        return 0;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *t = timegm(&tm);
    char back[TW_SIGV4_DATE_LEN + 1];
    tw__sigv4_format_date(*t, back);
    return strcmp(back, s) == 0;
}

/* RFC 1123 "Sun, 06 Nov 1994 08:49:37 GMT" (the Date header), through the ISO parser. */
static int parse_http_date(const char *s, time_t *t)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || strcmp(s + 25, " GMT") != 0)
        return 0;
    int mon = -1;
    for (int i = 0; i < 12; i++)
        if (memcmp(months + 3 * i, s + 8, 3) == 0)
            mon = i + 1;
    if (mon < 0)
        return 0;
    char iso[TW_SIGV4_DATE_LEN + 1] = "yyyymmddThhmmssZ";
    memcpy(iso, s + 12, 4);
    iso[4] = (char)('0' + mon / 10);
    iso[5] = (char)('0' + mon % 10);
    memcpy(iso + 6, s + 5, 2);
    memcpy(iso + 9, s + 17, 2);
    memcpy(iso + 11, s + 20, 2);
    memcpy(iso + 13, s + 23, 2);
    return parse_iso_date(iso, t);
}

/* ---- canonical request --------------------------------------------------------------------- */

tw_status tw__sigv4_uri_encode(tw_buf *out, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    tw_status rc = TW_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            rc = tw__buf_putc(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = tw__buf_append(out, e, 3);
        }
    }
    return rc;
}

/* One raw query key or value in canonical form: valid %XX decoded, then everything re-encoded, so
 * "a%2fb", "a%2Fb" and "a/b" all become "a%2Fb". A stray '%' is taken literally ("%25"). */
static char *canonical_component(tw_arena *a, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *o = tw__arena_alloc(a, 3 * n + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (unsigned char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        }
        if (is_unreserved(c)) {
            o[k++] = (char)c;
        } else {
            o[k++] = '%';
            o[k++] = hex[c >> 4];
            o[k++] = hex[c & 15];
        }
    }
    o[k] = '\0';
    return o;
}

typedef struct qparam {
    const char *key;
    const char *value;
} qparam;

static int qparam_cmp(const void *pa, const void *pb)
{
    const qparam *a = pa, *b = pb;
    int c = strcmp(a->key, b->key);
    return c ? c : strcmp(a->value, b->value);
}

/* Pieces between '&'; empty pieces ("a=1&&b=2") are skipped, as they carry no parameter. */
static size_t count_params(const char *q)
{
    size_t n = 0;
    for (const char *p = q; *p;) {
        size_t len = strcspn(p, "&");
        n += len > 0;
        p += len + (p[len] == '&');
    }
    return n;
}

tw_status tw__sigv4_canonical_query(tw_buf *out, const char *query)
{
    if (!query || !*query)
        return TW_OK;
    if (strlen(query) > TW_SIGV4_MAX_CANONICAL)
        return TW_ETOOBIG;
    size_t n = count_params(query);
    if (n > TW_SIGV4_MAX_QUERY_PARAMS)
        return TW_ELIMIT;
    tw_arena a = TW_ARENA_INIT;
    tw_status rc = TW_ENOMEM;
    qparam *ps = tw__arena_alloc(&a, n * sizeof *ps);
    if (!ps)
        goto out;
    size_t k = 0;
    for (const char *p = query; *p; p += strcspn(p, "&"), p += (*p == '&')) {
        size_t len = strcspn(p, "&");
        if (!len)
            continue;
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        ps[k].key = canonical_component(&a, p, klen);
        ps[k].value = eq ? canonical_component(&a, eq + 1, len - klen - 1) : "";
        if (!ps[k].key || !ps[k].value)
            goto out;
        k++;
    }
    qsort(ps, k, sizeof *ps, qparam_cmp);
    rc = TW_OK;
    for (size_t i = 0; i < k && !rc; i++)
        rc = tw__buf_printf(out, "%s%s=%s", i ? "&" : "", ps[i].key, ps[i].value);
out:
    tw__arena_free(&a);
    return rc;
}

/* Drops the last "/segment" appended after base (a ".." in the path). */
static void pop_segment(tw_buf *b, size_t base)
{
    if (b->len <= base)
        return;
    while (b->len > base && b->data[b->len - 1] != '/')
        b->len--;
    if (b->len > base)
        b->len--;
    b->data[b->len] = '\0';
}

/* Non-S3 paths as botocore signs them: dot segments resolved, empty segments dropped, trailing '/'
 * kept, each segment encoded again (so "%2F" becomes "%252F"). A path is taken as rooted at '/'. */
tw_status tw__sigv4_canonical_uri(tw_buf *out, const char *path, int s3)
{
    if (!path || !*path)
        return tw__buf_putc(out, '/');
    if (s3)
        return tw__buf_puts(out, path);
    size_t base = out->len;
    tw_status rc = TW_OK;
    for (const char *p = path; *p && !rc; p += strcspn(p, "/"), p += (*p == '/')) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            pop_segment(out, base);
        else if (len && !(len == 1 && p[0] == '.') && !(rc = tw__buf_putc(out, '/')))
            rc = tw__sigv4_uri_encode(out, p, len, 0);
    }
    if (rc)
        return rc;
    if (out->len == base)
        return tw__buf_putc(out, '/');
    if (path[strlen(path) - 1] == '/')
        return tw__buf_putc(out, '/');
    return TW_OK;
}

/* Appends the canonical value of the header named by n bytes at name: every occurrence trimmed,
 * inner whitespace runs collapsed to one space, occurrences joined with ','. */
static tw_status put_header_value(tw_buf *out, const tw_sigv4_header *hs, size_t nh,
                                  const char *name, size_t n, int *found)
{
    size_t start = out->len;
    tw_status rc = TW_OK;
    *found = 0;
    for (size_t i = 0; i < nh && !rc; i++) {
        if (!hs[i].name || !name_eq(hs[i].name, name, n))
            continue;
        const char *v = hs[i].value ? hs[i].value : "";
        if (strlen(v) > TW_SIGV4_MAX_HEADER_LEN)
            return TW_ETOOBIG;
        if (*found)
            rc = tw__buf_putc(out, ',');
        *found = 1;
        int first = 1;
        while (!rc && *v) {
            while (is_space(*v))
                v++;
            size_t w = 0;
            while (v[w] && !is_space(v[w]))
                w++;
            if (w && !first)
                rc = tw__buf_putc(out, ' ');
            if (w && !rc)
                rc = tw__buf_append(out, v, w);
            first = first && !w;
            v += w;
        }
        if (!rc && out->len - start > TW_SIGV4_MAX_HEADER_LEN)
            rc = TW_ETOOBIG;
    }
    return rc;
}

tw_status tw__sigv4_canonical_request(tw_buf *out, const tw_sigv4_request *req,
                                      const char *signed_headers, const char *payload_hash, int s3)
{
    tw_status rc;
    if ((rc = tw__buf_printf(out, "%s\n", req->method)) ||
        (rc = tw__sigv4_canonical_uri(out, req->path, s3)) || (rc = tw__buf_putc(out, '\n')) ||
        (rc = tw__sigv4_canonical_query(out, req->query)) || (rc = tw__buf_putc(out, '\n')))
        return rc;
    for (const char *p = signed_headers; *p; p += strcspn(p, ";"), p += (*p == ';')) {
        size_t n = strcspn(p, ";");
        int found;
        if ((rc = tw__buf_append(out, p, n)) || (rc = tw__buf_putc(out, ':')) ||
            (rc = put_header_value(out, req->headers, req->nheaders, p, n, &found)) ||
            (rc = tw__buf_putc(out, '\n')))
            return rc;
    }
    return tw__buf_printf(out, "\n%s\n%s", signed_headers, payload_hash);
}

/* ---- verification -------------------------------------------------------------------------- */

const char *tw__sigv4_fail_code(tw_sigv4_fail kind)
{
    switch (kind) {
    case TW_SIGV4_OK: return NULL;
    case TW_SIGV4_MISSING_AUTHENTICATION_TOKEN: return "MissingAuthenticationTokenException";
    case TW_SIGV4_INCOMPLETE_SIGNATURE: return "IncompleteSignatureException";
    case TW_SIGV4_INVALID_SIGNATURE: return "InvalidSignatureException";
    case TW_SIGV4_SIGNATURE_EXPIRED: return "InvalidSignatureException";
    case TW_SIGV4_UNRECOGNIZED_CLIENT: return "UnrecognizedClientException";
    case TW_SIGV4_INTERNAL: return "InternalFailure";
    case TW_SIGV4_FAIL_COUNT_: break;
    }
    return "InternalFailure";
}

/* What the Authorization header says, once parsed. */
typedef struct parsed_auth {
    char signed_headers[TW_SIGV4_MAX_AUTH_LEN + 1];
    char signature[TW_SIGV4_HEX_LEN + 1];
    int signature_ok;                 /* Signature= held exactly 64 characters */
    char date8[9];                    /* credential scope date */
} parsed_auth;

typedef struct vctx {
    const tw_sigv4_request *req;
    const tw_sigv4_verifier *v;
    tw_sigv4_result *res;
    tw_error *err;
    tw_buf tmp;                       /* the value of the header looked up last */
    tw_buf canon;
    parsed_auth pa;
    time_t when;                      /* the request time */
    char payload_hash[TW_SIGV4_HEX_LEN + 1];
} vctx;

static tw_status reject(vctx *c, tw_sigv4_fail kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records an authentication failure; the message is what the client will read. */
static tw_status reject(vctx *c, tw_sigv4_fail kind, const char *fmt, ...)
{
    char msg[TW_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->res->fail = kind;
    return tw__err(c->err, TW_EAUTH, "%s", msg);
}

static tw_status internal(vctx *c, tw_status rc, const char *what)
{
    c->res->fail = TW_SIGV4_INTERNAL;
    return tw__err(c->err, rc, "SigV4 verification: %s: %s", what, tw_strerror(rc));
}

static const char *tmp_str(const vctx *c) { return c->tmp.data ? c->tmp.data : ""; }

/* Looks a request header up into c->tmp; an over-long value rejects the request. */
static tw_status lookup(vctx *c, const char *name, int *found)
{
    tw_buf_reset(&c->tmp);
    tw_status rc = put_header_value(&c->tmp, c->req->headers, c->req->nheaders, name,
                                    strlen(name), found);
    if (rc == TW_ETOOBIG)
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE, "Header '%s' is longer than %u bytes.",
                      name, TW_SIGV4_MAX_HEADER_LEN);
    return rc ? internal(c, rc, "reading headers") : TW_OK;
}

static int scope_part_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

/* "AKID/yyyymmdd/region/service/aws4_request" into res and pa->date8. */
static tw_status parse_credential(vctx *c, const char *s, size_t n)
{
    const char *part[5];
    size_t len[5], k = 0;
    for (size_t i = 0, start = 0; i <= n; i++) {
        if (i < n && s[i] != '/')
            continue;
        if (k == 5)
            break;
        part[k] = s + start;
        len[k++] = i - start;
        start = i + 1;
    }
    if (k != 5 || part[4] + len[4] != s + n)
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                      "Credential must have exactly 5 slash-delimited elements, e.g. "
                      "keyid/date/region/service/term.");
    if (!scope_part_ok(part[0], len[0], TW_SIGV4_MAX_KEY_ID))
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                      "Credential holds a malformed access key id.");
    memcpy(c->res->access_key_id, part[0], len[0]);
    if (len[1] != 8 || digits(part[1], 8) < 0)
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE, "Credential date must be yyyymmdd.");
    memcpy(c->pa.date8, part[1], 8);
    if (!scope_part_ok(part[2], len[2], TW_SIGV4_MAX_SCOPE_PART) ||
        !scope_part_ok(part[3], len[3], TW_SIGV4_MAX_SCOPE_PART))
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                      "Credential should be scoped to a valid region and service.");
    memcpy(c->res->region, part[2], len[2]);
    memcpy(c->res->service, part[3], len[3]);
    if (len[4] != sizeof TERMINATOR - 1 || memcmp(part[4], TERMINATOR, len[4]) != 0)
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                      "Credential should be scoped with a valid terminator: 'aws4_request'.");
    return TW_OK;
}

/* One "Key=value" parameter of the Authorization header. seen collects the keys met so far. */
static tw_status parse_auth_param(vctx *c, const char *p, size_t n, unsigned *seen)
{
    static const char *const keys[3] = {"Credential", "SignedHeaders", "Signature"};
    const char *eq = memchr(p, '=', n);
    size_t klen = eq ? (size_t)(eq - p) : n, i = 0;
    while (i < 3 && !(strlen(keys[i]) == klen && memcmp(keys[i], p, klen) == 0))
        i++;
    if (!eq || i == 3 || (*seen & (1u << i)))
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                      "Authorization header parameters must be Credential, SignedHeaders and "
                      "Signature, each once.");
    *seen |= 1u << i;
    const char *v = eq + 1;
    size_t vlen = n - klen - 1;
    if (i == 0)
        return parse_credential(c, v, vlen);
    if (i == 1) {
        memcpy(c->pa.signed_headers, v, vlen);   /* vlen < the Authorization length, capped */
        c->pa.signed_headers[vlen] = '\0';
        return TW_OK;
    }
    c->pa.signature_ok = vlen == TW_SIGV4_HEX_LEN;
    if (c->pa.signature_ok)
        memcpy(c->pa.signature, v, vlen);
    return TW_OK;
}

/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." (c->tmp, whitespace already
 * collapsed). Parameters may come in any order; all three are required. */
static tw_status parse_authorization(vctx *c)
{
    const char *s = tmp_str(c);
    size_t alen = sizeof ALGORITHM - 1;
    if (strncmp(s, ALGORITHM, alen) != 0 || s[alen] != ' ')
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                      "Authorization header must start with 'AWS4-HMAC-SHA256 '.");
    unsigned seen = 0;
    for (const char *p = s + alen + 1; *p; p += strcspn(p, ","), p += (*p == ',')) {
        size_t n = strcspn(p, ",");
        const char *q = p;
        while (n && *q == ' ')
            q++, n--;
        while (n && q[n - 1] == ' ')
            n--;
        tw_status rc = parse_auth_param(c, q, n, &seen);
        if (rc)
            return rc;
    }
    if (seen == 7u)
        return TW_OK;
    /* AWS lists every missing parameter, one sentence each */
    static const char *const names[3] = {"Credential", "SignedHeaders", "Signature"};
    char msg[256];
    size_t len = 0;
    for (unsigned i = 0; i < 3; i++)
        if (!(seen & (1u << i)))
            len += (size_t)snprintf(msg + len, sizeof msg - len,
                                    "%sAuthorization header requires '%s' parameter.",
                                    len ? " " : "", names[i]);
    return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE, "%s", msg);
}

/* SignedHeaders: lower-case names separated by ';', at most the cap, host among them. */
static tw_status check_signed_headers(vctx *c)
{
    const char *s = c->pa.signed_headers;
    unsigned count = 0;
    int host = 0;
    for (const char *p = s;; p++) {
        size_t n = strcspn(p, ";");
        int ok = n > 0;
        for (size_t i = 0; i < n && ok; i++)
            ok = is_tchar((unsigned char)p[i]) && !(p[i] >= 'A' && p[i] <= 'Z');
        if (!ok)
            return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                          "SignedHeaders must list lower-case header names separated by ';'.");
        if (++count > TW_SIGV4_MAX_SIGNED_HEADERS)
            return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                          "SignedHeaders lists more than %u headers.", TW_SIGV4_MAX_SIGNED_HEADERS);
        host = host || (n == 4 && memcmp(p, "host", 4) == 0);
        p += n;
        if (!*p)
            break;
    }
    return host ? TW_OK : reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE, "%s", MSG_HOST_UNSIGNED);
}

/* The request time from X-Amz-Date, else from Date (ISO 8601 basic or RFC 1123). */
static tw_status request_time(vctx *c)
{
    int found;
    tw_status rc = lookup(c, "x-amz-date", &found);
    if (rc)
        return rc;
    if (found) {
        if (!parse_iso_date(tmp_str(c), &c->when))
            return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                          "X-Amz-Date must be in ISO 8601 basic format (yyyyMMdd'T'HHmmss'Z').");
    } else {
        if ((rc = lookup(c, "date", &found)))
            return rc;
        if (!found)
            return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE, "%s", MSG_NO_DATE);
        if (!parse_iso_date(tmp_str(c), &c->when) && !parse_http_date(tmp_str(c), &c->when))
            return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                          "Date must be in ISO 8601 basic or RFC 1123 format.");
    }
    tw__sigv4_format_date(c->when, c->res->date);
    return TW_OK;
}

/* Within the skew, and on the day the credential is scoped to. Messages as AWS words them. */
static tw_status check_time(vctx *c)
{
    long skew = c->v->max_skew;
    long long d = (long long)c->v->now - (long long)c->when;
    char now[TW_SIGV4_DATE_LEN + 1], edge[TW_SIGV4_DATE_LEN + 1], amount[32];
    if (skew % 60 == 0)
        snprintf(amount, sizeof amount, "%ld min", skew / 60);
    else
        snprintf(amount, sizeof amount, "%ld sec", skew);
    tw__sigv4_format_date(c->v->now, now);
    if (d > skew) {
        tw__sigv4_format_date(c->v->now - skew, edge);
        return reject(c, TW_SIGV4_SIGNATURE_EXPIRED,
                      "Signature expired: %s is now earlier than %s (%s - %s.)", c->res->date,
                      edge, now, amount);
    }
    if (-d > skew) {
        tw__sigv4_format_date(c->v->now + skew, edge);
        return reject(c, TW_SIGV4_SIGNATURE_EXPIRED,
                      "Signature not yet current: %s is still later than %s (%s + %s.)",
                      c->res->date, edge, now, amount);
    }
    if (memcmp(c->pa.date8, c->res->date, 8) != 0)
        return reject(c, TW_SIGV4_INVALID_SIGNATURE,
                      "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                      "date from HTTP: '%s' != '%.8s', from '%s'.",
                      c->pa.date8, c->res->date, c->res->date);
    return TW_OK;
}

/* x-amz-content-sha256 when present (checked against the body unless UNSIGNED-PAYLOAD, which only
 * S3 accepts), else SHA-256 of the body. */
static tw_status payload_hash(vctx *c)
{
    int found;
    tw_status rc = lookup(c, "x-amz-content-sha256", &found);
    if (rc)
        return rc;
    const char *h = tmp_str(c);
    if (found && strcmp(h, UNSIGNED_PAYLOAD) == 0) {
        if (!c->v->s3)
            return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                          "x-amz-content-sha256: UNSIGNED-PAYLOAD is not accepted here.");
        memcpy(c->payload_hash, UNSIGNED_PAYLOAD, sizeof UNSIGNED_PAYLOAD);
        return TW_OK;
    }
    if (found && !is_lower_hex(h, TW_SIGV4_HEX_LEN))
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                      "x-amz-content-sha256 must be a hex SHA-256 or UNSIGNED-PAYLOAD.");
    if (!sha256_hex(c->req->body, c->req->body_len, c->payload_hash))
        return internal(c, TW_ESYS, "hashing the body");
    if (found && strcmp(h, c->payload_hash) != 0)
        return reject(c, TW_SIGV4_INVALID_SIGNATURE,
                      "The provided 'x-amz-content-sha256' header does not match what was "
                      "computed.");
    return TW_OK;
}

/* Recomputes the signature with the key's secret and compares in constant time. */
static tw_status check_signature(vctx *c, const char *secret)
{
    unsigned char key[32];
    char sig[TW_SIGV4_HEX_LEN + 1];
    tw_status rc = tw__sigv4_canonical_request(&c->canon, c->req, c->pa.signed_headers,
                                               c->payload_hash, c->v->s3);
    if (rc == TW_ETOOBIG || rc == TW_ELIMIT) {
        rc = reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                    "The request is too large to verify (limits: %u bytes of canonical request, "
                    "%u query parameters, %u bytes per header).",
                    TW_SIGV4_MAX_CANONICAL, TW_SIGV4_MAX_QUERY_PARAMS, TW_SIGV4_MAX_HEADER_LEN);
        goto out;
    }
    if (rc) {
        rc = internal(c, rc, "building the canonical request");
        goto out;
    }
    rc = tw__sigv4_signing_key(secret, c->pa.date8, c->res->region, c->res->service, key);
    if (!rc)
        rc = tw__sigv4_signature(key, c->res->date, c->pa.date8, c->res->region, c->res->service,
                                 &c->canon, sig);
    if (rc) {
        rc = internal(c, rc, "computing the signature");
        goto out;
    }
    if (!c->pa.signature_ok || CRYPTO_memcmp(sig, c->pa.signature, TW_SIGV4_HEX_LEN) != 0)
        rc = reject(c, TW_SIGV4_INVALID_SIGNATURE, "%s", MSG_MISMATCH);
out:
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(sig, sizeof sig);
    return rc;
}

/* Every check up to the secret; the order puts cheap, key-independent checks first. */
static tw_status verify_steps(vctx *c)
{
    int found;
    tw_status rc;
    if (c->req->nheaders > TW_SIGV4_MAX_HEADERS)
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE, "The request has more than %u headers.",
                      TW_SIGV4_MAX_HEADERS);
    if ((rc = lookup(c, "authorization", &found)))
        return rc;
    if (!found)
        return reject(c, TW_SIGV4_MISSING_AUTHENTICATION_TOKEN, "%s", MSG_NO_AUTH);
    if (c->tmp.len > TW_SIGV4_MAX_AUTH_LEN)
        return reject(c, TW_SIGV4_INCOMPLETE_SIGNATURE,
                      "The Authorization header is longer than %u bytes.", TW_SIGV4_MAX_AUTH_LEN);
    if ((rc = parse_authorization(c)) || (rc = check_signed_headers(c)) ||
        (rc = request_time(c)) || (rc = check_time(c)))
        return rc;
    const char *secret = c->v->secret_for(c->v->ctx, c->res->access_key_id);
    if (!secret)
        return reject(c, TW_SIGV4_UNRECOGNIZED_CLIENT, "%s", MSG_UNKNOWN_KEY);
    if (strlen(secret) > TW_SIGV4_MAX_SECRET)
        return internal(c, TW_EINVAL, "the secret for the access key is too long");
    if (c->v->headers_only) {
        if ((rc = lookup(c, "x-amz-content-sha256", &found)))
            return rc;
        if (!found)
            return TW_OK;          /* the signature covers the body's hash: decided once it is read */
        const char *h = tmp_str(c);
        if (!c->v->s3 && is_lower_hex(h, TW_SIGV4_HEX_LEN)) {
            memcpy(c->payload_hash, h, TW_SIGV4_HEX_LEN + 1);
            return check_signature(c, secret);
        }
    }
    if ((rc = payload_hash(c)))
        return rc;
    return check_signature(c, secret);
}

tw_status tw__sigv4_verify(const tw_sigv4_request *req, const tw_sigv4_verifier *v,
                          tw_sigv4_result *res, tw_error *err)
{
    if (!res)
        return tw__err(err, TW_EINVAL, "tw__sigv4_verify: no result struct");
    memset(res, 0, sizeof *res);
    if (!req || !req->method || (req->nheaders && !req->headers) || (req->body_len && !req->body) ||
        !v || !v->secret_for || v->max_skew < 0) {
        res->fail = TW_SIGV4_INTERNAL;
        return tw__err(err, TW_EINVAL, "tw__sigv4_verify: invalid arguments");
    }
    vctx *c = calloc(1, sizeof *c);   /* ~2 KiB of parsed state: kept off the server's stack */
    if (!c) {
        res->fail = TW_SIGV4_INTERNAL;
        return tw__err(err, TW_ENOMEM, "tw__sigv4_verify: out of memory");
    }
    c->req = req;
    c->v = v;
    c->res = res;
    c->err = err;
    tw__buf_init(&c->tmp, TW_SIGV4_MAX_HEADER_LEN + 1);
    tw__buf_init(&c->canon, TW_SIGV4_MAX_CANONICAL);
    tw_status rc = verify_steps(c);
    if (!rc) {
        res->fail = TW_SIGV4_OK;
        tw_error_clear(err);
    }
    tw__buf_free(&c->tmp);
    tw__buf_free(&c->canon);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
    return rc;
}

/* ---- signing ------------------------------------------------------------------------------- */

static int name_ptr_cmp(const void *a, const void *b)
{
    return casecmp(*(const char *const *)a, *(const char *const *)b);
}

/* SignedHeaders for the headers hs (n <= the cap): lower-case, sorted, each name once. */
static tw_status signed_list(tw_buf *out, const tw_sigv4_header *hs, size_t n)
{
    const char *names[TW_SIGV4_MAX_SIGNED_HEADERS];
    for (size_t i = 0; i < n; i++)
        names[i] = hs[i].name;
    qsort(names, n, sizeof names[0], name_ptr_cmp);
    tw_status rc = TW_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i && casecmp(names[i], names[i - 1]) == 0)
            continue;
        if (out->len)
            rc = tw__buf_putc(out, ';');
        for (const char *p = names[i]; *p && !rc; p++)
            rc = tw__buf_putc(out, (char)lower((unsigned char)*p));
    }
    return rc;
}

/* The caller's headers: valid names, Host present, none of those the signer adds itself. */
static tw_status check_sign_headers(const tw_sigv4_request *req, tw_error *err)
{
    int host = 0;
    if (req->nheaders > TW_SIGV4_MAX_SIGNED_HEADERS - 3)
        return tw__err(err, TW_ELIMIT, "SigV4 signing: more than %u headers to sign",
                       TW_SIGV4_MAX_SIGNED_HEADERS - 3);
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *name = req->headers[i].name;
        int ok = name && *name && req->headers[i].value;
        for (const char *p = name; ok && *p; p++)
            ok = is_tchar((unsigned char)*p);
        if (!ok)
            return tw__err(err, TW_EINVAL,
                           "SigV4 signing: header %zu has an invalid name or no value", i);
        if (!casecmp(name, "authorization") || !casecmp(name, "x-amz-date") ||
            !casecmp(name, "x-amz-security-token"))
            return tw__err(err, TW_EINVAL, "SigV4 signing: header '%s' is added by the signer",
                           name);
        host = host || !casecmp(name, "host");
    }
    return host ? TW_OK : tw__err(err, TW_EINVAL, "SigV4 signing: the headers must include Host");
}

static tw_status check_sign_args(const tw_sigv4_request *req, const tw_sigv4_credentials *cred,
                                 const tw_sigv4_signer *s, tw_error *err)
{
    if (!req || !req->method || (req->nheaders && !req->headers) || (req->body_len && !req->body) ||
        !cred || !cred->access_key_id || !cred->secret_access_key || !s || !s->region ||
        !s->service)
        return tw__err(err, TW_EINVAL, "SigV4 signing: missing argument");
    if (!scope_part_ok(cred->access_key_id, strlen(cred->access_key_id), TW_SIGV4_MAX_KEY_ID))
        return tw__err(err, TW_EINVAL, "SigV4 signing: malformed access key id");
    if (strlen(cred->secret_access_key) > TW_SIGV4_MAX_SECRET)
        return tw__err(err, TW_EINVAL, "SigV4 signing: secret longer than %u characters",
                       TW_SIGV4_MAX_SECRET);
    if (!scope_part_ok(s->region, strlen(s->region), TW_SIGV4_MAX_SCOPE_PART) ||
        !scope_part_ok(s->service, strlen(s->service), TW_SIGV4_MAX_SCOPE_PART))
        return tw__err(err, TW_EINVAL, "SigV4 signing: malformed region or service");
    return check_sign_headers(req, err);
}

/* The payload hash: the caller's x-amz-content-sha256 (e.g. UNSIGNED-PAYLOAD) or SHA-256(body). */
static tw_status sign_payload_hash(const tw_sigv4_request *req, char hash[TW_SIGV4_HEX_LEN + 1],
                                   int *given, tw_error *err)
{
    tw_buf v;
    tw__buf_init(&v, TW_SIGV4_HEX_LEN);
    tw_status rc = put_header_value(&v, req->headers, req->nheaders, "x-amz-content-sha256", 20,
                                    given);
    if (rc || (*given && v.len == 0)) {
        rc = tw__err(err, TW_EINVAL, "SigV4 signing: invalid x-amz-content-sha256 header");
        goto out;
    }
    if (*given)
        memcpy(hash, v.data, v.len + 1);
    else if (!sha256_hex(req->body, req->body_len, hash))
        rc = tw__err(err, TW_ESYS, "SigV4 signing: hashing the body failed");
out:
    tw__buf_free(&v);
    return rc;
}

tw_status tw__sigv4_sign(const tw_sigv4_request *req, const tw_sigv4_credentials *cred,
                        const tw_sigv4_signer *s, tw_sigv4_signed *out, tw_error *err)
{
    tw_sigv4_header hs[TW_SIGV4_MAX_SIGNED_HEADERS];
    tw_buf names = TW_BUF_INIT, canon = TW_BUF_INIT;
    unsigned char key[32];
    char date8[9], hash[TW_SIGV4_HEX_LEN + 1], sig[TW_SIGV4_HEX_LEN + 1];
    int found;
    tw_status rc;
    if (!out)
        return tw__err(err, TW_EINVAL, "SigV4 signing: no output struct");
    memset(out, 0, sizeof *out);
    if ((rc = check_sign_args(req, cred, s, err)))
        return rc;
    tw__buf_init(&names, TW_SIGV4_MAX_AUTH_LEN);
    tw__buf_init(&canon, TW_SIGV4_MAX_CANONICAL);
    tw__sigv4_format_date(s->now, out->amz_date);
    if (!out->amz_date[0]) {
        rc = tw__err(err, TW_EINVAL, "SigV4 signing: time out of range");
        goto out;
    }
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';

    if ((rc = sign_payload_hash(req, hash, &found, err)))
        goto out;
    size_t n = req->nheaders;
    memcpy(hs, req->headers, n * sizeof hs[0]);
    hs[n++] = (tw_sigv4_header){"X-Amz-Date", out->amz_date};
    if (s->s3 && !found) {
        memcpy(out->content_sha256, hash, sizeof hash);
        hs[n++] = (tw_sigv4_header){"X-Amz-Content-SHA256", out->content_sha256};
    }
    if (cred->session_token && *cred->session_token) {
        out->security_token = cred->session_token;
        hs[n++] = (tw_sigv4_header){"X-Amz-Security-Token", out->security_token};
    }
    tw_sigv4_request full = *req;
    full.headers = hs;
    full.nheaders = n;
    if ((rc = signed_list(&names, hs, n)) ||
        (rc = tw__sigv4_canonical_request(&canon, &full, names.data, hash, s->s3))) {
        rc = tw__err(err, rc, "SigV4 signing: building the canonical request: %s", tw_strerror(rc));
        goto out;
    }
    if ((rc = tw__sigv4_signing_key(cred->secret_access_key, date8, s->region, s->service, key)) ||
        (rc = tw__sigv4_signature(key, out->amz_date, date8, s->region, s->service, &canon, sig))) {
        rc = tw__err(err, rc, "SigV4 signing: computing the signature failed");
        goto out;
    }
    int len = snprintf(out->authorization, sizeof out->authorization,
                       "%s Credential=%s/%s/%s/%s/%s, SignedHeaders=%s, Signature=%s", ALGORITHM,
                       cred->access_key_id, date8, s->region, s->service, TERMINATOR, names.data,
                       sig);
    if (len < 0 || (size_t)len >= sizeof out->authorization) {
        out->authorization[0] = '\0';
        rc = tw__err(err, TW_ETOOBIG, "SigV4 signing: Authorization longer than %u bytes",
                     TW_SIGV4_MAX_AUTH_LEN);
        goto out;
    }
    rc = TW_OK;
out:
    tw__buf_free(&names);
    tw__buf_free(&canon);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

size_t tw__sigv4_added_headers(const tw_sigv4_signed *sig, tw_sigv4_header out[TW_SIGV4_ADDED_MAX])
{
    size_t n = 0;
    out[n++] = (tw_sigv4_header){"X-Amz-Date", sig->amz_date};
    if (sig->content_sha256[0])
        out[n++] = (tw_sigv4_header){"X-Amz-Content-SHA256", sig->content_sha256};
    if (sig->security_token)
        out[n++] = (tw_sigv4_header){"X-Amz-Security-Token", sig->security_token};
    out[n++] = (tw_sigv4_header){"Authorization", sig->authorization};
    return n;
}
