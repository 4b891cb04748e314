/* cluster/conn.c: the NATS connection, the stream and the durable consumer; NATS errors as tw_errors. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "common/err.h"
#include "telemetry/log.h"

#define NS_PER_MS 1000000LL

tw_status tw__cluster_err(tw_error *err, natsStatus s, jsErrCode jerr, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    natsStatus last_s = NATS_OK;
    const char *last = nats_GetLastError(&last_s);
    char code[32] = "";
    if (jerr)
        snprintf(code, sizeof code, " (JetStream error %d)", (int)jerr);
    /* The detail repeats the status text when there is nothing more to say. */
    int detail = last && *last && last_s == s && strcmp(last, natsStatus_GetText(s)) != 0;
    tw_status code_tw = s == NATS_TIMEOUT ? TW_ETIMEOUT : TW_EIO;
    return tw__err(err, code_tw, "%s: %s%s%s%.200s", what, natsStatus_GetText(s), code, detail ? ": " : "",
                   detail ? last : "");
}

/* The user:password@ or token@ part of a URL replaced by three stars: it is a secret. */
static void shown_url(const char *url, char *out, size_t cap)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strrchr(host, '@');
    if (at)
        snprintf(out, cap, "%.*s***%s", (int)(host - url), url, at);
    else
        snprintf(out, cap, "%s", url);
}

static void shown_urls(const tw_cluster_cfg *cfg, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < cfg->nurls && len + 1 < cap; i++) {
        char one[256];
        shown_url(cfg->urls[i], one, sizeof one);
        int w = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", one);
        if (w < 0)
            break;
        len += (size_t)w < cap - len ? (size_t)w : cap - len - 1;
    }
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)closure;
    if (natsConnection_IsClosed(nc))   /* our own close at stop, not a failure */
        return;
    tw__log(TW_LOG_WARN, "disconnected from NATS; reconnecting", NULL);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)closure;
    char url[256] = "", shown[256];
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    shown_url(url, shown, sizeof shown);
    tw__log(TW_LOG_INFO, "reconnected to NATS", "server", shown, NULL);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    tw__log(TW_LOG_WARN, "NATS reported an error", "error", natsStatus_GetText(s), NULL);
}

tw_status tw__cluster_connect(const tw_cluster_cfg *cfg, const char *name, natsConnection **nc, tw_error *err)
{
    natsOptions *o = NULL;
    *nc = NULL;
    char client[128];
    snprintf(client, sizeof client, "trailwatch %s", name);
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, (const char **)cfg->urls, (int)cfg->nurls);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, client);
    /* A killed server resets the connection at once; reconnect to another one quickly, forever:
     * publishers and workers ride over node failures instead of giving up. */
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, NULL);
    if (s == NATS_OK && cfg->credentials)
        s = natsOptions_SetUserCredentialsFromFiles(o, cfg->credentials, NULL);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return tw__cluster_err(err, s, 0, "cluster: invalid NATS settings");
    }
    s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        char urls[512];
        shown_urls(cfg, urls, sizeof urls);
        *nc = NULL;
        return tw__cluster_err(err, s, 0, "cluster: cannot connect to NATS at %s", urls);
    }
    return TW_OK;
}

tw_status tw__cluster_ensure_stream(jsCtx *js, const tw_cluster_cfg *cfg, tw_error *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, cfg->stream, NULL, &jerr);
    if (s == NATS_OK) {
        /* An existing stream is the operator's: use it as it is, but it must store our subject. */
        int takes = 0;
        for (int i = 0; si->Config && i < si->Config->SubjectsLen && !takes; i++)
            takes = strcmp(si->Config->Subjects[i], cfg->subject) == 0 ||
                    strcmp(si->Config->Subjects[i], ">") == 0;
        jsStreamInfo_Destroy(si);
        if (!takes)
            return tw__err(err, TW_ECONFIG, "cluster: the existing stream %s does not take the subject %s "
                                            "(set cluster.subject to one of its subjects)", cfg->stream, cfg->subject);
        return TW_OK;
    }
    if (jerr != JSStreamNotFoundErr)
        return tw__cluster_err(err, s, jerr, "cluster: cannot read the stream %s", cfg->stream);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {cfg->subject};
    sc.Name = cfg->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    /* A work queue: an event leaves the stream once a worker acknowledged it; the stream's depth is
     * the backlog. When full, new events are refused (senders retry) rather than old ones dropped. */
    sc.Retention = js_WorkQueuePolicy;
    sc.Discard = js_DiscardNew;
    sc.Storage = js_FileStorage;
    sc.Replicas = cfg->replicas;
    sc.Duplicates = cfg->duplicate_window_ms * NS_PER_MS;
    sc.MaxAge = cfg->max_age_ms * NS_PER_MS;
    sc.MaxBytes = cfg->max_bytes ? (int64_t)cfg->max_bytes : -1;
    jerr = 0;
    s = js_AddStream(&si, js, &sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    /* Another node may have created it meanwhile: that is as good. */
    if (s != NATS_OK && jerr != JSStreamNameExistErr)
        return tw__cluster_err(err, s, jerr, "cluster: cannot create the stream %s", cfg->stream);
    tw__log(TW_LOG_INFO, "created the JetStream stream", "stream", cfg->stream, "subject", cfg->subject, NULL);
    return TW_OK;
}

tw_status tw__cluster_ensure_consumer(jsCtx *js, const tw_cluster_cfg *cfg, tw_error *err)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, js, cfg->stream, cfg->consumer, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    if (s == NATS_OK)
        return TW_OK;
    if (jerr != JSConsumerNotFoundErr)
        return tw__cluster_err(err, s, jerr, "cluster: cannot read the consumer %s of %s", cfg->consumer, cfg->stream);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = cfg->consumer;
    cc.Description = "trailwatch matcher workers";
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = cfg->ack_wait_ms * NS_PER_MS;
    cc.MaxDeliver = cfg->max_deliver ? (int64_t)cfg->max_deliver : -1;
    cc.MaxAckPending = cfg->max_ack_pending;
    cc.FilterSubject = cfg->subject;
    jerr = 0;
    s = js_AddConsumer(&ci, js, cfg->stream, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK && jerr != JSConsumerNameExistErr && jerr != JSConsumerExistingActiveErr)
        return tw__cluster_err(err, s, jerr, "cluster: cannot create the consumer %s of %s", cfg->consumer,
                               cfg->stream);
    return TW_OK;
}
