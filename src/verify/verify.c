/* verify/verify.c: CloudTrail digest validation (signatures, chain, log file hashes). */
#include "trailwatch/verify.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "aws/client.h"
#include "aws/creds.h"
#include "aws/s3.h"
#include "common/base64.h"
#include "common/err.h"
#include "common/gunzip.h"
#include "json/json_int.h"

/* A digest is a few KiB; 16 MiB leaves room for a day of files listed in one. */
#define DIGEST_MAX      (16u * 1024u * 1024u)
/* Digests held at once (one an hour per region): a year of one region, or a month of 13. */
#define DIGESTS_MAX     20000u
/* Log files are read whole to hash them; CloudTrail writes files of a few MB. */
#define LOG_MAX         (512u * 1024u * 1024u)
#define KEYS_MAX        64u
#define DEPTH_MAX       16

typedef struct digest {
    char *key;                     /* bucket key (S3) or path relative to the folder */
    char hash[65];                 /* SHA-256 of the uncompressed digest */
    char *sig;                     /* hex signature (metadata or .sig), NULL when unknown */
    tw_json_doc *doc;
    int bad;                       /* could not be read */
} digest;

typedef struct pubkey {
    char fingerprint[130];
    EVP_PKEY *key;
} pubkey;

typedef struct vctx {
    const tw_verify_opts *o;
    tw_verify_fn fn;
    void *ctx;
    tw_verify_summary *sum;
    tw_aws_client *client;
    digest *d;
    size_t nd, capd;
    pubkey keys[KEYS_MAX];
    size_t nkeys;
} vctx;

static void report(vctx *v, tw_verify_kind kind, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report(vctx *v, tw_verify_kind kind, const char *key, const char *fmt, ...)
{
    char obj[2048], detail[1024];
    if (v->o->folder)
        snprintf(obj, sizeof obj, "%s/%s", v->o->folder, key);
    else
        snprintf(obj, sizeof obj, "s3://%s/%s", v->o->bucket, key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    tw_verify_finding f = {kind, obj, detail};
    switch (kind) {
    case TW_VERIFY_DIGEST_OK: v->sum->digests_ok++; break;
    case TW_VERIFY_FILE_OK: v->sum->files_ok++; break;
    case TW_VERIFY_MISSING: v->sum->missing++; break;
    case TW_VERIFY_CHANGED: v->sum->changed++; break;
    case TW_VERIFY_UNSIGNED: v->sum->unsigned_digests++; break;
    case TW_VERIFY_INVALID: v->sum->invalid++; break;
    }
    if (v->fn)
        v->fn(v->ctx, &f);
}

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p ? p : "", n, md, &len, EVP_sha256(), NULL);
    to_hex(md, 32, out);
}

static const char *jstr(const tw_json *o, const char *k)
{
    const tw_json *v = tw_json_get(o, k);
    return tw_json_typeof(v) == TW_JSON_STRING ? tw_json_string(v, NULL) : NULL;
}

/* ---- reading objects (S3 or the folder) ---- */

/* The object's bytes (gunzipped when gzip) into out; *found 0 when it does not exist. sig: for
 * digests, the hex signature (S3 metadata or a .sig file), may be NULL. */
static tw_status fetch(vctx *v, const char *key, size_t max, tw_buf *out, char **sig, int *found, tw_error *err)
{
    *found = 1;
    if (sig)
        *sig = NULL;
    tw_buf raw = TW_BUF_INIT;
    tw__buf_init(&raw, max);
    tw_status rc = TW_OK;
    if (v->o->folder) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", v->o->folder, key);
        FILE *f = fopen(path, "rb");
        if (!f) {
            *found = 0;
            tw__buf_free(&raw);
            return errno == ENOENT ? TW_OK : tw__err(err, TW_EIO, "%s: %s", path, strerror(errno));
        }
        char tmp[65536];
        size_t n;
        while (!rc && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
            rc = tw__buf_append(&raw, tmp, n);
        fclose(f);
        if (rc)
            rc = tw__err(err, rc, "%s: larger than %zu bytes", path, max);
        if (!rc && sig) {
            char sp[4200];
            snprintf(sp, sizeof sp, "%s.sig", path);
            FILE *s = fopen(sp, "r");
            char hex[1100];
            if (s && fgets(hex, sizeof hex, s)) {
                hex[strcspn(hex, "\r\n ")] = '\0';
                *sig = strdup(hex);
            }
            if (s)
                fclose(s);
        }
    } else {
        tw_aws_resp resp;
        rc = tw__s3_get(v->client, v->o->bucket, key, max, &resp, err);
        if (rc == TW_ENOTFOUND) {
            *found = 0;
            rc = TW_OK;
        } else if (!rc) {
            tw__buf_free(&raw);
            raw = resp.body;
            resp.body = (tw_buf)TW_BUF_INIT;
            if (sig && resp.meta_signature[0])
                *sig = strdup(resp.meta_signature);
        }
        tw__aws_resp_free(&resp);
    }
    if (!rc && *found) {
        tw_buf_reset(out);
        if (tw__is_gzip(raw.data, raw.len))
            rc = tw__gunzip(raw.data, raw.len, max, out, err);
        else
            rc = tw__buf_append(out, raw.data ? raw.data : "", raw.len);
    }
    tw__buf_free(&raw);
    return rc;
}

/* ---- listing digests ---- */

static int is_digest_key(const char *k)
{
    size_t n = strlen(k);
    return strstr(k, "/CloudTrail-Digest/") && n > 8 && strcmp(k + n - 8, ".json.gz") == 0;
}

/* The digest's time from its name ("..._20240501T120000Z.json.gz"), epoch ms; -1 when none. */
static int64_t digest_time(const char *key)
{
    const char *p = strrchr(key, '_');
    if (!p || strlen(p) < 17)
        return -1;
    struct tm tm = {0};
    char buf[17];
    memcpy(buf, p + 1, 16);
    buf[16] = '\0';
    if (!strptime(buf, "%Y%m%dT%H%M%SZ", &tm))
        return -1;
    return (int64_t)timegm(&tm) * 1000;
}

static tw_status add_digest(vctx *v, const char *key, tw_error *err)
{
    int64_t t = digest_time(key);
    if ((v->o->start_ms && t >= 0 && t < v->o->start_ms) || (v->o->end_ms && t >= v->o->end_ms))
        return TW_OK;
    if (v->nd == DIGESTS_MAX)
        return tw__err(err, TW_ELIMIT, "more than %u digest files: narrow the time range", DIGESTS_MAX);
    if (v->nd == v->capd) {
        size_t cap = v->capd ? v->capd * 2 : 64;
        digest *p = realloc(v->d, cap * sizeof *p);
        if (!p)
            return tw__err(err, TW_ENOMEM, "out of memory");
        v->d = p;
        v->capd = cap;
    }
    memset(&v->d[v->nd], 0, sizeof v->d[0]);
    if (!(v->d[v->nd].key = strdup(key)))
        return tw__err(err, TW_ENOMEM, "out of memory");
    v->nd++;
    return TW_OK;
}

static tw_status walk_folder(vctx *v, const char *rel, int depth, tw_error *err)
{
    if (depth > DEPTH_MAX)
        return TW_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", v->o->folder, rel);
    DIR *d = opendir(path);
    if (!d)
        return depth == 0 ? tw__err(err, TW_ENOTFOUND, "%s: %s", path, strerror(errno)) : TW_OK;
    tw_status rc = TW_OK;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        char full[8200];
        snprintf(full, sizeof full, "%s/%s", v->o->folder, sub);
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = walk_folder(v, sub, depth + 1, err);
        else if (S_ISREG(st.st_mode) && is_digest_key(sub))
            rc = add_digest(v, sub, err);
    }
    closedir(d);
    return rc;
}

static tw_status list_bucket(vctx *v, const char *base, tw_error *err)
{
    char *token = NULL;
    tw_status rc = TW_OK;
    do {
        tw_s3_list page;
        if ((rc = tw__s3_list(v->client, v->o->bucket, base, NULL, token, NULL, 1000, &page, err)))
            break;
        free(token);
        token = page.truncated && page.next_token ? strdup(page.next_token) : NULL;
        for (size_t i = 0; !rc && i < page.n; i++)
            if (is_digest_key(page.items[i].key))
                rc = add_digest(v, page.items[i].key, err);
        tw__s3_list_free(&page);
    } while (!rc && token);
    free(token);
    return rc;
}

static int key_cmp(const void *a, const void *b) { return strcmp(((const digest *)a)->key, ((const digest *)b)->key); }

/* ---- public keys ---- */

static tw_status add_keys(vctx *v, const tw_json *list, tw_error *err)
{
    for (size_t i = 0; i < tw_json_size(list) && v->nkeys < KEYS_MAX; i++) {
        const tw_json *k = tw_json_at(list, i);
        const char *b64 = jstr(k, "Value"), *fp = jstr(k, "Fingerprint");
        if (!b64 || !fp)
            continue;
        size_t n = strlen(b64);
        unsigned char *der = malloc(tw__base64_decoded_max(n));
        size_t dl = der ? tw__base64_decode(b64, n, der) : (size_t)-1;
        const unsigned char *p = der;
        EVP_PKEY *pk = dl != (size_t)-1 ? d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)dl) : NULL;
        if (!pk && dl != (size_t)-1) {
            p = der; /* also SubjectPublicKeyInfo, as a key file written by other tools may hold */
            pk = d2i_PUBKEY(NULL, &p, (long)dl);
        }
        free(der);
        if (!pk)
            return tw__err(err, TW_EINVAL, "public key %zu (fingerprint %.64s): not a DER RSA public key", i, fp);
        snprintf(v->keys[v->nkeys].fingerprint, sizeof v->keys[0].fingerprint, "%s", fp);
        v->keys[v->nkeys++].key = pk;
    }
    return TW_OK;
}

static tw_status load_keys(vctx *v, tw_error *err)
{
    tw_json_doc *doc = NULL;
    tw_status rc;
    tw_limits lim;
    tw_limits_default(&lim);
    lim.event_max = 4u * 1024u * 1024u;
    if (v->o->public_keys) {
        FILE *f = fopen(v->o->public_keys, "rb");
        if (!f)
            return tw__err(err, TW_EIO, "%s: %s", v->o->public_keys, strerror(errno));
        tw_buf b = TW_BUF_INIT;
        tw__buf_init(&b, lim.event_max);
        char tmp[65536];
        size_t n;
        rc = TW_OK;
        while (!rc && (n = fread(tmp, 1, sizeof tmp, f)) > 0)
            rc = tw__buf_append(&b, tmp, n);
        fclose(f);
        if (!rc)
            rc = tw_json_parse(b.data ? b.data : "", b.len, &lim, &doc, err);
        tw__buf_free(&b);
        if (rc) {
            tw__err_prefix(err, "%s", v->o->public_keys);
            return rc;
        }
    } else if ((rc = tw__aws_json(v->client, "cloudtrail", "ListPublicKeys", NULL, "{}", 2, 0, &doc, err))) {
        return rc;
    }
    const tw_json *root = tw_json_root(doc);
    const tw_json *list = tw_json_get(root, "PublicKeyList");
    rc = add_keys(v, list ? list : root, err);
    tw_json_doc_free(doc);
    if (!rc && !v->nkeys)
        rc = tw__err(err, TW_ENOTFOUND, "no public keys (%s)", v->o->public_keys ? v->o->public_keys : "ListPublicKeys");
    return rc;
}

static EVP_PKEY *key_for(vctx *v, const char *fp)
{
    for (size_t i = 0; fp && i < v->nkeys; i++)
        if (strcasecmp(v->keys[i].fingerprint, fp) == 0)
            return v->keys[i].key;
    return NULL;
}

static int verify_sig(EVP_PKEY *k, const char *data, size_t len, const char *hex)
{
    size_t hl = strlen(hex);
    if (hl % 2 || hl > 2048)
        return 0;
    unsigned char sig[1024];
    for (size_t i = 0; i < hl / 2; i++) {
        unsigned int b;
        if (sscanf(hex + 2 * i, "%2x", &b) != 1)
            return 0;
        sig[i] = (unsigned char)b;
    }
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, k) == 1 &&
             EVP_DigestVerify(c, sig, hl / 2, (const unsigned char *)data, len) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

/* ---- checks ---- */

static digest *find(vctx *v, const char *key)
{
    for (size_t i = 0; key && i < v->nd; i++)
        if (strcmp(v->d[i].key, key) == 0)
            return &v->d[i];
    return NULL;
}

static void load_digest(vctx *v, digest *d, tw_error *err)
{
    tw_buf b = TW_BUF_INIT;
    int found;
    tw_error e;
    if (fetch(v, d->key, DIGEST_MAX, &b, &d->sig, &found, &e) || !found) {
        report(v, TW_VERIFY_INVALID, d->key, "cannot read the digest: %s", found ? e.msg : "gone");
        d->bad = 1;
    } else {
        sha256_hex(b.data, b.len, d->hash);
        tw_limits lim;
        tw_limits_default(&lim);
        lim.event_max = DIGEST_MAX;
        if (tw_json_parse(b.data ? b.data : "", b.len, &lim, &d->doc, &e)) {
            report(v, TW_VERIFY_INVALID, d->key, "not a digest: %s", e.msg);
            d->bad = 1;
        }
    }
    tw__buf_free(&b);
    (void)err;
}

static void check_logs(vctx *v, const tw_json *logs)
{
    tw_buf b = TW_BUF_INIT;
    for (size_t i = 0; i < tw_json_size(logs); i++) {
        const tw_json *l = tw_json_at(logs, i);
        const char *obj = jstr(l, "s3Object"), *want = jstr(l, "hashValue"), *bucket = jstr(l, "s3Bucket");
        if (!obj || !want)
            continue;
        v->sum->files++;
        if (!v->o->folder && bucket && strcmp(bucket, v->o->bucket) != 0)
            continue; /* another bucket: not ours to read */
        int found;
        tw_error e;
        if (fetch(v, obj, LOG_MAX, &b, NULL, &found, &e)) {
            report(v, TW_VERIFY_CHANGED, obj, "cannot read the log file: %s", e.msg);
            continue;
        }
        if (!found) {
            report(v, TW_VERIFY_MISSING, obj, "named by a digest, not in the %s", v->o->folder ? "folder" : "bucket");
            continue;
        }
        char h[65];
        sha256_hex(b.data, b.len, h);
        if (strcasecmp(h, want) != 0)
            report(v, TW_VERIFY_CHANGED, obj, "SHA-256 %s, the digest says %s", h, want);
        else
            report(v, TW_VERIFY_FILE_OK, obj, "%s", "");
    }
    tw__buf_free(&b);
}

static void check_digest(vctx *v, size_t i)
{
    digest *d = &v->d[i];
    const tw_json *r = tw_json_root(d->doc);
    const char *end = jstr(r, "digestEndTime"), *bucket = jstr(r, "digestS3Bucket"), *obj = jstr(r, "digestS3Object");
    const char *fp = jstr(r, "digestPublicKeyFingerprint");
    const char *prev_obj = jstr(r, "previousDigestS3Object"), *prev_hash = jstr(r, "previousDigestHashValue");
    const char *prev_sig = jstr(r, "previousDigestSignature");
    v->sum->digests++;
    if (!end || !bucket || !obj || strcmp(obj, d->key) != 0 || (!v->o->folder && strcmp(bucket, v->o->bucket) != 0)) {
        report(v, TW_VERIFY_INVALID, d->key, "the digest names another location (%s/%s) or lacks its fields",
               bucket ? bucket : "?", obj ? obj : "?");
        return;
    }
    const char *sig = d->sig;
    if (!sig) /* the next digest vouches for this one's signature */
        for (size_t k = i + 1; k < v->nd && !sig; k++)
            if (v->d[k].doc) {
                const tw_json *nr = tw_json_root(v->d[k].doc);
                const char *po = jstr(nr, "previousDigestS3Object");
                if (po && strcmp(po, d->key) == 0)
                    sig = jstr(nr, "previousDigestSignature");
            }
    int ok = 1;
    EVP_PKEY *k = key_for(v, fp);
    if (!sig) {
        report(v, TW_VERIFY_UNSIGNED, d->key, "no signature (no x-amz-meta-signature, .sig file or later digest)");
        ok = 0;
    } else if (!k) {
        report(v, TW_VERIFY_UNSIGNED, d->key, "no public key with fingerprint %s", fp ? fp : "(none)");
        ok = 0;
    } else {
        tw_buf data = TW_BUF_INIT;
        tw__buf_printf(&data, "%s\n%s/%s\n%s\n%s", end, bucket, obj, d->hash, prev_sig ? prev_sig : "null");
        if (!verify_sig(k, data.data ? data.data : "", data.len, sig)) {
            report(v, TW_VERIFY_UNSIGNED, d->key, "the signature does not verify with key %s", fp);
            ok = 0;
        }
        tw__buf_free(&data);
    }
    if (prev_obj) {
        digest *p = find(v, prev_obj);
        if (!p && v->o->start_ms && digest_time(prev_obj) < v->o->start_ms) {
            /* before the range: not checked */
        } else if (!p || p->bad) {
            report(v, TW_VERIFY_MISSING, prev_obj, "the previous digest of %s is not there", d->key);
            ok = 0;
        } else if (!prev_hash || strcasecmp(p->hash, prev_hash) != 0) {
            report(v, TW_VERIFY_CHANGED, prev_obj, "SHA-256 %s, the next digest says %s", p->hash,
                   prev_hash ? prev_hash : "nothing");
            ok = 0;
        } else if (p->sig && prev_sig && strcasecmp(p->sig, prev_sig) != 0) {
            report(v, TW_VERIFY_UNSIGNED, prev_obj, "its signature is not the one the next digest recorded");
            ok = 0;
        }
    }
    if (ok)
        report(v, TW_VERIFY_DIGEST_OK, d->key, "%s", "");
    check_logs(v, tw_json_get(r, "logFiles"));
}

tw_status tw_verify_run(const tw_verify_opts *o, tw_verify_fn fn, void *ctx, tw_verify_summary *sum, tw_error *err)
{
    memset(sum, 0, sizeof *sum);
    if (!o || (!o->folder && !o->bucket))
        return tw__err(err, TW_EINVAL, "verify: give a bucket or a folder");
    vctx v;
    memset(&v, 0, sizeof v);
    v.o = o;
    v.fn = fn;
    v.ctx = ctx;
    v.sum = sum;
    tw_status rc = TW_OK;
    if (!o->folder || !o->public_keys) {
        tw_aws_settings s = {.profile = o->profile, .region = o->region, .endpoint_url = o->endpoint_url};
        if ((rc = tw__aws_client_new(&s, &v.client, err)))
            goto out;
    }
    if ((rc = load_keys(&v, err)))
        goto out;
    char base[2048];
    snprintf(base, sizeof base, "%s%sAWSLogs/", o->prefix ? o->prefix : "", o->prefix && *o->prefix ? "/" : "");
    if (o->folder) {
        base[strlen(base) - 1] = '\0';
        rc = walk_folder(&v, base, 0, err);
    } else {
        rc = list_bucket(&v, base, err);
    }
    if (rc)
        goto out;
    if (v.nd)
        qsort(v.d, v.nd, sizeof *v.d, key_cmp);
    for (size_t i = 0; i < v.nd; i++)
        load_digest(&v, &v.d[i], err);
    for (size_t i = 0; i < v.nd; i++)
        if (!v.d[i].bad)
            check_digest(&v, i);
out:
    for (size_t i = 0; i < v.nd; i++) {
        free(v.d[i].key);
        free(v.d[i].sig);
        tw_json_doc_free(v.d[i].doc);
    }
    free(v.d);
    for (size_t i = 0; i < v.nkeys; i++)
        EVP_PKEY_free(v.keys[i].key);
    tw__aws_client_free(v.client);
    return rc;
}
