// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The virtio core and virtio-blk, driven by a tiny driver that builds
 * descriptor chains in fake guest RAM: feature and status handshakes,
 * snapshots, every request type against raw and null backends, malformed
 * chains, interrupt suppression, and the I/O threads started, reset and
 * restarted through the status register, and held to a rate limit.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "block/aio.h"
#include "block/backend.h"
#include "log.h"
#include "mm/guest_mem.h"
#include "ratelimit.h"
#include "virtio/iothread.h"
#include "snapshot/state.h"
#include "util.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"
#include "unit.h"
#include "vring_drv.h"

#define RAM_SIZE  0x800000ULL /* 8 MiB at GPA 0 */
#define RING_GPA  0x100000ULL /* queue i's rings at RING_GPA + i * RING_STEP */
#define RING_STEP 0x10000ULL
#define BUF_GPA	  0x200000ULL	/* request headers and buffers, bump-allocated */
#define FAR_GPA	  0x40000000ULL /* not RAM */
#define DISK_SIZE (1024 * 1024ULL)
#define MAXSEG	  300
#define SENTINEL  0xee
#define SERIAL	  "minivmm-serial-42" /* 17 bytes: shorter than VIRTIO_BLK_ID_BYTES */

/* --- fake guest RAM ---------------------------------------------------------------------- */

static struct guest_mem mem;
static uint8_t *ram;
static uint64_t buf_next;

static void *hva(uint64_t gpa)
{
	void *p = gpa_to_hva(&mem, gpa, 1);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void ram_setup(void)
{
	ram = vdrv_ram_map(&mem, RAM_SIZE);
	ck_assert_ptr_nonnull(ram);
	buf_next = BUF_GPA;
}

static void ram_teardown(void)
{
	vdrv_ram_unmap(&mem);
}

/* Guest memory for a buffer of @len bytes, filled with SENTINEL. */
static uint64_t galloc(uint32_t len)
{
	uint64_t gpa = buf_next;

	buf_next = (buf_next + len + 15) & ~15ULL;
	ck_assert_uint_le(buf_next, RAM_SIZE);
	memset(hva(gpa), SENTINEL, len);
	return gpa;
}

/* --- requests for the split-ring driver (tests/lib/vring_drv.h) --------------------------- */

/* A request being built: its segments and where its status byte is. */
struct rq {
	struct vring_seg s[MAXSEG];
	unsigned int n;
	uint64_t status;
};

static void drv_init(struct vdrv *q, unsigned int qi, unsigned int size)
{
	uint64_t base = RING_GPA + qi * RING_STEP;

	ck_assert_int_eq(vdrv_init(q, &mem, size, base, base + 0x8000, base + 0xa000), 0);
}

static void rq_init(struct rq *r)
{
	memset(r, 0, sizeof(*r));
}

static void rq_add(struct rq *r, uint64_t gpa, uint32_t len, bool wr)
{
	ck_assert_uint_lt(r->n, MAXSEG);
	r->s[r->n++] = (struct vring_seg){ gpa, len, wr };
}

static uint64_t rq_hdr(struct rq *r, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = { .type = type, .sector = sector };
	uint64_t gpa = galloc(sizeof(h));

	memcpy(hva(gpa), &h, sizeof(h));
	rq_add(r, gpa, sizeof(h), false);
	return gpa;
}

static uint64_t rq_buf(struct rq *r, uint32_t len, bool wr)
{
	uint64_t gpa = galloc(len);

	rq_add(r, gpa, len, wr);
	return gpa;
}

static uint64_t rq_status(struct rq *r)
{
	r->status = rq_buf(r, 1, true);
	return r->status;
}

static uint8_t status_of(const struct rq *r)
{
	return *(uint8_t *)hva(r->status);
}

/* Write @r's chain (direct, or one descriptor pointing to a table) without publishing it. */
static uint16_t drv_chain(struct vdrv *q, const struct rq *r, bool indirect)
{
	if (indirect)
		return vdrv_chain_indirect(q, r->s, r->n, galloc(r->n * sizeof(struct vring_desc)));
	ck_assert_uint_le(r->n, q->size);
	return vdrv_chain(q, r->s, r->n);
}

static uint16_t drv_post(struct vdrv *q, const struct rq *r, bool indirect)
{
	uint16_t head = drv_chain(q, r, indirect);

	vdrv_publish(q, head);
	return head;
}

/* --- a transport that counts ------------------------------------------------------------- */

struct test_transport {
	atomic_uint queue_irqs[VIRTIO_MAX_QUEUES];
	atomic_uint config_irqs;
	int efd; /* written on every queue interrupt */
};

static struct test_transport tt;

static void tt_notify_queue(struct virtio_dev *d, unsigned int q)
{
	struct test_transport *t = d->transport;
	uint64_t one = 1;

	atomic_fetch_add(&t->queue_irqs[q], 1);
	if (t->efd >= 0 && write(t->efd, &one, sizeof(one)) < 0)
		(void)0;
}

static void tt_notify_config(struct virtio_dev *d)
{
	struct test_transport *t = d->transport;

	atomic_fetch_add(&t->config_irqs, 1);
}

static const struct virtio_transport_ops tt_ops = {
	.notify_queue = tt_notify_queue,
	.notify_config = tt_notify_config,
};

static void tt_attach(struct virtio_dev *d)
{
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		atomic_store(&tt.queue_irqs[i], 0);
	atomic_store(&tt.config_irqs, 0);
	tt.efd = -1;
	d->tops = &tt_ops;
	d->transport = &tt;
}

/* --- the virtio core on a bare device ---------------------------------------------------- */

static int core_starts, core_stops;
static int core_start_ret;

static int core_start(struct virtio_dev *d)
{
	(void)d;
	core_starts++;
	return core_start_ret;
}

static void core_stop(struct virtio_dev *d)
{
	(void)d;
	core_stops++;
}

static const struct virtio_dev_ops core_ops = {
	.start = core_start,
	.stop = core_stop,
};

#define CORE_DEV_FEATURES ((1ULL << 3) | (1ULL << 7))

static struct virtio_dev cdev;

static void core_init(struct virtio_dev *d)
{
	core_starts = core_stops = core_start_ret = 0;
	ck_assert_int_eq(
	    virtio_dev_init(d, "test", 42, &core_ops, NULL, &mem, 2, 64, CORE_DEV_FEATURES, 0), 0);
	tt_attach(d);
}

static uint64_t offered(struct virtio_dev *d)
{
	return virtio_get_features(d, 0) | (uint64_t)virtio_get_features(d, 1) << 32;
}

/* The core device negotiated (all it offers but @drop), queue 0 on @q's rings of @size. */
static void core_ready(struct vdrv *q, unsigned int size, uint64_t drop)
{
	core_init(&cdev);
	drv_init(q, 0, size);
	ck_assert_uint_eq(vdrv_negotiate(&cdev, offered(&cdev) & ~drop), VDRV_S_FEAT);
	vdrv_place(&cdev, 0, q);
}

START_TEST(t_core_features)
{
	uint64_t f;

	core_init(&cdev);
	f = offered(&cdev);
	ck_assert(f & (1ULL << VIRTIO_F_VERSION_1));
	ck_assert(f & (1ULL << VIRTIO_RING_F_EVENT_IDX));
	ck_assert(f & (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
	ck_assert((f & CORE_DEV_FEATURES) == CORE_DEV_FEATURES);
	ck_assert_uint_eq(virtio_get_features(&cdev, 2), 0);

	/* A subset with VERSION_1 is accepted, and then frozen. */
	f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << 3);
	ck_assert_uint_eq(vdrv_negotiate(&cdev, f), VDRV_S_FEAT);
	ck_assert(virtio_negotiated(&cdev, 3));
	ck_assert(!virtio_negotiated(&cdev, 7));
	ck_assert(!virtio_negotiated(&cdev, VIRTIO_RING_F_EVENT_IDX));
	ck_assert(!virtio_negotiated(&cdev, 64));
	vdrv_set_features(&cdev, f | (1ULL << 7));
	ck_assert(!virtio_negotiated(&cdev, 7));
	virtio_dev_exit(&cdev);
}
END_TEST

/* _i 0: no VERSION_1; 1: a bit the device does not offer; 2: both. */
START_TEST(t_core_features_refused)
{
	uint64_t f;

	core_init(&cdev);
	f = offered(&cdev);
	if (_i != 1)
		f &= ~(1ULL << VIRTIO_F_VERSION_1);
	if (_i != 0)
		f |= 1ULL << 40;
	ck_assert_uint_eq(vdrv_negotiate(&cdev, f),
			  VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	/* Still negotiable: fix the features and try again. */
	vdrv_set_features(&cdev, offered(&cdev));
	virtio_set_status(&cdev, VDRV_S_FEAT);
	ck_assert_uint_eq(virtio_get_status(&cdev), VDRV_S_FEAT);
	virtio_dev_exit(&cdev);
}
END_TEST

/* DRIVER_OK with a ring outside RAM, or without FEATURES_OK: NEEDS_RESET, not started. */
START_TEST(t_core_driver_ok_bad)
{
	struct vdrv q;

	core_ready(&q, 64, 0);
	cdev.q[0].used = FAR_GPA;
	virtio_set_status(&cdev, VDRV_S_LIVE);
	ck_assert_uint_eq(virtio_get_status(&cdev), VDRV_S_LIVE | VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_int_eq(core_starts, 0);
	ck_assert(!cdev.started);
	ck_assert_uint_eq(atomic_load(&tt.config_irqs), 1);
	/* NEEDS_RESET sticks until a reset. */
	virtio_set_status(&cdev, VDRV_S_LIVE);
	ck_assert(virtio_get_status(&cdev) & VIRTIO_CONFIG_S_NEEDS_RESET);

	/* Misaligned rings are refused the same way. */
	virtio_set_status(&cdev, 0);
	ck_assert_uint_eq(vdrv_negotiate(&cdev, offered(&cdev)), VDRV_S_FEAT);
	vdrv_place(&cdev, 0, &q);
	cdev.q[0].desc += 8;
	virtio_set_status(&cdev, VDRV_S_LIVE);
	ck_assert(virtio_get_status(&cdev) & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_int_eq(core_starts, 0);

	/* DRIVER_OK before FEATURES_OK. */
	virtio_set_status(&cdev, 0);
	virtio_set_status(&cdev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	virtio_set_status(&cdev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				     VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert(virtio_get_status(&cdev) & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_int_eq(core_starts, 0);

	/* The device's own start failing. */
	virtio_set_status(&cdev, 0);
	ck_assert_uint_eq(vdrv_negotiate(&cdev, offered(&cdev)), VDRV_S_FEAT);
	vdrv_place(&cdev, 0, &q);
	core_start_ret = -ENOMEM;
	virtio_set_status(&cdev, VDRV_S_LIVE);
	ck_assert(virtio_get_status(&cdev) & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_int_eq(core_starts, 1);
	ck_assert(!cdev.started);
	virtio_dev_exit(&cdev);
	ck_assert_int_eq(core_stops, 0);
}
END_TEST

START_TEST(t_core_reset)
{
	struct vdrv q;

	core_ready(&q, 32, 0);
	cdev.q[0].vector = 3;
	cdev.q[1].desc = 0x1000;
	cdev.config_vector = 1;
	virtio_set_status(&cdev, VDRV_S_LIVE);
	ck_assert_uint_eq(virtio_get_status(&cdev), VDRV_S_LIVE);
	ck_assert_int_eq(core_starts, 1);
	ck_assert(cdev.started);
	ck_assert(!cdev.q[0].vq.broken);
	ck_assert_uint_eq(cdev.q[0].vq.size, 32);

	virtio_set_status(&cdev, 0);
	ck_assert_int_eq(core_stops, 1);
	ck_assert(!cdev.started);
	ck_assert_uint_eq(virtio_get_status(&cdev), 0);
	ck_assert_uint_eq(cdev.acked, 0);
	ck_assert_uint_eq(cdev.config_vector, VIRTIO_NO_VECTOR);
	for (unsigned int i = 0; i < cdev.nr_queues; i++) {
		struct virtio_queue *vq = &cdev.q[i];

		ck_assert_uint_eq(vq->size, vq->size_max);
		ck_assert_uint_eq(vq->size, 64);
		ck_assert(!vq->enabled);
		ck_assert_uint_eq(vq->desc, 0);
		ck_assert_uint_eq(vq->avail, 0);
		ck_assert_uint_eq(vq->used, 0);
		ck_assert_uint_eq(vq->vector, VIRTIO_NO_VECTOR);
		ck_assert_uint_eq(vq->vq.last_avail, 0);
		ck_assert_uint_eq(vq->vq.used_idx, 0);
		ck_assert_int_ge(vq->kick_fd, 0);
	}
	/* A second reset of a stopped device does not stop it again. */
	virtio_set_status(&cdev, 0);
	ck_assert_int_eq(core_stops, 1);
	virtio_dev_exit(&cdev);
	ck_assert_int_eq(core_stops, 1);
}
END_TEST

/*
 * The driver never clears a status bit; only a reset does (virtio 1.2, 2.1.2).
 * A write that clears one is a protocol error: NEEDS_RESET (with a
 * configuration interrupt), the old bits stay, and nothing restarts or
 * remaps until a reset. A queue the driver did not enable is never usable.
 */
START_TEST(t_core_status_clear)
{
	struct iovec iov[4];
	struct vq_elem e = { .iov = iov, .max = 4 };
	struct vdrv q;

	core_init(&cdev);
	drv_init(&q, 0, 32);
	/* Unmapped queues, before and after DRIVER_OK: every call fails safely. */
	ck_assert_int_eq(vq_pop(&cdev.q[0].vq, &e), VQ_BROKEN);
	ck_assert_uint_eq(vdrv_negotiate(&cdev, offered(&cdev)), VDRV_S_FEAT);
	vdrv_place(&cdev, 0, &q);
	virtio_set_status(&cdev, VDRV_S_LIVE);
	ck_assert_uint_eq(virtio_get_status(&cdev), VDRV_S_LIVE);
	ck_assert_int_eq(vq_pop(&cdev.q[1].vq, &e), VQ_BROKEN);
	ck_assert(!vq_enable_notify(&cdev.q[1].vq, true));
	ck_assert_int_eq(vq_pop(&cdev.q[0].vq, &e), VQ_EMPTY);

	/* DRIVER_OK cleared without a reset. */
	virtio_set_status(&cdev, VDRV_S_FEAT);
	ck_assert_uint_eq(virtio_get_status(&cdev), VDRV_S_LIVE | VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(atomic_load(&tt.config_irqs), 1);
	ck_assert(cdev.started);
	ck_assert_int_eq(core_stops, 0);
	/* Setting it again, or anything else, changes nothing now. */
	virtio_set_status(&cdev, VDRV_S_LIVE);
	virtio_set_status(&cdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	ck_assert_uint_eq(virtio_get_status(&cdev), VDRV_S_LIVE | VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_int_eq(core_starts, 1);
	ck_assert_uint_eq(atomic_load(&tt.config_irqs), 1);
	virtio_set_status(&cdev, 0);
	ck_assert_uint_eq(virtio_get_status(&cdev), 0);
	ck_assert_int_eq(core_stops, 1);
	ck_assert_int_eq(vq_pop(&cdev.q[0].vq, &e), VQ_BROKEN);

	/* FEATURES_OK cleared before DRIVER_OK: DRIVER_OK then starts nothing. */
	ck_assert_uint_eq(vdrv_negotiate(&cdev, offered(&cdev)), VDRV_S_FEAT);
	virtio_set_status(&cdev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	ck_assert(virtio_get_status(&cdev) & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert(virtio_get_status(&cdev) & VIRTIO_CONFIG_S_FEATURES_OK);
	vdrv_place(&cdev, 0, &q);
	virtio_set_status(&cdev, VDRV_S_LIVE);
	ck_assert_int_eq(core_starts, 1);
	ck_assert(!cdev.started);
	virtio_set_status(&cdev, 0);

	/* NEEDS_RESET is the device's bit: the driver can neither set nor clear it. */
	virtio_set_status(&cdev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(virtio_get_status(&cdev), VIRTIO_CONFIG_S_ACKNOWLEDGE);
	/* FAILED may be added at any time, and is kept. */
	virtio_set_status(&cdev, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_FAILED);
	ck_assert_uint_eq(virtio_get_status(&cdev),
			  VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_FAILED);
	virtio_dev_exit(&cdev);
	ck_assert_int_eq(core_starts, 1);
}
END_TEST

/* Queue set-up through the core: only while the queue is off and the driver not live. */
START_TEST(t_core_queue_frozen)
{
	struct vdrv q;

	core_init(&cdev);
	drv_init(&q, 0, 32);
	ck_assert_uint_eq(vdrv_negotiate(&cdev, offered(&cdev)), VDRV_S_FEAT);
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_SIZE, 48), -EINVAL);
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_SIZE, 0), -EINVAL);
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_SIZE, 128), -EINVAL);
	ck_assert_int_eq(virtio_queue_set(&cdev, 2, VIRTIO_QUEUE_SIZE, 16), -EINVAL);
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_SIZE, 32), 0);
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_DESC, q.desc_gpa), 0);
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_DRIVER, q.avail_gpa), 0);
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_DEVICE, q.used_gpa), 0);
	/* Enabling takes 1 only (the driver never writes 0). */
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_ENABLE, 0), -EINVAL);
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_ENABLE, 1), 0);
	ck_assert(cdev.q[0].enabled);
	/* Enabled: fixed. */
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_DESC, 0x5000), -EBUSY);
	ck_assert_int_eq(virtio_queue_set(&cdev, 1, VIRTIO_QUEUE_DESC, 0x5000), 0);
	virtio_set_status(&cdev, VDRV_S_LIVE);
	ck_assert_uint_eq(virtio_get_status(&cdev), VDRV_S_LIVE);
	/* Live: every queue is fixed, enabled or not. */
	ck_assert_int_eq(virtio_queue_set(&cdev, 1, VIRTIO_QUEUE_DESC, 0x6000), -EBUSY);
	ck_assert_int_eq(virtio_queue_set(&cdev, 1, VIRTIO_QUEUE_ENABLE, 1), -EBUSY);
	ck_assert_int_eq(virtio_queue_set(&cdev, 0, VIRTIO_QUEUE_SIZE, 16), -EBUSY);
	ck_assert_uint_eq(cdev.q[1].desc, 0x5000);
	ck_assert(!cdev.q[1].enabled);
	ck_assert_uint_eq(cdev.q[0].size, 32);
	virtio_set_status(&cdev, 0);
	ck_assert_int_eq(virtio_queue_set(&cdev, 1, VIRTIO_QUEUE_DESC, 0x6000), 0);
	virtio_dev_exit(&cdev);
}
END_TEST

static int refusing_save(struct virtio_dev *d, void *fdt, int node)
{
	(void)d;
	(void)fdt;
	(void)node;
	return -EOPNOTSUPP;
}

static const struct virtio_dev_ops refusing_ops = {
	.start = core_start,
	.stop = core_stop,
	.save = refusing_save,
};

/*
 * A device's own refusal comes back as it is (it was -ENOSPC, which made the
 * snapshot grow its tree up to the limit and then blame the size); the node's
 * layout version is checked, and a node without one (older snapshots) is version 1.
 */
START_TEST(t_core_save_errors)
{
	static char buf[16384];
	struct virtio_dev d, d2;
	uint64_t v;
	int node;

	ck_assert_int_eq(fdt_create_empty_tree(buf, sizeof(buf)), 0);
	node = fdt_add_subnode(buf, 0, "virtio");
	ck_assert_int_ge(node, 0);
	ck_assert_int_eq(
	    virtio_dev_init(&d, "refuses", 42, &refusing_ops, NULL, &mem, 2, 64, CORE_DEV_FEATURES, 0),
	    0);
	ck_assert_int_eq(virtio_save(&d, buf, node), -EOPNOTSUPP);
	virtio_dev_exit(&d);

	core_init(&cdev);
	ck_assert_int_eq(fdt_create_empty_tree(buf, sizeof(buf)), 0);
	node = fdt_add_subnode(buf, 0, "virtio");
	ck_assert_int_eq(virtio_save(&cdev, buf, node), 0);
	ck_assert_int_eq(st_get_u64(buf, node, "version", &v), 0);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(
	    virtio_dev_init(&d2, "test2", 42, &core_ops, NULL, &mem, 2, 64, CORE_DEV_FEATURES, 0),
	    0);
	ck_assert_int_eq(virtio_load(&d2, buf, node), 0);
	/* A later layout: refused, not misread. */
	ck_assert_int_eq(st_put_u64(buf, node, "version", 2), 0);
	ck_assert_int_eq(virtio_load(&d2, buf, node), -EINVAL);
	/* No version at all: the layout before versions, which is version 1. */
	ck_assert_int_eq(fdt_delprop(buf, node, "version"), 0);
	ck_assert_int_eq(virtio_load(&d2, buf, node), 0);
	virtio_dev_exit(&d2);
	virtio_dev_exit(&cdev);
}
END_TEST

START_TEST(t_core_save_load)
{
	static char buf[16384];
	struct virtio_dev d2;
	struct vdrv q;
	uint64_t f;
	int node;

	core_ready(&q, 32, 1ULL << 7);
	f = offered(&cdev) & ~(1ULL << 7);
	cdev.q[0].vector = 2;
	cdev.q[1].size = 16; /* not enabled: addresses are state too */
	cdev.q[1].desc = 0x5000;
	cdev.q[1].avail = 0x6000;
	cdev.q[1].used = 0x7000;
	cdev.config_vector = 5;
	virtio_set_status(&cdev, VDRV_S_LIVE);
	ck_assert_uint_eq(virtio_get_status(&cdev), VDRV_S_LIVE);
	/* Progress the driver and device made. */
	cdev.q[0].vq.last_avail = 7;
	cdev.q[0].vq.used_idx = 5;

	ck_assert_int_eq(fdt_create_empty_tree(buf, sizeof(buf)), 0);
	node = fdt_add_subnode(buf, 0, "virtio");
	ck_assert_int_ge(node, 0);
	ck_assert_int_eq(virtio_save(&cdev, buf, node), 0);

	ck_assert_int_eq(
	    virtio_dev_init(&d2, "test2", 42, &core_ops, NULL, &mem, 2, 64, CORE_DEV_FEATURES, 0),
	    0);
	ck_assert_int_eq(virtio_load(&d2, buf, node), 0);
	ck_assert_uint_eq(d2.acked, f);
	ck_assert_uint_eq(virtio_get_status(&d2), VDRV_S_LIVE);
	ck_assert_uint_eq(d2.config_vector, 5);
	ck_assert(d2.started);
	ck_assert_int_eq(core_starts, 2);
	for (unsigned int i = 0; i < 2; i++) {
		ck_assert_uint_eq(d2.q[i].size, cdev.q[i].size);
		ck_assert_uint_eq(d2.q[i].enabled, cdev.q[i].enabled);
		ck_assert_uint_eq(d2.q[i].desc, cdev.q[i].desc);
		ck_assert_uint_eq(d2.q[i].avail, cdev.q[i].avail);
		ck_assert_uint_eq(d2.q[i].used, cdev.q[i].used);
		ck_assert_uint_eq(d2.q[i].vector, cdev.q[i].vector);
	}
	ck_assert_uint_eq(d2.q[0].vq.last_avail, 7);
	ck_assert_uint_eq(d2.q[0].vq.used_idx, 5);
	ck_assert_uint_eq(d2.q[0].vq.size, 32);
	ck_assert(!d2.q[0].vq.broken);
	ck_assert(d2.q[0].vq.event_idx);
	ck_assert(d2.q[0].vq.indirect);
	virtio_dev_exit(&d2);

	/* Another device model (other queue count, other features): refused. */
	ck_assert_int_eq(
	    virtio_dev_init(&d2, "test3", 42, &core_ops, NULL, &mem, 3, 64, CORE_DEV_FEATURES, 0),
	    0);
	ck_assert_int_eq(virtio_load(&d2, buf, node), -EINVAL);
	ck_assert(!d2.started);
	virtio_dev_exit(&d2);
	ck_assert_int_eq(
	    virtio_dev_init(&d2, "test4", 42, &core_ops, NULL, &mem, 2, 64, 1ULL << 3, 0), 0);
	ck_assert_int_eq(virtio_load(&d2, buf, node), -EINVAL);
	virtio_dev_exit(&d2);

	/* A queue property missing: refused, and the device left reset. */
	ck_assert_int_eq(fdt_delprop(buf, fdt_subnode_offset(buf, node, "queue@1"), "used"), 0);
	ck_assert_int_eq(
	    virtio_dev_init(&d2, "test5", 42, &core_ops, NULL, &mem, 2, 64, CORE_DEV_FEATURES, 0),
	    0);
	ck_assert_int_eq(virtio_load(&d2, buf, node), -EINVAL);
	ck_assert(!d2.started);
	ck_assert_uint_eq(virtio_get_status(&d2), 0);
	ck_assert(!d2.q[0].enabled);
	virtio_dev_exit(&d2);

	/* A full buffer: -ENOSPC, nothing else. */
	{
		static char small[256];

		ck_assert_int_eq(fdt_create_empty_tree(small, sizeof(small)), 0);
		node = fdt_add_subnode(small, 0, "virtio");
		ck_assert_int_ge(node, 0);
		ck_assert_int_eq(virtio_save(&cdev, small, node), -ENOSPC);
	}
	virtio_dev_exit(&cdev);
}
END_TEST

/* A snapshot whose status no driver could have reached is refused. */
START_TEST(t_core_load_bad_status)
{
	static char buf[16384];
	const uint64_t no_fok =
	    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK;
	struct {
		const char *prop;
		uint64_t v;
		int ret;
	} cases[] = {
		{ "status", VDRV_S_LIVE, 0 },
		{ "status", no_fok, -EINVAL }, /* DRIVER_OK, no FEATURES_OK */
		{ "status", no_fok | VIRTIO_CONFIG_S_NEEDS_RESET, 0 }, /* ... refused at the time */
		{ "status", VDRV_S_LIVE | 0x10, -EINVAL },	       /* not a status bit */
		{ "acked", 1ULL << 3, -EINVAL }, /* FEATURES_OK without VERSION_1 */
		{ "config-vector", 0x10000, -EINVAL },
		{ "config-vector", VIRTIO_NO_VECTOR, 0 },
	};
	struct virtio_dev d2;
	struct vdrv q;
	int node;

	core_ready(&q, 32, 0);
	virtio_set_status(&cdev, VDRV_S_LIVE);
	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(fdt_create_empty_tree(buf, sizeof(buf)), 0);
		node = fdt_add_subnode(buf, 0, "virtio");
		ck_assert_int_ge(node, 0);
		ck_assert_int_eq(virtio_save(&cdev, buf, node), 0);
		ck_assert_int_eq(fdt_setprop_inplace_u64(buf, node, cases[i].prop, cases[i].v), 0);
		ck_assert_int_eq(virtio_dev_init(&d2, "t", 42, &core_ops, NULL, &mem, 2, 64,
						 CORE_DEV_FEATURES, 0),
				 0);
		ck_assert_msg(virtio_load(&d2, buf, node) == cases[i].ret, "case %u", i);
		if (cases[i].ret)
			ck_assert_uint_eq(virtio_get_status(&d2), 0);
		virtio_dev_exit(&d2);
	}
	virtio_dev_exit(&cdev);
}
END_TEST

/* --- virtio-blk, served synchronously ---------------------------------------------------- */

static struct virtio_blk *blk;
static struct virtio_dev *vd;
static struct blk_backend *be;
static struct aio_ctx ctx;
static bool ctx_up;
static struct vdrv drv[2];
static char img[PATH_MAX];
static int img_fd = -1;

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9) * 13 + 1);
}

static const char *tmp_dir(void)
{
	const char *d = getenv("TMPDIR");

	return d && *d ? d : "/tmp";
}

/* A disk image of DISK_SIZE bytes, every byte pattern(offset). */
static void make_img(void)
{
	static uint8_t data[DISK_SIZE];

	snprintf(img, sizeof(img), "%s/minivmm-test-vblk-XXXXXX", tmp_dir());
	img_fd = mkstemp(img);
	ck_assert_int_ge(img_fd, 0);
	for (uint64_t i = 0; i < DISK_SIZE; i++)
		data[i] = pattern(i);
	ck_assert_int_eq(pwrite(img_fd, data, DISK_SIZE, 0), (ssize_t)DISK_SIZE);
}

enum { BE_RAW, BE_RAW_RO, BE_NULL };

/* What the next blk_setup_n() gives the device beyond its defaults. */
static const struct rl_config *setup_rl;
static unsigned int setup_poll_us;

static void blk_setup_n(int kind, unsigned int queues, unsigned int threads)
{
	struct blk_open_opts o = { .format = BLK_FMT_RAW };
	struct virtio_blk_opts bo = { .name = "vdt",
				   .queues = queues,
				   .threads = threads,
				   .serial = SERIAL,
				   .rl = setup_rl,
				   .poll_us = setup_poll_us };
	char err[256];

	if (kind == BE_NULL) {
		o.format = BLK_FMT_NULL;
		o.null_size = DISK_SIZE;
		ck_assert_int_eq(blk_open(&be, NULL, &o, err, sizeof(err)), 0);
	} else {
		make_img();
		o.readonly = kind == BE_RAW_RO;
		ck_assert_msg(!blk_open(&be, img, &o, err, sizeof(err)), "%s", err);
		/* Open twice: gone from the directory even if a test dies. */
		unlink(img);
	}
	ck_assert_int_eq(virtio_blk_create(&blk, be, &mem, &bo), 0);
	vd = virtio_blk_virtio(blk);
	tt_attach(vd);
	ck_assert_int_eq(aio_init(&ctx, 64), 0);
	ctx_up = true;
}

static void blk_setup(int kind)
{
	blk_setup_n(kind, 2, 1);
}

static void blk_teardown(void)
{
	if (blk)
		virtio_blk_destroy(blk);
	blk = NULL;
	if (ctx_up)
		aio_exit(&ctx);
	ctx_up = false;
	if (img_fd >= 0)
		close(img_fd);
	img_fd = -1;
}

/* Map queue @qi for virtio_blk_process, as DRIVER_OK would, without threads. */
static struct vdrv *sync_queue(unsigned int qi, unsigned int size, bool event_idx, bool indirect)
{
	struct vdrv *q = &drv[qi];

	drv_init(q, qi, size);
	ck_assert_int_eq(vdrv_map(vd, qi, q, event_idx, indirect), 0);
	return q;
}

/* Serve queue @qi until nothing is in flight; returns the chains taken. */
static unsigned int run(unsigned int qi)
{
	unsigned int n = virtio_blk_process(blk, qi, &ctx);
	int idle = 0;

	while (virtio_blk_inflight(blk, qi)) {
		int r = aio_run_once(&ctx, 1000);

		ck_assert_int_ge(r, 0);
		idle = r ? 0 : idle + 1;
		ck_assert_msg(idle < 10, "request stuck in flight");
	}
	/* Completions signal on the next pass. */
	n += virtio_blk_process(blk, qi, &ctx);
	return n;
}

/* The next completion must be @head with @len bytes written. */
static void expect_used(struct vdrv *q, uint16_t head, uint32_t len)
{
	uint32_t id, l;

	ck_assert_msg(vdrv_used(q, &id, &l), "head %u not completed", head);
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(l, len);
}

static void expect_no_used(struct vdrv *q)
{
	uint32_t id, l;

	ck_assert(!vdrv_used(q, &id, &l));
}

/* Post @r on @q, serve @q's queue, and expect @r back with @len bytes written; its head. */
static uint16_t serve(struct vdrv *q, const struct rq *r, bool indirect, uint32_t len)
{
	uint16_t head = drv_post(q, r, indirect);

	ck_assert_uint_eq(run(q - drv), 1);
	expect_used(q, head, len);
	return head;
}

static void check_disk(uint64_t off, const uint8_t *buf, size_t len)
{
	uint8_t *chk = malloc(len);

	ck_assert_ptr_nonnull(chk);
	ck_assert_int_eq(pread(img_fd, chk, len, off), (ssize_t)len);
	ck_assert_mem_eq(chk, buf, len);
	free(chk);
}

static void check_pattern(const uint8_t *p, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		ck_assert_msg(p[i] == pattern(off + i), "byte %zu of disk offset %llu", i,
			      (unsigned long long)off);
}

static void config(unsigned int off, void *buf, unsigned int len)
{
	vd->ops->config_read(vd, off, buf, len);
}

#define CFG(field, var) config(offsetof(struct virtio_blk_config, field), &(var), sizeof(var))

START_TEST(t_blk_config)
{
	uint64_t cap, f;
	uint32_t seg_max, blk_size, size_max;
	uint16_t nq;
	uint8_t junk[4] = { 1, 2, 3, 4 };

	blk_setup_n(_i, 3, 2);
	CFG(capacity, cap);
	CFG(seg_max, seg_max);
	CFG(size_max, size_max);
	CFG(blk_size, blk_size);
	CFG(num_queues, nq);
	ck_assert_uint_eq(cap, DISK_SIZE / 512);
	ck_assert_uint_eq(seg_max, BLK_SEG_MAX);
	ck_assert_uint_ge(size_max, 4096);
	ck_assert_uint_eq(blk_size, 512);
	ck_assert_uint_eq(nq, 3);
	ck_assert_uint_eq(vd->nr_queues, 3);
	ck_assert_uint_eq(vd->device_id, 2);
	ck_assert_uint_eq(vd->config_size, sizeof(struct virtio_blk_config));
	/* Past the end reads as zeros. */
	config(sizeof(struct virtio_blk_config) - 2, junk, 4);
	ck_assert_uint_eq(junk[0] | junk[1] | junk[2] | junk[3], 0);

	f = offered(vd);
	ck_assert(f & (1ULL << VIRTIO_F_VERSION_1));
	ck_assert(f & (1ULL << VIRTIO_RING_F_EVENT_IDX));
	ck_assert(f & (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
	ck_assert(f & (1ULL << VIRTIO_BLK_F_MQ));
	ck_assert(f & (1ULL << VIRTIO_BLK_F_FLUSH));
	ck_assert(f & (1ULL << VIRTIO_BLK_F_SEG_MAX));
	ck_assert(f & (1ULL << VIRTIO_BLK_F_BLK_SIZE));
	ck_assert(f & (1ULL << VIRTIO_BLK_F_SIZE_MAX));
	if (_i == BE_RAW_RO) {
		ck_assert(f & (1ULL << VIRTIO_BLK_F_RO));
		ck_assert(!(f & (1ULL << VIRTIO_BLK_F_DISCARD)));
		ck_assert(!(f & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES)));
	} else {
		uint32_t max_discard, max_wz;

		ck_assert(!(f & (1ULL << VIRTIO_BLK_F_RO)));
		ck_assert(f & (1ULL << VIRTIO_BLK_F_DISCARD));
		ck_assert(f & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
		CFG(max_discard_sectors, max_discard);
		CFG(max_write_zeroes_sectors, max_wz);
		ck_assert_uint_gt(max_discard, 0);
		ck_assert_uint_gt(max_wz, 0);
	}
	/* A driver taking everything offered gets FEATURES_OK. */
	ck_assert_uint_eq(vdrv_negotiate(vd, f), VDRV_S_FEAT);
	blk_teardown();
}
END_TEST

/* IN: one segment, many segments, indirect; used len = data + status. */
START_TEST(t_blk_read)
{
	bool indirect = _i;
	struct vdrv *q;
	struct rq r;
	uint64_t d[8];

	blk_setup(BE_RAW);
	q = sync_queue(0, 64, false, true);

	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 3);
	d[0] = rq_buf(&r, 4096, true);
	rq_status(&r);
	serve(q, &r, indirect, 4097);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	check_pattern(hva(d[0]), 3 * 512, 4096);

	/* Odd-sized segments adding up to sectors; the status in the last one's end. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 100);
	d[0] = rq_buf(&r, 100, true);
	d[1] = rq_buf(&r, 412, true);
	d[2] = rq_buf(&r, 1, true);
	d[3] = rq_buf(&r, 0, true); /* empty: takes no part */
	d[4] = rq_buf(&r, 1536 - 1 + 1, true);
	serve(q, &r, indirect, 2049);
	check_pattern(hva(d[0]), 100 * 512, 100);
	check_pattern(hva(d[1]), 100 * 512 + 100, 412);
	check_pattern(hva(d[2]), 100 * 512 + 512, 1);
	check_pattern(hva(d[4]), 100 * 512 + 513, 1535);
	ck_assert_uint_eq(((uint8_t *)hva(d[4]))[1535], VIRTIO_BLK_S_OK);

	/* The last sector of the disk, in 16 segments. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, DISK_SIZE / 512 - 16);
	for (int i = 0; i < 16; i++)
		d[i % 8] = rq_buf(&r, 512, true);
	rq_status(&r);
	serve(q, &r, indirect, 16 * 512 + 1);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	check_pattern(hva(d[7]), DISK_SIZE - 512, 512);

	/* The most segments the device advertises. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	d[0] = rq_buf(&r, 512, true);
	for (int i = 1; i < BLK_SEG_MAX; i++)
		rq_buf(&r, 512, true);
	rq_status(&r);
	serve(q, &r, true, BLK_SEG_MAX * 512 + 1);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	check_pattern(hva(d[0]), 0, 512);

	/* A read of nothing is fine. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	rq_status(&r);
	serve(q, &r, indirect, 1);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	expect_no_used(q);
	blk_teardown();
}
END_TEST

START_TEST(t_blk_write)
{
	bool indirect = _i;
	struct virtio_blk_stats st;
	struct vdrv *q;
	struct rq r;
	uint8_t want[3072];
	uint64_t d[3];
	uint16_t head;

	blk_setup(BE_RAW);
	q = sync_queue(1, 32, false, true);
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, 10);
	d[0] = rq_buf(&r, 1000, false);
	d[1] = rq_buf(&r, 24, false);
	d[2] = rq_buf(&r, 2048, false);
	rq_status(&r);
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(i ^ 0x5a);
	memcpy(hva(d[0]), want, 1000);
	memcpy(hva(d[1]), want + 1000, 24);
	memcpy(hva(d[2]), want + 1024, 2048);
	head = drv_post(q, &r, indirect);
	ck_assert_uint_eq(run(1), 1);
	/* Only the status byte is written for OUT. */
	expect_used(q, head, 1);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	check_disk(10 * 512, want, sizeof(want));
	/* The neighbours are untouched. */
	{
		uint8_t b[2];

		ck_assert_int_eq(pread(img_fd, b, 1, 10 * 512 - 1), 1);
		ck_assert_int_eq(pread(img_fd, b + 1, 1, 16 * 512), 1);
		ck_assert_uint_eq(b[0], pattern(10 * 512 - 1));
		ck_assert_uint_eq(b[1], pattern(16 * 512));
	}
	virtio_blk_get_stats(blk, &st);
	ck_assert_uint_eq(st.requests, 1);
	ck_assert_uint_eq(st.errors, 0);
	blk_teardown();
}
END_TEST

START_TEST(t_blk_flush)
{
	struct virtio_blk_stats st;
	struct vdrv *q;
	struct rq r;
	uint16_t head;

	blk_setup(_i ? BE_NULL : BE_RAW);
	q = sync_queue(0, 16, false, false);
	for (int k = 1; k <= 2; k++) {
		rq_init(&r);
		rq_hdr(&r, VIRTIO_BLK_T_FLUSH, 0);
		rq_status(&r);
		head = drv_post(q, &r, false);
		ck_assert_uint_eq(run(0), 1);
		expect_used(q, head, 1);
		ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
		virtio_blk_get_stats(blk, &st);
		ck_assert_uint_eq(st.flushes, k);
	}
	blk_teardown();
}
END_TEST

/* GET_ID into 20 bytes, fewer, more, and a buffer shared with the status. */
START_TEST(t_blk_get_id)
{
	static const unsigned int room[] = { 20, 8, 1, 64 };
	struct vdrv *q;
	struct rq r;
	uint64_t d;
	uint16_t head;
	uint8_t *p;

	blk_setup(BE_NULL);
	q = sync_queue(0, 16, false, false);
	for (unsigned int k = 0; k < 4; k++) {
		unsigned int n = room[k], w = n < 20 ? n : 20;
		char want[20] = SERIAL;

		rq_init(&r);
		rq_hdr(&r, VIRTIO_BLK_T_GET_ID, 0);
		d = rq_buf(&r, n, true);
		rq_status(&r);
		head = drv_post(q, &r, false);
		ck_assert_uint_eq(run(0), 1);
		expect_used(q, head, w + 1);
		ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
		p = hva(d);
		ck_assert_mem_eq(p, want, w);
		for (unsigned int i = w; i < n; i++)
			ck_assert_uint_eq(p[i], SENTINEL);
	}
	/* One 21-byte buffer: the id, then the status. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_GET_ID, 0);
	d = rq_buf(&r, 21, true);
	head = serve(q, &r, false, 21);
	p = hva(d);
	ck_assert_mem_eq(p, SERIAL "\0\0", 20);
	ck_assert_uint_eq(p[20], VIRTIO_BLK_S_OK);
	blk_teardown();
}
END_TEST

static uint16_t post_range(struct vdrv *q, struct rq *r, uint32_t type, uint64_t sector,
			   uint32_t num, uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes seg = { .sector = sector,
						       .num_sectors = num,
						       .flags = flags };
	uint64_t g;

	rq_init(r);
	rq_hdr(r, type, 0);
	g = rq_buf(r, sizeof(seg), false);
	memcpy(hva(g), &seg, sizeof(seg));
	rq_status(r);
	return drv_post(q, r, false);
}

static uint8_t do_range(struct vdrv *q, uint32_t type, uint64_t sector, uint32_t num,
			uint32_t flags)
{
	struct rq r;
	uint16_t head = post_range(q, &r, type, sector, num, flags);

	ck_assert_uint_eq(run(0), 1);
	expect_used(q, head, 1);
	return status_of(&r);
}

static void check_zero(uint64_t off, size_t len)
{
	uint8_t *z = calloc(1, len);

	check_disk(off, z, len);
	free(z);
}

START_TEST(t_blk_discard_write_zeroes)
{
	struct vdrv *q;
	uint8_t b;

	blk_setup(BE_RAW);
	q = sync_queue(0, 16, false, false);
	ck_assert_uint_eq(do_range(q, VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, 0), VIRTIO_BLK_S_OK);
	check_zero(8 * 512, 8 * 512);
	ck_assert_uint_eq(
	    do_range(q, VIRTIO_BLK_T_WRITE_ZEROES, 32, 16, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
	    VIRTIO_BLK_S_OK);
	check_zero(32 * 512, 16 * 512);
	/* A whole 4 KiB-aligned range punched reads back as zeros on files with holes. */
	ck_assert_uint_eq(do_range(q, VIRTIO_BLK_T_DISCARD, 64, 16, 0), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(pread(img_fd, &b, 1, 8 * 512 - 1), 1);
	ck_assert_uint_eq(b, pattern(8 * 512 - 1));
	ck_assert_int_eq(pread(img_fd, &b, 1, 16 * 512), 1);
	ck_assert_uint_eq(b, pattern(16 * 512));

	/* Unknown flags, no sectors, too far. */
	ck_assert_uint_eq(
	    do_range(q, VIRTIO_BLK_T_DISCARD, 0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
	    VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(do_range(q, VIRTIO_BLK_T_WRITE_ZEROES, 0, 1, 0x80), VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(do_range(q, VIRTIO_BLK_T_WRITE_ZEROES, 0, 0, 0), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(do_range(q, VIRTIO_BLK_T_WRITE_ZEROES, DISK_SIZE / 512 - 1, 2, 0),
			  VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(do_range(q, VIRTIO_BLK_T_DISCARD, ~0ULL / 512, 1, 0), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(do_range(q, VIRTIO_BLK_T_WRITE_ZEROES, DISK_SIZE / 512 - 1, 1, 0),
			  VIRTIO_BLK_S_OK);
	check_zero(DISK_SIZE - 512, 512);
	blk_teardown();
}
END_TEST

/* Read-only: OUT, WRITE_ZEROES and DISCARD fail, the file is unchanged; IN and FLUSH work. */
START_TEST(t_blk_readonly)
{
	struct vdrv *q;
	struct rq r;
	uint64_t d;
	uint8_t *before = malloc(DISK_SIZE);

	ck_assert_ptr_nonnull(before);
	blk_setup(BE_RAW_RO);
	for (uint64_t i = 0; i < DISK_SIZE; i++)
		before[i] = pattern(i);
	q = sync_queue(0, 16, false, false);
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, 0);
	d = rq_buf(&r, 4096, false);
	memset(hva(d), 0x11, 4096);
	rq_status(&r);
	serve(q, &r, false, 1);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_IOERR);

	ck_assert_uint_ne(do_range(q, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_OK);
	ck_assert_uint_ne(do_range(q, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_OK);

	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_FLUSH, 0);
	rq_status(&r);
	serve(q, &r, false, 1);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);

	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 1);
	d = rq_buf(&r, 512, true);
	rq_status(&r);
	serve(q, &r, false, 513);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	check_pattern(hva(d), 512, 512);
	check_disk(0, before, DISK_SIZE);
	free(before);
	blk_teardown();
}
END_TEST

/* Post one request of @type at @sector with @len data bytes; returns its status. */
static uint8_t one(struct vdrv *q, uint32_t type, uint64_t sector, uint32_t len, uint32_t *used)
{
	bool wr = type != VIRTIO_BLK_T_OUT;
	struct rq r;
	uint16_t head;
	uint32_t id;

	rq_init(&r);
	rq_hdr(&r, type, sector);
	if (len)
		rq_buf(&r, len, wr);
	rq_status(&r);
	head = drv_post(q, &r, false);
	ck_assert_uint_eq(run(0), 1);
	ck_assert(vdrv_used(q, &id, used));
	ck_assert_uint_eq(id, head);
	return status_of(&r);
}

START_TEST(t_blk_errors)
{
	struct virtio_blk_stats st;
	const uint64_t last = DISK_SIZE / 512 - 1;
	struct vdrv *q;
	uint32_t len;

	blk_setup(_i ? BE_NULL : BE_RAW);
	q = sync_queue(0, 16, false, false);
	ck_assert_uint_eq(one(q, VIRTIO_BLK_T_IN, last, 1024, &len), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(len, 1);
	ck_assert_uint_eq(one(q, VIRTIO_BLK_T_OUT, last, 1024, &len), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one(q, VIRTIO_BLK_T_IN, last + 1, 512, &len), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one(q, VIRTIO_BLK_T_IN, ~0ULL, 512, &len), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one(q, VIRTIO_BLK_T_OUT, 1ULL << 55, 512, &len), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one(q, VIRTIO_BLK_T_IN, 0, 511, &len), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(len, 1);
	ck_assert_uint_eq(one(q, VIRTIO_BLK_T_OUT, 0, 513, &len), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one(q, 0x1234, 0, 512, &len), VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(len, 1);
	ck_assert_uint_eq(one(q, 2 /* legacy SCSI_CMD */, 0, 0, &len), VIRTIO_BLK_S_UNSUPP);
	/* The last sector itself is fine. */
	ck_assert_uint_eq(one(q, VIRTIO_BLK_T_IN, last, 512, &len), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(len, 513);
	ck_assert_uint_eq(one(q, VIRTIO_BLK_T_OUT, last, 512, &len), VIRTIO_BLK_S_OK);
	virtio_blk_get_stats(blk, &st);
	ck_assert_uint_eq(st.requests, 11);
	ck_assert_uint_eq(st.errors, 9);
	ck_assert(!(virtio_get_status(vd) & VIRTIO_CONFIG_S_NEEDS_RESET));
	blk_teardown();
}
END_TEST

/* The 16-byte header in two descriptors (and data sharing the second). */
START_TEST(t_blk_split_header)
{
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_OUT, .sector = 20 };
	struct vdrv *q;
	struct rq r;
	uint64_t a, b, d;
	uint8_t want[512];

	blk_setup(BE_RAW);
	q = sync_queue(0, 32, false, true);
	rq_init(&r);
	a = rq_buf(&r, 5, false);
	b = rq_buf(&r, 11 + 512, false);
	memcpy(hva(a), &h, 5);
	memcpy(hva(b), (uint8_t *)&h + 5, 11);
	memset(want, 0x77, sizeof(want));
	memcpy((uint8_t *)hva(b) + 11, want, 512);
	rq_status(&r);
	serve(q, &r, false, 1);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	check_disk(20 * 512, want, 512);

	/* An IN header in 16 one-byte pieces. */
	h.type = VIRTIO_BLK_T_IN;
	h.sector = 21;
	rq_init(&r);
	for (int i = 0; i < 16; i++) {
		a = rq_buf(&r, 1, false);
		*(uint8_t *)hva(a) = ((uint8_t *)&h)[i];
	}
	d = rq_buf(&r, 512, true);
	rq_status(&r);
	serve(q, &r, true, 513);
	check_pattern(hva(d), 21 * 512, 512);

	/* A header cut short (15 bytes): failed without a header to act on. */
	rq_init(&r);
	a = rq_buf(&r, 15, false);
	memcpy(hva(a), &h, 15);
	rq_status(&r);
	serve(q, &r, false, 0);
	blk_teardown();
}
END_TEST

/* No device-writable byte: completed with len 0, nothing written anywhere. */
START_TEST(t_blk_no_status)
{
	struct virtio_blk_stats st;
	struct vdrv *q;
	struct rq r;
	uint64_t d;

	blk_setup(BE_RAW);
	q = sync_queue(0, 16, false, false);
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, 0);
	d = rq_buf(&r, 512, false);
	memset(hva(d), 0x33, 512);
	serve(q, &r, false, 0);
	{
		uint8_t b;

		ck_assert_int_eq(pread(img_fd, &b, 1, 0), 1);
		ck_assert_uint_eq(b, pattern(0));
	}
	/* An IN whose only writable descriptor is empty. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	d = rq_buf(&r, 0, true);
	serve(q, &r, false, 0);
	/* Just a header. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_FLUSH, 0);
	serve(q, &r, false, 0);
	virtio_blk_get_stats(blk, &st);
	ck_assert_uint_eq(st.flushes, 0);
	ck_assert_uint_eq(st.errors, 3);
	(void)d;
	blk_teardown();
}
END_TEST

/* Bad chains complete with len 0 and nothing written; the queue keeps working. */
START_TEST(t_blk_malformed)
{
	struct virtio_blk_stats st;
	struct vdrv *q;
	struct rq r;
	uint64_t d;
	uint16_t head;

	blk_setup(BE_RAW);
	q = sync_queue(0, 16, false, false);

	/* A data buffer outside RAM. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	rq_add(&r, FAR_GPA, 512, true);
	rq_status(&r);
	head = serve(q, &r, false, 0);
	ck_assert_uint_eq(status_of(&r), SENTINEL);

	/* A buffer running off the end of RAM. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	rq_add(&r, RAM_SIZE - 256, 512, true);
	rq_status(&r);
	head = serve(q, &r, false, 0);
	ck_assert_uint_eq(status_of(&r), SENTINEL);

	/* A loop: 3 -> 4 -> 3 (all device-readable). */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, 0);
	rq_buf(&r, 512, false);
	q->next_desc = 3;
	head = drv_chain(q, &r, false);
	q->desc[4].flags |= VRING_DESC_F_NEXT;
	q->desc[4].next = 3;
	vdrv_publish(q, head);
	ck_assert_uint_eq(run(0), 1);
	expect_used(q, head, 0);
	/* Writable ones too (3 -> 4 -> 3, both WRITE). */
	rq_init(&r);
	rq_buf(&r, 512, true);
	rq_status(&r);
	q->next_desc = 3;
	head = drv_chain(q, &r, false);
	q->desc[4].flags |= VRING_DESC_F_NEXT;
	q->desc[4].next = 3;
	vdrv_publish(q, head);
	ck_assert_uint_eq(run(0), 1);
	expect_used(q, head, 0);
	ck_assert_uint_eq(status_of(&r), SENTINEL);

	/* Readable after writable. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_OUT, 0);
	rq_status(&r);
	rq_buf(&r, 512, false);
	head = serve(q, &r, false, 0);
	ck_assert_uint_eq(status_of(&r), SENTINEL);

	/* Indirect when it was not negotiated. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	rq_buf(&r, 512, true);
	rq_status(&r);
	head = serve(q, &r, true, 0);
	ck_assert_uint_eq(status_of(&r), SENTINEL);

	virtio_blk_get_stats(blk, &st);
	ck_assert_uint_eq(st.bad_chains, 6);

	/* And then a good request. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 7);
	d = rq_buf(&r, 512, true);
	rq_status(&r);
	head = serve(q, &r, false, 513);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	check_pattern(hva(d), 7 * 512, 512);
	ck_assert(!(virtio_get_status(vd) & VIRTIO_CONFIG_S_NEEDS_RESET));
	blk_teardown();
}
END_TEST

/* More segments than BLK_SEG_MAX + 2 (indirect): a bad chain, not an overflow. */
START_TEST(t_blk_too_many_segments)
{
	struct vdrv *q;
	struct rq r;

	blk_setup(BE_NULL);
	q = sync_queue(0, 16, false, true);
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	for (int i = 0; i < BLK_SEG_MAX + 1; i++)
		rq_buf(&r, 512, true);
	rq_status(&r);
	serve(q, &r, true, 0);
	ck_assert_uint_eq(status_of(&r), SENTINEL);
	blk_teardown();
}
END_TEST

/* The driver re-publishes a head the device still has in flight. */
START_TEST(t_blk_head_reuse)
{
	struct vdrv *q;
	struct rq r;
	uint64_t d;
	uint16_t head;
	int idle = 0;

	blk_setup(BE_RAW);
	q = sync_queue(0, 16, false, false);
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 2);
	d = rq_buf(&r, 4096, true);
	rq_status(&r);
	head = drv_post(q, &r, false);
	/* Submitted to the ring, not run: still in flight. */
	ck_assert_uint_eq(virtio_blk_process(blk, 0, &ctx), 1);
	ck_assert_uint_eq(virtio_blk_inflight(blk, 0), 1);
	vdrv_publish(q, head);
	virtio_blk_process(blk, 0, &ctx);
	ck_assert(virtio_get_status(vd) & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_ge(atomic_load(&tt.config_irqs), 1);
	/* The first one still completes, once. */
	while (virtio_blk_inflight(blk, 0)) {
		int n = aio_run_once(&ctx, 1000);

		ck_assert_int_ge(n, 0);
		idle = n ? 0 : idle + 1;
		ck_assert(idle < 10);
	}
	expect_used(q, head, 4097);
	expect_no_used(q);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	check_pattern(hva(d), 2 * 512, 4096);
	/* The queue is dead until a reset: new requests are ignored. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	rq_status(&r);
	drv_post(q, &r, false);
	ck_assert_uint_eq(virtio_blk_process(blk, 0, &ctx), 0);
	expect_no_used(q);
	blk_teardown();
}
END_TEST

/* A corrupt avail index: NEEDS_RESET, nothing used. */
START_TEST(t_blk_broken_ring)
{
	struct vdrv *q;

	blk_setup(BE_NULL);
	q = sync_queue(0, 16, false, false);
	q->avail->idx = 17;
	ck_assert_uint_eq(virtio_blk_process(blk, 0, &ctx), 0);
	ck_assert(virtio_get_status(vd) & VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(q->used->idx, 0);
	ck_assert_uint_eq(atomic_load(&tt.queue_irqs[0]), 0);
	blk_teardown();
}
END_TEST

/* Null backend: reads are zeros, writes vanish. */
START_TEST(t_blk_null)
{
	struct vdrv *q;
	struct rq r;
	uint64_t d;

	blk_setup(BE_NULL);
	q = sync_queue(1, 64, false, false);
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 5);
	d = rq_buf(&r, 1024, true);
	rq_status(&r);
	serve(q, &r, false, 1025);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 1024; i++)
		ck_assert_uint_eq(((uint8_t *)hva(d))[i], 0);
	ck_assert_uint_eq(virtio_blk_process(blk, 0, &ctx), 0); /* queue 0 was never enabled */
	ck_assert_uint_eq(virtio_blk_process(blk, 7, &ctx), 0); /* no such queue */
	blk_teardown();
}
END_TEST

/*
 * Device-writable buffers on the queue's own rings (fuzz_virtio_blk found the
 * status byte of a failing request landing in a published used entry): the
 * chain is refused with used length 0 and nothing is written; the queue goes on.
 */
START_TEST(t_blk_write_over_rings)
{
	struct vdrv *q;
	struct rq r;
	uint16_t a;

	blk_setup(BE_NULL);
	q = sync_queue(0, 16, false, false);
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	rq_buf(&r, 512, true);
	rq_status(&r);
	a = serve(q, &r, false, 513);
	/* Out of range (IOERR), its status byte on used->ring[0].id. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, DISK_SIZE);
	rq_add(&r, q->used_gpa, 8, true);
	serve(q, &r, false, 0);
	ck_assert_uint_eq(q->used->ring[0].id, a);
	ck_assert_uint_eq(q->used->ring[0].len, 513);
	/* A read whose data would land on the available ring. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	rq_add(&r, q->avail_gpa, 512, true);
	rq_status(&r);
	serve(q, &r, false, 0);
	ck_assert_uint_eq(status_of(&r), SENTINEL);
	ck_assert_uint_eq(q->avail->idx, q->avail_idx);
	ck_assert(!(virtio_get_status(vd) & VIRTIO_CONFIG_S_NEEDS_RESET));
	/* And a good one after them. */
	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 1);
	rq_buf(&r, 512, true);
	rq_status(&r);
	a = serve(q, &r, false, 513);
	ck_assert_uint_eq(status_of(&r), VIRTIO_BLK_S_OK);
	blk_teardown();
}
END_TEST

static unsigned int irqs(unsigned int qi)
{
	return atomic_load(&tt.queue_irqs[qi]);
}

/* Post @n reads on the null backend and serve them in one pass. */
static void batch(struct vdrv *q, unsigned int n)
{
	struct rq r;

	for (unsigned int i = 0; i < n; i++) {
		rq_init(&r);
		rq_hdr(&r, VIRTIO_BLK_T_IN, i);
		rq_buf(&r, 512, true);
		rq_status(&r);
		drv_post(q, &r, false);
	}
	ck_assert_uint_eq(virtio_blk_process(blk, 0, &ctx), n);
	for (unsigned int i = 0; i < n; i++) {
		uint32_t id, len;

		ck_assert(vdrv_used(q, &id, &len));
		ck_assert_uint_eq(len, 513);
	}
}

START_TEST(t_blk_event_idx)
{
	struct vdrv *q;

	blk_setup(BE_NULL);
	q = sync_queue(0, 16, true, false);
	/* The first completion always interrupts. */
	batch(q, 1);
	ck_assert_uint_eq(irqs(0), 1);
	/* used_event = 2: not for used idx 2, then for 3. */
	*vdrv_used_event(q) = 2;
	batch(q, 1);
	ck_assert_uint_eq(irqs(0), 1);
	batch(q, 1);
	ck_assert_uint_eq(irqs(0), 2);
	/* A batch that crosses used_event: one interrupt. */
	*vdrv_used_event(q) = 4;
	batch(q, 3);
	ck_assert_uint_eq(irqs(0), 3);
	/* Far ahead: none. */
	*vdrv_used_event(q) = 100;
	batch(q, 2);
	batch(q, 2);
	ck_assert_uint_eq(irqs(0), 3);
	/* Already passed (the driver is behind): none either until it catches up. */
	*vdrv_used_event(q) = 9;
	batch(q, 1);
	ck_assert_uint_eq(irqs(0), 3);
	*vdrv_used_event(q) = 11;
	batch(q, 1);
	ck_assert_uint_eq(irqs(0), 4);
	/* The device asks for kicks at its last_avail once idle. */
	ck_assert_uint_eq(vdrv_avail_event(q), q->avail_idx);
	/* NO_INTERRUPT means nothing with EVENT_IDX. */
	q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	*vdrv_used_event(q) = q->used->idx;
	batch(q, 1);
	ck_assert_uint_eq(irqs(0), 5);
	blk_teardown();
}
END_TEST

START_TEST(t_blk_no_interrupt_flag)
{
	struct vdrv *q;

	blk_setup(BE_NULL);
	q = sync_queue(0, 16, false, false);
	q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	batch(q, 2);
	ck_assert_uint_eq(irqs(0), 0);
	q->avail->flags = 0;
	batch(q, 1);
	ck_assert_uint_eq(irqs(0), 1);
	batch(q, 3);
	ck_assert_uint_eq(irqs(0), 2);
	/* Nothing completed: no interrupt. */
	ck_assert_uint_eq(virtio_blk_process(blk, 0, &ctx), 0);
	ck_assert_uint_eq(irqs(0), 2);
	blk_teardown();
}
END_TEST

/* --- the I/O threads ---------------------------------------------------------------------- */

#define TQ    2
#define TSIZE 64

/* Negotiate @f and start the device with TQ queues of TSIZE. */
static void drv_start(uint64_t f)
{
	ck_assert_uint_eq(vdrv_negotiate(vd, f), VDRV_S_FEAT);
	for (unsigned int i = 0; i < TQ; i++) {
		drv_init(&drv[i], i, TSIZE);
		vdrv_place(vd, i, &drv[i]);
	}
	virtio_set_status(vd, VDRV_S_LIVE);
	ck_assert_uint_eq(virtio_get_status(vd), VDRV_S_LIVE);
}

static void kick(unsigned int qi)
{
	ck_assert(vdrv_kick(vd, qi));
}

/* Wait on the interrupt eventfd until queue @qi has @n completions; false on timeout. */
static bool wait_used(unsigned int qi, uint16_t n, int timeout_ms)
{
	struct pollfd p = { .fd = tt.efd, .events = POLLIN };
	uint64_t v;

	while (vdrv_used_idx(&drv[qi]) != n) {
		int r = poll(&p, 1, timeout_ms);

		if (r <= 0)
			return false;
		if (read(tt.efd, &v, sizeof(v)) < 0)
			(void)0;
	}
	return true;
}

struct treq {
	struct rq r;
	uint64_t data;
	uint16_t head;
};

static void post_read(struct vdrv *q, struct treq *t, uint64_t sector, uint32_t len, bool ind)
{
	rq_init(&t->r);
	rq_hdr(&t->r, VIRTIO_BLK_T_IN, sector);
	t->data = rq_buf(&t->r, len, true);
	rq_status(&t->r);
	t->head = drv_post(q, &t->r, ind);
}

static void threads_setup(void)
{
	blk_setup_n(BE_RAW, TQ, TQ);
	tt.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(tt.efd, 0);
}

static void threads_teardown(void)
{
	virtio_set_status(vd, 0);
	close(tt.efd);
	tt.efd = -1;
	blk_teardown();
}

/* --- a guest that never lets the queue go idle ------------------------------------------ */

/*
 * A backend that completes each request at once and, as a guest vCPU spinning
 * on the used ring would, makes the same chain available again right away: the
 * ring is never empty while @on.
 */
struct busy_backend {
	struct blk_backend be;
	struct vdrv *q;
	uint16_t head;
	atomic_bool on;
	atomic_uint served;
};

static struct busy_backend busy;

static int busy_submit(struct blk_backend *be, struct aio_ctx *c, struct blk_req *req)
{
	struct busy_backend *b = (struct busy_backend *)be;

	(void)c;
	req->done(req, 0);
	atomic_fetch_add(&b->served, 1);
	if (atomic_load(&b->on))
		vdrv_publish(b->q, b->head);
	return 0;
}

static void busy_close(struct blk_backend *be)
{
	(void)be; /* static */
}

static const struct blk_backend_ops busy_ops = { .name = "busy",
						 .submit = busy_submit,
						 .close = busy_close };

static void busy_setup(unsigned int poll_us)
{
	struct virtio_blk_opts bo = { .name = "vdt", .queues = 1, .threads = 1, .poll_us = poll_us };

	memset(&busy, 0, sizeof(busy));
	busy.be.ops = &busy_ops;
	busy.be.size = DISK_SIZE;
	busy.be.block_size = 512;
	ck_assert_int_eq(virtio_blk_create(&blk, &busy.be, &mem, &bo), 0);
	vd = virtio_blk_virtio(blk);
	tt_attach(vd);
	ck_assert_int_eq(aio_init(&ctx, 64), 0);
	ctx_up = true;
}

/* One read on @q that the busy backend keeps re-posting. */
static void busy_post(struct vdrv *q)
{
	static struct rq r;

	rq_init(&r);
	rq_hdr(&r, VIRTIO_BLK_T_IN, 0);
	rq_buf(&r, 512, true);
	rq_status(&r);
	busy.q = q;
	busy.head = drv_post(q, &r, false);
	atomic_store(&busy.on, true);
}

static unsigned int processed;

static void process_q0(void *arg)
{
	(void)arg;
	processed = virtio_blk_process(blk, 0, &ctx);
}

/* One pass serves at most a ring's worth, then asks for another pass (its own kick). */
START_TEST(t_blk_serve_bounded)
{
	struct vdrv *q;
	uint32_t id, len;

	busy_setup(0);
	q = sync_queue(0, 16, false, false);
	busy_post(q);
	ck_assert_msg(returns_within(process_q0, NULL, 5000),
		      "one pass never returns while the guest keeps the ring busy");
	ck_assert_uint_eq(processed, 16);
	ck_assert(vdrv_kick_pending(vd, 0));
	/* The guest stops: the next pass takes what is left and is done. */
	atomic_store(&busy.on, false);
	ck_assert_uint_eq(virtio_blk_process(blk, 0, &ctx), 1);
	ck_assert(!vdrv_kick_pending(vd, 0));
	ck_assert_uint_eq(atomic_load(&busy.served), 17);
	for (unsigned int i = 0; i < 17; i++) {
		ck_assert(vdrv_used(q, &id, &len));
		ck_assert_uint_eq(id, busy.head);
		ck_assert_uint_eq(len, 513);
	}
	ck_assert(!vdrv_used(q, &id, &len));
	blk_teardown();
}
END_TEST

static void reset_vd(void *arg)
{
	(void)arg;
	virtio_set_status(vd, 0);
}

/*
 * The I/O thread keeps serving such a guest, and still stops when told to; _i 1:
 * while it polls the ring (where it used to take the stop event and then sleep
 * for ever).
 */
START_TEST(t_blk_stop_busy)
{
	unsigned int n, want;

	busy_setup(_i ? 1000 : 0);
	/* The polling race is narrow: try it a good many times. */
	for (unsigned int round = 0; round < (_i ? 30u : 2u); round++) {
		ck_assert_uint_eq(vdrv_negotiate(vd, offered(vd)), VDRV_S_FEAT);
		drv_init(&drv[0], 0, 16);
		vdrv_place(vd, 0, &drv[0]);
		virtio_set_status(vd, VDRV_S_LIVE);
		ck_assert_uint_eq(virtio_get_status(vd), VDRV_S_LIVE);
		busy_post(&drv[0]);
		want = atomic_load(&busy.served) + 200;
		kick(0);
		for (int i = 0; i < 5000 && atomic_load(&busy.served) < want; i++)
			usleep(1000);
		ck_assert_uint_ge(atomic_load(&busy.served), want);
		ck_assert_msg(returns_within(reset_vd, NULL, 5000),
			      "round %u: reset blocked by a guest that keeps its queue busy",
			      round);
		ck_assert(!vd->started);
		n = atomic_load(&busy.served);
		usleep(2000);
		ck_assert_uint_eq(atomic_load(&busy.served), n);
		atomic_store(&busy.on, false);
		buf_next = BUF_GPA;
	}
	blk_teardown();
}
END_TEST

/* Requests on both queues, kicked through the eventfds, served by two threads. */
START_TEST(t_blk_threads)
{
	static struct treq w[16], rd[TQ][16];
	uint8_t want[512];
	uint64_t f;

	threads_setup();
	f = offered(vd);
	if (!_i)
		f &= ~(1ULL << VIRTIO_RING_F_EVENT_IDX);
	drv_start(f);
	for (unsigned int k = 0; k < 16; k++) {
		/* Queue 0 writes sectors 0..15, queue 1 reads 100..115. */
		rq_init(&w[k].r);
		rq_hdr(&w[k].r, VIRTIO_BLK_T_OUT, k);
		w[k].data = rq_buf(&w[k].r, 512, false);
		memset(hva(w[k].data), k + 1, 512);
		rq_status(&w[k].r);
		w[k].head = drv_post(&drv[0], &w[k].r, false);
		post_read(&drv[1], &rd[1][k], 100 + k, 512, false);
	}
	/* With EVENT_IDX: interrupt only for the last one. */
	*vdrv_used_event(&drv[0]) = 15;
	*vdrv_used_event(&drv[1]) = 15;
	kick(0);
	kick(1);
	for (unsigned int i = 0; i < TQ; i++)
		ck_assert_msg(wait_used(i, 16, 5000), "queue %u: %u of 16 completed", i,
			      vdrv_used_idx(&drv[i]));
	ck_assert_uint_ge(irqs(0), 1);
	ck_assert_uint_ge(irqs(1), 1);
	for (unsigned int k = 0; k < 16; k++) {
		uint32_t id, len;

		ck_assert(vdrv_used(&drv[0], &id, &len));
		ck_assert_uint_eq(len, 1);
		ck_assert(vdrv_used(&drv[1], &id, &len));
		ck_assert_uint_eq(len, 513);
		ck_assert_uint_eq(status_of(&w[k].r), VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(status_of(&rd[1][k].r), VIRTIO_BLK_S_OK);
		check_pattern(hva(rd[1][k].data), (100 + k) * 512, 512);
		memset(want, k + 1, 512);
		check_disk(k * 512, want, 512);
	}
	ck_assert_uint_eq(virtio_blk_inflight(blk, 0), 0);
	ck_assert_uint_eq(virtio_blk_inflight(blk, 1), 0);

	/* Same queues, a second round: the device must re-check after its re-enable. */
	for (unsigned int k = 0; k < 8; k++)
		post_read(&drv[0], &rd[0][k], 200 + k, 1024, false);
	*vdrv_used_event(&drv[0]) = 16 + 7;
	kick(0);
	ck_assert(wait_used(0, 24, 5000));
	for (unsigned int k = 0; k < 8; k++) {
		ck_assert_uint_eq(status_of(&rd[0][k].r), VIRTIO_BLK_S_OK);
		check_pattern(hva(rd[0][k].data), (200 + k) * 512, 1024);
	}
	threads_teardown();
}
END_TEST

/* The polling window's rule: grow from 4 us by 2x up to the maximum, halve to 0. */
START_TEST(t_poll_adjust)
{
	const uint64_t max = 32000;

	ck_assert_uint_eq(vio_poll_adjust(0, max, 10000), 4000); /* a window would have caught it */
	ck_assert_uint_eq(vio_poll_adjust(4000, max, 10000), 8000);
	ck_assert_uint_eq(vio_poll_adjust(16000, max, 20000), max);
	ck_assert_uint_eq(vio_poll_adjust(max, max, 30000), max); /* caught: unchanged */
	ck_assert_uint_eq(vio_poll_adjust(8000, max, 2000), 8000);
	ck_assert_uint_eq(vio_poll_adjust(max, max, 1000000), 16000); /* no window would have */
	ck_assert_uint_eq(vio_poll_adjust(4000, max, 1000000), 0);
	ck_assert_uint_eq(vio_poll_adjust(0, max, 1000000), 0);
	ck_assert_uint_eq(vio_poll_adjust(0, 1000, 500), 1000); /* a maximum below the start */
	ck_assert_uint_eq(vio_poll_adjust(0, 0, 5), 0);		/* polling off */
}
END_TEST

/*
 * The window of a running I/O thread: requests 150 ms apart (longer than the
 * 100 ms maximum) shrink it to nothing; requests back to back grow it again.
 * (A maximum that long: the test stays right on a loaded machine, where the
 * driver side here may be off the CPU for milliseconds.)
 */
START_TEST(t_blk_poll_adapt)
{
	static struct treq r[80];
	struct virtio_blk_stats st;
	unsigned int n = 0, k;
	bool grew = false;

	setup_poll_us = 100000;
	blk_setup_n(BE_NULL, TQ, 1);
	setup_poll_us = 0;
	tt.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(tt.efd, 0);
	drv_start(offered(vd));
	for (k = 0; k < 18; k++, n++) {
		usleep(150000);
		post_read(&drv[0], &r[n], k, 512, false);
		*vdrv_used_event(&drv[0]) = n; /* EVENT_IDX: an interrupt for this one */
		kick(0);
		ck_assert_msg(wait_used(0, n + 1, 5000), "request %u: used %u", n,
			      vdrv_used_idx(&drv[0]));
	}
	virtio_blk_get_stats(blk, &st);
	ck_assert_msg(st.poll_ns == 0, "window %llu ns after idle spells of 150 ms",
		      (unsigned long long)st.poll_ns);
	for (k = 0; k < 60 && !grew; k++, n++) {
		post_read(&drv[0], &r[n % 80], k, 512, false);
		*vdrv_used_event(&drv[0]) = n;
		kick(0);
		ck_assert(wait_used(0, n + 1, 5000));
		virtio_blk_get_stats(blk, &st);
		grew = st.poll_ns > 0;
	}
	ck_assert_msg(grew, "the window never grew with requests back to back");
	ck_assert_uint_le(st.poll_ns, 100000000);
	threads_teardown();
}
END_TEST

/*
 * Reset with requests in flight: the threads finish every request they took
 * (status written, used entry published) before the reset returns, and leave
 * the rest alone.
 */
START_TEST(t_blk_reset_inflight)
{
	static struct treq t[TQ][TSIZE];
	unsigned int done = 0;

	threads_setup();
	drv_start(offered(vd));
	for (unsigned int i = 0; i < TQ; i++)
		for (unsigned int k = 0; k < TSIZE; k++)
			post_read(&drv[i], &t[i][k], (k * 16) % (DISK_SIZE / 512 - 16), 8192, true);
	kick(0);
	kick(1);
	virtio_set_status(vd, 0);
	ck_assert_uint_eq(virtio_get_status(vd), 0);
	for (unsigned int i = 0; i < TQ; i++) {
		uint16_t n = vdrv_used_idx(&drv[i]);

		ck_assert_uint_le(n, TSIZE);
		ck_assert_uint_eq(virtio_blk_inflight(blk, i), 0);
		for (unsigned int k = 0; k < TSIZE; k++) {
			/* Every completed head is done; nothing else was touched. */
			bool used = false;

			for (unsigned int j = 0; j < n; j++)
				used |= drv[i].used->ring[j].id == t[i][k].head;
			if (used) {
				ck_assert_uint_eq(status_of(&t[i][k].r), VIRTIO_BLK_S_OK);
				check_pattern(hva(t[i][k].data),
					      ((k * 16) % (DISK_SIZE / 512 - 16)) * 512, 8192);
			} else {
				ck_assert_uint_eq(status_of(&t[i][k].r), SENTINEL);
			}
		}
		done += n;
		ck_assert(!vd->q[i].enabled);
	}
	/* A kick after the reset goes nowhere. */
	kick(0);
	usleep(10000);
	ck_assert_uint_eq(vdrv_used_idx(&drv[0]) + vdrv_used_idx(&drv[1]), done);
	threads_teardown();
}
END_TEST

/* Start, reset, start again: the second life must serve kicks and stop cleanly. */
START_TEST(t_blk_restart)
{
	static struct treq t;

	threads_setup();
	drv_start(offered(vd) & ~(1ULL << VIRTIO_RING_F_EVENT_IDX));
	post_read(&drv[0], &t, 1, 512, false);
	kick(0);
	ck_assert(wait_used(0, 1, 5000));
	virtio_set_status(vd, 0);

	drv_start(offered(vd) & ~(1ULL << VIRTIO_RING_F_EVENT_IDX));
	post_read(&drv[1], &t, 2, 512, false);
	kick(1);
	/* On failure the threads are left running: stopping them would hang too. */
	ck_assert_msg(wait_used(1, 1, 3000),
		      "restarted device does not serve kicks (I/O thread polls not re-armed)");
	ck_assert_uint_eq(status_of(&t.r), VIRTIO_BLK_S_OK);
	check_pattern(hva(t.data), 2 * 512, 512);
	threads_teardown();
}
END_TEST

/* --- rate limits ---------------------------------------------------------------------- */

/* Wait until the queues have @n completions in all; false after @ms without one. */
static bool wait_total(uint16_t n, int ms)
{
	struct pollfd p = { .fd = tt.efd, .events = POLLIN };
	uint64_t v;

	while (vdrv_used_idx(&drv[0]) + vdrv_used_idx(&drv[1]) < n) {
		if (poll(&p, 1, ms) <= 0)
			return false;
		if (read(tt.efd, &v, sizeof(v)) < 0)
			(void)0;
	}
	return true;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

/*
 * 40 reads over two queues and threads, beyond the burst: every one completes,
 * none sooner than the limit lets it (a lower bound only: a slow machine is
 * slower), and the threads sleep while they wait (no core spins). _i 0: iops;
 * 1: iops with the threads polling; 2: bandwidth.
 */
START_TEST(t_blk_ratelimit)
{
	static const struct rl_config lim[3] = {
		{ .iops = 50, .iops_burst = 5 },
		{ .iops = 50, .iops_burst = 5 },
		{ .bandwidth = 64 << 10, .bandwidth_burst = 4096 },
	};
	static struct treq t[TQ][20];
	const uint32_t len = _i == 2 ? 2048 : 512;
	uint64_t start, took, cpu, want;
	struct virtio_blk_stats st;

	setup_rl = &lim[_i];
	setup_poll_us = _i == 1 ? 1000 : 0;
	threads_setup();
	setup_rl = NULL;
	setup_poll_us = 0;
	drv_start(offered(vd) & ~(1ULL << VIRTIO_RING_F_EVENT_IDX));
	for (unsigned int i = 0; i < TQ; i++)
		for (unsigned int k = 0; k < 20; k++)
			post_read(&drv[i], &t[i][k], i * 200 + k * 4, len, false);
	start = now_ns();
	cpu = cpu_ns();
	kick(0);
	kick(1);
	ck_assert_msg(wait_total(40, 5000), "%u of 40 completed",
		      vdrv_used_idx(&drv[0]) + vdrv_used_idx(&drv[1]));
	took = now_ns() - start;
	cpu = cpu_ns() - cpu;
	/* iops: (40 - 5) / 50 s; bandwidth: all but the burst and the last request. */
	want = _i == 2 ? (40ULL * len - 4096 - len) * 1000000000ULL / (64 << 10)
		       : 35ULL * 1000000000ULL / 50;
	ck_assert_msg(took >= want * 8 / 10, "40 requests in %llu ms, the limit implies %llu ms",
		      (unsigned long long)(took / 1000000), (unsigned long long)(want / 1000000));
	/* A thread spinning on the limit would use about all of that time. */
	ck_assert_msg(cpu < took / 2, "%llu ms of CPU in %llu ms",
		      (unsigned long long)(cpu / 1000000), (unsigned long long)(took / 1000000));
	for (unsigned int i = 0; i < TQ; i++)
		for (unsigned int k = 0; k < 20; k++) {
			ck_assert_uint_eq(status_of(&t[i][k].r), VIRTIO_BLK_S_OK);
			check_pattern(hva(t[i][k].data), (i * 200 + k * 4) * 512, len);
		}
	virtio_blk_get_stats(blk, &st);
	ck_assert_uint_eq(st.requests, 40);
	ck_assert_uint_eq(st.errors, 0);
	threads_teardown();
}
END_TEST

/*
 * A queue waiting on its limit (1 op/s, the rings full) does not hold up a
 * reset: the threads answer what they took and leave the rest in the ring.
 * Started again, the device serves again (a new timer).
 */
START_TEST(t_blk_ratelimit_reset)
{
	static const struct rl_config lim = { .iops = 1, .iops_burst = 1 };
	static struct treq t[TQ][TSIZE], again;
	uint64_t start;
	uint16_t n;

	setup_rl = &lim;
	threads_setup();
	setup_rl = NULL;
	drv_start(offered(vd) & ~(1ULL << VIRTIO_RING_F_EVENT_IDX));
	for (unsigned int i = 0; i < TQ; i++)
		for (unsigned int k = 0; k < TSIZE; k++)
			post_read(&drv[i], &t[i][k], k, 512, true);
	kick(0);
	kick(1);
	ck_assert(wait_total(1, 5000));
	usleep(50000);
	start = now_ns();
	ck_assert_msg(returns_within(reset_vd, NULL, 1000),
		      "reset blocked by a queue waiting on its rate limit");
	ck_assert_uint_lt(now_ns() - start, 1000000000ULL);
	ck_assert(!vd->started);
	n = vdrv_used_idx(&drv[0]) + vdrv_used_idx(&drv[1]);
	ck_assert_uint_lt(n, 4);
	for (unsigned int i = 0; i < TQ; i++) {
		ck_assert_uint_eq(virtio_blk_inflight(blk, i), 0);
		for (unsigned int k = 0; k < TSIZE; k++) {
			bool used = false;

			for (unsigned int j = 0; j < vdrv_used_idx(&drv[i]); j++)
				used |= drv[i].used->ring[j].id == t[i][k].head;
			ck_assert_uint_eq(status_of(&t[i][k].r),
					  (used ? VIRTIO_BLK_S_OK : SENTINEL));
		}
	}
	/* A second life under the same limit: its request waits its turn, then completes. */
	buf_next = BUF_GPA;
	drv_start(offered(vd) & ~(1ULL << VIRTIO_RING_F_EVENT_IDX));
	post_read(&drv[1], &again, 3, 512, false);
	kick(1);
	ck_assert_msg(wait_used(1, 1, 3000), "the restarted device does not serve");
	ck_assert_uint_eq(status_of(&again.r), VIRTIO_BLK_S_OK);
	threads_teardown();
}
END_TEST

/* The device's own part of a snapshot names the disk the guest saw. */
START_TEST(t_blk_save_load)
{
	static char buf[16384];
	struct blk_open_opts o = { .format = BLK_FMT_NULL };
	struct virtio_blk_opts bo = { .name = "vdt", .queues = 2, .threads = 1, .serial = SERIAL };
	const uint64_t sizes[] = { DISK_SIZE, DISK_SIZE * 2, DISK_SIZE };
	const char *serials[] = { SERIAL, SERIAL, "other" };
	const int expect[] = { 0, -ESTALE, -ESTALE };
	struct blk_backend *be2;
	struct virtio_blk *b2;
	char err[256];
	int node;

	blk_setup(BE_NULL);
	ck_assert_int_eq(fdt_create_empty_tree(buf, sizeof(buf)), 0);
	node = fdt_add_subnode(buf, 0, "blk");
	ck_assert_int_ge(node, 0);
	ck_assert_int_eq(virtio_save(vd, buf, node), 0);
	ck_assert_int_ge(fdt_subnode_offset(buf, node, "device"), 0);
	for (unsigned int i = 0; i < 3; i++) {
		o.null_size = sizes[i];
		bo.serial = serials[i];
		ck_assert_int_eq(blk_open(&be2, NULL, &o, err, sizeof(err)), 0);
		ck_assert_int_eq(virtio_blk_create(&b2, be2, &mem, &bo), 0);
		ck_assert_int_eq(virtio_load(virtio_blk_virtio(b2), buf, node), expect[i]);
		virtio_blk_destroy(b2);
	}
	/* No device node at all: refused too. */
	ck_assert_int_eq(fdt_del_node(buf, fdt_subnode_offset(buf, node, "device")), 0);
	o.null_size = DISK_SIZE;
	bo.serial = SERIAL;
	ck_assert_int_eq(blk_open(&be2, NULL, &o, err, sizeof(err)), 0);
	ck_assert_int_eq(virtio_blk_create(&b2, be2, &mem, &bo), 0);
	ck_assert_int_eq(virtio_load(virtio_blk_virtio(b2), buf, node), -EINVAL);
	virtio_blk_destroy(b2);
	blk_teardown();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_blk");
	TCase *core = tcase_create("core");
	TCase *sync = tcase_create("blk");
	TCase *thr = tcase_create("threads");
	TCase *snap = tcase_create("snapshot");
	TCase *restart = tcase_create("restart");

	log_verbosity = -1; /* the malformed requests warn by design */

	tcase_add_checked_fixture(core, ram_setup, ram_teardown);
	tcase_add_test(core, t_core_features);
	tcase_add_loop_test(core, t_core_features_refused, 0, 3);
	tcase_add_test(core, t_core_driver_ok_bad);
	tcase_add_test(core, t_core_reset);
	tcase_add_test(core, t_core_status_clear);
	tcase_add_test(core, t_core_queue_frozen);
	tcase_add_test(core, t_poll_adjust);
	suite_add_tcase(s, core);

	/* Own case: run the others alone with CK_RUN_CASE when this one aborts (UBSan). */
	tcase_add_checked_fixture(snap, ram_setup, ram_teardown);
	tcase_add_test(snap, t_core_save_load);
	tcase_add_test(snap, t_core_save_errors);
	tcase_add_test(snap, t_core_load_bad_status);
	tcase_add_test(snap, t_blk_save_load);
	suite_add_tcase(s, snap);

	tcase_add_checked_fixture(sync, ram_setup, ram_teardown);
	tcase_set_timeout(sync, 30);
	tcase_add_loop_test(sync, t_blk_config, BE_RAW, BE_NULL + 1);
	tcase_add_loop_test(sync, t_blk_read, 0, 2);
	tcase_add_loop_test(sync, t_blk_write, 0, 2);
	tcase_add_loop_test(sync, t_blk_flush, 0, 2);
	tcase_add_test(sync, t_blk_get_id);
	tcase_add_test(sync, t_blk_discard_write_zeroes);
	tcase_add_test(sync, t_blk_readonly);
	tcase_add_loop_test(sync, t_blk_errors, 0, 2);
	tcase_add_test(sync, t_blk_split_header);
	tcase_add_test(sync, t_blk_no_status);
	tcase_add_test(sync, t_blk_malformed);
	tcase_add_test(sync, t_blk_too_many_segments);
	tcase_add_test(sync, t_blk_head_reuse);
	tcase_add_test(sync, t_blk_broken_ring);
	tcase_add_test(sync, t_blk_null);
	tcase_add_test(sync, t_blk_event_idx);
	tcase_add_test(sync, t_blk_no_interrupt_flag);
	tcase_add_test(sync, t_blk_write_over_rings);
	tcase_add_test(sync, t_blk_serve_bounded);
	suite_add_tcase(s, sync);

	tcase_add_checked_fixture(thr, ram_setup, ram_teardown);
	tcase_set_timeout(thr, 30);
	tcase_add_loop_test(thr, t_blk_threads, 0, 2);
	tcase_add_test(thr, t_blk_reset_inflight);
	tcase_add_loop_test(thr, t_blk_stop_busy, 0, 2);
	tcase_add_loop_test(thr, t_blk_ratelimit, 0, 3);
	tcase_add_test(thr, t_blk_ratelimit_reset);
	tcase_add_test(thr, t_blk_poll_adapt);
	suite_add_tcase(s, thr);

	/* Last: when it fails without fork it leaves threads behind. */
	tcase_add_checked_fixture(restart, ram_setup, ram_teardown);
	tcase_set_timeout(restart, 30);
	tcase_add_test(restart, t_blk_restart);
	suite_add_tcase(s, restart);
	return unit_run(s);
}
