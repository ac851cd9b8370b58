/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * BLAKE2b (RFC 7693), unkeyed: a cryptographic hash without a dependency, used
 * where content decides what is trusted (the kernel cache). About 3x the cost of
 * zlib's CRC-32, but collisions cannot be made on purpose.
 */
#ifndef MINIVMM_BLAKE2B_H
#define MINIVMM_BLAKE2B_H

#include <stddef.h>
#include <stdint.h>

#define BLAKE2B_MAX_OUT 64

struct blake2b {
	uint64_t h[8], t[2];
	uint8_t buf[128];
	size_t fill, outlen;
};

/* @outlen: digest bytes, 1..64. */
void blake2b_init(struct blake2b *s, size_t outlen);
void blake2b_update(struct blake2b *s, const void *data, size_t len);
void blake2b_final(struct blake2b *s, uint8_t *out);
/* One call: @outlen bytes of BLAKE2b(@data) into @out. */
void blake2b(uint8_t *out, size_t outlen, const void *data, size_t len);

#endif
