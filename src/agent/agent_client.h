/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host side of the guest agent (docs/agent.md): run commands in the guest and copy files
 * both ways, over a connected stream socket. The agent runs in the guest, so nothing it
 * says is trusted: every frame is checked against the protocol's limits, memory stays
 * bounded whatever it sends, and waits for it are bounded by a timeout.
 *
 * No globals: one struct agent_conn per connection, used by one thread at a time
 * (different connections from different threads at once are fine). Calls return 0 or
 * a negative errno: the agent's own (-ENOENT for a missing guest file...) or a local one
 * (-EPROTO: the agent broke the protocol, -ETIMEDOUT, -ECANCELED, -EPIPE: it hung up).
 * agent_conn_error() says which, in words. After an error that leaves the stream out of
 * step (any but an ERROR answer of the agent), every later call fails the same way: close
 * the socket (the agent then kills the command that was running) and connect again.
 */
#ifndef MINIVMM_AGENT_CLIENT_H
#define MINIVMM_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent_proto.h"

#define AGENT_CLIENT_TIMEOUT_MS 60000 /* default bound on each wait for the agent */

struct agent_conn;

/* State for a connected socket @fd (which stays the caller's to close), or NULL (ENOMEM). */
struct agent_conn *agent_conn_new(int fd);
void agent_conn_free(struct agent_conn *c);
/* The HELLO exchange; first, before any other call. -EPROTONOSUPPORT: another version. */
int agent_hello(struct agent_conn *c);
/* What the agent serves (AGENT_CAP_*), after agent_hello(). */
uint64_t agent_conn_caps(const struct agent_conn *c);
/* Bound on each wait for the agent in ms (0: none); a running command is not bounded by it
 * but by its own timeout. */
void agent_conn_set_timeout(struct agent_conn *c, int timeout_ms);
/* A fd (eventfd, pipe) that, once readable, makes the call in progress (on another
 * thread) fail with -ECANCELED; -1 for none. */
void agent_conn_set_cancel_fd(struct agent_conn *c, int fd);
/* What went wrong in the last failed call ("" if nothing). */
const char *agent_conn_error(const struct agent_conn *c);
/* false once an error left the stream out of step. */
bool agent_conn_usable(const struct agent_conn *c);

struct agent_exec_spec {
	const char *const *argv; /* NULL-terminated; argv[0] is looked up in the command's PATH */
	const char *const *env;	 /* NULL-terminated "NAME=value" entries, or NULL */
	bool env_clear;		 /* env is the whole environment (else set over the agent's) */
	const char *cwd;	 /* NULL: / */
	uint32_t timeout_ms;	 /* 0: none; then SIGTERM to the group, SIGKILL after grace */
	uint32_t grace_ms;	 /* 0: AGENT_GRACE_MS */
	bool forward_stdin; /* read stdin_fd to EOF into the command's stdin (else /dev/null) */
	int stdin_fd;
	bool
	    forward_signals; /* each int read from signal_fd (a pipe) signals the command's group */
	int signal_fd;
	bool set_uid, set_gid;
	uint32_t uid, gid;
};

enum agent_stream { AGENT_OUT = 1, AGENT_ERR = 2 };

struct agent_exec_ops {
	/* The command runs as @pid in the guest. May be NULL. */
	int (*started)(void *opaque, int pid);
	/* @len bytes (>= 1) of its stdout or stderr, as they come. May be NULL (dropped). */
	int (*output)(void *opaque, enum agent_stream stream, const void *buf, size_t len);
	/* A negative return from either ends agent_exec() with it (the stream is then out of
	 * step: close the socket and the agent kills the command). */
};

struct agent_exec_result {
	int pid;
	bool signaled;	/* status is the signal that killed it */
	bool timed_out; /* the timeout expired (and the group was killed) */
	bool core;
	int status; /* exit code 0..255, or the signal */
};

/*
 * Run a command and wait for it (@res is zeroed first, its pid set at STARTED).
 * 0 when it ran (@res says how it ended); -errno from the
 * agent when it could not start (-ENOENT: no such program, -ENOTDIR/-ENOENT: bad cwd) or
 * -EINVAL/-E2BIG for a spec the protocol cannot carry; else a connection error.
 */
int agent_exec(struct agent_conn *c, const struct agent_exec_spec *spec,
	       const struct agent_exec_ops *ops, void *opaque, struct agent_exec_result *res);

/* agent_exec() with stdout and stderr kept, each up to @max bytes (the rest is counted
 * as truncated and dropped). @cap is always set: agent_capture_free() it, even after an
 * error (it holds what came before). */
struct agent_capture {
	char *out, *err; /* NUL-terminated, malloc'd (NULL when empty) */
	size_t out_len, err_len;
	bool out_truncated, err_truncated;
	size_t max;
};

int agent_exec_capture(struct agent_conn *c, const struct agent_exec_spec *spec, size_t max,
		       struct agent_capture *cap, struct agent_exec_result *res);
void agent_capture_free(struct agent_capture *cap);

/*
 * Copy @src_fd from where it is to its EOF into @path in the guest, with @mode (07777
 * bits, exactly): written to a temp file beside it, synced, renamed into place. @copied
 * (may be NULL) gets the bytes written. A read error on @src_fd aborts the copy (the temp
 * file is removed; the connection stays usable).
 */
int agent_copy_to_guest(struct agent_conn *c, int src_fd, const char *path, uint32_t mode,
			uint64_t *copied);
/*
 * Copy the guest's regular file @path to @dst_fd (written at its offset), at most @max
 * bytes: -EFBIG past that. @mode (may be NULL) gets its permission bits. A write error
 * on @dst_fd or -EFBIG leaves the connection unusable (the rest was on its way).
 */
int agent_copy_from_guest(struct agent_conn *c, const char *path, int dst_fd, uint64_t max,
			  uint32_t *mode, uint64_t *copied);

int agent_stat(struct agent_conn *c, const char *path, bool nofollow, struct agent_statinfo *st);
/* mkdir with @mode exactly (the agent's umask does not apply). */
int agent_mkdir(struct agent_conn *c, const char *path, uint32_t mode);

#endif
