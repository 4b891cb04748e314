/* archive/extract.c: the indexed fields, the normalised principal and the resources of one event. */
#include "archive/extract.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/hash.h"
#include "event/envelope.h"

static const char *str(const tw_json *v, const char *key)
{
    const tw_json *m = v ? tw_json_get(v, key) : NULL;
    return m && tw_json_typeof(m) == TW_JSON_STRING ? tw_json_string(m, NULL) : NULL;
}

static const char *or_empty(const char *s) { return s ? s : ""; }

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* ---- time ---- */

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int64_t tw__arch_parse_time(const char *s, size_t n)
{
    int y, mo, d, h = 0, mi = 0, se = 0, ms = 0;
    if (n < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d))
        return -1;
    size_t i = 10;
    if (i < n && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
        if (n < i + 9 || digits(s + i + 1, 2, &h) || s[i + 3] != ':' || digits(s + i + 4, 2, &mi) ||
            s[i + 6] != ':' || digits(s + i + 7, 2, &se))
            return -1;
        i += 9;
        if (i < n && s[i] == '.') {
            int scale = 100;
            for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
                ms += (s[i] - '0') * scale;
        }
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (n < i + 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || digits(s + i + 4, 2, &om))
            return -1;
        off = (int64_t)(oh * 60 + om) * 60 * (s[i] == '+' ? 1 : -1);
        i += 6;
    }
    if (i != n || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off;
    return t * 1000 + ms;
}

/* ---- short forms and terms ---- */

void tw__arch_short(const char *s, size_t n, const char **out, size_t *out_len)
{
    *out = s;
    *out_len = n;
    if (n < 4 || memcmp(s, "arn:", 4) != 0)
        return;
    /* arn:partition:service:region:account:resource */
    const char *p = s, *end = s + n, *service = NULL;
    for (int colons = 0; colons < 5; colons++) {
        const char *c = memchr(p, ':', (size_t)(end - p));
        if (!c)
            return;
        p = c + 1;
        if (colons == 1)
            service = p;
    }
    if (p == end)
        return;
    const char *r = p;
    if (service && (size_t)(end - service) > 3 && memcmp(service, "s3:", 3) == 0) {
        const char *slash = memchr(r, '/', (size_t)(end - r));
        *out = r;
        *out_len = slash ? (size_t)(slash - r) : (size_t)(end - r);
        return;
    }
    const char *last = NULL;
    for (const char *q = r; q < end; q++)
        if (*q == '/')
            last = q;
    if (last && last + 1 < end) {
        *out = last + 1;
        *out_len = (size_t)(end - last - 1);
        return;
    }
    const char *colon = memchr(r, ':', (size_t)(end - r));
    if (colon && colon + 1 < end)
        r = colon + 1;
    *out = r;
    *out_len = (size_t)(end - r);
}

int32_t tw__arch_term(int kind, const char *s, size_t n)
{
    uint64_t h = tw__hash_bytes(s, n, 0x7477617263680000ULL + (uint64_t)kind);
    return (int32_t)(uint32_t)(h ^ (h >> 32));
}

static size_t add_term(int32_t *terms, size_t n, size_t cap, int32_t t)
{
    for (size_t i = 0; i < n; i++)
        if (terms[i] == t)
            return n;
    if (n < cap)
        terms[n++] = t;
    return n;
}

static size_t add_short(int32_t *terms, size_t n, size_t cap, int kind, const char *s)
{
    const char *sh;
    size_t len;
    if (!*s)
        return n;
    tw__arch_short(s, strlen(s), &sh, &len);
    return add_term(terms, n, cap, tw__arch_term(kind, sh, len));
}

size_t tw__arch_terms(const tw__arch_fields *f, int32_t *terms, size_t cap)
{
    size_t n = 0;
    if (*f->id)
        n = add_term(terms, n, cap, tw__arch_term(TW_ARCH_TERM_ID, f->id, strlen(f->id)));
    if (*f->event_name)
        n = add_term(terms, n, cap, tw__arch_term(TW_ARCH_TERM_NAME, f->event_name, strlen(f->event_name)));
    if (*f->source_ip)
        n = add_term(terms, n, cap, tw__arch_term(TW_ARCH_TERM_IP, f->source_ip, strlen(f->source_ip)));
    for (size_t i = 0; i < f->nidentities; i++)
        n = add_short(terms, n, cap, TW_ARCH_TERM_WHO, f->identities[i]);
    for (size_t i = 0; i < f->nresources; i++)
        n = add_short(terms, n, cap, TW_ARCH_TERM_RESOURCE, f->resources[i]);
    return n;
}

int tw__arch_body_has_id(const char *body, size_t len, const char *id)
{
    tw__arch_fields f;
    int same = tw__arch_extract(body, len, &f, NULL) == TW_OK && strcmp(f.id, id) == 0;
    tw__arch_fields_free(&f);
    return same;
}

/* ---- matching a query's resource / principal against the event ---- */

/* An S3 ARN (arn:PARTITION:s3:::BUCKET[/KEY]): 0 when s is none, 1 for a bucket (also BUCKET/), 2 for
 * an object. */
static int s3_arn(const char *s)
{
    if (strncmp(s, "arn:", 4) != 0)
        return 0;
    const char *p = strchr(s + 4, ':');
    if (!p || strncmp(p + 1, "s3:", 3) != 0)
        return 0;
    for (int colons = 0; colons < 3; colons++)   /* past service, region and account */
        if (!(p = strchr(p + 1, ':')))
            return 0;
    const char *slash = strchr(p + 1, '/');
    return slash && slash[1] ? 2 : 1;
}

/* a: a value of the event, b: what the query names. */
static int same_thing(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return 1;
    /* an object's short form is its bucket, which names more than the object: only its ARN names it */
    int sa3 = s3_arn(a), sb3 = s3_arn(b);
    if (sb3 == 2)
        return 0;
    const char *sa, *sb;
    size_t na, nb;
    tw__arch_short(a, strlen(a), &sa, &na);
    tw__arch_short(b, strlen(b), &sb, &nb);
    /* a bucket's ARN with a trailing slash (HeadBucket's resources) is the bucket */
    if (sa3 == 1 && sb3 == 1)
        return na == nb && memcmp(sa, sb, na) == 0;
    /* "i-0abc" names arn:...:instance/i-0abc; two different ARNs with the same id do not match */
    if (sa == a && na == nb && memcmp(a, sb, na) == 0)
        return 1;
    if (sb == b && na == nb && memcmp(b, sa, nb) == 0)
        return 1;
    return 0;
}

int tw__arch_has_resource(const tw__arch_fields *f, const char *resource)
{
    for (size_t i = 0; i < f->nresources; i++)
        if (same_thing(f->resources[i], resource))
            return 1;
    return 0;
}

int tw__arch_has_identity(const tw__arch_fields *f, const char *who)
{
    for (size_t i = 0; i < f->nidentities; i++)
        if (same_thing(f->identities[i], who))
            return 1;
    return 0;
}

int tw__arch_mutating(const tw__arch_fields *f)
{
    if (f->read_only >= 0)
        return !f->read_only;
    static const char *const readers[] = {"Describe", "Get", "List", "Head", "Lookup", "Search", "Check",
                                          "Scan", "Query", "Select", "View", "BatchGet", "Test", "Validate",
                                          "Preview", "Estimate", "Simulate", "Decrypt", "Verify", NULL};
    for (size_t i = 0; readers[i]; i++)
        if (strncmp(f->event_name, readers[i], strlen(readers[i])) == 0)
            return 0;
    return 1;
}

/* ---- resources ---- */

static int add_resource(tw__arch_fields *f, const char *s, size_t n)
{
    if (n == 0 || n > TW_ARCH_MAX_RESOURCE_LEN || f->nresources >= TW_ARCH_MAX_RESOURCES)
        return 0;
    for (size_t i = 0; i < f->nresources; i++)
        if (strcmp(f->resources[i], s) == 0)
            return 0;
    if (f->nresources == f->capresources) {
        size_t cap = f->capresources ? f->capresources * 2 : 16;
        const char **v = realloc(f->resources, cap * sizeof *v);
        if (!v)
            return -1;
        f->resources = v;
        f->capresources = cap;
    }
    f->resources[f->nresources++] = s;
    return 0;
}

/* "i-0abc12", "sg-0123abcd", "vpc-...", "subnet-...", "ami-...": an EC2-style id, whatever its key. */
static int looks_like_id(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && i < 12 && s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i == 0 || i >= n || s[i] != '-' || n - i - 1 < 8 || n - i - 1 > 32)
        return 0;
    for (i++; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Keys whose string values name a resource: ...Id, ...Name, ...Arn, ...Identifier, ...Url and a few
 * bare names; not tokens, request ids or the accounts that own things. */
static int resource_key(const char *k, size_t n)
{
    static const char *const deny[] = {"requestId", "clientToken", "clientRequestToken", "ownerId", "accountId",
                                       "requesterId", "principalId", "regionName", "availabilityZoneId",
                                       "eventId", "idempotencyToken", "callerReference", "requestID", NULL};
    for (size_t i = 0; deny[i]; i++)
        if (strlen(deny[i]) == n && memcmp(k, deny[i], n) == 0)
            return 0;
    static const char *const bare[] = {"name", "bucket", "arn", "id", "Name", "Arn", "ARN", "Id", "key",
                                       "queueUrl", "resource", "Resource", NULL};
    for (size_t i = 0; bare[i]; i++)
        if (strlen(bare[i]) == n && memcmp(k, bare[i], n) == 0)
            return 1;
    static const char *const suffix[] = {"Id", "Ids", "ID", "Name", "Names", "Arn", "Arns", "ARN", "Identifier",
                                         "Identifiers", "Url", NULL};
    for (size_t i = 0; suffix[i]; i++)
        if (ends_with(k, n, suffix[i]))
            return 1;
    return 0;
}

static int walk(tw__arch_fields *f, const tw_json *v, int keyed, unsigned depth)
{
    if (depth > 64)
        return 0;
    switch (tw_json_typeof(v)) {
    case TW_JSON_STRING: {
        size_t n;
        const char *s = tw_json_string(v, &n);
        if (strlen(s) != n)
            return 0;
        if (keyed || (n > 4 && memcmp(s, "arn:", 4) == 0) || looks_like_id(s, n))
            return add_resource(f, s, n);
        return 0;
    }
    case TW_JSON_ARRAY:
        for (size_t i = 0; i < tw_json_size(v); i++)
            if (walk(f, tw_json_at(v, i), keyed, depth + 1))
                return -1;
        return 0;
    case TW_JSON_OBJECT:
        for (size_t i = 0; i < tw_json_size(v); i++) {
            size_t kn;
            const char *k = tw_json_key(v, i, &kn);
            if (walk(f, tw_json_at(v, i), resource_key(k, kn), depth + 1))
                return -1;
        }
        return 0;
    default:
        return 0;
    }
}

static int resources_of(tw__arch_fields *f, const tw_json *env, const tw_json *rec)
{
    const tw_json *lists[2] = {rec ? tw_json_get(rec, "resources") : NULL, env ? tw_json_get(env, "resources") : NULL};
    for (int l = 0; l < 2; l++) {
        const tw_json *rs = lists[l];
        if (!rs || tw_json_typeof(rs) != TW_JSON_ARRAY)
            continue;
        for (size_t i = 0; i < tw_json_size(rs); i++) {
            const tw_json *r = tw_json_at(rs, i);
            const char *s = tw_json_typeof(r) == TW_JSON_STRING ? tw_json_string(r, NULL) : str(r, "ARN");
            if (!s)
                s = str(r, "arn");
            if (s && add_resource(f, s, strlen(s)))
                return -1;
        }
    }
    if (!rec)
        return 0;
    const tw_json *rp = tw_json_get(rec, "requestParameters"), *re = tw_json_get(rec, "responseElements");
    if ((rp && walk(f, rp, 0, 0)) || (re && walk(f, re, 0, 0)))
        return -1;
    return 0;
}

/* ---- principal ---- */

static void identity(tw__arch_fields *f, const char *s)
{
    if (!s || !*s || f->nidentities >= TW_ARCH_MAX_IDENTITIES)
        return;
    for (size_t i = 0; i < f->nidentities; i++)
        if (strcmp(f->identities[i], s) == 0)
            return;
    f->identities[f->nidentities++] = s;
}

static const char *after_last(const char *s, char c)
{
    const char *p = strrchr(s, c);
    return p ? p + 1 : s;
}

static int principal_of(tw__arch_fields *f, const tw_json *rec)
{
    const tw_json *ui = rec ? tw_json_get(rec, "userIdentity") : NULL;
    if (!ui || tw_json_typeof(ui) != TW_JSON_OBJECT)
        return 0;
    const char *type = or_empty(str(ui, "type")), *arn = str(ui, "arn"), *user = str(ui, "userName");
    const char *pid = str(ui, "principalId"), *invoked = str(ui, "invokedBy"), *acct = str(ui, "accountId");
    const tw_json *sc = tw_json_get(ui, "sessionContext");
    const tw_json *issuer = sc ? tw_json_get(sc, "sessionIssuer") : NULL;
    const char *iarn = str(issuer, "arn"), *iuser = str(issuer, "userName");
    const char *src_id = str(sc, "sourceIdentity");
    if (!src_id)
        src_id = str(rec, "sourceIdentity");
    const tw_json *obo = tw_json_get(ui, "onBehalfOf");
    const char *obo_user = str(obo, "userId");
    f->principal_type = type;
    if (strcmp(type, "AWSService") == 0) {
        f->principal = or_empty(invoked ? invoked : pid);
    } else if (strcmp(type, "Root") == 0) {
        f->principal = arn ? arn : "root";
        identity(f, "root");
    } else if (strcmp(type, "AssumedRole") == 0 || strcmp(type, "FederatedUser") == 0) {
        f->principal = or_empty(arn ? arn : pid);
        f->role = or_empty(iarn);
        if (strcmp(type, "AssumedRole") == 0 && arn && strstr(arn, ":assumed-role/"))
            f->session = after_last(arn, '/');
        else if (strcmp(type, "FederatedUser") == 0 && arn)
            f->session = after_last(arn, '/');
        if (pid && !*f->session && strchr(pid, ':'))
            f->session = after_last(pid, ':');
    } else if (strcmp(type, "AWSAccount") == 0) {
        f->principal = or_empty(acct ? acct : pid);
    } else {
        f->principal = or_empty(arn ? arn : user ? user : pid ? pid : invoked);
    }
    if (src_id)
        f->behind = src_id;
    else if (obo_user)
        f->behind = obo_user;
    identity(f, f->principal);
    identity(f, arn);
    identity(f, user);
    identity(f, iarn);
    identity(f, iuser);
    identity(f, *f->session ? f->session : NULL);
    identity(f, src_id);
    identity(f, obo_user);
    identity(f, str(obo, "identityStoreArn"));
    identity(f, invoked);
    identity(f, str(ui, "accessKeyId"));
    return 0;
}

/* ---- the event ---- */

static void clear(tw__arch_fields *f)
{
    f->id = f->event_name = f->event_source = f->account = f->region = f->source = f->detail_type = "";
    f->error_code = f->source_ip = f->principal = f->principal_type = f->role = f->session = f->behind = "";
    f->read_only = -1;
    f->time_ms = 0;
    f->nidentities = f->nresources = 0;
}

tw_status tw__arch_extract(const char *json, size_t len, tw__arch_fields *f, tw_error *err)
{
    memset(f, 0, sizeof *f);
    clear(f);
    tw_status rc = tw_json_parse(json, len, NULL, &f->doc, err);
    if (rc)
        return rc;
    const tw_json *root = tw_json_root(f->doc);
    if (tw_json_typeof(root) != TW_JSON_OBJECT) {
        rc = tw__err(err, TW_EEVENT, "the event is a JSON %s, not an object", tw_json_type_name(tw_json_typeof(root)));
        goto fail;
    }
    const tw_json *env = NULL, *rec = root;
    if (tw_json_get(root, "detail-type") || (tw_json_get(root, "detail") && !tw_json_get(root, "eventVersion"))) {
        env = root;
        rec = tw_json_get(root, "detail");
        if (rec && tw_json_typeof(rec) != TW_JSON_OBJECT)
            rec = NULL;
    }
    const char *t = NULL;
    if (env) {
        f->id = or_empty(str(rec, "eventID"));
        if (!*f->id)
            f->id = or_empty(str(env, "id"));
        f->account = or_empty(str(env, "account"));
        f->region = or_empty(str(env, "region"));
        f->source = or_empty(str(env, "source"));
        f->detail_type = or_empty(str(env, "detail-type"));
        t = str(env, "time");
        if (!t)
            t = str(rec, "eventTime");
    } else {
        f->id = or_empty(str(rec, "eventID"));
        f->account = or_empty(str(rec, "recipientAccountId"));
        f->region = or_empty(str(rec, "awsRegion"));
        t = str(rec, "eventTime");
        const char *et = str(rec, "eventType");
        f->detail_type = tw__envelope_detail_type(et, et ? strlen(et) : 0);
    }
    if (rec) {
        f->event_name = or_empty(str(rec, "eventName"));
        f->event_source = or_empty(str(rec, "eventSource"));
        f->error_code = or_empty(str(rec, "errorCode"));
        f->source_ip = or_empty(str(rec, "sourceIPAddress"));
        const tw_json *ro = tw_json_get(rec, "readOnly");
        if (ro && tw_json_typeof(ro) == TW_JSON_TRUE)
            f->read_only = 1;
        else if (ro && tw_json_typeof(ro) == TW_JSON_FALSE)
            f->read_only = 0;
        if (!*f->account) {
            const tw_json *ui = tw_json_get(rec, "userIdentity");
            f->account = or_empty(str(ui, "accountId"));
        }
        if (!*f->region)
            f->region = or_empty(str(rec, "awsRegion"));
    }
    if (!*f->source && *f->event_source) {
        size_t svc;
        tw__envelope_service(f->event_source, strlen(f->event_source), &svc);
        char *s = tw__arena_alloc(&f->arena, svc + 5);
        if (!s) {
            rc = tw__err(err, TW_ENOMEM, "archive: out of memory");
            goto fail;
        }
        memcpy(s, "aws.", 4);
        memcpy(s + 4, f->event_source, svc);
        s[svc + 4] = '\0';
        f->source = s;
    }
    if (t)
        f->time_ms = tw__arch_parse_time(t, strlen(t));
    if (f->time_ms < 0)
        f->time_ms = 0;
    if (principal_of(f, rec) || resources_of(f, env, rec)) {
        rc = tw__err(err, TW_ENOMEM, "archive: out of memory");
        goto fail;
    }
    return TW_OK;
fail:
    tw__arch_fields_free(f);
    clear(f);
    return rc;
}

void tw__arch_fields_free(tw__arch_fields *f)
{
    tw_json_doc_free(f->doc);
    f->doc = NULL;
    free(f->resources);
    f->resources = NULL;
    f->nresources = f->capresources = 0;
    tw__arena_free(&f->arena);
}
