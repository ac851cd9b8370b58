/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Subcommands of the minivmm binary. */
#ifndef MINIVMM_CLI_H
#define MINIVMM_CLI_H

#include "version.h"

/* Exit statuses shared by the subcommands (also documented in --help). */
#define EXIT_VM_ERROR 1
#define EXIT_USAGE    2
#define EXIT_PANIC    3
#define EXIT_TIMEOUT  124

/* --timeout of run and restore: at most a year. */
#define CLI_TIMEOUT_MAX_S (86400.0 * 365)

/* "1.5" seconds -> *@ms (rounded up); positive, finite, at most @max_s; else -EINVAL. */
int cli_parse_seconds(const char *s, double max_s, int *ms);

/* The number after "@key": in a JSON reply whose keys are unique, or -1. */
long long cli_json_number(const char *json, const char *key);

int cmd_run(int argc, char **argv);
int cmd_kernel(int argc, char **argv);
int cmd_save(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_check_kvm(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_balloon_policy(int argc, char **argv);

#endif
