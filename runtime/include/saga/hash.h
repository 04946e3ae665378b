/* hash.h - FNV-1a, the one hash of ids and keys the runtime and the tools
 * share: fault rolls, idempotency scopes, fingerprints of events. Fast and
 * well spread on short text; not cryptographic, so nothing may rely on a
 * hash that an adversary cannot collide (compare the keys themselves). */
#ifndef SAGA_HASH_H
#define SAGA_HASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The FNV-1a 64-bit offset basis: the h to start a hash from. */
#define SAGA_FNV1A_INIT 14695981039346656037ULL

/* Continues the FNV-1a 64-bit hash h over len bytes of data, so that
 * several fields hash as one: h = saga_fnv1a(SAGA_FNV1A_INIT, a, alen);
 * h = saga_fnv1a(h, b, blen). data may be NULL when len is 0. */
uint64_t saga_fnv1a(uint64_t h, const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif
