/*
 * common/hash.h: a fast non-cryptographic hash for short keys (internal).
 *
 * Ownership: pure functions over borrowed bytes. Not for untrusted keys where collisions cost more
 * than a probe: every table using it compares keys on hit and bounds its load factor.
 */
#ifndef TW_COMMON_HASH_H
#define TW_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t tw__hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Reads 8 bytes at a time; seed separates key spaces (field id, matcher kind). */
static inline uint64_t tw__hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ (w * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = (h ^ (w * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;
    }
    return tw__hash_mix(h);
}

#endif
