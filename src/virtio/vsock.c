// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-vsock: stream connections between the guest and Unix sockets on the
 * host (see vsock.h). One I/O thread serves the queues and the host sockets.
 *
 * Flow control is virtio-vsock's credit: each side says how much it buffers
 * (buf_alloc) and how much it has passed on (fwd_cnt). What the guest sends
 * and the host socket does not take yet waits in the connection's backlog
 * (never more than VSOCK_BUF_ALLOC: a guest that sends past its credit is
 * reset); what the host sends is read only when the guest has credit and an
 * rx buffer, straight into that buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "iov.h"
#include "log.h"
#include "snapshot/state.h"
#include "util.h"
#include "virtio/iothread.h"
#include "virtio/virtio.h"
#include "virtio/vsock.h"

#define PCI_CLASS_OTHER	 0xff0000
#define Q_RX		 0
#define Q_TX		 1
#define Q_EVT		 2
#define NQ		 3
#define MAX_IOV		 (VSOCK_QUEUE_SIZE + 2)
#define HDR		 sizeof(struct virtio_vsock_hdr)
#define LINE_MAX_LEN	 32	  /* "CONNECT 4294967295\n" */
#define MAX_ORPHAN_RST	 64	  /* resets owed for connections we do not have */
#define LOCAL_PORT_FIRST (1u << 30) /* host ports of host-initiated connections */

enum conn_state {
	C_FREE,
	C_HOST_LINE,	/* accepted on the Unix socket, waiting for "CONNECT <port>" */
	C_HOST_REQUEST, /* REQUEST sent to the guest, waiting for its RESPONSE */
	C_ESTABLISHED,
	C_CLOSED, /* socket closed; the slot is free once its polls are gone */
};

/* Control packets a connection owes the guest. */
enum { P_REQUEST = 1, P_RESPONSE = 2, P_RST = 4, P_CREDIT = 8, P_SHUTDOWN = 16 };

struct vsock_conn {
	enum conn_state state;
	int fd;
	struct aio_handler rd, wr; /* readable (data, EOF, the CONNECT line); writable */
	uint32_t host_port, guest_port;
	unsigned int pending; /* P_* */
	uint32_t shutdown_flags;
	/* guest -> host */
	uint8_t *backlog;
	size_t backlog_len;
	uint32_t fwd_cnt, fwd_reported;
	bool guest_shut_send; /* the guest sends no more: SHUT_WR once the backlog is out */
	/* host -> guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt, rx_cnt;
	bool guest_shut_rcv, host_eof;
	char line[LINE_MAX_LEN];
	size_t line_len;
};

struct vsock_vq {
	struct vio_queue vio;
	struct virtio_vsock *dev;
};

struct virtio_vsock {
	struct virtio_dev vdev;
	struct virtio_vsock_config cfg;
	char name[16];
	char *uds_path;
	int listen_fd;
	struct aio_handler listen;
	struct aio_ctx *ctx; /* the running thread's ring; NULL when stopped */
	struct vsock_vq vqs[NQ];
	struct vio_engine engine;
	struct vsock_conn conns[VSOCK_MAX_CONNS];
	uint32_t next_local_port;
	struct {
		uint32_t src_port, dst_port;
	} orphan[MAX_ORPHAN_RST];
	unsigned int nr_orphan;
	bool reset_event; /* owe the guest a TRANSPORT_RESET (after a restore) */
	/*
	 * After a restore the guest still has its saved CID until it handles the reset (it
	 * then reads guest_cid from the config space). Until then its packets carry the old
	 * CID (taken as its own: nobody else is on this device), and requests from the host
	 * wait: one the guest accepted before the reset would be reset by it.
	 */
	uint64_t old_cid; /* the saved CID while it differs and the guest has not moved on */
	atomic_bool hold_requests; /* the guest has not read its CID since the restore */

	struct iovec iov[NQ][MAX_IOV];
};

/* --- connections ----------------------------------------------------------------------- */

static struct vsock_conn *conn_find(struct virtio_vsock *v, uint32_t host_port,
				    uint32_t guest_port)
{
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns[i];

		if ((c->state == C_HOST_REQUEST || c->state == C_ESTABLISHED) &&
		    c->host_port == host_port && c->guest_port == guest_port)
			return c;
	}
	return NULL;
}

static struct vsock_conn *conn_alloc(struct virtio_vsock *v)
{
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns[i];

		/* A closed slot still polled (its removal in flight) is not free yet. */
		if (c->state == C_CLOSED && !c->rd.armed && !c->wr.armed)
			c->state = C_FREE;
		if (c->state == C_FREE) {
			memset(c, 0, sizeof(*c));
			c->fd = -1;
			return c;
		}
	}
	return NULL;
}

static void on_conn_readable(struct aio_ctx *ctx, struct aio_handler *h);
static void on_conn_writable(struct aio_ctx *ctx, struct aio_handler *h);

static int conn_watch(struct virtio_vsock *v, struct vsock_conn *c)
{
	c->rd.fd = c->fd;
	c->rd.fn = on_conn_readable;
	return v->ctx ? aio_watch(v->ctx, &c->rd) : 0;
}

static void conn_close(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (c->state == C_FREE || c->state == C_CLOSED)
		return;
	if (v->ctx) {
		aio_unwatch(v->ctx, &c->rd);
		aio_unwatch(v->ctx, &c->wr);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->backlog);
	c->backlog = NULL;
	c->backlog_len = 0;
	c->state = C_CLOSED;
}

/* A reset the guest must see for a connection we have no state for. */
static void owe_rst(struct virtio_vsock *v, uint32_t host_port, uint32_t guest_port)
{
	if (v->nr_orphan == MAX_ORPHAN_RST)
		return; /* the guest's connect times out instead */
	v->orphan[v->nr_orphan].src_port = host_port;
	v->orphan[v->nr_orphan].dst_port = guest_port;
	v->nr_orphan++;
}

/* Close the host socket and owe the guest a reset. */
static void conn_reset(struct virtio_vsock *v, struct vsock_conn *c)
{
	uint32_t hp = c->host_port, gp = c->guest_port;
	bool guest_knows = c->state == C_HOST_REQUEST || c->state == C_ESTABLISHED;

	conn_close(v, c);
	if (guest_knows)
		owe_rst(v, hp, gp);
}

/* --- the rx queue: packets for the guest ------------------------------------------------ */

static void fill_hdr(struct virtio_vsock *v, struct virtio_vsock_hdr *h, uint32_t src_port,
		     uint32_t dst_port, uint16_t op, uint32_t len, const struct vsock_conn *c)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = VSOCK_HOST_CID;
	h->dst_cid = v->cfg.guest_cid;
	h->src_port = src_port;
	h->dst_port = dst_port;
	h->len = len;
	h->type = VIRTIO_VSOCK_TYPE_STREAM;
	h->op = op;
	if (c) {
		h->buf_alloc = VSOCK_BUF_ALLOC;
		h->fwd_cnt = c->fwd_cnt;
	}
}

/* The guest's room for our data on @c (its credit minus what is in flight). */
static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Bytes waiting on @c's host socket (0 with EOF or nothing). */
static size_t host_readable(struct vsock_conn *c)
{
	int n = 0;

	if (c->state != C_ESTABLISHED || c->guest_shut_rcv || c->host_eof)
		return 0;
	if (ioctl(c->fd, FIONREAD, &n) < 0 || n <= 0) {
		char b;
		ssize_t r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

		/*
		 * Readable with nothing to read: the host side shut its sending half. We
		 * send no more (it may still read what the guest sends back).
		 */
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			c->host_eof = true;
			c->pending |= P_SHUTDOWN;
			c->shutdown_flags |= VIRTIO_VSOCK_SHUTDOWN_SEND;
		}
		return 0;
	}
	return (size_t)n;
}

/*
 * One packet into one rx buffer: @op with @c's ports (or an orphan reset), and
 * for RW up to @want bytes read from the host socket straight into the buffer.
 * Returns false when the rx queue has no buffer (the caller stops).
 */
static bool rx_put(struct virtio_vsock *v, struct vsock_conn *c, uint16_t op, size_t want,
		   uint32_t src_port, uint32_t dst_port)
{
	struct vsock_vq *q = &v->vqs[Q_RX];
	struct vq_elem e = { .iov = v->iov[Q_RX], .max = MAX_IOV };
	struct virtio_vsock_hdr h;
	struct iovec data[MAX_IOV];
	ssize_t got = 0;
	int n, ret;

	ret = vq_pop(&q->vio.q->vq, &e);
	if (ret == VQ_EMPTY)
		return false;
	if (ret < 0) {
		q->vio.dead = true;
		virtio_needs_reset(&v->vdev, "corrupt rx ring");
		return false;
	}
	if (ret == VQ_BAD_CHAIN || e.out_num || e.in_len < HDR) {
		vq_push(&q->vio.q->vq, e.head, 0);
		q->vio.need_signal = true;
		return true; /* that buffer is gone; the packet waits for the next */
	}
	if (op == VIRTIO_VSOCK_OP_RW) {
		if (want > e.in_len - HDR)
			want = e.in_len - HDR;
		n = iov_range(e.iov, e.in_num, HDR, want, data, MAX_IOV);
		got = n > 0 ? readv(c->fd, data, n) : 0;
		if (got <= 0) {
			/* Nothing after all (or an error): send a credit update instead. */
			if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				conn_reset(v, c);
				op = VIRTIO_VSOCK_OP_RST;
				src_port = c->host_port;
				dst_port = c->guest_port;
				c = NULL;
			} else {
				op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
			}
			got = 0;
		} else {
			c->rx_cnt += (uint32_t)got;
		}
	}
	fill_hdr(v, &h, src_port, dst_port, op, (uint32_t)got, c);
	if (op == VIRTIO_VSOCK_OP_SHUTDOWN && c)
		h.flags = c->shutdown_flags;
	if (c)
		c->fwd_reported = c->fwd_cnt;
	iov_from_buf(e.iov, e.in_num, 0, &h, HDR);
	vq_push(&q->vio.q->vq, e.head, (uint32_t)(HDR + got));
	q->vio.need_signal = true;
	return true;
}

/* Everything owed to the guest, as long as it has rx buffers. */
static unsigned int rx_flush(struct virtio_vsock *v)
{
	unsigned int sent = 0;
	bool progress = true;

	if (!v->vdev.started || v->vqs[Q_RX].vio.dead || !v->vqs[Q_RX].vio.q->enabled)
		return 0;
	while (v->nr_orphan) {
		unsigned int i = v->nr_orphan - 1;

		if (!rx_put(v, NULL, VIRTIO_VSOCK_OP_RST, 0, v->orphan[i].src_port,
			    v->orphan[i].dst_port))
			return sent;
		v->nr_orphan--;
		sent++;
	}
	while (progress) {
		progress = false;
		for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
			struct vsock_conn *c = &v->conns[i];
			unsigned int bit;
			uint16_t op = 0;
			size_t avail;

			if (c->state != C_HOST_REQUEST && c->state != C_ESTABLISHED)
				continue;
			if (c->pending == P_REQUEST && atomic_load(&v->hold_requests))
				continue;
			/* A reset closes the host socket: not before the backlog is out. */
			if (c->pending == P_RST && c->backlog_len)
				continue;
			if (c->pending) {
				bit = c->pending & -c->pending;
				if (bit == P_RST && c->backlog_len)
					bit = (c->pending & ~P_RST) & -(c->pending & ~P_RST);
				op = bit == P_REQUEST	 ? VIRTIO_VSOCK_OP_REQUEST
				     : bit == P_RESPONSE ? VIRTIO_VSOCK_OP_RESPONSE
				     : bit == P_RST	 ? VIRTIO_VSOCK_OP_RST
				     : bit == P_CREDIT	 ? VIRTIO_VSOCK_OP_CREDIT_UPDATE
							 : VIRTIO_VSOCK_OP_SHUTDOWN;
				if (!rx_put(v, c, op, 0, c->host_port, c->guest_port))
					return sent;
				c->pending &= ~bit;
				if (op == VIRTIO_VSOCK_OP_RST)
					conn_close(v, c);
				sent++;
				progress = true;
				continue;
			}
			avail = host_readable(c);
			if (c->pending) {
				progress = true; /* EOF found: its SHUTDOWN goes next round */
				continue;
			}
			if (!avail || !peer_credit(c))
				continue;
			if (avail > peer_credit(c))
				avail = peer_credit(c);
			if (!rx_put(v, c, VIRTIO_VSOCK_OP_RW, avail, c->host_port, c->guest_port))
				return sent;
			sent++;
			progress = true;
		}
	}
	return sent;
}

static bool evt_flush(struct virtio_vsock *v)
{
	struct vsock_vq *q = &v->vqs[Q_EVT];
	struct vq_elem e = { .iov = v->iov[Q_EVT], .max = MAX_IOV };
	struct virtio_vsock_event ev = { .id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET };
	int ret;

	if (!v->reset_event || q->vio.dead || !q->vio.q->enabled)
		return false;
	ret = vq_pop(&q->vio.q->vq, &e);
	if (ret == VQ_EMPTY)
		return false;
	if (ret < 0) {
		q->vio.dead = true;
		virtio_needs_reset(&v->vdev, "corrupt event ring");
		return false;
	}
	if (ret == VQ_BAD_CHAIN || e.in_len < sizeof(ev)) {
		vq_push(&q->vio.q->vq, e.head, 0);
	} else {
		iov_from_buf(e.iov + e.out_num, e.in_num, 0, &ev, sizeof(ev));
		vq_push(&q->vio.q->vq, e.head, sizeof(ev));
		v->reset_event = false;
	}
	q->vio.need_signal = true;
	return true;
}

/* --- the tx queue: packets from the guest ----------------------------------------------- */

/* Write what the backlog holds to the host socket; reset @c on a socket error. */
static void backlog_flush(struct virtio_vsock *v, struct vsock_conn *c)
{
	ssize_t n;

	while (c->backlog_len) {
		n = send(c->fd, c->backlog, c->backlog_len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_reset(v, c);
			return;
		}
		memmove(c->backlog, c->backlog + n, c->backlog_len - (size_t)n);
		c->backlog_len -= (size_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	if (c->backlog_len) {
		c->wr.fd = c->fd;
		c->wr.fn = on_conn_writable;
		c->wr.events = POLLOUT;
		if (v->ctx)
			aio_watch(v->ctx, &c->wr);
	} else {
		if (v->ctx && c->wr.armed)
			aio_unwatch(v->ctx, &c->wr);
		if (c->guest_shut_send)
			shutdown(c->fd, SHUT_WR);
	}
	/* Tell the guest about room it got back, a quarter of its credit at a time. */
	if (c->fwd_cnt - c->fwd_reported >= VSOCK_BUF_ALLOC / 4)
		c->pending |= P_CREDIT;
}

/* RW: the payload to the host socket, what it does not take into the backlog. */
static void tx_data(struct virtio_vsock *v, struct vsock_conn *c, const struct vq_elem *e,
		    uint32_t len)
{
	size_t off = HDR;
	uint8_t *nb;

	if (len > e->out_len - HDR || c->guest_shut_send) {
		conn_reset(v, c);
		return;
	}
	/* Past the credit we gave: the guest does not play by the rules. */
	if (c->backlog_len + len > VSOCK_BUF_ALLOC) {
		conn_reset(v, c);
		return;
	}
	if (!c->backlog_len && len) {
		struct iovec out[MAX_IOV];
		int n = iov_range(e->iov, e->out_num, off, len, out, MAX_IOV);
		struct msghdr mh = { .msg_iov = out, .msg_iovlen = n > 0 ? (size_t)n : 0 };
		/* Never blocks, and a host that hung up is an error here, not a SIGPIPE. */
		ssize_t w = n > 0 ? sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;

		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_reset(v, c);
			return;
		}
		if (w > 0) {
			c->fwd_cnt += (uint32_t)w;
			off += (size_t)w;
			len -= (uint32_t)w;
		}
	}
	if (len) {
		nb = realloc(c->backlog, c->backlog_len + len);
		if (!nb) {
			conn_reset(v, c);
			return;
		}
		c->backlog = nb;
		iov_to_buf(e->iov, e->out_num, off, c->backlog + c->backlog_len, len);
		c->backlog_len += len;
	}
	backlog_flush(v, c);
}

/* The guest connects to host port @h->dst_port: "PATH_<port>". */
static void tx_request(struct virtio_vsock *v, const struct virtio_vsock_hdr *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vsock_conn *c;
	int fd;

	if (conn_find(v, h->dst_port, h->src_port) ||
	    (size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->uds_path,
			     h->dst_port) >= sizeof(sa.sun_path) ||
	    !(c = conn_alloc(v))) {
		owe_rst(v, h->dst_port, h->src_port);
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		pr_debug("%s: guest port %u to host port %u: %s", v->name, h->src_port, h->dst_port,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		owe_rst(v, h->dst_port, h->src_port);
		return;
	}
	c->fd = fd;
	c->host_port = h->dst_port;
	c->guest_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->state = C_ESTABLISHED;
	c->pending = P_RESPONSE;
	if (conn_watch(v, c))
		conn_reset(v, c);
}

static void tx_packet(struct virtio_vsock *v, const struct vq_elem *e)
{
	struct virtio_vsock_hdr h;
	struct vsock_conn *c;
	char ok[32];
	int n;

	if (e->in_num || iov_to_buf(e->iov, e->out_num, 0, &h, HDR) != HDR)
		return;
	/* The guest uses its new CID: it has handled the reset. */
	if (v->old_cid && h.src_cid == v->cfg.guest_cid)
		v->old_cid = 0;
	/* Only streams, from the guest's own CID, to the host. */
	if (h.type != VIRTIO_VSOCK_TYPE_STREAM ||
	    (h.src_cid != v->cfg.guest_cid && (!v->old_cid || h.src_cid != v->old_cid)) ||
	    h.dst_cid != VSOCK_HOST_CID) {
		if (h.op != VIRTIO_VSOCK_OP_RST)
			owe_rst(v, h.dst_port, h.src_port);
		return;
	}
	if (h.op == VIRTIO_VSOCK_OP_REQUEST) {
		tx_request(v, &h);
		return;
	}
	c = conn_find(v, h.dst_port, h.src_port);
	if (!c) {
		if (h.op != VIRTIO_VSOCK_OP_RST)
			owe_rst(v, h.dst_port, h.src_port);
		return;
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != C_HOST_REQUEST) {
			conn_reset(v, c);
			break;
		}
		c->state = C_ESTABLISHED;
		n = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);
		if (send(c->fd, ok, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
			conn_reset(v, c);
		break;
	case VIRTIO_VSOCK_OP_RST:
		conn_close(v, c);
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (h.flags & VIRTIO_VSOCK_SHUTDOWN_RCV)
			c->guest_shut_rcv = true;
		if (h.flags & VIRTIO_VSOCK_SHUTDOWN_SEND) {
			c->guest_shut_send = true;
			if (!c->backlog_len)
				shutdown(c->fd, SHUT_WR);
		}
		/* Both ways shut: the connection is over; the guest waits for our reset. */
		if (c->guest_shut_rcv && c->guest_shut_send)
			c->pending |= P_RST;
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != C_ESTABLISHED)
			conn_reset(v, c);
		else
			tx_data(v, c, e, h.len);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->pending |= P_CREDIT;
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break; /* taken above */
	default:
		conn_reset(v, c);
		break;
	}
}

/* --- the engine's drain, and the host sockets -------------------------------------------- */

static unsigned int drain(struct vio_queue *vq, struct aio_ctx *ctx, unsigned int budget)
{
	struct vsock_vq *q = container_of(vq, struct vsock_vq, vio);
	struct virtio_vsock *v = q->dev;
	unsigned int qi = (unsigned int)(q - v->vqs), taken = 0;
	struct vq_elem e = { .iov = v->iov[Q_TX], .max = MAX_IOV };
	int ret;

	(void)ctx;
	if (qi == Q_RX)
		return rx_flush(v);
	if (qi == Q_EVT)
		return evt_flush(v) ? 1 : 0;
	while (taken < budget && !vio_stop_requested(vq)) {
		ret = vq_pop(&vq->q->vq, &e);
		if (ret == VQ_EMPTY)
			break;
		if (ret < 0) {
			vq->dead = true;
			virtio_needs_reset(&v->vdev, "corrupt tx ring");
			break;
		}
		taken++;
		if (ret != VQ_BAD_CHAIN)
			tx_packet(v, &e);
		vq_push(&vq->q->vq, e.head, 0);
		vq->need_signal = true;
	}
	/* Replies (responses, credit, resets) go out at once. */
	rx_flush(v);
	return taken;
}

static void on_conn_readable(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct vsock_conn *c = container_of(h, struct vsock_conn, rd);
	struct virtio_vsock *v = ctx->owner;
	unsigned long port;
	char *nl, *end;
	ssize_t n;

	if (c->state != C_HOST_LINE) {
		rx_flush(v);
		return;
	}
	/* "CONNECT <port>\n", in pieces if the host wrote it so. */
	n = recv(c->fd, c->line + c->line_len, sizeof(c->line) - 1 - c->line_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		conn_close(v, c);
		return;
	}
	c->line_len += (size_t)n;
	c->line[c->line_len] = 0;
	nl = strchr(c->line, '\n');
	if (!nl) {
		if (c->line_len == sizeof(c->line) - 1)
			conn_close(v, c);
		return;
	}
	errno = 0;
	port = strncmp(c->line, "CONNECT ", 8) ? 0 : strtoul(c->line + 8, &end, 10);
	if (!port || errno || end != nl || port > UINT32_MAX || nl[1]) {
		conn_close(v, c); /* bytes after the line would be lost: a client error */
		return;
	}
	c->guest_port = (uint32_t)port;
	do
		c->host_port = v->next_local_port++;
	while (c->host_port < LOCAL_PORT_FIRST || conn_find(v, c->host_port, c->guest_port));
	c->peer_buf_alloc = 0; /* until the guest's RESPONSE says */
	c->state = C_HOST_REQUEST;
	c->pending = P_REQUEST;
	rx_flush(v);
}

static void on_conn_writable(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct vsock_conn *c = container_of(h, struct vsock_conn, wr);
	struct virtio_vsock *v = ctx->owner;

	if (c->state == C_ESTABLISHED)
		backlog_flush(v, c);
	rx_flush(v);
}

static void on_listen(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct virtio_vsock *v = container_of(h, struct virtio_vsock, listen);
	struct vsock_conn *c;
	int fd;

	(void)ctx;
	while ((fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		c = conn_alloc(v);
		if (!c) {
			close(fd); /* VSOCK_MAX_CONNS: the host client sees EOF */
			continue;
		}
		c->fd = fd;
		c->state = C_HOST_LINE;
		if (conn_watch(v, c))
			conn_close(v, c);
	}
}

/* A new thread's ring: the sockets are watched from it (the polls of the last one died). */
static int vsock_attach(struct vio_engine *e, struct aio_ctx *ctx)
{
	struct virtio_vsock *v = e->dev;
	int ret;

	v->ctx = ctx;
	ctx->owner = v;
	v->listen.fd = v->listen_fd;
	v->listen.fn = on_listen;
	v->listen.armed = v->listen.cancel = false;
	ret = aio_watch(ctx, &v->listen);
	for (unsigned int i = 0; !ret && i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns[i];

		c->rd.armed = c->rd.cancel = c->wr.armed = c->wr.cancel = false;
		if (c->state == C_CLOSED)
			c->state = C_FREE;
		if (c->state == C_FREE)
			continue;
		ret = conn_watch(v, c);
		if (!ret && c->backlog_len)
			backlog_flush(v, c);
	}
	return ret;
}

static void vsock_detach(struct vio_engine *e, struct aio_ctx *ctx)
{
	struct virtio_vsock *v = e->dev;

	(void)ctx;
	v->ctx = NULL;
}

static const struct vio_engine_ops vsock_engine_ops = {
	.drain = drain,
	.attach = vsock_attach,
	.detach = vsock_detach,
};

/* --- virtio ops ------------------------------------------------------------------------- */

static void vsock_config_read(struct virtio_dev *d, unsigned int off, void *buf, unsigned int len)
{
	struct virtio_vsock *v = d->priv;

	/* The guest reads its CID (Linux does on a transport reset): the held requests go. */
	if (off < sizeof(v->cfg.guest_cid) && atomic_exchange(&v->hold_requests, false))
		virtio_queue_kick(v->vqs[Q_RX].vio.q);
	if (off < sizeof(v->cfg) && len <= sizeof(v->cfg) - off)
		memcpy(buf, (uint8_t *)&v->cfg + off, len);
	else
		memset(buf, 0, len);
}

static int vsock_start(struct virtio_dev *d)
{
	struct virtio_vsock *v = d->priv;
	return vio_engine_start(&v->engine);
}

/* Reset: the driver forgot every connection; the host sockets are closed. */
static void vsock_stop(struct virtio_dev *d)
{
	struct virtio_vsock *v = d->priv;

	vio_engine_stop(&v->engine);
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		conn_close(v, &v->conns[i]);
		v->conns[i].state = C_FREE;
	}
	v->nr_orphan = 0;
}

/* Pause: connections stay, the host sockets buffer what arrives meanwhile. */
static void vsock_pause(struct virtio_dev *d)
{
	struct virtio_vsock *v = d->priv;

	vio_engine_stop(&v->engine);
}

/* Connections are host state a snapshot does not carry: only the CID. */
static int vsock_save(struct virtio_dev *d, void *fdt, int node)
{
	struct virtio_vsock *v = d->priv;

	return st_put_u64(fdt, node, "cid", v->cfg.guest_cid);
}

/* After a restore the guest's connections are gone: it gets a transport reset. */
static int vsock_load(struct virtio_dev *d, const void *fdt, int node)
{
	struct virtio_vsock *v = d->priv;
	uint64_t cid;

	if (st_get_u64(fdt, node, "cid", &cid))
		return -EINVAL;
	/* A clone may have another CID: the guest learns it from the reset. */
	v->old_cid = cid != v->cfg.guest_cid ? cid : 0;
	atomic_store(&v->hold_requests, true);
	v->reset_event = true;
	return 0;
}

static const struct virtio_dev_ops vsock_ops = {
	.config_read = vsock_config_read,
	.start = vsock_start,
	.stop = vsock_stop,
	.pause = vsock_pause,
	.save = vsock_save,
	.load = vsock_load,
};

/* --- creation --------------------------------------------------------------------------- */

static int listen_on(const char *name, const char *path, int *out)
{
	struct sockaddr_un sa;
	bool replaced;
	int fd, ret = unix_addr(path, &sa);

	if (ret)
		return ret;
	/* One left by a minivmm that was killed must not keep the next VM from starting. */
	ret = unix_clear_stale(path, &replaced);
	if (replaced)
		pr_info("%s: %s: replacing a stale socket", name, path);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

int virtio_vsock_create(struct virtio_vsock **out, const struct guest_mem *mem,
			const struct virtio_vsock_opts *o)
{
	struct vio_engine_opts eo;
	struct virtio_vsock *v;
	int ret;

	if (o->cid < 3 || o->cid > UINT32_MAX - 1 || !o->uds_path)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->listen_fd = -1;
	v->next_local_port = LOCAL_PORT_FIRST;
	v->cfg.guest_cid = o->cid;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++)
		v->conns[i].fd = -1;
	snprintf(v->name, sizeof(v->name), "%s", o->name ? o->name : "vsock");
	v->uds_path = strdup(o->uds_path);
	ret = v->uds_path ? listen_on(v->name, o->uds_path, &v->listen_fd) : -ENOMEM;
	if (ret) {
		pr_err("%s: %s: %s", v->name, o->uds_path, strerror(-ret));
		goto fail;
	}
	ret = virtio_dev_init(&v->vdev, v->name, VIRTIO_ID_VSOCK, &vsock_ops, v, mem, NQ,
			      VSOCK_QUEUE_SIZE, 0, sizeof(v->cfg));
	if (ret)
		goto fail;
	v->vdev.pci_class = PCI_CLASS_OTHER;
	for (unsigned int i = 0; i < NQ; i++)
		v->vqs[i].dev = v;
	eo = (struct vio_engine_opts){
		.name = v->name,
		.threads = 1, /* serves every queue */
		.thread_cpu = o->thread_cpu >= 0 ? &o->thread_cpu : NULL,
		.ring_entries = 64,
		.role = SANDBOX_VSOCK_IO,
	};
	ret = vio_engine_init(&v->engine, &vsock_engine_ops, v, &v->vqs[0].vio, sizeof(v->vqs[0]),
			      v->vdev.q, NQ, &eo);
	if (ret)
		goto fail;
	v->vqs[Q_RX].vio.device_driven = true;
	v->vqs[Q_EVT].vio.device_driven = true;
	v->vdev.q[Q_RX].holds_buffers = true;
	v->vdev.q[Q_EVT].holds_buffers = true;
	*out = v;
	return 0;
fail:
	virtio_vsock_destroy(v);
	return ret;
}

unsigned int virtio_vsock_process(struct virtio_vsock *v, unsigned int qi)
{
	return vio_process(&v->engine, qi, NULL);
}

struct virtio_dev *virtio_vsock_virtio(struct virtio_vsock *v)
{
	return &v->vdev;
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	if (!v)
		return;
	virtio_dev_exit(&v->vdev);
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		if (v->conns[i].fd >= 0)
			close(v->conns[i].fd);
		free(v->conns[i].backlog);
	}
	vio_engine_exit(&v->engine);
	if (v->listen_fd >= 0) {
		close(v->listen_fd);
		unlink(v->uds_path);
	}
	free(v->uds_path);
	free(v);
}
