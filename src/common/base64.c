/* common/base64.c: strict base64 decoding with a 256-entry table. */
#include "common/base64.h"

#include <stdint.h>

#define BAD 0xff

/* Maps each byte to its 6-bit value, BAD for bytes outside the alphabet (including '='). Filled
 * before main() so that threads only ever read it. */
static uint8_t t[256];

__attribute__((constructor)) static void init_table(void)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 256; i++)
        t[i] = BAD;
    for (int i = 0; i < 64; i++)
        t[(unsigned char)alphabet[i]] = (uint8_t)i;
}

size_t tw__base64_decode(const char *in, size_t len, unsigned char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    if (len % 4)
        return (size_t)-1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint8_t a = t[s[i]], b = t[s[i + 1]], c = t[s[i + 2]], d = t[s[i + 3]];
        if (((a | b | c | d) & 0xc0) == 0) { /* BAD has the top bits set */
            uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
            out[o++] = (unsigned char)(v >> 16);
            out[o++] = (unsigned char)(v >> 8);
            out[o++] = (unsigned char)v;
            continue;
        }
        /* Only the last quantum may be padded: "xx==" (one byte) or "xxx=" (two bytes). */
        if (i + 4 != len || a == BAD || b == BAD)
            return (size_t)-1;
        if (c == BAD && s[i + 2] == '=' && s[i + 3] == '=') {
            if (b & 0x0f)
                return (size_t)-1;
            out[o++] = (unsigned char)(a << 2 | b >> 4);
        } else if (c != BAD && s[i + 3] == '=') {
            if (c & 0x03)
                return (size_t)-1;
            out[o++] = (unsigned char)(a << 2 | b >> 4);
            out[o++] = (unsigned char)(b << 4 | c >> 2);
        } else {
            return (size_t)-1;
        }
    }
    return o;
}
