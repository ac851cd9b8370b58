/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Running one VM to its end, for `run` and `restore`: the console, signals,
 * the timeout, reboots, and the API socket (pause, resume, save, status, stop).
 */
#ifndef MINIVMM_SESSION_H
#define MINIVMM_SESSION_H

#include <stdbool.h>

#include "snapshot/snapshot.h"

struct vm_config;
struct kvm_probe_job;
struct snapshot;

struct session_opts {
	int timeout_ms;		/* <= 0: none */
	const char *api_socket; /* NULL: [api] socket of the config, if any */
	struct snapshot *snap;	/* restore: the first boot comes from it */
	struct kvm_probe_job *probe; /* /dev/kvm opened and probed meanwhile (taken over) */
	enum snapshot_mem mem;	/* how a restore brings memory in */
	bool compress;		/* snapshots taken through the API: LZO (default) */
};

/* Returns the exit status `minivmm run` documents. */
int session_run(const struct vm_config *cfg, const struct session_opts *o);

#endif
