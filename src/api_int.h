/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The control socket server's insides, shared by api.c and api_events.c. */
#ifndef MINIVMM_API_INT_H
#define MINIVMM_API_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "api.h"

#define API_MAX_CONNS 8		 /* more wait in the listen backlog */
#define API_OUT_MAX   (64 << 10) /* events a subscriber has not read yet: then it is closed */
#define API_EVQ_LEN   256	 /* events not yet handed to the subscribers */

struct api_conn {
	int fd; /* -1: free slot */
	uint64_t deadline_ns;
	bool subscribed;
	bool json;	     /* the request being answered was JSON */
	char id[API_ID_MAX]; /* and its id */
	size_t len, out_len;
	char buf[API_LINE_MAX + 1]; /* a longest line and its '\n' */
	char *out; /* subscribers: API_OUT_MAX bytes of events waiting for the socket */
};

struct api_server {
	const struct api_ops *ops;
	void *ctx;
	char *path;
	dev_t dev; /* of the socket we bound: only that one is removed */
	ino_t ino;
	int listen_fd, wake_fd;
	int timeout_ms;
	pthread_t thread;
	struct api_conn conns[API_MAX_CONNS];

	/* Events from any thread, handed over through ev_fd. */
	int ev_fd;
	pthread_mutex_t ev_lock;
	char *evq[API_EVQ_LEN];
	unsigned int ev_head, ev_n;
	uint64_t ev_dropped;
};

extern const char api_greeting[];

/* Send all of @len, waiting at most the idle timeout for a slow reader. */
int api_send_line(struct api_server *s, int fd, const char *buf, size_t len);
void api_conn_close(struct api_conn *c);
/* Send what @c->out holds: all of it (@wait, bounded by the timeout), or what the socket
 * takes now. Non-zero: the connection failed. */
int api_conn_flush(struct api_server *s, struct api_conn *c, bool wait);
/* Queued events to every subscriber's buffer (a subscriber whose buffer is full is closed),
 * then as much as each socket takes. The server thread only. */
void api_events_deliver(struct api_server *s);
void api_events_free(struct api_server *s);

#endif
