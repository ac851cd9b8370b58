// SPDX-License-Identifier: GPL-2.0-or-later
/* libminivmm: commands and files through the guest agent (docs/agent.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_client.h"
#include "agent/agent_connect.h"
#include "lib/lib.h"
#include "util.h"

#define CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_OUTPUT (16u << 20)

/* A connection to the agent, past HELLO, in *@out; *@fd is its socket. */
static int agent(struct minivmm_vm *vm, uint32_t port, int wait_ms, struct agent_conn **out,
		 int *fd)
{
	struct agent_conn *c;
	char err[512];
	int ret;

	if (!port)
		port = vm->agent_port ? vm->agent_port : AGENT_DEFAULT_PORT;
	ret = agent_connect_api(vm->api, port, CONNECT_TIMEOUT_MS,
				wait_ms ? wait_ms : vm->agent_wait_ms, fd, err, sizeof(err));
	if (ret)
		return lib_fail(ret, "%s", err);
	c = agent_conn_new(*fd);
	if (!c) {
		ret = lib_fail(-ENOMEM, "out of memory");
		goto fail;
	}
	ret = agent_hello(c);
	if (ret) {
		lib_fail(ret, "the guest agent: %s", agent_conn_error(c));
		agent_conn_free(c);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	close(*fd);
	*fd = -1;
	return ret;
}

static void done(struct agent_conn *c, int fd)
{
	agent_conn_free(c);
	close(fd);
}

/* stdin_data as a file the agent client reads to its end. */
static int stdin_file(const void *data, size_t len)
{
	int fd = memfd_create("minivmm-stdin", MFD_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = write_all(fd, data, len);
	if (!ret && lseek(fd, 0, SEEK_SET))
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

struct fds {
	int out, err;
};

static int to_fds(void *opaque, enum agent_stream stream, const void *buf, size_t len)
{
	const struct fds *f = opaque;
	int fd = stream == AGENT_ERR ? f->err : f->out;

	return fd < 0 ? 0 : write_all(fd, buf, len);
}

int minivmm_exec(struct minivmm_vm *vm, const struct minivmm_exec *e, struct minivmm_exec_result *r)
{
	struct agent_exec_spec spec = {
		.argv = e->argv,
		.env = e->env,
		.cwd = e->cwd,
		.timeout_ms = e->timeout_ms > 0 ? (uint32_t)e->timeout_ms : 0,
		.stdin_fd = -1,
		.signal_fd = -1,
	};
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_conn *c;
	int fd, in = -1, ret;

	memset(r, 0, sizeof(*r));
	if (!e->argv || !e->argv[0])
		return lib_fail(-EINVAL, "no command");
	if (e->use_fds && e->stdin_fd >= 0) {
		spec.forward_stdin = true;
		spec.stdin_fd = e->stdin_fd;
	} else if (e->stdin_data) {
		in = stdin_file(e->stdin_data, e->stdin_len);
		if (in < 0)
			return lib_fail(in, "stdin: %s", strerror(-in));
		spec.forward_stdin = true;
		spec.stdin_fd = in;
	}
	if (e->use_fds && e->signal_fd >= 0) {
		spec.forward_signals = true;
		spec.signal_fd = e->signal_fd;
	}
	ret = agent(vm, e->port, e->wait_agent_ms, &c, &fd);
	if (ret)
		goto out;
	if (e->use_fds) {
		const struct agent_exec_ops ops = { .output = to_fds };
		struct fds f = { e->stdout_fd, e->stderr_fd };

		ret = agent_exec(c, &spec, &ops, &f, &res);
	} else {
		ret = agent_exec_capture(
		    c, &spec, e->max_output ? e->max_output : DEFAULT_MAX_OUTPUT, &cap, &res);
		r->out = cap.out;
		r->err = cap.err;
		r->out_len = cap.out_len;
		r->err_len = cap.err_len;
		r->out_truncated = cap.out_truncated;
		r->err_truncated = cap.err_truncated;
	}
	if (ret)
		lib_fail(ret, "%s: %s", e->argv[0], agent_conn_error(c));
	r->status = res.status;
	r->signaled = res.signaled;
	r->timed_out = res.timed_out;
	done(c, fd);
out:
	if (in >= 0)
		close(in);
	return ret;
}

void minivmm_set_agent(struct minivmm_vm *vm, uint32_t port, int wait_ms)
{
	vm->agent_port = port;
	vm->agent_wait_ms = wait_ms > 0 ? wait_ms : 0;
}

void minivmm_exec_result_free(struct minivmm_exec_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

int minivmm_copy_to_guest(struct minivmm_vm *vm, const char *host_path, const char *guest_path,
			  int mode)
{
	struct agent_conn *c;
	struct stat st;
	int fd, src, ret;

	src = open(host_path, O_RDONLY | O_CLOEXEC);
	if (src < 0 || fstat(src, &st)) {
		ret = lib_fail(-errno, "%s: %s", host_path, strerror(errno));
		if (src >= 0)
			close(src);
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		close(src);
		return lib_fail(-EINVAL, "%s: not a regular file", host_path);
	}
	ret = agent(vm, 0, 0, &c, &fd);
	if (ret) {
		close(src);
		return ret;
	}
	ret = agent_copy_to_guest(c, src, guest_path,
				  mode >= 0 ? (uint32_t)mode : st.st_mode & 07777, NULL);
	if (ret)
		lib_fail(ret, "guest:%s: %s", guest_path, agent_conn_error(c));
	done(c, fd);
	close(src);
	return ret;
}

int minivmm_copy_from_guest(struct minivmm_vm *vm, const char *guest_path, const char *host_path)
{
	struct agent_conn *c;
	uint32_t mode = 0;
	int fd, dst, ret;

	ret = agent(vm, 0, 0, &c, &fd);
	if (ret)
		return ret;
	dst = open(host_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (dst < 0) {
		ret = lib_fail(-errno, "%s: %s", host_path, strerror(errno));
		done(c, fd);
		return ret;
	}
	ret = agent_copy_from_guest(c, guest_path, dst, UINT64_MAX, &mode, NULL);
	if (ret)
		lib_fail(ret, "guest:%s: %s", guest_path, agent_conn_error(c));
	else if (fchmod(dst, mode & 07777))
		ret = lib_fail(-errno, "%s: %s", host_path, strerror(errno));
	if (close(dst) && !ret)
		ret = lib_fail(-errno, "%s: %s", host_path, strerror(errno));
	done(c, fd);
	return ret;
}
