/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Diagnostics on stderr, prefixed with the program name. */
#ifndef MINIVMM_LOG_H
#define MINIVMM_LOG_H

extern int log_verbosity; /* 0: errors and warnings, 1: info (-v), 2: debug (-vv) */

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_ERR	  -1
#define LOG_WARN  0
#define LOG_INFO  1
#define LOG_DEBUG 2

#define pr_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
