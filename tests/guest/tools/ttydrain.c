// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ttydrain [TTY]: return once what was written to TTY (default /dev/console) has gone to
 * the UART. The exit port (tests/guest/scenarios/lib.sh) ends the VM at once; without
 * this, lines still queued in the tty layer for the serial port were lost (a slow,
 * nested guest lost its last eight lines once, FS_FAILS among them).
 */
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int fd = open(argc > 1 ? argv[1] : "/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return 1;
	return tcdrain(fd) ? 1 : 0;
}
