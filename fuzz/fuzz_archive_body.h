/*
 * fuzz/fuzz_archive_body.h: the checks of fuzz_archive (see fuzz_common.h for how bodies are shared).
 *
 * Input: the text of one event, given to the archive's extractor (src/archive/extract.c), and the
 * same bytes given to the block decoder (src/archive/codec.c) as if read from a damaged file.
 *   1. extract succeeds exactly when tw_json_parse accepts the text and its root is an object.
 *   2. On success every string field is non-NULL; identities and resources are distinct, within
 *      their caps and no longer than the cap on a resource; the event's own resources and
 *      identities are found by tw__arch_has_resource / has_identity; terms are distinct.
 *   3. The block decoder never crashes on arbitrary bytes: an error is TW_ECORRUPT (or TW_ENOMEM),
 *      and a decoded block hands out bodies inside itself. A block packed from the input's halves
 *      comes back byte for byte.
 */
#ifndef TW_FUZZ_ARCHIVE_BODY_H
#define TW_FUZZ_ARCHIVE_BODY_H

#include "archive/codec.h"
#include "archive/extract.h"
#include "fuzz_common.h"
#include "trailwatch/json.h"

static tw__codec *fz_archive_codec;

FUZZ_FN void fuzz_archive_init(void)
{
    tw_error err;
    FUZZ_SETUP(tw__codec_new(1, &fz_archive_codec, &err) == TW_OK, "codec");
}

FUZZ_FN void fuzz_archive_fini(void)
{
    tw__codec_free(fz_archive_codec);
    fz_archive_codec = NULL;
}

static void fz_archive_extract(const char *text, size_t size)
{
    tw_json_doc *doc = NULL;
    int valid = tw_json_parse(text, size, NULL, &doc, NULL) == TW_OK &&
                tw_json_typeof(tw_json_root(doc)) == TW_JSON_OBJECT;
    tw_json_doc_free(doc);
    tw__arch_fields f;
    tw_error err;
    tw_status s = tw__arch_extract(text, size, &f, &err);
    FUZZ_CHECK((s == TW_OK) == valid, "extract %d, parse+object %d: %s", (int)s, valid, s ? err.msg : "");
    if (s == TW_OK) {
        const char *fields[] = {f.id, f.event_name, f.event_source, f.account, f.region, f.source, f.detail_type,
                                f.error_code, f.source_ip, f.principal, f.principal_type, f.role, f.session, f.behind};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            FUZZ_CHECK(fields[i] != NULL, "field %zu is NULL", i);
        FUZZ_CHECK(f.nidentities <= TW_ARCH_MAX_IDENTITIES, "%zu identities", f.nidentities);
        FUZZ_CHECK(f.nresources <= TW_ARCH_MAX_RESOURCES, "%zu resources", f.nresources);
        for (size_t i = 0; i < f.nresources; i++) {
            FUZZ_CHECK(strlen(f.resources[i]) <= TW_ARCH_MAX_RESOURCE_LEN && *f.resources[i], "resource %zu", i);
            FUZZ_CHECK(tw__arch_has_resource(&f, f.resources[i]), "resource %zu not found", i);
            for (size_t j = 0; j < i; j++)
                FUZZ_CHECK(strcmp(f.resources[i], f.resources[j]) != 0, "resource %zu twice", i);
        }
        for (size_t i = 0; i < f.nidentities; i++)
            FUZZ_CHECK(tw__arch_has_identity(&f, f.identities[i]), "identity %zu not found", i);
        int32_t terms[TW_ARCH_MAX_RESOURCES + TW_ARCH_MAX_IDENTITIES + 4];
        size_t n = tw__arch_terms(&f, terms, sizeof terms / sizeof terms[0]);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < i; j++)
                FUZZ_CHECK(terms[i] != terms[j], "term %zu twice", i);
        (void)tw__arch_mutating(&f);
    }
    tw__arch_fields_free(&f);
}

static void fz_archive_codec_check(const char *data, size_t size)
{
    tw__block b = {0};
    tw_error err;
    tw_status s = tw__codec_unpack(fz_archive_codec, 0, data, size, &b, &err);
    FUZZ_CHECK(s == TW_OK || s == TW_ECORRUPT || s == TW_ENOMEM, "unpack: %d", (int)s);
    if (s == TW_OK) {
        for (uint32_t i = 0; i < b.n && i < 1000; i++) {
            const char *body;
            size_t len;
            if (tw__block_body(&b, i, &body, &len, &err) == TW_OK)
                FUZZ_CHECK(body >= b.raw && body + len <= b.raw + b.raw_len, "body %u outside its block", i);
        }
    }
    /* round trip of the input's two halves */
    const char *bodies[2] = {data, data + size / 2};
    size_t lens[2] = {size / 2, size - size / 2}, raw;
    tw_buf out = TW_BUF_INIT;
    FUZZ_SETUP(tw__codec_pack(fz_archive_codec, 0, bodies, lens, 2, &out, &raw, &err) == TW_OK, "pack");
    FUZZ_CHECK(tw__codec_unpack(fz_archive_codec, 0, out.data, out.len, &b, &err) == TW_OK, "unpack own: %s", err.msg);
    for (uint32_t i = 0; i < 2 && b.n == 2; i++) {
        const char *body;
        size_t len;
        FUZZ_CHECK(tw__block_body(&b, i, &body, &len, &err) == TW_OK && len == lens[i] &&
                       (len == 0 || memcmp(body, bodies[i], len) == 0),
                   "body %u differs", i);
    }
    tw__buf_free(&out);
    tw__block_free(&b);
}

FUZZ_FN void fuzz_archive_check(const uint8_t *data, size_t size)
{
    fz_archive_extract((const char *)data, size);
    fz_archive_codec_check((const char *)data, size);
}

#endif
