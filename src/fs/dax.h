/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The virtio-fs DAX window: one host mapping the guest sees as shared-memory
 * region 0, into which SETUPMAPPING maps ranges of host files (MAP_SHARED, so
 * guest and host share one page cache) and REMOVEMAPPING puts back anonymous
 * zero pages.
 *
 * Past end of file: a page of a MAP_SHARED mapping past EOF cannot be faulted
 * in. For a guest that is KVM_RUN -EFAULT (KVM 6.1 does not say where), or,
 * when the vCPU can take an async page fault, KVM retrying the access forever
 * (the guest hangs). So no such page is ever left in the window: each range
 * is clamped to its file's size (rounded up to a page) when it is set up, the
 * rest backed by anonymous zero pages. The Linux client maps 2 MiB ranges of
 * small files and reads bytes it appended later with WRITE through the same
 * mapping, so a clamped range must grow with its file: an inotify watch on
 * every mapped inode re-clamps its ranges when the file changes size (from
 * the guest or from the host, truncates included), from a watcher thread and,
 * without a race, from dax_window_refresh() that the device calls before each
 * reply. dax_window_repair() re-clamps everything: the vCPUs call it on
 * KVM_RUN -EFAULT, in case a change was not seen yet. The VMM itself never
 * touches window memory (it is not guest RAM, so virtqueue buffers there are
 * rejected), so there is no SIGBUS to catch.
 *
 * Unmapped ranges are readable and writable zero pages, not "no access" as
 * the spec suggests: a no-access page would make KVM_RUN fail with no address
 * to repair, i.e. kill the VM (or hang the vCPU). What a guest writes there costs host memory
 * bounded by the window size.
 */
#ifndef MINIVMM_FS_DAX_H
#define MINIVMM_FS_DAX_H

#include <stdbool.h>
#include <stdint.h>

#include "fs/fuse_server.h"

#define DAX_ALIGN	 (2ULL << 20) /* window size granularity (the client's mapping size) */
#define DAX_MIN_MAX_MAPS 256	      /* the mapping budget of any window, at least */
#define DAX_VMAS_PER_MAP 3	      /* host VMAs one mapping may take (file, zero tail, gap) */

struct dax_window;

/*
 * A window of @size bytes (a non-zero multiple of DAX_ALIGN) keeping at most
 * @max_files host files open (and watched) for its mappings (0: 4096). The
 * guest may have at most max(size / DAX_ALIGN, 256) mappings at once (what a
 * Linux client needs: one per 2 MiB range), and no more files than that.
 */
int dax_window_new(uint64_t size, unsigned int max_files, struct dax_window **out);
/* Lower the mapping (and file) budget, e.g. to fit vm.max_map_count (at least 1). */
void dax_window_limit_maps(struct dax_window *w, unsigned int max_maps);
void dax_window_free(struct dax_window *w);
void *dax_window_hva(const struct dax_window *w);
uint64_t dax_window_size(const struct dax_window *w);

/* fuse_dax_ops with the window as ctx. */
extern const struct fuse_dax_ops dax_window_ops;
/* Map @len bytes of @fd at @foffset at window offset @moffset, replacing (and
 * splitting) what was there. Page-aligned offsets and length; -EINVAL when
 * outside the window, -EMFILE when too many files are mapped, -ENOMEM when the
 * mappings would exceed the budget (nothing changes then). @fd is dup'd. */
int dax_window_map(struct dax_window *w, int fd, uint64_t foffset, uint64_t moffset, uint64_t len,
		   bool writable);
/* Back [moffset, moffset+len) with zero pages again (page-aligned). -ENOMEM when
 * it would split a mapping with the budget used up (nothing changes then). */
int dax_window_unmap(struct dax_window *w, uint64_t moffset, uint64_t len);
/* Device reset: unmap everything. */
void dax_window_clear(struct dax_window *w);

/*
 * Clamp every mapping to its file's current size (rounded up to a page): the
 * part past EOF becomes anonymous zero pages. Any thread (a vCPU after
 * KVM_RUN -EFAULT). Returns how many mappings changed.
 */
int dax_window_repair(struct dax_window *w);
/*
 * Re-clamp the mappings of files that changed size since the last call (one
 * non-blocking read when none did). The device calls it after each request,
 * before the reply, so a size the guest learns is backed by the file in the
 * window. Returns the count changed.
 */
int dax_window_refresh(struct dax_window *w);

struct dax_window_stats {
	unsigned int mappings;		  /* ranges currently mapped */
	unsigned int files;		  /* host files held open for them */
	unsigned int watches;		  /* inotify watches held for them */
	unsigned int clamped;		  /* mappings whose tail is zero pages */
	unsigned int max_maps, max_files; /* the budgets */
	uint64_t maps, unmaps, repairs;
	uint64_t over_budget; /* maps and unmaps the budgets refused */
};
void dax_window_get_stats(struct dax_window *w, struct dax_window_stats *st);

#endif
