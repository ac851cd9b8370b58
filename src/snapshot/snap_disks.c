// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Disks in a snapshot. A qcow2 disk is frozen at save: its image is renamed
 * to "IMAGE.snap-ID" (same directory, so the rename is atomic and cheap),
 * made read-only, and a new overlay backed by it takes the old name; the VM,
 * if it goes on, writes to the overlay. The snapshot records the frozen
 * image with its size and a CRC of its first MiB (header, L1, refcounts),
 * and a restore refuses an image that changed. Each restore writes to its
 * own new overlay, so one snapshot can be restored many times at once.
 * Raw disks cannot be frozen: only their size is checked, and their
 * contents are whatever the file holds at restore time (docs/snapshot.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "block/backend.h"
#include "log.h"
#include "qcow2/qcow2.h"
#include "snapshot/snap_int.h"
#include "snapshot/state.h"
#include "util.h"
#include "virtio/blk.h"
#include "vm.h"

#define ID_BYTES (1U << 20)

/* Size and CRC of the first MiB: enough to tell a changed qcow2 image. */
static int image_id(const char *path, uint64_t *size, uint32_t *crc)
{
	uint8_t *buf = malloc(ID_BYTES);
	struct stat sb;
	ssize_t n;
	int fd, ret = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb)) {
		ret = -errno;
		goto out;
	}
	n = pread(fd, buf, ID_BYTES, 0);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	*size = (uint64_t)sb.st_size;
	*crc = (uint32_t)crc32(0, buf, (uInt)n);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

static struct blk_open_opts open_opts(const struct disk_config *dc)
{
	return (struct blk_open_opts){
		.format = BLK_FMT_QCOW2,
		.readonly = false,
		.cache = dc->cache == DISK_CACHE_NONE ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK,
		.allow_backing = true,
	};
}

static int make_overlay(const char *path, const char *base, uint64_t size)
{
	struct qcow2_create_opts co = { .size = size,
					.backing_file = base,
					.backing_fmt = "qcow2" };
	char err[256] = "";
	int ret = qcow2_create(path, &co, err, sizeof(err));

	if (ret)
		pr_err("snapshot: creating overlay %s: %s", path, err[0] ? err : strerror(-ret));
	return ret;
}

/* Device quiesced. On failure the disk stays on its old image, unfrozen. */
static int freeze(struct vm *vm, unsigned int i, char *frozen, size_t flen)
{
	const struct disk_config *dc = &vm->cfg->disks[i];
	struct blk_dev *b = vm->disks[i];
	struct blk_backend *old = blk_dev_backend(b), *be = NULL;
	struct blk_open_opts o = open_opts(dc);
	uint64_t size = old->size, flushes = old->flushes;
	char abs[PATH_MAX], err[256] = "";
	int ret;

	if (!realpath(dc->path, abs))
		return -errno;
	snprintf(frozen, flen, "%s.snap-%llx", abs, (unsigned long long)now_ns());
	/* Closing writes back every cached table: the frozen file is complete. */
	blk_close(old);
	if (rename(abs, frozen)) {
		ret = -errno;
		pr_err("snapshot: disk.%u: renaming %s: %s", i, abs, strerror(errno));
		goto reopen;
	}
	chmod(frozen, 0444);
	ret = make_overlay(abs, frozen, size);
	if (ret) {
		if (rename(frozen, abs))
			pr_err("snapshot: disk.%u: cannot move %s back to %s", i, frozen, abs);
		goto reopen;
	}
	ret = blk_open(&be, abs, &o, err, sizeof(err));
	if (ret) {
		pr_err("snapshot: disk.%u: opening the new overlay %s: %s", i, abs,
		       err[0] ? err : strerror(-ret));
		unlink(abs);
		if (rename(frozen, abs))
			pr_err("snapshot: disk.%u: cannot move %s back to %s", i, frozen, abs);
		goto reopen;
	}
	be->flushes = flushes;
	blk_dev_swap_backend(b, be);
	pr_info("disk.%u: frozen as %s; the VM goes on in a new overlay", i, frozen);
	return 0;
reopen:
	if (blk_open(&be, abs, &o, err, sizeof(err))) {
		/* No image: answer I/O with zeros rather than use a closed backend. */
		struct blk_open_opts no = { .format = BLK_FMT_NULL, .null_size = size };

		pr_err("snapshot: disk.%u: cannot reopen %s (%s): the disk now reads zeros", i, abs,
		       err);
		if (blk_open(&be, "null", &no, err, sizeof(err)))
			abort(); /* a null backend needs nothing that can fail but memory */
	}
	be->flushes = flushes;
	blk_dev_swap_backend(b, be);
	return ret;
}

int snap_disks_save(struct vm *vm, const char *snap, void *fdt, int node)
{
	unsigned int i;
	int ret = 0;

	(void)snap;
	for (i = 0; !ret && i < CONFIG_MAX_DISKS; i++) {
		const struct disk_config *dc = &vm->cfg->disks[i];
		char name[24], frozen[PATH_MAX + 32], abs[PATH_MAX];
		uint64_t isize = 0;
		uint32_t crc = 0;
		int n;

		if (!dc->path || !vm->disks[i])
			continue;
		snprintf(name, sizeof(name), "disk@%u", i);
		n = st_add_node(fdt, node, name);
		if (n < 0)
			return n;
		if (dc->format == DISK_QCOW2 && !dc->readonly) {
			ret = freeze(vm, i, frozen, sizeof(frozen));
			if (ret)
				return ret;
		} else {
			if (!realpath(dc->path, abs))
				return -errno;
			snprintf(frozen, sizeof(frozen), "%s", abs);
			if (dc->format == DISK_RAW && !dc->readonly)
				pr_warn(
				    "disk.%u: %s is raw: its contents are not part of the snapshot",
				    i, abs);
		}
		if (dc->format == DISK_QCOW2) {
			ret = image_id(frozen, &isize, &crc);
			if (ret)
				return ret;
		}
		ret = st_put_u64(fdt, n, "format", dc->format) ?:
		      st_put_u64(fdt, n, "readonly", dc->readonly) ?:
		      st_put_u64(fdt, n, "size", blk_dev_backend(vm->disks[i])->size) ?:
		      st_put_u64(fdt, n, "image-size", isize) ?: st_put_u64(fdt, n, "image-crc", crc);
		if (!ret && fdt_setprop_string(fdt, n, "image", frozen))
			ret = -ENOSPC;
	}
	return ret;
}

static int prepare_one(struct snapshot *s, struct vm_config *cfg, unsigned int i, int n,
		       const char *clone_dir)
{
	struct disk_config *dc = &cfg->disks[i];
	uint64_t fmt, ro, size, isize, icrc, cur_size;
	uint32_t cur_crc;
	const char *image;
	char *overlay = NULL;
	struct stat sb;
	int len, ret;

	image = st_get_raw(s->state, n, "image", &len);
	if (!image || len < 2 || image[len - 1] || st_get_u64(s->state, n, "format", &fmt) ||
	    st_get_u64(s->state, n, "readonly", &ro) || st_get_u64(s->state, n, "size", &size) ||
	    st_get_u64(s->state, n, "image-size", &isize) ||
	    st_get_u64(s->state, n, "image-crc", &icrc)) {
		pr_err("%s: disk.%u: malformed disk record", s->path, i);
		return -EINVAL;
	}
	if (!dc->path || fmt != (uint64_t)dc->format) {
		pr_err("%s: disk.%u: the configuration does not have the snapshot's disk", s->path,
		       i);
		return -ESTALE;
	}
	if (fmt == DISK_RAW) {
		if (clone_dir && !ro) {
			pr_err("%s: disk.%u is a writable raw image: --clone needs qcow2 disks",
			       s->path, i);
			return -EINVAL;
		}
		if (stat(dc->path, &sb) || (uint64_t)sb.st_size != size) {
			pr_err("%s: disk.%u: %s is missing or no longer %llu bytes", s->path, i,
			       dc->path, (unsigned long long)size);
			return -ESTALE;
		}
		return 0;
	}
	ret = image_id(image, &cur_size, &cur_crc);
	if (ret || cur_size != isize || cur_crc != icrc) {
		pr_err("%s: disk.%u: the image %s the snapshot refers to is %s", s->path, i, image,
		       ret ? "missing" : "not the one saved (it changed)");
		return -ESTALE;
	}
	if (ro) {
		/* A read-only disk was never frozen: it is its own base. */
		free(dc->path);
		dc->path = strdup(image);
		return dc->path ? 0 : -ENOMEM;
	}
	if (clone_dir)
		ret = asprintf(&overlay, "%s/disk%u.qcow2", clone_dir, i);
	else
		ret = asprintf(&overlay, "%s.restore-%d-disk%u.qcow2", s->path, (int)getpid(), i);
	if (ret < 0)
		return -ENOMEM;
	if (!access(overlay, F_OK)) {
		pr_err(
		    "%s: disk.%u: %s already exists (each clone needs its own --clone directory)",
		    s->path, i, overlay);
		free(overlay);
		return -EEXIST;
	}
	ret = make_overlay(overlay, image, size);
	if (ret) {
		free(overlay);
		return ret;
	}
	free(dc->path);
	dc->path = overlay;
	dc->backing = 1;
	if (!clone_dir) {
		s->tmp_overlays[i] = strdup(overlay);
		if (!s->tmp_overlays[i])
			return -ENOMEM;
	}
	return 0;
}

int snapshot_prepare_disks(struct snapshot *s, struct vm_config *cfg, const char *clone_dir)
{
	unsigned int i;
	int node = st_node(s->state, 0, "disks"), ret;

	if (node < 0) {
		pr_err("%s: no disk records", s->path);
		return -EINVAL;
	}
	if (clone_dir) {
		struct stat sb;

		if (stat(clone_dir, &sb) || !S_ISDIR(sb.st_mode)) {
			pr_err("--clone %s: not a directory", clone_dir);
			return -ENOTDIR;
		}
	}
	for (i = 0; i < CONFIG_MAX_DISKS; i++) {
		char name[24];
		int n;

		snprintf(name, sizeof(name), "disk@%u", i);
		n = st_node(s->state, node, name);
		if (n < 0) {
			if (cfg->disks[i].path) {
				pr_err("%s: disk.%u is not in the snapshot", s->path, i);
				return -ESTALE;
			}
			continue;
		}
		ret = prepare_one(s, cfg, i, n, clone_dir);
		if (ret)
			return ret;
	}
	return 0;
}

void snap_disks_cleanup(struct snapshot *s)
{
	unsigned int i;

	for (i = 0; i < CONFIG_MAX_DISKS; i++) {
		if (!s->tmp_overlays[i])
			continue;
		unlink(s->tmp_overlays[i]);
		free(s->tmp_overlays[i]);
		s->tmp_overlays[i] = NULL;
	}
}
