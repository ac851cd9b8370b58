// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * EXEC: run a command in its own session (so its process group is its own), with pipes
 * for stdin, stdout and stderr, and relay in one poll loop: STDIN frames to its stdin,
 * its stdout and stderr to STDOUT/STDERR frames as they come. Nothing is buffered
 * beyond one frame each way: while the host does not read, the pipes fill and the
 * command blocks; while the command does not read, the agent stops reading the socket.
 *
 * The leader is waited for with WNOWAIT and reaped only at the end, so its pid stays
 * the group's id (never reused) for as long as the group may be signalled.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

/* What failed in the child before the command ran, told through a pipe. */
enum step { STEP_CREDS, STEP_CWD, STEP_ENV, STEP_EXEC };
static const char *const step_names[] = { "set credentials", "chdir", "environment", "exec" };

struct child_report {
	int step;
	int err;
};

struct ex {
	struct conn *c;
	struct agent_exec_req req;
	pid_t pid;
	int in_fd;	     /* the command's stdin (write end), -1 once closed */
	int out_fd[2];	     /* its stdout and stderr (read ends), -1 at EOF */
	int last;	     /* the stream read last: the other goes first */
	const uint8_t *pend; /* STDIN data not yet in the pipe (in c->rd.buf) */
	size_t pend_len;
	bool stdin_open; /* STDIN frames may still come */
	bool exited;	 /* the leader is a zombie (reaped at the end) */
	bool gone;	 /* the host hung up, broke the protocol, or the agent stops */
	bool timed_out;
	bool killing;		  /* SIGTERM sent to the group: SIGKILL follows */
	int64_t term_at, kill_at; /* -1: not armed */
};

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

extern char **environ;

/* The agent's environment with @add set over it, or @add alone with ENV_CLEAR. */
static char **make_env(const struct agent_exec_req *r, char **add)
{
	size_t n = 0, k = 0;
	char **env;

	if (r->flags & AGENT_EXEC_ENV_CLEAR)
		return add;
	while (environ[n])
		n++;
	env = calloc(n + r->envc + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t name = strchrnul(environ[i], '=') - environ[i];
		bool replaced = false;

		for (uint32_t j = 0; j < r->envc && !replaced; j++)
			replaced = !strncmp(add[j], environ[i], name) && add[j][name] == '=';
		if (!replaced)
			env[k++] = environ[i];
	}
	for (uint32_t j = 0; j < r->envc; j++)
		env[k++] = add[j];
	return env;
}

/* In the child: become the command, or report why not and exit 127. */
static void __attribute__((noreturn))
child(const struct agent_exec_req *r, char **argv, char **add, int fds[3], int report)
{
	struct child_report rep = { STEP_CREDS, 0 };
	sigset_t none;
	char **env;

	setsid();
	for (int i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0)
			_exit(127);
	/* Dispositions the agent changed (SIGPIPE, SIGHUP ignored) and its blocked mask. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (r->flags & (AGENT_EXEC_UID | AGENT_EXEC_GID)) {
		if (setgroups(0, NULL) && errno != EPERM)
			goto fail;
		if ((r->flags & AGENT_EXEC_GID) && setgid(r->gid))
			goto fail;
		if ((r->flags & AGENT_EXEC_UID) && setuid(r->uid))
			goto fail;
	}
	rep.step = STEP_CWD;
	if (r->cwd[0] && chdir(r->cwd))
		goto fail;
	rep.step = STEP_ENV;
	env = make_env(r, add);
	if (!env)
		goto fail;
	/* execvp() searches the PATH of the environment it runs in: the command's. */
	environ = env;
	rep.step = STEP_EXEC;
	execvp(argv[0], argv);
fail:
	rep.err = errno ? errno : EIO;
	write_full(report, &rep, sizeof(rep));
	_exit(127);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

/* Start the command. 0, or an errno for the ERROR reply with @what failed. */
static int spawn(struct ex *x, char **argv, char **env, const char **what)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, rep[2] = { -1, -1 };
	struct child_report cr;
	ssize_t n;
	int ret = 0;

	*what = "pipe";
	if (x->req.flags & AGENT_EXEC_STDIN) {
		if (pipe2(in, O_CLOEXEC))
			ret = errno;
	} else {
		*what = "open /dev/null for";
		in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (in[0] < 0)
			ret = errno;
	}
	if (ret)
		goto out;
	*what = "pipe";
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(rep, O_CLOEXEC))
		ret = errno;
	if (ret)
		goto out;
	*what = "fork";
	x->pid = fork();
	if (x->pid < 0) {
		ret = errno;
		goto out;
	}
	if (!x->pid) {
		int fds[3] = { in[0], out[1], err[1] };

		child(&x->req, argv, env, fds, rep[1]);
	}
	close_fd(&rep[1]);
	do
		n = read(rep[0], &cr, sizeof(cr));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(cr)) {
		/* It never ran: reap it now, nothing else is in its group. */
		waitpid(x->pid, NULL, 0);
		x->pid = 0;
		*what = step_names[cr.step >= 0 && cr.step <= STEP_EXEC ? cr.step : STEP_EXEC];
		ret = cr.err > 0 ? cr.err : EIO;
		goto out;
	}
	x->in_fd = in[1];
	x->out_fd[0] = out[0];
	x->out_fd[1] = err[0];
	in[1] = out[0] = err[0] = -1;
	*what = "fcntl";
	if ((x->in_fd >= 0 && set_nonblock(x->in_fd)) || set_nonblock(x->out_fd[0]) ||
	    set_nonblock(x->out_fd[1]))
		ret = errno; /* the caller kills what started */
out:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
		close_fd(&rep[i]);
	}
	return ret;
}

static void signal_group(struct ex *x, int sig)
{
	if (x->pid > 0)
		kill(-x->pid, sig);
}

/* SIGTERM now, SIGKILL after the grace period. */
static void start_kill(struct ex *x)
{
	if (x->killing)
		return;
	x->killing = true;
	x->term_at = -1;
	signal_group(x, SIGTERM);
	x->kill_at = agent_now_ms() + (x->req.grace_ms ? x->req.grace_ms : AGENT_GRACE_MS);
}

/* The host is no longer there to talk to: stop relaying, end the command. */
static void host_gone(struct ex *x, const char *why)
{
	if (x->gone)
		return;
	if (x->c->verbose || strcmp(why, "hung up"))
		alog("conn %u: host %s during pid %d: killing its group", x->c->id, why, x->pid);
	x->gone = true;
	x->pend_len = 0;
	close_fd(&x->in_fd);
	close_fd(&x->out_fd[0]);
	close_fd(&x->out_fd[1]);
	start_kill(x);
}

static void feed_stdin(struct ex *x)
{
	while (x->pend_len && x->in_fd >= 0) {
		ssize_t n = write(x->in_fd, x->pend, x->pend_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* EPIPE: the command closed its stdin; what the host sends is dropped. */
			close_fd(&x->in_fd);
			break;
		}
		x->pend += n;
		x->pend_len -= n;
	}
	x->pend_len = 0;
	if (!x->stdin_open)
		close_fd(&x->in_fd);
}

/* A frame from the host while the command runs: 0, or -EPROTO. */
static int host_frame(struct ex *x)
{
	struct agent_rd *rd = &x->c->rd;
	int sig;

	switch (rd->h.type) {
	case AGENT_STDIN:
		if (!x->stdin_open)
			return -EPROTO;
		x->pend = rd->buf;
		x->pend_len = rd->h.len;
		feed_stdin(x);
		return 0;
	case AGENT_STDIN_EOF:
		if (!x->stdin_open)
			return -EPROTO;
		x->stdin_open = false;
		if (!x->pend_len)
			close_fd(&x->in_fd);
		return 0;
	case AGENT_SIGNAL:
		if (agent_signal_decode(rd->buf, rd->h.len, &sig))
			return -EPROTO;
		signal_group(x, sig);
		return 0;
	default:
		return -EPROTO;
	}
}

/* Read the frames that have come, until the command's stdin is full. */
static void from_host(struct ex *x)
{
	while (!x->gone && !x->pend_len) {
		int ret = agent_rd_step(&x->c->rd, x->c->fd);

		if (!ret)
			return;
		if (ret == 1)
			ret = host_frame(x);
		if (ret == -EPROTO)
			host_gone(x, "broke the protocol");
		else if (ret < 0)
			host_gone(x, "hung up");
	}
}

static void flush_host(struct ex *x)
{
	if (!x->gone && agent_wr_flush(&x->c->wr, x->c->fd) < 0)
		host_gone(x, "hung up");
}

/* One read of stream @i (0 stdout, 1 stderr) into a frame for the host. */
static void from_command(struct ex *x, int i)
{
	struct agent_wr *wr = &x->c->wr;
	ssize_t n;

	do
		n = read(x->out_fd[i], agent_wr_payload(wr), AGENT_DATA_MAX);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		close_fd(&x->out_fd[i]);
		return;
	}
	x->last = i;
	agent_wr_queue(wr, i ? AGENT_STDERR : AGENT_STDOUT, n);
	flush_host(x);
}

static void check_exit(struct ex *x)
{
	struct signalfd_siginfo si;
	siginfo_t info = { 0 };

	while (read(x->c->chld_fd, &si, sizeof(si)) > 0)
		;
	if (!x->exited && !waitid(P_PID, x->pid, &info, WEXITED | WNOHANG | WNOWAIT) &&
	    info.si_pid == x->pid)
		x->exited = true;
}

static void timers(struct ex *x)
{
	int64_t now = agent_now_ms();

	if (x->term_at >= 0 && now >= x->term_at) {
		x->timed_out = true;
		start_kill(x);
	}
	if (x->kill_at >= 0 && now >= x->kill_at) {
		x->kill_at = -1;
		signal_group(x, SIGKILL);
	}
}

static int poll_timeout(const struct ex *x)
{
	int64_t next = -1, now = agent_now_ms();

	if (x->term_at >= 0)
		next = x->term_at;
	if (x->kill_at >= 0 && (next < 0 || x->kill_at < next))
		next = x->kill_at;
	if (next < 0)
		return -1;
	return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}

/* Relay until the leader is dead and both streams are at EOF (or the host is gone). */
static void relay(struct ex *x)
{
	struct conn *c = x->c;

	for (;;) {
		struct pollfd pfd[6];
		int n = 0, i_sock = -1, i_out[2] = { -1, -1 }, i_in = -1, i_stop = -1, i_chld;

		timers(x);
		/* SIGKILL sent and the leader dead: whatever still holds the pipes (a process
		 * that left the group) is not waited for. */
		if (x->exited && x->killing && x->kill_at < 0) {
			close_fd(&x->out_fd[0]);
			close_fd(&x->out_fd[1]);
		}
		if (x->exited && x->out_fd[0] < 0 && x->out_fd[1] < 0 &&
		    (x->gone || !agent_wr_busy(&c->wr)))
			return;
		if (!x->gone) {
			short ev = POLLRDHUP;

			if (!x->pend_len)
				ev |= POLLIN;
			if (agent_wr_busy(&c->wr))
				ev |= POLLOUT;
			i_sock = n;
			pfd[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
		}
		for (int k = 0; k < 2; k++) {
			int i = (x->last + 1 + k) % 2;

			if (x->out_fd[i] >= 0 && !agent_wr_busy(&c->wr)) {
				i_out[i] = n;
				pfd[n++] = (struct pollfd){ .fd = x->out_fd[i], .events = POLLIN };
			}
		}
		if (x->pend_len && x->in_fd >= 0) {
			i_in = n;
			pfd[n++] = (struct pollfd){ .fd = x->in_fd, .events = POLLOUT };
		}
		/* Once gone, it stays readable: only the command's end is waited for. */
		if (!x->gone) {
			i_stop = n;
			pfd[n++] = (struct pollfd){ .fd = c->stop_fd, .events = POLLIN };
		}
		i_chld = n;
		pfd[n++] = (struct pollfd){ .fd = c->chld_fd, .events = POLLIN };

		if (poll(pfd, n, poll_timeout(x)) < 0) {
			if (errno == EINTR)
				continue;
			alog("conn %u: poll: %s", c->id, strerror(errno));
			host_gone(x, "lost (poll failed)");
			continue;
		}
		if (i_stop >= 0 && pfd[i_stop].revents)
			host_gone(x, "dropped: the agent is stopping");
		if (pfd[i_chld].revents)
			check_exit(x);
		if (i_sock >= 0 && !x->gone) {
			short re = pfd[i_sock].revents;

			if (re & POLLOUT)
				flush_host(x);
			if (!x->pend_len && (re & (POLLIN | POLLHUP | POLLERR | POLLRDHUP)))
				from_host(x);
			else if (re & (POLLHUP | POLLERR | POLLRDHUP))
				host_gone(x, "hung up");
		}
		if (i_in >= 0 && pfd[i_in].revents && x->in_fd >= 0)
			feed_stdin(x);
		/* Stdout and stderr in turn: the one not read last goes first. */
		for (int k = 0; k < 2; k++) {
			int i = (x->last + 1 + k) % 2;

			if (i_out[i] >= 0 && pfd[i_out[i]].revents && x->out_fd[i] >= 0 &&
			    !agent_wr_busy(&c->wr))
				from_command(x, i);
		}
	}
}

/* Reap the leader (killing what is left of a group that was being killed). */
static void reap(struct ex *x, struct agent_exit *e)
{
	int st;

	if (x->killing)
		signal_group(x, SIGKILL);
	while (waitpid(x->pid, &st, 0) < 0 && errno == EINTR)
		;
	x->pid = 0;
	e->flags = x->timed_out ? AGENT_EXIT_TIMEDOUT : 0;
	if (WIFSIGNALED(st)) {
		e->flags |= AGENT_EXIT_SIGNALED | (WCOREDUMP(st) ? AGENT_EXIT_CORE : 0);
		e->status = WTERMSIG(st);
	} else {
		e->status = WEXITSTATUS(st);
	}
}

int exec_run(struct conn *c)
{
	struct ex x = { .c = c, .in_fd = -1, .out_fd = { -1, -1 }, .term_at = -1, .kill_at = -1 };
	char **argv = NULL, **env = NULL;
	uint8_t p[AGENT_EXIT_SIZE];
	struct agent_exit e;
	const char *what;
	int ret;

	if (agent_exec_decode(c->rd.buf, c->rd.h.len, &x.req))
		return conn_proto_error(c, "bad EXEC");
	argv = calloc(x.req.argc + 1, sizeof(*argv));
	env = calloc(x.req.envc + 1, sizeof(*env));
	if (!argv || !env) {
		ret = conn_error(c, ENOMEM, "exec: out of memory");
		goto out;
	}
	agent_exec_vectors(&x.req, argv, env);
	x.stdin_open = x.req.flags & AGENT_EXEC_STDIN;
	ret = spawn(&x, argv, env, &what);
	if (ret) {
		if (x.pid > 0) { /* started, then fcntl failed */
			x.killing = true;
			reap(&x, &e);
		}
		ret = conn_error(c, ret, "%s %s: %s", what, argv[0], strerror(ret));
		goto out;
	}
	if (c->verbose)
		alog("conn %u: pid %d: %s", c->id, x.pid, argv[0]);
	if (x.req.timeout_ms)
		x.term_at = agent_now_ms() + x.req.timeout_ms;
	/* STARTED goes out before anything is read from the host (it sends STDIN after it). */
	agent_u32_encode(p, x.pid);
	if (conn_send(c, AGENT_STARTED, p, AGENT_U32_SIZE) < 0)
		host_gone(&x, "hung up");
	relay(&x);
	reap(&x, &e);
	if (x.gone) {
		ret = -EPIPE; /* this connection is over; the agent goes on */
		goto out;
	}
	agent_exit_encode(p, &e);
	ret = conn_send(c, AGENT_EXIT, p, sizeof(p));
out:
	close_fd(&x.in_fd);
	close_fd(&x.out_fd[0]);
	close_fd(&x.out_fd[1]);
	free(argv);
	free(env);
	return ret;
}
