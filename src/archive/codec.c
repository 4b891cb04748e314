/* archive/codec.c: blocks of event bodies in zstd frames, with trained dictionaries. */
#include "archive/codec.h"

#include <stdlib.h>
#include <string.h>
#define ZDICT_STATIC_LINKING_ONLY /* ZDICT_trainFromBuffer_fastCover: one pass, fixed parameters */
#include <zdict.h>
#include <zstd.h>

#include "common/err.h"

#define MAX_DICTS 16

struct tw__codec {
    int level;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    struct {
        uint32_t id;
        ZSTD_CDict *cd;
        ZSTD_DDict *dd;
    } dicts[MAX_DICTS];
    size_t ndicts;
    tw_buf scratch;   /* the uncompressed block being packed */
};

tw_status tw__codec_new(int level, tw__codec **out, tw_error *err)
{
    tw__codec *c = calloc(1, sizeof *c);
    if (!c || !(c->cctx = ZSTD_createCCtx()) || !(c->dctx = ZSTD_createDCtx())) {
        tw__codec_free(c);
        return tw__err(err, TW_ENOMEM, "archive: out of memory (zstd contexts)");
    }
    c->level = level;
    tw__buf_init(&c->scratch, 0);
    *out = c;
    return TW_OK;
}

void tw__codec_free(tw__codec *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ndicts; i++) {
        ZSTD_freeCDict(c->dicts[i].cd);
        ZSTD_freeDDict(c->dicts[i].dd);
    }
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    tw__buf_free(&c->scratch);
    free(c);
}

static size_t find_dict(const tw__codec *c, uint32_t id)
{
    for (size_t i = 0; i < c->ndicts; i++)
        if (c->dicts[i].id == id)
            return i;
    return SIZE_MAX;
}

int tw__codec_has_dict(const tw__codec *c, uint32_t id) { return find_dict(c, id) != SIZE_MAX; }

tw_status tw__codec_load_dict(tw__codec *c, uint32_t id, const void *dict, size_t len, tw_error *err)
{
    if (find_dict(c, id) != SIZE_MAX)
        return TW_OK;
    if (c->ndicts == MAX_DICTS)
        return tw__err(err, TW_ELIMIT, "archive: more than %d compression dictionaries", MAX_DICTS);
    ZSTD_CDict *cd = ZSTD_createCDict(dict, len, c->level);
    ZSTD_DDict *dd = ZSTD_createDDict(dict, len);
    if (!cd || !dd) {
        ZSTD_freeCDict(cd);
        ZSTD_freeDDict(dd);
        return tw__err(err, TW_ECORRUPT, "archive: compression dictionary %u is damaged", id);
    }
    c->dicts[c->ndicts].id = id;
    c->dicts[c->ndicts].cd = cd;
    c->dicts[c->ndicts].dd = dd;
    c->ndicts++;
    return TW_OK;
}

tw_status tw__codec_train(const char *const *bodies, const size_t *lens, size_t n, void **dict, size_t *dict_len,
                          tw_error *err)
{
    size_t total = 0, k = 0;
    while (k < n && total + lens[k] <= TW_ARCH_DICT_SAMPLE_BYTES)
        total += lens[k++];
    if (k < 16)
        return tw__err(err, TW_ENOTFOUND, "archive: too few events to train a dictionary");
    char *samples = malloc(total ? total : 1);
    size_t *sizes = malloc(k * sizeof *sizes);
    void *d = malloc(TW_ARCH_DICT_BYTES);
    tw_status rc = TW_OK;
    if (!samples || !sizes || !d) {
        rc = tw__err(err, TW_ENOMEM, "archive: out of memory (dictionary samples)");
        goto out;
    }
    size_t off = 0;
    for (size_t i = 0; i < k; i++) {
        memcpy(samples + off, bodies[i], lens[i]);
        off += lens[i];
        sizes[i] = lens[i];
    }
    /* fixed parameters: ZDICT_trainFromBuffer searches k and d (several passes, 10x the time) for a
     * dictionary within a percent of this one on CloudTrail records */
    ZDICT_fastCover_params_t prm;
    memset(&prm, 0, sizeof prm);
    prm.k = 1024;
    prm.d = 8;
    prm.f = 20;
    prm.accel = 1;
    prm.splitPoint = 1.0;
    prm.zParams.compressionLevel = 3;
    size_t r = ZDICT_trainFromBuffer_fastCover(d, TW_ARCH_DICT_BYTES, samples, sizes, (unsigned)k, prm);
    if (ZDICT_isError(r)) {
        rc = tw__err(err, TW_ENOTFOUND, "archive: no dictionary: %s", ZDICT_getErrorName(r));
        goto out;
    }
    *dict = d;
    *dict_len = r;
    d = NULL;
out:
    free(samples);
    free(sizes);
    free(d);
    return rc;
}

static void put32(char *p, uint32_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
    p[2] = (char)((v >> 16) & 0xff);
    p[3] = (char)((v >> 24) & 0xff);
}

static uint32_t get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

tw_status tw__codec_pack(tw__codec *c, uint32_t dict, const char *const *bodies, const size_t *lens, size_t n,
                         tw_buf *out, size_t *raw_len, tw_error *err)
{
    size_t hdr = 4 * (n + 2), total = hdr;
    for (size_t i = 0; i < n; i++)
        total += lens[i];
    if (total > TW_ARCH_BLOCK_MAX)
        return tw__err(err, TW_ETOOBIG, "archive: a block of %zu bytes is over the limit", total);
    tw_buf_reset(&c->scratch);
    if (tw__buf_reserve(&c->scratch, total))
        return tw__err(err, TW_ENOMEM, "archive: out of memory (block of %zu bytes)", total);
    char *p = c->scratch.data;
    put32(p, (uint32_t)n);
    uint32_t off = 0;
    for (size_t i = 0; i < n; i++) {
        put32(p + 4 * (i + 1), off);
        memcpy(p + hdr + off, bodies[i], lens[i]);
        off += (uint32_t)lens[i];
    }
    put32(p + 4 * (n + 1), off);
    size_t bound = ZSTD_compressBound(total);
    tw_buf_reset(out);
    if (tw__buf_reserve(out, bound))
        return tw__err(err, TW_ENOMEM, "archive: out of memory (compressed block)");
    size_t r;
    size_t di = dict ? find_dict(c, dict) : SIZE_MAX;
    if (dict && di == SIZE_MAX)
        return tw__err(err, TW_EINVAL, "archive: dictionary %u is not loaded", dict);
    if (di != SIZE_MAX)
        r = ZSTD_compress_usingCDict(c->cctx, out->data, bound, p, total, c->dicts[di].cd);
    else
        r = ZSTD_compressCCtx(c->cctx, out->data, bound, p, total, c->level);
    if (ZSTD_isError(r))
        return tw__err(err, TW_EIO, "archive: compressing a block: %s", ZSTD_getErrorName(r));
    out->len = r;
    *raw_len = total;
    return TW_OK;
}

tw_status tw__codec_unpack(tw__codec *c, uint32_t dict, const void *data, size_t len, tw__block *b, tw_error *err)
{
    unsigned long long size = ZSTD_getFrameContentSize(data, len);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size < 8 || size > TW_ARCH_BLOCK_MAX)
        return tw__err(err, TW_ECORRUPT, "archive: a stored block is damaged (bad frame header)");
    if (b->cap < size) {
        char *p = realloc(b->raw, (size_t)size);
        if (!p)
            return tw__err(err, TW_ENOMEM, "archive: out of memory (block of %llu bytes)", size);
        b->raw = p;
        b->cap = (size_t)size;
    }
    size_t r;
    size_t di = dict ? find_dict(c, dict) : SIZE_MAX;
    if (dict && di == SIZE_MAX)
        return tw__err(err, TW_ECORRUPT, "archive: a block names dictionary %u, which is not stored", dict);
    if (di != SIZE_MAX)
        r = ZSTD_decompress_usingDDict(c->dctx, b->raw, (size_t)size, data, len, c->dicts[di].dd);
    else
        r = ZSTD_decompressDCtx(c->dctx, b->raw, (size_t)size, data, len);
    if (ZSTD_isError(r) || r != size) {
        b->n = 0;
        return tw__err(err, TW_ECORRUPT, "archive: a stored block is damaged (%s)",
                       ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short");
    }
    b->raw_len = r;
    uint32_t n = get32(b->raw);
    size_t hdr = 4 * ((size_t)n + 2);
    if (hdr > r || get32(b->raw + 4 * ((size_t)n + 1)) != r - hdr) {
        b->n = 0;
        return tw__err(err, TW_ECORRUPT, "archive: a stored block is damaged (bad offsets)");
    }
    uint32_t prev = 0;
    for (uint32_t i = 0; i <= n; i++) {
        uint32_t o = get32(b->raw + 4 * ((size_t)i + 1));
        if (o < prev) {
            b->n = 0;
            return tw__err(err, TW_ECORRUPT, "archive: a stored block is damaged (bad offsets)");
        }
        prev = o;
    }
    b->n = n;
    return TW_OK;
}

tw_status tw__block_body(const tw__block *b, uint32_t slot, const char **body, size_t *len, tw_error *err)
{
    if (slot >= b->n)
        return tw__err(err, TW_ECORRUPT, "archive: event %u of a block of %u is missing (damaged index)", slot, b->n);
    size_t hdr = 4 * ((size_t)b->n + 2);
    uint32_t o = get32(b->raw + 4 * ((size_t)slot + 1)), e = get32(b->raw + 4 * ((size_t)slot + 2));
    *body = b->raw + hdr + o;
    *len = e - o;
    return TW_OK;
}

void tw__block_free(tw__block *b)
{
    free(b->raw);
    b->raw = NULL;
    b->raw_len = b->cap = 0;
    b->n = 0;
}
