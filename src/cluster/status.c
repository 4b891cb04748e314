/*
 * cluster/status.c: `trailwatch cluster status`: the stream and the consumer as JetStream reports
 * them, and every trailwatch node's own figures.
 *
 * Each node subscribes to _trailwatch.status.<stream> and answers a request with one JSON object
 * (its name, role, counters, rates, CPU time); the command publishes one request and gathers the
 * answers for a moment. No registry to keep: a node that is gone simply does not answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster_int.h"
#include "common/buf.h"
#include "common/err.h"
#include "json/json_int.h"
#include "telemetry/log.h"
#include "trailwatch/cluster.h"

static const char *role_name(tw_cluster_role r)
{
    return r == TW_CLUSTER_INGEST ? "ingest" : r == TW_CLUSTER_WORKER ? "worker" : "both";
}

static uint64_t val(const tw_counter *c) { return c ? atomic_load(&c->value) : 0; }

static tw_status node_json(tw_cluster *c, tw_buf *b)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    tw__cluster_rate_sample(c);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    tw_status rc = tw__buf_puts(b, "{\"name\":");
    if (!rc)
        rc = tw__json_write_string(b, c->name, strlen(c->name));
    if (!rc)
        rc = tw__buf_printf(b, ",\"role\":\"%s\",\"host\":", role_name(c->role));
    if (!rc)
        rc = tw__json_write_string(b, host, strlen(host));
    if (!rc)
        rc = tw__buf_printf(b, ",\"pid\":%ld,\"uptime_ms\":%lld,\"fetched\":%llu,\"acked\":%llu,\"redelivered\":%llu,"
                              "\"rejected\":%llu,\"naks\":%llu,\"published\":%llu,\"publish_duplicates\":%llu,"
                              "\"publish_retries\":%llu,\"publish_failed\":%llu,\"rate_10s\":%.3f,\"rate_60s\":%.3f,"
                              "\"cpu_seconds\":%.3f}",
                           (long)getpid(), (long long)(now - c->started_ms), (unsigned long long)val(c->fetched),
                           (unsigned long long)val(c->acked), (unsigned long long)val(c->redelivered),
                           (unsigned long long)val(c->rejected), (unsigned long long)val(c->naks),
                           (unsigned long long)val(c->published), (unsigned long long)val(c->pub_duplicates),
                           (unsigned long long)val(c->pub_retries), (unsigned long long)val(c->pub_failed),
                           tw__cluster_rate(c, 10000), tw__cluster_rate(c, 60000), tw__cluster_cpu_seconds());
    return rc;
}

static void on_status_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    tw_cluster *c = closure;
    const char *reply = natsMsg_GetReply(msg);
    tw_buf b;
    tw__buf_init(&b, 64 * 1024);
    if (reply && !node_json(c, &b))
        natsConnection_Publish(nc, reply, b.data, (int)b.len);
    tw__buf_free(&b);
    natsMsg_Destroy(msg);
}

tw_status tw__cluster_status_serve(tw_cluster *c, tw_error *err)
{
    natsStatus s = natsConnection_Subscribe(&c->status_sub, c->nc, c->status_subject, on_status_request, c);
    if (s != NATS_OK)
        return tw__cluster_err(err, s, 0, "cluster: cannot subscribe to %s", c->status_subject);
    return TW_OK;
}

/* ---- the command's side ---- */

static void copy_name(char *dst, const char *src)
{
    snprintf(dst, TW_CLUSTER_NAME_MAX, "%s", src ? src : "");
}

static uint64_t num(const tw_json *o, const char *key)
{
    const tw_json *v = tw_json_get(o, key);
    double d = v && tw_json_typeof(v) == TW_JSON_NUMBER ? tw_json_number(v) : 0;
    return d > 0 ? (uint64_t)d : 0;
}

static double dbl(const tw_json *o, const char *key)
{
    const tw_json *v = tw_json_get(o, key);
    return v && tw_json_typeof(v) == TW_JSON_NUMBER ? tw_json_number(v) : 0;
}

static void str(const tw_json *o, const char *key, char *dst, size_t cap)
{
    const tw_json *v = tw_json_get(o, key);
    snprintf(dst, cap, "%s", v && tw_json_typeof(v) == TW_JSON_STRING ? tw_json_string(v, NULL) : "");
}

static tw_status add_node(tw_cluster_status *st, const char *data, size_t len)
{
    tw_json_doc *doc = NULL;
    if (tw_json_parse(data, len, NULL, &doc, NULL) || tw_json_typeof(tw_json_root(doc)) != TW_JSON_OBJECT) {
        tw_json_doc_free(doc);
        return TW_OK;    /* not one of ours: ignore it */
    }
    tw_cluster_node *p = realloc(st->nodes, (st->nnodes + 1) * sizeof *p);
    if (!p) {
        tw_json_doc_free(doc);
        return TW_ENOMEM;
    }
    st->nodes = p;
    tw_cluster_node *nd = &p[st->nnodes++];
    const tw_json *o = tw_json_root(doc);
    memset(nd, 0, sizeof *nd);
    str(o, "name", nd->name, sizeof nd->name);
    str(o, "role", nd->role, sizeof nd->role);
    str(o, "host", nd->host, sizeof nd->host);
    nd->pid = (long)num(o, "pid");
    nd->uptime_ms = (int64_t)num(o, "uptime_ms");
    nd->fetched = num(o, "fetched");
    nd->acked = num(o, "acked");
    nd->redelivered = num(o, "redelivered");
    nd->rejected = num(o, "rejected");
    nd->naks = num(o, "naks");
    nd->published = num(o, "published");
    nd->publish_duplicates = num(o, "publish_duplicates");
    nd->publish_retries = num(o, "publish_retries");
    nd->publish_failed = num(o, "publish_failed");
    nd->rate_10s = dbl(o, "rate_10s");
    nd->rate_60s = dbl(o, "rate_60s");
    nd->cpu_seconds = dbl(o, "cpu_seconds");
    tw_json_doc_free(doc);
    return TW_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const tw_cluster_node *)a)->name, ((const tw_cluster_node *)b)->name);
}

static tw_status gather_nodes(natsConnection *nc, const char *subject, int64_t wait_ms, tw_cluster_status *st,
                              tw_error *err)
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK)
        s = natsConnection_SubscribeSync(&sub, nc, inbox);
    if (s == NATS_OK)
        s = natsConnection_PublishRequest(nc, subject, inbox, "", 0);
    if (s == NATS_OK)
        s = natsConnection_Flush(nc);
    tw_status rc = s == NATS_OK ? TW_OK : tw__cluster_err(err, s, 0, "cluster: cannot ask the nodes");
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t end = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + wait_ms;
    while (!rc && st->nnodes < TW_CLUSTER_STATUS_NODES_MAX) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t left = end - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        natsMsg *m = NULL;
        if (left <= 0 || natsSubscription_NextMsg(&m, sub, left) != NATS_OK)
            break;
        if (add_node(st, natsMsg_GetData(m) ? natsMsg_GetData(m) : "", (size_t)natsMsg_GetDataLength(m)))
            rc = tw__err(err, TW_ENOMEM, "out of memory");
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(sub);
    natsInbox_Destroy(inbox);
    if (st->nnodes > 1)
        qsort(st->nodes, st->nnodes, sizeof *st->nodes, by_name);
    return rc;
}

static void stream_state(tw_cluster_status *st, const jsStreamInfo *si)
{
    st->messages = si->State.Msgs;
    st->bytes = si->State.Bytes;
    st->first_seq = si->State.FirstSeq;
    st->last_seq = si->State.LastSeq;
    if (si->Config) {
        st->replicas = si->Config->Replicas;
        st->duplicate_window_ms = si->Config->Duplicates / 1000000;
    }
    if (si->Cluster) {
        copy_name(st->cluster, si->Cluster->Name);
        copy_name(st->leader, si->Cluster->Leader);
        for (int i = 0; i < si->Cluster->ReplicasLen && st->npeers < TW_CLUSTER_PEERS_MAX; i++) {
            const jsPeerInfo *pi = si->Cluster->Replicas[i];
            tw_cluster_peer *p = &st->peers[st->npeers++];
            copy_name(p->name, pi->Name);
            p->current = pi->Current;
            p->offline = pi->Offline;
            p->lag = pi->Lag;
        }
    }
}

tw_status tw_cluster_status_get(const tw_config *cfg, int64_t wait_ms, tw_cluster_status **out, tw_error *err)
{
    *out = NULL;
    const tw_cluster_cfg *cc = &cfg->cluster;
    if (cc->role == TW_CLUSTER_OFF)
        return tw__err(err, TW_ECONFIG, "%s has no cluster: section (docs/CLUSTER.md)", cfg->path);
    tw_cluster_status *st = calloc(1, sizeof *st);
    if (!st)
        return tw__err(err, TW_ENOMEM, "out of memory");
    copy_name(st->stream, cc->stream);
    copy_name(st->consumer, cc->consumer);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsConsumerInfoList *cl = NULL;
    jsErrCode jerr = 0;
    tw_status rc = tw__cluster_connect(cc, "status", &nc, err);
    natsStatus s = NATS_OK;
    if (!rc && (s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK)
        rc = tw__cluster_err(err, s, 0, "cluster: cannot open a JetStream context");
    if (!rc && (s = js_GetStreamInfo(&si, js, cc->stream, NULL, &jerr)) != NATS_OK)
        rc = jerr == JSStreamNotFoundErr
                 ? tw__err(err, TW_ENOTFOUND, "cluster: the stream %s does not exist (no trailwatch node started yet)",
                           cc->stream)
                 : tw__cluster_err(err, s, jerr, "cluster: cannot read the stream %s", cc->stream);
    if (!rc)
        stream_state(st, si);
    jerr = 0;
    if (!rc && (s = js_Consumers(&cl, js, cc->stream, NULL, &jerr)) != NATS_OK && s != NATS_NOT_FOUND)
        rc = tw__cluster_err(err, s, jerr, "cluster: cannot list the consumers of %s", cc->stream);
    for (int i = 0; !rc && cl && i < cl->Count && st->nconsumers < TW_CLUSTER_CONSUMERS_MAX; i++) {
        const jsConsumerInfo *ci = cl->List[i];
        tw_cluster_consumer *c = &st->consumers[st->nconsumers++];
        copy_name(c->name, ci->Name);
        c->num_pending = ci->NumPending;
        c->num_ack_pending = ci->NumAckPending;
        c->num_redelivered = ci->NumRedelivered;
        c->num_waiting = ci->NumWaiting;
        c->ack_wait_ms = ci->Config ? ci->Config->AckWait / 1000000 : 0;
        if (strcmp(c->name, cc->consumer) == 0) {
            st->consumer_found = 1;
            st->num_pending = c->num_pending;
            st->num_ack_pending = c->num_ack_pending;
            st->num_redelivered = c->num_redelivered;
            st->num_waiting = c->num_waiting;
            st->ack_wait_ms = c->ack_wait_ms;
        }
    }
    if (!rc) {
        char subject[320];
        snprintf(subject, sizeof subject, TW_CLUSTER_STATUS_PREFIX "%s", cc->stream);
        rc = gather_nodes(nc, subject, wait_ms, st, err);
    }
    jsStreamInfo_Destroy(si);
    jsConsumerInfoList_Destroy(cl);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    if (rc) {
        tw_cluster_status_free(st);
        return rc;
    }
    *out = st;
    return TW_OK;
}

void tw_cluster_status_free(tw_cluster_status *st)
{
    if (!st)
        return;
    free(st->nodes);
    free(st);
}
