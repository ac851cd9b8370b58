// SPDX-License-Identifier: GPL-2.0-or-later
/* minivmm console: attach this terminal to a running VM's serial console (docs/api.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "log.h"
#include "term.h"
#include "util.h"

#define CTRL_RBRACKET 0x1d

static const char usage[] =
    "usage: minivmm console --socket PATH [options]\n"
    "\n"
    "Attach to the serial console of the VM whose control socket is PATH; the VM must\n"
    "have [console] serial = api. The console's last 64 KiB of output come first, then\n"
    "it is live: what you type goes to the guest. Ctrl-] detaches (the VM runs on).\n"
    "One client at a time. With stdin not a terminal, its bytes go to the guest and the\n"
    "end of stdin detaches.\n"
    "\n"
    "options:\n"
    "  --socket PATH       the VM's control socket (required)\n"
    "  -v, --verbose       more messages on stderr\n"
    "  -h, --help          this text\n"
    "\n"
    "exit status: 0 detached or the VM stopped, 1 no console to attach to, 2 bad command line\n";

/* Relay until detach (0) or the console is gone (0: the VM stopped) or an error. */
static int relay(int fd, bool tty)
{
	uint8_t buf[4096];
	bool in_open = true;

	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 },
				       { in_open ? STDIN_FILENO : -1, POLLIN, 0 } };
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[0].revents) {
			n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return 0; /* the VM stopped */
			if (write_all(STDOUT_FILENO, buf, n))
				return -EPIPE;
		}
		if (p[1].revents) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return 0; /* end of input: detach */
			if (tty) {
				uint8_t *esc = memchr(buf, CTRL_RBRACKET, n);

				if (esc) {
					if (esc > buf)
						write_all(fd, buf, esc - buf);
					return 0;
				}
			}
			if (write_all(fd, buf, n))
				return 0; /* the console went away */
		}
	}
}

int cmd_console(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *socket = NULL;
	char err[600];
	bool tty, answered;
	int c, fd, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket = optarg;
			break;
		case 'v':
			log_verbosity++;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs("(minivmm console --help)\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (!socket || optind != argc) {
		pr_err(socket ? "console: too many arguments"
			      : "console: --socket PATH is required");
		fputs("(minivmm console --help)\n", stderr);
		return EXIT_USAGE;
	}
	if (api_request_fd(socket, "console", 10000, &fd, &answered, err, sizeof(err))) {
		pr_err("console: %s", err);
		return EXIT_VM_ERROR;
	}
	signal(SIGPIPE, SIG_IGN);
	fcntl(fd, F_SETFL, 0); /* it comes non-blocking; we poll, then read and write whole */
	tty = isatty(STDIN_FILENO);
	if (tty) {
		fprintf(stderr, "minivmm: attached to %s; Ctrl-] detaches\r\n", socket);
		term_raw_enter(STDIN_FILENO);
	}
	ret = relay(fd, tty);
	if (tty) {
		term_restore();
		fputs("\r\nminivmm: detached\n", stderr);
	}
	close(fd);
	if (ret)
		pr_err("console: %s", strerror(-ret));
	return ret ? EXIT_VM_ERROR : 0;
}
