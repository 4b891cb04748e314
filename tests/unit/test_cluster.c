/* tests/unit/test_cluster.c: the `cluster:` section (defaults, values, reload equality), the event
 * id a publish deduplicates by, and a clear, secret-free error when no NATS server answers. The
 * cluster itself runs against real nats-server processes in tests/e2e/test_cluster.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "config/config_int.h"
#include "event/ids.h"
#include "telemetry/metrics.h"
#include "trailwatch/trailwatch.h"
#include "tw_test.h"

static tw_config *load(const char *text)
{
    char path[] = "/tmp/tw-cluster-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        abort();
    close(fd);
    tw_config *cfg = NULL;
    size_t nerrors = 0;
    tw_error err;
    tw_status rc = tw_config_load(path, &cfg, &nerrors, NULL, NULL, &err);
    unlink(path);
    if (rc)
        printf("# load: %s\n", err.msg);
    return cfg;
}

TW_TEST(no_section_is_the_embedded_mode)
{
    tw_config *cfg = load("rules: []\n");
    REQUIRE(cfg);
    CHECK_EQ_INT(cfg->cluster.role, TW_CLUSTER_OFF);
    tw_config_free(cfg);
}

TW_TEST(defaults)
{
    tw_config *cfg = load("cluster: {urls: nats://127.0.0.1:4222}\n");
    REQUIRE(cfg);
    const tw_cluster_cfg *c = &cfg->cluster;
    CHECK_EQ_INT(c->role, TW_CLUSTER_BOTH);
    CHECK_EQ_INT(c->nurls, 1);
    CHECK_EQ_STR(c->urls[0], "nats://127.0.0.1:4222");
    CHECK_EQ_STR(c->stream, "TRAILWATCH");
    CHECK_EQ_STR(c->subject, "trailwatch.events");
    CHECK_EQ_STR(c->consumer, "trailwatch-workers");
    CHECK(c->name == NULL && c->credentials == NULL);
    CHECK_EQ_INT(c->replicas, 1);
    CHECK_EQ_INT(c->duplicate_window_ms, 120000);
    CHECK_EQ_INT(c->ack_wait_ms, 30000);
    CHECK_EQ_INT(c->fetch_batch, 256);
    CHECK_EQ_INT(c->fetchers, 2);
    CHECK_EQ_INT(c->max_deliver, 0);
    CHECK_EQ_INT(c->max_bytes, 0);
    CHECK_EQ_INT(c->publish_timeout_ms, 10000);
    tw_config_free(cfg);
}

TW_TEST(every_setting)
{
    tw_config *cfg = load("cluster:\n"
                          "  urls: [nats://a:4222, 'tls://user:pw@b:4222', nats://c:4222]\n"
                          "  role: worker\n"
                          "  name: w-1\n"
                          "  stream: EVENTS\n"
                          "  subject: org.cloudtrail\n"
                          "  consumer: matchers\n"
                          "  credentials: nats/tw.creds\n"
                          "  replicas: 3\n"
                          "  duplicate_window: 10m\n"
                          "  max_age: 7d\n"
                          "  max_bytes: 10g\n"
                          "  ack_wait: 45s\n"
                          "  max_deliver: 20\n"
                          "  fetch_batch: 500\n"
                          "  fetchers: 4\n"
                          "  max_ack_pending: 50000\n"
                          "  publish_timeout: 30s\n");
    REQUIRE(cfg);
    const tw_cluster_cfg *c = &cfg->cluster;
    CHECK_EQ_INT(c->role, TW_CLUSTER_WORKER);
    CHECK_EQ_INT(c->nurls, 3);
    CHECK_EQ_STR(c->urls[1], "tls://user:pw@b:4222");
    CHECK_EQ_STR(c->name, "w-1");
    CHECK_EQ_STR(c->stream, "EVENTS");
    CHECK_EQ_STR(c->subject, "org.cloudtrail");
    CHECK_EQ_STR(c->consumer, "matchers");
    CHECK(c->credentials && c->credentials[0] == '/' && strstr(c->credentials, "/nats/tw.creds"));
    CHECK_EQ_INT(c->replicas, 3);
    CHECK_EQ_INT(c->duplicate_window_ms, 600000);
    CHECK_EQ_INT(c->max_age_ms, 7LL * 86400000);
    CHECK_EQ_INT(c->max_bytes, 10ULL << 30);
    CHECK_EQ_INT(c->ack_wait_ms, 45000);
    CHECK_EQ_INT(c->max_deliver, 20);
    CHECK_EQ_INT(c->fetch_batch, 500);
    CHECK_EQ_INT(c->fetchers, 4);
    CHECK_EQ_INT(c->max_ack_pending, 50000);
    CHECK_EQ_INT(c->publish_timeout_ms, 30000);

    tw_config *same = load("cluster:\n"
                           "  urls: [nats://a:4222, 'tls://user:pw@b:4222', nats://c:4222]\n"
                           "  role: worker\n  name: w-1\n  stream: EVENTS\n  subject: org.cloudtrail\n"
                           "  consumer: matchers\n  credentials: nats/tw.creds\n  replicas: 3\n"
                           "  duplicate_window: 10m\n  max_age: 7d\n  max_bytes: 10g\n  ack_wait: 45s\n"
                           "  max_deliver: 20\n  fetch_batch: 500\n  fetchers: 4\n  max_ack_pending: 50000\n"
                           "  publish_timeout: 30s\n");
    tw_config *other = load("cluster: {urls: [nats://a:4222], role: worker}\n");
    REQUIRE(same && other);
    CHECK(tw__cluster_cfg_equal(&cfg->cluster, &same->cluster));
    CHECK(!tw__cluster_cfg_equal(&cfg->cluster, &other->cluster));
    tw_config_free(cfg);
    tw_config_free(same);
    tw_config_free(other);
}

TW_TEST(urls_are_required)
{
    CHECK(load("cluster: {role: both}\n") == NULL);
    CHECK(load("cluster: {urls: [127.0.0.1:4222]}\n") == NULL);
    CHECK(load("cluster: {urls: [nats://a:1], name: 'has space'}\n") == NULL);
}

TW_TEST(publish_dedup_id)
{
    char id[96];
    const char *ev = "{\"id\":\"ev-1\",\"detail\":{\"eventID\":\"ct-9\"}}";
    CHECK_EQ_INT(tw__event_envelope_id(ev, strlen(ev), id, sizeof id), 4);
    CHECK_EQ_STR(id, "ev-1");
    CHECK_EQ_INT(tw__event_cloudtrail_id(ev, strlen(ev), 0, id, sizeof id), 4);
    CHECK_EQ_STR(id, "ct-9");
    const char *none = "{\"detail\":{}}";
    CHECK_EQ_INT(tw__event_envelope_id(none, strlen(none), id, sizeof id), 0);
}

/* A port nobody listens on: bind one, close it. */
static int dead_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &l))
        abort();
    close(s);
    return ntohs(a.sin_port);
}

TW_TEST(unreachable_nats_is_a_clear_error_without_secrets)
{
    char text[256];
    snprintf(text, sizeof text, "cluster: {urls: ['nats://bob:hunter2@127.0.0.1:%d'], name: t}\n", dead_port());
    tw_config *cfg = load(text);
    REQUIRE(cfg);
    tw_metrics *m = tw__metrics_new();
    tw_cluster *c = NULL;
    tw_error err;
    tw_status rc = tw__cluster_start(&cfg->cluster, NULL, NULL, m, &c, &err);
    CHECK(rc != TW_OK && c == NULL);
    CHECK_CONTAINS(err.msg, "cannot connect to NATS at nats://***@127.0.0.1:");
    CHECK(!strstr(err.msg, "hunter2") && !strstr(err.msg, "bob"));
    tw_cluster_status *st = NULL;
    rc = tw_cluster_status_get(cfg, 100, &st, &err);
    CHECK(rc != TW_OK && st == NULL);
    CHECK(!strstr(err.msg, "hunter2"));
    tw__metrics_free(m);
    tw_config_free(cfg);
}

TW_TEST_MAIN()
