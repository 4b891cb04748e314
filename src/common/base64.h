/*
 * common/base64.h: strict standard base64 decoding (RFC 4648 section 4) (internal).
 *
 * Ownership: reads borrowed text, writes into the caller's buffer.
 *
 * Strict because what arrives is produced by AWS (Firehose record data, CloudWatch Logs payloads),
 * which always pads and never wraps lines: anything else is a malformed request, not a variant to
 * guess at. OpenSSL's EVP_DecodeBlock is not used: it keeps the padding's zero bytes in the output and
 * accepts whitespace.
 */
#ifndef TW_COMMON_BASE64_H
#define TW_COMMON_BASE64_H

#include <stddef.h>

/* Bytes the decoding of len characters can take (an upper bound). */
static inline size_t tw__base64_decoded_max(size_t len) { return len / 4 * 3 + 3; }

/* Decodes [in, in+len) into out (room for tw__base64_decoded_max(len) bytes). Returns the decoded
 * length, or (size_t)-1 when the text is not canonical padded base64: a length that is not a multiple
 * of 4, a character outside the alphabet, '=' anywhere but the last one or two places, or non-zero
 * bits under the padding. The empty text decodes to nothing. */
size_t tw__base64_decode(const char *in, size_t len, unsigned char *out);

#endif
