// SPDX-License-Identifier: GPL-2.0-or-later
/* BLAKE2b as RFC 7693 describes it (section 3 and appendix C), unkeyed. */
#include <string.h>

#include "blake2b.h"
#include "util.h"

static const uint64_t iv[8] = {
	0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
	0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t sigma[12][16] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
	{ 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
	{ 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
	{ 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
	{ 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
	{ 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
	{ 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
	{ 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
	{ 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
};

static inline uint64_t ror64(uint64_t x, unsigned int n)
{
	return x >> n | x << (64 - n);
}

#define G(a, b, c, d, x, y)                                                                        \
	do {                                                                                       \
		v[a] = v[a] + v[b] + (x);                                                          \
		v[d] = ror64(v[d] ^ v[a], 32);                                                     \
		v[c] = v[c] + v[d];                                                                \
		v[b] = ror64(v[b] ^ v[c], 24);                                                     \
		v[a] = v[a] + v[b] + (y);                                                          \
		v[d] = ror64(v[d] ^ v[a], 16);                                                     \
		v[c] = v[c] + v[d];                                                                \
		v[b] = ror64(v[b] ^ v[c], 63);                                                     \
	} while (0)

static void compress(struct blake2b *s, const uint8_t *blk, int last)
{
	uint64_t v[16], m[16];
	int i;

	for (i = 0; i < 16; i++)
		m[i] = get_le64(blk + 8 * i);
	memcpy(v, s->h, sizeof(s->h));
	memcpy(v + 8, iv, sizeof(iv));
	v[12] ^= s->t[0];
	v[13] ^= s->t[1];
	if (last)
		v[14] = ~v[14];
	for (i = 0; i < 12; i++) {
		const uint8_t *z = sigma[i];

		G(0, 4, 8, 12, m[z[0]], m[z[1]]);
		G(1, 5, 9, 13, m[z[2]], m[z[3]]);
		G(2, 6, 10, 14, m[z[4]], m[z[5]]);
		G(3, 7, 11, 15, m[z[6]], m[z[7]]);
		G(0, 5, 10, 15, m[z[8]], m[z[9]]);
		G(1, 6, 11, 12, m[z[10]], m[z[11]]);
		G(2, 7, 8, 13, m[z[12]], m[z[13]]);
		G(3, 4, 9, 14, m[z[14]], m[z[15]]);
	}
	for (i = 0; i < 8; i++)
		s->h[i] ^= v[i] ^ v[i + 8];
}

static void count(struct blake2b *s, size_t n)
{
	s->t[0] += n;
	if (s->t[0] < n)
		s->t[1]++;
}

void blake2b_init(struct blake2b *s, size_t outlen)
{
	memset(s, 0, sizeof(*s));
	if (!outlen || outlen > BLAKE2B_MAX_OUT)
		outlen = BLAKE2B_MAX_OUT;
	s->outlen = outlen;
	memcpy(s->h, iv, sizeof(iv));
	s->h[0] ^= 0x01010000ULL ^ outlen; /* depth 1, fanout 1, no key */
}

void blake2b_update(struct blake2b *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	/* The last block is compressed in final(): keep a full buffer until more comes. */
	while (len) {
		size_t n;

		if (s->fill == sizeof(s->buf)) {
			count(s, sizeof(s->buf));
			compress(s, s->buf, 0);
			s->fill = 0;
		}
		if (!s->fill) {
			while (len > sizeof(s->buf)) {
				count(s, sizeof(s->buf));
				compress(s, p, 0);
				p += sizeof(s->buf);
				len -= sizeof(s->buf);
			}
		}
		n = MIN(len, sizeof(s->buf) - s->fill);
		memcpy(s->buf + s->fill, p, n);
		s->fill += n;
		p += n;
		len -= n;
	}
}

void blake2b_final(struct blake2b *s, uint8_t *out)
{
	uint8_t full[BLAKE2B_MAX_OUT];
	int i;

	count(s, s->fill);
	memset(s->buf + s->fill, 0, sizeof(s->buf) - s->fill);
	compress(s, s->buf, 1);
	for (i = 0; i < 8; i++)
		put_le64(full + 8 * i, s->h[i]);
	memcpy(out, full, s->outlen);
}

void blake2b(uint8_t *out, size_t outlen, const void *data, size_t len)
{
	struct blake2b s;

	blake2b_init(&s, outlen);
	blake2b_update(&s, data, len);
	blake2b_final(&s, out);
}
