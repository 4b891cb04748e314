/* common/uuid.c: version 4 UUIDs from a per-thread getrandom(2) pool. */
#include "common/uuid.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static _Thread_local unsigned char pool[4096];
static _Thread_local size_t pool_left;

static void take(unsigned char out[16])
{
    if (pool_left < 16) {
        ssize_t n = getrandom(pool, sizeof pool, 0);
        if (n < (ssize_t)sizeof pool) {
            /* getrandom cannot fail this way after boot; keep ids unique anyway. */
            static _Thread_local uint64_t x;
            x ^= (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&x;
            for (size_t i = 0; i < sizeof pool; i++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                pool[i] = (unsigned char)(x >> 56);
            }
        }
        pool_left = sizeof pool;
    }
    pool_left -= 16;
    memcpy(out, pool + pool_left, 16);
}

void tw__uuid4(char out[TW_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    take(b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}
