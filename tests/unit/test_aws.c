/* Unit tests: the AWS client: shared files, endpoints, region, credentials chain (environment,
 * profiles, credential_process, container endpoint, IMDSv2), retries with backoff, error codes,
 * signatures as a server sees them, the S3 listing XML and notification bodies.
 *
 * A small libmicrohttpd server on 127.0.0.1 plays AWS (and the metadata endpoints): it verifies each
 * request's SigV4 signature with trailwatch's verifier (which matches every captured AWS CLI request)
 * and answers from a script. */
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/awscfg.h"
#include "aws/client.h"
#include "aws/creds.h"
#include "aws/s3.h"
#include "aws/sigv4.h"
#include "aws/xml.h"
#include "source/notify.h"
#include "tw_test.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

/* ---- environment ---- */

static char tmpdir[256];

static void remove_tmpdir(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/config", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/credentials", tmpdir);
    unlink(p);
    rmdir(tmpdir);
}

static void clean_env(void)
{
    static const char *const vars[] = {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
        "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_S3",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_MAX_ATTEMPTS", NULL};
    for (size_t i = 0; vars[i]; i++)
        unsetenv(vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/tw-unit-aws-XXXXXX");
        if (!mkdtemp(tmpdir))
            abort();
        atexit(remove_tmpdir);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/config", tmpdir);
    setenv("AWS_CONFIG_FILE", p, 1);
    snprintf(p, sizeof p, "%s/credentials", tmpdir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    snprintf(p, sizeof p, "%s/config", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/credentials", tmpdir);
    unlink(p);
}

static void write_file(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

/* ---- shared files and endpoints ---- */

static const char CONFIG[] = "# comment\n"
                             "[default]\n"
                             "region = eu-west-1\n"
                             "endpoint_url = http://default.example:1\n"
                             "[profile dev]\n"
                             "region=eu-central-1\n"
                             "services = local\n"
                             "credential_process = printf '%s' '{\"Version\":1,\"AccessKeyId\":\"AKIDPROC\","
                             "\"SecretAccessKey\":\"procsecret\",\"SessionToken\":\"proctoken\","
                             "\"Expiration\":\"2099-01-01T00:00:00Z\"}'\n"
                             "[services local]\n"
                             "ssm =\n"
                             "  endpoint_url = http://ssm.local:2\n"
                             "s3 =\n"
                             "  endpoint_url = http://s3.local:3\n"
                             "[profile broken]\n"
                             "credential_process = sh -c 'echo nope; exit 3'\n";

static const char CREDS[] = "[default]\n"
                            "aws_access_key_id = AKIDFILE\n"
                            "aws_secret_access_key = filesecret\n"
                            "[tokened]\n"
                            "aws_access_key_id = AKIDTOK\n"
                            "aws_secret_access_key = toksecret\n"
                            "aws_session_token = the-token\n";

TW_TEST(shared_files_profiles_and_nested_services)
{
    clean_env();
    write_file("config", CONFIG);
    write_file("credentials", CREDS);
    tw_aws_files f;
    tw_error err;
    REQUIRE(tw__awscfg_load(&f, NULL, &err) == TW_OK);
    char v[256];
    CHECK_EQ_STR(f.profile, "default");
    CHECK_EQ_INT(tw__awscfg_profile(&f, "region", v, sizeof v), 1);
    CHECK_EQ_STR(v, "eu-west-1");
    CHECK_EQ_INT(tw__awscfg_profile(&f, "aws_access_key_id", v, sizeof v), 1);
    CHECK_EQ_STR(v, "AKIDFILE");
    CHECK_EQ_INT(tw__awscfg_endpoint(&f, "SSM", "ssm", v, sizeof v), 1);
    CHECK_EQ_STR(v, "http://default.example:1");
    tw__awscfg_free(&f);

    setenv("AWS_PROFILE", "dev", 1);
    REQUIRE(tw__awscfg_load(&f, NULL, &err) == TW_OK);
    CHECK_EQ_STR(f.profile, "dev");
    CHECK_EQ_INT(tw__awscfg_endpoint(&f, "SSM", "ssm", v, sizeof v), 1);
    CHECK_EQ_STR(v, "http://ssm.local:2");
    CHECK_EQ_INT(tw__awscfg_endpoint(&f, "S3", "s3", v, sizeof v), 1);
    CHECK_EQ_STR(v, "http://s3.local:3");
    CHECK_EQ_INT(tw__awscfg_endpoint(&f, "SQS", "sqs", v, sizeof v), 0);
    /* the environment wins: the service's own variable first */
    setenv("AWS_ENDPOINT_URL", "http://all:4", 1);
    CHECK_EQ_INT(tw__awscfg_endpoint(&f, "SQS", "sqs", v, sizeof v), 1);
    CHECK_EQ_STR(v, "http://all:4");
    setenv("AWS_ENDPOINT_URL_SSM", "http://only-ssm:5", 1);
    CHECK_EQ_INT(tw__awscfg_endpoint(&f, "SSM", "ssm", v, sizeof v), 1);
    CHECK_EQ_STR(v, "http://only-ssm:5");
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    CHECK_EQ_INT(tw__awscfg_endpoint(&f, "SSM", "ssm", v, sizeof v), 0);
    tw__awscfg_free(&f);

    /* an over-long value is refused, not cut */
    char small[4];
    CHECK_EQ_INT(tw__awscfg_get("[a]\nk = 12345\n", 14, "a", "k", NULL, small, sizeof small), -1);
    /* the last of a repeated key wins; other sections do not leak in */
    CHECK_EQ_INT(tw__awscfg_get("[a]\nk=1\n[b]\nk=2\n[a]\nk=3\n", 24, "a", "k", NULL, v, sizeof v), 1);
    CHECK_EQ_STR(v, "3");
    clean_env();
}

TW_TEST(region_and_endpoints_of_the_client)
{
    clean_env();
    write_file("config", CONFIG);
    tw_aws_client *c;
    tw_error err;
    REQUIRE(tw__aws_client_new(NULL, &c, &err) == TW_OK);
    CHECK_EQ_STR(tw__aws_client_region(c), "eu-west-1"); /* the profile's */
    tw__aws_client_free(c);
    setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
    REQUIRE(tw__aws_client_new(NULL, &c, &err) == TW_OK);
    CHECK_EQ_STR(tw__aws_client_region(c), "ap-south-1");
    tw__aws_client_free(c);
    setenv("AWS_REGION", "us-west-2", 1);
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    REQUIRE(tw__aws_client_new(NULL, &c, &err) == TW_OK);
    CHECK_EQ_STR(tw__aws_client_region(c), "us-west-2");
    int configured = 1;
    CHECK_EQ_STR(tw__aws_endpoint(c, "ssm", &configured), "https://ssm.us-west-2.amazonaws.com");
    CHECK_EQ_INT(configured, 0);
    tw__aws_client_free(c);
    tw_aws_endpoint eps[] = {{"ssm", "http://127.0.0.1:9/"}};
    tw_aws_settings s = {.region = "eu-north-1", .endpoints = eps, .nendpoints = 1};
    REQUIRE(tw__aws_client_new(&s, &c, &err) == TW_OK);
    CHECK_EQ_STR(tw__aws_client_region(c), "eu-north-1");
    CHECK_EQ_STR(tw__aws_endpoint(c, "ssm", &configured), "http://127.0.0.1:9");
    CHECK_EQ_INT(configured, 1);
    tw__aws_client_free(c);
    s.region = "not a region";
    CHECK_EQ_INT(tw__aws_client_new(&s, &c, &err), TW_ECONFIG);
    s = (tw_aws_settings){.profile = "nosuchprofile"};
    CHECK_EQ_INT(tw__aws_client_new(&s, &c, &err), TW_ECONFIG);
    CHECK_CONTAINS(err.msg, "nosuchprofile");
    clean_env();
}

/* ---- credentials ---- */

static tw_status creds_of(const char *profile, tw_aws_cred *out, tw_error *err)
{
    tw_aws_files f;
    tw_aws_creds_provider *p = NULL;
    tw_status rc = tw__awscfg_load(&f, profile, err);
    if (!rc)
        rc = tw__creds_new(&f, NULL, NULL, NULL, 2000, &p, err);
    if (!rc)
        rc = tw__creds_get(p, out, err);
    tw__creds_free(p);
    tw__awscfg_free(&f);
    return rc;
}

TW_TEST(credentials_chain_environment_files_process)
{
    clean_env();
    write_file("config", CONFIG);
    write_file("credentials", CREDS);
    tw_aws_cred c;
    tw_error err;
    REQUIRE(creds_of(NULL, &c, &err) == TW_OK);
    CHECK_EQ_STR(c.access_key_id, "AKIDFILE");
    CHECK_EQ_STR(c.source, "shared-file");
    REQUIRE(creds_of("tokened", &c, &err) == TW_OK);
    CHECK_EQ_STR(c.session_token, "the-token");
    REQUIRE(creds_of("dev", &c, &err) == TW_OK);
    CHECK_EQ_STR(c.access_key_id, "AKIDPROC");
    CHECK_EQ_STR(c.secret_access_key, "procsecret");
    CHECK_EQ_STR(c.session_token, "proctoken");
    CHECK_EQ_STR(c.source, "process");
    CHECK(c.expires_ms > 4000000000000LL);
    CHECK_EQ_INT(creds_of("broken", &c, &err), TW_EAUTH);
    CHECK_CONTAINS(err.msg, "credential_process");
    CHECK_CONTAINS(err.msg, "exit status 3");
    /* the environment wins over every file */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    REQUIRE(creds_of("dev", &c, &err) == TW_OK);
    CHECK_EQ_STR(c.access_key_id, "AKIDENV");
    CHECK_EQ_STR(c.session_token, "envtoken");
    CHECK_EQ_STR(c.source, "environment");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    CHECK_EQ_INT(creds_of(NULL, &c, &err), TW_EAUTH);
    CHECK(strstr(err.msg, "AKIDENV") == NULL);
    clean_env();
    /* nothing anywhere: a message naming what was tried */
    CHECK_EQ_INT(creds_of(NULL, &c, &err), TW_EAUTH);
    CHECK_CONTAINS(err.msg, "no AWS credentials");
    tw__creds_wipe(&c);
}

TW_TEST(credential_documents)
{
    tw_aws_cred c;
    tw_error err;
    const char *ok = "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":\"T\","
                     "\"Expiration\":\"2030-01-01T00:00:00.123+01:00\"}";
    REQUIRE(tw__creds_parse_doc(ok, strlen(ok), "imds", &c, &err) == TW_OK);
    CHECK_EQ_STR(c.session_token, "T");
    CHECK(c.expires_ms == 1893452400000LL);
    const char *bad[] = {"", "[]", "{\"AccessKeyId\":\"A\"}", "{\"Code\":\"Failure\"}",
                         "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"tomorrow\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(tw__creds_parse_doc(bad[i], strlen(bad[i]), "x", &c, &err), TW_EAUTH);
    CHECK(tw__aws_parse_time("2024-05-01T12:00:00Z") == 1714564800000LL);
    CHECK(tw__aws_parse_time("2024-05-01 12:00:00") == -1);
}

/* ---- a scripted AWS on loopback ---- */

typedef struct script {
    int statuses[8];               /* answers in order, then the last one forever */
    const char *bodies[8];
    int n, calls;
    int verify;                    /* check SigV4 of every request */
    int bad_signatures;
    char last_target[128], last_auth[512], last_token[256], last_path[512];
    char imds_token[64];
    pthread_mutex_t lock;
} script;

static script S = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *secret_for(void *ctx, const char *akid)
{
    (void)ctx;
    return strcmp(akid, "AKIDTEST") == 0 ? SECRET : NULL;
}

typedef struct req_body {
    char *data;
    size_t len;
} req_body;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    tw_sigv4_header *hs = ((void **)cls)[0];
    size_t *n = ((void **)cls)[1];
    if (*n < 64)
        hs[(*n)++] = (tw_sigv4_header){key, value};
    return MHD_YES;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    req_body *rb = *con_cls;
    if (!rb) {
        *con_cls = calloc(1, sizeof *rb);
        return MHD_YES;
    }
    if (*upload_size) {
        rb->data = realloc(rb->data, rb->len + *upload_size + 1);
        memcpy(rb->data + rb->len, upload, *upload_size);
        rb->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&S.lock);
    int i = S.calls < S.n ? S.calls : S.n - 1;
    S.calls++;
    int status = S.statuses[i];
    const char *body = S.bodies[i];
    snprintf(S.last_path, sizeof S.last_path, "%s %s", method, url);
    const char *t = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Amz-Target");
    snprintf(S.last_target, sizeof S.last_target, "%s", t ? t : "");
    const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    snprintf(S.last_auth, sizeof S.last_auth, "%s", a ? a : "");
    const char *tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-aws-ec2-metadata-token");
    if (!tok)
        tok = a;
    snprintf(S.last_token, sizeof S.last_token, "%s", tok ? tok : "");
    if (S.verify) {
        tw_sigv4_header hs[64];
        size_t n = 0;
        void *ctx[2] = {hs, &n};
        MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, ctx);
        tw_sigv4_request r = {method, url, NULL, hs, n, rb->data, rb->len};
        tw_sigv4_verifier v = {secret_for, NULL, time(NULL), 900, strncmp(url, "/bucket", 7) == 0, 0};
        tw_sigv4_result res;
        tw_error err;
        if (tw__sigv4_verify(&r, &v, &res, &err))
            S.bad_signatures++;
    }
    pthread_mutex_unlock(&S.lock);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

static void done_req(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)c, (void)code;
    req_body *rb = *con_cls;
    if (rb) {
        free(rb->data);
        free(rb);
    }
    *con_cls = NULL;
}

static struct MHD_Daemon *serve(int *port)
{
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                            answer, NULL, MHD_OPTION_NOTIFY_COMPLETED, done_req, NULL,
                                            MHD_OPTION_END);
    if (d)
        *port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return d;
}

static void script_set(int n, const int *st, const char *const *bodies)
{
    pthread_mutex_lock(&S.lock);
    S.n = n;
    S.calls = 0;
    S.bad_signatures = 0;
    for (int i = 0; i < n; i++) {
        S.statuses[i] = st[i];
        S.bodies[i] = bodies[i];
    }
    pthread_mutex_unlock(&S.lock);
}

static tw_aws_client *client_for(int port, unsigned attempts)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    tw_aws_settings s = {.region = "us-east-1", .endpoint_url = url, .access_key_id = "AKIDTEST",
                         .secret_access_key = SECRET, .session_token = "tok-123", .max_attempts = attempts,
                         .retry_base_ms = 5, .timeout_ms = 5000};
    tw_aws_client *c = NULL;
    tw_error err;
    if (tw__aws_client_new(&s, &c, &err))
        return NULL;
    return c;
}

TW_TEST(json_call_is_signed_and_parsed)
{
    clean_env();
    int port = 0;
    struct MHD_Daemon *d = serve(&port);
    REQUIRE(d);
    tw_aws_client *c = client_for(port, 3);
    REQUIRE(c);
    S.verify = 1;
    int st[] = {200};
    const char *b[] = {"{\"Parameters\":[{\"Name\":\"/app/db\",\"Version\":3}]}"};
    script_set(1, st, b);
    tw_json_doc *doc = NULL;
    tw_error err;
    const char *req = "{\"Filters\":[{\"Key\":\"Name\",\"Values\":[\"/app/db\"]}]}";
    REQUIRE(tw__aws_json(c, "ssm", "DescribeParameters", NULL, req, strlen(req), 0, &doc, &err) == TW_OK);
    CHECK_EQ_STR(S.last_target, "AmazonSSM.DescribeParameters");
    CHECK_CONTAINS(S.last_auth, "Credential=AKIDTEST/");
    CHECK_CONTAINS(S.last_auth, "/us-east-1/ssm/aws4_request");
    CHECK_CONTAINS(S.last_auth, "x-amz-security-token");
    CHECK_EQ_INT(S.bad_signatures, 0);
    const tw_json *p = tw_json_at(tw_json_get(tw_json_root(doc), "Parameters"), 0);
    CHECK(tw_json_number(tw_json_get(p, "Version")) == 3);
    tw_json_doc_free(doc);
    /* S3: path-style, encoded key, signed with the S3 rules */
    int st2[] = {200};
    const char *b2[] = {"gz"};
    script_set(1, st2, b2);
    tw_aws_resp resp;
    REQUIRE(tw__s3_get(c, "bucket", "AWSLogs/1/x_y-z.json.gz", 1000, &resp, &err) == TW_OK);
    CHECK_EQ_STR(S.last_path, "GET /bucket/AWSLogs/1/x_y-z.json.gz");
    CHECK_EQ_INT(S.bad_signatures, 0);
    tw__aws_resp_free(&resp);
    /* (libmicrohttpd hands over the decoded path, so an encoded key is checked without signatures) */
    S.verify = 0;
    REQUIRE(tw__s3_get(c, "bucket", "AWSLogs/a b/x+y.json.gz", 1000, &resp, &err) == TW_OK);
    CHECK_EQ_STR(S.last_path, "GET /bucket/AWSLogs/a b/x+y.json.gz");
    CHECK_EQ_STR(resp.body.data, "gz");
    tw__aws_resp_free(&resp);
    CHECK(tw__aws_calls(c) == 3);
    tw__aws_client_free(c);
    MHD_stop_daemon(d);
    S.verify = 0;
}

TW_TEST(retries_throttling_and_5xx_then_gives_up_clearly)
{
    clean_env();
    int port = 0;
    struct MHD_Daemon *d = serve(&port);
    REQUIRE(d);
    tw_aws_client *c = client_for(port, 3);
    REQUIRE(c);
    tw_json_doc *doc = NULL;
    tw_error err;
    /* 503, throttled, then success: three attempts, success */
    int st[] = {503, 400, 200};
    const char *b[] = {"", "{\"__type\":\"com.amazon#ThrottlingException\",\"message\":\"Rate exceeded\"}", "{}"};
    script_set(3, st, b);
    REQUIRE(tw__aws_json(c, "ssm", "DescribeParameters", NULL, NULL, 0, 0, &doc, &err) == TW_OK);
    CHECK_EQ_INT(S.calls, 3);
    tw_json_doc_free(doc);
    /* always throttled: gives up after max_attempts with the code and message */
    int st2[] = {400};
    const char *b2[] = {"{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}"};
    script_set(1, st2, b2);
    CHECK_EQ_INT(tw__aws_json(c, "ssm", "DescribeParameters", NULL, NULL, 0, 0, &doc, &err), TW_EHTTP);
    CHECK_EQ_INT(S.calls, 3);
    CHECK_CONTAINS(err.msg, "ssm DescribeParameters: ThrottlingException: Rate exceeded (HTTP 400, 3 attempts)");
    /* a client error is not retried; auth errors are TW_EAUTH and never carry a secret */
    int st3[] = {400};
    const char *b3[] = {"{\"__type\":\"UnrecognizedClientException\",\"message\":\"The security token included in "
                        "the request is invalid.\"}"};
    script_set(1, st3, b3);
    CHECK_EQ_INT(tw__aws_json(c, "ssm", "DescribeParameters", NULL, NULL, 0, 0, &doc, &err), TW_EAUTH);
    CHECK_EQ_INT(S.calls, 1);
    CHECK(strstr(err.msg, SECRET) == NULL && strstr(err.msg, "Signature=") == NULL &&
          strstr(err.msg, "tok-123") == NULL);
    /* S3 XML errors */
    int st4[] = {404};
    const char *b4[] = {"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket "
                        "does not exist</Message></Error>"};
    script_set(1, st4, b4);
    tw_s3_list l;
    CHECK_EQ_INT(tw__s3_list(c, "bucket", NULL, NULL, NULL, NULL, 10, &l, &err), TW_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "s3 ListObjectsV2: NoSuchBucket: The specified bucket does not exist (HTTP 404)");
    tw__aws_client_free(c);
    MHD_stop_daemon(d);
    /* nobody listening: retried, then a message naming the endpoint */
    c = client_for(port, 2);
    CHECK_EQ_INT(tw__aws_json(c, "ssm", "DescribeParameters", NULL, NULL, 0, 0, &doc, &err), TW_EHTTP);
    CHECK_CONTAINS(err.msg, "cannot reach the endpoint after 2 attempts");
    tw__aws_client_free(c);
}

TW_TEST(imdsv2_and_container_endpoints)
{
    clean_env();
    int port = 0;
    struct MHD_Daemon *d = serve(&port);
    REQUIRE(d);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    /* IMDSv2: token (PUT), role name, credentials */
    int st[] = {200, 200, 200};
    static const char imds_creds[] = "{\"Code\":\"Success\",\"AccessKeyId\":\"AKIDIMDS\",\"SecretAccessKey\":\"s\","
                                     "\"Token\":\"t\",\"Expiration\":\"2099-01-01T00:00:00Z\"}";
    const char *b[] = {"imds-session-token", "my-role\n", imds_creds};
    script_set(3, st, b);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    tw_aws_cred c;
    tw_error err;
    REQUIRE(creds_of(NULL, &c, &err) == TW_OK);
    CHECK_EQ_STR(c.access_key_id, "AKIDIMDS");
    CHECK_EQ_STR(c.source, "imds");
    CHECK_EQ_STR(S.last_path, "GET /latest/meta-data/iam/security-credentials/my-role");
    CHECK_EQ_STR(S.last_token, "imds-session-token");
    /* a failing metadata service: a clear error */
    int stf[] = {403};
    const char *bf[] = {""};
    script_set(1, stf, bf);
    CHECK_EQ_INT(creds_of(NULL, &c, &err), TW_EAUTH);
    CHECK_CONTAINS(err.msg, "instance metadata");
    /* ECS: the relative URI is for 169.254.170.2; the full URI with an authorization token */
    char full[128];
    snprintf(full, sizeof full, "%s/v2/credentials/abc", url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", full, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer container-token", 1);
    int st2[] = {200};
    const char *b2[] = {"{\"AccessKeyId\":\"AKIDECS\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                        "\"Expiration\":\"2099-01-01T00:00:00Z\"}"};
    script_set(1, st2, b2);
    REQUIRE(creds_of(NULL, &c, &err) == TW_OK);
    CHECK_EQ_STR(c.access_key_id, "AKIDECS");
    CHECK_EQ_STR(c.source, "container");
    CHECK_EQ_STR(S.last_token, "Bearer container-token");
    CHECK_EQ_STR(S.last_path, "GET /v2/credentials/abc");
    tw__creds_wipe(&c);
    MHD_stop_daemon(d);
    clean_env();
}

/* ---- XML and notifications ---- */

typedef struct counter {
    int n;
    char keys[8][64];
    int64_t sizes[8];
} counter;

static int count_obj(void *ctx, const char *bucket, const char *key, int64_t size)
{
    counter *c = ctx;
    if (c->n < 8) {
        snprintf(c->keys[c->n], sizeof c->keys[0], "%s/%s", bucket, key);
        c->sizes[c->n] = size;
    }
    c->n++;
    return 0;
}

TW_TEST(listing_xml)
{
    const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
                      "<Contents><Key>AWSLogs/a%20b/c%2Bd.json.gz</Key><Size>12</Size><ETag>\"e\"</ETag></Contents>"
                      "<Contents><Key>k2</Key><Size>7</Size></Contents>"
                      "<CommonPrefixes><Prefix>AWSLogs/o-x/</Prefix></CommonPrefixes>"
                      "<IsTruncated>true</IsTruncated><NextContinuationToken>tok==</NextContinuationToken>"
                      "<EncodingType>url</EncodingType></ListBucketResult>";
    tw_s3_list l;
    tw_error err;
    REQUIRE(tw__s3_parse_list(xml, strlen(xml), &l, &err) == TW_OK);
    REQUIRE(l.n == 2);
    CHECK_EQ_STR(l.items[0].key, "AWSLogs/a b/c+d.json.gz");
    CHECK(l.items[0].size == 12);
    CHECK_EQ_STR(l.items[1].key, "k2");
    CHECK_EQ_INT((int)l.nprefixes, 1);
    CHECK_EQ_STR(l.prefixes[0], "AWSLogs/o-x/");
    CHECK_EQ_INT(l.truncated, 1);
    CHECK_EQ_STR(l.next_token, "tok==");
    tw__s3_list_free(&l);
    /* hostile documents: entities, deep nesting, broken text */
    const char *bomb = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]>"
                       "<ListBucketResult><Contents><Key>&b;</Key></Contents></ListBucketResult>";
    CHECK_EQ_INT(tw__s3_parse_list(bomb, strlen(bomb), &l, &err), TW_EEVENT);
    CHECK_CONTAINS(err.msg, "DOCTYPE");
    char deep[4096] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "<a>");
    CHECK_EQ_INT(tw__s3_parse_list(deep, strlen(deep), &l, &err), TW_EEVENT);
    CHECK_CONTAINS(err.msg, "nesting");
    CHECK_EQ_INT(tw__s3_parse_list("<a><b>", 6, &l, &err), TW_EEVENT);
    const char *badkey = "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%zz</Key></Contents>"
                         "</ListBucketResult>";
    CHECK_EQ_INT(tw__s3_parse_list(badkey, strlen(badkey), &l, &err), TW_EEVENT);
}

TW_TEST(notification_bodies)
{
    counter c = {0};
    tw_notify_kind kind;
    tw_error err;
    const char *s3 = "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"eventName\":"
                     "\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"trail\"},\"object\":{\"key\":"
                     "\"AWSLogs/1/CloudTrail/us-east-1/2024/05/01/a+b%2Bc.json.gz\",\"size\":99}}},"
                     "{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectRemoved:Delete\",\"s3\":{}}]}";
    REQUIRE(tw__notify_parse(s3, strlen(s3), &kind, count_obj, &c, &err) == TW_OK);
    CHECK_EQ_INT(kind, TW_NOTIFY_OBJECTS);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_STR(c.keys[0], "trail/AWSLogs/1/CloudTrail/us-east-1/2024/05/01/a b+c.json.gz");
    CHECK(c.sizes[0] == 99);
    /* CloudTrail's own notification, wrapped by SNS */
    c.n = 0;
    const char *sns = "{\"Type\":\"Notification\",\"MessageId\":\"m\",\"TopicArn\":\"arn:aws:sns:us-east-1:1:t\","
                      "\"Message\":\"{\\\"s3Bucket\\\":\\\"trail\\\",\\\"s3ObjectKey\\\":[\\\"k1.json.gz\\\","
                      "\\\"k2.json.gz\\\"]}\",\"Timestamp\":\"2024-05-01T00:00:00Z\"}";
    REQUIRE(tw__notify_parse(sns, strlen(sns), &kind, count_obj, &c, &err) == TW_OK);
    CHECK_EQ_INT(kind, TW_NOTIFY_OBJECTS);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_STR(c.keys[1], "trail/k2.json.gz");
    CHECK(c.sizes[1] == -1);
    const char *test = "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Bucket\":\"trail\"}";
    REQUIRE(tw__notify_parse(test, strlen(test), &kind, count_obj, &c, &err) == TW_OK);
    CHECK_EQ_INT(kind, TW_NOTIFY_TEST);
    const char *sns_test = "{\"Type\":\"Notification\",\"TopicArn\":\"t\",\"Message\":\"{\\\"Event\\\":"
                           "\\\"s3:TestEvent\\\"}\"}";
    REQUIRE(tw__notify_parse(sns_test, strlen(sns_test), &kind, count_obj, &c, &err) == TW_OK);
    CHECK_EQ_INT(kind, TW_NOTIFY_TEST);
    CHECK_EQ_INT(tw__notify_parse("not json", 8, &kind, count_obj, &c, &err), TW_EJSON);
    const char *badkey = "{\"Records\":[{\"eventSource\":\"aws:s3\",\"eventName\":\"ObjectCreated:Put\","
                         "\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"a%\"}}}]}";
    CHECK_EQ_INT(tw__notify_parse(badkey, strlen(badkey), &kind, count_obj, &c, &err), TW_EEVENT);
    const char *other = "{\"hello\":1}";
    REQUIRE(tw__notify_parse(other, strlen(other), &kind, count_obj, &c, &err) == TW_OK);
    CHECK_EQ_INT(kind, TW_NOTIFY_OTHER);
}

TW_TEST_MAIN()
