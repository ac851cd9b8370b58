// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Disks in a snapshot. A qcow2 disk is frozen at save: its image is renamed
 * to "IMAGE.snap-RANDOM" (same directory, so the rename is atomic and cheap),
 * made read-only, and a new overlay backed by it takes the old name; the VM,
 * if it goes on, writes to the overlay. The snapshot records the frozen
 * image with its size and a CRC of its first MiB (header, L1, refcounts),
 * and a restore refuses an image that changed. Each restore writes to its
 * own new overlay, so one snapshot can be restored many times at once.
 * Raw disks cannot be frozen: only their size is checked, and their
 * contents are whatever the file holds at restore time (docs/snapshot.md).
 *
 * The links minivmm makes (overlay -> frozen image, and a frozen image -> the
 * one frozen before it) are followed by name: each disk carries the list of its
 * frozen images ("trusted" in the record, qcow2_opts.trusted), while the rest of
 * the chain, the user's own backing files, obeys [disk.N] backing/backing_dir.
 * Every file made here is created exclusively (O_EXCL | O_NOFOLLOW, mode 0600)
 * under a name nobody can guess, and removed again when the step fails.
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
#include "block/file_io.h"
#include "excl_file.h"
#include "log.h"
#include "qcow2/qcow2.h"
#include "snapshot/snap_int.h"
#include "snapshot/state.h"
#include "util.h"
#include "virtio/blk.h"
#include "vm.h"

#define ID_BYTES    (1U << 20)
#define MAX_TRUSTED QCOW2_MAX_BACKING_DEPTH

/* --- lists of frozen images (NULL-terminated) ------------------------------------------- */

static void list_free(char **l)
{
	for (char **p = l; p && *p; p++)
		free(*p);
	free(l);
}

static size_t list_len(const char *const *l)
{
	size_t n = 0;

	while (l && l[n])
		n++;
	return n;
}

/* A copy of @l with @add (if any) in front; NULL on ENOMEM. */
static char **list_with(const char *const *l, const char *add)
{
	size_t n = list_len(l), i, k = 0;
	char **c = calloc(n + 2, sizeof(*c));

	if (!c)
		return NULL;
	if (add && !(c[k++] = strdup(add)))
		goto fail;
	for (i = 0; i < n; i++)
		if (!(c[k++] = strdup(l[i])))
			goto fail;
	return c;
fail:
	list_free(c);
	return NULL;
}

/* --- image identity ---------------------------------------------------------------------- */

/*
 * An image a snapshot names: a regular file (never a FIFO that would block, nor a
 * device), not reached through a symlink in its last component.
 */
static int open_image(const char *path)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* Size and CRC of the first MiB: enough to tell a changed qcow2 image. */
static int image_id(const char *path, uint64_t *size, uint32_t *crc)
{
	uint8_t *buf = malloc(ID_BYTES);
	struct stat sb;
	ssize_t n;
	int fd, ret = 0;

	if (!buf)
		return -ENOMEM;
	fd = open_image(path);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	n = pread(fd, buf, ID_BYTES, 0);
	if (n < 0 || fstat(fd, &sb)) {
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

/* --- overlays ---------------------------------------------------------------------------- */

static struct blk_open_opts open_opts(const struct disk_config *dc, const char *const *trusted)
{
	return (struct blk_open_opts){
		.format = BLK_FMT_QCOW2,
		.readonly = false,
		.cache = dc->cache == DISK_CACHE_NONE ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK,
		.allow_backing = dc->backing,
		.backing_dir = dc->backing_dir,
		.trusted_backing = trusted,
	};
}

/* Write a new overlay of @base into @fd, a file we just created (closes @fd). */
static int write_overlay(int fd, const char *path, const char *base, uint64_t size)
{
	struct qcow2_create_opts co = { .size = size,
					.backing_file = base,
					.backing_fmt = "qcow2" };
	char err[256] = "";
	struct fio *f;
	int ret = fio_from_fd(&f, fd, FIO_NO_URING);

	if (ret) {
		close(fd);
	} else {
		ret = qcow2_create_fio(f, &co, err, sizeof(err));
		fio_close(f);
	}
	if (ret)
		pr_err("snapshot: creating overlay %s: %s", path, err[0] ? err : strerror(-ret));
	return ret;
}

/* rename() that never replaces @to; link + unlink where renameat2 is missing. */
static int rename_noreplace(const char *from, const char *to)
{
	if (!renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE))
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (link(from, to))
		return -errno;
	if (unlink(from)) {
		int e = -errno;

		unlink(to);
		return e;
	}
	return 0;
}

/* Make the frozen image read-only, by descriptor: never through a symlink. */
static void make_readonly(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd >= 0) {
		if (fchmod(fd, 0444))
			pr_warn("snapshot: chmod %s: %s", path, strerror(errno));
		close(fd);
	}
}

/*
 * Device quiesced. On success @frozen names the frozen image and the disk runs on a
 * new overlay at its old path; on failure the disk stays on its old image, unfrozen.
 */
static int freeze(struct vm *vm, unsigned int i, char *frozen, size_t flen)
{
	const struct disk_config *dc = &vm->cfg->disks[i];
	struct virtio_blk *b = vm->disks[i];
	struct blk_backend *old = virtio_blk_backend(b), *be = NULL;
	uint64_t size = old->size, flushes = old->flushes;
	char abs[PATH_MAX], err[256] = "", *tmp = NULL, *fz = NULL, *prefix = NULL;
	char **was = NULL, **now = NULL;
	struct blk_open_opts o;
	bool renamed = false;
	int fd, ret;

	if (!realpath(dc->path, abs))
		return -errno;
	was = list_with(blk_trusted_backing(old), NULL);
	if (!was || asprintf(&prefix, "%s.snap-", abs) < 0) {
		prefix = NULL;
		ret = -ENOMEM;
		goto out;
	}
	ret = excl_random_name(prefix, "", &fz);
	if (ret)
		goto out;
	if ((size_t)snprintf(frozen, flen, "%s", fz) >= flen) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	now = list_with((const char *const *)was, fz);
	free(prefix);
	prefix = NULL;
	if (!now || asprintf(&prefix, "%s.new-", abs) < 0) {
		prefix = NULL;
		ret = -ENOMEM;
		goto out;
	}
	/* The new overlay first, under a name of its own: nothing is taken from the image yet. */
	fd = excl_create_random(AT_FDCWD, prefix, "", &tmp);
	if (fd < 0) {
		ret = fd;
		pr_err("snapshot: disk.%u: creating an overlay next to %s: %s", i, abs,
		       strerror(-ret));
		goto out;
	}
	ret = write_overlay(fd, tmp, fz, size);
	if (ret)
		goto out;
	/* Closing writes back every cached table: the frozen file is complete. */
	blk_close(old);
	old = NULL;
	ret = rename_noreplace(abs, fz);
	if (ret) {
		pr_err("snapshot: disk.%u: renaming %s: %s", i, abs, strerror(-ret));
		goto reopen;
	}
	renamed = true;
	make_readonly(fz);
	if (rename(tmp, abs)) {
		ret = -errno;
		pr_err("snapshot: disk.%u: renaming %s: %s", i, tmp, strerror(errno));
		goto reopen;
	}
	free(tmp);
	tmp = NULL;
	o = open_opts(dc, (const char *const *)now);
	ret = blk_open(&be, abs, &o, err, sizeof(err));
	if (ret) {
		pr_err("snapshot: disk.%u: opening the new overlay %s: %s", i, abs,
		       err[0] ? err : strerror(-ret));
		unlink(abs);
		goto reopen;
	}
	be->flushes = flushes;
	virtio_blk_swap_backend(b, be);
	pr_info("disk.%u: frozen as %s; the VM goes on in a new overlay", i, fz);
	goto out;
reopen:
	if (renamed && rename_noreplace(fz, abs))
		pr_err("snapshot: disk.%u: cannot move %s back to %s", i, fz, abs);
	o = open_opts(dc, (const char *const *)was);
	if (blk_open(&be, abs, &o, err, sizeof(err))) {
		/* No image: answer I/O with zeros rather than use a closed backend. */
		struct blk_open_opts no = { .format = BLK_FMT_NULL, .null_size = size };

		pr_err("snapshot: disk.%u: cannot reopen %s (%s): the disk now reads zeros", i, abs,
		       err);
		if (blk_open(&be, "null", &no, err, sizeof(err)))
			abort(); /* a null backend needs nothing that can fail but memory */
	}
	be->flushes = flushes;
	virtio_blk_swap_backend(b, be);
out:
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(fz);
	free(prefix);
	list_free(was);
	list_free(now);
	return ret;
}

/* The frozen images a disk's chain may reach, as an fdt string list. */
static int put_trusted(void *fdt, int node, const char *const *l)
{
	size_t n = 0, i;
	char *buf, *p;
	int ret;

	for (i = 0; l && l[i]; i++)
		n += strlen(l[i]) + 1;
	if (!n)
		return 0;
	buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	for (i = 0, p = buf; l[i]; i++)
		p = stpcpy(p, l[i]) + 1;
	ret = st_put_blob(fdt, node, "trusted", buf, n);
	free(buf);
	return ret;
}

int snap_disks_freeze(struct vm *vm, struct snap_disk *disks)
{
	unsigned int i;
	int ret;

	for (i = 0; i < CONFIG_MAX_DISKS; i++) {
		const struct disk_config *dc = &vm->cfg->disks[i];
		struct snap_disk *sd = &disks[i];

		sd->used = dc->path && vm->disks[i];
		if (!sd->used)
			continue;
		if (dc->format == DISK_QCOW2 && !dc->readonly) {
			ret = freeze(vm, i, sd->image, sizeof(sd->image));
			if (ret)
				return ret;
		} else {
			char abs[PATH_MAX];

			if (!realpath(dc->path, abs))
				return -errno;
			snprintf(sd->image, sizeof(sd->image), "%s", abs);
			if (dc->format == DISK_RAW && !dc->readonly)
				pr_warn(
				    "disk.%u: %s is raw: its contents are not part of the snapshot",
				    i, abs);
		}
		if (dc->format == DISK_QCOW2) {
			ret = image_id(sd->image, &sd->isize, &sd->crc);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int snap_disks_save(struct vm *vm, const struct snap_disk *disks, void *fdt, int node)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; !ret && i < CONFIG_MAX_DISKS; i++) {
		const struct disk_config *dc = &vm->cfg->disks[i];
		const struct snap_disk *sd = &disks[i];
		char name[24];
		int n;

		if (!sd->used)
			continue;
		snprintf(name, sizeof(name), "disk@%u", i);
		n = st_add_node(fdt, node, name);
		if (n < 0)
			return n;
		ret = st_put_u64(fdt, n, "format", dc->format) ?:
		      st_put_u64(fdt, n, "readonly", dc->readonly) ?:
		      st_put_u64(fdt, n, "size", virtio_blk_backend(vm->disks[i])->size) ?:
		      st_put_u64(fdt, n, "image-size", sd->isize) ?:
		      st_put_u64(fdt, n, "image-crc", sd->crc) ?:
		      put_trusted(fdt, n, blk_trusted_backing(virtio_blk_backend(vm->disks[i]))) ?:
		      st_put_blob(fdt, n, "image", sd->image, strlen(sd->image) + 1);
	}
	return ret;
}

/* --- restore ----------------------------------------------------------------------------- */

/* One absolute path: what a snapshot may name as an image. */
static bool abs_path(const char *p, int len)
{
	return len >= 2 && p[0] == '/' && !p[len - 1] && strlen(p) == (size_t)len - 1 &&
	       len <= PATH_MAX;
}

/* The record's frozen images, each an absolute path; NULL list when there are none. */
static int get_trusted(struct snapshot *s, int n, unsigned int i, char ***out)
{
	const char *p, *end;
	int len = 0;
	size_t k = 0;
	char **l;

	*out = NULL;
	p = st_get_raw(s->state, n, "trusted", &len);
	if (!p)
		return 0;
	if (len < 2 || p[len - 1])
		goto bad;
	l = calloc(MAX_TRUSTED + 1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	for (end = p + len; p < end; p += strlen(p) + 1) {
		if (k == MAX_TRUSTED || !abs_path(p, (int)strlen(p) + 1)) {
			list_free(l);
			goto bad;
		}
		l[k] = strdup(p);
		if (!l[k++]) {
			list_free(l);
			return -ENOMEM;
		}
	}
	*out = l;
	return 0;
bad:
	pr_err("%s: disk.%u: malformed list of frozen images", s->path, i);
	return -EINVAL;
}

/* Is @image, which a snapshot names, what the configuration says it should be? */
static bool image_matches(const struct disk_config *dc, const char *image, bool ro)
{
	struct stat a, b;
	char real[PATH_MAX];
	size_t l;

	if (ro) /* never frozen: the disk's own image */
		return !stat(dc->path, &a) && !stat(image, &b) && a.st_dev == b.st_dev &&
		       a.st_ino == b.st_ino;
	/* Frozen: "DISK.snap-..." next to the disk as the saved configuration names it. */
	if (!realpath(dc->path, real))
		return false;
	l = strlen(real);
	return !strncmp(image, real, l) && !strncmp(image + l, ".snap-", 6) &&
	       !strchr(image + l, '/');
}

/* A new, exclusively created overlay of @image for disk @i: its path, or NULL. */
static char *new_overlay(struct snapshot *s, unsigned int i, const char *clone_dir,
			 const char *image, uint64_t size)
{
	char *path = NULL, *prefix = NULL, name[32];
	int fd, dfd;

	if (clone_dir) {
		snprintf(name, sizeof(name), "disk%u.qcow2", i);
		if (asprintf(&path, "%s/%s", clone_dir, name) < 0)
			return NULL;
		dfd = open(clone_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		fd = dfd < 0 ? -errno : excl_create(dfd, name);
		if (dfd >= 0)
			close(dfd);
	} else {
		snprintf(name, sizeof(name), "-disk%u.qcow2", i);
		if (asprintf(&prefix, "%s.restore-", s->path) < 0)
			return NULL;
		fd = excl_create_random(AT_FDCWD, prefix, name, &path);
		free(prefix);
	}
	if (fd < 0) {
		if (clone_dir && fd == -EEXIST)
			pr_err("%s: disk.%u: %s already exists (each clone needs its own --clone "
			       "directory)",
			       s->path, i, path);
		else
			pr_err("%s: disk.%u: creating an overlay %s: %s", s->path, i,
			       path ? path : "next to the snapshot", strerror(-fd));
		free(path);
		return NULL;
	}
	if (write_overlay(fd, path, image, size)) {
		unlink(path);
		free(path);
		return NULL;
	}
	return path;
}

static int prepare_one(struct snapshot *s, struct vm_config *cfg, unsigned int i, int n,
		       const char *clone_dir, char **made)
{
	struct disk_config *dc = &cfg->disks[i];
	uint64_t fmt, ro, size, isize, icrc, cur_size;
	char **trusted = NULL, *overlay;
	uint32_t cur_crc;
	const char *image;
	struct stat sb;
	int len = 0, ret;

	image = st_get_raw(s->state, n, "image", &len);
	if (!image || !abs_path(image, len) || st_get_u64(s->state, n, "format", &fmt) ||
	    st_get_u64(s->state, n, "readonly", &ro) || st_get_u64(s->state, n, "size", &size) ||
	    st_get_u64(s->state, n, "image-size", &isize) ||
	    st_get_u64(s->state, n, "image-crc", &icrc) || fmt > DISK_QCOW2 || ro > 1 || !size ||
	    size % 512) {
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
	if (!image_matches(dc, image, ro)) {
		pr_err("%s: disk.%u: the snapshot's image %s is not %s %s", s->path, i, image,
		       ro ? "the configured disk" : "a frozen image of the configured disk",
		       dc->path);
		return -ESTALE;
	}
	ret = image_id(image, &cur_size, &cur_crc);
	if (ret || cur_size != isize || cur_crc != icrc) {
		pr_err("%s: disk.%u: the image %s the snapshot refers to is %s", s->path, i, image,
		       ret == -EINVAL ? "not a regular file"
		       : ret	      ? "missing"
				      : "not the one saved (it changed)");
		return -ESTALE;
	}
	ret = get_trusted(s, n, i, &trusted);
	if (ret)
		return ret;
	if (ro) {
		/* A read-only disk was never frozen: it is its own base. */
		overlay = strdup(image);
		ret = overlay ? 0 : -ENOMEM;
	} else {
		/* Its overlay's one link is to @image: trusted by name like the rest. */
		char **l = list_with((const char *const *)trusted, image), *keep = NULL;

		list_free(trusted);
		trusted = l;
		overlay = trusted ? new_overlay(s, i, clone_dir, image, size) : NULL;
		ret = overlay ? 0 : trusted ? -EIO : -ENOMEM;
		if (overlay && !(keep = strdup(overlay))) {
			unlink(overlay);
			free(overlay);
			overlay = NULL;
			ret = -ENOMEM;
		}
		/* Removed at close (temporary) or when a later disk fails (clone). */
		if (keep && clone_dir)
			*made = keep;
		else if (keep)
			s->tmp_overlays[i] = keep;
	}
	if (ret) {
		list_free(trusted);
		return ret;
	}
	free(dc->path);
	dc->path = overlay;
	list_free(dc->backing_trusted);
	dc->backing_trusted = trusted;
	return 0;
}

int snapshot_prepare_disks(struct snapshot *s, struct vm_config *cfg, const char *clone_dir)
{
	char *made[CONFIG_MAX_DISKS] = { NULL };
	unsigned int i;
	int node = st_node(s->state, 0, "disks"), ret = 0;

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
	for (i = 0; !ret && i < CONFIG_MAX_DISKS; i++) {
		char name[24];
		int n;

		snprintf(name, sizeof(name), "disk@%u", i);
		n = st_node(s->state, node, name);
		if (n < 0) {
			if (cfg->disks[i].path) {
				pr_err("%s: disk.%u is not in the snapshot", s->path, i);
				ret = -ESTALE;
			}
			continue;
		}
		ret = prepare_one(s, cfg, i, n, clone_dir, &made[i]);
	}
	/* A clone that cannot start leaves no overlays behind (temporary ones go at close). */
	for (i = 0; i < CONFIG_MAX_DISKS; i++) {
		if (ret && made[i])
			unlink(made[i]);
		free(made[i]);
	}
	return ret;
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
