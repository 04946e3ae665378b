/* random.h - Randomness for ids (ulid.c): the kernel's, and SplitMix64 where a cheap stream will
 * do. */
#ifndef SAGA_RANDOM_H
#define SAGA_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf with len bytes from getrandom(2); without kernel randomness, with
 * a mix of the clock, the pid and an address, so that two processes started
 * in the same millisecond still differ. Never fails. */
void saga__random_bytes(uint8_t *buf, size_t len);

/* SplitMix64: the next 64 bits of the stream whose state is *s. Not for
 * secrets; cheap and well mixed, so ids drawn from a randomly seeded state
 * differ between processes. */
uint64_t saga__splitmix64(uint64_t *s);

#endif
