// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Memory image: lazy restore with userfaultfd (missing mode). Two threads
 * fill guest memory: the fault thread serves first touches (the chunk of a
 * non-zero page, or just the zero page), the prefetch thread fills the
 * remaining chunks in order. A chunk is claimed by one of them with a CAS;
 * whoever fills it wakes every waiter on its pages through UFFDIO_COPY. Zero
 * pages are filled only when touched: after unregistering they are ordinary
 * untouched anonymous memory. Neither thread ever touches guest memory itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "sandbox/sandbox.h"
#include "snapshot/memimg_int.h"
#include "util.h"

enum { CHUNK_EMPTY, CHUNK_FILLING, CHUNK_DONE };

struct memimg_lazy {
	struct memimg *mi;
	struct mem_region r[GUEST_MEM_MAX_REGIONS];
	uint64_t first_chunk[GUEST_MEM_MAX_REGIONS];
	unsigned int nr;
	unsigned int registered;
	int uffd, evfd;
	pthread_t fault_tid, prefetch_tid;
	bool fault_started, prefetch_started;
	_Atomic uint8_t *state;
	_Atomic uint64_t ndone;
	_Atomic int err;
	_Atomic bool unregistering;
	_Atomic bool cancel; /* memimg_lazy_cancel(): the prefetcher stops, nobody waits */
	/* memimg_lazy_stats(): what the fault thread served, what the prefetcher filled */
	_Atomic uint64_t faults, zero_faults, fault_chunks, fault_ns, fault_read_ns, prefetched;
	bool stopped;
	pthread_mutex_t lock;
	pthread_cond_t all_done;
};

static _Alignas(4096) const uint8_t zero_page[MEMIMG_PAGE];

static void set_err(struct memimg_lazy *l, int err)
{
	int zero = 0;

	atomic_compare_exchange_strong(&l->err, &zero, err);
}

/* UFFDIO_COPY (@src) or UFFDIO_ZEROPAGE (@src NULL) of [@dst, @dst+@len),
 * skipping pages that are already there. */
static int uffd_fill(struct memimg_lazy *l, uint64_t dst, const void *src, uint64_t len)
{
	unsigned int retries = 0;

	while (len) {
		int64_t done;
		int ret;

		if (src) {
			struct uffdio_copy cp = { .dst = dst, .src = (uintptr_t)src, .len = len };

			ret = ioctl(l->uffd, UFFDIO_COPY, &cp);
			done = cp.copy;
		} else {
			struct uffdio_zeropage zp = { .range = { .start = dst, .len = len } };

			ret = ioctl(l->uffd, UFFDIO_ZEROPAGE, &zp);
			done = zp.zeropage;
		}
		if (!ret)
			return 0;
		if (done > 0) {
			/* Partial (EAGAIN): the next call says why it stopped. */
		} else if (errno == EEXIST) {
			done = MEMIMG_PAGE; /* this page is already there */
		} else if (errno == EAGAIN && ++retries < 1000) {
			done = 0; /* the address space changed meanwhile */
		} else {
			return -errno;
		}
		dst += done;
		len -= done;
		if (src)
			src = (const uint8_t *)src + done;
	}
	return 0;
}

static void chunk_done(struct memimg_lazy *l, uint64_t c)
{
	atomic_store(&l->state[c], CHUNK_DONE);
	if (atomic_fetch_add(&l->ndone, 1) + 1 == l->mi->nr_chunks) {
		pthread_mutex_lock(&l->lock);
		pthread_cond_broadcast(&l->all_done);
		pthread_mutex_unlock(&l->lock);
	}
}

/* Fill the non-zero pages of claimed chunk @c; a corrupt chunk reads as zero pages so
 * that no one waits forever. @by_fault: a first touch waits for it (counted). */
static void fill_chunk(struct memimg_lazy *l, uint64_t c, uint8_t *buf, uint8_t *tmp, bool by_fault)
{
	const struct memimg *mi = l->mi;
	const struct memimg_chunk *ch = &mi->c[c];
	const uint64_t *zm = memimg_zmap(mi, c);
	uint64_t base = (uintptr_t)l->r[ch->region].hva + ch->page * MEMIMG_PAGE;
	const uint8_t *src = buf;
	uint64_t t0 = by_fault ? now_ns() : 0; /* only a first touch's wait is counted */
	int ret = 0, bad;

	if (ch->nz)
		ret = buf ? memimg_read_chunk(mi, c, buf, tmp) : -ENOMEM;
	if (by_fault)
		atomic_fetch_add(&l->fault_read_ns, now_ns() - t0);
	bad = ret;
	if (bad)
		set_err(l, bad);
	for (uint32_t i = 0, j; ch->nz && memimg_next_run(ch, zm, &i, &j); i = j) {
		ret = uffd_fill(l, base + i * (uint64_t)MEMIMG_PAGE, bad ? NULL : src,
				(j - i) * (uint64_t)MEMIMG_PAGE);
		if (ret && !atomic_load(&l->unregistering)) {
			pr_err("snapshot: memory chunk %llu: userfaultfd fill: %s",
			       (unsigned long long)c, strerror(-ret));
			set_err(l, ret);
		}
		src += (j - i) * (size_t)MEMIMG_PAGE;
	}
	chunk_done(l, c);
}

static void serve_fault(struct memimg_lazy *l, uint64_t addr, bool write, uint8_t *buf,
			uint8_t *tmp)
{
	const struct memimg *mi = l->mi;
	uint64_t pg, c;
	uint8_t st = CHUNK_EMPTY;
	unsigned int i;
	int ret = 0;

	addr &= ~(uint64_t)(MEMIMG_PAGE - 1);
	for (i = 0; i < l->nr; i++)
		if (addr - (uintptr_t)l->r[i].hva < l->r[i].size)
			break;
	if (i == l->nr)
		return; /* not ours: cannot happen, we registered only guest RAM */
	pg = (addr - (uintptr_t)l->r[i].hva) / MEMIMG_PAGE;
	c = l->first_chunk[i] + pg / mi->chunk_pages;
	atomic_fetch_add(&l->faults, 1);
	if (zmap_test(memimg_zmap(mi, c), pg % mi->chunk_pages)) {
		/* A write would fault again on the shared zero page: give it its own. */
		ret = uffd_fill(l, addr, write ? zero_page : NULL, MEMIMG_PAGE);
		atomic_fetch_add(&l->zero_faults, 1);
	} else if (buf && atomic_compare_exchange_strong(&l->state[c], &st, CHUNK_FILLING)) {
		fill_chunk(l, c, buf, tmp, true);
		atomic_fetch_add(&l->fault_chunks, 1);
	} else if (st == CHUNK_DONE) {
		/* Filled after this fault was queued: make sure it is awake. */
		struct uffdio_range r = { .start = addr, .len = MEMIMG_PAGE };

		ioctl(l->uffd, UFFDIO_WAKE, &r);
	}
	/* CHUNK_FILLING (or no buffers here): the prefetcher's UFFDIO_COPY wakes it. */
	if (ret && !atomic_load(&l->unregistering)) {
		pr_err("snapshot: lazy restore: zero page at %#llx: %s", (unsigned long long)addr,
		       strerror(-ret));
		set_err(l, ret);
	}
}

static void *fault_thread(void *arg)
{
	struct memimg_lazy *l = arg;
	size_t cb = (size_t)l->mi->chunk_pages * MEMIMG_PAGE;
	uint8_t *buf = malloc(cb), *tmp = malloc(cb);
	struct uffd_msg msg[16];

	sandbox_thread_enter(SANDBOX_LAZY);
	if (!buf || !tmp) {
		/* Keep serving zero pages; chunks are left to the prefetcher. */
		free(buf);
		free(tmp);
		buf = tmp = NULL;
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = l->uffd, .events = POLLIN },
				       { .fd = l->evfd, .events = POLLIN } };
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			set_err(l, -errno);
			break;
		}
		if (p[1].revents)
			break;
		n = read(l->uffd, msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			set_err(l, -errno);
			break;
		}
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msg[0]); i++) {
			if (msg[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			uint64_t t0 = now_ns();

			serve_fault(l, msg[i].arg.pagefault.address,
				    msg[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE, buf,
				    tmp);
			atomic_fetch_add(&l->fault_ns, now_ns() - t0);
		}
	}
	free(buf);
	free(tmp);
	return NULL;
}

static void *prefetch_thread(void *arg)
{
	struct memimg_lazy *l = arg;
	size_t cb = (size_t)l->mi->chunk_pages * MEMIMG_PAGE;
	uint8_t *buf = malloc(cb), *tmp = malloc(cb);

	sandbox_thread_enter(SANDBOX_LAZY);
	for (uint64_t c = 0; c < l->mi->nr_chunks && !atomic_load(&l->cancel); c++) {
		uint8_t st = CHUNK_EMPTY;

		if (!atomic_compare_exchange_strong(&l->state[c], &st, CHUNK_FILLING))
			continue;
		if (!l->mi->c[c].nz) {
			chunk_done(l, c);
		} else {
			/* Without buffers the chunk reads as zero pages: never a hang. */
			fill_chunk(l, c, tmp ? buf : NULL, tmp, false);
			atomic_fetch_add(&l->prefetched, 1);
		}
	}
	free(buf);
	free(tmp);
	return NULL;
}

static int uffd_open(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 && errno == EPERM) {
		/* Unprivileged with vm.unprivileged_userfaultfd=0: the device node. */
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			close(dev);
		}
		if (fd < 0)
			errno = EPERM;
	}
	return fd < 0 ? -errno : fd;
}

/* Unregister (which also wakes every fault still waiting in the range) and end the fault thread. */
static void lazy_stop_threads(struct memimg_lazy *l)
{
	for (unsigned int i = 0; i < l->registered; i++) {
		struct uffdio_range r = { .start = (uintptr_t)l->r[i].hva, .len = l->r[i].size };

		ioctl(l->uffd, UFFDIO_UNREGISTER, &r);
	}
	l->registered = 0;
	if (l->fault_started) {
		eventfd_write(l->evfd, 1);
		pthread_join(l->fault_tid, NULL);
		l->fault_started = false;
	}
	if (l->uffd >= 0)
		close(l->uffd);
	if (l->evfd >= 0)
		close(l->evfd);
	l->uffd = l->evfd = -1;
}

static void lazy_free(struct memimg_lazy *l)
{
	lazy_stop_threads(l);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->all_done);
	free((void *)l->state);
	free(l);
}

int memimg_lazy_start(struct memimg *mi, const struct guest_mem *m, struct memimg_lazy **out)
{
	const uint64_t need =
	    1ULL << _UFFDIO_COPY | 1ULL << _UFFDIO_ZEROPAGE | 1ULL << _UFFDIO_WAKE;
	struct uffdio_api api = { .api = UFFD_API };
	struct memimg_lazy *l;
	uint64_t c = 0;
	int ret;

	*out = NULL;
	ret = memimg_check_layout(mi, m);
	ret = ret ?: memimg_lzo_init();
	if (ret)
		return ret;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->mi = mi;
	l->nr = m->nr;
	l->uffd = l->evfd = -1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->all_done, NULL);
	l->state = calloc(mi->nr_chunks, 1);
	if (!l->state) {
		ret = -ENOMEM;
		goto err;
	}
	for (unsigned int i = 0; i < m->nr; i++) {
		l->r[i] = m->r[i];
		l->first_chunk[i] = c;
		c += memimg_region_chunks(m->r[i].size, mi->chunk_pages);
	}
	l->evfd = eventfd(0, EFD_CLOEXEC);
	if (l->evfd < 0) {
		ret = -errno;
		goto err;
	}
	l->uffd = ret = uffd_open();
	if (ret < 0) {
		pr_err("snapshot: lazy restore: userfaultfd: %s", strerror(-ret));
		goto err;
	}
	if (ioctl(l->uffd, UFFDIO_API, &api) < 0) {
		ret = -errno;
		pr_err("snapshot: lazy restore: UFFDIO_API: %s", strerror(-ret));
		goto err;
	}
	for (unsigned int i = 0; i < m->nr; i++) {
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)m->r[i].hva, .len = m->r[i].size },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (ioctl(l->uffd, UFFDIO_REGISTER, &reg) < 0) {
			ret = -errno;
			pr_err("snapshot: lazy restore: registering guest memory: %s",
			       strerror(-ret));
			goto err;
		}
		l->registered++;
		if ((reg.ioctls & need) != need) {
			pr_err("snapshot: lazy restore: userfaultfd lacks COPY/ZEROPAGE");
			ret = -EOPNOTSUPP;
			goto err;
		}
	}
	ret = -pthread_create(&l->fault_tid, NULL, fault_thread, l);
	if (ret)
		goto err;
	l->fault_started = true;
	ret = -pthread_create(&l->prefetch_tid, NULL, prefetch_thread, l);
	if (ret)
		goto err;
	l->prefetch_started = true;
	*out = l;
	return 0;
err:
	atomic_store(&l->unregistering, true);
	lazy_free(l);
	return ret;
}

int memimg_lazy_error(const struct memimg_lazy *l, bool *complete)
{
	if (complete)
		*complete = atomic_load(&l->ndone) == l->mi->nr_chunks;
	return atomic_load(&l->err);
}

void memimg_lazy_stats(const struct memimg_lazy *l, struct memimg_lazy_stats *st)
{
	*st = (struct memimg_lazy_stats){
		.faults = atomic_load(&l->faults),
		.zero_faults = atomic_load(&l->zero_faults),
		.fault_chunks = atomic_load(&l->fault_chunks),
		.fault_ns = atomic_load(&l->fault_ns),
		.fault_read_ns = atomic_load(&l->fault_read_ns),
		.prefetched = atomic_load(&l->prefetched),
		.chunks = l->mi->nr_chunks,
	};
}

void memimg_lazy_cancel(struct memimg_lazy *l)
{
	atomic_store(&l->cancel, true);
	pthread_mutex_lock(&l->lock);
	pthread_cond_broadcast(&l->all_done);
	pthread_mutex_unlock(&l->lock);
}

int memimg_lazy_stop(struct memimg_lazy *l)
{
	if (l->stopped)
		return atomic_load(&l->err);
	pthread_join(l->prefetch_tid, NULL);
	pthread_mutex_lock(&l->lock);
	while (atomic_load(&l->ndone) < l->mi->nr_chunks && !atomic_load(&l->cancel))
		pthread_cond_wait(&l->all_done, &l->lock);
	pthread_mutex_unlock(&l->lock);
	/* Fills that fail from here on fail because of the unregister: not errors. */
	atomic_store(&l->unregistering, true);
	lazy_stop_threads(l);
	l->stopped = true;
	return atomic_load(&l->err);
}

int memimg_lazy_finish(struct memimg_lazy *l)
{
	int ret = memimg_lazy_stop(l);

	lazy_free(l);
	return ret;
}
