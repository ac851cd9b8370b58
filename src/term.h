/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The controlling terminal: raw mode while a guest owns the console. */
#ifndef MINIVMM_TERM_H
#define MINIVMM_TERM_H

#include <stdbool.h>

/* Put @fd (a tty) in raw mode; the old mode comes back at exit or term_restore(). */
int term_raw_enter(int fd);
void term_restore(void);
bool term_is_raw(void);

#endif
