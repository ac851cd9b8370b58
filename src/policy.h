/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The overcommit policy of `minivmm balloon-policy` (docs/balloon.md): how much
 * memory each VM of a set may keep so that together they stay within a host
 * budget, from what each guest uses (its balloon statistics) and how pressed
 * the host is. Arithmetic only: no I/O, so the tests can drive every case.
 */
#ifndef MINIVMM_POLICY_H
#define MINIVMM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One VM, in bytes. */
struct policy_vm {
	uint64_t memory; /* its guest RAM */
	uint64_t actual; /* what it keeps now (RAM minus its balloon) */
	bool have_stats; /* @used is known */
	uint64_t used;	 /* the guest's own use: no caches, no balloon */
	/* out */
	uint64_t need;	 /* used + headroom, within [min_size, memory]; actual without stats */
	uint64_t target; /* what it should keep */
};

struct policy {
	uint64_t budget;	  /* what the VMs may keep together */
	uint64_t min_size;	  /* no VM is asked to keep less */
	uint64_t headroom;	  /* kept free above a guest's use: this, or a quarter of it */
	unsigned int squeeze_pct; /* host pressure: the budget is cut by this much */
};

/*
 * A guest's own use from its statistics: total minus available memory, less its
 * balloon when the guest counts balloon pages in its total (deflate_on_oom).
 */
uint64_t policy_guest_used(uint64_t memory, uint64_t actual, uint64_t total, uint64_t avail,
			   bool deflate_on_oom);

/*
 * Set need and target of @n VMs. Everything fits: each keeps all its RAM. The
 * needs fit: each gets its need and the rest of the budget in proportion to
 * the RAM it could still use. They do not: each gets its need scaled down to
 * the budget, never below min_size (or its RAM). Targets are whole MiB.
 * Returns by how much the needs exceed the (squeezed) budget, 0 when they fit.
 */
uint64_t policy_plan(const struct policy *p, struct policy_vm *v, size_t n);

/* The budget after the squeeze. */
uint64_t policy_budget(const struct policy *p);

/*
 * The next squeeze from the last: host pressure @pressure (%) above @limit cuts
 * the budget 10% more (at most 50%); below half the limit it grows back 5%.
 */
unsigned int policy_squeeze(unsigned int squeeze, double pressure, double limit);

/* "some avg10=1.25 ..." (a PSI file, /proc/pressure/memory or a cgroup's
 * memory.pressure) -> *@avg10; -EINVAL when there is no such line. */
int policy_parse_psi(const char *text, double *avg10);

/* /proc/meminfo -> MemTotal and MemAvailable in bytes; -EINVAL without both. */
int policy_parse_meminfo(const char *text, uint64_t *total, uint64_t *avail);

#endif
