/*
 * archive/codec.h: blocks of event bodies, zstd-compressed with an optional trained dictionary
 * (internal; shared by every backend).
 *
 * Ownership: a tw__codec owns its zstd contexts and the dictionaries loaded into it; a tw__block
 * owns its decompressed bytes until tw__block_free (bodies returned by tw__block_body point into it).
 *
 * A block is: u32 n, u32 offsets[n + 1], then the n bodies back to back (little-endian), compressed
 * as one zstd frame. Bodies come back byte for byte.
 */
#ifndef TW_ARCHIVE_CODEC_H
#define TW_ARCHIVE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "trailwatch/error.h"

/* Events per block and raw bytes per block: big enough for zstd to find the repetition between
 * records (the ratio), small enough that fetching one event decompresses little (who, --resource). */
#define TW_ARCH_BLOCK_EVENTS 128u
#define TW_ARCH_BLOCK_BYTES (256u * 1024u)
/* A block's decompressed size is checked against this before anything is allocated (a damaged or
 * hostile frame cannot ask for more): one maximal event plus a full block. */
#define TW_ARCH_BLOCK_MAX (64u * 1024u * 1024u + 2u * TW_ARCH_BLOCK_BYTES)
/* Dictionaries: trained once on the first batch of at least this many events, this big. */
#define TW_ARCH_DICT_MIN_EVENTS 1000u
#define TW_ARCH_DICT_BYTES (64u * 1024u)
#define TW_ARCH_DICT_SAMPLE_BYTES (2u * 1024u * 1024u)

typedef struct tw__codec tw__codec;

tw_status tw__codec_new(int level, tw__codec **out, tw_error *err);
void tw__codec_free(tw__codec *c);
/* Makes dictionary id (> 0) known for packing and unpacking. */
tw_status tw__codec_load_dict(tw__codec *c, uint32_t id, const void *dict, size_t len, tw_error *err);
int tw__codec_has_dict(const tw__codec *c, uint32_t id);
/* Trains a dictionary on the bodies (malloc'd into *dict). TW_ENOTFOUND when zstd finds too little
 * to learn (the caller then goes on without one). */
tw_status tw__codec_train(const char *const *bodies, const size_t *lens, size_t n, void **dict, size_t *dict_len,
                          tw_error *err);

/* Packs n bodies into one compressed block (out is reset first); dict 0 = none. */
tw_status tw__codec_pack(tw__codec *c, uint32_t dict, const char *const *bodies, const size_t *lens, size_t n,
                         tw_buf *out, size_t *raw_len, tw_error *err);

typedef struct tw__block {
    char *raw;
    size_t raw_len, cap;
    uint32_t n;
} tw__block;

/* Decompresses and checks a block. A damaged block is TW_ECORRUPT. */
tw_status tw__codec_unpack(tw__codec *c, uint32_t dict, const void *data, size_t len, tw__block *b, tw_error *err);
/* Body number slot of an unpacked block; TW_ECORRUPT when slot is out of range. */
tw_status tw__block_body(const tw__block *b, uint32_t slot, const char **body, size_t *len, tw_error *err);
void tw__block_free(tw__block *b);

#endif
