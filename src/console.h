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

/*
 * [console] serial = api (console_api.c): the UART's output in a 64 KiB scrollback and
 * one client at a time through the control socket's "console" request.
 */
struct console_api;
int console_api_create(struct console_api **out);
/* What the UART writes to (non-blocking: output it cannot take is dropped). */
int console_api_out_fd(const struct console_api *c);
/* A new client: *@fd is its end of a socket pair (the guest's output, then keys to it).
 * -EBUSY while one is attached. From any thread. */
int console_api_attach(struct console_api *c, int *fd);
int console_api_start(struct console_api *c, struct vm *vm);
void console_api_stop(struct console_api *c);
void console_api_destroy(struct console_api *c);

/* Block SIGINT/SIGTERM/SIGHUP in every thread and return a signalfd for them. */
int console_signals_fd(void);
/* Read one signal from @fd: its number, or 0. */
int console_read_signal(int fd);

#endif
