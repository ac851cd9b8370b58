// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "console.h"
#include "devices/serial.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "term.h"
#include "vm.h"

#define CTRL_A 0x01

struct console {
	struct vm *vm;
	pthread_t thread;
	int stop_efd;
	bool escape; /* the previous byte was Ctrl-A */
};

/* Feed bytes to the UART, waiting while its FIFO is full: input is never dropped. */
static void feed(struct console *con, const uint8_t *buf, size_t len)
{
	while (len && !vm_stopping(con->vm)) {
		size_t n = serial_input(con->vm->serial, buf, len);

		buf += n;
		len -= n;
		if (len)
			nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
	}
}

static void handle_input(struct console *con, const uint8_t *buf, size_t len)
{
	size_t i, start = 0;

	if (!term_is_raw()) {
		feed(con, buf, len);
		return;
	}
	for (i = 0; i < len; i++) {
		if (con->escape) {
			con->escape = false;
			if (buf[i] == 'x') {
				vm_request_stop(con->vm, VM_STOP_USER, 0);
				return;
			}
			if (buf[i] == CTRL_A)
				feed(con, &buf[i], 1);
			start = i + 1;
		} else if (buf[i] == CTRL_A) {
			feed(con, buf + start, i - start);
			con->escape = true;
			start = i + 1;
		}
	}
	feed(con, buf + start, len - start);
}

static void *console_thread(void *arg)
{
	struct console *con = arg;
	uint8_t buf[256];

	pthread_setname_np(pthread_self(), "console");
	sandbox_thread_enter(SANDBOX_CONSOLE);
	for (;;) {
		struct pollfd p[2] = { { con->stop_efd, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 } };
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		if (!p[1].revents)
			continue;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* end of input: the guest keeps running */
		handle_input(con, buf, n);
	}
	return NULL;
}

struct console *console_start(struct vm *vm)
{
	struct console *con = calloc(1, sizeof(*con));

	if (!con)
		return NULL;
	con->vm = vm;
	con->stop_efd = eventfd(0, EFD_CLOEXEC);
	if (con->stop_efd < 0 || pthread_create(&con->thread, NULL, console_thread, con)) {
		pr_warn("console input unavailable");
		if (con->stop_efd >= 0)
			close(con->stop_efd);
		free(con);
		return NULL;
	}
	return con;
}

void console_stop(struct console *con)
{
	uint64_t one = 1;

	if (!con)
		return;
	if (write(con->stop_efd, &one, sizeof(one)) < 0)
		pr_debug("console stop: %s", strerror(errno));
	pthread_join(con->thread, NULL);
	close(con->stop_efd);
	free(con);
}

int console_signals_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2); /* stop, saying where each vCPU was (vm_run()) */
	/* Threads created later inherit the mask: only the signalfd sees these. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int console_read_signal(int fd)
{
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}
