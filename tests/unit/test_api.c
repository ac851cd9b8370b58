// SPDX-License-Identifier: GPL-2.0-or-later
/* The control socket: server, client, protocol and minivmm save/ctl against fake ops. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../include/minivmm.h"
#include "agent/agent_connect.h"
#include "api.h"
#include "api_int.h"
#include "cli.h"
#include "log.h"
#include "unit.h"
#include "util.h"
#include "version.h"

/* What the fake VM was asked to do, and what it answers. */
struct fake {
	pthread_mutex_t lock;
	int pause, resume, save, status, stop; /* calls */
	char path[API_LINE_MAX + 1];
	bool save_stop;
	bool save_raw;
	int ret;	 /* returned by every op */
	const char *msg; /* written to msg/json when set */
	int save_delay_ms;
	int vsock;
	uint32_t vsock_port;
};

static char tmpdir[64], sock[80]; /* sun_path has 108 bytes */
static struct fake fake;
static struct api_server *srv;

static int count(int *field)
{
	pthread_mutex_lock(&fake.lock);
	(*field)++;
	pthread_mutex_unlock(&fake.lock);
	return fake.ret;
}

static int get(const int *field)
{
	int v;

	pthread_mutex_lock(&fake.lock);
	v = *field;
	pthread_mutex_unlock(&fake.lock);
	return v;
}

static int fake_pause(void *ctx)
{
	ck_assert_ptr_eq(ctx, &fake);
	return count(&fake.pause);
}

static int fake_resume(void *ctx)
{
	(void)ctx;
	return count(&fake.resume);
}

static int fake_stop(void *ctx)
{
	(void)ctx;
	return count(&fake.stop);
}

static int fake_save(void *ctx, const char *path, bool stop, bool raw, char *msg, size_t len)
{
	(void)ctx;
	if (fake.save_delay_ms)
		usleep(fake.save_delay_ms * 1000);
	pthread_mutex_lock(&fake.lock);
	snprintf(fake.path, sizeof(fake.path), "%s", path);
	fake.save_stop = stop;
	fake.save_raw = raw;
	pthread_mutex_unlock(&fake.lock);
	if (fake.msg)
		snprintf(msg, len, "%s", fake.msg);
	else if (!fake.ret)
		snprintf(msg, len, "{\"path\":\"%s\",\"bytes\":4096,\"ms\":7}", path);
	return count(&fake.save);
}

static int fake_status(void *ctx, char *json, size_t len)
{
	(void)ctx;
	snprintf(json, len, "%s",
		 fake.msg ? fake.msg
			  : "{\"state\":\"running\",\"vcpus\":2,\"memory\":268435456,"
			    "\"uptime_ms\":1234}");
	return count(&fake.status);
}

/* The VM's side of a vsock stream: "OK <port>" then a byte, as the device would send; port
 * 5 is refused (the device hangs up), port 6 has no device. */
static int fake_vsock(void *ctx, uint32_t port, int *fd, char *msg, size_t len)
{
	int sv[2];
	char line[32];

	(void)ctx;
	pthread_mutex_lock(&fake.lock);
	fake.vsock++;
	fake.vsock_port = port;
	pthread_mutex_unlock(&fake.lock);
	if (port == 6) {
		snprintf(msg, len, "no vsock device");
		return -ENODEV;
	}
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if (port != 5) {
		snprintf(line, sizeof(line), "OK %u\nX", port + 1000);
		ck_assert_int_eq(write(sv[0], line, strlen(line)), (ssize_t)strlen(line));
	}
	close(sv[0]);
	*fd = sv[1];
	return 0;
}

static const struct api_ops ops = {
	.vsock = fake_vsock,
	.pause = fake_pause,
	.resume = fake_resume,
	.save = fake_save,
	.status = fake_status,
	.stop = fake_stop,
};

static void setup(void)
{
	strcpy(tmpdir, "/tmp/minivmm-test-api-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(sock, sizeof(sock), "%s/api.sock", tmpdir);
	memset(&fake, 0, sizeof(fake));
	pthread_mutex_init(&fake.lock, NULL);
	srv = NULL;
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	api_server_stop(srv);
	srv = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static void start(int timeout_ms)
{
	ck_assert_int_eq(api_server_start_timeout(sock, &ops, &fake, timeout_ms, &srv), 0);
	ck_assert_ptr_nonnull(srv);
}

/* One request; the reply line must arrive. */
static const char *call(const char *req)
{
	static char reply[API_MSG_MAX + 256];

	ck_assert_int_eq(api_call(sock, req, reply, sizeof(reply), 2000), 0);
	return reply;
}

static int connect_raw(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void send_raw(int fd, const char *buf, size_t len)
{
	ck_assert_int_eq(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/*
 * Everything the server sends until it closes (at most 2 s). Closing with
 * our bytes unread makes the end ECONNRESET instead of EOF: fine too.
 */
static char *read_all(int fd)
{
	static char buf[8192];
	struct timeval tv = { .tv_sec = 2 };
	size_t n = 0;
	ssize_t r;

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	while ((r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0)
		n += r;
	ck_assert_msg(r == 0 || errno == ECONNRESET, "server did not close: %s", strerror(errno));
	buf[n] = '\0';
	/* Every connection the server accepted starts with the greeting. */
	if (!n)
		return buf;
	ck_assert_msg(!strncmp(buf, api_greeting, strlen(api_greeting)), "no greeting: %s", buf);
	return buf + strlen(api_greeting);
}

START_TEST(test_socket_owner_only)
{
	mode_t old = umask(0); /* the mode must not depend on the umask */
	struct stat st;

	start(API_CLIENT_TIMEOUT_MS);
	umask(old);
	ck_assert_int_eq(lstat(sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_uid, getuid());
	api_server_stop(srv);
	srv = NULL;

	/* A umask that takes the owner's bits too: still 0600, still usable. */
	old = umask(0277);
	start(API_CLIENT_TIMEOUT_MS);
	umask(old);
	ck_assert_int_eq(lstat(sock, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_str_eq(call("pause"), "ok");
}
END_TEST

START_TEST(test_commands)
{
	start(API_CLIENT_TIMEOUT_MS);
	ck_assert_str_eq(call("pause"), "ok");
	ck_assert_int_eq(get(&fake.pause), 1);
	ck_assert_str_eq(call("resume"), "ok");
	ck_assert_int_eq(get(&fake.resume), 1);
	ck_assert_str_eq(call("status"), "ok {\"state\":\"running\",\"vcpus\":2,"
					 "\"memory\":268435456,\"uptime_ms\":1234}");
	ck_assert_int_eq(get(&fake.status), 1);

	ck_assert_str_eq(call("save /tmp/a dir/my snap.bin "),
			 "ok {\"path\":\"/tmp/a dir/my snap.bin \",\"bytes\":4096,\"ms\":7}");
	ck_assert_int_eq(get(&fake.save), 1);
	ck_assert_str_eq(fake.path, "/tmp/a dir/my snap.bin ");
	ck_assert(!fake.save_stop);
	ck_assert_str_eq(call("save --stop /x/--stop y"),
			 "ok {\"path\":\"/x/--stop y\",\"bytes\":4096,\"ms\":7}");
	ck_assert_str_eq(fake.path, "/x/--stop y");
	ck_assert(fake.save_stop);
	ck_assert(!fake.save_raw);
	ck_assert_str_eq(call("save --raw --stop /r"),
			 "ok {\"path\":\"/r\",\"bytes\":4096,\"ms\":7}");
	ck_assert(fake.save_stop && fake.save_raw);
	ck_assert_str_eq(call("save --raw /r2"), "ok {\"path\":\"/r2\",\"bytes\":4096,\"ms\":7}");
	ck_assert(!fake.save_stop && fake.save_raw);
	/* An option given twice is taken as the start of the path, which is relative. */
	ck_assert_str_eq(call("save --raw --raw /r3"), "error EINVAL: save: PATH must be absolute");

	ck_assert_str_eq(call("stop\r"), "ok"); /* CRLF clients */
	ck_assert_int_eq(get(&fake.stop), 1);
	/* Nothing called twice, nothing else called. */
	ck_assert_int_eq(get(&fake.pause) + get(&fake.resume) + get(&fake.status), 3);
	ck_assert_int_eq(get(&fake.save), 4);
}
END_TEST

START_TEST(test_op_errors)
{
	const char *body;

	start(API_CLIENT_TIMEOUT_MS);
	fake.ret = -EBUSY;
	ck_assert_str_eq(call("pause"), "error EBUSY: Device or resource busy");
	ck_assert_int_eq(get(&fake.pause), 1);
	fake.msg = "disk full\nsecond line";
	fake.ret = -ENOSPC;
	ck_assert_str_eq(call("save /s"), "error ENOSPC: disk full second line");
	ck_assert_int_eq(api_reply_parse(call("save /s"), &body), -ENOSPC);
	ck_assert_str_eq(body, "disk full second line");
	fake.ret = -EIO;
	ck_assert_str_eq(call("status"), "error EIO: disk full second line");
}
END_TEST

START_TEST(test_missing_op)
{
	struct api_ops none = { .status = fake_status };

	ck_assert_int_eq(api_server_start(sock, &none, &fake, &srv), 0);
	ck_assert_str_eq(call("pause"), "error EOPNOTSUPP: 'pause' is not supported");
	ck_assert_str_eq(call("save /x"), "error EOPNOTSUPP: 'save' is not supported");
	ck_assert_str_eq(call("status"), "ok {\"state\":\"running\",\"vcpus\":2,"
					 "\"memory\":268435456,\"uptime_ms\":1234}");
}
END_TEST

START_TEST(test_bad_requests)
{
	start(API_CLIENT_TIMEOUT_MS);
	ck_assert_str_eq(call("frobnicate"), "error EINVAL: unknown command 'frobnicate'");
	ck_assert_str_eq(call(""), "error EINVAL: unknown command ''");
	ck_assert_str_eq(call("PAUSE"), "error EINVAL: unknown command 'PAUSE'");
	ck_assert_str_eq(call("pause now"), "error EINVAL: 'pause' takes no argument");
	ck_assert_str_eq(call("save"), "error EINVAL: usage: save [--stop] [--raw] PATH");
	ck_assert_str_eq(call("save --stop"), "error EINVAL: usage: save [--stop] [--raw] PATH");
	ck_assert_str_eq(call("save rel/snap"), "error EINVAL: save: PATH must be absolute");
	ck_assert_str_eq(call("save --stop snap"), "error EINVAL: save: PATH must be absolute");
	ck_assert_int_eq(get(&fake.pause) + get(&fake.save), 0);
}
END_TEST

START_TEST(test_nul_and_pipelined)
{
	int fd;

	start(API_CLIENT_TIMEOUT_MS);
	fd = connect_raw(sock);
	/* Several requests in one write, answered in order; then close. */
	send_raw(fd, "pause\nsta\0tus\nresume\n", 21);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	ck_assert_str_eq(read_all(fd), "ok\nerror EINVAL: NUL byte in request\nok\n");
	close(fd);
	ck_assert_int_eq(get(&fake.pause), 1);
	ck_assert_int_eq(get(&fake.resume), 1);
	ck_assert_int_eq(get(&fake.status), 0);
}
END_TEST

START_TEST(test_line_limit)
{
	char *line = malloc(API_LINE_MAX + 2);
	int fd;

	ck_assert_ptr_nonnull(line);
	start(API_CLIENT_TIMEOUT_MS);
	/* The longest line is served... */
	memset(line, 'p', API_LINE_MAX);
	memcpy(line, "save /", 6);
	line[API_LINE_MAX] = '\0';
	fake.msg = "done";
	ck_assert_str_eq(call(line), "ok done");
	ck_assert_int_eq(strlen(fake.path), API_LINE_MAX - 5);
	/* ...one byte more is not, and the connection is closed. */
	fd = connect_raw(sock);
	line[API_LINE_MAX] = 'p';
	line[API_LINE_MAX + 1] = '\n';
	send_raw(fd, line, API_LINE_MAX + 2);
	ck_assert_str_eq(read_all(fd), "error EMSGSIZE: request longer than 4096 bytes\n");
	close(fd);
	ck_assert_int_eq(get(&fake.save), 1);
	/* api_call() gets that reply too, though its send may fail half-way. */
	line[API_LINE_MAX + 1] = '\0';
	ck_assert_str_eq(call(line), "error EMSGSIZE: request longer than 4096 bytes");
	ck_assert_int_eq(get(&fake.save), 1);
	/* Others are still served. */
	ck_assert_str_eq(call("pause"), "ok");
	free(line);
}
END_TEST

START_TEST(test_idle_client)
{
	uint64_t t0;
	int idle, partial;

	start(1000);
	idle = connect_raw(sock);
	partial = connect_raw(sock);
	send_raw(partial, "pau", 3);
	/* Served at once, not after the idle connections time out. */
	t0 = now_ns();
	ck_assert_str_eq(call("status"), "ok {\"state\":\"running\",\"vcpus\":2,"
					 "\"memory\":268435456,\"uptime_ms\":1234}");
	ck_assert_uint_lt(now_ns() - t0, 700 * 1000000ULL); /* loaded machines are slow */
	/* Both are closed after their timeout, the partial line not run. */
	ck_assert_str_eq(read_all(idle), "error ETIMEDOUT: no request within 1000 ms\n");
	ck_assert_str_eq(read_all(partial), "error ETIMEDOUT: no request within 1000 ms\n");
	ck_assert_uint_lt(now_ns() - t0, 3000 * 1000000ULL);
	ck_assert_uint_ge(now_ns() - t0, 900 * 1000000ULL);
	close(idle);
	close(partial);
	ck_assert_int_eq(get(&fake.pause), 0);
	ck_assert_str_eq(call("resume"), "ok");
}
END_TEST

START_TEST(test_partial_then_close)
{
	int fd;

	start(API_CLIENT_TIMEOUT_MS);
	fd = connect_raw(sock);
	send_raw(fd, "pause", 5); /* no '\n': not a request */
	close(fd);
	ck_assert_str_eq(call("resume"), "ok");
	ck_assert_int_eq(get(&fake.pause), 0);
	ck_assert_int_eq(get(&fake.resume), 1);
}
END_TEST

START_TEST(test_client_gone_before_reply)
{
	int fd;

	start(API_CLIENT_TIMEOUT_MS);
	fake.save_delay_ms = 100;
	fd = connect_raw(sock);
	send_raw(fd, "save /a\n", 8);
	close(fd); /* the reply goes nowhere: no SIGPIPE, the server goes on */
	ck_assert_str_eq(call("pause"), "ok");
	ck_assert_int_eq(get(&fake.save), 1);
}
END_TEST

static void make_stale_socket(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd); /* bound, never listened, closed: what a crash leaves */
}

START_TEST(test_stale_socket_replaced)
{
	char reply[16];
	struct stat st;

	make_stale_socket(sock);
	ck_assert_int_eq(api_call(sock, "pause", reply, sizeof(reply), 500), -ECONNREFUSED);
	start(API_CLIENT_TIMEOUT_MS);
	ck_assert_int_eq(lstat(sock, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_str_eq(call("pause"), "ok"); /* a new socket: the old one refused */
}
END_TEST

START_TEST(test_live_socket_refused)
{
	struct api_server *second = (void *)1;

	start(API_CLIENT_TIMEOUT_MS);
	ck_assert_int_eq(api_server_start(sock, &ops, &fake, &second), -EADDRINUSE);
	ck_assert_ptr_null(second);
	/* The first one still owns and serves the path. */
	ck_assert_str_eq(call("pause"), "ok");
	ck_assert_int_eq(get(&fake.pause), 1);
}
END_TEST

START_TEST(test_file_refused)
{
	char buf[64] = "";
	FILE *f = fopen(sock, "w");

	ck_assert_ptr_nonnull(f);
	fputs("precious", f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(api_server_start(sock, &ops, &fake, &srv), -EEXIST);
	ck_assert_ptr_null(srv);
	f = fopen(sock, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	ck_assert_str_eq(buf, "precious");
	/* A directory is not a socket either. */
	ck_assert_int_eq(api_server_start(tmpdir, &ops, &fake, &srv), -EEXIST);
}
END_TEST

START_TEST(test_bad_paths)
{
	char longpath[200];

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	ck_assert_int_eq(api_server_start(longpath, &ops, &fake, &srv), -ENAMETOOLONG);
	ck_assert_int_eq(api_server_start("/nonexistent-dir/x.sock", &ops, &fake, &srv), -ENOENT);
	ck_assert_ptr_null(srv);
}
END_TEST

START_TEST(test_stop_prompt_and_removes)
{
	char reply[64];
	uint64_t t0;
	int idle;

	start(API_CLIENT_TIMEOUT_MS);
	idle = connect_raw(sock);
	send_raw(idle, "pau", 3);
	t0 = now_ns();
	api_server_stop(srv);
	srv = NULL;
	/* Not after the connection's 5 s timeout, nor any other. */
	ck_assert_uint_lt(now_ns() - t0, 2000 * 1000000ULL);
	ck_assert_int_eq(access(sock, F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_str_eq(read_all(idle), ""); /* closed, nothing run */
	close(idle);
	ck_assert_int_eq(api_call(sock, "pause", reply, sizeof(reply), 500), -ENOENT);
	ck_assert_int_eq(get(&fake.pause), 0);
	api_server_stop(NULL);
}
END_TEST

static void *stop_later(void *arg)
{
	usleep(50 * 1000);
	api_server_stop(arg);
	return NULL;
}

START_TEST(test_stop_during_request)
{
	pthread_t t;

	start(API_CLIENT_TIMEOUT_MS);
	fake.save_delay_ms = 300;
	ck_assert_int_eq(pthread_create(&t, NULL, stop_later, srv), 0);
	/* The request in progress still gets its reply. */
	ck_assert_str_eq(call("save --stop /snap"),
			 "ok {\"path\":\"/snap\",\"bytes\":4096,\"ms\":7}");
	pthread_join(t, NULL);
	srv = NULL;
	ck_assert_int_eq(access(sock, F_OK), -1);
}
END_TEST

START_TEST(test_stop_leaves_a_replaced_socket)
{
	struct stat st;

	start(API_CLIENT_TIMEOUT_MS);
	/* Someone else now owns the path: not ours to remove. */
	ck_assert_int_eq(unlink(sock), 0);
	make_stale_socket(sock);
	api_server_stop(srv);
	srv = NULL;
	ck_assert_int_eq(lstat(sock, &st), 0);
}
END_TEST

START_TEST(test_many_clients)
{
	start(API_CLIENT_TIMEOUT_MS);
	for (int i = 0; i < 100; i++)
		ck_assert_str_eq(call(i % 2 ? "pause" : "resume"), "ok");
	ck_assert_int_eq(get(&fake.pause), 50);
	ck_assert_int_eq(get(&fake.resume), 50);
}
END_TEST

START_TEST(test_client_errors)
{
	char reply[16];
	int fd;

	/* Nothing there. */
	ck_assert_int_eq(api_call(sock, "pause", reply, sizeof(reply), 500), -ENOENT);
	make_stale_socket(sock);
	ck_assert_int_eq(api_call(sock, "pause", reply, sizeof(reply), 500), -ECONNREFUSED);
	ck_assert_int_eq(unlink(sock), 0);
	ck_assert_int_eq(api_call(sock, "a\nb", reply, sizeof(reply), 500), -EINVAL);

	/* A reply longer than the buffer: its start, and -EMSGSIZE. */
	start(API_CLIENT_TIMEOUT_MS);
	ck_assert_int_eq(api_call(sock, "status", reply, sizeof(reply), 500), -EMSGSIZE);
	ck_assert_str_eq(reply, "ok {\"state\":\"ru");
	api_server_stop(srv);
	srv = NULL;

	/* A server that accepts and never answers. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	{
		struct sockaddr_un a = { .sun_family = AF_UNIX };

		snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		ck_assert_int_eq(listen(fd, 1), 0);
	}
	ck_assert_int_eq(api_call(sock, "pause", reply, sizeof(reply), 200), -ETIMEDOUT);
	close(fd);
}
END_TEST

START_TEST(test_json_requests)
{
	start(API_CLIENT_TIMEOUT_MS);
	/* JSON requests get JSON replies, with their id when they have one. */
	ck_assert_str_eq(call("{\"cmd\":\"pause\"}"), "{\"ok\":true,\"result\":{}}");
	ck_assert_int_eq(get(&fake.pause), 1);
	ck_assert_str_eq(call("{\"id\":-17,\"cmd\":\"resume\"}"),
			 "{\"id\":-17,\"ok\":true,\"result\":{}}");
	ck_assert_str_eq(
	    call("{\"cmd\":\"status\",\"id\":\"a\\\"b\"}"),
	    "{\"id\":\"a\\\"b\",\"ok\":true,\"result\":{\"state\":\"running\",\"vcpus\":2,"
	    "\"memory\":268435456,\"uptime_ms\":1234}}");
	ck_assert_str_eq(call("{\"cmd\":\"nope\",\"id\":3}"),
			 "{\"id\":3,\"ok\":false,\"error\":{\"errno\":\"EINVAL\",\"code\":22,"
			 "\"message\":\"unknown command 'nope'\"}}");
	fake.msg = "done";
	ck_assert_str_eq(call(" {\"cmd\":\"save\"}"), "error EINVAL: unknown command ''");
	ck_assert_str_eq(call("{ \"path\" : \"/a \\\"q\\\"\\u00e9\\n\\ud83d\\ude00\\/\" ,\t"
			      "\"stop\":true, \"cmd\":\"save\" } "),
			 "{\"ok\":true,\"result\":{}}");
	ck_assert_str_eq(fake.path, "/a \"q\"\xc3\xa9\n\xf0\x9f\x98\x80/");
	ck_assert(fake.save_stop);
	fake.msg = "{\"x\":1}";
	ck_assert_str_eq(call("{\"cmd\":\"save\",\"path\":\"/b\",\"stop\":false}"),
			 "{\"ok\":true,\"result\":{\"x\":1}}");
	ck_assert_str_eq(fake.path, "/b");
	ck_assert(!fake.save_stop);
	ck_assert_int_eq(get(&fake.save), 2);
	ck_assert_str_eq(call("{\"cmd\":\"save\",\"path\":\"/c\",\"raw\":true}"),
			 "{\"ok\":true,\"result\":{\"x\":1}}");
	ck_assert(fake.save_raw && !fake.save_stop);
	ck_assert_str_eq(call("{\"cmd\":\"pause\",\"raw\":true}"),
			 "{\"ok\":false,\"error\":{\"errno\":\"EINVAL\",\"code\":22,"
			 "\"message\":\"'pause' takes no argument\"}}");
}
END_TEST

/* Each bad request and the reason the reply gives; nothing runs. */
START_TEST(test_parse_errors)
{
	static const char *const cases[][2] = {
		{ "{}", "bad JSON: no \"cmd\"" },
		{ "{\"stop\":true}", "bad JSON: no \"cmd\"" },
		{ "{\"cmd\":\"x\"}", "unknown command 'x'" },
		{ "{\"cmd\":\"pause\",\"stop\":true}", "'pause' takes no argument" },
		{ "{\"cmd\":\"status\",\"path\":\"/x\"}", "'status' takes no argument" },
		{ "{\"cmd\":\"save\"}", "usage: save [--stop] [--raw] PATH" },
		{ "{\"cmd\":\"save\",\"path\":\"rel\"}", "save: PATH must be absolute" },
		{ "{\"cmd\":1}", "bad JSON: \"cmd\" must be a string" },
		{ "{\"cmd\":\"pause\",\"cmd\":\"stop\"}", "bad JSON: duplicate key \"cmd\"" },
		{ "{\"cmd\":\"save\",\"stop\":1,\"path\":\"/x\"}",
		  "bad JSON: \"stop\" must be true or false" },
		{ "{\"cmd\":\"save\",\"path\":\"/\\ud800\"}", "bad JSON: malformed string" },
		{ "{\"cmd\":\"save\",\"path\":\"/\\udc00\"}", "bad JSON: malformed string" },
		{ "{\"cmd\":\"save\",\"path\":\"/a\\u0000b\"}", "bad JSON: malformed string" },
		{ "{\"cmd\":\"save\",\"path\":\"/a\\qb\"}", "bad JSON: malformed string" },
		{ "{\"cmd\":\"save\",\"path\":\"/a\\u12\"}", "bad JSON: malformed string" },
		{ "{\"cmd\":\"pause\"", "bad JSON: expected ',' or '}'" },
		{ "{\"cmd\":\"pause\"} x", "bad JSON: text after the object" },
		{ "{\"cmd\" \"pause\"}", "bad JSON: expected ':' after \"cmd\"" },
		{ "{cmd:\"pause\"}", "bad JSON: expected a key string" },
		{ "{\"bogus\":1}", "bad JSON: unknown key \"bogus\"" },
		{ "{\"cmd\":\"pause\",}", "bad JSON: expected a key string" },
		{ "{\"cmd\":\"pau", "bad JSON: malformed string" },
		{ "save --stopx /a", "save: PATH must be absolute" },
		{ "stop --stop", "'stop' takes no argument" },
		{ "resume ", "'resume' takes no argument" },
		{ "vsock", "usage: vsock PORT" },
		{ "vsock x", "usage: vsock PORT" },
		{ "vsock -1", "usage: vsock PORT" },
		{ "vsock 4294967296", "vsock: bad port '4294967296' (0..4294967295)" },
		{ "vsock 12 ", "vsock: bad port '12 ' (0..4294967295)" },
		{ "{\"cmd\":\"vsock\"}", "bad JSON: vsock needs \"port\"" },
		{ "{\"cmd\":\"vsock\",\"path\":\"1\"}", "bad JSON: vsock needs \"port\"" },
		{ "{\"cmd\":\"pause\",\"port\":1}", "bad JSON: \"port\" belongs to vsock only" },
		{ "{\"cmd\":\"vsock\",\"port\":\"1\"}", "bad JSON: \"port\" must be a number" },
		{ "{\"cmd\":\"vsock\",\"port\":1,\"port\":2}", "bad JSON: duplicate key \"port\"" },
		{ "{\"cmd\":\"pause\",\"id\":1,\"id\":2}", "bad JSON: duplicate key \"id\"" },
		{ "{\"cmd\":\"pause\",\"id\":true}",
		  "bad JSON: \"id\" must be a number or a string" },
		{ "{\"cmd\":\"pause\",\"id\":-}", "bad JSON: \"id\" must be a number or a string" },
		{ "{\"cmd\":\"pause\",\"id\":123456789012345678901}",
		  "bad JSON: \"id\" must be a number or a string" },
		{ "subscribe x", "'subscribe' takes no argument" },
		{ "balloon x", "balloon: bad size 'x' (bytes, or a number with K, M or G)" },
		{ "balloon 1T", "balloon: bad size '1T' (bytes, or a number with K, M or G)" },
		{ "balloon 1M ", "balloon: bad size '1M ' (bytes, or a number with K, M or G)" },
		{ "balloon 99999999999999999999",
		  "balloon: bad size '99999999999999999999' (bytes, or a number with K, M or G)" },
		{ "balloon 17179869184G",
		  "balloon: bad size '17179869184G' (bytes, or a number with K, M or G)" },
		{ "{\"cmd\":\"balloon\",\"path\":\"1M\"}",
		  "bad JSON: balloon takes \"size\", not \"path\"" },
		{ "{\"cmd\":\"pause\",\"size\":1}", "bad JSON: \"size\" belongs to balloon only" },
		{ "{\"cmd\":\"balloon\",\"size\":true}",
		  "bad JSON: \"size\" must be a number or a string" },
		{ "{\"cmd\":\"balloon\",\"size\":1,\"size\":2}",
		  "bad JSON: duplicate key \"size\"" },
		{ "{\"cmd\":\"balloon\",\"size\":\"-1\"}",
		  "balloon: bad size '-1' (bytes, or a number with K, M or G)" },
	};
	struct api_request req;
	char line[128], err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(line, sizeof(line), "%s", cases[i][0]);
		err[0] = '\0';
		ck_assert_msg(api_parse_request(line, &req, err, sizeof(err)) == -EINVAL, "%s",
			      cases[i][0]);
		ck_assert_str_eq(err, cases[i][1]);
	}
	snprintf(line, sizeof(line), "save --stop /x y");
	ck_assert_int_eq(api_parse_request(line, &req, err, sizeof(err)), 0);
	ck_assert_int_eq(req.cmd, API_SAVE);
	ck_assert_str_eq(req.path, "/x y");
	ck_assert(req.stop);
	snprintf(line, sizeof(line), "{\"cmd\":\"stop\"}");
	ck_assert_int_eq(api_parse_request(line, &req, err, sizeof(err)), 0);
	ck_assert_int_eq(req.cmd, API_STOP);
	ck_assert_ptr_null(req.path);
	/* balloon: an optional size, both forms. */
	snprintf(line, sizeof(line), "balloon");
	ck_assert_int_eq(api_parse_request(line, &req, err, sizeof(err)), 0);
	ck_assert_int_eq(req.cmd, API_BALLOON);
	ck_assert(!req.has_size);
	snprintf(line, sizeof(line), "balloon 256M");
	ck_assert_int_eq(api_parse_request(line, &req, err, sizeof(err)), 0);
	ck_assert(req.has_size);
	ck_assert_uint_eq(req.size, 256ull << 20);
	snprintf(line, sizeof(line), "{\"cmd\":\"balloon\",\"size\":\"2G\"}");
	ck_assert_int_eq(api_parse_request(line, &req, err, sizeof(err)), 0);
	ck_assert_uint_eq(req.size, 2ull << 30);
	snprintf(line, sizeof(line), "{\"cmd\":\"balloon\",\"size\":4096}");
	ck_assert_int_eq(api_parse_request(line, &req, err, sizeof(err)), 0);
	ck_assert(req.has_size);
	ck_assert_uint_eq(req.size, 4096);

	/* Through the server: the reason becomes an EINVAL reply. */
	start(API_CLIENT_TIMEOUT_MS);
	ck_assert_str_eq(call("pause --stop"), "error EINVAL: 'pause' takes no argument");
	ck_assert_int_eq(get(&fake.pause), 0);
}
END_TEST

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The vsock request: the stream travels with the reply (SCM_RIGHTS); errors carry none. */
START_TEST(test_vsock_fd)
{
	char reply[256], err[256], b;
	const char *body;
	bool answered;
	int fd, fds;

	start(API_CLIENT_TIMEOUT_MS);
	fds = count_fds();
	ck_assert_int_eq(api_call_fd(sock, "vsock 1024", reply, sizeof(reply), 5000, &fd), 0);
	ck_assert_str_eq(reply, "ok {\"port\":1024}");
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, reply, 8), 8);
	ck_assert(!memcmp(reply, "OK 2024\n", 8));
	close(fd);
	ck_assert_int_eq(get(&fake.vsock), 1);
	ck_assert_uint_eq(fake.vsock_port, 1024);
	/* JSON form; an error reply brings no fd. */
	ck_assert_int_eq(
	    api_call_fd(sock, "{\"cmd\":\"vsock\",\"port\":6}", reply, sizeof(reply), 5000, &fd),
	    0);
	ck_assert_str_eq(reply, "{\"ok\":false,\"error\":{\"errno\":\"ENODEV\",\"code\":19,"
				"\"message\":\"no vsock device\"}}");
	ck_assert_int_eq(fd, -1);
	/* agent_connect_api: past the device's OK line, the stream is the guest's. */
	ck_assert_int_eq(agent_connect_api(sock, 7, 5000, 0, &fd, err, sizeof(err)), 0);
	ck_assert_int_eq(read(fd, &b, 1), 1);
	ck_assert_int_eq(b, 'X');
	close(fd);
	ck_assert_int_eq(agent_connect_api(sock, 5, 5000, 300, &fd, err, sizeof(err)),
			 -ECONNREFUSED);
	ck_assert_int_eq(fd, -1);
	ck_assert_ptr_nonnull(strstr(err, "nothing listens on vsock port 5"));
	/* --wait: tried again every 100 ms for 300 ms. */
	ck_assert_int_ge(get(&fake.vsock), 3 + 3);
	ck_assert_int_eq(agent_connect_api(sock, 6, 5000, 0, &fd, err, sizeof(err)), -ENODEV);
	ck_assert_ptr_nonnull(strstr(err, "no vsock device"));
	/* api_request_fd: the descriptor, or why not, and whether the VM answered. */
	ck_assert_int_eq(api_request_fd(sock, "vsock 1024", 5000, &fd, &answered, err, sizeof(err)),
			 0);
	ck_assert(answered);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(api_request_fd(sock, "vsock 6", 5000, &fd, &answered, err, sizeof(err)),
			 -ENODEV);
	ck_assert(answered);
	ck_assert_int_eq(fd, -1);
	ck_assert_ptr_nonnull(strstr(err, ": no vsock device"));
	ck_assert_int_eq(api_request_fd(sock, "status", 5000, &fd, &answered, err, sizeof(err)),
			 -EPROTO);
	ck_assert(answered);
	ck_assert_ptr_nonnull(strstr(err, "answered without a descriptor"));
	snprintf(reply, sizeof(reply), "%s.none", sock);
	ck_assert_int_eq(api_request_fd(reply, "vsock 1", 5000, &fd, &answered, err, sizeof(err)),
			 -ENOENT);
	ck_assert(!answered);
	ck_assert_ptr_nonnull(strstr(err, "cannot connect to"));
	/* A plain api_call drops a passed fd. */
	ck_assert_int_eq(api_call(sock, "vsock 8", reply, sizeof(reply), 5000), 0);
	ck_assert_int_eq(api_reply_parse(reply, &body), 0);
	/* No fd left over (the server closes its ends of the connections in its own time). */
	for (int i = 0; i < 100 && count_fds() != fds; i++)
		usleep(10000);
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/* One line from @fd (without '\n'), at most 2 s away; "" at EOF. */
static const char *read_line_raw(int fd)
{
	static char buf[API_OUT_MAX];
	struct timeval tv = { .tv_sec = 2 };
	size_t n = 0;

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	while (n < sizeof(buf) - 1) {
		ssize_t r = recv(fd, buf + n, 1, 0);

		ck_assert_msg(r >= 0, "no line within 2 s: %s", strerror(errno));
		if (!r || buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return buf;
}

static bool has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

struct seen {
	int n;
};

static void *stop_soon(void *arg)
{
	usleep(200 * 1000);
	api_server_event(arg, "stopped", "{\"reason\":\"api\"}");
	api_server_stop(arg);
	return NULL;
}

/* Events: only to subscribers, in order, with the ones queued before a reply before it; a
 * subscriber that does not read is closed, never waited for; the last ones go out at stop. */
START_TEST(test_events)
{
	struct seen seen = { 0 };
	struct minivmm_vm *vm;
	pthread_t thr;
	int sub, plain, slow;
	char ev[512];

	start(1000);
	api_server_event(NULL, "nothing", NULL); /* no server: a no-op */
	sub = connect_raw(sock);
	plain = connect_raw(sock);
	ck_assert_str_eq(read_line_raw(sub),
			 "{\"minivmm\":{\"version\":\"" MINIVMM_VERSION
			 "\",\"protocol\":2},\"capabilities\":"
			 "[\"json\",\"ids\",\"events\",\"vsock\",\"console\",\"balloon\"]}");
	send_raw(sub, "{\"cmd\":\"subscribe\",\"id\":1}\n",
		 strlen("{\"cmd\":\"subscribe\",\"id\":1}\n"));
	ck_assert_str_eq(read_line_raw(sub), "{\"id\":1,\"ok\":true,\"result\":{}}");
	api_server_event(srv, "paused", "{\"reason\":\"api\"}");
	api_server_event(srv, "guest-panicked", NULL);
	ck_assert(has_prefix(read_line_raw(sub), "{\"event\":\"paused\",\"ts_ms\":"));
	ck_assert_ptr_nonnull(strstr(read_line_raw(sub), "\"event\":\"guest-panicked\""));
	/* A subscriber is not closed for being idle (the timeout here is 1 s). */
	usleep(1500 * 1000);
	api_server_event(srv, "resumed", NULL);
	ck_assert_ptr_nonnull(strstr(read_line_raw(sub), "\"resumed\""));
	/* The plain connection saw none of it: just its greeting, then its reply. */
	ck_assert(has_prefix(read_line_raw(plain), "{\"minivmm\":"));
	close(plain);
	/* A subscriber that never reads: closed once 64 KiB wait for it. */
	slow = connect_raw(sock);
	send_raw(slow, "subscribe\n", 10);
	usleep(100 * 1000);
	{
		int sz = 4096;

		/* Small socket buffers, so the server's buffer fills. */
		setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	for (int i = 0; i < 3000; i++) {
		char data[64];

		snprintf(data, sizeof(data), "{\"n\":%d,\"pad\":\"%040d\"}", i, 0);
		api_server_event(srv, "save-progress", data);
		if (i % 100 == 99) {
			usleep(20 * 1000);
			while (*read_line_raw(sub) && seen.n++ < 3000 && i + 1 > seen.n)
				;
		}
	}
	/* The server is still there for everyone else, and closed the slow one. */
	ck_assert_str_eq(call("pause"), "ok");
	read_all(slow);
	close(slow);
	/* ctl events' client (libminivmm): each event, then -EPIPE when the server goes. */
	close(sub);
	ck_assert_int_eq(minivmm_attach(sock, &vm), 0);
	ck_assert_int_eq(minivmm_next_event(vm, ev, sizeof(ev), 50), -ETIMEDOUT);
	ck_assert_int_eq(pthread_create(&thr, NULL, stop_soon, srv), 0);
	ck_assert_int_eq(minivmm_next_event(vm, ev, sizeof(ev), 2000), 0);
	ck_assert_ptr_nonnull(strstr(ev, "\"event\":\"stopped\""));
	ck_assert_int_eq(minivmm_next_event(vm, ev, sizeof(ev), 2000), -EPIPE);
	pthread_join(thr, NULL);
	minivmm_free(vm);
	srv = NULL;
}
END_TEST

START_TEST(test_reply_parse)
{
	const char *body;

	ck_assert_int_eq(api_reply_parse("ok", &body), 0);
	ck_assert_str_eq(body, "");
	ck_assert_int_eq(api_reply_parse("ok {\"a\":1}", &body), 0);
	ck_assert_str_eq(body, "{\"a\":1}");
	ck_assert_int_eq(api_reply_parse("error ENOSPC: full: really", &body), -ENOSPC);
	ck_assert_str_eq(body, "full: really");
	ck_assert_int_eq(api_reply_parse("error EWHATEVER: x", &body), -EIO);
	ck_assert_int_eq(api_reply_parse("error E2BIG: x", &body), -E2BIG);
	ck_assert_int_eq(api_reply_parse("error nothing", &body), -EPROTO);
	ck_assert_int_eq(api_reply_parse("okay", &body), -EPROTO);
	ck_assert_str_eq(body, "okay");
}
END_TEST

START_TEST(test_json_string)
{
	char buf[32] = "{\"path\":";
	char small[8] = "x";

	ck_assert_int_eq(api_json_append_string(buf, sizeof(buf), "/a \"b\"\\\n"), 0);
	ck_assert_str_eq(buf, "{\"path\":\"/a \\\"b\\\"\\\\\\u000a\"");
	ck_assert_int_eq(api_json_append_string(small, sizeof(small), "123456"), -ENOSPC);
	ck_assert_str_eq(small, "x");
	ck_assert_int_eq(api_json_append_string(small, sizeof(small), "1234"), 0);
	ck_assert_str_eq(small, "x\"1234\"");
}
END_TEST

/* stderr of the commands in between, into a file we read back. */
static int saved_stderr = -1;

static void capture_begin(void)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "%s/stderr", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

static const char *capture_end(void)
{
	static char buf[4096];
	ssize_t n;

	fflush(stderr);
	n = pread(STDERR_FILENO, buf, sizeof(buf) - 1, 0);
	ck_assert_int_eq(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	return buf;
}

/* cmd_save/cmd_ctl with a NULL-terminated argument list. */
static int run_cmd(int (*cmd)(int, char **), ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;

	va_start(ap, cmd);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	return cmd(argc, argv);
}

START_TEST(test_cmd_save)
{
	char real[PATH_MAX], want[PATH_MAX + 64];

	start(API_CLIENT_TIMEOUT_MS);
	ck_assert_ptr_nonnull(realpath(tmpdir, real));
	ck_assert_int_eq(chdir(tmpdir), 0);
	ck_assert_int_eq(mkdir("sub dir", 0700), 0);

	/* A relative SNAPSHOT goes out absolute. */
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--socket", sock, "sub dir/../snap 1", NULL), 0);
	snprintf(want, sizeof(want), "%s/snap 1", real);
	ck_assert_str_eq(fake.path, want);
	ck_assert(!fake.save_stop);
	capture_begin();
	ck_assert_int_eq(run_cmd(cmd_save, "save", "snap2", "--stop", "-v", "--socket", sock, NULL),
			 0);
	log_verbosity = 0;
	snprintf(want, sizeof(want), "minivmm: saved %s/snap2: 4096 bytes in 7 ms, VM stopped\n",
		 real);
	/* (The server, in this process, logs at -v too.) */
	ck_assert_ptr_nonnull(strstr(capture_end(), want));
	snprintf(want, sizeof(want), "%s/snap2", real);
	ck_assert_str_eq(fake.path, want);
	ck_assert(fake.save_stop);
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--socket", sock, "/snap3", NULL), 0);
	ck_assert_str_eq(fake.path, "/snap3");
	ck_assert_int_eq(get(&fake.save), 3);

	/* The VM fails: 1. */
	fake.ret = -ENOSPC;
	capture_begin();
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--socket", sock, "x", NULL), EXIT_VM_ERROR);
	ck_assert_str_eq(capture_end(), "minivmm: save failed: ENOSPC: No space left on device\n");
	ck_assert_int_eq(get(&fake.save), 4);
	fake.ret = 0;

	/* Bad usage: 2, nothing sent. */
	ck_assert_int_eq(run_cmd(cmd_save, "save", "x", NULL), EXIT_USAGE);
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--socket", sock, NULL), EXIT_USAGE);
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--socket", sock, "a", "b", NULL), EXIT_USAGE);
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--socket", sock, "nodir/x", NULL), EXIT_USAGE);
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--socket", sock, "sub dir/", NULL), EXIT_USAGE);
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--bogus", "--socket", sock, "x", NULL),
			 EXIT_USAGE);
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--timeout", "0", "--socket", sock, "x", NULL),
			 EXIT_USAGE);
	ck_assert_int_eq(get(&fake.save), 4);
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--help", NULL), 0);

	/* No VM: 1. */
	capture_begin();
	ck_assert_int_eq(run_cmd(cmd_save, "save", "--socket", "nothere.sock", "x", NULL),
			 EXIT_VM_ERROR);
	ck_assert_str_eq(capture_end(), "minivmm: save: cannot connect to nothere.sock: No such "
					"file or directory\n");
	ck_assert_int_eq(chdir("/"), 0);
}
END_TEST

START_TEST(test_cmd_ctl)
{
	start(API_CLIENT_TIMEOUT_MS);
	ck_assert_int_eq(run_cmd(cmd_ctl, "ctl", "--socket", sock, "pause", NULL), 0);
	ck_assert_int_eq(get(&fake.pause), 1);
	ck_assert_int_eq(run_cmd(cmd_ctl, "ctl", "resume", "--socket", sock, NULL), 0);
	ck_assert_int_eq(run_cmd(cmd_ctl, "ctl", "--socket", sock, "status", NULL), 0);
	ck_assert_int_eq(run_cmd(cmd_ctl, "ctl", "--socket", sock, "stop", "--timeout", "1", NULL),
			 0);
	ck_assert_int_eq(get(&fake.resume) + get(&fake.status) + get(&fake.stop), 3);
	ck_assert_int_eq(run_cmd(cmd_ctl, "ctl", "--socket", sock, "save", NULL), EXIT_USAGE);
	ck_assert_int_eq(run_cmd(cmd_ctl, "ctl", "--socket", sock, "--stop", "pause", NULL),
			 EXIT_USAGE);
	ck_assert_int_eq(run_cmd(cmd_ctl, "ctl", "pause", NULL), EXIT_USAGE);
	ck_assert_int_eq(get(&fake.pause), 1);
	fake.ret = -EBUSY;
	ck_assert_int_eq(run_cmd(cmd_ctl, "ctl", "--socket", sock, "pause", NULL), EXIT_VM_ERROR);
	ck_assert_int_eq(get(&fake.pause), 2);
}
END_TEST

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("api");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_socket_owner_only);
	tcase_add_test(tc, test_commands);
	tcase_add_test(tc, test_op_errors);
	tcase_add_test(tc, test_missing_op);
	tcase_add_test(tc, test_bad_requests);
	tcase_add_test(tc, test_nul_and_pipelined);
	tcase_add_test(tc, test_line_limit);
	tcase_add_test(tc, test_idle_client);
	tcase_add_test(tc, test_partial_then_close);
	tcase_add_test(tc, test_client_gone_before_reply);
	tcase_add_test(tc, test_stale_socket_replaced);
	tcase_add_test(tc, test_live_socket_refused);
	tcase_add_test(tc, test_file_refused);
	tcase_add_test(tc, test_bad_paths);
	tcase_add_test(tc, test_stop_prompt_and_removes);
	tcase_add_test(tc, test_stop_during_request);
	tcase_add_test(tc, test_stop_leaves_a_replaced_socket);
	tcase_add_test(tc, test_many_clients);
	tcase_add_test(tc, test_client_errors);
	tcase_add_test(tc, test_json_requests);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_reply_parse);
	tcase_add_test(tc, test_vsock_fd);
	tcase_add_test(tc, test_events);
	tcase_add_test(tc, test_json_string);
	tcase_add_test(tc, test_cmd_save);
	tcase_add_test(tc, test_cmd_ctl);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(api_suite());
}
