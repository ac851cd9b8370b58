/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libminivmm's insides (the public interface is include/minivmm.h). */
#ifndef MINIVMM_LIB_H
#define MINIVMM_LIB_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "../../include/minivmm.h"

struct minivmm_vm {
	char *dir; /* private directory of a started VM (NULL: attached) */
	char *api; /* its control socket */
	char *log; /* minivmm's stderr */
	bool own_log;
	pid_t pid;	      /* the minivmm process; 0: attached */
	pthread_mutex_t lock; /* reaping */
	bool reaped;
	int status;
	uint32_t agent_port; /* minivmm_set_agent() */
	int agent_wait_ms;
	pthread_mutex_t ev_lock; /* the event connection */
	int ev_fd;
	size_t ev_len;
	char ev_buf[8192];
};

/* Sets this thread's minivmm_errmsg(); returns @ret. */
int lib_fail(int ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
