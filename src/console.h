/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Host terminal <-> guest serial console, and the process's stop signals. */
#ifndef MINIVMM_CONSOLE_H
#define MINIVMM_CONSOLE_H

struct vm;
struct console;

/* Forward stdin to the VM's serial port until console_stop(). In raw terminal
 * mode, Ctrl-A x stops the VM and Ctrl-A Ctrl-A sends a Ctrl-A. */
struct console *console_start(struct vm *vm);
void console_stop(struct console *con);

/* Block SIGINT/SIGTERM/SIGHUP in every thread and return a signalfd for them. */
int console_signals_fd(void);
/* Read one signal from @fd: its number, or 0. */
int console_read_signal(int fd);

#endif
