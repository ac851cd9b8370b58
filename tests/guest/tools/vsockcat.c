// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vsockcat: the test guest's vsock endpoint (busybox has none).
 *
 *   vsockcat connect CID PORT   stdin to the connection, the connection to stdout
 *   vsockcat listen PORT        accept one connection, echo what it sends until EOF
 *
 * and, on the host (the e2e tests' side of minivmm's Unix socket):
 *
 *   vsockcat uds-connect PATH PORT   "CONNECT PORT" through the VM's socket, expect
 *                                    "OK ...", then as `connect`
 *   vsockcat uds-echo PATH           listen on PATH, echo one connection until EOF
 *
 * Exits 0 when the stream ended cleanly, 1 on an error (printed).
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int fail(const char *what)
{
	fprintf(stderr, "vsockcat: %s: %s\n", what, strerror(errno));
	return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * stdin -> s, s -> stdout, until s ends; stdin's EOF shuts the sending side.
 * Never blocks on one direction while the other has data (an echo peer would
 * deadlock with us): writes to s go out as it takes them.
 */
static int pump(int s)
{
	static char in[65536], out[65536];
	size_t pend = 0, done = 0;
	bool in_eof = false;
	ssize_t n;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = in_eof || pend ? -1 : 0, .events = POLLIN },
			{ .fd = s, .events = POLLIN | (pend ? POLLOUT : 0) },
		};

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail("poll");
		}
		if (p[0].revents) {
			n = read(0, in, sizeof(in));
			if (n <= 0) {
				in_eof = true;
				shutdown(s, SHUT_WR);
			} else {
				pend = (size_t)n;
				done = 0;
			}
		}
		if (pend && (p[1].revents & POLLOUT)) {
			n = send(s, in + done, pend - done, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN)
				return fail("send");
			if (n > 0)
				done += (size_t)n;
			if (done == pend)
				pend = 0;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(s, out, sizeof(out), MSG_DONTWAIT);
			if (n < 0 && errno == EAGAIN)
				continue;
			if (n < 0)
				return fail("recv");
			if (n == 0)
				return 0;
			if (write_all(1, out, (size_t)n))
				return fail("stdout");
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK };
	char buf[65536];
	int s, c;
	ssize_t n;

	if (argc == 4 && !strcmp(argv[1], "connect")) {
		a.svm_cid = (unsigned int)strtoul(argv[2], NULL, 10);
		a.svm_port = (unsigned int)strtoul(argv[3], NULL, 10);
		s = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (s < 0)
			return fail("socket");
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
			return fail("connect");
		return pump(s);
	}
	if (argc == 3 && !strcmp(argv[1], "listen")) {
		a.svm_cid = VMADDR_CID_ANY;
		a.svm_port = (unsigned int)strtoul(argv[2], NULL, 10);
		s = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (s < 0)
			return fail("socket");
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0)
			return fail("bind/listen");
		printf("VSOCK_LISTENING=%s\n", argv[2]);
		fflush(stdout);
		c = accept(s, NULL, NULL);
		if (c < 0)
			return fail("accept");
		while ((n = read(c, buf, sizeof(buf))) > 0)
			if (write_all(c, buf, (size_t)n))
				return fail("echo");
		close(c);
		return n < 0 ? fail("recv") : 0;
	}
	if ((argc == 4 && !strcmp(argv[1], "uds-connect")) ||
	    (argc == 3 && !strcmp(argv[1], "uds-echo"))) {
		struct sockaddr_un u = { .sun_family = AF_UNIX };
		char line[64];
		size_t got = 0;

		snprintf(u.sun_path, sizeof(u.sun_path), "%s", argv[2]);
		s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (s < 0)
			return fail("socket");
		if (argc == 3) {
			if (bind(s, (struct sockaddr *)&u, sizeof(u)) < 0 || listen(s, 1) < 0)
				return fail("bind/listen");
			c = accept(s, NULL, NULL);
			if (c < 0)
				return fail("accept");
			while ((n = read(c, buf, sizeof(buf))) > 0)
				if (write_all(c, buf, (size_t)n))
					return fail("echo");
			return n < 0 ? fail("recv") : 0;
		}
		if (connect(s, (struct sockaddr *)&u, sizeof(u)) < 0)
			return fail("connect");
		n = snprintf(line, sizeof(line), "CONNECT %s\n", argv[3]);
		if (write_all(s, line, (size_t)n))
			return fail("send");
		/* "OK <port>\n", a byte at a time: what follows is the guest's. */
		while (got < sizeof(line) - 1 && read(s, line + got, 1) == 1 && line[got] != '\n')
			got++;
		line[got] = 0;
		if (strncmp(line, "OK ", 3)) {
			fprintf(stderr, "vsockcat: no OK from the VMM: '%s'\n", line);
			return 1;
		}
		return pump(s);
	}
	fprintf(stderr, "usage: vsockcat connect CID PORT | listen PORT | uds-connect PATH PORT | "
			"uds-echo PATH\n");
	return 2;
}
