/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A bzImage's compressed payload, decompressed on the host, and a cache of it. */
#ifndef MINIVMM_UNPACK_H
#define MINIVMM_UNPACK_H

#include <stddef.h>
#include <stdint.h>

struct bzimage;

/* Decompress the payload (xz, gzip or zstd) of bzImage @img into a malloc'd
 * buffer holding the kernel's ELF image. -ENOTSUP for other formats. */
int bzimage_unpack(const void *img, size_t len, const struct bzimage *bz, void **out,
		   size_t *out_len);

/* An unpacked kernel: malloc'd (fd = -1), or a read-only private mapping of fd. */
struct kimage {
	void *data;
	size_t len;
	int fd;
};

/*
 * The unpacked ELF of @img: from the cache when it has it (keyed by the image's
 * BLAKE2b-256; then mapped, and its segments read from the file), else decompressed
 * now and stored there. The cache directory must be the user's and writable by no
 * one else, its entries regular files of the user's (else it is not used). @cached
 * tells which happened.
 */
int bzimage_unpack_cached(const void *img, size_t len, const struct bzimage *bz, struct kimage *out,
			  int *cached);
void kimage_release(struct kimage *ki);

#endif
