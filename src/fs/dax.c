// SPDX-License-Identifier: GPL-2.0-or-later
/* The virtio-fs DAX window: host file ranges mapped into one reserved region. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/dax.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "util.h"

#define PAGE		  4096ULL
#define DEFAULT_MAX_FILES 4096

/* Budgets the guest can run into: each warns once. */
enum { WARN_MAPS = 1, WARN_FILES = 2, WARN_WATCH = 4 };

/* A host file some mappings use: one dup'd descriptor per inode, for fstat and remapping. */
struct dax_file {
	dev_t dev;
	ino_t ino;
	int fd;
	int wd;	       /* inotify watch on the inode, -1: none */
	bool writable; /* fd is open for writing */
	unsigned int refs;
};

/* [moff, moff+len) of the window shows [foff, foff+len) of f; only the first flen bytes
 * are the file, the rest zero pages (clamped at EOF). */
struct dax_map {
	uint64_t moff, len, foff, flen;
	struct dax_file *f;
	bool writable;
};

struct dax_window {
	pthread_mutex_t lock;
	uint8_t *base;
	uint64_t size;
	struct dax_map *maps; /* sorted by moff, not overlapping */
	unsigned int nr, cap, max_maps;
	struct dax_file **files;
	unsigned int nr_files, max_files, nr_watches;
	unsigned int warned;  /* WARN_* */
	uint64_t over_budget; /* maps refused: ENOMEM (mappings) or EMFILE (files) */
	atomic_uint clamped;  /* mappings with flen < len */
	uint64_t nmaps, nunmaps, nrepairs;
	int ifd;      /* inotify: size changes of mapped files */
	int stop_efd; /* ends the watcher thread */
	pthread_t watcher;
	bool watching;
};

/* --- the host mapping ----------------------------------------------------------------- */

static int zero_pages(struct dax_window *w, uint64_t off, uint64_t len)
{
	void *p = mmap(w->base + off, len, PROT_READ | PROT_WRITE,
		       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? -errno : 0;
}

static int file_pages(struct dax_window *w, uint64_t off, uint64_t len, int fd, uint64_t foff,
		      bool writable)
{
	void *p = mmap(w->base + off, len, PROT_READ | (writable ? PROT_WRITE : 0),
		       MAP_FIXED | MAP_SHARED, fd, foff);

	return p == MAP_FAILED ? -errno : 0;
}

/* How much of @m is inside its file now: up to EOF rounded up to a page. */
static uint64_t file_part(const struct dax_map *m)
{
	struct stat st;

	if (fstat(m->f->fd, &st))
		return m->flen;
	if ((uint64_t)st.st_size <= m->foff)
		return 0;
	return MIN(m->len, ALIGN_UP((uint64_t)st.st_size - m->foff, PAGE));
}

/* --- files ----------------------------------------------------------------------------- */

/* Size changes of @fd's inode (writes, truncates, from the guest or the host) wake the
 * watcher. Through /proc/self/fd: inotify wants a path, and we must not build one. */
static int watch(struct dax_window *w, int fd)
{
	char path[40];
	int wd;

	if (w->ifd < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	wd = inotify_add_watch(w->ifd, path, IN_MODIFY | IN_ATTRIB);
	if (wd < 0 && !(w->warned & WARN_WATCH)) {
		w->warned |= WARN_WATCH;
		pr_warn("dax: no inotify watch for a mapped file (%s%s): a host truncate is "
			"noticed on EFAULT only",
			strerror(errno),
			errno == ENOSPC ? ", fs.inotify.max_user_watches reached" : "");
	}
	if (wd >= 0)
		w->nr_watches++;
	return wd;
}

/* Count a map the budget refused; the first of each kind warns. */
static void over_budget(struct dax_window *w, unsigned int kind)
{
	w->over_budget++;
	if (w->warned & kind)
		return;
	w->warned |= kind;
	if (kind == WARN_MAPS)
		pr_warn("dax: the guest has %u mappings in its %llu MiB window (the budget): "
			"SETUPMAPPING gets ENOMEM until it removes some",
			w->max_maps, (unsigned long long)(w->size >> 20));
	else
		pr_warn("dax: the guest has mapped %u files (the budget): SETUPMAPPING of "
			"another gets EMFILE until it removes some",
			w->max_files);
}

static void file_put(struct dax_window *w, struct dax_file *f)
{
	unsigned int i;

	if (--f->refs)
		return;
	for (i = 0; i < w->nr_files; i++)
		if (w->files[i] == f) {
			w->files[i] = w->files[--w->nr_files];
			break;
		}
	if (f->wd >= 0) {
		inotify_rm_watch(w->ifd, f->wd);
		w->nr_watches--;
	}
	close(f->fd);
	free(f);
}

/* The entry for @fd's inode (a new reference), holding a writable descriptor if @writable. */
static int file_get(struct dax_window *w, int fd, bool writable, struct dax_file **out)
{
	struct dax_file *f = NULL;
	struct stat st;
	unsigned int i;
	int acc, nfd;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	acc = fcntl(fd, F_GETFL);
	if (acc < 0)
		return -errno;
	if (writable && (acc & O_ACCMODE) != O_RDWR)
		return -EACCES;
	for (i = 0; i < w->nr_files; i++)
		if (w->files[i]->dev == st.st_dev && w->files[i]->ino == st.st_ino)
			f = w->files[i];
	if (f && (f->writable || !writable)) {
		f->refs++;
		*out = f;
		return 0;
	}
	if (!f && w->nr_files == w->max_files) {
		over_budget(w, WARN_FILES);
		return -EMFILE;
	}
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return -errno;
	if (f) { /* a read-only descriptor so far: keep the writable one */
		close(f->fd);
		f->fd = nfd;
		f->writable = true;
		f->refs++;
		*out = f;
		return 0;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(nfd);
		return -ENOMEM;
	}
	*f = (struct dax_file){ .dev = st.st_dev,
				.ino = st.st_ino,
				.fd = nfd,
				.writable = (acc & O_ACCMODE) == O_RDWR,
				.refs = 1 };
	f->wd = watch(w, nfd);
	w->files[w->nr_files++] = f;
	*out = f;
	return 0;
}

/* --- the interval list ----------------------------------------------------------------- */

static int reserve(struct dax_window *w, unsigned int more)
{
	struct dax_map *n;
	unsigned int cap;

	if (w->nr + more <= w->cap)
		return 0;
	cap = MAX(w->cap * 2, w->nr + more + 16);
	n = realloc(w->maps, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	w->maps = n;
	w->cap = cap;
	return 0;
}

static void recount(struct dax_window *w)
{
	unsigned int i, n = 0;

	for (i = 0; i < w->nr; i++)
		n += w->maps[i].flen < w->maps[i].len;
	atomic_store(&w->clamped, n);
}

/* Drop [off, off+len) from the list (the memory is the caller's): entries inside go,
 * entries across an edge are trimmed, an entry across both is split. Needs room for one
 * more entry (reserve(w, 1)). */
static void cut(struct dax_window *w, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	unsigned int i = 0;

	while (i < w->nr) {
		struct dax_map *m = &w->maps[i];
		uint64_t mend = m->moff + m->len;

		if (mend <= off || m->moff >= end) {
			i++;
			continue;
		}
		if (m->moff < off && mend > end) { /* split: [moff, off) and [end, mend) */
			struct dax_map tail = *m;
			uint64_t d = end - m->moff;

			tail.moff = end;
			tail.len = mend - end;
			tail.foff = m->foff + d;
			tail.flen = m->flen > d ? m->flen - d : 0;
			tail.f->refs++;
			m->len = off - m->moff;
			m->flen = MIN(m->flen, m->len);
			memmove(&w->maps[i + 2], &w->maps[i + 1], (w->nr - i - 1) * sizeof(*m));
			w->maps[i + 1] = tail;
			w->nr++;
			return;
		}
		if (m->moff < off) { /* keep the head */
			m->len = off - m->moff;
			m->flen = MIN(m->flen, m->len);
			i++;
			continue;
		}
		if (mend > end) { /* keep the tail */
			uint64_t d = end - m->moff;

			m->moff = end;
			m->len = mend - end;
			m->foff += d;
			m->flen = m->flen > d ? m->flen - d : 0;
			i++;
			continue;
		}
		file_put(w, m->f);
		memmove(m, m + 1, (w->nr - i - 1) * sizeof(*m));
		w->nr--;
	}
}

/* How cut(w, off, len) would change the number of mappings: -1 per mapping it
 * drops, +1 for one it splits. */
static int cut_delta(const struct dax_window *w, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	int d = 0;

	for (unsigned int i = 0; i < w->nr; i++) {
		const struct dax_map *m = &w->maps[i];
		uint64_t mend = m->moff + m->len;

		if (mend <= off || m->moff >= end)
			continue;
		if (m->moff < off && mend > end)
			d++;
		else if (m->moff >= off && mend <= end)
			d--;
	}
	return d;
}

/*
 * Every mapping is an entry here and up to three host VMAs (file part, zero
 * tail, the gap after it): @more mappings (after a cut of [off, off+len)) must
 * stay within the budget, or the guest could grow the list and use up the
 * VMM's vm.max_map_count one 4 KiB page at a time.
 */
static int within_budget(struct dax_window *w, uint64_t off, uint64_t len, int more)
{
	if ((int64_t)w->nr + cut_delta(w, off, len) + more <= (int64_t)w->max_maps)
		return 0;
	over_budget(w, WARN_MAPS);
	return -ENOMEM;
}

static void insert(struct dax_window *w, const struct dax_map *nm)
{
	unsigned int i = 0;

	while (i < w->nr && w->maps[i].moff < nm->moff)
		i++;
	memmove(&w->maps[i + 1], &w->maps[i], (w->nr - i) * sizeof(*nm));
	w->maps[i] = *nm;
	w->nr++;
}

static bool in_window(const struct dax_window *w, uint64_t off, uint64_t len)
{
	return len && !(off % PAGE) && !(len % PAGE) && off < w->size && len <= w->size - off;
}

/* --- mapping and unmapping ------------------------------------------------------------- */

int dax_window_map(struct dax_window *w, int fd, uint64_t foffset, uint64_t moffset, uint64_t len,
		   bool writable)
{
	struct dax_map nm = { .moff = moffset, .len = len, .foff = foffset, .flen = len };
	int ret;

	if (!in_window(w, moffset, len) || foffset % PAGE || foffset > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	ret = within_budget(w, moffset, len, 1);
	if (!ret)
		ret = reserve(w, 2);
	if (ret)
		goto out;
	ret = file_get(w, fd, writable, &nm.f);
	if (ret)
		goto out;
	nm.writable = writable;
	nm.flen = file_part(&nm);
	/* MAP_FIXED replaces the old range atomically; past EOF: zero pages (dax.h). */
	ret = nm.flen ? file_pages(w, moffset, nm.flen, nm.f->fd, foffset, writable) : 0;
	if (!ret && nm.flen < len)
		ret = zero_pages(w, moffset + nm.flen, len - nm.flen);
	cut(w, moffset, len);
	if (ret) {
		/* Whatever was there is gone or unusable now: zeros keep the slot valid. */
		zero_pages(w, moffset, len);
		file_put(w, nm.f);
	} else {
		insert(w, &nm);
		w->nmaps++;
	}
	recount(w);
out:
	pthread_mutex_unlock(&w->lock);
	return ret;
}

int dax_window_unmap(struct dax_window *w, uint64_t moffset, uint64_t len)
{
	int ret;

	if (!in_window(w, moffset, len))
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	ret = within_budget(w, moffset, len, 0);
	if (!ret)
		ret = reserve(w, 1);
	if (!ret)
		ret = zero_pages(w, moffset, len);
	if (!ret) {
		cut(w, moffset, len);
		w->nunmaps++;
		recount(w);
	}
	pthread_mutex_unlock(&w->lock);
	return ret;
}

void dax_window_clear(struct dax_window *w)
{
	pthread_mutex_lock(&w->lock);
	/* Also drops what the guest wrote into unmapped zero pages. */
	if (!reserve(w, 1) && !zero_pages(w, 0, w->size)) {
		cut(w, 0, w->size);
		recount(w);
	}
	pthread_mutex_unlock(&w->lock);
}

static int ops_map(void *ctx, int fd, uint64_t foffset, uint64_t moffset, uint64_t len,
		   bool writable)
{
	return dax_window_map(ctx, fd, foffset, moffset, len, writable);
}

static int ops_unmap(void *ctx, uint64_t moffset, uint64_t len)
{
	return dax_window_unmap(ctx, moffset, len);
}

const struct fuse_dax_ops dax_window_ops = { .map = ops_map, .unmap = ops_unmap };

/* --- end of file ----------------------------------------------------------------------- */

/* Make @m's file part end at its file's EOF (rounded up to a page). 1: changed. */
static int clamp(struct dax_window *w, struct dax_map *m)
{
	uint64_t want = file_part(m);

	if (want < m->flen) {
		if (zero_pages(w, m->moff + want, m->flen - want))
			return 0;
	} else if (want > m->flen) {
		if (file_pages(w, m->moff + m->flen, want - m->flen, m->f->fd, m->foff + m->flen,
			       m->writable))
			return 0;
	} else {
		return 0;
	}
	pr_debug("dax: window %#llx+%#llx: file part %#llx -> %#llx bytes",
		 (unsigned long long)m->moff, (unsigned long long)m->len,
		 (unsigned long long)m->flen, (unsigned long long)want);
	m->flen = want;
	return 1;
}

int dax_window_repair(struct dax_window *w)
{
	unsigned int i;
	int n = 0;

	pthread_mutex_lock(&w->lock);
	for (i = 0; i < w->nr; i++)
		n += clamp(w, &w->maps[i]);
	w->nrepairs += n;
	recount(w);
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* Re-clamp the mappings of every file inotify reported. */
static int drain_events_locked(struct dax_window *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	unsigned int i, j;
	ssize_t len;
	int n = 0;

	if (w->ifd < 0)
		return 0;
	while ((len = read(w->ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			for (i = 0; i < w->nr_files; i++) {
				struct dax_file *f = w->files[i];

				if (f->wd != ev->wd)
					continue;
				if (ev->mask & IN_IGNORED) { /* the kernel dropped it */
					f->wd = -1;
					w->nr_watches--;
					break;
				}
				for (j = 0; j < w->nr; j++)
					if (w->maps[j].f == f)
						n += clamp(w, &w->maps[j]);
				break;
			}
		}
	}
	w->nrepairs += n;
	if (n)
		recount(w);
	return n;
}

int dax_window_refresh(struct dax_window *w)
{
	int n;

	pthread_mutex_lock(&w->lock);
	n = drain_events_locked(w);
	pthread_mutex_unlock(&w->lock);
	return n;
}

/*
 * Clamps as soon as a mapped file changes size: a guest touching a page the
 * host truncated away does not get KVM_RUN -EFAULT on Linux 6.1 when it can
 * take an (async) page fault; KVM retries the access until the page can be
 * faulted in. This thread makes that happen.
 */
static void *watcher_fn(void *arg)
{
	struct dax_window *w = arg;
	struct pollfd p[2] = { { w->ifd, POLLIN, 0 }, { w->stop_efd, POLLIN, 0 } };

	pthread_setname_np(pthread_self(), "dax-watch");
	sandbox_thread_enter(SANDBOX_DAX_WATCH);
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents)
			dax_window_refresh(w);
	}
	return NULL;
}

/* --- the window ------------------------------------------------------------------------ */

static void start_watcher(struct dax_window *w)
{
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	w->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->ifd < 0 || w->stop_efd < 0 || pthread_create(&w->watcher, NULL, watcher_fn, w)) {
		pr_warn("dax: cannot watch mapped files (%s): a host truncate is noticed on "
			"EFAULT only",
			strerror(errno));
		if (w->ifd >= 0)
			close(w->ifd);
		w->ifd = -1;
		return;
	}
	w->watching = true;
}

int dax_window_new(uint64_t size, unsigned int max_files, struct dax_window **out)
{
	struct dax_window *w;
	uint8_t *raw, *base;
	uint64_t head;

	if (!size || size % DAX_ALIGN || size > (1ULL << 46))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	/* A legitimate client maps 2 MiB ranges: one mapping per range, each of one file. */
	w->max_maps = (unsigned int)MAX(size / DAX_ALIGN, DAX_MIN_MAX_MAPS);
	w->max_files = MIN(max_files ? max_files : DEFAULT_MAX_FILES, w->max_maps);
	w->files = calloc(w->max_files, sizeof(*w->files));
	if (!w->files) {
		free(w);
		return -ENOMEM;
	}
	/* 2 MiB aligned, so the guest's 2 MiB ranges can be huge pages where the host has them. */
	raw = mmap(NULL, size + DAX_ALIGN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED) {
		int ret = -errno;

		free(w->files);
		free(w);
		return ret;
	}
	base = (uint8_t *)ALIGN_UP((uintptr_t)raw, (uintptr_t)DAX_ALIGN);
	head = base - raw;
	if (head)
		munmap(raw, head);
	munmap(base + size, DAX_ALIGN - head);
	w->base = base;
	w->size = size;
	pthread_mutex_init(&w->lock, NULL);
	start_watcher(w);
	*out = w;
	return 0;
}

void dax_window_free(struct dax_window *w)
{
	uint64_t one = 1;
	unsigned int i;

	if (!w)
		return;
	if (w->watching) {
		if (write(w->stop_efd, &one, sizeof(one)) < 0)
			pr_debug("dax: stop eventfd: %s", strerror(errno));
		pthread_join(w->watcher, NULL);
	}
	for (i = 0; i < w->nr; i++)
		file_put(w, w->maps[i].f);
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->stop_efd >= 0)
		close(w->stop_efd);
	free(w->maps);
	free(w->files);
	munmap(w->base, w->size);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void dax_window_limit_maps(struct dax_window *w, unsigned int max_maps)
{
	pthread_mutex_lock(&w->lock);
	w->max_maps = MAX(MIN(w->max_maps, max_maps), 1u);
	w->max_files = MIN(w->max_files, w->max_maps);
	pthread_mutex_unlock(&w->lock);
}

void *dax_window_hva(const struct dax_window *w)
{
	return w->base;
}

uint64_t dax_window_size(const struct dax_window *w)
{
	return w->size;
}

void dax_window_get_stats(struct dax_window *w, struct dax_window_stats *st)
{
	pthread_mutex_lock(&w->lock);
	st->mappings = w->nr;
	st->files = w->nr_files;
	st->watches = w->nr_watches;
	st->max_maps = w->max_maps;
	st->max_files = w->max_files;
	st->over_budget = w->over_budget;
	st->clamped = atomic_load(&w->clamped);
	st->maps = w->nmaps;
	st->unmaps = w->nunmaps;
	st->repairs = w->nrepairs;
	pthread_mutex_unlock(&w->lock);
}
