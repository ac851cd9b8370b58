/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared between snapshot.c (the file) and snap_disks.c (frozen images, overlays). */
#ifndef MINIVMM_SNAPSHOT_INT_H
#define MINIVMM_SNAPSHOT_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Fuzzing builds accept bad checksums, so that the fuzzer reaches what they guard. */
#ifdef MINIVMM_FUZZ
#define snap_crc_ok(a, b) ((void)(a), (void)(b), true)
#else
#define snap_crc_ok(a, b) ((a) == (b))
#endif

struct vm;
struct memimg;
struct memimg_lazy;

struct snapshot {
	int fd;
	char *path;
	char *config;
	void *state;
	uint64_t config_len, state_len;
	uint64_t mem_off, mem_len, mem_size;
	unsigned int vcpus;
	struct memimg *mi;
	struct memimg_lazy *lazy;
	char *tmp_overlays[CONFIG_MAX_DISKS]; /* restore without --clone: removed at close */
};

/* One disk as a snapshot records it: the image it names and that image's identity. */
struct snap_disk {
	bool used;
	char image[PATH_MAX + 32]; /* a writable qcow2's frozen image; else the disk's own */
	uint64_t isize;
	uint32_t crc;
};

/*
 * Freeze the writable qcow2 disks (each goes on a new overlay) and note every
 * disk's image, @disks[CONFIG_MAX_DISKS]. Once per save, before the state tree is
 * built: a retry of the tree (it grew) must not freeze a disk again.
 */
int snap_disks_freeze(struct vm *vm, struct snap_disk *disks);
/* Record @disks under @node. */
int snap_disks_save(struct vm *vm, const struct snap_disk *disks, void *fdt, int node);
/* Remove the temporary overlays. */
void snap_disks_cleanup(struct snapshot *s);

#endif
