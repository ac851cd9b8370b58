/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A fault-injecting, in-memory struct fio for crash-consistency tests and
 * fuzzing. It keeps the durable image (as of the last sync) and every write,
 * punch and truncate since, grouped by barrier epoch. crashsim_crash() builds
 * what a power loss could leave behind: all epochs before a random cut, a
 * random subset of 512-byte sectors of the cut epoch, nothing after. With
 * barriers treated as syncs (stock Linux) every barrier is a durable point.
 */
#ifndef MINIVMM_QCOW2_CRASHSIM_H
#define MINIVMM_QCOW2_CRASHSIM_H

#include <stdbool.h>
#include <stdint.h>

struct fio;

struct fio *crashsim_new(const void *init, uint64_t size, uint64_t max_size);
/* Take ownership of a malloc'd image (as returned by crashsim_crash). */
struct fio *crashsim_adopt(uint8_t *img, uint64_t size, uint64_t max_size);
/* true: barrier orders but does not make durable (BarrierFS model). */
void crashsim_ordering_barrier(struct fio *f, bool on);
/* Fail every write after @n more writes with -EIO (-1: never). */
void crashsim_fail_after(struct fio *f, long n);
/* The image as a power loss at this instant might leave it (malloc'd). */
int crashsim_crash(struct fio *f, uint64_t seed, uint8_t **img, uint64_t *size);
/* The current (all writes applied) contents. */
const uint8_t *crashsim_data(struct fio *f, uint64_t *size);
uint64_t crashsim_pending_ops(struct fio *f);
/* Call @fn just before every sync or barrier takes effect: the moment a crash loses most. */
void crashsim_on_sync(struct fio *f, void (*fn)(void *ctx), void *ctx);

#endif
