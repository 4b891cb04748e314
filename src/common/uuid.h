/*
 * common/uuid.h: random (version 4) UUIDs for event ids and request ids (internal).
 *
 * Ownership: writes into a caller's buffer. Thread-safe: each thread keeps its own random pool,
 * refilled from getrandom(2).
 */
#ifndef TW_COMMON_UUID_H
#define TW_COMMON_UUID_H

#define TW_UUID_LEN 36

/* Writes 36 characters and a NUL into out (37 bytes). */
void tw__uuid4(char out[TW_UUID_LEN + 1]);

#endif
