// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The virtio-fs device with the real FUSE server on a temporary directory,
 * driven by a tiny split-ring driver in fake guest RAM: configuration space
 * and shared-memory region, INIT and GETATTR on request queues, FORGET on the
 * high-priority queue (no reply), malformed chains (buffers in the DAX window,
 * which is not RAM; no room for a reply), and the I/O threads started by
 * DRIVER_OK, answering kicks, and stopped by a reset.
 */
#include <check.h>
#include <errno.h>
#include <linux/fuse.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/dax.h"
#include "fs/fuse_server.h"
#include "mm/guest_mem.h"
#include "ratelimit.h"
#include "util.h"
#include "virtio/fs.h"
#include "virtio/virtio.h"
#include "unit.h"
#include "vring_drv.h"

#define RAM_SIZE  0x400000ULL /* 4 MiB at GPA 0 */
#define RING_GPA  0x100000ULL /* queue i's rings at RING_GPA + i * RING_STEP */
#define RING_STEP 0x10000ULL
#define BUF_GPA	  0x200000ULL
#define WIN_GPA	  0x80000000ULL /* where a transport would put the DAX window: not RAM */
#define QSIZE	  64
#define WSIZE	  (4ULL << 20)

static struct guest_mem mem;
static uint8_t *ram;
static uint64_t buf_next;
static char dir[64];
static struct fuse_server *srv;
static struct dax_window *win;
static struct virtio_fs *fdev;
static struct virtio_dev *vd;
static atomic_uint irqs[4];

static void *hva(uint64_t gpa)
{
	void *p = gpa_to_hva(&mem, gpa, 1);

	ck_assert_ptr_nonnull(p);
	return p;
}

static uint64_t galloc(uint32_t len)
{
	uint64_t gpa = buf_next;

	buf_next = (buf_next + len + 15) & ~15ULL;
	ck_assert_uint_le(buf_next, RAM_SIZE);
	memset(hva(gpa), 0xee, len);
	return gpa;
}

static void notify_queue(struct virtio_dev *d, unsigned int q)
{
	(void)d;
	atomic_fetch_add(&irqs[q], 1);
}

static void notify_config(struct virtio_dev *d)
{
	(void)d;
}

static const struct virtio_transport_ops tops = { notify_queue, notify_config };

static void setup(void)
{
	struct fs_share_opts o = { 0 };
	struct virtio_fs_opts fo = { .name = "fs0", .tag = "testtag", .queues = 2 };

	ram = vdrv_ram_map(&mem, RAM_SIZE);
	ck_assert_ptr_nonnull(ram);
	buf_next = BUF_GPA;
	strcpy(dir, "/tmp/minivmm-vfs.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(dax_window_new(WSIZE, 0, &win), 0);
	o.path = dir;
	o.dax_window = WSIZE;
	ck_assert_int_eq(fuse_server_new(&o, &dax_window_ops, win, &srv), 0);
	ck_assert_int_eq(virtio_fs_create(&fdev, srv, win, &mem, &fo), 0);
	vd = virtio_fs_virtio(fdev);
	vd->tops = &tops;
	for (unsigned int i = 0; i < 4; i++)
		atomic_store(&irqs[i], 0);
}

static void teardown(void)
{
	virtio_fs_destroy(fdev);
	fuse_server_free(srv);
	dax_window_free(win);
	vdrv_ram_unmap(&mem);
	rmdir(dir);
}

/* --- the split-ring driver (tests/lib/vring_drv.h) ----------------------------------------- */

static struct vdrv drv[3];

/* Queue @qi's rings, placed in the device's registers. */
static void drv_init(unsigned int qi)
{
	uint64_t base = RING_GPA + qi * RING_STEP;

	ck_assert_int_eq(vdrv_init(&drv[qi], &mem, QSIZE, base, base + 0x4000, base + 0x6000), 0);
	vdrv_place(vd, qi, &drv[qi]);
}

/* Rings mapped without a transport: virtio_fs_process() serves them on this thread. */
static void map_queues(void)
{
	for (unsigned int i = 0; i < vd->nr_queues; i++) {
		drv_init(i);
		ck_assert_int_eq(vdrv_map(vd, i, &drv[i], false, false), 0);
	}
}

static uint16_t post(unsigned int qi, const struct vring_seg *s, unsigned int n)
{
	return vdrv_post(&drv[qi], s, n);
}

static bool used(unsigned int qi, uint32_t *id, uint32_t *len)
{
	return vdrv_used(&drv[qi], id, len);
}

/* A FUSE request: header + @arg; returns the gpa of a @outlen-byte reply buffer (0: none). */
static uint64_t request(unsigned int qi, uint32_t opcode, uint64_t unique, uint64_t nodeid,
			const void *arg, uint32_t arglen, uint32_t outlen, uint16_t *head)
{
	struct fuse_in_header h = {
		.len = sizeof(h) + arglen, .opcode = opcode, .unique = unique, .nodeid = nodeid
	};
	struct vring_seg s[3];
	unsigned int n = 0;
	uint64_t in = galloc(sizeof(h) + arglen), out = 0;

	memcpy(hva(in), &h, sizeof(h));
	if (arglen)
		memcpy((uint8_t *)hva(in) + sizeof(h), arg, arglen);
	s[n++] = (struct vring_seg){ in, sizeof(h) + arglen, false };
	if (outlen) {
		out = galloc(outlen);
		s[n++] = (struct vring_seg){ out, outlen, true };
	}
	*head = post(qi, s, n);
	return out;
}

static uint64_t send_init(unsigned int qi, uint16_t *head)
{
	struct fuse_init_in in = { .major = FUSE_KERNEL_VERSION,
				   .minor = FUSE_KERNEL_MINOR_VERSION,
				   .max_readahead = 65536 };

	return request(qi, FUSE_INIT, 1, 0, &in, sizeof(in),
		       sizeof(struct fuse_out_header) + sizeof(struct fuse_init_out), head);
}

/* The queues mapped for virtio_fs_process(), and the session's INIT on queue 1 answered. */
static void sync_init(void)
{
	uint32_t id, len;
	uint16_t head;

	map_queues();
	send_init(1, &head);
	virtio_fs_process(fdev, 1);
	ck_assert(used(1, &id, &len));
}

static void expect_reply(unsigned int qi, uint16_t head, uint64_t out, uint64_t unique,
			 int32_t error, uint32_t len)
{
	struct fuse_out_header oh;
	uint32_t id, l;

	ck_assert(used(qi, &id, &l));
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(l, len);
	memcpy(&oh, hva(out), sizeof(oh));
	ck_assert_uint_eq(oh.len, len);
	ck_assert_uint_eq(oh.unique, unique);
	ck_assert_int_eq(oh.error, error);
}

/* --- tests ------------------------------------------------------------------------------- */

START_TEST(test_config)
{
	struct virtio_fs *x;
	struct virtio_fs_opts fo = { .tag = "t", .queues = 1 };
	uint8_t cfg[44];
	uint32_t nrq, nbs;

	ck_assert_uint_eq(vd->device_id, 26);
	ck_assert_uint_eq(vd->nr_queues, 3); /* hiprio + 2 request queues */
	ck_assert_uint_eq(vd->q[0].size_max, FS_QUEUE_SIZE);
	ck_assert_uint_eq(vd->config_size, sizeof(cfg));
	/* No device feature bits: only the transport's own. */
	ck_assert_uint_eq(vd->features & ((1ULL << 24) - 1), 0);
	vd->ops->config_read(vd, 0, cfg, sizeof(cfg));
	ck_assert(!memcmp(cfg, "testtag", 8));
	ck_assert(!memcmp(cfg + 8, (uint8_t[28]){ 0 }, 28));
	memcpy(&nrq, cfg + 36, 4);
	memcpy(&nbs, cfg + 40, 4);
	ck_assert_uint_eq(nrq, 2);
	ck_assert_uint_eq(nbs, 0);
	/* The DAX window is shared-memory region 0. */
	ck_assert_uint_eq(vd->nr_shm, 1);
	ck_assert_uint_eq(vd->shm[0].id, 0);
	ck_assert_uint_eq(vd->shm[0].size, WSIZE);
	ck_assert_ptr_eq(vd->shm[0].hva, dax_window_hva(win));
	/* Bad options. */
	fo.tag = "";
	ck_assert_int_eq(virtio_fs_create(&x, srv, NULL, &mem, &fo), -EINVAL);
	fo.tag = "0123456789012345678901234567890123456"; /* 37 bytes */
	ck_assert_int_eq(virtio_fs_create(&x, srv, NULL, &mem, &fo), -EINVAL);
	fo.tag = "012345678901234567890123456789012345"; /* 36: fills the field */
	fo.queues = 0;
	ck_assert_int_eq(virtio_fs_create(&x, srv, NULL, &mem, &fo), -EINVAL);
	fo.queues = 1;
	ck_assert_int_eq(virtio_fs_create(&x, srv, NULL, &mem, &fo), 0);
	ck_assert_uint_eq(virtio_fs_virtio(x)->nr_shm, 0);
	virtio_fs_virtio(x)->ops->config_read(virtio_fs_virtio(x), 0, cfg, sizeof(cfg));
	ck_assert(!memcmp(cfg, fo.tag, 36));
	virtio_fs_destroy(x);
}
END_TEST

START_TEST(test_requests)
{
	struct fuse_getattr_in ga = { 0 };
	struct fuse_forget_in fg = { .nlookup = 1 };
	struct fuse_out_header oh;
	struct virtio_fs_stats st;
	uint16_t head, h2;
	uint64_t out;
	uint32_t id, len;

	map_queues();
	out = send_init(1, &head);
	ck_assert_uint_eq(virtio_fs_process(fdev, 1), 1);
	memcpy(&oh, hva(out), sizeof(oh));
	ck_assert_int_eq(oh.error, 0);
	ck_assert(used(1, &id, &len));
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(len, oh.len);
	ck_assert_uint_ge(len, sizeof(oh) + 24);
	ck_assert_uint_eq(atomic_load(&irqs[1]), 1);
	/* GETATTR of the root on the other request queue. */
	out = request(2, FUSE_GETATTR, 2, FUSE_ROOT_ID, &ga, sizeof(ga),
		      sizeof(oh) + sizeof(struct fuse_attr_out), &head);
	ck_assert_uint_eq(virtio_fs_process(fdev, 2), 1);
	expect_reply(2, head, out, 2, 0, sizeof(oh) + sizeof(struct fuse_attr_out));
	ck_assert(S_ISDIR(((struct fuse_attr_out *)((uint8_t *)hva(out) + sizeof(oh)))->attr.mode));
	/* FORGET on the high-priority queue: used with length 0 and nothing written. */
	request(0, FUSE_FORGET, 3, FUSE_ROOT_ID, &fg, sizeof(fg), 0, &head);
	ck_assert_uint_eq(virtio_fs_process(fdev, 0), 1);
	ck_assert(used(0, &id, &len));
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(len, 0);
	/* An unknown opcode gets ENOSYS. */
	out = request(1, 9999, 4, FUSE_ROOT_ID, NULL, 0, 64, &head);
	virtio_fs_process(fdev, 1);
	expect_reply(1, head, out, 4, -ENOSYS, sizeof(oh));
	/* No room for a reply: completed with 0, the queue goes on. */
	request(1, FUSE_GETATTR, 5, FUSE_ROOT_ID, &ga, sizeof(ga), 0, &h2);
	out = request(1, FUSE_GETATTR, 6, FUSE_ROOT_ID, &ga, sizeof(ga),
		      sizeof(oh) + sizeof(struct fuse_attr_out), &head);
	ck_assert_uint_eq(virtio_fs_process(fdev, 1), 2);
	ck_assert(used(1, &id, &len));
	ck_assert_uint_eq(id, h2);
	ck_assert_uint_eq(len, 0);
	expect_reply(1, head, out, 6, 0, sizeof(oh) + sizeof(struct fuse_attr_out));
	virtio_fs_get_stats(fdev, &st);
	ck_assert_uint_eq(st.requests, 6);
	ck_assert_uint_eq(st.bad_chains, 1);
}
END_TEST

/* Descriptors pointing into the DAX window (or anywhere outside RAM) are refused. */
START_TEST(test_window_descriptors)
{
	struct fuse_getattr_in ga = { 0 };
	struct fuse_out_header oh;
	struct virtio_fs_stats st;
	uint16_t head;
	uint64_t out;
	uint32_t id, len;
	struct vring_seg s[2];

	sync_init();
	/* A reply buffer in the window. */
	out = request(1, FUSE_GETATTR, 7, FUSE_ROOT_ID, &ga, sizeof(ga), 0, &head);
	(void)out;
	drv[1].desc[(head + 0) % QSIZE].flags = VRING_DESC_F_NEXT;
	drv[1].desc[(head + 1) % QSIZE] =
	    (struct vring_desc){ .addr = WIN_GPA, .len = 4096, .flags = VRING_DESC_F_WRITE };
	drv[1].next_desc = (head + 2) % QSIZE;
	/* A request header in the window. */
	s[0] = (struct vring_seg){ WIN_GPA + 8192, 40, false };
	s[1] = (struct vring_seg){ galloc(256), 256, true };
	post(1, s, 2);
	/* And a good one after them. */
	out = request(1, FUSE_GETATTR, 8, FUSE_ROOT_ID, &ga, sizeof(ga),
		      sizeof(oh) + sizeof(struct fuse_attr_out), &head);
	ck_assert_uint_eq(virtio_fs_process(fdev, 1), 3);
	ck_assert(used(1, &id, &len));
	ck_assert_uint_eq(len, 0);
	ck_assert(used(1, &id, &len));
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(*(uint8_t *)hva(s[1].gpa), 0xee); /* nothing written */
	expect_reply(1, head, out, 8, 0, sizeof(oh) + sizeof(struct fuse_attr_out));
	virtio_fs_get_stats(fdev, &st);
	ck_assert_uint_eq(st.bad_chains, 2);
	ck_assert(!vd->q[1].vq.broken);
}
END_TEST

/* CREATE @name in the root opened with @flags; returns the reply's error, fills @nodeid
 * and @fh. */
static int32_t create_flags(const char *name, uint64_t unique, uint32_t flags, uint64_t *nodeid,
			    uint64_t *fh)
{
	uint8_t arg[sizeof(struct fuse_create_in) + 32];
	struct fuse_create_in ci = { .flags = flags, .mode = 0100644 };
	struct fuse_out_header oh;
	struct fuse_entry_out eo;
	struct fuse_open_out oo;
	size_t nl = strlen(name) + 1;
	uint16_t head;
	uint64_t out;
	uint32_t id, len;

	memcpy(arg, &ci, sizeof(ci));
	memcpy(arg + sizeof(ci), name, nl);
	out = request(1, FUSE_CREATE, unique, FUSE_ROOT_ID, arg, sizeof(ci) + nl,
		      sizeof(oh) + sizeof(eo) + sizeof(oo), &head);
	ck_assert_uint_eq(virtio_fs_process(fdev, 1), 1);
	ck_assert(used(1, &id, &len));
	memcpy(&oh, hva(out), sizeof(oh));
	if (oh.error)
		return oh.error;
	memcpy(&eo, (uint8_t *)hva(out) + sizeof(oh), sizeof(eo));
	memcpy(&oo, (uint8_t *)hva(out) + sizeof(oh) + sizeof(eo), sizeof(oo));
	*nodeid = eo.nodeid;
	*fh = oo.fh;
	return 0;
}

static int32_t create(const char *name, uint64_t unique, uint64_t *nodeid, uint64_t *fh)
{
	return create_flags(name, unique, 01 /* O_WRONLY */, nodeid, fh);
}

static int count_fds(void)
{
	char path[32];
	int n = 0;

	for (int fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += !access(path, F_OK);
	}
	return n;
}

/* A guest opening more files than max_fds gets errors; once it RELEASEs and FORGETs them
 * the share works again, and the VMM's descriptors never exceeded the budget. */
START_TEST(test_fd_budget)
{
	struct fs_share_opts o = { .path = dir, .max_fds = 16 };
	struct virtio_fs_opts fo = { .name = "fs1", .tag = "budget", .queues = 1 };
	uint64_t nodeid[64], fh[64], ofh[64];
	struct fuse_release_in rel = { 0 };
	struct fuse_forget_in fg = { .nlookup = 1 };
	int base, made = 0, refused = 0, i;
	uint16_t head;
	uint32_t id, len;
	char name[16];
	int32_t err = 0;

	virtio_fs_destroy(fdev);
	fuse_server_free(srv);
	base = count_fds();
	ck_assert_int_eq(fuse_server_new(&o, NULL, NULL, &srv), 0);
	ck_assert_int_eq(virtio_fs_create(&fdev, srv, NULL, &mem, &fo), 0);
	vd = virtio_fs_virtio(fdev);
	vd->tops = &tops;
	sync_init();
	for (i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		err = create(name, 100 + i, &nodeid[made], &fh[made]);
		if (err)
			break;
		made++;
	}
	ck_assert_int_lt(made, 64);
	ck_assert_int_gt(made, 2);
	ck_assert(err == -EMFILE || err == -ENFILE);
	ck_assert_int_le(count_fds() - base, 16 + 2); /* + the server's root handles */
	/* OPENs refused for want of descriptors must not pin their inodes. */
	memset(ofh, 0xff, sizeof(ofh));
	for (i = 0; i < made; i++) {
		struct fuse_open_in oi = { .flags = 0 };
		struct fuse_out_header oh;
		uint64_t out = request(1, FUSE_OPEN, 400 + i, nodeid[i], &oi, sizeof(oi),
				       sizeof(oh) + sizeof(struct fuse_open_out), &head);

		virtio_fs_process(fdev, 1);
		ck_assert(used(1, &id, &len));
		memcpy(&oh, hva(out), sizeof(oh));
		if (!oh.error) { /* there was room for this one */
			struct fuse_open_out oo;

			memcpy(&oo, (uint8_t *)hva(out) + sizeof(oh), sizeof(oo));
			ofh[i] = oo.fh;
			continue;
		}
		ck_assert_int_eq(oh.error, -EMFILE);
		refused++;
	}
	ck_assert_int_gt(refused, 0);
	for (i = 0; i < made; i++) {
		if (ofh[i] != UINT64_MAX) {
			rel.fh = ofh[i];
			request(1, FUSE_RELEASE, 600 + i, nodeid[i], &rel, sizeof(rel),
				sizeof(struct fuse_out_header), &head);
		}
		rel.fh = fh[i];
		request(1, FUSE_RELEASE, 200 + i, nodeid[i], &rel, sizeof(rel),
			sizeof(struct fuse_out_header), &head);
		request(0, FUSE_FORGET, 300 + i, nodeid[i], &fg, sizeof(fg), 0, &head);
	}
	virtio_fs_process(fdev, 1);
	virtio_fs_process(fdev, 0);
	snprintf(name, sizeof(name), "after");
	ck_assert_int_eq(create(name, 999, &nodeid[0], &fh[0]), 0);
}
END_TEST

/*
 * A READ whose reply lands on the queue's own available ring, from a file the
 * guest wrote: each reply makes the READ available again (the I/O thread spun
 * on it forever). A device-writable buffer on the queue's rings makes the chain
 * bad: completed with length 0, nothing written.
 */
START_TEST(test_reply_over_avail)
{
	const uint32_t alen = 4 + 2 * QSIZE + 2; /* flags, idx, ring, used_event */
	struct fuse_out_header oh;
	struct virtio_fs_stats st;
	uint8_t warg[sizeof(struct fuse_write_in) + 4 + 2 * QSIZE + 2];
	struct fuse_write_in wi = { .size = alen };
	struct fuse_read_in ri = { .size = alen };
	struct fuse_in_header h = { .len = sizeof(h) + sizeof(ri),
				    .opcode = FUSE_READ,
				    .unique = 9 };
	struct vring_avail *img = (void *)(warg + sizeof(wi));
	uint64_t nodeid, fh, out, in;
	uint16_t head, rhead, idx;
	uint32_t id, len;
	struct vring_seg sg[2];

	sync_init();
	ck_assert_int_eq(create_flags("records", 2, 02 /* O_RDWR */, &nodeid, &fh), 0);
	/* The READ will be the chain after the WRITE (two descriptors each). */
	rhead = (drv[1].next_desc + 2) % QSIZE;
	idx = drv[1].avail_idx + 2; /* avail->idx once the WRITE and the READ are posted */
	wi.fh = fh;
	memset(img, 0, alen);
	img->idx = idx + QSIZE - 1; /* a full ring more of ... */
	for (unsigned int i = 0; i < QSIZE; i++)
		img->ring[i] = rhead; /* ... the same READ */
	memcpy(warg, &wi, sizeof(wi));
	out = request(1, FUSE_WRITE, 3, nodeid, warg, sizeof(warg),
		      sizeof(oh) + sizeof(struct fuse_write_out), &head);
	ck_assert_uint_eq(virtio_fs_process(fdev, 1), 1);
	expect_reply(1, head, out, 3, 0, sizeof(oh) + sizeof(struct fuse_write_out));

	ri.fh = fh;
	h.nodeid = nodeid;
	in = galloc(sizeof(h) + sizeof(ri));
	memcpy(hva(in), &h, sizeof(h));
	memcpy((uint8_t *)hva(in) + sizeof(h), &ri, sizeof(ri));
	sg[0] = (struct vring_seg){ in, sizeof(h) + sizeof(ri), false };
	/* The reply header just before the ring, the data on it. */
	sg[1] = (struct vring_seg){ drv[1].avail_gpa - sizeof(oh), sizeof(oh) + alen, true };
	ck_assert_uint_eq(post(1, sg, 2), rhead);
	ck_assert_uint_eq(drv[1].avail->idx, idx);
	ck_assert_uint_eq(virtio_fs_process(fdev, 1), 1);
	ck_assert(used(1, &id, &len));
	ck_assert_uint_eq(id, rhead);
	ck_assert_uint_eq(len, 0);
	ck_assert(!used(1, &id, &len));
	ck_assert_uint_eq(drv[1].avail->idx, idx);
	ck_assert_uint_eq(*(uint8_t *)hva(drv[1].avail_gpa - sizeof(oh)), 0);
	virtio_fs_get_stats(fdev, &st);
	ck_assert_uint_eq(st.bad_chains, 1);
	ck_assert(!vd->q[1].vq.broken);
}
END_TEST

/*
 * A guest that never lets a queue go idle: REMOVEMAPPING reaches the window's
 * unmap, where this test's "vCPU" makes the same request available again, so
 * the ring is never empty while @on.
 */
struct busy_guest {
	unsigned int qi;
	uint16_t head;
	atomic_bool on;
	atomic_uint served;
};

static struct busy_guest bg;

static int bg_map(void *c, int fd, uint64_t foffset, uint64_t moffset, uint64_t len, bool wr)
{
	(void)c, (void)fd, (void)foffset, (void)moffset, (void)len, (void)wr;
	return -ENOSYS;
}

static int bg_unmap(void *c, uint64_t moffset, uint64_t len)
{
	struct busy_guest *g = c;

	(void)moffset, (void)len;
	atomic_fetch_add(&g->served, 1);
	if (atomic_load(&g->on))
		vdrv_publish(&drv[g->qi], g->head);
	return 0;
}

static const struct fuse_dax_ops bg_ops = { .map = bg_map, .unmap = bg_unmap };

static void busy_setup(void)
{
	struct fs_share_opts o = { .path = dir, .dax_window = WSIZE };
	struct virtio_fs_opts fo = { .name = "fs1", .tag = "busy", .queues = 2 };

	virtio_fs_destroy(fdev);
	fuse_server_free(srv);
	memset(&bg, 0, sizeof(bg));
	ck_assert_int_eq(fuse_server_new(&o, &bg_ops, &bg, &srv), 0);
	ck_assert_int_eq(virtio_fs_create(&fdev, srv, NULL, &mem, &fo), 0);
	vd = virtio_fs_virtio(fdev);
	vd->tops = &tops;
}

static void busy_post(unsigned int qi)
{
	struct {
		struct fuse_removemapping_in in;
		struct fuse_removemapping_one one;
	} __attribute__((packed)) rm = { { .count = 1 }, { .moffset = 0, .len = 4096 } };

	request(qi, FUSE_REMOVEMAPPING, 50, FUSE_ROOT_ID, &rm, sizeof(rm),
		sizeof(struct fuse_out_header), &bg.head);
	bg.qi = qi;
	atomic_store(&bg.on, true);
}

static unsigned int processed;

static void process_q1(void *arg)
{
	(void)arg;
	processed = virtio_fs_process(fdev, 1);
}

/* One pass serves at most a ring's worth, then asks for another pass (its own kick). */
START_TEST(test_serve_bounded)
{
	uint32_t id, len;

	busy_setup();
	sync_init();
	busy_post(1);
	ck_assert_msg(returns_within(process_q1, NULL, 5000),
		      "one pass never returns while the guest keeps the ring busy");
	ck_assert_uint_eq(processed, QSIZE);
	ck_assert(vdrv_kick_pending(vd, 1));
	atomic_store(&bg.on, false);
	ck_assert_uint_eq(virtio_fs_process(fdev, 1), 1);
	ck_assert(!vdrv_kick_pending(vd, 1));
	ck_assert_uint_eq(atomic_load(&bg.served), QSIZE + 1);
	for (unsigned int i = 0; i < QSIZE + 1; i++) {
		ck_assert(used(1, &id, &len));
		ck_assert_uint_eq(id, bg.head);
		ck_assert_uint_eq(len, sizeof(struct fuse_out_header));
	}
	ck_assert(!used(1, &id, &len));
}
END_TEST

static void handshake(void)
{
	vdrv_negotiate(vd, 1ULL << VIRTIO_F_VERSION_1);
	for (unsigned int i = 0; i < 3; i++)
		drv_init(i);
	virtio_set_status(vd, VDRV_S_LIVE);
	ck_assert(vd->started);
}

static bool wait_used(unsigned int qi, uint32_t *id, uint32_t *len)
{
	return vdrv_wait_used(&drv[qi], id, len, 5000);
}

/* The device started (its I/O threads), and the session's INIT on queue 1 answered. */
static void threads_init(void)
{
	uint32_t id, len;
	uint16_t head;

	handshake();
	send_init(1, &head);
	ck_assert(vdrv_kick(vd, 1));
	ck_assert(wait_used(1, &id, &len));
}

/* DRIVER_OK starts the I/O threads; a kick gets an answer; reset stops them. */
START_TEST(test_threads)
{
	struct fuse_getattr_in ga = { 0 };
	struct fuse_out_header oh;
	uint64_t out;
	uint16_t head;
	uint32_t id, len;

	for (int round = 0; round < 2; round++) {
		handshake();
		send_init(1, &head);
		ck_assert(vdrv_kick(vd, 1));
		ck_assert(wait_used(1, &id, &len));
		ck_assert_uint_eq(id, head);
		ck_assert_uint_gt(len, sizeof(oh));
		for (unsigned int q = 1; q <= 2; q++) {
			out = request(q, FUSE_GETATTR, 10 + q, FUSE_ROOT_ID, &ga, sizeof(ga),
				      sizeof(oh) + sizeof(struct fuse_attr_out), &head);
			ck_assert(vdrv_kick(vd, q));
			ck_assert(wait_used(q, &id, &len));
			memcpy(&oh, hva(out), sizeof(oh));
			ck_assert_uint_eq(oh.unique, 10 + q);
			ck_assert_int_eq(oh.error, 0);
		}
		ck_assert_uint_ge(atomic_load(&irqs[2]), 1);
		/* Reset: threads stop, the server forgets everything (INIT again next round). */
		virtio_set_status(vd, 0);
		ck_assert(!vd->started);
		buf_next = BUF_GPA;
	}
}
END_TEST

/* A reply of @outlen bytes to @opcode on queue 1, served by its I/O thread. */
static struct fuse_out_header call(uint32_t opcode, uint64_t unique, uint64_t nodeid,
				   const void *arg, uint32_t arglen, uint32_t outlen, void *reply)
{
	struct fuse_out_header oh;
	uint64_t out;
	uint16_t head;
	uint32_t id, len;

	out = request(1, opcode, unique, nodeid, arg, arglen, sizeof(oh) + outlen, &head);
	ck_assert(vdrv_kick(vd, 1));
	ck_assert(wait_used(1, &id, &len));
	ck_assert_uint_eq(id, head);
	memcpy(&oh, hva(out), sizeof(oh));
	if (reply && oh.len > sizeof(oh))
		memcpy(reply, (uint8_t *)hva(out) + sizeof(oh), outlen);
	return oh;
}

/*
 * Pause is not reset: after virtio_quiesce() and virtio_unquiesce() (what `ctl pause`,
 * `resume` and a refused `save` do) the guest's FUSE session and its DAX mappings are
 * still there: requests are answered, mapped file pages still show the file.
 */
START_TEST(test_pause_keeps_session)
{
	static const char text[] = "still here after a pause";
	struct fuse_setupmapping_in sm = {
		.fh = UINT64_MAX, .foffset = 0, .len = 2 << 20, .flags = FUSE_SETUPMAPPING_FLAG_READ
	};
	struct fuse_getattr_in ga = { 0 };
	struct fuse_attr_out ao;
	struct fuse_entry_out eo;
	struct fuse_out_header oh;
	char path[128], name[] = "paused";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	threads_init();
	oh = call(FUSE_LOOKUP, 2, FUSE_ROOT_ID, name, sizeof(name), sizeof(eo), &eo);
	ck_assert_int_eq(oh.error, 0);
	oh = call(FUSE_SETUPMAPPING, 3, eo.nodeid, &sm, sizeof(sm), 0, NULL);
	ck_assert_int_eq(oh.error, 0);
	ck_assert_mem_eq(dax_window_hva(win), text, sizeof(text) - 1);

	virtio_quiesce(vd);
	ck_assert_int_eq(virtio_unquiesce(vd), 0);
	ck_assert(vd->started);

	oh = call(FUSE_GETATTR, 4, eo.nodeid, &ga, sizeof(ga), sizeof(ao), &ao);
	ck_assert_msg(oh.error == 0, "GETATTR after a pause: error %d", oh.error);
	ck_assert_uint_eq(ao.attr.size, sizeof(text) - 1);
	ck_assert_msg(!memcmp(dax_window_hva(win), text, sizeof(text) - 1),
		      "the DAX window lost the file's pages in a pause");
	virtio_set_status(vd, 0);
	unlink(path);
}
END_TEST

static void reset_vd(void *arg)
{
	(void)arg;
	virtio_set_status(vd, 0);
}

/* The I/O thread keeps serving such a guest, and still stops when told to. */
START_TEST(test_stop_busy)
{
	unsigned int n;

	busy_setup();
	threads_init();
	busy_post(1);
	ck_assert(vdrv_kick(vd, 1));
	for (int i = 0; i < 5000 && atomic_load(&bg.served) < 1000; i++)
		usleep(1000);
	ck_assert_uint_ge(atomic_load(&bg.served), 1000);
	ck_assert_msg(returns_within(reset_vd, NULL, 5000),
		      "reset blocked by a guest that keeps its queue busy");
	ck_assert(!vd->started);
	n = atomic_load(&bg.served);
	usleep(20000);
	ck_assert_uint_eq(atomic_load(&bg.served), n);
	atomic_store(&bg.on, false);
}
END_TEST

/* The device again, under @rl. */
static void limited_setup(const struct rl_config *rl)
{
	struct virtio_fs_opts fo = { .name = "fs0", .tag = "testtag", .queues = 2, .rl = rl };

	virtio_fs_destroy(fdev);
	ck_assert_int_eq(virtio_fs_create(&fdev, srv, win, &mem, &fo), 0);
	vd = virtio_fs_virtio(fdev);
	vd->tops = &tops;
}

static unsigned int used_count(unsigned int qi)
{
	return vdrv_used_idx(&drv[qi]);
}

static void quiesce_vd(void *arg)
{
	(void)arg;
	virtio_quiesce(vd);
}

/*
 * [share.N] iops. _i 0: INIT and 20 GETATTRs at 50/s, burst 2: all answered,
 * none sooner than the limit lets them (a lower bound only). _i 1: at 1/s, a
 * pause and a reset while the queue waits on its limit return at once; after
 * the pause the waiting requests go on.
 */
START_TEST(test_ratelimit)
{
	static const struct rl_config lim[2] = { { .iops = 50, .iops_burst = 2 },
						 { .iops = 1, .iops_burst = 1 } };
	struct fuse_getattr_in ga = { 0 };
	uint64_t start, took, out[20];
	uint16_t head, heads[20];
	struct fuse_out_header oh;
	unsigned int n;

	limited_setup(&lim[_i]);
	handshake();
	send_init(1, &head);
	for (unsigned int k = 0; k < 20; k++)
		out[k] = request(1, FUSE_GETATTR, 100 + k, FUSE_ROOT_ID, &ga, sizeof(ga),
				 sizeof(oh) + sizeof(struct fuse_attr_out), &heads[k]);
	start = now_ns();
	ck_assert(vdrv_kick(vd, 1));
	if (!_i) {
		for (int i = 0; i < 5000 && used_count(1) < 21; i++)
			usleep(1000);
		took = now_ns() - start;
		ck_assert_uint_eq(used_count(1), 21);
		/* (21 - 2) / 50 s */
		ck_assert_msg(took >= 19ULL * 1000000000 / 50 * 8 / 10,
			      "21 requests in %llu ms at 50/s, burst 2",
			      (unsigned long long)(took / 1000000));
		for (unsigned int k = 0; k < 20; k++) {
			memcpy(&oh, hva(out[k]), sizeof(oh));
			ck_assert_uint_eq(oh.unique, 100 + k);
			ck_assert_int_eq(oh.error, 0);
		}
		virtio_set_status(vd, 0);
		return;
	}
	usleep(50000);
	ck_assert_msg(returns_within(quiesce_vd, NULL, 1000),
		      "a pause waits for a queue waiting on its limit");
	n = used_count(1);
	ck_assert_uint_le(n, 2);
	ck_assert_int_eq(virtio_unquiesce(vd), 0);
	/* The requests left in the ring go on at the limit's pace. */
	for (int i = 0; i < 3000 && used_count(1) == n; i++)
		usleep(1000);
	ck_assert_uint_gt(used_count(1), n);
	ck_assert_msg(returns_within(reset_vd, NULL, 1000),
		      "a reset waits for a queue waiting on its limit");
	ck_assert(!vd->started);
	ck_assert_uint_lt(used_count(1), 21);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_fs");
	TCase *tc = tcase_create("device");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_config);
	tcase_add_test(tc, test_requests);
	tcase_add_test(tc, test_window_descriptors);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_fd_budget);
	tcase_add_test(tc, test_reply_over_avail);
	tcase_add_test(tc, test_serve_bounded);
	tcase_add_test(tc, test_stop_busy);
	tcase_add_test(tc, test_pause_keeps_session);
	tcase_add_loop_test(tc, test_ratelimit, 0, 2);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
