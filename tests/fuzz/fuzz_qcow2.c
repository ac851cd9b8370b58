// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the input is a qcow2 file. Open it (read-only and
 * read-write, in memory), read across it, write, discard, zero, flush and
 * check/repair it. Nothing may crash, hang, leak or allocate without bound;
 * writes land only in the in-memory file (capped at 64 MiB).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/file_io.h"
#include "crashsim.h"
#include "qcow2/qcow2.h"

#define MAX_FILE (64u << 20)

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void exercise(struct qcow2 *q, bool rw, uint64_t seed)
{
	static uint8_t buf[256 * 1024];
	uint64_t size = qcow2_size(q);
	struct qcow2_check_result cr;

	if (size >= 512) {
		uint64_t n = size < sizeof(buf) ? size : sizeof(buf);

		qcow2_pread(q, buf, n & ~511ULL, 0);
		for (int i = 0; i < 8; i++) {
			uint64_t len = (next(&seed) % 64 + 1) * 512;
			uint64_t off = (next(&seed) % (size / 512)) * 512;

			if (off + len > size)
				continue;
			if (rw && i % 2) {
				memset(buf, i, len);
				qcow2_pwrite(q, buf, len, off);
			} else if (rw && i == 4) {
				qcow2_discard(q, off, len);
			} else if (rw && i == 6) {
				qcow2_write_zeroes(q, off, len);
			} else {
				qcow2_pread(q, buf, len, off);
			}
		}
		if (rw)
			qcow2_flush(q);
	}
	/* img map: every run of the image, each starting where the last ended. */
	for (uint64_t off = 0, runs = 0; off < size && runs < 4096; runs++) {
		struct qcow2_map_ent m;

		if (qcow2_map(q, off, &m))
			break;
		if (m.start != off || !m.length || m.length > size - off)
			abort();
		off += m.length;
	}
	qcow2_check(q, rw ? QCOW2_REPAIR_ALL : QCOW2_REPAIR_NONE, &cr, NULL, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	char err[256];

	if (n > MAX_FILE)
		return 0;
	for (size_t i = n > 16 ? n - 16 : 0; i < n; i++)
		seed = (seed ^ data[i]) * 0x100000001b3ULL | 1;
	for (int rw = 0; rw <= 1; rw++) {
		struct fio *f = crashsim_new(data, n, MAX_FILE);
		struct qcow2_opts o = { .readonly = !rw,
					.file = f,
					.l2_cache_bytes = 256 << 10,
					.rc_cache_bytes = 256 << 10 };
		struct qcow2 *q;

		if (!f)
			return 0;
		if (qcow2_open(&q, NULL, &o, err, sizeof(err))) {
			fio_close(f);
			continue;
		}
		exercise(q, rw, seed);
		qcow2_close(q);
	}
	return 0;
}
