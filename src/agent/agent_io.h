/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Agent frames over a stream socket, for the agent and the host client alike. Every
 * recv/send is MSG_DONTWAIT | MSG_NOSIGNAL, so the socket's own flags are left alone
 * (the client's caller owns them) and a closed peer is an error, not a SIGPIPE.
 * Waits poll the socket and an optional cancel fd: readable means give up (-ECANCELED).
 */
#ifndef MINIVMM_AGENT_IO_H
#define MINIVMM_AGENT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent_proto.h"

/* Incoming frames, read piecewise: the payload buffer holds the largest one allowed. */
struct agent_rd {
	uint8_t hdr[AGENT_HDR_SIZE];
	struct agent_hdr h;
	size_t got;   /* bytes of the current frame read, header included */
	bool done;    /* the current frame is whole; the next step starts another */
	uint8_t *buf; /* AGENT_PAYLOAD_MAX + 1: a NUL follows every payload */
};

int agent_rd_init(struct agent_rd *rd);
void agent_rd_free(struct agent_rd *rd);
/*
 * Read what has arrived of the next frame, without waiting. 1: a whole frame is in
 * (rd->h, rd->buf, valid until the next step); 0: more must come; -ESHUTDOWN: EOF between
 * frames; -ECONNRESET: EOF inside one; -EPROTO: a header outside its type's limits
 * (checked before any of the payload is read); else recv's -errno.
 */
int agent_rd_step(struct agent_rd *rd, int fd);
/* Some of a frame read, not all of it. */
bool agent_rd_partial(const struct agent_rd *rd);
/* A whole frame, waiting up to @timeout_ms (< 0: forever) for each piece. */
int agent_rd_frame(struct agent_rd *rd, int fd, int cancel_fd, int timeout_ms);

/*
 * Wait for @events on @fd, up to @timeout_ms (< 0: forever). The revents (> 0), or
 * -ETIMEDOUT, -ECANCELED (@cancel_fd >= 0 became readable), -errno of poll.
 */
int agent_wait(int fd, short events, int cancel_fd, int timeout_ms);

/* Send a whole frame, waiting up to @timeout_ms for room each time: 0, -EPIPE (peer
 * gone), -ETIMEDOUT, -ECANCELED or send's -errno. */
int agent_send_frame(int fd, uint16_t type, const void *payload, uint32_t len, int cancel_fd,
		     int timeout_ms);

/* One outgoing frame at a time, sent as room appears (for poll loops). */
struct agent_wr {
	uint8_t *buf; /* AGENT_HDR_SIZE + AGENT_DATA_MAX */
	size_t len, off;
};

int agent_wr_init(struct agent_wr *w);
void agent_wr_free(struct agent_wr *w);
/* Payload area of the frame being built. */
static inline uint8_t *agent_wr_payload(struct agent_wr *w)
{
	return w->buf + AGENT_HDR_SIZE;
}
/* Queue the frame whose payload (@len bytes) is at agent_wr_payload(); @w must be empty. */
void agent_wr_queue(struct agent_wr *w, uint16_t type, uint32_t len);
static inline bool agent_wr_busy(const struct agent_wr *w)
{
	return w->off < w->len;
}
/* Send what fits now: 1 all sent, 0 some left, -EPIPE or send's -errno. */
int agent_wr_flush(struct agent_wr *w, int fd);

/* CLOCK_MONOTONIC in ms. */
int64_t agent_now_ms(void);

#endif
