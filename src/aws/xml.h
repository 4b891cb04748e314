/*
 * aws/xml.h: the XML that S3 (and query-protocol errors) answer in, walked with expat (internal).
 *
 * Ownership: reads borrowed bytes; the callback gets borrowed text valid only during the call.
 *
 * A flat walk is all the answers need: for every element the callback gets its path from the root
 * without namespaces ("ListBucketResult/Contents/Key") and its text (leaf elements), then, when the
 * element closes, the same path with text NULL (record boundaries: one Contents done).
 * Safe on hostile input: a DOCTYPE (hence any entity) is refused, nesting is capped, text per element
 * is capped, and the whole document is capped by the caller's response cap.
 */
#ifndef TW_AWS_XML_H
#define TW_AWS_XML_H

#include <stddef.h>

#include "trailwatch/error.h"

/* S3 answers nest 4 deep; 32 leaves room and bounds the path buffer. */
#define TW_XML_DEPTH_MAX   32u
/* Text of one element: S3 keys are at most 1024 bytes (x3 when URL-encoded), tokens a few hundred. */
#define TW_XML_TEXT_MAX    (64u * 1024u)
/* Path from the root: element names are short. */
#define TW_XML_PATH_MAX    1024u

/* Returns non-zero to stop the walk (that value is not an error to the walk: TW_OK is returned). */
typedef int (*tw_xml_fn)(void *ctx, const char *path, const char *text, size_t len);

/* TW_EJSON is not used: malformed or refused XML is TW_EEVENT with expat's reason and line. */
tw_status tw__xml_walk(const char *xml, size_t len, tw_xml_fn fn, void *ctx, tw_error *err);

#endif
