// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * minivmm-agent: the guest agent. Listens on a vsock port (or, for tests, a Unix socket)
 * and forks one process per connection, which serves its requests (conn.c). The main
 * process is a child subreaper: whatever a command leaves behind ends up here and is
 * reaped, so no zombie stays. See docs/agent.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define DEFAULT_MAX_CONNS 64
#define DEFAULT_PATH	  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct opts {
	const char *unix_path; /* NULL: vsock */
	unsigned int port;
	unsigned int max_conns;
	bool verbose;
};

void alog(const char *fmt, ...)
{
	char buf[1200];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "minivmm-agent[%d]: ", getpid());
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(buf);
	buf[n++] = '\n';
	/* One write per line: connection processes log side by side. */
	if (write(STDERR_FILENO, buf, n) < 0)
		return;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: minivmm-agent [--port N | --listen vsock[:N] | --listen unix:PATH]\n"
		"                     [--max-conns N] [-v]\n"
		"Runs commands and reads and writes files for the host (minivmm exec/cp).\n"
		"  --port N          vsock port to listen on (any CID; default %d)\n"
		"  --listen ADDR     vsock[:N], or unix:PATH (a socket of mode 0600, for tests)\n"
		"  --max-conns N     connections served at once (default %d; more wait)\n"
		"  -v, --verbose     log connections and requests to stderr\n"
		"Stops on SIGTERM or SIGINT, ending the commands it runs. See docs/agent.md.\n",
		AGENT_DEFAULT_PORT, DEFAULT_MAX_CONNS);
}

static int parse_uint(const char *s, unsigned int max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "listen", required_argument, NULL, 'l' },
		{ "max-conns", required_argument, NULL, 'm' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*o = (struct opts){ .port = AGENT_DEFAULT_PORT, .max_conns = DEFAULT_MAX_CONNS };
	while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (parse_uint(optarg, 0xfffffffeU, &o->port))
				goto bad;
			o->unix_path = NULL;
			break;
		case 'l':
			if (!strncmp(optarg, "unix:", 5) && optarg[5]) {
				o->unix_path = optarg + 5;
			} else if (!strcmp(optarg, "vsock")) {
				o->unix_path = NULL;
			} else if (!strncmp(optarg, "vsock:", 6) &&
				   !parse_uint(optarg + 6, 0xfffffffeU, &o->port)) {
				o->unix_path = NULL;
			} else {
				goto bad;
			}
			break;
		case 'm':
			if (parse_uint(optarg, 4096, &o->max_conns) || !o->max_conns)
				goto bad;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind == argc)
		return 0;
	fprintf(stderr, "minivmm-agent: unexpected argument '%s'\n", argv[optind]);
	return -EINVAL;
bad:
	fprintf(stderr, "minivmm-agent: bad value for --%s: '%s'\n",
		opt == 'p'   ? "port"
		: opt == 'l' ? "listen"
			     : "max-conns",
		optarg);
	return -EINVAL;
}

static int listen_vsock(unsigned int port)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK,
				    .svm_port = port,
				    .svm_cid = VMADDR_CID_ANY };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		alog("vsock socket: %s (is vmw_vsock_virtio_transport loaded?)", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(fd, 16)) {
		alog("vsock port %u: %s", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Remove a socket at @addr that nobody listens on; leave anything else alone. */
static int clear_stale(const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, ret;

	if (lstat(addr->sun_path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) ? -errno : -EADDRINUSE;
	close(fd);
	if (ret != -ECONNREFUSED)
		return ret;
	return unlink(addr->sun_path) && errno != ENOENT ? -errno : 0;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, ret;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		alog("%s: path too long", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	ret = clear_stale(&addr);
	if (ret) {
		alog("%s: %s", path, strerror(-ret));
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Whoever connects runs commands as the agent: owner-only from the start (the
	 * socket's mode, minus the umask, is what bind gives the file). */
	if (fd < 0 || fchmod(fd, 0600) || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(fd, 16)) {
		alog("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Make sure 0, 1 and 2 are open, so no socket or pipe of ours ever lands there. */
static void fill_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", O_RDWR) < 0)
			exit(1);
	}
}

struct server {
	struct opts o;
	int lfd, sfd;
	pid_t *conns; /* o.max_conns slots, 0: free */
	unsigned int nconns, next_id;
	bool stopping;
};

static void reap_all(struct server *s)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (unsigned int i = 0; i < s->o.max_conns; i++) {
			if (s->conns[i] != pid)
				continue;
			s->conns[i] = 0;
			s->nconns--;
			if (WIFSIGNALED(st))
				alog("connection process %d died by signal %d", pid, WTERMSIG(st));
			break;
		}
	}
}

static void on_signals(struct server *s)
{
	struct signalfd_siginfo si;

	while (read(s->sfd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			s->stopping = true;
	reap_all(s);
}

static void accept_one(struct server *s)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	unsigned int slot = 0;
	pid_t pid;

	if (fd < 0) {
		/* Out of resources: the connection stays queued; retry in a while, not in a
		 * tight loop. Anything else (ECONNABORTED...) concerned that one connection. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			alog("accept: %s", strerror(errno));
			usleep(100000);
		}
		return;
	}
	while (s->conns[slot])
		slot++;
	s->next_id++;
	pid = fork();
	if (!pid) {
		close(s->lfd);
		close(s->sfd);
		exit(conn_serve(fd, s->next_id, s->o.verbose));
	}
	if (pid < 0) {
		alog("fork: %s", strerror(errno));
	} else {
		s->conns[slot] = pid;
		s->nconns++;
	}
	close(fd);
}

/* Stop: no new connections; each connection ends its command; wait for them all. */
static void stop(struct server *s)
{
	close(s->lfd);
	s->lfd = -1;
	if (s->o.unix_path)
		unlink(s->o.unix_path);
	for (unsigned int i = 0; i < s->o.max_conns; i++)
		if (s->conns[i])
			kill(s->conns[i], SIGTERM);
	while (s->nconns) {
		struct pollfd p = { .fd = s->sfd, .events = POLLIN };

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		on_signals(s);
	}
}

static int run(struct server *s)
{
	while (!s->stopping) {
		struct pollfd p[2] = { { .fd = s->sfd, .events = POLLIN },
				       { .fd = s->lfd, .events = POLLIN } };
		/* At the limit, new connections wait in the backlog. */
		int n = s->nconns < s->o.max_conns ? 2 : 1;

		if (poll(p, n, -1) < 0 && errno != EINTR) {
			alog("poll: %s", strerror(errno));
			return 1;
		}
		if (p[0].revents)
			on_signals(s);
		if (n == 2 && p[1].revents && !s->stopping)
			accept_one(s);
	}
	stop(s);
	return 0;
}

int main(int argc, char **argv)
{
	struct server s = { .lfd = -1, .sfd = -1 };
	int ret = 1;
	sigset_t set;

	if (parse_opts(argc, argv, &s.o))
		return 2;
	fill_stdio();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);  /* a console that goes away is no reason to stop */
	signal(SIGXFSZ, SIG_IGN); /* a file past RLIMIT_FSIZE is an EFBIG for the host */
	if (!getenv("PATH"))
		putenv(DEFAULT_PATH);
	if (chdir("/"))
		alog("chdir /: %s", strerror(errno));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		alog("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	s.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	s.conns = calloc(s.o.max_conns, sizeof(*s.conns));
	if (s.sfd < 0 || !s.conns) {
		alog("setup: %s", strerror(errno));
		goto out;
	}
	s.lfd = s.o.unix_path ? listen_unix(s.o.unix_path) : listen_vsock(s.o.port);
	if (s.lfd < 0)
		goto out;
	if (s.o.verbose && s.o.unix_path)
		alog("listening on unix:%s", s.o.unix_path);
	else if (s.o.verbose)
		alog("listening on vsock port %u", s.o.port);
	ret = run(&s);
out:
	if (s.sfd >= 0)
		close(s.sfd);
	free(s.conns);
	return ret;
}
