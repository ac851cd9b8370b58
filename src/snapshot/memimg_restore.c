// SPDX-License-Identifier: GPL-2.0-or-later
/* Memory image: eager restore. Worker threads take chunks in turn and
 * decompress each straight into guest memory when it has no zero page, else
 * into a buffer that is then spread over the chunk's non-zero pages. */
#include <errno.h>
#include <fcntl.h>
#include <lzo/lzo1x.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "log.h"
#include "snapshot/memimg_int.h"
#include "util.h"

struct restore {
	struct memimg *mi;
	const struct guest_mem *m;
	const struct memimg_progress *progress;
	pthread_mutex_t plock;
	uint64_t total;
	_Atomic uint64_t next, done;
	_Atomic int err;
};

static int restore_chunk(struct restore *r, uint64_t c, uint8_t *buf, uint8_t *tmp)
{
	const struct memimg *mi = r->mi;
	const struct memimg_chunk *ch = &mi->c[c];
	const uint64_t *zm = memimg_zmap(mi, c);
	uint8_t *hva = (uint8_t *)r->m->r[ch->region].hva + ch->page * MEMIMG_PAGE;
	const uint8_t *src;
	int ret;

	if (!ch->nz)
		return 0;
	/* A full chunk goes straight into guest memory, no copy. */
	ret = memimg_read_chunk(mi, c, ch->nz == ch->npages ? hva : buf, tmp);
	if (ret || ch->nz == ch->npages)
		return ret;
	src = buf;
	for (uint32_t i = 0; i < ch->npages; i++) {
		if (zmap_test(zm, i))
			continue;
		memcpy(hva + (size_t)i * MEMIMG_PAGE, src, MEMIMG_PAGE);
		src += MEMIMG_PAGE;
	}
	return 0;
}

static void *restore_worker(void *arg)
{
	struct restore *r = arg;
	size_t cb = (size_t)r->mi->chunk_pages * MEMIMG_PAGE;
	uint8_t *buf = malloc(cb), *tmp = malloc(cb);
	uint64_t c;
	int ret = 0;

	if (!buf || !tmp)
		ret = -ENOMEM;
	while (!ret && !atomic_load(&r->err) &&
	       (c = atomic_fetch_add(&r->next, 1)) < r->mi->nr_chunks) {
		uint64_t bytes = r->mi->c[c].npages * (uint64_t)MEMIMG_PAGE;

		ret = restore_chunk(r, c, buf, tmp);
		if (ret)
			break;
		atomic_fetch_add(&r->done, bytes);
		/* Read under the lock: the reports never go backwards. */
		if (r->progress && !pthread_mutex_trylock(&r->plock)) {
			r->progress->fn(r->progress->ctx, atomic_load(&r->done), r->total);
			pthread_mutex_unlock(&r->plock);
		}
	}
	if (ret) {
		int zero = 0;

		atomic_compare_exchange_strong(&r->err, &zero, ret);
	}
	free(buf);
	free(tmp);
	return NULL;
}

int memimg_restore(struct memimg *mi, const struct guest_mem *m, unsigned int threads,
		   const struct memimg_progress *p)
{
	struct restore r = { .mi = mi, .m = m, .total = m->total };
	unsigned int i, nt, started = 0;
	pthread_t *tids;
	int ret;

	ret = memimg_check_layout(mi, m);
	ret = ret ?: memimg_lzo_init();
	if (ret)
		return ret;
	r.progress = p && p->fn ? p : NULL;
	/* Threads reading neighbouring chunks defeat the kernel's readahead. */
	posix_fadvise(mi->fd, (off_t)mi->off, (off_t)mi->len, POSIX_FADV_WILLNEED);
	pthread_mutex_init(&r.plock, NULL);
	nt = memimg_threads(threads, mi->nr_chunks);
	tids = calloc(nt, sizeof(*tids));
	if (!tids) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 1; i < nt; i++)
		if (!pthread_create(&tids[started], NULL, restore_worker, &r))
			started++;
	restore_worker(&r);
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	ret = atomic_load(&r.err);
	if (!ret && r.progress)
		r.progress->fn(r.progress->ctx, r.total, r.total);
out:
	pthread_mutex_destroy(&r.plock);
	return ret;
}
