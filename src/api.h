/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Control socket of a running VM: a line protocol on a Unix stream socket
 * (docs/api.md). The server runs one thread; the client sends one request.
 */
#ifndef MINIVMM_API_H
#define MINIVMM_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_LINE_MAX	      4096 /* longest request, without its '\n' */
#define API_CLIENT_TIMEOUT_MS 5000 /* a connection idle this long is closed */
#define API_MSG_MAX	      8192 /* msg/json buffers of the ops: fits a longest path, quoted */

/*
 * What the server calls, from its own thread, one request at a time. Each
 * returns 0 or a negative errno. @msg/@json (NUL-terminated, at most @len
 * bytes with the NUL) become the reply: after "ok " on success, after
 * "error ENAME: " on failure (empty: strerror). A NULL op answers ENOTSUP.
 * An op must not call api_server_stop() (it would wait for itself).
 */
struct api_ops {
	int (*pause)(void *ctx);
	int (*resume)(void *ctx);
	/* @path is absolute; with @stop the VM stops after the save (else resumes);
	 * @raw: guest memory uncompressed (for comparison). */
	int (*save)(void *ctx, const char *path, bool stop, bool raw, char *msg, size_t msglen);
	/* {"state":"running|paused","vcpus":N,"memory":BYTES,"uptime_ms":N} */
	int (*status)(void *ctx, char *json, size_t len);
	int (*stop)(void *ctx);
	/* A stream to the guest's vsock @port: *@fd connected to the VM's vsock socket with
	 * "CONNECT <port>\n" sent (docs/vsock.md); it goes to the client (SCM_RIGHTS). */
	int (*vsock)(void *ctx, uint32_t port, int *fd, char *msg, size_t msglen);
	/* The guest's serial console ([console] serial = api): *@fd, a socket that carries
	 * its output (the last 64 KiB first) and takes keys for it; to the client. */
	int (*console)(void *ctx, int *fd, char *msg, size_t msglen);
	/* The balloon ([balloon]): with @set, ask the guest to keep @size bytes of memory;
	 * either way @json gets its state and the guest's last statistics (docs/balloon.md),
	 * and fresh statistics are asked for. */
	int (*balloon)(void *ctx, bool set, uint64_t size, char *json, size_t len);
};

struct api_server;

/*
 * Listen on a new socket at @path, mode 0600 from the moment it exists.
 * A stale socket at @path (nobody listening) is replaced; a live one, or
 * anything else at @path, is an error (-EADDRINUSE, -EEXIST) and left alone.
 * Errors are also reported with pr_err(). @ops and @ctx must outlive the server.
 */
int api_server_start(const char *path, const struct api_ops *ops, void *ctx,
		     struct api_server **out);
/* The same with the idle timeout of a connection in ms (> 0). */
int api_server_start_timeout(const char *path, const struct api_ops *ops, void *ctx,
			     int client_timeout_ms, struct api_server **out);
/*
 * Stop the thread (after the request in progress, if any), close every
 * connection, remove the socket file if it is still ours, free @s. NULL is a no-op.
 */
void api_server_stop(struct api_server *s);
/*
 * An asynchronous event for every subscribed connection (docs/api.md): @name, and @data, a
 * JSON object or NULL. From any thread; never blocks (a full queue drops its oldest events,
 * which the subscribers are told). NULL @s: nothing.
 */
void api_server_event(struct api_server *s, const char *name, const char *data);

/*
 * Connect to @path, send @request (one line, no '\n'), and store the reply
 * line without its '\n' in @reply. @timeout_ms bounds the whole call
 * (0: wait forever, for a save of a big VM). Returns 0 when a reply arrived
 * (which may be "error ..."), -EMSGSIZE when it did not fit in @len (@reply
 * holds its start), -ETIMEDOUT, -EPROTO (closed without a reply), or the
 * errno of socket()/connect()/send(): -ENOENT, -ECONNREFUSED, ...
 */
int api_call(const char *path, const char *request, char *reply, size_t len, int timeout_ms);
/* api_call() for a request whose reply carries a file descriptor (vsock): *@got_fd gets it,
 * -1 when none came (an error reply) or the call failed. The caller closes it. */
int api_call_fd(const char *path, const char *request, char *reply, size_t len, int timeout_ms,
		int *got_fd);

/*
 * @request on @path, whose "ok" reply carries a descriptor: 0 and *@fd, or -errno with
 * the reason in @err. *@answered says whether the VM replied (then -errno is its error
 * reply's, e.g. -ESRCH) or the call failed (-ENOENT: no socket, -ECONNREFUSED, ...).
 */
int api_request_fd(const char *path, const char *request, int timeout_ms, int *fd, bool *answered,
		   char *err, size_t errlen);

/*
 * Split a reply: "ok" / "ok BODY" return 0, "error ENAME: MSG" returns
 * -errno of ENAME (-EIO if the name is unknown); *body points to BODY or MSG
 * ("" when none). Anything else returns -EPROTO with *body = @reply.
 */
int api_reply_parse(const char *reply, const char **body);

/*
 * Append @s as a JSON string (quoted, escaped) to the NUL-terminated @buf of
 * @size bytes: for building save/status replies. -ENOSPC if it does not fit
 * (@buf unchanged).
 */
int api_json_append_string(char *buf, size_t size, const char *s);

/* A parsed request (internal: api.c and the tests). */
enum api_cmd {
	API_PAUSE,
	API_RESUME,
	API_STATUS,
	API_SAVE,
	API_STOP,
	API_VSOCK,
	API_SUBSCRIBE,
	API_CONSOLE,
	API_BALLOON,
};
#define API_ID_MAX 72 /* a request id as JSON text: a number or a string of up to 64 bytes */
struct api_request {
	enum api_cmd cmd;
	const char *path; /* API_SAVE: absolute, points into the parsed line */
	bool stop;	  /* API_SAVE --stop */
	bool raw;	  /* API_SAVE --raw */
	uint32_t port;	  /* API_VSOCK */
	bool has_size;	  /* API_BALLOON with a size: set the target */
	uint64_t size;	  /* API_BALLOON: bytes the guest should keep */
	bool json;	  /* the JSON form: the reply is JSON too */
	char id[API_ID_MAX]; /* its "id" as JSON text (a number or a quoted string), "" if none */
};

/*
 * Parse one request, "save --stop /x" or {"cmd":"save","path":"/x","stop":true}
 * (NUL-terminated, no '\n'; JSON strings are decoded in place). Returns 0,
 * or -EINVAL with the reason for the reply in @err.
 */
int api_parse_request(char *line, struct api_request *req, char *err, size_t errlen);

/* "EINVAL" for EINVAL; "E<n>" in @buf for a number without a name. */
const char *api_errno_name(int err, char buf[16]);

#endif
