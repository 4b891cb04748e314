/*
 * fuzz/fuzz_yaml_body.h: the checks of fuzz_yaml (see fuzz_common.h for how bodies are shared).
 *
 * Input: one YAML text, loaded with tw_yaml_parse (json_depth 64, file_max 1 MiB).
 *   1. The document is set iff TW_OK; a failure fills err with the same code and a message.
 *   2. A loaded tree has a position on every node (1-based line and column) and nests no deeper than
 *      json_depth; tw_json_dump of it is valid JSON for tw_json_parse under the same depth limit, and
 *      that parse is structurally equal to the tree.
 *   3. What the tree expands to (aliases included) stays within what the node budget allows
 *      (TW_YAML_NODES_MAX nodes, strings weighing one node per TW_YAML_BYTES_PER_NODE bytes): its
 *      dump's size, computed first, is at most FZ_YAML_EXPANSION_MAX bytes, and the dump is exactly
 *      that size.
 */
#ifndef TW_FUZZ_YAML_BODY_H
#define TW_FUZZ_YAML_BODY_H

#include "fuzz_common.h"
#include "json/json_int.h"
#include "trailwatch/json.h"
#include "trailwatch/yaml.h"

/* The most a loaded document may dump to: the node budget also bounds string bytes (one node per
 * TW_YAML_BYTES_PER_NODE), so each node stands for at most that many bytes, each escaped to at most
 * 6, plus punctuation. Past FZ_YAML_REPARSE_MAX the dump is not written and parsed again (time). */
#define FZ_YAML_EXPANSION_MAX ((size_t)TW_YAML_NODES_MAX * (6u * TW_YAML_BYTES_PER_NODE + 8u))
#define FZ_YAML_REPARSE_MAX (64u << 20)

static tw_limits fz_yaml_lim;

FUZZ_FN void fuzz_yaml_init(void)
{
    tw_limits_default(&fz_yaml_lim);
    fz_yaml_lim.json_depth = 64;
    fz_yaml_lim.file_max = 1u << 20;
}

FUZZ_FN void fuzz_yaml_fini(void) {}

/* Every node has a position; returns the height (container levels) of v. *nodes counts visits and
 * stops the walk past the loader's budget. */
FUZZ_FN unsigned fuzz_yaml_walk(const tw_json *v, size_t *nodes)
{
    if (++*nodes > 2u * TW_YAML_NODES_MAX + 2)
        return 0;
    FUZZ_CHECK(tw_json_line(v) >= 1 && tw_json_column(v) >= 1, "a %s node without a position",
               tw_json_type_name(tw_json_typeof(v)));
    tw_json_type t = tw_json_typeof(v);
    if (t != TW_JSON_ARRAY && t != TW_JSON_OBJECT)
        return 0;
    unsigned h = 0;
    for (size_t i = 0; i < tw_json_size(v); i++) {
        unsigned c = fuzz_yaml_walk(tw_json_at(v, i), nodes);
        if (c > h)
            h = c;
    }
    return h + 1;
}

/* Bytes of a string as tw__json_write_string writes it. */
FUZZ_FN size_t fuzz_yaml_string_size(const char *s, size_t n)
{
    size_t out = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out += c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f' ? 2
               : c < 0x20                                                                   ? 6
                                                                                            : 1;
    }
    return out;
}

/* Bytes of the compact dump of v (as tw_json_dump writes it), computed without writing it; stops
 * counting soon after max. */
FUZZ_FN size_t fuzz_yaml_expanded_size(const tw_json *v, size_t max)
{
    size_t n = 0, len = 0;
    const char *s;
    switch (tw_json_typeof(v)) {
    case TW_JSON_NULL: case TW_JSON_TRUE: return 4;
    case TW_JSON_FALSE: return 5;
    case TW_JSON_NUMBER: tw_json_number_text(v, &len); return len;
    case TW_JSON_STRING: s = tw_json_string(v, &len); return fuzz_yaml_string_size(s, len);
    case TW_JSON_ARRAY:
    case TW_JSON_OBJECT:
        n = 2 + (tw_json_size(v) ? tw_json_size(v) - 1 : 0);   /* brackets, commas */
        for (size_t i = 0; i < tw_json_size(v) && n <= max; i++) {
            if (tw_json_typeof(v) == TW_JSON_OBJECT) {
                s = tw_json_key(v, i, &len);
                n += fuzz_yaml_string_size(s, len) + 1;
            }
            n += fuzz_yaml_expanded_size(tw_json_at(v, i), max - (n < max ? n : max));
        }
        return n;
    }
    return 0;
}

FUZZ_FN void fuzz_yaml_check(const uint8_t *data, size_t size)
{
    tw_json_doc *doc = NULL, *doc2 = NULL;
    tw_error err = {0}, err2 = {0};
    tw_status rc = tw_yaml_parse((const char *)data, size, &fz_yaml_lim, &doc, &err);
    FUZZ_CHECK((rc == TW_OK) == (doc != NULL), "doc set iff TW_OK (rc %d)", rc);
    FUZZ_CHECK(rc == TW_OK || (err.code == rc && err.msg[0]), "error %d without a message", rc);
    if (!doc)
        return;
    const tw_json *root = tw_json_root(doc);
    size_t nodes = 0;
    unsigned h = fuzz_yaml_walk(root, &nodes);
    FUZZ_CHECK(nodes <= 2u * TW_YAML_NODES_MAX + 1, "more than %u nodes", 2u * TW_YAML_NODES_MAX);
    FUZZ_CHECK(h <= fz_yaml_lim.json_depth, "the tree nests %u levels, over the limit of %u", h,
               fz_yaml_lim.json_depth);
    size_t est = fuzz_yaml_expanded_size(root, FZ_YAML_EXPANSION_MAX);
    FUZZ_CHECK(est <= FZ_YAML_EXPANSION_MAX, "%zu bytes of YAML dump to more than %zu bytes of JSON (the node "
               "budget should bound that)", size, FZ_YAML_EXPANSION_MAX);
    if (est <= FZ_YAML_REPARSE_MAX) {
        size_t n = 0;
        char *j = tw_json_dump(root, &n);
        FUZZ_CHECK(j != NULL, "dump failed");
        FUZZ_CHECK(!j || n == est, "the dump is %zu bytes, %zu expected", n, est);
        tw_limits jl = fz_yaml_lim;
        jl.event_max = FZ_YAML_REPARSE_MAX;
        tw_status rc2 = j ? tw_json_parse(j, n, &jl, &doc2, &err2) : TW_ENOMEM;
        FUZZ_CHECK(rc2 == TW_OK, "the JSON of a loaded YAML document does not parse: %s\n    %.300s",
                   err2.msg, j ? j : "");
        if (doc2)
            FUZZ_CHECK(tw__json_equal(root, tw_json_root(doc2)), "reparsed JSON differs from the tree");
        tw_json_doc_free(doc2);
        free(j);
    }
    tw_json_doc_free(doc);
}

#endif
