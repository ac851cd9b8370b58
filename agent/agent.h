/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * minivmm-agent internals. The main process listens and forks one process per
 * connection (conn.c), which runs that connection's requests one after another:
 * EXEC (exec.c), READ/WRITE (files.c), STAT/MKDIR (conn.c). Protocol: docs/agent.md.
 */
#ifndef MINIVMM_AGENT_AGENT_H
#define MINIVMM_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/agent_io.h"

#define HELLO_TIMEOUT_MS 30000 /* a connection that says nothing is dropped */

/* One connection, in its own process. */
struct conn {
	int fd;
	int stop_fd; /* signalfd: SIGTERM/SIGINT, the agent is stopping */
	int chld_fd; /* signalfd: SIGCHLD */
	unsigned int id;
	bool verbose;
	struct agent_rd rd; /* the request being served is in rd.buf */
	struct agent_wr wr; /* frames to the host from poll loops; a file buffer otherwise */
};

/* Serve @fd (a connected socket) to its end; the process's exit status. */
int conn_serve(int fd, unsigned int id, bool verbose);

/*
 * Request handlers, called with the request in c->rd. 0: done (an ERROR may have been
 * sent), the connection goes on; < 0: the connection ends (host gone, protocol error).
 */
int exec_run(struct conn *c);
int file_read(struct conn *c);
int file_write(struct conn *c);

/* Send a frame; < 0 when the host is gone or the agent stops. */
int conn_send(struct conn *c, uint16_t type, const void *payload, uint32_t len);
/* Send ERROR (@err > 0, printf-style message): 0, or < 0 from conn_send. */
int conn_error(struct conn *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A request the host should not have sent: ERROR EPROTO, then -EPROTO (end). */
int conn_proto_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "minivmm-agent[pid]: ..." on stderr. */
void alog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* write() all of @len: 0 or -errno. */
int write_full(int fd, const void *buf, size_t len);

#endif
