/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Snapshot files: a checksummed header, the configuration the VM was started
 * with (INI text), every vCPU's and device's state (a libfdt tree) and guest
 * memory (memimg.h). See docs/snapshot.md.
 */
#ifndef MINIVMM_SNAPSHOT_H
#define MINIVMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vm_config;
struct snapshot;

#define SNAPSHOT_VERSION 1

struct snapshot_save_opts {
	bool compress;	      /* LZO1X-1 (default) or raw pages */
	unsigned int threads; /* compression threads, 0: online CPUs */
	bool progress;	      /* a progress bar on stderr when it is a terminal */
	/* Also told of the memory written so far (from the compression threads, serialized,
	 * never going backwards; the last call has done == total). NULL: nobody. */
	void (*progress_fn)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
};

struct snapshot_result {
	uint64_t bytes; /* file size */
	uint64_t mem_bytes, mem_pages, zero_pages;
	uint64_t ns;
};

/*
 * Write the paused (vm_pause) VM to @path: a temporary file next to it,
 * fsynced, renamed. qcow2 disks are frozen first: the image becomes the
 * read-only base the snapshot refers to, and the VM goes on (if it resumes)
 * on a new overlay at the image's old path.
 */
int snapshot_save(struct vm *vm, const char *path, const struct snapshot_save_opts *o,
		  struct snapshot_result *res);

/* The file itself, from parts (snapshot_save's last step; tests and fuzzers). */
struct guest_mem;
int snapshot_write(const char *path, const char *cfg, size_t clen, const void *state, size_t slen,
		   const struct guest_mem *mem, unsigned int vcpus,
		   const struct snapshot_save_opts *o, struct snapshot_result *res);

/* Open and check @path: header, checksums, the state tree (fdt_check_full). */
int snapshot_open(const char *path, struct snapshot **out);
void snapshot_close(struct snapshot *s);
/* The saved configuration (INI text, NUL-terminated). */
const char *snapshot_config(const struct snapshot *s, size_t *len);

/*
 * Check @cfg's disks against the snapshot's (size, and the frozen qcow2 base
 * still being the one saved) and point each qcow2 disk at a new overlay of
 * its frozen base: in @clone_dir (kept) or, without, next to the snapshot
 * (removed by snapshot_close). Call before vm_create_for_restore().
 */
int snapshot_prepare_disks(struct snapshot *s, struct vm_config *cfg, const char *clone_dir);

/* How a restore brings guest memory in. */
enum snapshot_mem {
	SNAPSHOT_MEM_EAGER, /* all of it read before the VM starts */
	SNAPSHOT_MEM_LAZY,  /* on first touch (userfaultfd) while the VM runs */
	SNAPSHOT_MEM_MAP,   /* the file mapped copy-on-write (uncompressed snapshots) */
	SNAPSHOT_MEM_CACHE, /* a decompressed copy in the cache directory mapped so */
};

/*
 * Fill @vm (made by vm_create_for_restore from the saved configuration)
 * with the saved memory and state. SNAPSHOT_MEM_LAZY: call
 * snapshot_lazy_finish() later.
 */
int snapshot_restore(struct snapshot *s, struct vm *vm, enum snapshot_mem mode, bool progress);
/* Just the memory part of snapshot_restore (tests, fuzzers). */
int snapshot_restore_memory(struct snapshot *s, const struct guest_mem *m, enum snapshot_mem mode,
			    bool progress);
/* The device models' part of snapshot_restore: serial, RTC, PCI (tests, fuzzers). */
int snapshot_load_devices(struct snapshot *s, struct vm *vm);
/* Lazy restore: wait until all memory is in (0, or -EBADMSG for a corrupt chunk). */
int snapshot_lazy_finish(struct snapshot *s);
/* From another thread: the VM stops, snapshot_lazy_finish() need not wait for the rest. */
void snapshot_lazy_cancel(struct snapshot *s);
struct memimg_lazy_stats;
/* Lazy restore: where memory came from so far (-ENOENT: not a lazy restore). */
int snapshot_lazy_stats(const struct snapshot *s, struct memimg_lazy_stats *st);

#endif
