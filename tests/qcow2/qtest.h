/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the qcow2 unit tests and fuzzers (header only). */
#ifndef MINIVMM_TESTS_QCOW2_QTEST_H
#define MINIVMM_TESTS_QCOW2_QTEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/file_io.h"
#include "crashsim.h"
#include "qcow2/qcow2.h"

#define QT_MAX_FILE (1ULL << 30)

static inline struct fio *qt_new_image(uint64_t size, unsigned int cb, int version,
				       unsigned int rbits)
{
	struct qcow2_create_opts o = {
		.size = size, .cluster_bits = cb, .version = version, .refcount_bits = rbits
	};
	struct fio *f = crashsim_new(NULL, 0, QT_MAX_FILE);
	char err[128];

	if (f && qcow2_create_fio(f, &o, err, sizeof(err))) {
		fio_close(f);
		return NULL;
	}
	return f;
}

/* Open @f (ownership passes to the image on success). */
static inline int qt_open(struct fio *f, struct qcow2 **q, bool ro, char *err, size_t n)
{
	struct qcow2_opts o = { .readonly = ro, .file = f };

	return qcow2_open(q, NULL, &o, err, n);
}

/* A private copy of a crashsim file's current bytes as a new crashsim file. */
static inline struct fio *qt_clone(struct fio *f)
{
	uint64_t n;
	const uint8_t *d = crashsim_data(f, &n);

	return crashsim_new(d, n, QT_MAX_FILE);
}

/* Deterministic sector content for (sector, tag); tag 0 is all zeros. */
static inline void qt_fill(uint8_t *p, uint64_t sector, uint32_t tag)
{
	if (!tag) {
		memset(p, 0, 512);
		return;
	}
	for (int i = 0; i < 512; i += 16) {
		memcpy(p + i, &sector, 8);
		memcpy(p + i + 8, &tag, 4);
		uint32_t x = tag * 2654435761u ^ (uint32_t)i;

		memcpy(p + i + 12, &x, 4);
	}
}

static inline uint64_t qt_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#endif
