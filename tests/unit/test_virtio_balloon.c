// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-balloon with its I/O thread running, driven by the tiny split-ring
 * driver in fake guest RAM: inflated pages are given back (they read as zero
 * afterwards) and deflated ones are not, PFNs outside RAM are counted and left
 * alone, free page reporting gives back whole pages only, statistics arrive and
 * the buffer goes back when the host asks, the target and actual go through
 * the configuration space, and a driver without statistics finds reporting on
 * queue 2.
 */
#include <check.h>
#include <endian.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <string.h>
#include <unistd.h>

#include "mm/guest_mem.h"
#include "virtio/balloon.h"
#include "virtio/virtio.h"
#include "unit.h"
#include "vring_drv.h"

#define RAM_SIZE  0x400000ULL
#define RING_GPA  0x100000ULL
#define RING_STEP 0x10000ULL
#define BUF_GPA	  0x200000ULL
#define PAGES_GPA 0x300000ULL /* pages the tests give back */
#define QSIZE	  64

static struct guest_mem mem;
static struct virtio_balloon *bl;
static struct virtio_dev *vd;
static struct vdrv drv[4];
static uint64_t buf_next;

static uint8_t *hva(uint64_t gpa)
{
	uint8_t *p = gpa_to_hva(&mem, gpa, 1);

	ck_assert_ptr_nonnull(p);
	return p;
}

static uint64_t galloc(uint32_t len)
{
	uint64_t gpa = buf_next;

	buf_next = (buf_next + len + 15) & ~15ULL;
	ck_assert_uint_le(buf_next, PAGES_GPA);
	return gpa;
}

static void start(bool stats, bool reporting, uint64_t acked)
{
	struct virtio_balloon_opts o = {
		.stats = stats, .reporting = reporting, .deflate_on_oom = true, .thread_cpu = -1
	};
	unsigned int nq = 2 + stats + reporting;

	ck_assert_ptr_nonnull(vdrv_ram_map(&mem, RAM_SIZE));
	buf_next = BUF_GPA;
	ck_assert_int_eq(virtio_balloon_create(&bl, &mem, &o), 0);
	vd = virtio_balloon_virtio(bl);
	vd->tops = &vdrv_quiet_tops;
	vdrv_negotiate(vd, (1ULL << VIRTIO_F_VERSION_1) | acked);
	for (unsigned int i = 0; i < nq; i++) {
		uint64_t base = RING_GPA + i * RING_STEP;

		ck_assert_int_eq(
		    vdrv_init(&drv[i], &mem, QSIZE, base, base + 0x4000, base + 0x6000), 0);
		ck_assert_int_eq(vdrv_set(vd, i, &drv[i]), 0);
	}
	virtio_set_status(vd, VDRV_S_LIVE);
	ck_assert(vd->started);
}

static void setup(void)
{
	start(true, true,
	      (1ULL << VIRTIO_BALLOON_F_STATS_VQ) | (1ULL << VIRTIO_BALLOON_F_REPORTING) |
		  (1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
}

static void teardown(void)
{
	virtio_balloon_destroy(bl);
	vdrv_ram_unmap(&mem);
}

static struct virtio_balloon_info info(void)
{
	struct virtio_balloon_info i;

	virtio_balloon_info(bl, &i);
	return i;
}

/* Post @n PFNs on queue @qi as one readable buffer; wait for the device to take it. */
static void send_pfns(unsigned int qi, const uint32_t *pfns, unsigned int n, uint32_t extra)
{
	uint32_t len = n * 4 + extra, id, used_len;
	uint64_t g = galloc(len);

	for (unsigned int i = 0; i < n; i++) {
		uint32_t v = htole32(pfns[i]);

		memcpy(hva(g) + i * 4, &v, 4);
	}
	vdrv_post_one(&drv[qi], g, len, false);
	ck_assert(vdrv_kick(vd, qi));
	ck_assert(vdrv_wait_used(&drv[qi], &id, &used_len, 5000));
	ck_assert_uint_eq(used_len, 0);
}

static void fill(uint64_t gpa, size_t len)
{
	memset(hva(gpa), 0xa5, len);
}

static bool zero(uint64_t gpa, size_t len)
{
	const uint8_t *p = hva(gpa);

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

START_TEST(test_inflate_gives_back)
{
	uint32_t p0 = PAGES_GPA >> 12;
	/* Two adjacent pages (one discard), one apart, one far outside guest RAM. */
	uint32_t pfns[] = { p0, p0 + 1, p0 + 5, 0x7fffffff };
	struct virtio_balloon_info i;

	fill(PAGES_GPA, 8 * 4096);
	send_pfns(0, pfns, 4, 0);
	i = info();
	ck_assert_uint_eq(i.inflated, 3);
	ck_assert_uint_eq(i.bad_pages, 1);
	ck_assert_uint_eq(i.discarded_bytes, 3 * 4096);
	ck_assert(zero(PAGES_GPA, 2 * 4096));
	ck_assert(!zero(PAGES_GPA + 2 * 4096, 4096)); /* not in the balloon */
	ck_assert(zero(PAGES_GPA + 5 * 4096, 4096));
	ck_assert(!zero(PAGES_GPA + 6 * 4096, 4096));
}
END_TEST

START_TEST(test_deflate_keeps)
{
	uint32_t pfns[] = { PAGES_GPA >> 12 };

	fill(PAGES_GPA, 4096);
	send_pfns(1, pfns, 1, 0);
	ck_assert_uint_eq(info().deflated, 1);
	ck_assert_uint_eq(info().discarded_bytes, 0);
	ck_assert(!zero(PAGES_GPA, 4096));
}
END_TEST

/* A PFN array that is no whole number of PFNs is refused; the chain still comes back. */
START_TEST(test_bad_pfn_array)
{
	uint32_t pfns[] = { PAGES_GPA >> 12 };

	fill(PAGES_GPA, 4096);
	send_pfns(0, pfns, 1, 2);
	ck_assert_uint_eq(info().bad_chains, 1);
	ck_assert_uint_eq(info().inflated, 0);
	ck_assert(!zero(PAGES_GPA, 4096));
}
END_TEST

/* Reporting: whole pages of each reported range only. */
static void report(unsigned int qi, uint64_t gpa, uint32_t len)
{
	uint32_t id, used_len;

	vdrv_post_one(&drv[qi], gpa, len, true);
	ck_assert(vdrv_kick(vd, qi));
	ck_assert(vdrv_wait_used(&drv[qi], &id, &used_len, 5000));
}

START_TEST(test_reporting)
{
	fill(PAGES_GPA, 8 * 4096);
	report(3, PAGES_GPA, 2 * 4096);
	ck_assert(zero(PAGES_GPA, 2 * 4096));
	/* From the middle of page 3 to the middle of page 5: only page 4 goes. */
	report(3, PAGES_GPA + 3 * 4096 + 100, 2 * 4096);
	ck_assert(!zero(PAGES_GPA + 3 * 4096, 4096));
	ck_assert(zero(PAGES_GPA + 4 * 4096, 4096));
	ck_assert(!zero(PAGES_GPA + 5 * 4096, 4096));
	ck_assert_uint_eq(info().reported_bytes, 3 * 4096);
	ck_assert_uint_eq(info().discarded_bytes, 3 * 4096);
}
END_TEST

static uint64_t put_stats(const uint16_t *tags, const uint64_t *vals, unsigned int n)
{
	uint64_t g = galloc(n * 10);

	for (unsigned int i = 0; i < n; i++) {
		uint16_t t = htole16(tags[i]);
		uint64_t v = htole64(vals[i]);

		memcpy(hva(g) + i * 10, &t, 2);
		memcpy(hva(g) + i * 10 + 2, &v, 8);
	}
	return g;
}

static bool wait_stats(uint64_t updates)
{
	for (int i = 0; i < 5000; i++) {
		if (info().stats_updates >= updates)
			return true;
		usleep(1000);
	}
	return false;
}

START_TEST(test_stats)
{
	uint16_t tags[] = { VIRTIO_BALLOON_S_MEMFREE, 999, VIRTIO_BALLOON_S_MEMTOT };
	uint64_t vals[] = { 123456, 1, 268435456 };
	uint32_t id, len;
	uint64_t g = put_stats(tags, vals, 3);
	uint16_t head;
	struct virtio_balloon_info i;

	head = vdrv_post_one(&drv[2], g, 30, false);
	ck_assert(vdrv_kick(vd, 2));
	ck_assert(wait_stats(1));
	i = info();
	ck_assert(i.have_stats);
	ck_assert(i.stat_valid[VIRTIO_BALLOON_S_MEMFREE]);
	ck_assert_uint_eq(i.stat[VIRTIO_BALLOON_S_MEMFREE], 123456);
	ck_assert_uint_eq(i.stat[VIRTIO_BALLOON_S_MEMTOT], 268435456);
	ck_assert(!i.stat_valid[VIRTIO_BALLOON_S_SWAP_IN]);
	/* The device keeps the buffer until the host wants fresh figures. */
	usleep(20000);
	ck_assert(!vdrv_used(&drv[2], &id, &len));
	virtio_balloon_request_stats(bl);
	ck_assert(vdrv_wait_used(&drv[2], &id, &len, 5000));
	ck_assert_uint_eq(id, head);
	/* The driver refills it and hands it back. */
	vals[0] = 654321;
	put_stats(tags, vals, 1);
	vdrv_post_one(&drv[2], put_stats(tags, vals, 1), 10, false);
	ck_assert(vdrv_kick(vd, 2));
	ck_assert(wait_stats(2));
	ck_assert_uint_eq(info().stat[VIRTIO_BALLOON_S_MEMFREE], 654321);
}
END_TEST

/* A second statistics buffer while one is held is not a driver's: returned, counted. */
START_TEST(test_stats_twice)
{
	uint16_t tags[] = { VIRTIO_BALLOON_S_MEMFREE };
	uint64_t vals[] = { 1 };
	uint32_t id, len;
	uint16_t second;

	vdrv_post_one(&drv[2], put_stats(tags, vals, 1), 10, false);
	ck_assert(vdrv_kick(vd, 2));
	ck_assert(wait_stats(1));
	second = vdrv_post_one(&drv[2], put_stats(tags, vals, 1), 10, false);
	ck_assert(vdrv_kick(vd, 2));
	ck_assert(vdrv_wait_used(&drv[2], &id, &len, 5000));
	ck_assert_uint_eq(id, second);
	ck_assert_uint_eq(info().bad_chains, 1);
	ck_assert_uint_eq(info().stats_updates, 1);
}
END_TEST

START_TEST(test_config)
{
	struct virtio_balloon_config c;
	uint32_t v = htole32(50);

	virtio_balloon_set_target(bl, 1000);
	vd->ops->config_read(vd, 0, &c, sizeof(c));
	ck_assert_uint_eq(le32toh(c.num_pages), 1000);
	ck_assert_uint_eq(info().target, 1000);
	vd->ops->config_write(vd, offsetof(struct virtio_balloon_config, actual), &v, 4);
	ck_assert_uint_eq(info().actual, 50);
	/* The driver cannot move the target, nor write half a field. */
	vd->ops->config_write(vd, 0, &v, 4);
	vd->ops->config_write(vd, offsetof(struct virtio_balloon_config, actual) + 1, &v, 2);
	vd->ops->config_read(vd, 0, &c, sizeof(c));
	ck_assert_uint_eq(le32toh(c.num_pages), 1000);
	ck_assert_uint_eq(le32toh(c.actual), 50);
	/* Reads past the end are zeros. */
	v = 7;
	vd->ops->config_read(vd, sizeof(c), &v, 4);
	ck_assert_uint_eq(v, 0);
	ck_assert(virtio_negotiated(vd, VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	ck_assert(info().deflate_on_oom); /* the policy reads it: balloon pages count as used */
}
END_TEST

/* Without statistics negotiated, the reporting queue is queue 2. */
START_TEST(test_reporting_without_stats)
{
	teardown();
	start(true, true, 1ULL << VIRTIO_BALLOON_F_REPORTING);
	fill(PAGES_GPA, 4096);
	report(2, PAGES_GPA, 4096);
	ck_assert(zero(PAGES_GPA, 4096));
	ck_assert_uint_eq(info().reported_bytes, 4096);
	ck_assert(!info().have_stats);
	ck_assert(!info().deflate_on_oom); /* offered, not accepted */
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_balloon");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_inflate_gives_back);
	tcase_add_test(tc, test_deflate_keeps);
	tcase_add_test(tc, test_bad_pfn_array);
	tcase_add_test(tc, test_reporting);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_stats_twice);
	tcase_add_test(tc, test_config);
	tcase_add_test(tc, test_reporting_without_stats);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
