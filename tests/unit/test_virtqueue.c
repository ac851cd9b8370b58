// SPDX-License-Identifier: GPL-2.0-or-later
/* Split virtqueues: good chains, every malformed chain or ring a guest can
 * write, and the notification decisions, on a fake two-region guest RAM. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/virtio_ring.h>

#include "mm/guest_mem.h"
#include "virtio/virtqueue.h"
#include "unit.h"

#define RAM_SIZE  0x100000ULL	 /* each region: 1 MiB */
#define HIGH_GPA  0x100000000ULL /* region 1 */
#define DESC_GPA  0x1000ULL
#define AVAIL_GPA 0x2000ULL
#define USED_GPA  0x3000ULL
#define BUF_GPA	  0x10000ULL	     /* data buffers */
#define TABLE_GPA (HIGH_GPA + 0x800) /* indirect tables */
#define QSIZE	  16
#define NIOV	  64

static struct guest_mem mem;
static struct virtqueue vq;
static struct vring_desc *D;
static struct vring_avail *A;
static struct vring_used *U;
static struct iovec iov[NIOV];
static struct vq_elem e;

static void *hva(uint64_t gpa)
{
	void *p = gpa_to_hva(&mem, gpa, 1);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void ram_setup(void)
{
	memset(&mem, 0, sizeof(mem));
	mem.r[0] = (struct mem_region){ .gpa = 0, .size = RAM_SIZE };
	mem.r[1] = (struct mem_region){ .gpa = HIGH_GPA, .size = RAM_SIZE };
	mem.nr = 2;
	for (int i = 0; i < 2; i++) {
		mem.r[i].hva = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ck_assert_ptr_ne(mem.r[i].hva, MAP_FAILED);
	}
	mem.total = 2 * RAM_SIZE;
	/* Where vq_setup puts the rings; also what expect_dead looks at. */
	D = hva(DESC_GPA);
	A = hva(AVAIL_GPA);
	U = hva(USED_GPA);
}

static void ram_teardown(void)
{
	for (int i = 0; i < 2; i++)
		munmap(mem.r[i].hva, RAM_SIZE);
}

/* A fresh queue of @size entries at the standard place. */
static void vq_setup(unsigned int size, bool event_idx, bool indirect)
{
	memset(mem.r[0].hva, 0, RAM_SIZE);
	memset(mem.r[1].hva, 0, RAM_SIZE);
	ck_assert_int_eq(
	    vq_init(&vq, &mem, size, DESC_GPA, AVAIL_GPA, USED_GPA, event_idx, indirect), 0);
	D = hva(DESC_GPA);
	A = hva(AVAIL_GPA);
	U = hva(USED_GPA);
	memset(&e, 0, sizeof(e));
	e.iov = iov;
	e.max = NIOV;
}

static void set_desc(struct vring_desc *t, unsigned int i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct vring_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	/* memcpy: tables need not be aligned. */
	memcpy((char *)t + i * sizeof(d), &d, sizeof(d));
}

static void desc(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	set_desc(D, i, addr, len, flags, next);
}

static void avail_add(uint16_t head)
{
	A->ring[A->idx % vq.size] = head;
	A->idx++;
}

static uint16_t *used_event(void)
{
	return &A->ring[vq.size];
}

static uint16_t *avail_event(void)
{
	return (uint16_t *)&U->ring[vq.size];
}

/* Put a one-descriptor chain (@i) with its buffer at @addr/@len up and pop it. */
static int pop_one(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags)
{
	desc(i, addr, len, flags, 0);
	avail_add(i);
	return vq_pop(&vq, &e);
}

/* Expect @head to come back bad, consumed, with nothing to use in it. */
static void expect_bad(uint16_t head)
{
	uint16_t before = vq.last_avail;

	ck_assert_int_eq(vq_pop(&vq, &e), VQ_BAD_CHAIN);
	ck_assert_uint_eq(e.head, head);
	ck_assert_uint_eq(vq.last_avail, (uint16_t)(before + 1));
	ck_assert_uint_eq(e.out_num + e.in_num, 0);
	ck_assert(!vq.broken);
	vq_push(&vq, head, 0);
	ck_assert_uint_eq(U->idx, vq.used_idx);
	ck_assert_uint_eq(U->ring[(vq.used_idx - 1) % vq.size].id, head);
	ck_assert_uint_eq(vq_pop(&vq, &e), VQ_EMPTY);
}

/* Once broken, nothing works and nothing is written. */
static void expect_dead(void)
{
	uint16_t uidx = U->idx, flags = U->flags;

	ck_assert(vq.broken);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_BROKEN);
	ck_assert(!vq_has_avail(&vq));
	vq_push(&vq, 0, 0);
	ck_assert_uint_eq(U->idx, uidx);
	ck_assert(!vq_should_notify(&vq));
	ck_assert(!vq_enable_notify(&vq, true));
	ck_assert(!vq_enable_notify(&vq, false));
	ck_assert_uint_eq(U->flags, flags);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_BROKEN);
}

START_TEST(t_init_sizes)
{
	static const unsigned int bad[] = { 0, 3, 6, 100, 32769, 65536, 1u << 20 };

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(
		    vq_init(&vq, &mem, bad[i], DESC_GPA, AVAIL_GPA, USED_GPA, true, true), -EINVAL);
		expect_dead();
	}
	for (unsigned int s = 1; s <= 256; s <<= 1)
		ck_assert_int_eq(vq_init(&vq, &mem, s, DESC_GPA, AVAIL_GPA, USED_GPA, false, false),
				 0);
	/* The largest queue: 512 KiB of descriptors, 256 KiB of used ring. */
	ck_assert_int_eq(vq_init(&vq, &mem, 32768, 0, 0x80000, 0x90008, false, false), 0);
	ck_assert_uint_eq(vq.size, 32768);
	ck_assert_uint_eq(vq.last_avail, 0);
	ck_assert_uint_eq(vq.used_idx, 0);
	ck_assert(!vq.broken);
}
END_TEST

START_TEST(t_init_placement)
{
	const uint64_t end0 = RAM_SIZE, end1 = HIGH_GPA + RAM_SIZE;
	const unsigned int n = QSIZE;
	struct {
		uint64_t d, a, u;
	} bad[] = {
		{ DESC_GPA + 8, AVAIL_GPA, USED_GPA }, /* desc not 16-aligned */
		{ DESC_GPA + 1, AVAIL_GPA, USED_GPA },
		{ DESC_GPA, AVAIL_GPA + 1, USED_GPA },		 /* avail odd */
		{ DESC_GPA, AVAIL_GPA, USED_GPA + 2 },		 /* used not 4-aligned */
		{ end0 - 16 * n + 16, AVAIL_GPA, USED_GPA },	 /* desc over the end of region 0 */
		{ DESC_GPA, end0 - (6 + 2 * n) + 2, USED_GPA },	 /* used_event outside */
		{ DESC_GPA, AVAIL_GPA, end0 - (6 + 8 * n) + 4 }, /* avail_event outside */
		{ end1 - 16 * n + 16, AVAIL_GPA, USED_GPA },	 /* over the end of RAM */
		{ DESC_GPA, AVAIL_GPA, end1 - 4 },
		{ 0xc0000000, AVAIL_GPA, USED_GPA },	       /* in the hole */
		{ DESC_GPA, 0xfffffffffffffff0ULL, USED_GPA }, /* wraps */
		{ 0xfffffffffffffff0ULL, AVAIL_GPA, USED_GPA },
		{ DESC_GPA, AVAIL_GPA, 0xfffffffffffffffcULL },
	};

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(vq_init(&vq, &mem, n, bad[i].d, bad[i].a, bad[i].u, true, true),
				 -EINVAL);
		expect_dead();
	}
	/* Exactly at the ends of the regions, and split between them, is fine. */
	ck_assert_int_eq(vq_init(&vq, &mem, n, end0 - 16 * n, end1 - (6 + 2 * n),
				 end1 - (6 + 2 * n) - (6 + 8 * n) - 4, true, true),
			 0);
	ck_assert_int_eq(vq_init(&vq, &mem, n, HIGH_GPA, AVAIL_GPA, USED_GPA, true, true), 0);
}
END_TEST

/*
 * The three areas never overlap: the device writes the used ring, and what it
 * writes there must not become descriptors or available entries (a ring that
 * feeds itself). Touching is fine.
 */
START_TEST(t_init_overlap)
{
	const unsigned int n = QSIZE;
	const uint64_t dl = 16 * n, al = 6 + 2 * n, ul = 6 + 8 * n;
	struct {
		uint64_t d, a, u;
	} bad[] = {
		{ DESC_GPA, AVAIL_GPA, AVAIL_GPA },		       /* used on avail */
		{ DESC_GPA, AVAIL_GPA, (AVAIL_GPA + al - 2) & ~3ULL }, /* used_event under used */
		{ DESC_GPA, AVAIL_GPA, AVAIL_GPA - ul + 2 },	       /* avail_event on avail */
		{ DESC_GPA, AVAIL_GPA, DESC_GPA },		       /* used on desc */
		{ DESC_GPA, AVAIL_GPA, DESC_GPA + dl - 4 },
		{ DESC_GPA, DESC_GPA + dl - 2, USED_GPA }, /* avail on desc */
		{ DESC_GPA, DESC_GPA, USED_GPA },
		{ AVAIL_GPA - dl + 16, AVAIL_GPA, USED_GPA },
	};

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(vq_init(&vq, &mem, n, bad[i].d, bad[i].a, bad[i].u, true, false) ==
				  -EINVAL,
			      "overlap %u accepted", i);
		expect_dead();
	}
	/* Back to back. */
	ck_assert_int_eq(vq_init(&vq, &mem, n, DESC_GPA, DESC_GPA + dl,
				 (DESC_GPA + dl + al + 3) & ~3ULL, true, false),
			 0);
	ck_assert_int_eq(
	    vq_init(&vq, &mem, n, (USED_GPA + ul + 15) & ~15ULL, AVAIL_GPA, USED_GPA, true, true),
	    0);
}
END_TEST

START_TEST(t_single)
{
	vq_setup(QSIZE, false, false);
	ck_assert(!vq_has_avail(&vq));
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_EMPTY);
	ck_assert_int_eq(pop_one(3, BUF_GPA, 100, 0), VQ_OK);
	ck_assert_uint_eq(e.head, 3);
	ck_assert_uint_eq(e.out_num, 1);
	ck_assert_uint_eq(e.in_num, 0);
	ck_assert_uint_eq(e.out_len, 100);
	ck_assert_uint_eq(e.in_len, 0);
	ck_assert_ptr_eq(iov[0].iov_base, hva(BUF_GPA));
	ck_assert_uint_eq(iov[0].iov_len, 100);
	ck_assert(!vq_has_avail(&vq));
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_EMPTY);
	vq_push(&vq, 3, 7);
	ck_assert_uint_eq(U->idx, 1);
	ck_assert_uint_eq(U->ring[0].id, 3);
	ck_assert_uint_eq(U->ring[0].len, 7);
	/* Buffers in the high region, and one ending exactly at the end of RAM. */
	ck_assert_int_eq(pop_one(1, HIGH_GPA + RAM_SIZE - 512, 512, VRING_DESC_F_WRITE), VQ_OK);
	ck_assert_ptr_eq(iov[0].iov_base, (char *)mem.r[1].hva + RAM_SIZE - 512);
	ck_assert_uint_eq(e.in_num, 1);
	ck_assert_uint_eq(e.in_len, 512);
	ck_assert_int_eq(pop_one(2, RAM_SIZE - 1, 1, 0), VQ_OK);
}
END_TEST

/* A virtio-blk request: header out, data in, status in. */
START_TEST(t_multi)
{
	vq_setup(QSIZE, false, false);
	desc(5, BUF_GPA, 16, VRING_DESC_F_NEXT, 9);
	desc(9, HIGH_GPA + 0x1000, 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	desc(0, BUF_GPA + 16, 1, VRING_DESC_F_WRITE, 0);
	avail_add(5);
	/* A second chain: two out, one in. */
	desc(1, BUF_GPA + 100, 10, VRING_DESC_F_NEXT, 2);
	desc(2, BUF_GPA + 200, 20, VRING_DESC_F_NEXT, 3);
	desc(3, BUF_GPA + 300, 30, VRING_DESC_F_WRITE, 0);
	avail_add(1);
	ck_assert(vq_has_avail(&vq));

	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert_uint_eq(e.head, 5);
	ck_assert_uint_eq(e.out_num, 1);
	ck_assert_uint_eq(e.in_num, 2);
	ck_assert_uint_eq(e.out_len, 16);
	ck_assert_uint_eq(e.in_len, 4097);
	ck_assert_ptr_eq(iov[0].iov_base, hva(BUF_GPA));
	ck_assert_ptr_eq(iov[1].iov_base, hva(HIGH_GPA + 0x1000));
	ck_assert_uint_eq(iov[1].iov_len, 4096);
	ck_assert_ptr_eq(iov[2].iov_base, hva(BUF_GPA + 16));

	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert_uint_eq(e.head, 1);
	ck_assert_uint_eq(e.out_num, 2);
	ck_assert_uint_eq(e.in_num, 1);
	ck_assert_uint_eq(e.out_len, 30);
	ck_assert_uint_eq(e.in_len, 30);
	ck_assert_ptr_eq(iov[1].iov_base, hva(BUF_GPA + 200));
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_EMPTY);

	/* Completed out of order. */
	vq_push(&vq, 1, 30);
	vq_push(&vq, 5, 4097);
	ck_assert_uint_eq(U->idx, 2);
	ck_assert_uint_eq(U->ring[0].id, 1);
	ck_assert_uint_eq(U->ring[1].id, 5);
	ck_assert_uint_eq(U->ring[1].len, 4097);
}
END_TEST

/* Exactly size descriptors, and exactly e.max segments, are fine. */
START_TEST(t_limits_exact)
{
	vq_setup(4, false, false);
	desc(0, BUF_GPA, 1, VRING_DESC_F_NEXT, 1);
	desc(1, BUF_GPA, 1, VRING_DESC_F_NEXT, 2);
	desc(2, BUF_GPA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	desc(3, BUF_GPA, 1, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	e.max = 4;
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert_uint_eq(e.out_num, 2);
	ck_assert_uint_eq(e.in_num, 2);
	/* The same chain with room for 3 segments only. */
	avail_add(0);
	e.max = 3;
	expect_bad(0);
	e.max = 0;
	avail_add(3);
	expect_bad(3);
}
END_TEST

/* Zero-length buffers are checked for ordering but give no iovec. */
START_TEST(t_zero_len)
{
	vq_setup(QSIZE, false, false);
	desc(0, BUF_GPA, 0, VRING_DESC_F_NEXT, 1);
	desc(1, 0xdead00000000ULL, 0, VRING_DESC_F_NEXT, 2); /* not RAM, but empty */
	desc(2, BUF_GPA + 8, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	desc(3, BUF_GPA, 0, VRING_DESC_F_WRITE, 0);
	avail_add(0);
	e.max = 1;
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert_uint_eq(e.out_num, 0);
	ck_assert_uint_eq(e.in_num, 1);
	ck_assert_uint_eq(e.in_len, 8);
	ck_assert_ptr_eq(iov[0].iov_base, hva(BUF_GPA + 8));
	/* An empty chain is valid too. */
	ck_assert_int_eq(pop_one(7, 0, 0, 0), VQ_OK);
	ck_assert_uint_eq(e.out_num + e.in_num, 0);
	/* An empty out after an in is still out of order. */
	desc(3, BUF_GPA, 0, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 4);
	desc(4, BUF_GPA, 0, 0, 0);
	avail_add(3);
	expect_bad(3);
}
END_TEST

START_TEST(t_out_after_in)
{
	vq_setup(QSIZE, false, false);
	desc(0, BUF_GPA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc(1, BUF_GPA + 8, 8, 0, 0);
	avail_add(0);
	expect_bad(0);
	/* Still works afterwards. */
	ck_assert_int_eq(pop_one(1, BUF_GPA, 8, 0), VQ_OK);
}
END_TEST

START_TEST(t_head_out_of_range)
{
	vq_setup(QSIZE, false, false);
	avail_add(QSIZE);
	ck_assert(vq_has_avail(&vq));
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_BROKEN);
	expect_dead();

	vq_setup(QSIZE, true, true);
	avail_add(0xffff);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_BROKEN);
	expect_dead();
}
END_TEST

START_TEST(t_next_out_of_range)
{
	vq_setup(QSIZE, false, false);
	desc(0, BUF_GPA, 8, VRING_DESC_F_NEXT, QSIZE);
	avail_add(0);
	expect_bad(0);
	desc(1, BUF_GPA, 8, VRING_DESC_F_NEXT, 0xffff);
	avail_add(1);
	expect_bad(1);
}
END_TEST

START_TEST(t_loops)
{
	vq_setup(QSIZE, false, false);
	desc(0, BUF_GPA, 8, VRING_DESC_F_NEXT, 0); /* self */
	avail_add(0);
	expect_bad(0);
	desc(1, BUF_GPA, 8, VRING_DESC_F_NEXT, 2); /* a -> b -> a */
	desc(2, BUF_GPA, 8, VRING_DESC_F_NEXT, 1);
	avail_add(1);
	expect_bad(1);
	/* Empty buffers loop too, without filling the iovec. */
	desc(3, BUF_GPA, 0, VRING_DESC_F_NEXT, 4);
	desc(4, BUF_GPA, 0, VRING_DESC_F_NEXT, 3);
	avail_add(3);
	expect_bad(3);
}
END_TEST

/* Every descriptor once, then one more: longer than the queue. */
START_TEST(t_chain_too_long)
{
	vq_setup(8, false, false);
	for (unsigned int i = 0; i < 8; i++)
		desc(i, BUF_GPA + i, 1, VRING_DESC_F_NEXT, (i + 1) % 8);
	avail_add(0);
	expect_bad(0);
	desc(7, BUF_GPA + 7, 1, 0, 0);
	avail_add(0);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert_uint_eq(e.out_num, 8);
}
END_TEST

START_TEST(t_bad_buffers)
{
	const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
		{ 0x200000, 1 },			/* after region 0 */
		{ 0xc0000000, 16 },			/* in the hole */
		{ RAM_SIZE - 8, 16 },			/* straddles the end of region 0 */
		{ RAM_SIZE, 1 },			/* just past it */
		{ HIGH_GPA - 8, 16 },			/* straddles the start of region 1 */
		{ HIGH_GPA + RAM_SIZE - 1, 2 },		/* straddles the end of RAM */
		{ HIGH_GPA + RAM_SIZE, 1 },		/* past the end of RAM */
		{ 0xfffffffffffffff0ULL, 0x20 },	/* wraps around 2^64 */
		{ 0xffffffffffffffffULL, 1 },		/* last byte of the space */
		{ 0xffffffffffffffffULL, 0xffffffffu }, /* wraps far */
		{ 0x10000, 0xffffffffu },		/* 4 GiB */
		{ HIGH_GPA - 0xffffffffULL + 0x10, 0xffffffffu }, /* ends inside region 1 */
	};

	vq_setup(QSIZE, false, false);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* Alone, as in-buffer after a good one, as out-buffer before one. */
		desc(0, bad[i].addr, bad[i].len, 0, 0);
		avail_add(0);
		expect_bad(0);
		desc(1, BUF_GPA, 8, VRING_DESC_F_NEXT, 2);
		desc(2, bad[i].addr, bad[i].len, VRING_DESC_F_WRITE, 0);
		avail_add(1);
		expect_bad(1);
		desc(3, bad[i].addr, bad[i].len, VRING_DESC_F_NEXT, 4);
		desc(4, BUF_GPA, 8, VRING_DESC_F_WRITE, 0);
		avail_add(3);
		expect_bad(3);
	}
}
END_TEST

/*
 * A device-writable buffer on one of the queue's own rings makes the chain bad:
 * what the device writes there would rewrite the ring under it (an avail index
 * that runs ahead forever, used entries naming heads that do not exist).
 * Reading the rings, touching them, or an empty buffer on them is fine.
 */
START_TEST(t_write_over_rings)
{
	const uint64_t dl = 16 * QSIZE, al = 6 + 2 * QSIZE, ul = 6 + 8 * QSIZE;
	const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
		{ USED_GPA, 8 },	   { USED_GPA + 2, 2 },	      /* used->idx */
		{ USED_GPA + ul - 1, 1 },  { USED_GPA - 8, 9 },	      /* avail_event, first byte */
		{ AVAIL_GPA + 2, 2 },	   { AVAIL_GPA + al - 1, 1 }, /* avail->idx, used_event */
		{ AVAIL_GPA - 100, 101 },  { DESC_GPA + 100, 16 },    /* desc table */
		{ DESC_GPA + dl - 1, 64 }, { 0, USED_GPA + 0x1000 },  /* all of them */
	};
	const struct {
		uint64_t addr;
		uint32_t len;
	} good[] = {
		{ USED_GPA - 8, 8 },   { USED_GPA + ul, 8 },  { AVAIL_GPA - 8, 8 },
		{ AVAIL_GPA + al, 2 }, { DESC_GPA - 16, 16 }, { DESC_GPA + dl, 16 },
	};
	struct vring_desc *t;

	vq_setup(QSIZE, true, true);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		desc(1, BUF_GPA, 16, VRING_DESC_F_NEXT, 2);
		desc(2, bad[i].addr, bad[i].len, VRING_DESC_F_WRITE, 0);
		avail_add(1);
		ck_assert_msg(vq_pop(&vq, &e) == VQ_BAD_CHAIN, "buffer %u accepted", i);
		ck_assert_uint_eq(e.in_num + e.out_num, 0);
		vq_push(&vq, 1, 0);
		/* Device-readable, the same range is only read. */
		desc(2, bad[i].addr, bad[i].len, VRING_DESC_F_NEXT, 3);
		desc(3, BUF_GPA + 64, 1, VRING_DESC_F_WRITE, 0);
		avail_add(1);
		ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
		vq_push(&vq, 1, 0);
	}
	for (unsigned int i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		desc(4, good[i].addr, good[i].len, VRING_DESC_F_WRITE, 0);
		avail_add(4);
		ck_assert_msg(vq_pop(&vq, &e) == VQ_OK, "buffer %u refused", i);
		vq_push(&vq, 4, 0);
	}
	/* An empty device-writable buffer writes nothing. */
	desc(5, USED_GPA, 0, VRING_DESC_F_WRITE, 0);
	avail_add(5);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	vq_push(&vq, 5, 0);
	/* The same inside an indirect table. */
	t = hva(TABLE_GPA);
	set_desc(t, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, AVAIL_GPA, 4, VRING_DESC_F_WRITE, 0);
	desc(6, TABLE_GPA, 2 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(6);
	expect_bad(6);
	ck_assert(!vq.broken);
}
END_TEST

START_TEST(t_too_many_segments)
{
	vq_setup(QSIZE, false, false);
	for (unsigned int i = 0; i < 10; i++)
		desc(i, BUF_GPA + 16 * i, 16, VRING_DESC_F_NEXT, i + 1);
	desc(10, BUF_GPA, 16, 0, 0);
	avail_add(0);
	e.max = 10;
	expect_bad(0);
	e.max = 11;
	avail_add(0);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert_uint_eq(e.out_num, 11);
	ck_assert_uint_eq(e.out_len, 176);
}
END_TEST

START_TEST(t_avail_jump)
{
	/* A jump of exactly size is fine: pop them all. */
	vq_setup(4, false, false);
	for (unsigned int i = 0; i < 4; i++)
		desc(i, BUF_GPA, 4, 0, 0);
	for (unsigned int i = 0; i < 4; i++)
		avail_add(i);
	for (unsigned int i = 0; i < 4; i++) {
		ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
		ck_assert_uint_eq(e.head, i);
	}
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_EMPTY);
	/* More than size ahead of us. */
	A->idx += 5;
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_BROKEN);
	expect_dead();
	/* Behind us (a huge jump in 16-bit terms). */
	vq_setup(4, true, false);
	A->idx = 0xffff;
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_BROKEN);
	expect_dead();
}
END_TEST

/* Indices restored from a snapshot, wrapping at 2^16. */
START_TEST(t_index_wrap)
{
	vq_setup(QSIZE, true, false);
	vq.last_avail = 0xfffe;
	vq.used_idx = 0xfffe;
	A->idx = 0xfffe;
	for (unsigned int i = 0; i < 4; i++) {
		desc(i, BUF_GPA, 4, 0, 0);
		avail_add(i);
	}
	ck_assert_uint_eq(A->idx, 2);
	for (unsigned int i = 0; i < 4; i++) {
		ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
		ck_assert_uint_eq(e.head, i);
		vq_push(&vq, i, 0);
	}
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_EMPTY);
	ck_assert_uint_eq(U->idx, 2);
	ck_assert_uint_eq(U->ring[0xfffe % QSIZE].id, 0);
	ck_assert_uint_eq(U->ring[1].id, 3);
}
END_TEST

START_TEST(t_indirect)
{
	struct vring_desc *t;

	vq_setup(QSIZE, false, true);
	t = hva(TABLE_GPA);
	set_desc(t, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 2);
	set_desc(t, 2, BUF_GPA + 0x100, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, HIGH_GPA, 1, VRING_DESC_F_WRITE, 0);
	/* WRITE on the table's own descriptor is ignored. */
	desc(4, TABLE_GPA, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	avail_add(4);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert_uint_eq(e.head, 4);
	ck_assert_uint_eq(e.out_num, 1);
	ck_assert_uint_eq(e.in_num, 2);
	ck_assert_uint_eq(e.out_len, 16);
	ck_assert_uint_eq(e.in_len, 513);
	ck_assert_ptr_eq(iov[1].iov_base, hva(BUF_GPA + 0x100));
	ck_assert_ptr_eq(iov[2].iov_base, hva(HIGH_GPA));

	/* Direct descriptors, then a table ending the chain; the table unaligned. */
	t = hva(TABLE_GPA + 0x204);
	set_desc(t, 0, BUF_GPA + 0x40, 8, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, BUF_GPA + 0x80, 8, VRING_DESC_F_WRITE, 0);
	desc(6, BUF_GPA, 4, VRING_DESC_F_NEXT, 7);
	desc(7, TABLE_GPA + 0x204, 2 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(6);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert_uint_eq(e.out_num, 2);
	ck_assert_uint_eq(e.in_num, 1);
	ck_assert_ptr_eq(iov[1].iov_base, hva(BUF_GPA + 0x40));
	ck_assert_ptr_eq(iov[2].iov_base, hva(BUF_GPA + 0x80));
	/* ... but out-after-in across the boundary is caught. */
	desc(6, BUF_GPA, 4, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 7);
	avail_add(6);
	expect_bad(6);

	/* A table longer than the queue, with a chain longer than the queue. */
	t = hva(TABLE_GPA);
	for (unsigned int i = 0; i < 40; i++)
		set_desc(t, i, BUF_GPA + i, 1, i < 39 ? VRING_DESC_F_NEXT : 0, i + 1);
	desc(2, TABLE_GPA, 40 * 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(2);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert_uint_eq(e.out_num, 40);
}
END_TEST

START_TEST(t_indirect_bad)
{
	struct vring_desc *t;

	/* Not negotiated. */
	vq_setup(QSIZE, false, false);
	t = hva(TABLE_GPA);
	set_desc(t, 0, BUF_GPA, 16, 0, 0);
	desc(0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_bad(0);

	vq_setup(QSIZE, false, true);
	t = hva(TABLE_GPA);
	set_desc(t, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, BUF_GPA, 16, 0, 0);
	desc(0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);

	/* INDIRECT together with NEXT. */
	desc(0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	desc(1, BUF_GPA, 16, 0, 0);
	avail_add(0);
	expect_bad(0);
	/* Table lengths: zero, not a multiple of 16. */
	desc(0, TABLE_GPA, 0, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_bad(0);
	desc(0, TABLE_GPA, 24, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_bad(0);
	desc(0, TABLE_GPA, 33, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_bad(0);
	/* Tables outside RAM, over its end, wrapping. */
	desc(0, 0x200000, 32, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_bad(0);
	desc(0, HIGH_GPA + RAM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_bad(0);
	desc(0, 0xfffffffffffffff0ULL, 32, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_bad(0);
	desc(0, 0, 0xfffffff0u, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_bad(0);

	/* Nested. */
	set_desc(t, 1, TABLE_GPA + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(t, 16, BUF_GPA, 16, 0, 0);
	desc(0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_bad(0);
	/* next past the table (though inside the queue size). */
	set_desc(t, 1, BUF_GPA, 16, VRING_DESC_F_NEXT, 2);
	avail_add(0);
	expect_bad(0);
	/* A loop inside the table. */
	set_desc(t, 1, BUF_GPA, 16, VRING_DESC_F_NEXT, 0);
	avail_add(0);
	expect_bad(0);
	set_desc(t, 0, BUF_GPA, 0, VRING_DESC_F_NEXT, 0);
	desc(0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	expect_bad(0);
	/* A bad buffer inside a table. */
	set_desc(t, 0, RAM_SIZE - 4, 8, 0, 0);
	avail_add(0);
	expect_bad(0);
	/* Table segments count against e.max. */
	set_desc(t, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, BUF_GPA, 16, 0, 0);
	desc(0, TABLE_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	avail_add(0);
	e.max = 1;
	expect_bad(0);
	e.max = 2;
	avail_add(0);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
}
END_TEST

START_TEST(t_notify_event_idx)
{
	vq_setup(QSIZE, true, false);
	for (unsigned int i = 0; i < QSIZE; i++)
		desc(i, BUF_GPA, 4, 0, 0);

	/* The first decision always notifies. */
	vq_push(&vq, 0, 0);
	*used_event() = 100;
	ck_assert(vq_should_notify(&vq));
	/* Nothing new: never. */
	ck_assert(!vq_should_notify(&vq));
	/* used_event = 1: wants to hear once used->idx passes 1. */
	*used_event() = 1;
	vq_push(&vq, 1, 0);
	ck_assert(vq_should_notify(&vq));
	vq_push(&vq, 2, 0);
	ck_assert(!vq_should_notify(&vq));
	/* A batch crossing used_event notifies once. */
	*used_event() = 4;
	vq_push(&vq, 3, 0);
	vq_push(&vq, 4, 0);
	vq_push(&vq, 5, 0);
	ck_assert_uint_eq(vq.used_idx, 6);
	ck_assert(vq_should_notify(&vq));
	/* A batch ending at used_event (the entry it names not yet written) does not. */
	*used_event() = 8;
	vq_push(&vq, 6, 0);
	vq_push(&vq, 7, 0);
	ck_assert(!vq_should_notify(&vq));
	vq_push(&vq, 8, 0);
	ck_assert(vq_should_notify(&vq));
	/* NO_INTERRUPT is ignored with EVENT_IDX. */
	A->flags = VRING_AVAIL_F_NO_INTERRUPT;
	*used_event() = vq.used_idx;
	vq_push(&vq, 9, 0);
	ck_assert(vq_should_notify(&vq));

	/* Across the 16-bit wrap. */
	vq.used_idx = 0xfffe;
	vq.signalled_used = 0xfffe;
	*used_event() = 0xffff;
	vq_push(&vq, 0, 0);
	ck_assert(!vq_should_notify(&vq));
	vq_push(&vq, 1, 0);
	vq_push(&vq, 2, 0);
	ck_assert_uint_eq(vq.used_idx, 1);
	ck_assert(vq_should_notify(&vq));
}
END_TEST

START_TEST(t_notify_flags)
{
	vq_setup(QSIZE, false, false);
	vq_push(&vq, 0, 0);
	ck_assert(vq_should_notify(&vq));
	A->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vq_push(&vq, 1, 0);
	ck_assert(!vq_should_notify(&vq));
	/* used_event means nothing without EVENT_IDX. */
	A->flags = 0;
	*used_event() = 0x1234;
	ck_assert(vq_should_notify(&vq));
}
END_TEST

START_TEST(t_enable_notify)
{
	vq_setup(QSIZE, false, false);
	ck_assert(!vq_enable_notify(&vq, false));
	ck_assert_uint_eq(U->flags, VRING_USED_F_NO_NOTIFY);
	ck_assert(!vq_enable_notify(&vq, true));
	ck_assert_uint_eq(U->flags, 0);
	/* Buffers that arrived while kicks were off: the caller must poll. */
	vq_enable_notify(&vq, false);
	desc(0, BUF_GPA, 4, 0, 0);
	avail_add(0);
	ck_assert(!vq_enable_notify(&vq, false));
	ck_assert(vq_enable_notify(&vq, true));
	ck_assert_uint_eq(U->flags, 0);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert(!vq_enable_notify(&vq, true));

	vq_setup(QSIZE, true, false);
	desc(0, BUF_GPA, 4, 0, 0);
	ck_assert(!vq_enable_notify(&vq, true));
	ck_assert_uint_eq(*avail_event(), 0);
	avail_add(0);
	avail_add(0);
	ck_assert(vq_enable_notify(&vq, true));
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	ck_assert_int_eq(vq_pop(&vq, &e), VQ_OK);
	/* Disabling leaves avail_event and used->flags alone. */
	ck_assert(!vq_enable_notify(&vq, false));
	ck_assert_uint_eq(*avail_event(), 0);
	ck_assert_uint_eq(U->flags, 0);
	ck_assert(!vq_enable_notify(&vq, true));
	ck_assert_uint_eq(*avail_event(), 2);
	avail_add(0);
	ck_assert(vq_enable_notify(&vq, true));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtqueue");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, ram_setup, ram_teardown);
	tcase_add_test(tc, t_init_sizes);
	tcase_add_test(tc, t_init_placement);
	tcase_add_test(tc, t_init_overlap);
	tcase_add_test(tc, t_single);
	tcase_add_test(tc, t_multi);
	tcase_add_test(tc, t_limits_exact);
	tcase_add_test(tc, t_zero_len);
	tcase_add_test(tc, t_out_after_in);
	tcase_add_test(tc, t_head_out_of_range);
	tcase_add_test(tc, t_next_out_of_range);
	tcase_add_test(tc, t_loops);
	tcase_add_test(tc, t_chain_too_long);
	tcase_add_test(tc, t_bad_buffers);
	tcase_add_test(tc, t_write_over_rings);
	tcase_add_test(tc, t_too_many_segments);
	tcase_add_test(tc, t_avail_jump);
	tcase_add_test(tc, t_index_wrap);
	tcase_add_test(tc, t_indirect);
	tcase_add_test(tc, t_indirect_bad);
	tcase_add_test(tc, t_notify_event_idx);
	tcase_add_test(tc, t_notify_flags);
	tcase_add_test(tc, t_enable_notify);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
