// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libminivmm (include/minivmm.h): a VM's process, from start to free. Each VM runs as a
 * `minivmm run`/`restore` child with a private directory for its control socket; every
 * other call goes through that socket (ops.c, exec.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "lib/lib.h"
#include "util.h"
#include "version.h"

#ifndef MINIVMM_DEFAULT_BIN
#define MINIVMM_DEFAULT_BIN "minivmm"
#endif
#define START_TIMEOUT_MS 120000
#define MAX_ARGS	 (2 * 256 + 32)

static __thread char errmsg[1024];

extern char **environ;

int lib_fail(int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return ret;
}

const char *minivmm_errmsg(void)
{
	return errmsg;
}

const char *minivmm_version(void)
{
	return MINIVMM_VERSION;
}

int minivmm_abi(void)
{
	return MINIVMM_ABI;
}

const char *minivmm_api_socket(const struct minivmm_vm *vm)
{
	return vm->api;
}

static struct minivmm_vm *vm_new(void)
{
	struct minivmm_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->ev_fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->ev_lock, NULL);
	return vm;
}

int minivmm_attach(const char *api_socket, struct minivmm_vm **out)
{
	struct minivmm_vm *vm;

	*out = NULL;
	if (!api_socket || !*api_socket)
		return lib_fail(-EINVAL, "no control socket");
	vm = vm_new();
	if (!vm || !(vm->api = strdup(api_socket))) {
		free(vm);
		return lib_fail(-ENOMEM, "out of memory");
	}
	*out = vm;
	return 0;
}

/* The last lines of the VM's log, for an error message. */
static void log_tail(const struct minivmm_vm *vm, char *buf, size_t len)
{
	void *data = NULL;
	size_t n = 0, keep = len - 1;
	const char *p;

	buf[0] = '\0';
	if (!vm->log || read_file(vm->log, 1 << 20, &data, &n) || !n) {
		free(data);
		return;
	}
	p = data;
	if (n > keep)
		p += n - keep;
	snprintf(buf, len, "%.*s", (int)(n - (p - (char *)data)), p);
	for (char *c = buf; *c; c++)
		if (*c == '\n')
			*c = ' ';
	free(data);
}

struct argv_buf {
	const char *v[MAX_ARGS];
	unsigned int n;
	char *owned[8]; /* strings made here */
	unsigned int nowned;
};

static int arg(struct argv_buf *a, const char *s)
{
	if (a->n + 1 >= MAX_ARGS)
		return -E2BIG;
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
	return 0;
}

static int argf(struct argv_buf *a, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int ret;

	if (a->nowned == sizeof(a->owned) / sizeof(a->owned[0]))
		return -E2BIG;
	va_start(ap, fmt);
	ret = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return -ENOMEM;
	a->owned[a->nowned++] = s;
	return arg(a, s);
}

static int build_argv(const struct minivmm_opts *o, struct minivmm_vm *vm, const char *bin,
		      const char *cfg, struct argv_buf *a)
{
	int ret = arg(a, bin);

	if (o->snapshot) {
		ret = ret ?: arg(a, "restore");
		ret = ret ?: arg(a, o->snapshot);
		if (o->clone_dir) {
			ret = ret ?: arg(a, "--clone");
			ret = ret ?: arg(a, o->clone_dir);
		}
		if (o->lazy)
			ret = ret ?: arg(a, "--lazy");
		if (o->map)
			ret = ret ?: arg(a, "--map");
		if (o->cache)
			ret = ret ?: arg(a, "--cache");
	} else {
		ret = ret ?: arg(a, "run");
		ret = ret ?: arg(a, cfg);
	}
	ret = ret ?: arg(a, "--api-socket");
	ret = ret ?: arg(a, vm->api);
	ret = ret ?: arg(a, "--set");
	if (o->console_path)
		ret = ret ?: argf(a, "console.serial=file:%s", o->console_path);
	else
		ret = ret ?: arg(a, "console.serial=none");
	for (const char *const *s = o->set; s && *s && !ret; s++) {
		ret = arg(a, "--set");
		ret = ret ?: arg(a, *s);
	}
	if (o->timeout_ms > 0) {
		ret = ret ?: arg(a, "--timeout");
		ret = ret ?: argf(a, "%.3f", o->timeout_ms / 1000.0);
	}
	for (int i = 0; i < o->verbosity && i < 3; i++)
		ret = ret ?: arg(a, "-v");
	return ret;
}

static int write_config(struct minivmm_vm *vm, const char *text, char **path)
{
	int fd, ret = 0;

	if (asprintf(path, "%s/vm.cfg", vm->dir) < 0) {
		*path = NULL;
		return -ENOMEM;
	}
	fd = open(*path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = write_all(fd, text, strlen(text));
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

static int spawn(struct minivmm_vm *vm, const struct argv_buf *a)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	int ret;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, vm->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND,
					 0600);
	/* Whatever the program does with its signals, the VM starts with the defaults. */
	sigemptyset(&none);
	sigfillset(&def);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	/* Its own process group: a ^C meant for the program does not hit the VM. */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					  POSIX_SPAWN_SETPGROUP);
	ret = -posix_spawnp(&vm->pid, a->v[0], &fa, &at, (char *const *)a->v, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (ret)
		vm->pid = 0;
	return ret;
}

static int exited_early(struct minivmm_vm *vm)
{
	char tail[600];
	int status;

	if (minivmm_wait(vm, 0, &status))
		return 0;
	log_tail(vm, tail, sizeof(tail));
	return lib_fail(-EIO, "minivmm exited with status %d before the VM ran: %s", status, tail);
}

/*
 * On @fd, subscribed: 1 once the "started" event came, 0 if not yet, -errno when the
 * connection ended (the VM stopped, or minivmm is going away).
 */
static int started_seen(int fd, char *buf, size_t size, size_t *len)
{
	ssize_t n = recv(fd, buf + *len, size - 1 - *len, MSG_DONTWAIT);
	char *line, *nl;

	if (n == 0)
		return -EPIPE;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	*len += n;
	buf[*len] = '\0';
	for (line = buf; (nl = strchr(line, '\n')); line = nl + 1) {
		const char *body;

		*nl = '\0';
		if (!strncmp(line, "{\"event\":\"started\"", 18))
			return 1;
		/* Not an event, not the greeting: the reply to subscribe. */
		if (line[0] != '{' && api_reply_parse(line, &body))
			return -EPROTO;
	}
	/* Keep the partial line; a line that fills the buffer is not one we wait for. */
	*len = strlen(line);
	memmove(buf, line, *len);
	if (*len == size - 1)
		*len = 0;
	return 0;
}

/*
 * Until the VM is built (its "started" event, or a "status" that answers), or minivmm
 * exits. Subscribed first and then asked once, so that a start in between is not missed;
 * then nothing runs until the event comes (a 5 ms "status" poll kept a booting VM's API
 * thread busy ~120 times a second).
 */
static int wait_ready(struct minivmm_vm *vm)
{
	uint64_t end = now_ns() + START_TIMEOUT_MS * 1000000ULL;
	char reply[512], buf[1024];
	const char *body;
	size_t len = 0;
	int fd = -1, ret;

	for (;;) {
		ret = exited_early(vm);
		if (ret)
			break;
		if (now_ns() >= end) {
			ret = lib_fail(-ETIMEDOUT, "the VM did not start within %d s",
				       START_TIMEOUT_MS / 1000);
			break;
		}
		if (fd < 0) {
			/* Not there yet: a failed connect costs minivmm nothing. */
			fd = unix_connect(vm->api, 0, 5000);
			if (fd < 0 || send(fd, "subscribe\n", 10, MSG_NOSIGNAL) != 10) {
				if (fd >= 0)
					close(fd);
				fd = -1;
				sleep_ms(5);
				continue;
			}
			len = 0;
			ret = api_call(vm->api, "status", reply, sizeof(reply), 5000);
			if (!ret && !api_reply_parse(reply, &body))
				break;
		}
		ret = started_seen(fd, buf, sizeof(buf), &len);
		if (ret > 0) {
			ret = 0;
			break;
		}
		if (ret < 0) {
			/* The VM stopped at once, minivmm is ending, or no events for us
			 * (-EPROTO): look again. */
			close(fd);
			fd = -1;
			sleep_ms(5);
			continue;
		}
		/* A bounded wait: minivmm may also exit without a word. */
		poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 50);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

int minivmm_start(const struct minivmm_opts *o, struct minivmm_vm **out)
{
	const char *tmp = getenv("TMPDIR"), *bin;
	struct argv_buf a = { .n = 0 };
	struct minivmm_vm *vm;
	char *cfg = NULL;
	int ret, status;

	*out = NULL;
	if (!!o->config_path + !!o->config_text + !!o->snapshot != 1)
		return lib_fail(-EINVAL, "give one of config_path, config_text and snapshot");
	if ((o->clone_dir || o->lazy || o->map || o->cache) && !o->snapshot)
		return lib_fail(-EINVAL, "clone_dir, lazy, map and cache are for a snapshot");
	if (o->lazy + o->map + o->cache > 1)
		return lib_fail(-EINVAL, "lazy, map and cache: choose one");
	vm = vm_new();
	if (!vm)
		return lib_fail(-ENOMEM, "out of memory");
	if (asprintf(&vm->dir, "%s/minivmm-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
		vm->dir = NULL;
		ret = lib_fail(-ENOMEM, "out of memory");
		goto fail;
	}
	if (!mkdtemp(vm->dir)) {
		ret = lib_fail(-errno, "%s: %s", vm->dir, strerror(errno));
		free(vm->dir);
		vm->dir = NULL;
		goto fail;
	}
	if (asprintf(&vm->api, "%s/api.sock", vm->dir) < 0 ||
	    (o->log_path ? !(vm->log = strdup(o->log_path))
			 : asprintf(&vm->log, "%s/minivmm.log", vm->dir) < 0)) {
		ret = lib_fail(-ENOMEM, "out of memory");
		goto fail;
	}
	vm->own_log = !o->log_path;
	if (o->config_text) {
		ret = write_config(vm, o->config_text, &cfg);
		if (ret) {
			lib_fail(ret, "writing the configuration: %s", strerror(-ret));
			goto fail;
		}
	}
	bin = o->minivmm ? o->minivmm : getenv("MINIVMM");
	if (!bin || !*bin)
		bin = MINIVMM_DEFAULT_BIN;
	ret = build_argv(o, vm, bin, cfg ? cfg : o->config_path, &a);
	if (ret) {
		lib_fail(ret, "too many settings");
		goto fail;
	}
	ret = spawn(vm, &a);
	if (ret) {
		lib_fail(ret, "%s: %s", bin, strerror(-ret));
		goto fail;
	}
	ret = wait_ready(vm);
	if (ret)
		goto fail;
	for (unsigned int i = 0; i < a.nowned; i++)
		free(a.owned[i]);
	free(cfg);
	*out = vm;
	return 0;
fail:
	if (vm->pid && !vm->reaped) {
		kill(vm->pid, SIGKILL);
		minivmm_wait(vm, -1, &status);
	}
	for (unsigned int i = 0; i < a.nowned; i++)
		free(a.owned[i]);
	if (cfg)
		unlink(cfg);
	free(cfg);
	minivmm_free(vm);
	return ret;
}

int minivmm_wait(struct minivmm_vm *vm, int timeout_ms, int *exit_status)
{
	uint64_t end = timeout_ms > 0 ? now_ns() + timeout_ms * 1000000ULL : 0;
	int ret = 0, st;
	pid_t p;

	if (!vm->pid)
		return lib_fail(-ECHILD, "not a VM this program started");
	pthread_mutex_lock(&vm->lock);
	while (!vm->reaped) {
		p = waitpid(vm->pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0) {
			ret = lib_fail(-errno, "waitpid: %s", strerror(errno));
			break;
		}
		if (p == vm->pid) {
			vm->reaped = true;
			vm->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
		if (timeout_ms == 0 || (timeout_ms > 0 && now_ns() >= end)) {
			ret = lib_fail(-ETIMEDOUT, "the VM is still running");
			break;
		}
		sleep_ms(10);
	}
	if (vm->reaped && exit_status)
		*exit_status = vm->status;
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

int minivmm_kill(struct minivmm_vm *vm)
{
	int ret = 0;

	if (!vm->pid)
		return lib_fail(-ECHILD, "not a VM this program started");
	pthread_mutex_lock(&vm->lock);
	if (!vm->reaped && kill(vm->pid, SIGKILL))
		ret = lib_fail(-errno, "kill: %s", strerror(errno));
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

void minivmm_free(struct minivmm_vm *vm)
{
	char *path;
	int status;

	if (!vm)
		return;
	if (vm->pid && !vm->reaped) {
		minivmm_stop(vm);
		if (minivmm_wait(vm, 5000, &status)) {
			minivmm_kill(vm);
			minivmm_wait(vm, -1, &status);
		}
	}
	if (vm->ev_fd >= 0)
		close(vm->ev_fd);
	if (vm->dir) {
		/* What we put there; minivmm removes its socket itself. */
		if (asprintf(&path, "%s/vm.cfg", vm->dir) >= 0) {
			unlink(path);
			free(path);
		}
		if (vm->own_log)
			unlink(vm->log);
		unlink(vm->api);
		rmdir(vm->dir);
	}
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->ev_lock);
	free(vm->dir);
	free(vm->api);
	free(vm->log);
	free(vm);
}
