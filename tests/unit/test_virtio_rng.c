// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-rng with its I/O thread running, driven by the tiny split-ring driver in
 * fake guest RAM: a writable buffer comes back filled (and not with zeros), a large
 * one only up to RNG_MAX_REQUEST, two writable segments both, and a chain with a
 * readable part or a buffer outside guest RAM is answered empty and counted.
 */
#include <check.h>
#include <linux/virtio_config.h>
#include <string.h>

#include "mm/guest_mem.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "unit.h"
#include "vring_drv.h"

#define RAM_SIZE 0x400000ULL
#define RING_GPA 0x100000ULL
#define BUF_GPA	 0x200000ULL

static struct guest_mem mem;
static struct virtio_rng *rng;
static struct virtio_dev *vd;
static struct vdrv drv;

static uint8_t *hva(uint64_t gpa)
{
	uint8_t *p = gpa_to_hva(&mem, gpa, 1);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void setup(void)
{
	struct virtio_rng_opts o = { .thread_cpu = -1 };

	ck_assert_ptr_nonnull(vdrv_ram_map(&mem, RAM_SIZE));
	ck_assert_int_eq(virtio_rng_create(&rng, &mem, &o), 0);
	vd = virtio_rng_virtio(rng);
	vd->tops = &vdrv_quiet_tops;
	vdrv_negotiate(vd, 1ULL << VIRTIO_F_VERSION_1);
	ck_assert_int_eq(
	    vdrv_init(&drv, &mem, RNG_QUEUE_SIZE, RING_GPA, RING_GPA + 0x4000, RING_GPA + 0x6000),
	    0);
	ck_assert_int_eq(vdrv_set(vd, 0, &drv), 0);
	virtio_set_status(vd, VDRV_S_LIVE);
	ck_assert(vd->started);
}

static void teardown(void)
{
	virtio_rng_destroy(rng);
	vdrv_ram_unmap(&mem);
}

/* Post @n segments as one chain; the length the device says it wrote. */
static uint32_t request(const struct vring_seg *s, unsigned int n)
{
	uint32_t id, len;

	vdrv_post(&drv, s, n);
	ck_assert(vdrv_kick(vd, 0));
	ck_assert(vdrv_wait_used(&drv, &id, &len, 5000));
	return len;
}

static unsigned int zero_bytes(uint64_t gpa, size_t len)
{
	unsigned int n = 0;

	for (size_t i = 0; i < len; i++)
		n += !hva(gpa)[i];
	return n;
}

START_TEST(test_fills)
{
	struct vring_seg s = { BUF_GPA, 64, true };
	struct virtio_rng_stats st;
	uint8_t first[64];

	ck_assert_uint_eq(request(&s, 1), 64);
	/* 64 random bytes hold a zero byte now and then, not many. */
	ck_assert_uint_lt(zero_bytes(BUF_GPA, 64), 8);
	memcpy(first, hva(BUF_GPA), 64);
	ck_assert_uint_eq(request(&s, 1), 64);
	ck_assert(memcmp(first, hva(BUF_GPA), 64));
	virtio_rng_stats(rng, &st);
	ck_assert_uint_eq(st.requests, 2);
	ck_assert_uint_eq(st.bytes, 128);
	ck_assert_uint_eq(st.bad_chains, 0);
}
END_TEST

/* A huge buffer gets RNG_MAX_REQUEST bytes; the rest is left alone. */
START_TEST(test_bounded)
{
	struct vring_seg s = { BUF_GPA, 3 * RNG_MAX_REQUEST, true };

	ck_assert_uint_eq(request(&s, 1), RNG_MAX_REQUEST);
	ck_assert_uint_lt(zero_bytes(BUF_GPA, RNG_MAX_REQUEST), RNG_MAX_REQUEST / 64);
	ck_assert_uint_eq(zero_bytes(BUF_GPA + RNG_MAX_REQUEST, 2 * RNG_MAX_REQUEST),
			  2 * RNG_MAX_REQUEST);
}
END_TEST

START_TEST(test_two_segments)
{
	struct vring_seg s[2] = { { BUF_GPA, 16, true }, { BUF_GPA + 0x1000, 48, true } };

	ck_assert_uint_eq(request(s, 2), 64);
	ck_assert_uint_lt(zero_bytes(BUF_GPA, 16) + zero_bytes(BUF_GPA + 0x1000, 48), 8);
}
END_TEST

/* Bad chains: answered with nothing written, counted, and the device goes on. */
START_TEST(test_bad_chains)
{
	struct vring_seg rd[2] = { { BUF_GPA, 16, false }, { BUF_GPA + 0x1000, 16, true } };
	struct vring_seg outside = { RAM_SIZE + 0x1000, 16, true };
	struct vring_seg ok = { BUF_GPA + 0x2000, 32, true };
	struct virtio_rng_stats st;

	ck_assert_uint_eq(request(rd, 2), 0);
	ck_assert_uint_eq(zero_bytes(BUF_GPA + 0x1000, 16), 16);
	ck_assert_uint_eq(request(&outside, 1), 0);
	ck_assert_uint_eq(request(&ok, 1), 32);
	virtio_rng_stats(rng, &st);
	ck_assert_uint_eq(st.bad_chains, 2);
	ck_assert_uint_eq(st.requests, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_rng");
	TCase *tc = tcase_create("rng");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fills);
	tcase_add_test(tc, test_bounded);
	tcase_add_test(tc, test_two_segments);
	tcase_add_test(tc, test_bad_chains);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
