/* aws/awscfg.c: the AWS CLI's shared config and credentials files, and endpoint URLs from them. */
#include "aws/awscfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "common/err.h"

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* [*s, *e) trimmed of blanks at both ends. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_blank(**s))
        (*s)++;
    while (*e > *s && is_blank((*e)[-1]))
        (*e)--;
}

static int span_eq(const char *s, const char *e, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(e - s) == n && memcmp(s, w, n) == 0;
}

/* "[ profile  x ]" matches "profile x": botocore collapses the blanks around the name. */
static int section_eq(const char *s, const char *e, const char *want)
{
    trim(&s, &e);
    const char *sp = strchr(want, ' ');
    if (!sp)
        return span_eq(s, e, want);
    size_t pl = (size_t)(sp - want);
    if ((size_t)(e - s) <= pl || memcmp(s, want, pl) != 0 || !is_blank(s[pl]))
        return 0;
    s += pl;
    trim(&s, &e);
    return span_eq(s, e, sp + 1);
}

static int copy_out(const char *s, const char *e, char *out, size_t outsz)
{
    size_t n = (size_t)(e - s);
    if (n + 1 > outsz || n > TW_AWSCFG_VALUE_MAX)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

int tw__awscfg_get(const char *text, size_t len, const char *section, const char *key, const char *sub,
                   char *out, size_t outsz)
{
    if (!text)
        return 0;
    const char *p = text, *end = text + len;
    int in_section = 0, in_key = 0, found = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *ls = p;
        p = nl ? nl + 1 : end;
        int indented = ls < le && (*ls == ' ' || *ls == '\t');
        trim(&ls, &le);
        if (ls == le || *ls == '#' || *ls == ';')
            continue;
        if (*ls == '[') {
            const char *close = memchr(ls, ']', (size_t)(le - ls));
            in_section = close && section_eq(ls + 1, close, section);
            in_key = 0;
            continue;
        }
        if (!in_section)
            continue;
        const char *eq = memchr(ls, '=', (size_t)(le - ls));
        if (!eq)
            continue;
        const char *ks = ls, *ke = eq, *vs = eq + 1, *ve = le;
        trim(&ks, &ke);
        trim(&vs, &ve);
        if (!indented) {
            in_key = sub && span_eq(ks, ke, key) && vs == ve;
            if (!sub && span_eq(ks, ke, key)) {
                found = copy_out(vs, ve, out, outsz); /* the last one wins, as in botocore */
                if (found < 0)
                    return -1;
            }
        } else if (sub && in_key && span_eq(ks, ke, sub)) {
            found = copy_out(vs, ve, out, outsz);
            if (found < 0)
                return -1;
        }
    }
    return found;
}

static tw_status read_text(const char *path, char **out, size_t *len, tw_error *err)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT || errno == ENOTDIR
                   ? TW_OK
                   : tw__err(err, TW_EIO, "AWS shared file %s: %s", path, strerror(errno));
    struct stat st;
    tw_status rc = TW_OK;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = tw__err(err, TW_EIO, "AWS shared file %s: not a regular file", path);
    } else if ((size_t)st.st_size > TW_AWSCFG_FILE_MAX) {
        rc = tw__err(err, TW_ETOOBIG, "AWS shared file %s: larger than %u bytes", path, TW_AWSCFG_FILE_MAX);
    } else if (!(*out = malloc((size_t)st.st_size + 1))) {
        rc = tw__err(err, TW_ENOMEM, "out of memory reading %s", path);
    } else {
        *len = fread(*out, 1, (size_t)st.st_size, f);
        (*out)[*len] = '\0';
        if (ferror(f)) {
            free(*out);
            *out = NULL;
            rc = tw__err(err, TW_EIO, "AWS shared file %s: read error", path);
        }
    }
    fclose(f);
    return rc;
}

static const char *envs(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

tw_status tw__awscfg_load(tw_aws_files *f, const char *profile, tw_error *err)
{
    memset(f, 0, sizeof *f);
    const char *home = envs("HOME");
    char cfg[4096], cred[4096];
    const char *c = envs("AWS_CONFIG_FILE"), *k = envs("AWS_SHARED_CREDENTIALS_FILE");
    if (!c && home)
        snprintf(cfg, sizeof cfg, "%s/.aws/config", home);
    else
        snprintf(cfg, sizeof cfg, "%s", c ? c : "");
    if (!k && home)
        snprintf(cred, sizeof cred, "%s/.aws/credentials", home);
    else
        snprintf(cred, sizeof cred, "%s", k ? k : "");
    const char *p = profile && *profile ? profile : envs("AWS_PROFILE");
    if (!p)
        p = envs("AWS_DEFAULT_PROFILE");
    f->profile_given = p != NULL;
    if (snprintf(f->profile, sizeof f->profile, "%s", p ? p : "default") >= (int)sizeof f->profile)
        return tw__err(err, TW_EINVAL, "AWS profile name longer than %zu characters", sizeof f->profile - 1);
    tw_status rc = TW_OK;
    if ((*cfg && (rc = read_text(cfg, &f->config, &f->config_len, err))) ||
        (*cred && (rc = read_text(cred, &f->credentials, &f->credentials_len, err))))
        tw__awscfg_free(f);
    return rc;
}

void tw__awscfg_free(tw_aws_files *f)
{
    if (f->credentials)
        OPENSSL_cleanse(f->credentials, f->credentials_len);
    free(f->config);
    free(f->credentials);
    f->config = f->credentials = NULL;
    f->config_len = f->credentials_len = 0;
}

static int config_profile(const tw_aws_files *f, const char *key, const char *sub, char *out, size_t outsz)
{
    char sec[160];
    snprintf(sec, sizeof sec, "profile %s", f->profile);
    int r = tw__awscfg_get(f->config, f->config_len, sec, key, sub, out, outsz);
    if (r == 0 && strcmp(f->profile, "default") == 0)
        r = tw__awscfg_get(f->config, f->config_len, "default", key, sub, out, outsz);
    return r;
}

int tw__awscfg_profile(const tw_aws_files *f, const char *key, char *out, size_t outsz)
{
    int r = tw__awscfg_get(f->credentials, f->credentials_len, f->profile, key, NULL, out, outsz);
    return r ? r : config_profile(f, key, NULL, out, outsz);
}

/* A section exists when its header appears: probe with a key no file has. */
static int has_section(const char *text, size_t len, const char *section)
{
    if (!text)
        return 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *ls = p, *le = nl ? nl : end;
        p = nl ? nl + 1 : end;
        trim(&ls, &le);
        const char *close = ls < le && *ls == '[' ? memchr(ls, ']', (size_t)(le - ls)) : NULL;
        if (close && section_eq(ls + 1, close, section))
            return 1;
    }
    return 0;
}

int tw__awscfg_has_profile(const tw_aws_files *f)
{
    char sec[160];
    snprintf(sec, sizeof sec, "profile %s", f->profile);
    return has_section(f->credentials, f->credentials_len, f->profile) ||
           has_section(f->config, f->config_len, sec) ||
           (strcmp(f->profile, "default") == 0 && has_section(f->config, f->config_len, "default"));
}

static int set_out(const char *v, char *out, size_t outsz)
{
    return snprintf(out, outsz, "%s", v) < (int)outsz ? 1 : -1;
}

int tw__awscfg_endpoint(const tw_aws_files *f, const char *service_env, const char *service_key, char *out,
                        size_t outsz)
{
    const char *ign = envs("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    if (ign && strcasecmp(ign, "true") == 0)
        return 0;
    char name[96];
    snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", service_env);
    const char *v = envs(name);
    if (v || (v = envs("AWS_ENDPOINT_URL")))
        return set_out(v, out, outsz);
    if (config_profile(f, "ignore_configured_endpoint_urls", NULL, out, outsz) == 1 && strcasecmp(out, "true") == 0) {
        out[0] = '\0';
        return 0;
    }
    char services[128];
    if (config_profile(f, "services", NULL, services, sizeof services) == 1) {
        char sec[160];
        snprintf(sec, sizeof sec, "services %s", services);
        int r = tw__awscfg_get(f->config, f->config_len, sec, service_key, "endpoint_url", out, outsz);
        if (r)
            return r;
    }
    return config_profile(f, "endpoint_url", NULL, out, outsz);
}
