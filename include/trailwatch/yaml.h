/*
 * trailwatch/yaml.h: loads one YAML document (trailwatch.yml, serverless.yml, rule files) into a JSON
 * tree; the caller owns the returned tw_json_doc and frees it with tw_json_doc_free().
 *
 * Scalars resolve by the YAML 1.2 core schema, not YAML 1.1: plain null, Null, NULL, ~ and the empty
 * scalar are null; true/True/TRUE/false/False/FALSE are booleans (yes/no/on/off stay strings);
 * plain decimal, 0o octal and 0x hex integers and decimal floats are numbers, rewritten as valid JSON
 * literals ("+1" -> "1", "007" -> "7", ".5" -> "0.5", "1." -> "1.0", "0x1f" -> "31"). .inf and .nan
 * have no JSON form: plain, they stay strings as written; under !!float they are an error. A 0x/0o
 * integer wider than 64 bits is an error. Quoted and block scalars are strings. The tags !!str,
 * !!int, !!float, !!bool and !!null are honoured; other yaml.org tags leave a scalar a string and a
 * collection as it is. CloudFormation short tags take CloudFormation's meaning: !Ref X is
 * {"Ref": "X"}, !Condition X is {"Condition": "X"}, !GetAtt A.B and !GetAtt [A, B] are
 * {"Fn::GetAtt": ["A", "B"]}, any other !Name v is {"Fn::Name": v} (a tagged scalar v is a string).
 * Other tags (global URIs) are an error.
 *
 * Mapping keys must be scalars and become their JSON text ("1", "true", "null"); duplicates are kept
 * (tw_json_get returns the last). Aliases share the anchored node: the result may be a DAG, which is
 * fine because the tree is read-only; shared nodes carry the anchor's position. The merge key << (a
 * mapping or a list of mappings) works as in YAML 1.1, as the Serverless Framework expects: the
 * mapping's own keys win, then earlier merged mappings over later ones; merged members are appended
 * after the mapping's own and never duplicate a key.
 *
 * tw_yaml_parse takes exactly one document: a stream with none, or whose only document is empty, is "empty YAML
 * document"; a second document is an error at its line. Every node gets a 1-based line and column
 * (libyaml counts columns in characters). Errors: TW_EYAML "line L, column C: ..." for syntax,
 * TW_EUTF8 for invalid UTF-8, TW_ETOOBIG past lim->file_max bytes, TW_EDEPTH past lim->json_depth
 * levels (aliases and CloudFormation wrappers included), TW_ELIMIT past TW_YAML_NODES_MAX nodes.
 */
#ifndef TRAILWATCH_YAML_H
#define TRAILWATCH_YAML_H

#include <stddef.h>

#include "trailwatch/error.h"
#include "trailwatch/json.h"
#include "trailwatch/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Nodes one document may expand to, each use of an alias counting its whole subtree again: a few
 * hundred bytes of nested aliases can otherwise denote 10^9 nodes ("billion laughs"), and every
 * consumer walking the tree would pay for them. A large serverless.yml has a few thousand nodes. */
#define TW_YAML_NODES_MAX 1000000u
/* Strings count one node per this many bytes toward TW_YAML_NODES_MAX, so what a document expands
 * to through aliases stays under ~64 MB of text as well as under a million nodes. */
#define TW_YAML_BYTES_PER_NODE 64u

/* Parses text (len bytes, UTF-8, NUL not needed) into *out. lim may be NULL for the defaults. On
 * failure *out is NULL and err names line, column and the reason. Never prints. */
tw_status tw_yaml_parse(const char *text, size_t len, const tw_limits *lim, tw_json_doc **out,
                        tw_error *err);

/* A stream of documents ("---" between them: Sigma rule files, multi-document YAML). fn receives each
 * non-empty document in order and owns it (tw_json_doc_free); index counts every document from 0
 * (empty ones included, so it names a document's place in the file), line is where it starts.
 * A non-zero return from fn stops the stream and is returned (fn fills err). Empty documents are skipped; anchors
 * are per document; the node budget (TW_YAML_NODES_MAX) is for the whole stream. A syntax error
 * stops the stream: documents before it have been handed over. */
typedef tw_status (*tw_yaml_doc_fn)(void *ctx, tw_json_doc *doc, size_t index, unsigned line, tw_error *err);
tw_status tw_yaml_parse_stream(const char *text, size_t len, const tw_limits *lim, tw_yaml_doc_fn fn,
                               void *ctx, tw_error *err);

#ifdef __cplusplus
}
#endif
#endif
