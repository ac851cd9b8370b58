// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-vsock with its I/O thread running, driven by a tiny split-ring driver
 * in fake guest RAM, against real Unix sockets: a guest connection to a host
 * listener and data both ways, a guest connection to a port nobody listens on
 * (reset), a host connection through the VM's socket (CONNECT / OK), a guest
 * that sends past its credit or from another CID (reset), and a reset that
 * closes the host sockets.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <libfdt.h>

#include "mm/guest_mem.h"
#include "snapshot/state.h"
#include "util.h"
#include "virtio/virtio.h"
#include "virtio/vsock.h"
#include "unit.h"
#include "vring_drv.h"

#define RAM_SIZE  0x400000ULL
#define RING_GPA  0x100000ULL
#define RING_STEP 0x10000ULL
#define BUF_GPA	  0x200000ULL
#define QSIZE	  64
#define CID	  7
#define HDR	  sizeof(struct virtio_vsock_hdr)
#define RXBUF	  4096

static struct guest_mem mem;
static uint8_t *ram;
static uint64_t buf_next;
static char dir[64], sock_path[96];
static struct virtio_vsock *vs;
static struct virtio_dev *vd;

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
	return gpa;
}

/* --- the split-ring driver (tests/lib/vring_drv.h) ----------------------------------------- */

static struct vdrv drv[3];

/* Queue @qi's rings, set up through the device's registers. */
static void drv_init(unsigned int qi)
{
	uint64_t base = RING_GPA + qi * RING_STEP;

	ck_assert_int_eq(vdrv_init(&drv[qi], &mem, QSIZE, base, base + 0x4000, base + 0x6000), 0);
	ck_assert_int_eq(vdrv_set(vd, qi, &drv[qi]), 0);
}

static uint16_t post1(unsigned int qi, uint64_t gpa, uint32_t len, bool wr)
{
	return vdrv_post_one(&drv[qi], gpa, len, wr);
}

static void kick(unsigned int qi)
{
	ck_assert(vdrv_kick(vd, qi));
}

static bool wait_used(unsigned int qi, uint32_t *id, uint32_t *len)
{
	return vdrv_wait_used(&drv[qi], id, len, 5000);
}

static void setup(void)
{
	struct virtio_vsock_opts o = { .name = "vsock", .cid = CID, .thread_cpu = -1 };

	ram = vdrv_ram_map(&mem, RAM_SIZE);
	ck_assert_ptr_nonnull(ram);
	buf_next = BUF_GPA;
	strcpy(dir, "/tmp/minivmm-vsock.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/v.sock", dir);
	o.uds_path = sock_path;
	ck_assert_int_eq(virtio_vsock_create(&vs, &mem, &o), 0);
	vd = virtio_vsock_virtio(vs);
	vd->tops = &vdrv_quiet_tops;
	vdrv_negotiate(vd, 1ULL << VIRTIO_F_VERSION_1);
	for (unsigned int i = 0; i < 3; i++)
		drv_init(i);
	virtio_set_status(vd, VDRV_S_LIVE);
	ck_assert(vd->started);
	/* The guest's receive buffers. */
	for (unsigned int i = 0; i < 16; i++)
		post1(0, galloc(RXBUF), RXBUF, true);
	kick(0);
}

static void teardown(void)
{
	char p[160];

	virtio_vsock_destroy(vs);
	vdrv_ram_unmap(&mem);
	snprintf(p, sizeof(p), "%s/v.sock_5000", dir);
	unlink(p);
	rmdir(dir);
}

static uint32_t send_flags; /* the next packet's flags (SHUTDOWN's) */

/* The guest sends one packet on the tx queue. */
static void guest_send(uint16_t op, uint32_t src_port, uint32_t dst_port, const void *data,
		       uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt, uint64_t src_cid)
{
	uint64_t g = galloc((uint32_t)HDR + len);
	struct virtio_vsock_hdr h = {
		.src_cid = src_cid, .dst_cid = VSOCK_HOST_CID, .src_port = src_port,
		.dst_port = dst_port, .len = len, .type = VIRTIO_VSOCK_TYPE_STREAM, .op = op,
		.buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt, .flags = send_flags,
	};
	uint32_t id, l;

	send_flags = 0;
	memcpy(hva(g), &h, HDR);
	if (len)
		memcpy((uint8_t *)hva(g) + HDR, data, len);
	post1(1, g, (uint32_t)HDR + len, false);
	kick(1);
	ck_assert(wait_used(1, &id, &l));
}

/* The next packet for the guest; its payload (if any) into @data. */
static struct virtio_vsock_hdr guest_recv(void *data, size_t max)
{
	struct virtio_vsock_hdr h;
	uint32_t id, len;
	uint64_t g;

	ck_assert_msg(wait_used(0, &id, &len), "nothing for the guest");
	ck_assert_uint_ge(len, HDR);
	g = drv[0].desc[id].addr; /* the buffer behind the head (one descriptor each) */
	memcpy(&h, hva(g), HDR);
	ck_assert_uint_eq(len, HDR + h.len);
	ck_assert_uint_le(h.len, max);
	if (h.len)
		memcpy(data, (uint8_t *)hva(g) + HDR, h.len);
	/* The buffer goes back to the device. */
	post1(0, g, RXBUF, true);
	kick(0);
	return h;
}

static int listen_at(const char *path)
{
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(s, 0);
	snprintf(u.sun_path, sizeof(u.sun_path), "%s", path);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&u, sizeof(u)), 0);
	ck_assert_int_eq(listen(s, 4), 0);
	return s;
}

static ssize_t read_timeout(int fd, void *buf, size_t n)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, 5000) != 1)
		return -ETIMEDOUT;
	return read(fd, buf, n);
}

START_TEST(test_config)
{
	uint64_t cid = 0;

	ck_assert_uint_eq(vd->device_id, 19);
	vd->ops->config_read(vd, 0, &cid, sizeof(cid));
	ck_assert_uint_eq(cid, CID);
}
END_TEST

/* The guest connects to host port 5000 ("PATH_5000"); data both ways; the host closes. */
START_TEST(test_guest_connects)
{
	char p[160], buf[64];
	struct virtio_vsock_hdr h;
	int l, c;

	snprintf(p, sizeof(p), "%s_5000", sock_path);
	l = listen_at(p);
	guest_send(VIRTIO_VSOCK_OP_REQUEST, 1234, 5000, NULL, 0, 65536, 0, CID);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RESPONSE);
	ck_assert_uint_eq(h.src_port, 5000);
	ck_assert_uint_eq(h.dst_port, 1234);
	ck_assert_uint_eq(h.dst_cid, CID);
	ck_assert_uint_eq(h.buf_alloc, VSOCK_BUF_ALLOC);
	c = accept(l, NULL, NULL);
	ck_assert_int_ge(c, 0);
	guest_send(VIRTIO_VSOCK_OP_RW, 1234, 5000, "hello", 5, 65536, 0, CID);
	ck_assert_int_eq(read_timeout(c, buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_int_eq(write(c, "world!", 6), 6);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RW);
	ck_assert_uint_eq(h.len, 6);
	ck_assert_mem_eq(buf, "world!", 6);
	ck_assert_uint_eq(h.fwd_cnt, 5); /* what we passed on to the host socket */
	/* The host shuts its side: the guest hears "no more sending". */
	close(c);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	ck_assert_uint_eq(h.flags & VIRTIO_VSOCK_SHUTDOWN_SEND, VIRTIO_VSOCK_SHUTDOWN_SEND);
	/* The guest shuts both ways: it gets the final reset. */
	send_flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
	guest_send(VIRTIO_VSOCK_OP_SHUTDOWN, 1234, 5000, NULL, 0, 65536, 5, CID);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	close(l);
	unlink(p);
}
END_TEST

/* Nobody at host port 6000, a packet for a connection that does not exist: resets. */
START_TEST(test_guest_refused)
{
	struct virtio_vsock_hdr h;
	char buf[16];

	guest_send(VIRTIO_VSOCK_OP_REQUEST, 1, 6000, NULL, 0, 65536, 0, CID);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(h.src_port, 6000);
	ck_assert_uint_eq(h.dst_port, 1);
	guest_send(VIRTIO_VSOCK_OP_RW, 2, 6001, "x", 1, 65536, 0, CID);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	/* From another CID: refused as well. */
	guest_send(VIRTIO_VSOCK_OP_REQUEST, 3, 6002, NULL, 0, 65536, 0, CID + 1);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
}
END_TEST

/* The host connects through the VM's socket: CONNECT, REQUEST to the guest, OK back. */
START_TEST(test_host_connects)
{
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	struct virtio_vsock_hdr h;
	char buf[64];
	ssize_t n;
	int s;

	s = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(u.sun_path, sizeof(u.sun_path), "%s", sock_path);
	ck_assert_int_eq(connect(s, (struct sockaddr *)&u, sizeof(u)), 0);
	ck_assert_int_eq(write(s, "CONNECT 1024\n", 13), 13);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_REQUEST);
	ck_assert_uint_eq(h.dst_port, 1024);
	ck_assert_uint_ge(h.src_port, 1u << 30);
	guest_send(VIRTIO_VSOCK_OP_RESPONSE, 1024, h.src_port, NULL, 0, 65536, 0, CID);
	n = read_timeout(s, buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 3);
	buf[n] = 0;
	ck_assert_int_eq(strncmp(buf, "OK ", 3), 0);
	ck_assert_uint_eq(strtoul(buf + 3, NULL, 10), h.src_port);
	/* Data from the host, within the guest's credit. */
	ck_assert_int_eq(write(s, "ping", 4), 4);
	{
		uint32_t port = h.src_port;

		h = guest_recv(buf, sizeof(buf));
		ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RW);
		ck_assert_uint_eq(h.src_port, port);
		ck_assert_mem_eq(buf, "ping", 4);
	}
	close(s);
}
END_TEST

/*
 * After a restore as a clone with another CID (saved 3, now CID): the guest keeps its old
 * CID until it handles the transport reset and reads the new one from the config space.
 * Meanwhile a host connection waits (the reset would kill it), and the guest's packets
 * with the old CID count as its own until it uses the new one.
 */
START_TEST(test_restore_new_cid)
{
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	static char tree[4096];
	struct virtio_vsock_hdr h;
	uint64_t cid = 0;
	uint32_t id, len;
	char buf[64];
	ssize_t n;
	int node, s;

	ck_assert_int_eq(fdt_create_empty_tree(tree, sizeof(tree)), 0);
	node = fdt_add_subnode(tree, 0, "vsock");
	ck_assert_int_ge(node, 0);
	ck_assert_int_eq(st_put_u64(tree, node, "cid", 3), 0);
	ck_assert_int_eq(vd->ops->load(vd, tree, node), 0);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(u.sun_path, sizeof(u.sun_path), "%s", sock_path);
	ck_assert_int_eq(connect(s, (struct sockaddr *)&u, sizeof(u)), 0);
	ck_assert_int_eq(write(s, "CONNECT 1024\n", 13), 13);
	/* Held: nothing for the guest yet. */
	ck_assert(!vdrv_wait_used(&drv[0], &id, &len, 300));
	vd->ops->config_read(vd, 0, &cid, sizeof(cid));
	ck_assert_uint_eq(cid, CID);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_REQUEST);
	ck_assert_uint_eq(h.dst_cid, CID);
	/* Its answer still from the old CID: accepted. */
	guest_send(VIRTIO_VSOCK_OP_RESPONSE, 1024, h.src_port, NULL, 0, 65536, 0, 3);
	n = read_timeout(s, buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 3);
	ck_assert_int_eq(strncmp(buf, "OK ", 3), 0);
	/* Once it speaks with the new CID, the old one is another's: reset. */
	guest_send(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 1024, h.src_port, NULL, 0, 65536, 0, CID);
	guest_send(VIRTIO_VSOCK_OP_REQUEST, 98, 5001, NULL, 0, 65536, 0, 3);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RST);
	ck_assert_uint_eq(h.dst_port, 98);
	close(s);
}
END_TEST

/* A line that is not CONNECT: the host socket is closed, the guest hears nothing. */
START_TEST(test_host_bad_line)
{
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	char buf[8];
	int s;

	s = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(u.sun_path, sizeof(u.sun_path), "%s", sock_path);
	ck_assert_int_eq(connect(s, (struct sockaddr *)&u, sizeof(u)), 0);
	ck_assert_int_eq(write(s, "HELLO 1\n", 8), 8);
	ck_assert_int_eq(read_timeout(s, buf, sizeof(buf)), 0);
	close(s);
}
END_TEST

/* More than the credit we gave: reset, and the host socket is closed. */
START_TEST(test_guest_over_credit)
{
	static char big[RXBUF];
	char p[160], buf[64];
	struct virtio_vsock_hdr h;
	int l, c;

	snprintf(p, sizeof(p), "%s_5000", sock_path);
	l = listen_at(p);
	guest_send(VIRTIO_VSOCK_OP_REQUEST, 99, 5000, NULL, 0, 65536, 0, CID);
	h = guest_recv(buf, sizeof(buf));
	ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_RESPONSE);
	c = accept(l, NULL, NULL);
	ck_assert_int_ge(c, 0);
	/*
	 * The host never reads: the socket buffer fills, then the backlog, then the
	 * credit is gone and the next byte is one too many. Credit updates come meanwhile.
	 */
	memset(big, 'x', sizeof(big));
	for (unsigned int i = 0; i < 4 * VSOCK_BUF_ALLOC / (sizeof(big) - HDR) + 1024; i++) {
		guest_send(VIRTIO_VSOCK_OP_RW, 99, 5000, big, sizeof(big) - HDR, 65536, 0, CID);
		buf_next = BUF_GPA + 16 * RXBUF; /* reuse the tx buffers */
		while (vdrv_used_idx(&drv[0]) != drv[0].last_used) {
			h = guest_recv(buf, sizeof(buf));
			if (h.op == VIRTIO_VSOCK_OP_RST)
				goto reset;
			ck_assert_uint_eq(h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
		}
	}
	ck_abort_msg("the guest sent past its credit and was not reset");
reset:
	ck_assert_uint_eq(h.src_port, 5000);
	ck_assert_uint_eq(h.dst_port, 99);
	/* The host socket was closed with it. */
	{
		char tmp[65536];
		ssize_t n;

		while ((n = read(c, tmp, sizeof(tmp))) > 0)
			;
		ck_assert_int_eq(n, 0);
	}
	close(c);
	close(l);
	unlink(p);
}
END_TEST

/*
 * The host-side socket path: one left by a killed minivmm (nobody listens) is replaced;
 * a live listener or a file that is not a socket is never touched.
 */
START_TEST(test_socket_path)
{
	struct virtio_vsock_opts o = { .name = "vsock2", .cid = CID + 1, .thread_cpu = -1 };
	struct virtio_vsock *v2;
	char p[160];
	int l, fd;

	snprintf(p, sizeof(p), "%s/other.sock", dir);
	o.uds_path = p;
	/* A live listener. */
	l = listen_at(p);
	ck_assert_int_eq(virtio_vsock_create(&v2, &mem, &o), -EADDRINUSE);
	/* The same socket after its process went away: bound, nobody listens. */
	close(l);
	ck_assert_int_eq(virtio_vsock_create(&v2, &mem, &o), 0);
	fd = unix_connect(p, 0, 1000);
	ck_assert_int_ge(fd, 0);
	close(fd);
	virtio_vsock_destroy(v2);
	ck_assert_int_eq(access(p, F_OK), -1);
	/* A regular file. */
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(virtio_vsock_create(&v2, &mem, &o), -EEXIST);
	ck_assert_int_eq(access(p, F_OK), 0);
	unlink(p);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_vsock");
	TCase *tc = tcase_create("device");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_config);
	tcase_add_test(tc, test_guest_connects);
	tcase_add_test(tc, test_guest_refused);
	tcase_add_test(tc, test_host_connects);
	tcase_add_test(tc, test_host_bad_line);
	tcase_add_test(tc, test_restore_new_cid);
	tcase_add_test(tc, test_guest_over_credit);
	tcase_add_test(tc, test_socket_path);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
