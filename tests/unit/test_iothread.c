// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The shared I/O-thread engine (src/virtio/iothread.c) with a fake device whose requests
 * complete at once (as qcow2's do): every completion gets its interrupt, also the one
 * answered when polling ends and the thread is asked to stop (CI found a restored
 * snapshot whose guest waited forever for one).
 */
#include <check.h>
#include <linux/virtio_config.h>
#include <stdatomic.h>

#include "mm/guest_mem.h"
#include "virtio/iothread.h"
#include "virtio/virtio.h"
#include "unit.h"
#include "vring_drv.h"

#define RAM_SIZE 0x400000ULL
#define RING_GPA 0x100000ULL
#define BUF_GPA	 0x200000ULL
#define QSIZE	 16

struct fake {
	struct virtio_dev vdev;
	struct vio_queue vio;
	struct vio_engine engine;
	struct iovec iov[QSIZE];
	atomic_uint pushed, notified;
	bool stop_on_first; /* the first request posts another and asks the thread to stop */
};

static struct guest_mem mem;
static struct vdrv drv;
static struct fake fk;

static unsigned int drain(struct vio_queue *v, struct aio_ctx *ctx, unsigned int budget)
{
	struct vq_elem e = { .iov = fk.iov, .max = QSIZE };
	unsigned int taken = 0;

	(void)ctx;
	while (taken < budget && vq_pop(&v->q->vq, &e) == VQ_OK) {
		taken++;
		vq_push(&v->q->vq, e.head, 0);
		v->need_signal = true;
		if (atomic_fetch_add(&fk.pushed, 1) == 0 && fk.stop_on_first) {
			/* A buffer that arrives as polling ends, then the stop (a snapshot). */
			vdrv_post_one(&drv, BUF_GPA + 0x1000, 64, true);
			atomic_store(&v->thread->stopping, true);
			break; /* it is served by a later pass, not this one */
		}
	}
	return taken;
}

static const struct vio_engine_ops fake_engine_ops = { .drain = drain };

static int fake_start(struct virtio_dev *d)
{
	(void)d;
	return vio_engine_start(&fk.engine);
}

static void fake_stop(struct virtio_dev *d)
{
	(void)d;
	vio_engine_stop(&fk.engine);
}

static const struct virtio_dev_ops fake_ops = { .start = fake_start, .stop = fake_stop };

static void notify_queue(struct virtio_dev *d, unsigned int q)
{
	(void)d;
	(void)q;
	atomic_fetch_add(&fk.notified, 1);
}

static const struct virtio_transport_ops counting_tops = { .notify_queue = notify_queue };

/* The engine polls for a second after each piece of work: buffers posted without a kick
 * are found by polling. */
static void start(bool stop_on_first)
{
	struct vio_engine_opts eo = {
		.name = "fake", .threads = 1, .poll_us = 1000000, .ring_entries = 8
	};

	ck_assert_ptr_nonnull(vdrv_ram_map(&mem, RAM_SIZE));
	fk = (struct fake){ .stop_on_first = stop_on_first };
	ck_assert_int_eq(virtio_dev_init(&fk.vdev, "fake", 1, &fake_ops, &fk, &mem, 1, QSIZE, 0, 0),
			 0);
	ck_assert_int_eq(vio_engine_init(&fk.engine, &fake_engine_ops, &fk, &fk.vio, sizeof(fk.vio),
					 fk.vdev.q, 1, &eo),
			 0);
	fk.vdev.tops = &counting_tops;
	vdrv_negotiate(&fk.vdev, 1ULL << VIRTIO_F_VERSION_1);
	ck_assert_int_eq(
	    vdrv_init(&drv, &mem, QSIZE, RING_GPA, RING_GPA + 0x4000, RING_GPA + 0x6000), 0);
	ck_assert_int_eq(vdrv_set(&fk.vdev, 0, &drv), 0);
	virtio_set_status(&fk.vdev, VDRV_S_LIVE);
	ck_assert(fk.vdev.started);
}

static void finish(void)
{
	virtio_dev_exit(&fk.vdev);
	vio_engine_exit(&fk.engine);
	vdrv_ram_unmap(&mem);
}

/* Two requests answered: the second when polling had ended and the stop was asked for.
 * Both are signalled before the thread ends (before the fix: only the first). */
START_TEST(t_signal_before_stop)
{
	uint32_t id, len;

	start(true);
	vdrv_post_one(&drv, BUF_GPA, 64, true); /* no kick: polling finds it */
	ck_assert(vdrv_wait_used(&drv, &id, &len, 5000));
	ck_assert(vdrv_wait_used(&drv, &id, &len, 5000));
	virtio_set_status(&fk.vdev, 0); /* reset: the engine stops (its thread already did) */
	ck_assert_uint_eq(atomic_load(&fk.pushed), 2);
	ck_assert_uint_ge(atomic_load(&fk.notified), 2);
	finish();
}
END_TEST

/* The ordinary case: requests found by polling are each signalled while it runs on. */
START_TEST(t_signal_polled)
{
	uint32_t id, len;

	start(false);
	for (int i = 0; i < 4; i++) {
		vdrv_post_one(&drv, BUF_GPA + i * 0x1000, 64, true);
		ck_assert(vdrv_wait_used(&drv, &id, &len, 5000));
	}
	ck_assert_uint_ge(atomic_load(&fk.notified), 4);
	virtio_set_status(&fk.vdev, 0);
	finish();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("iothread");
	TCase *tc = tcase_create("iothread");

	tcase_add_test(tc, t_signal_before_stop);
	tcase_add_test(tc, t_signal_polled);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
