// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "term.h"

static struct termios saved;
static int raw_fd = -1;

void term_restore(void)
{
	if (raw_fd < 0)
		return;
	tcsetattr(raw_fd, TCSAFLUSH, &saved);
	raw_fd = -1;
}

bool term_is_raw(void)
{
	return raw_fd >= 0;
}

/* A fatal signal must not leave the user's shell in raw mode. */
static void fatal_signal(int sig)
{
	term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

int term_raw_enter(int fd)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	struct termios t;
	unsigned int i;

	if (tcgetattr(fd, &saved) < 0)
		return -errno;
	t = saved;
	/* Fully raw: the guest's tty driver does echo and "\r\n" itself. */
	cfmakeraw(&t);
	if (tcsetattr(fd, TCSAFLUSH, &t) < 0)
		return -errno;
	raw_fd = fd;
	atexit(term_restore);
	for (i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], fatal_signal);
	return 0;
}
