/*
 * common/utf8.h: UTF-8 validation, decoding and encoding (internal).
 *
 * Ownership: pure functions over borrowed bytes.
 * "Valid" means RFC 3629: shortest form, no surrogates (U+D800..U+DFFF), at most U+10FFFF.
 */
#ifndef TW_COMMON_UTF8_H
#define TW_COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid sequence starting at p (1..4), or 0 if it is invalid or truncated at end. */
size_t tw__utf8_seq(const unsigned char *p, const unsigned char *end, uint32_t *cp);

/* Offset of the first invalid byte, or len when all of it is valid. */
size_t tw__utf8_check(const char *s, size_t len);

/* Writes cp (<= 0x10FFFF, not a surrogate) as UTF-8 into out (4 bytes room); returns bytes written. */
size_t tw__utf8_put(char *out, uint32_t cp);

#endif
