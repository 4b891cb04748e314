/*
 * target/facts.h: the facts of an event that default messages show: who did what to which resource,
 * where, when, with which parameters and error (internal to src/target/).
 *
 * Ownership: tw_facts borrows strings from the event tree (which must outlive it) and keeps the ones
 * it composes in its own arena; tw__facts_free releases them. All strings are raw event text: each
 * kind escapes them for its destination.
 */
#ifndef TW_TARGET_FACTS_H
#define TW_TARGET_FACTS_H

#include <stddef.h>

#include "common/arena.h"
#include "common/buf.h"
#include "trailwatch/json.h"

#define TW_FACTS_PARAMS 8          /* key request parameters shown (Slack allows 10 fields) */
#define TW_FACTS_VALUE_MAX 200     /* bytes of one parameter value shown */
#define TW_FACTS_RESOURCES 5       /* resource ARNs listed; more are counted */

typedef struct tw_kv {
    const char *name, *value;
} tw_kv;

typedef struct tw_facts {
    tw_arena arena;
    int failed;                    /* out of memory composing a fact */
    int cloudtrail;                /* detail is a CloudTrail record (eventName, eventSource) */
    const char *who;               /* "alice", "root user of 123456789012", "Admin/bob"; NULL: unknown */
    const char *who_type;          /* userIdentity.type, NULL when none */
    const char *what;              /* eventName, or detail-type */
    const char *service;           /* eventSource, or source */
    const char *resource;          /* the most specific resource named; NULL when none */
    const char *region, *account, *source_ip, *when, *event_id, *detail_type, *source; /* NULL: absent */
    const char *error;             /* "errorCode: errorMessage", NULL when the call succeeded */
    size_t nparams;
    tw_kv params[TW_FACTS_PARAMS]; /* requestParameters (CloudTrail) or the detail's scalar members */
    size_t nresources, resources_total;
    const char *resources[TW_FACTS_RESOURCES]; /* the envelope's resources (non-CloudTrail events) */
} tw_facts;

/* Fills f from event (any JSON value; missing parts stay NULL). TW_ENOMEM when a fact could not be
 * composed (f is still usable and must be freed): a renderer fails rather than send a message
 * with facts silently missing. */
tw_status tw__facts_extract(const tw_json *event, tw_facts *f);
void tw__facts_free(tw_facts *f);

/* The facts as labelled pairs, in display order: Who, Action, Service, Resource(s), Region, Account,
 * Source IP, Time, Error, then the parameters. Returns how many were written (at most max). */
#define TW_FACTS_LIST_MAX (9 + TW_FACTS_PARAMS)
size_t tw__facts_list(const tw_facts *f, tw_kv *out, size_t max);

/* One line: "CreateTable by alice on TestTable" / "Parameter Store Change on arn:..." (raw text). */
tw_status tw__facts_summary(const tw_facts *f, tw_buf *b);

#endif
