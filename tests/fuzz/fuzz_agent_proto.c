// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guest agent protocol, both sides. The first byte picks the side:
 *  0: what the agent parses: the rest is a run of frames from a host; each header and
 *     request payload goes through its decoder, and what decodes must encode back to the
 *     same bytes and hold what the agent relies on (argv[0] set, env with '=', paths
 *     NUL-free).
 *  1-4: what the host client parses: the rest is what an agent sent, served on a
 *     socketpair to agent_hello() then exec (1), copy from guest (2), copy to guest (3)
 *     or stat and mkdir (4). Whatever it is, the client must return, bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent_client.h"
#include "agent/agent_io.h"
#include "util.h"

static void agent_side(const uint8_t *p, size_t size)
{
	static uint8_t enc[AGENT_EXEC_MAX];

	while (size >= AGENT_HDR_SIZE) {
		struct agent_hdr h;
		struct agent_exec_req r;
		struct agent_path_req pr;
		struct agent_hello hello;
		uint64_t total;
		uint32_t flags;
		int sig;

		if (agent_hdr_decode(p, &h))
			return;
		p += AGENT_HDR_SIZE;
		size -= AGENT_HDR_SIZE;
		if (h.len > size)
			return;
		switch (h.type) {
		case AGENT_EXEC:
			if (!agent_exec_decode(p, h.len, &r)) {
				char **argv = calloc(r.argc + 1, sizeof(*argv));
				char **env = calloc(r.envc + 1, sizeof(*env));

				if (!argv || !env)
					abort();
				agent_exec_vectors(&r, argv, env);
				if (!argv[0][0] || argv[r.argc] || env[r.envc] ||
				    strlen(r.cwd) >= AGENT_PATH_MAX)
					abort();
				for (uint32_t i = 0; i < r.envc; i++)
					if (!strchr(env[i], '=') || env[i][0] == '=')
						abort();
				r.argv = (const char *const *)argv;
				r.env = (const char *const *)env;
				if (agent_exec_encode(enc, sizeof(enc), &r) != (int)h.len ||
				    memcmp(enc, p, h.len))
					abort();
				free(argv);
				free(env);
			}
			break;
		case AGENT_READ:
		case AGENT_WRITE:
		case AGENT_STAT:
		case AGENT_MKDIR:
			if (!agent_path_decode(h.type, p, h.len, &pr)) {
				if (strlen(pr.path) + 1 + (h.type == AGENT_READ ? 0 : 4) != h.len)
					abort();
				if (agent_path_encode(enc, sizeof(enc), h.type, pr.arg, pr.path) !=
					(int)h.len ||
				    memcmp(enc, p, h.len))
					abort();
			}
			break;
		case AGENT_SIGNAL:
			if (!agent_signal_decode(p, h.len, &sig) &&
			    (sig < 1 || sig > AGENT_SIG_MAX))
				abort();
			break;
		case AGENT_END:
			agent_end_decode(p, h.len, &total, &flags);
			break;
		case AGENT_HELLO:
			agent_hello_decode(p, h.len, &hello);
			break;
		default:
			break;
		}
		p += h.len;
		size -= h.len;
	}
}

static void client_side(int mode, const uint8_t *p, size_t size)
{
	const char *argv[] = { "sh", "-c", "true", NULL };
	struct agent_exec_spec spec = { .argv = argv, .timeout_ms = 100 };
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_statinfo st;
	struct agent_conn *c;
	int fd[2], null, src;
	uint64_t copied;
	uint32_t m;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd))
		abort();
	/* The "agent" said all this, then stopped talking. */
	if (write_all(fd[1], p, size))
		abort();
	shutdown(fd[1], SHUT_WR);
	c = agent_conn_new(fd[0]);
	if (!c)
		abort();
	agent_conn_set_timeout(c, 200);
	if (agent_hello(c))
		goto out;
	switch (mode) {
	case 1:
		if (!agent_exec_capture(c, &spec, 4096, &cap, &res)) {
			if (res.pid < 1 ||
			    (res.signaled ? res.status < 1 || res.status > AGENT_SIG_MAX
					  : res.status > 255))
				abort();
			if (cap.out_len > 4096 || cap.err_len > 4096)
				abort();
		}
		agent_capture_free(&cap);
		break;
	case 2:
		null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (!agent_copy_from_guest(c, "/f", null, 1 << 20, &m, &copied) &&
		    (copied > 1 << 20 || m & ~07777U))
			abort();
		close(null);
		break;
	case 3:
		src = memfd_create("src", MFD_CLOEXEC);
		if (src < 0 || write_all(src, "0123456789", 10) || lseek(src, 0, SEEK_SET))
			abort();
		if (!agent_copy_to_guest(c, src, "/f", 0644, &copied) && copied != 10)
			abort();
		close(src);
		break;
	default:
		if (!agent_stat(c, "/f", false, &st) &&
		    (st.mode & ~0177777U || st.mtime_nsec >= 1000000000U))
			abort();
		agent_mkdir(c, "/d", 0755);
		break;
	}
out:
	if (!agent_conn_usable(c) && !agent_conn_error(c)[0])
		abort(); /* every failure says why */
	agent_conn_free(c);
	close(fd[0]);
	close(fd[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Small enough to sit in the socket buffer at once. */
	if (!size || size > 65536)
		return 0;
	if (data[0] % 5 == 0)
		agent_side(data + 1, size - 1);
	else
		client_side(data[0] % 5, data + 1, size - 1);
	return 0;
}
