// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The iovec library: copies at every offset across segment edges and empty
 * segments, ranges that fit, overflow their destination or run past the list
 * (never cut silently), positions and front discards.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "iov.h"
#include "unit.h"

/* 3 + 0 + 5 + 1 + 0 + 7 bytes over one flat buffer, so results are easy to predict. */
static uint8_t flat[16];
static struct iovec v[6];

static void setup(void)
{
	static const size_t lens[6] = { 3, 0, 5, 1, 0, 7 };
	size_t at = 0;

	for (unsigned int i = 0; i < 6; i++) {
		v[i].iov_base = flat + at;
		v[i].iov_len = lens[i];
		at += lens[i];
	}
	for (unsigned int i = 0; i < sizeof(flat); i++)
		flat[i] = (uint8_t)(i + 1);
}

START_TEST(t_total)
{
	struct iovec big[2] = { { flat, SIZE_MAX - 2 }, { flat, 5 } };

	ck_assert_uint_eq(iov_total(v, 6), 16);
	ck_assert_uint_eq(iov_total(v, 0), 0);
	ck_assert_uint_eq(iov_total(v, 2), 3);
	/* Saturates instead of wrapping round to a small number. */
	ck_assert_uint_eq(iov_total(big, 2), SIZE_MAX);
}
END_TEST

/* Every offset and length: the copies agree with the flat buffer behind the list. */
START_TEST(t_copies)
{
	uint8_t out[20], in[20];

	for (size_t off = 0; off <= 17; off++) {
		for (size_t len = 0; len <= 18; len++) {
			size_t want = off >= 16 ? 0 : (len < 16 - off ? len : 16 - off), n;

			setup();
			memset(out, 0xaa, sizeof(out));
			n = iov_to_buf(v, 6, off, out, len);
			ck_assert_uint_eq(n, want);
			ck_assert_mem_eq(out, flat + (off < 16 ? off : 0), want);
			ck_assert_uint_eq(out[want], 0xaa); /* nothing past what it says */

			for (size_t i = 0; i < sizeof(in); i++)
				in[i] = (uint8_t)(0x80 + i);
			n = iov_from_buf(v, 6, off, in, len);
			ck_assert_uint_eq(n, want);
			for (size_t i = 0; i < 16; i++) {
				uint8_t expect = i >= off && i < off + want ? (uint8_t)(0x80 + i - off)
									    : (uint8_t)(i + 1);

				ck_assert_uint_eq(flat[i], expect);
			}

			setup();
			n = iov_memset(v, 6, off, 0, len);
			ck_assert_uint_eq(n, want);
			for (size_t i = 0; i < 16; i++)
				ck_assert_uint_eq(flat[i], i >= off && i < off + want ? 0 : i + 1);
		}
	}
}
END_TEST

START_TEST(t_range)
{
	struct iovec d[6];
	int n;

	setup();
	/* Bytes 2..9: the end of segment 0, all of 2, the 1-byte segment 3; no empty ones. */
	n = iov_range(v, 6, 2, 7, d, 6);
	ck_assert_int_eq(n, 3);
	ck_assert_ptr_eq(d[0].iov_base, flat + 2);
	ck_assert_uint_eq(d[0].iov_len, 1);
	ck_assert_ptr_eq(d[1].iov_base, flat + 3);
	ck_assert_uint_eq(d[1].iov_len, 5);
	ck_assert_ptr_eq(d[2].iov_base, flat + 8);
	ck_assert_uint_eq(d[2].iov_len, 1);
	ck_assert_uint_eq(iov_total(d, n), 7);
	/* Inside one segment. */
	n = iov_range(v, 6, 10, 4, d, 1);
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_eq(d[0].iov_base, flat + 10);
	ck_assert_uint_eq(d[0].iov_len, 4);
	/* Nothing asked: nothing, even past the end. */
	ck_assert_int_eq(iov_range(v, 6, 16, 0, d, 0), 0);
	ck_assert_int_eq(iov_range(v, 6, 99, 0, d, 0), 0);
	/* The whole list exactly. */
	ck_assert_int_eq(iov_range(v, 6, 0, 16, d, 4), 4);
	/* One rule for running out: the destination is too small... */
	ck_assert_int_eq(iov_range(v, 6, 0, 16, d, 3), -ENOBUFS);
	ck_assert_int_eq(iov_range(v, 6, 2, 7, d, 2), -ENOBUFS);
	/* ... or the list ends first: an error either way, never a shorter range. */
	ck_assert_int_eq(iov_range(v, 6, 0, 17, d, 6), -EINVAL);
	ck_assert_int_eq(iov_range(v, 6, 15, 2, d, 6), -EINVAL);
	ck_assert_int_eq(iov_range(v, 6, 20, 1, d, 6), -EINVAL);
}
END_TEST

START_TEST(t_pos)
{
	struct iov_pos p = { 0, 0 };

	setup();
	/* Zero bytes from the start of an empty-led list skip the empty segments. */
	{
		struct iovec e[3] = { { flat, 0 }, { flat, 0 }, { flat, 2 } };
		struct iov_pos q = { 0, 0 };

		ck_assert_uint_eq(iov_pos_advance(e, 3, &q, 0), 0);
		ck_assert_uint_eq(q.idx, 2);
		ck_assert_uint_eq(q.off, 0);
	}
	ck_assert_uint_eq(iov_pos_advance(v, 6, &p, 2), 2);
	ck_assert_uint_eq(p.idx, 0);
	ck_assert_uint_eq(p.off, 2);
	/* To the end of segment 0: past the empty segment 1, to the start of 2. */
	ck_assert_uint_eq(iov_pos_advance(v, 6, &p, 1), 1);
	ck_assert_uint_eq(p.idx, 2);
	ck_assert_uint_eq(p.off, 0);
	ck_assert_uint_eq(iov_pos_advance(v, 6, &p, 7), 7);
	ck_assert_uint_eq(p.idx, 5);
	ck_assert_uint_eq(p.off, 1);
	/* Past the end: as far as there is. */
	ck_assert_uint_eq(iov_pos_advance(v, 6, &p, 100), 6);
	ck_assert_uint_eq(p.idx, 6);
	ck_assert_uint_eq(p.off, 0);
	ck_assert_uint_eq(iov_pos_advance(v, 6, &p, 1), 0);
}
END_TEST

START_TEST(t_discard_front)
{
	struct iovec copy[6], *c = copy;
	unsigned int n = 6;

	setup();
	memcpy(copy, v, sizeof(v));
	ck_assert_uint_eq(iov_discard_front(&c, &n, 4), 4);
	/* Segments 0 and the empty 1 are gone, 2 starts a byte later. */
	ck_assert_uint_eq(n, 4);
	ck_assert_ptr_eq(c, copy + 2);
	ck_assert_ptr_eq(c->iov_base, flat + 4);
	ck_assert_uint_eq(c->iov_len, 4);
	ck_assert_uint_eq(iov_total(c, n), 12);
	/* The caller's original is untouched. */
	ck_assert_uint_eq(v[2].iov_len, 5);
	ck_assert_uint_eq(iov_discard_front(&c, &n, 5), 5);
	ck_assert_uint_eq(n, 1);
	ck_assert_ptr_eq(c->iov_base, flat + 9);
	ck_assert_uint_eq(iov_discard_front(&c, &n, 50), 7);
	ck_assert_uint_eq(n, 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("iov");
	TCase *tc = tcase_create("iov");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, t_total);
	tcase_add_test(tc, t_copies);
	tcase_add_test(tc, t_range);
	tcase_add_test(tc, t_pos);
	tcase_add_test(tc, t_discard_front);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
