// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guest agent and its host client, without a VM: the real agent binary
 * ($(O)/agent/minivmm-agent, or $MINIVMM_AGENT) listens on a Unix socket in a temp dir and
 * the client library talks to it. A fake agent on a socketpair checks that the client
 * distrusts what it is sent.
 *
 * The test binary doubles as a command: `test_agent --gen N` writes N bytes of a known
 * pseudo-random stream to each of stdout and stderr, alternating in uneven chunks.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_client.h"
#include "agent/agent_io.h"
#include "unit.h"
#include "util.h"

static char tmpdir[64], sock_path[128], log_path[128];
static char agent_bin[PATH_MAX], self_exe[PATH_MAX];
static pid_t agent_pid;

/* ---- known data: byte @i of stream @s, random access ---- */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint8_t data_byte(unsigned int s, uint64_t i)
{
	return splitmix(((uint64_t)s << 56) ^ (i >> 3)) >> (8 * (i & 7));
}

static void data_fill(unsigned int s, uint64_t off, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = data_byte(s, off + i);
}

/* FNV-1a, to compare whole streams by hash. */
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

static uint64_t data_hash(unsigned int s, uint64_t len)
{
	uint8_t buf[4096];
	uint64_t h = FNV_INIT;

	for (uint64_t off = 0; off < len; off += sizeof(buf)) {
		size_t n = MIN(sizeof(buf), len - off);

		data_fill(s, off, buf, n);
		h = fnv(h, buf, n);
	}
	return h;
}

/* `--gen N`: stream 1 to stdout, stream 2 to stderr, N bytes each, in chunks of 1..96 KiB. */
static int gen(uint64_t n)
{
	static uint8_t buf[96 * 1024];
	uint64_t off[2] = { 0, 0 }, r = 1;

	while (off[0] < n || off[1] < n) {
		for (int s = 0; s < 2; s++) {
			size_t len;

			r = splitmix(r);
			len = 1 + r % sizeof(buf);
			if (len > n - off[s])
				len = n - off[s];
			data_fill(s + 1, off[s], buf, len);
			if (write_all(s + 1, buf, len))
				return 1;
			off[s] += len;
		}
	}
	return 0;
}

/* ---- the agent under test ---- */

static void find_binaries(void)
{
	const char *env = getenv("MINIVMM_AGENT");
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	char *slash;

	ck_assert_int_gt(n, 0);
	self_exe[n] = '\0';
	if (env) {
		snprintf(agent_bin, sizeof(agent_bin), "%s", env);
		return;
	}
	/* $(O)/tests/test_agent -> $(O)/agent/minivmm-agent */
	snprintf(agent_bin, sizeof(agent_bin), "%s", self_exe);
	slash = strrchr(agent_bin, '/');
	ck_assert_ptr_nonnull(slash);
	*slash = '\0';
	slash = strrchr(agent_bin, '/');
	ck_assert_ptr_nonnull(slash);
	strcpy(slash, "/agent/minivmm-agent");
	ck_assert_msg(!access(agent_bin, X_OK), "no agent binary at %s", agent_bin);
}

static int connect_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_lt(strlen(path), sizeof(addr.sun_path));
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Start the agent with @argv (after the binary's name); stderr to the log. */
static pid_t spawn_agent(const char *const *args, rlim_t fsize)
{
	const char *argv[16] = { agent_bin };
	pid_t pid;
	int i;

	for (i = 0; args[i]; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		struct rlimit rl = { fsize, fsize };

		if (log < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
			_exit(126);
		/* Gone with the test, even one that failed before its teardown. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		setenv("AGENT_TEST_VAR", "orig", 1);
		if (fsize != RLIM_INFINITY)
			setrlimit(RLIMIT_FSIZE, &rl);
		execv(agent_bin, (char **)argv);
		_exit(127);
	}
	return pid;
}

static void start_agent_limited(rlim_t fsize)
{
	const char *args[] = { "--listen", NULL, "-v", NULL };
	char listen[160];

	snprintf(listen, sizeof(listen), "unix:%s", sock_path);
	args[1] = listen;
	agent_pid = spawn_agent(args, fsize);
	for (int i = 0; i < 500; i++) {
		int fd = connect_unix(sock_path);

		if (fd >= 0) {
			close(fd);
			return;
		}
		usleep(10000);
	}
	ck_abort_msg("the agent did not start listening on %s", sock_path);
}

static void setup(void)
{
	find_binaries();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/minivmm-agent-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(sock_path, sizeof(sock_path), "%s/agent.sock", tmpdir);
	snprintf(log_path, sizeof(log_path), "%s/agent.log", tmpdir);
	start_agent_limited(RLIM_INFINITY);
}

/* Wait up to @ms for @pid to exit: its status, or -1. */
static int wait_exit(pid_t pid, int ms)
{
	int st;

	for (int i = 0; i < ms / 10; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		usleep(10000);
	}
	return -1;
}

static void read_log(char *buf, size_t len)
{
	int fd = open(log_path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : 0;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

static void teardown(void)
{
	static char log[256 * 1024];
	int st = -1;

	if (agent_pid > 0) {
		kill(agent_pid, SIGTERM);
		st = wait_exit(agent_pid, 10000);
		if (st < 0) {
			kill(-agent_pid, SIGKILL);
			waitpid(agent_pid, NULL, 0);
		}
	}
	read_log(log, sizeof(log));
	/* A crash of a connection process, or a sanitizer report from the agent's. */
	ck_assert_msg(!strstr(log, "died by signal") && !strstr(log, "Sanitizer") &&
			  !strstr(log, "runtime error"),
		      "agent log:\n%s", log);
	if (agent_pid > 0)
		ck_assert_msg(WIFEXITED(st) && !WEXITSTATUS(st),
			      "the agent did not stop cleanly on SIGTERM (status %#x)", st);
	agent_pid = 0;
	if (tmpdir[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		ck_assert_int_eq(system(cmd), 0);
	}
}

/* A connected client that has said HELLO. */
static struct agent_conn *open_conn(int *fdp)
{
	int fd = connect_unix(sock_path);
	struct agent_conn *c;

	ck_assert_int_ge(fd, 0);
	c = agent_conn_new(fd);
	ck_assert_ptr_nonnull(c);
	ck_assert_msg(!agent_hello(c), "hello: %s", agent_conn_error(c));
	*fdp = fd;
	return c;
}

static void close_conn(struct agent_conn *c, int fd)
{
	agent_conn_free(c);
	close(fd);
}

/* Run @argv (NULL-terminated), capturing up to 1 MiB of each stream. */
static int run(struct agent_conn *c, const char *const *argv, struct agent_capture *cap,
	       struct agent_exec_result *res)
{
	struct agent_exec_spec spec = { .argv = argv };

	return agent_exec_capture(c, &spec, 1 << 20, cap, res);
}

static bool group_gone(pid_t pgid, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (kill(-pgid, 0) && errno == ESRCH)
			return true;
		usleep(10000);
	}
	return false;
}

/* Processes whose parent is @ppid (zombies included). */
static int children_of(pid_t ppid, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char path[300], buf[512], *p;
		int fd, pp;
		ssize_t len;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		p = strrchr(buf, ')'); /* comm may hold spaces */
		if (p && sscanf(p + 2, "%*c %d", &pp) == 1 && pp == ppid) {
			if (n < max)
				out[n] = atoi(e->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

static bool no_children(pid_t ppid, int ms)
{
	pid_t kids[8];

	for (int i = 0; i < ms / 10; i++) {
		if (!children_of(ppid, kids, 8))
			return true;
		usleep(10000);
	}
	return false;
}

/* VmHWM (peak RSS) of @pid in KiB, or -1. */
static long vm_hwm_kb(pid_t pid)
{
	char path[64], buf[4096], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "VmHWM:");
	return p ? atol(p + 6) : -1;
}

/* ---- exec ---- */

START_TEST(test_hello)
{
	struct agent_conn *c;
	int fd;

	c = open_conn(&fd);
	ck_assert_uint_eq(agent_conn_caps(c), AGENT_CAPS_ALL);
	ck_assert(agent_conn_usable(c));
	ck_assert_int_eq(agent_hello(c), -EALREADY);
	close_conn(c, fd);
}
END_TEST

START_TEST(test_exit_status)
{
	static const char *const t[] = { "true", NULL }, *const f[] = { "false", NULL },
				 *const seven[] = { "sh", "-c", "exit 7", NULL },
				 *const killed[] = { "sh", "-c", "kill -9 $$", NULL },
				 *const segv[] = { "sh", "-c", "kill -SEGV $$", NULL },
				 *const missing[] = { "no-such-program-here", NULL };
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_conn *c;
	int fd;

	c = open_conn(&fd);
	ck_assert_int_eq(run(c, t, &cap, &res), 0);
	ck_assert(!res.signaled && !res.timed_out && res.status == 0 && res.pid > 0);
	ck_assert_ptr_null(cap.out);
	ck_assert_int_eq(run(c, f, &cap, &res), 0);
	ck_assert(!res.signaled && res.status == 1);
	ck_assert_int_eq(run(c, seven, &cap, &res), 0);
	ck_assert(!res.signaled && res.status == 7);
	ck_assert_int_eq(run(c, killed, &cap, &res), 0);
	ck_assert(res.signaled && res.status == SIGKILL && !res.timed_out);
	ck_assert_int_eq(run(c, segv, &cap, &res), 0);
	ck_assert(res.signaled && res.status == SIGSEGV);
	/* Could not start: the agent's errno and a message; the connection goes on. */
	ck_assert_int_eq(run(c, missing, &cap, &res), -ENOENT);
	ck_assert_msg(strstr(agent_conn_error(c), "exec no-such-program-here"), "%s",
		      agent_conn_error(c));
	ck_assert(agent_conn_usable(c));
	ck_assert_int_eq(run(c, seven, &cap, &res), 0);
	ck_assert_int_eq(res.status, 7);
	close_conn(c, fd);
}
END_TEST

struct gen_check {
	uint64_t off[2];
	uint64_t bad[2];
	int switches, last;
};

static int gen_output(void *opaque, enum agent_stream stream, const void *buf, size_t len)
{
	struct gen_check *g = opaque;
	int s = stream == AGENT_OUT ? 0 : 1;
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i] != data_byte(s + 1, g->off[s] + i))
			g->bad[s]++;
	g->off[s] += len;
	if (g->last != s)
		g->switches++;
	g->last = s;
	return 0;
}

START_TEST(test_streams_interleaved)
{
	const char *argv[] = { self_exe, "--gen", "8388608", NULL };
	struct agent_exec_spec spec = { .argv = argv };
	struct agent_exec_ops ops = { .output = gen_output };
	struct gen_check g = { .last = -1 };
	struct agent_exec_result res;
	struct agent_conn *c;
	int fd;

	c = open_conn(&fd);
	ck_assert_msg(!agent_exec(c, &spec, &ops, &g, &res), "%s", agent_conn_error(c));
	ck_assert_int_eq(res.status, 0);
	/* Complete, in order, each on its own stream... */
	ck_assert_uint_eq(g.off[0], 8 << 20);
	ck_assert_uint_eq(g.off[1], 8 << 20);
	ck_assert_uint_eq(g.bad[0], 0);
	ck_assert_uint_eq(g.bad[1], 0);
	/* ...and relayed as they came, not one after the other. */
	ck_assert_int_gt(g.switches, 16);
	close_conn(c, fd);
}
END_TEST

/* A temp file of @len bytes of stream @s. */
static int data_file(const char *name, unsigned int s, uint64_t len, uint64_t *hash)
{
	static uint8_t buf[1 << 20];
	char path[256];
	uint64_t off = 0, h = FNV_INIT;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	while (off < len) {
		size_t n = MIN(sizeof(buf), len - off);

		data_fill(s, off, buf, n);
		h = fnv(h, buf, n);
		ck_assert_int_eq(write_all(fd, buf, n), 0);
		off += n;
	}
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	if (hash)
		*hash = h;
	return fd;
}

START_TEST(test_stdin_roundtrip)
{
	const char *cat[] = { "cat", NULL }, *t[] = { "true", NULL },
		   *head[] = { "head", "-c", "100", NULL }, *echo[] = { "echo", "ok", NULL };
	struct agent_exec_spec spec = { .argv = cat, .forward_stdin = true };
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_conn *c;
	uint64_t hash;
	int fd, in;

	c = open_conn(&fd);
	in = data_file("in", 3, 4 << 20, &hash);
	spec.stdin_fd = in;
	ck_assert_msg(!agent_exec_capture(c, &spec, 8 << 20, &cap, &res), "%s",
		      agent_conn_error(c));
	ck_assert_int_eq(res.status, 0);
	ck_assert_uint_eq(cap.out_len, 4 << 20);
	ck_assert_uint_eq(fnv(FNV_INIT, (uint8_t *)cap.out, cap.out_len), hash);
	agent_capture_free(&cap);

	/* A command that reads none of it, or some: no hang, and the stream stays in step. */
	ck_assert_int_eq(lseek(in, 0, SEEK_SET), 0);
	spec.argv = t;
	ck_assert_int_eq(agent_exec_capture(c, &spec, 1024, &cap, &res), 0);
	ck_assert_int_eq(res.status, 0);
	ck_assert_int_eq(lseek(in, 0, SEEK_SET), 0);
	spec.argv = head;
	ck_assert_int_eq(agent_exec_capture(c, &spec, 1024, &cap, &res), 0);
	ck_assert_uint_eq(cap.out_len, 100);
	for (int i = 0; i < 100; i++)
		ck_assert_uint_eq((uint8_t)cap.out[i], data_byte(3, i));
	agent_capture_free(&cap);
	ck_assert_int_eq(run(c, echo, &cap, &res), 0);
	ck_assert_str_eq(cap.out, "ok\n");
	agent_capture_free(&cap);
	close(in);
	close_conn(c, fd);
}
END_TEST

START_TEST(test_env_cwd)
{
	const char *sh[] = { "sh", "-c", "printf '%s|%s|%s' \"$FOO\" \"$AGENT_TEST_VAR\" \"$PWD\"",
			     NULL };
	const char *env1[] = { "FOO=bar", NULL },
		   *env2[] = { "FOO=baz", "AGENT_TEST_VAR=new", NULL };
	const char *envcmd[] = { "/usr/bin/env", NULL }, *t[] = { "true", NULL };
	const char *clear[] = { "A=1", "B=x=y", NULL }, *nopath[] = { "PATH=/nonexistent", NULL };
	struct agent_exec_spec spec = { .argv = sh, .env = env1, .cwd = tmpdir };
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_conn *c;
	char want[256];
	int fd;

	c = open_conn(&fd);
	/* Added over the agent's own environment. */
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), 0);
	snprintf(want, sizeof(want), "bar|orig|%s", tmpdir);
	ck_assert_str_eq(cap.out, want);
	agent_capture_free(&cap);
	/* Set over it. */
	spec.env = env2;
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), 0);
	snprintf(want, sizeof(want), "baz|new|%s", tmpdir);
	ck_assert_str_eq(cap.out, want);
	agent_capture_free(&cap);
	/* No cwd: the agent's, /. */
	spec.env = NULL;
	spec.cwd = NULL;
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), 0);
	ck_assert_str_eq(cap.out, "|orig|/");
	agent_capture_free(&cap);
	/* Replaced: exactly what was given. */
	spec = (struct agent_exec_spec){ .argv = envcmd, .env = clear, .env_clear = true };
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), 0);
	ck_assert_str_eq(cap.out, "A=1\nB=x=y\n");
	agent_capture_free(&cap);
	/* The command's PATH is the one searched. */
	spec = (struct agent_exec_spec){ .argv = t, .env = nopath };
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), -ENOENT);
	/* A bad cwd. */
	spec = (struct agent_exec_spec){ .argv = t, .cwd = "/nonexistent/dir" };
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), -ENOENT);
	ck_assert_msg(strstr(agent_conn_error(c), "chdir"), "%s", agent_conn_error(c));
	/* Requests the protocol cannot carry are refused before anything is sent. */
	spec = (struct agent_exec_spec){ .argv = t, .env = (const char *[]){ "NOEQUALS", NULL } };
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), -EINVAL);
	spec = (struct agent_exec_spec){ .argv = (const char *[]){ NULL } };
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), -EINVAL);
	ck_assert(agent_conn_usable(c));
	close_conn(c, fd);
}
END_TEST

START_TEST(test_exit_waits_for_streams)
{
	/* The leader exits at once; what it left in the background still writes. */
	const char *sh[] = { "sh", "-c", "echo a; (sleep 0.3; echo b) &", NULL };
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_conn *c;
	int fd;

	c = open_conn(&fd);
	ck_assert_int_eq(run(c, sh, &cap, &res), 0);
	ck_assert_str_eq(cap.out, "a\nb\n");
	agent_capture_free(&cap);
	close_conn(c, fd);
}
END_TEST

/* The first line of output: a pid. */
static pid_t first_pid(const struct agent_capture *cap)
{
	ck_assert_ptr_nonnull(cap->out);
	return atoi(cap->out);
}

START_TEST(test_timeout_kills_group)
{
	const char *sh[] = { "sh", "-c", "sleep 100 & echo $!; sleep 100", NULL };
	const char *stubborn[] = { "sh", "-c", "trap '' TERM; sleep 100 & echo $!; sleep 100",
				   NULL };
	struct agent_exec_spec spec = { .argv = sh, .timeout_ms = 300, .grace_ms = 300 };
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_conn *c;
	int64_t t0;
	pid_t bg;
	int fd;

	c = open_conn(&fd);
	t0 = agent_now_ms();
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), 0);
	ck_assert_int_lt(agent_now_ms() - t0, 5000);
	ck_assert(res.timed_out && res.signaled && res.status == SIGTERM);
	bg = first_pid(&cap);
	agent_capture_free(&cap);
	ck_assert_msg(group_gone(res.pid, 5000), "group %d still there", res.pid);
	ck_assert(kill(bg, 0) && errno == ESRCH);

	/* SIGTERM ignored: SIGKILL after the grace period, for the whole group. */
	spec.argv = stubborn;
	t0 = agent_now_ms();
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), 0);
	ck_assert_int_ge(agent_now_ms() - t0, 550);
	ck_assert(res.timed_out && res.signaled && res.status == SIGKILL);
	bg = first_pid(&cap);
	agent_capture_free(&cap);
	ck_assert_msg(group_gone(res.pid, 5000), "group %d still there", res.pid);
	ck_assert(kill(bg, 0) && errno == ESRCH);
	close_conn(c, fd);
}
END_TEST

static int cancel_at_start(void *opaque, int pid)
{
	*(int *)opaque = pid;
	return -ECANCELED;
}

static int cancel_at_output(void *opaque, enum agent_stream stream, const void *buf, size_t len)
{
	(void)stream;
	(void)buf;
	(void)len;
	(void)opaque;
	return -ECANCELED;
}

/* After the host vanished, the group dies and the agent serves on, zombie-free. */
static void check_cleaned_up(pid_t pgid)
{
	const char *echo[] = { "echo", "hi", NULL };
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_conn *c;
	int fd;

	ck_assert_msg(group_gone(pgid, 5000), "group %d still there", pgid);
	ck_assert_int_eq(kill(agent_pid, 0), 0);
	c = open_conn(&fd);
	ck_assert_int_eq(run(c, echo, &cap, &res), 0);
	ck_assert_str_eq(cap.out, "hi\n");
	agent_capture_free(&cap);
	close_conn(c, fd);
	/* Every connection process gone, every orphan reaped. */
	ck_assert_msg(no_children(agent_pid, 5000), "the agent still has children");
}

START_TEST(test_disconnect_mid_command)
{
	const char *sh[] = { "sh", "-c", "sleep 100 & sleep 100", NULL };
	const char *yes[] = { "yes", NULL };
	struct agent_exec_spec spec = { .argv = sh, .grace_ms = 200 };
	struct agent_exec_ops ops = { .started = cancel_at_start };
	struct agent_exec_result res;
	struct agent_conn *c;
	int fd, pid = 0;

	/* A command that waits. */
	c = open_conn(&fd);
	ck_assert_int_eq(agent_exec(c, &spec, &ops, &pid, &res), -ECANCELED);
	ck_assert(!agent_conn_usable(c));
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(kill(-pid, 0), 0); /* running */
	close_conn(c, fd);
	check_cleaned_up(pid);

	/* A command that writes without end: the host stops reading and leaves. */
	c = open_conn(&fd);
	spec.argv = yes;
	ops = (struct agent_exec_ops){ .output = cancel_at_output };
	ck_assert_int_eq(agent_exec(c, &spec, &ops, NULL, &res), -ECANCELED);
	ck_assert_int_gt(res.pid, 0);
	close_conn(c, fd);
	check_cleaned_up(res.pid);
}
END_TEST

static void *cancel_later(void *arg)
{
	uint64_t one = 1;

	usleep(300000);
	ck_assert_int_eq(write(*(int *)arg, &one, sizeof(one)), sizeof(one));
	return NULL;
}

static int record_pid(void *opaque, int pid)
{
	*(int *)opaque = pid;
	return 0;
}

START_TEST(test_disconnect_while_stdin_blocked)
{
	/* The command never reads: its stdin pipe fills, the agent stops reading the socket,
	 * the client blocks sending. The hangup must still be seen. */
	const char *argv[] = { "sleep", "100", NULL };
	struct agent_exec_spec spec = { .argv = argv, .forward_stdin = true, .grace_ms = 200 };
	struct agent_exec_ops ops = { .started = record_pid };
	struct agent_exec_result res;
	struct agent_conn *c;
	int fd, zero, efd, pid = 0;
	pthread_t th;

	zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	efd = eventfd(0, EFD_CLOEXEC);
	ck_assert(zero >= 0 && efd >= 0);
	c = open_conn(&fd);
	agent_conn_set_cancel_fd(c, efd);
	spec.stdin_fd = zero;
	ck_assert_int_eq(pthread_create(&th, NULL, cancel_later, &efd), 0);
	ck_assert_int_eq(agent_exec(c, &spec, &ops, &pid, &res), -ECANCELED);
	pthread_join(th, NULL);
	ck_assert_int_gt(pid, 0);
	close_conn(c, fd);
	check_cleaned_up(pid);
	close(zero);
	close(efd);
}
END_TEST

START_TEST(test_signal_forwarded)
{
	const char *argv[] = { "sleep", "100", NULL };
	struct agent_exec_spec spec = { .argv = argv, .forward_signals = true };
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_conn *c;
	int fd, p[2], sig = SIGTERM;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], &sig, sizeof(sig)), sizeof(sig));
	spec.signal_fd = p[0];
	c = open_conn(&fd);
	ck_assert_int_eq(agent_exec_capture(c, &spec, 4096, &cap, &res), 0);
	ck_assert(res.signaled && res.status == SIGTERM && !res.timed_out);
	close(p[0]);
	close(p[1]);
	close_conn(c, fd);
}
END_TEST

struct par {
	int idx, ret, status;
	char out[64];
};

static void *par_run(void *arg)
{
	struct par *p = arg;
	char name[16];
	const char *argv[] = { "sh", "-c", "sleep 0.5; echo $0", name, NULL };
	struct agent_exec_spec spec = { .argv = argv };
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_conn *c;
	int fd = connect_unix(sock_path);

	snprintf(name, sizeof(name), "t%d", p->idx);
	p->ret = -EBADF;
	if (fd < 0)
		return NULL;
	c = agent_conn_new(fd);
	if (c && !(p->ret = agent_hello(c))) {
		p->ret = agent_exec_capture(c, &spec, 64, &cap, &res);
		p->status = res.status;
		snprintf(p->out, sizeof(p->out), "%s", cap.out ? cap.out : "");
		agent_capture_free(&cap);
	}
	agent_conn_free(c);
	close(fd);
	return NULL;
}

START_TEST(test_parallel_connections)
{
	struct par p[4];
	pthread_t th[4];
	int64_t t0 = agent_now_ms();

	for (int i = 0; i < 4; i++) {
		p[i] = (struct par){ .idx = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, par_run, &p[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		char want[16];

		pthread_join(th[i], NULL);
		snprintf(want, sizeof(want), "t%d\n", i);
		ck_assert_int_eq(p[i].ret, 0);
		ck_assert_int_eq(p[i].status, 0);
		ck_assert_str_eq(p[i].out, want);
	}
	/* Side by side: 4 x 0.5 s would be 2 s one after another. */
	ck_assert_int_lt(agent_now_ms() - t0, 1800);
}
END_TEST

START_TEST(test_agent_stop_ends_commands)
{
	/* It ignores SIGTERM: the agent waits the grace period, then SIGKILLs the group. */
	const char *argv[] = { "sh", "-c", "trap '' TERM; sleep 100 & sleep 100", NULL };
	struct agent_exec_spec spec = { .argv = argv, .grace_ms = 1000 };
	struct agent_exec_ops ops = { .started = record_pid };
	struct agent_exec_result res;
	struct agent_conn *c;
	struct rusage ru;
	int fd, st, pid = 0;
	int64_t t0;
	long cpu_ms;

	c = open_conn(&fd);
	/* Told to stop mid-command, from a second process while this one waits. */
	if (!fork()) {
		usleep(500000);
		kill(agent_pid, SIGTERM);
		_exit(0);
	}
	ck_assert_int_eq(agent_exec(c, &spec, &ops, &pid, &res), -EPIPE);
	t0 = agent_now_ms();
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(wait4(agent_pid, &st, 0, &ru), agent_pid);
	ck_assert_msg(WIFEXITED(st) && !WEXITSTATUS(st), "agent status %#x", st);
	agent_pid = 0;
	ck_assert(group_gone(pid, 5000));
	ck_assert(access(sock_path, F_OK) && errno == ENOENT); /* its socket removed */
	ck_assert_int_lt(agent_now_ms() - t0, 5000);
	/* The agent and all it reaped idled through the grace period, no spinning. */
	cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
		 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
	ck_assert_msg(cpu_ms < 400, "the agent used %ld ms of CPU", cpu_ms);
	close_conn(c, fd);
	while (wait(NULL) > 0)
		;
}
END_TEST

/* ---- files ---- */

static int list_dir(const char *dir, char names[][64], int max)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n < max)
			snprintf(names[n], 64, "%.63s", e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* Compare the file @path with stream @s of @len bytes. */
static void check_file(const char *path, unsigned int s, uint64_t len, uint64_t hash)
{
	static uint8_t buf[1 << 20], want[1 << 20];
	uint64_t off = 0, h = FNV_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		ck_assert_uint_le(off + n, len);
		data_fill(s, off, want, n);
		ck_assert(!memcmp(buf, want, n));
		h = fnv(h, buf, n);
		off += n;
	}
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(off, len);
	ck_assert_uint_eq(h, hash);
	close(fd);
}

/* Peak RSS of the agent's connection processes, in KiB. */
static long conn_hwm_kb(void)
{
	pid_t kids[8];
	long max = 0;
	int n = children_of(agent_pid, kids, 8);

	ck_assert_int_ge(n, 1);
	for (int i = 0; i < n && i < 8; i++)
		max = MAX(max, vm_hwm_kb(kids[i]));
	return max;
}

START_TEST(test_copy_64m)
{
	const uint64_t len = 64ULL << 20;
	char dst[256], back[256], names[8][64];
	uint64_t hash, copied;
	struct stat st;
	struct agent_conn *c;
	long hwm, self_before, self_after;
	uint32_t mode;
	int fd, src, out;

	c = open_conn(&fd);
	src = data_file("src", 4, len, &hash);
	snprintf(dst, sizeof(dst), "%s/dst", tmpdir);
	snprintf(back, sizeof(back), "%s/back", tmpdir);
	self_before = vm_hwm_kb(getpid());
	ck_assert_msg(!agent_copy_to_guest(c, src, dst, 0640, &copied), "%s", agent_conn_error(c));
	ck_assert_uint_eq(copied, len);
	check_file(dst, 4, len, hash);
	ck_assert_int_eq(stat(dst, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	/* Renamed into place: no temp file left beside it. */
	ck_assert_int_eq(list_dir(tmpdir, names, 8), 4); /* agent.sock agent.log src dst */

	out = open(back, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(out, 0);
	ck_assert_msg(!agent_copy_from_guest(c, dst, out, UINT64_MAX, &mode, &copied), "%s",
		      agent_conn_error(c));
	close(out);
	ck_assert_uint_eq(copied, len);
	ck_assert_uint_eq(mode, 0640);
	check_file(back, 4, len, hash);

	/* Nothing held 64 MiB: the agent's connection process (< 1 MiB here, ~6 MiB with
	 * the sanitizers), or this one. */
	hwm = conn_hwm_kb();
	ck_assert_msg(hwm > 0 && hwm < 16 * 1024, "agent connection peak RSS %ld KiB", hwm);
	self_after = vm_hwm_kb(getpid());
	ck_assert_msg(self_after - self_before < 16 * 1024, "client peak RSS grew %ld KiB",
		      self_after - self_before);
	close(src);
	close_conn(c, fd);
}
END_TEST

START_TEST(test_copy_errors)
{
	const char *t[] = { "true", NULL };
	struct agent_exec_result res;
	struct agent_capture cap;
	char path[256], names[8][64];
	struct agent_conn *c;
	uint64_t copied;
	int fd, src, out, dir;

	c = open_conn(&fd);
	out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	/* Answered with ERROR: the connection stays usable. */
	ck_assert_int_eq(agent_copy_from_guest(c, "/nonexistent", out, UINT64_MAX, NULL, NULL),
			 -ENOENT);
	ck_assert_int_eq(agent_copy_from_guest(c, tmpdir, out, UINT64_MAX, NULL, NULL), -EISDIR);
	snprintf(path, sizeof(path), "%s/nodir/file", tmpdir);
	src = data_file("src", 5, 100000, NULL);
	ck_assert_int_eq(agent_copy_to_guest(c, src, path, 0644, NULL), -ENOENT);
	/* Onto a directory: the rename fails, the temp file goes. */
	ck_assert_int_eq(agent_copy_to_guest(c, src, tmpdir, 0644, NULL), -EISDIR);
	/* A source that cannot be read: aborted, nothing left behind. */
	dir = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/aborted", tmpdir);
	ck_assert_int_eq(agent_copy_to_guest(c, dir, path, 0644, &copied), -EISDIR);
	ck_assert_int_eq(list_dir(tmpdir, names, 8), 3); /* agent.sock agent.log src */
	ck_assert(agent_conn_usable(c));
	ck_assert_int_eq(run(c, t, &cap, &res), 0);
	/* Bad arguments, refused locally. */
	ck_assert_int_eq(agent_copy_to_guest(c, src, "", 0644, NULL), -EINVAL);
	ck_assert_int_eq(agent_copy_to_guest(c, src, path, 010000, NULL), -EINVAL);
	/* Larger than the caller allows: the rest is on its way, the connection is done. */
	snprintf(path, sizeof(path), "%s/src", tmpdir);
	ck_assert_int_eq(agent_copy_from_guest(c, path, out, 65536, NULL, &copied), -EFBIG);
	ck_assert_uint_le(copied, 65536);
	ck_assert(!agent_conn_usable(c));
	ck_assert_int_eq(run(c, t, &cap, &res), -EFBIG);
	close(dir);
	close(src);
	close(out);
	close_conn(c, fd);
}
END_TEST

START_TEST(test_copy_disk_full)
{
	char path[256], names[8][64];
	struct agent_conn *c;
	int fd, src;

	/* The agent's files may not grow past 1 MiB: writes fail with EFBIG. */
	kill(agent_pid, SIGTERM);
	ck_assert_int_ge(wait_exit(agent_pid, 5000), 0);
	start_agent_limited(1 << 20);
	c = open_conn(&fd);
	src = data_file("src", 6, 8 << 20, NULL);
	snprintf(path, sizeof(path), "%s/big", tmpdir);
	ck_assert_int_eq(agent_copy_to_guest(c, src, path, 0644, NULL), -EFBIG);
	ck_assert_msg(strstr(agent_conn_error(c), "write"), "%s", agent_conn_error(c));
	ck_assert(agent_conn_usable(c));
	ck_assert_int_eq(list_dir(tmpdir, names, 8), 3); /* agent.sock agent.log src */
	/* A small one still goes through on the same connection. */
	ck_assert_int_eq(lseek(src, 0, SEEK_SET), 0);
	ck_assert_int_eq(ftruncate(src, 1000), 0);
	ck_assert_int_eq(agent_copy_to_guest(c, src, path, 0600, NULL), 0);
	check_file(path, 6, 1000, data_hash(6, 1000));
	close(src);
	close_conn(c, fd);
}
END_TEST

START_TEST(test_stat_mkdir)
{
	struct agent_statinfo st;
	struct agent_conn *c;
	char path[256], link[256];
	int fd;

	c = open_conn(&fd);
	snprintf(path, sizeof(path), "%s/d", tmpdir);
	ck_assert_int_eq(agent_mkdir(c, path, 0750), 0);
	ck_assert_int_eq(agent_mkdir(c, path, 0750), -EEXIST);
	ck_assert_int_eq(agent_stat(c, path, false, &st), 0);
	ck_assert(S_ISDIR(st.mode) && (st.mode & 07777) == 0750 && st.uid == getuid());
	snprintf(link, sizeof(link), "%s/l", tmpdir);
	ck_assert_int_eq(symlink("d", link), 0);
	ck_assert_int_eq(agent_stat(c, link, true, &st), 0);
	ck_assert(S_ISLNK(st.mode));
	ck_assert_int_eq(agent_stat(c, link, false, &st), 0);
	ck_assert(S_ISDIR(st.mode));
	ck_assert_int_eq(agent_stat(c, "/nonexistent", false, &st), -ENOENT);
	close_conn(c, fd);
}
END_TEST

/* ---- a host that breaks the protocol ---- */

static int raw_connect(void)
{
	int fd = connect_unix(sock_path);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static void raw_send(int fd, const void *p, size_t len)
{
	ck_assert_int_eq(write_all(fd, p, len), 0);
}

static void raw_frame(int fd, uint16_t type, const void *p, uint32_t len)
{
	ck_assert_int_eq(agent_send_frame(fd, type, p, len, -1, 5000), 0);
}

static void raw_hello(int fd, struct agent_rd *rd)
{
	uint8_t p[AGENT_HELLO_SIZE];

	agent_hello_encode(p, AGENT_VERSION, 0);
	raw_frame(fd, AGENT_HELLO, p, sizeof(p));
	ck_assert_int_eq(agent_rd_frame(rd, fd, -1, 5000), 1);
	ck_assert_uint_eq(rd->h.type, AGENT_HELLO);
}

/* The agent answers ERROR @err (0: any, or none at all) and closes. */
static void expect_closed(int fd, struct agent_rd *rd, int err)
{
	int ret = agent_rd_frame(rd, fd, -1, 5000), e;
	char msg[256];

	if (ret == 1) {
		ck_assert_uint_eq(rd->h.type, AGENT_ERROR);
		ck_assert_int_eq(agent_error_decode(rd->buf, rd->h.len, &e, msg, sizeof(msg)), 0);
		if (err)
			ck_assert_int_eq(e, err);
		ret = agent_rd_frame(rd, fd, -1, 5000);
	} else {
		ck_assert_int_eq(err, 0);
	}
	ck_assert_msg(ret == -ESHUTDOWN || ret == -EPIPE, "not closed: %d", ret);
	close(fd);
}

static void hdr(uint8_t *p, uint16_t type, uint16_t flags, uint32_t len)
{
	agent_hdr_encode(p, type, len);
	p[2] = flags;
	p[3] = flags >> 8;
}

START_TEST(test_malformed_frames)
{
	const char *argv[] = { "true", NULL };
	struct agent_exec_req req = { .argc = 1, .argv = argv };
	uint8_t p[512], h[AGENT_HDR_SIZE];
	struct agent_rd rd;
	uint64_t r = 42;
	int fd, len;

	ck_assert_int_eq(agent_rd_init(&rd), 0);
	/* Before HELLO. */
	fd = raw_connect();
	len = agent_exec_encode(p, sizeof(p), &req);
	raw_frame(fd, AGENT_EXEC, p, len);
	expect_closed(fd, &rd, EPROTO);
	/* A HELLO with another magic, another version. */
	fd = raw_connect();
	agent_hello_encode(p, AGENT_VERSION, 0);
	p[0] ^= 1;
	raw_frame(fd, AGENT_HELLO, p, AGENT_HELLO_SIZE);
	expect_closed(fd, &rd, EPROTO);
	fd = raw_connect();
	agent_hello_encode(p, AGENT_VERSION + 1, 0);
	raw_frame(fd, AGENT_HELLO, p, AGENT_HELLO_SIZE);
	expect_closed(fd, &rd, EPROTONOSUPPORT);
	/* Huge lengths: refused from the header, nothing allocated or read. */
	fd = raw_connect();
	raw_hello(fd, &rd);
	hdr(h, AGENT_DATA, 0, 0xffffffff);
	raw_send(fd, h, sizeof(h));
	expect_closed(fd, &rd, EPROTO);
	fd = raw_connect();
	raw_hello(fd, &rd);
	hdr(h, AGENT_EXEC, 0, AGENT_EXEC_MAX + 1);
	raw_send(fd, h, sizeof(h));
	expect_closed(fd, &rd, EPROTO);
	/* Unknown type, nonzero flags, a reply type, DATA outside a WRITE. */
	for (int i = 0; i < 4; i++) {
		static const uint16_t types[] = { 0x7777, AGENT_STDIN_EOF, AGENT_EXIT, AGENT_DATA };
		static const uint32_t lens[] = { 0, 0, AGENT_EXIT_SIZE, 1 };

		fd = raw_connect();
		raw_hello(fd, &rd);
		hdr(h, types[i], i == 1 ? 1 : 0, lens[i]);
		raw_send(fd, h, sizeof(h));
		memset(p, 0, lens[i]);
		raw_send(fd, p, lens[i]);
		expect_closed(fd, &rd, EPROTO);
	}
	/* EXEC: more strings than announced; an env entry without '='. */
	fd = raw_connect();
	raw_hello(fd, &rd);
	len = agent_exec_encode(p, sizeof(p), &req);
	p[len++] = 'x';
	p[len++] = 0;
	raw_frame(fd, AGENT_EXEC, p, len);
	expect_closed(fd, &rd, EPROTO);
	fd = raw_connect();
	raw_hello(fd, &rd);
	req.envc = 1;
	req.env = (const char *[]){ "A=1" };
	len = agent_exec_encode(p, sizeof(p), &req);
	p[len - 3] = 'B'; /* "A=1" -> "AB1" */
	raw_frame(fd, AGENT_EXEC, p, len);
	expect_closed(fd, &rd, EPROTO);
	/* A path with a NUL inside. */
	fd = raw_connect();
	raw_hello(fd, &rd);
	memcpy(p, "/etc\0passwd", 12);
	raw_frame(fd, AGENT_READ, p, 12);
	expect_closed(fd, &rd, EPROTO);
	/* Truncated: a header, half a payload, then gone. */
	fd = raw_connect();
	raw_hello(fd, &rd);
	hdr(h, AGENT_EXEC, 0, 200);
	raw_send(fd, h, sizeof(h));
	raw_send(fd, p, 50);
	close(fd);
	/* Garbage after HELLO, many times over. */
	for (int i = 0; i < 300; i++) {
		size_t n;

		fd = raw_connect();
		raw_hello(fd, &rd);
		r = splitmix(r);
		n = 1 + r % sizeof(p);
		for (size_t k = 0; k < n; k++)
			p[k] = splitmix(r + k);
		if ((i & 1) && n > AGENT_HDR_SIZE) { /* a plausible header before it */
			static const uint16_t types[] = { AGENT_EXEC, AGENT_STAT, AGENT_MKDIR,
							  AGENT_SIGNAL, AGENT_WRITE };

			hdr(p, types[r % ARRAY_SIZE(types)], 0, n - AGENT_HDR_SIZE);
		}
		raw_send(fd, p, n);
		shutdown(fd, SHUT_WR);
		/* Whatever the answer, the connection ends (nothing here is a whole request
		 * that needs more, bar a WRITE or READ that can never complete). */
		while (agent_rd_frame(&rd, fd, -1, 5000) == 1)
			;
		close(fd);
	}
	agent_rd_free(&rd);
	/* Still serving. */
	{
		struct agent_exec_result res;
		struct agent_capture cap;
		struct agent_conn *c = open_conn(&fd);

		ck_assert_int_eq(run(c, argv, &cap, &res), 0);
		close_conn(c, fd);
	}
}
END_TEST

/* ---- an agent that breaks the protocol ---- */

struct fake {
	int fd[2]; /* [0] the client's end, [1] the fake agent's */
	struct agent_conn *c;
};

static void fake_open(struct fake *f)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->fd), 0);
	f->c = agent_conn_new(f->fd[0]);
	ck_assert_ptr_nonnull(f->c);
	agent_conn_set_timeout(f->c, 300);
}

static void fake_hello(struct fake *f)
{
	uint8_t p[AGENT_HELLO_SIZE];

	agent_hello_encode(p, AGENT_VERSION, AGENT_CAPS_ALL);
	raw_frame(f->fd[1], AGENT_HELLO, p, sizeof(p));
	ck_assert_int_eq(agent_hello(f->c), 0);
}

static void fake_close(struct fake *f)
{
	agent_conn_free(f->c);
	close(f->fd[0]);
	close(f->fd[1]);
}

static void fake_u32(struct fake *f, uint16_t type, uint32_t v)
{
	uint8_t p[4];

	agent_u32_encode(p, v);
	raw_frame(f->fd[1], type, p, 4);
}

START_TEST(test_hostile_agent)
{
	const char *argv[] = { "true", NULL };
	struct agent_exec_spec spec = { .argv = argv };
	struct agent_exec_result res;
	struct agent_capture cap;
	struct agent_exit e;
	struct fake f;
	uint8_t p[64], h[AGENT_HDR_SIZE];
	int64_t t0;

	/* A header claiming 4 GiB. */
	fake_open(&f);
	hdr(h, AGENT_HELLO, 0, 0xffffffff);
	raw_send(f.fd[1], h, sizeof(h));
	ck_assert_int_eq(agent_hello(f.c), -EPROTO);
	ck_assert(!agent_conn_usable(f.c));
	ck_assert_int_eq(agent_exec_capture(f.c, &spec, 64, &cap, &res), -EPROTO);
	fake_close(&f);
	/* Another version; a refusal. */
	fake_open(&f);
	agent_hello_encode(p, 7, AGENT_CAPS_ALL);
	raw_frame(f.fd[1], AGENT_HELLO, p, AGENT_HELLO_SIZE);
	ck_assert_int_eq(agent_hello(f.c), -EPROTONOSUPPORT);
	fake_close(&f);
	fake_open(&f);
	raw_frame(f.fd[1], AGENT_ERROR, p, agent_error_encode(p, EPERM, "no\x1b[31m\n"));
	ck_assert_int_eq(agent_hello(f.c), -EPERM);
	ck_assert_str_eq(agent_conn_error(f.c), "hello: no?[31m?"); /* no escapes through */
	fake_close(&f);
	/* Capabilities it lacks are not asked for. */
	fake_open(&f);
	agent_hello_encode(p, AGENT_VERSION, AGENT_CAP_FILES);
	raw_frame(f.fd[1], AGENT_HELLO, p, AGENT_HELLO_SIZE);
	ck_assert_int_eq(agent_hello(f.c), 0);
	ck_assert_int_eq(agent_exec_capture(f.c, &spec, 64, &cap, &res), -EOPNOTSUPP);
	fake_close(&f);
	/* Bad STARTED, bad EXITs, oversized STDOUT, ERROR with errno 0, a silent agent. */
	for (int i = 0; i < 6; i++) {
		fake_open(&f);
		fake_hello(&f);
		if (i == 0)
			fake_u32(&f, AGENT_STARTED, 0);
		else if (i < 4)
			fake_u32(&f, AGENT_STARTED, 1234);
		if (i == 1) {
			e = (struct agent_exit){ .flags = 1U << 7 };
			agent_exit_encode(p, &e);
			raw_frame(f.fd[1], AGENT_EXIT, p, AGENT_EXIT_SIZE);
		} else if (i == 2) {
			e = (struct agent_exit){ .status = 256 };
			agent_exit_encode(p, &e);
			raw_frame(f.fd[1], AGENT_EXIT, p, AGENT_EXIT_SIZE);
		} else if (i == 3) {
			hdr(h, AGENT_STDOUT, 0, AGENT_DATA_MAX + 1);
			raw_send(f.fd[1], h, sizeof(h));
		} else if (i == 4) {
			agent_u32_encode(p, 0);
			raw_frame(f.fd[1], AGENT_ERROR, p, 4);
		}
		t0 = agent_now_ms();
		ck_assert_int_eq(agent_exec_capture(f.c, &spec, 64, &cap, &res),
				 i == 5 ? -ETIMEDOUT : -EPROTO);
		agent_capture_free(&cap);
		ck_assert_int_lt(agent_now_ms() - t0, 5000);
		ck_assert(!agent_conn_usable(f.c));
		fake_close(&f);
	}
	/* A command with a timeout the agent does not keep: given up on. */
	fake_open(&f);
	fake_hello(&f);
	fake_u32(&f, AGENT_STARTED, 1234);
	spec.timeout_ms = 100;
	spec.grace_ms = 100;
	t0 = agent_now_ms();
	ck_assert_int_eq(agent_exec_capture(f.c, &spec, 64, &cap, &res), -ETIMEDOUT);
	ck_assert_int_ge(agent_now_ms() - t0, 450);
	ck_assert_int_lt(agent_now_ms() - t0, 3000);
	fake_close(&f);
	/* A file longer than its END says; a DATA frame in reply to STAT. */
	fake_open(&f);
	fake_hello(&f);
	agent_file_encode(p, 3, 0644);
	raw_frame(f.fd[1], AGENT_FILE, p, AGENT_FILE_SIZE);
	raw_frame(f.fd[1], AGENT_DATA, "abc", 3);
	agent_end_encode(p, 2, 0);
	raw_frame(f.fd[1], AGENT_END, p, AGENT_END_SIZE);
	{
		int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
		struct agent_statinfo st;

		ck_assert_int_eq(agent_copy_from_guest(f.c, "/x", out, 100, NULL, NULL), -EPROTO);
		close(out);
		fake_close(&f);
		fake_open(&f);
		fake_hello(&f);
		raw_frame(f.fd[1], AGENT_DATA, "abc", 3);
		ck_assert_int_eq(agent_stat(f.c, "/x", false, &st), -EPROTO);
		fake_close(&f);
	}
}
END_TEST

/* ---- the agent's own options and vsock ---- */

START_TEST(test_options)
{
	static const char *const bad[][4] = {
		{ "--port", "x", NULL },       { "--port", "-1", NULL },
		{ "--listen", "tcp:1", NULL }, { "--listen", "unix:", NULL },
		{ "--max-conns", "0", NULL },  { "extra", NULL },
		{ "--no-such-option", NULL },
	};
	const char *help[] = { "--help", NULL };
	int st;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		st = wait_exit(spawn_agent(bad[i], RLIM_INFINITY), 5000);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: status %#x", bad[i][0],
			      st);
	}
	st = wait_exit(spawn_agent(help, RLIM_INFINITY), 5000);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* A second agent on the same socket: refused, the first one untouched. */
	{
		char listen[160];
		const char *args[] = { "--listen", listen, NULL };

		snprintf(listen, sizeof(listen), "unix:%s", sock_path);
		st = wait_exit(spawn_agent(args, RLIM_INFINITY), 5000);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
		st = connect_unix(sock_path);
		ck_assert_int_ge(st, 0);
		close(st);
	}
}
END_TEST

START_TEST(test_vsock_listen)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char port[16], log[8192], want[64];
	const char *args[] = { "--port", port, "-v", NULL };
	pid_t pid;
	int st;

	if (fd < 0)
		UNIT_SKIP("no AF_VSOCK on this host (%s)", strerror(errno));
	close(fd);
	/* Listening is all that can be checked without a VM (connections need a transport). */
	snprintf(port, sizeof(port), "%d", 20000 + getpid() % 20000);
	pid = spawn_agent(args, RLIM_INFINITY);
	snprintf(want, sizeof(want), "listening on vsock port %s", port);
	for (int i = 0; i < 200; i++) {
		read_log(log, sizeof(log));
		if (strstr(log, want) || waitpid(pid, &st, WNOHANG))
			break;
		usleep(10000);
	}
	ck_assert_msg(strstr(log, want), "log:\n%s", log);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	st = wait_exit(pid, 5000);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

static Suite *agent_suite(void)
{
	Suite *s = suite_create("agent");
	TCase *tc = tcase_create("agent");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hello);
	tcase_add_test(tc, test_exit_status);
	tcase_add_test(tc, test_streams_interleaved);
	tcase_add_test(tc, test_stdin_roundtrip);
	tcase_add_test(tc, test_env_cwd);
	tcase_add_test(tc, test_exit_waits_for_streams);
	tcase_add_test(tc, test_timeout_kills_group);
	tcase_add_test(tc, test_disconnect_mid_command);
	tcase_add_test(tc, test_disconnect_while_stdin_blocked);
	tcase_add_test(tc, test_signal_forwarded);
	tcase_add_test(tc, test_parallel_connections);
	tcase_add_test(tc, test_agent_stop_ends_commands);
	tcase_add_test(tc, test_copy_64m);
	tcase_add_test(tc, test_copy_errors);
	tcase_add_test(tc, test_copy_disk_full);
	tcase_add_test(tc, test_stat_mkdir);
	tcase_add_test(tc, test_malformed_frames);
	tcase_add_test(tc, test_hostile_agent);
	tcase_add_test(tc, test_options);
	tcase_add_test(tc, test_vsock_listen);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--gen"))
		return gen(strtoull(argv[2], NULL, 10));
	return unit_run(agent_suite());
}
