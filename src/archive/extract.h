/*
 * archive/extract.h: what the archive indexes about one event, backend-independent (internal).
 *
 * Ownership: a tw__arch_fields is filled by tw__arch_extract and owns its parse tree and strings
 * until tw__arch_fields_free; every const char * in it points into that storage (never NULL:
 * "" when absent).
 *
 * Works on raw CloudTrail records and on EventBridge events (detail = the record). The principal is
 * normalised (docs/ARCHIVE.md "Who"); resources are every ARN and resource id or name found in
 * resources, requestParameters and responseElements.
 */
#ifndef TW_ARCHIVE_EXTRACT_H
#define TW_ARCHIVE_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "trailwatch/error.h"
#include "trailwatch/json.h"

/* Resource strings kept per event: a RunInstances of 1,000 instances names each id a few times;
 * past this the rest is not indexed (the event is still archived and found by pattern). */
#define TW_ARCH_MAX_RESOURCES 512u
/* Identities one principal is known by (ARN, names, issuer, session, source identity, ...). */
#define TW_ARCH_MAX_IDENTITIES 16u
/* Resource values longer than this are free text, not identifiers (ARNs are < 2,048 bytes). */
#define TW_ARCH_MAX_RESOURCE_LEN 2048u

typedef struct tw__arch_fields {
    tw_json_doc *doc;
    int64_t time_ms;          /* 0 when the event has no (readable) time */
    const char *id;           /* dedup key: CloudTrail eventID, else the EventBridge id */
    const char *event_name, *event_source, *account, *region, *source, *detail_type;
    const char *error_code, *source_ip;
    const char *principal, *principal_type, *role, *session, *behind;
    int read_only;            /* 1, 0, -1 unknown */
    const char *identities[TW_ARCH_MAX_IDENTITIES];  /* every name of the principal, exact */
    size_t nidentities;
    const char **resources;   /* exact strings (malloc'd array of pointers into the tree) */
    size_t nresources, capresources;
    tw_arena arena;           /* derived strings ("aws.ec2", "root", ...) live here */
} tw__arch_fields;

/* Parses json (an event object) and fills f. Errors: TW_EJSON/TW_EUTF8/TW_EDEPTH/TW_ETOOBIG for
 * bad JSON, TW_EEVENT for a non-object; f is then empty (safe to free). */
tw_status tw__arch_extract(const char *json, size_t len, tw__arch_fields *f, tw_error *err);
void tw__arch_fields_free(tw__arch_fields *f);

/* The indexed short form of a resource or principal string: an ARN's resource id (the part after
 * the last '/' or first ':' of the resource; an S3 ARN's bucket), anything else itself. A span of s. */
void tw__arch_short(const char *s, size_t len, const char **out, size_t *out_len);

/* Term hashes: one per indexed (kind, short form); 32-bit (small index entries), so a hit is only a
 * candidate, confirmed against the extracted fields. */
enum { TW_ARCH_TERM_RESOURCE = 'r', TW_ARCH_TERM_WHO = 'w', TW_ARCH_TERM_NAME = 'n', TW_ARCH_TERM_IP = 'i',
       TW_ARCH_TERM_ID = 'e' };
int32_t tw__arch_term(int kind, const char *s, size_t len);

/* Fills terms (cap entries) with the event's distinct terms; returns how many. */
size_t tw__arch_terms(const tw__arch_fields *f, int32_t *terms, size_t cap);

/* 1 when the event changes something: readOnly false, or (no readOnly) a name that does not start
 * with Describe, Get, List, Head, Lookup, Search, Check, Scan, Query, Select, View, ... */
int tw__arch_mutating(const tw__arch_fields *f);

/* 1 when resource names one of the event's resources (exactly, or by its short form). */
int tw__arch_has_resource(const tw__arch_fields *f, const char *resource);
/* 1 when who names the event's principal (any of its identities, exactly or by short form). */
int tw__arch_has_identity(const tw__arch_fields *f, const char *who);

/* 1 when the stored body's dedup id (see tw__arch_fields.id) is id: for backends confirming an ID
 * term hit (term hashes collide). */
int tw__arch_body_has_id(const char *body, size_t len, const char *id);

/* RFC 3339 time text to ms since the epoch; -1 when it is not one. */
int64_t tw__arch_parse_time(const char *s, size_t len);

#endif
