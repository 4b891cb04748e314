/*
 * enrich/enrich.h: native enrichment: the AWS API calls a rule asks for before its alerts are
 * rendered, with a small cache and a rate limit per API (internal).
 *
 * Ownership: the server owns the tw_enricher (created after the AWS client, freed after the engine
 * stops calling it); the client is borrowed. tw__enrich_rule builds its result in a document the
 * caller frees.
 *
 * For each enrichment of a rule (config tw_enrich_cfg), the request body is rendered from the event
 * with the enrichment's input transformer, then looked up in the cache (service, action, body); a
 * miss makes one JSON-protocol call (tw__aws_json). Concurrent lookups of the same request wait for
 * the one call in flight, so a burst of events about one parameter costs one call per cache period.
 * The result object is {"NAME": <the answer>, ...}; an enrichment that failed, timed out or was rate
 * limited is {"NAME": {"error": "<why>"}}: the alert is rendered all the same, never dropped, and
 * never waits beyond the enrichment's timeout (the wait for a rate-limit token counts in it) or the
 * caller's deadline.
 */
#ifndef TW_ENRICH_ENRICH_H
#define TW_ENRICH_ENRICH_H

#include <stdint.h>

#include "aws/client.h"
#include "config/config_int.h"
#include "telemetry/metrics.h"
#include "trailwatch/json.h"

/* Cached answers kept at once: each holds one API answer (SSM DescribeParameters: ~500 bytes). */
#define TW_ENRICH_CACHE_MAX   1024u
/* An answer larger than this is not cached (it is still used for the alert). */
#define TW_ENRICH_ENTRY_MAX   (64u * 1024u)
/* APIs (service + action) with a rate limiter of their own. */
#define TW_ENRICH_APIS_MAX    64u
/* All enrichment calls made for one tw__engine_submit end within this: a burst of events with distinct
 * requests cannot hold a source (and its acknowledgement) longer; the rest are marked "timed out". */
#define TW_ENRICH_BATCH_BUDGET_MS 10000
/* A request body built from an event: API inputs are small. */
#define TW_ENRICH_REQUEST_MAX (16u * 1024u)

typedef struct tw_enricher tw_enricher;

/* client may be NULL (AWS unusable): every enrichment then fails with why_no_client. */
tw_status tw__enricher_new(tw_aws_client *client, const char *why_no_client, tw_metrics *m, tw_enricher **out,
                           tw_error *err);
void tw__enricher_free(tw_enricher *en);

/* Runs r's enrichments for the event (en NULL: each is marked as not set up) (deadline_ms: CLOCK_MONOTONIC ms beyond which no call waits,
 * 0 for none). *out is the result object in *doc (both NULL when r has none, or out of memory). */
void tw__enrich_rule(tw_enricher *en, const tw_rule_cfg *r, const tw_json *event, int64_t deadline_ms,
                     tw_json_doc **doc, const tw_json **out);

/* API calls made so far (cache misses that reached the client). */
uint64_t tw__enricher_calls(const tw_enricher *en);

/* CLOCK_MONOTONIC in ms. */
int64_t tw__enrich_now_ms(void);

#endif
