// SPDX-License-Identifier: GPL-2.0-or-later
/* VM assembly: [balloon] -> a virtio-balloon device, a PCI function; its API and events. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "log.h"
#include "sandbox/sandbox.h"
#include "util.h"
#include "virtio/balloon.h"
#include "virtio/virtio_pci.h"
#include "vm.h"

static const char *const stat_names[VIRTIO_BALLOON_S_NR] = VIRTIO_BALLOON_S_NAMES;

/* [balloon] stats_s: a thread that asks for statistics that often. */
struct balloon_timer {
	pthread_t thr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	unsigned int period_s;
	struct virtio_balloon *dev;
};

/*
 * Give guest pages back: private guest RAM (anonymous, or a mapped snapshot's
 * copy-on-write pages) just drops them. Not while a lazy restore fills memory:
 * its fault handler takes a page it already filled as present and would leave
 * the guest faulting on it forever.
 */
static int discard(void *ctx, void *hva, size_t len)
{
	struct vm *vm = ctx;

	if (atomic_load(&vm->mem_filling))
		return -EBUSY;
	return madvise(hva, len, MADV_DONTNEED) ? -errno : 0;
}

/* The driver's balloon reached the host's target: an event (docs/api.md). */
static void actual_changed(void *ctx, uint32_t target, uint32_t actual)
{
	struct vm *vm = ctx;
	char data[96];

	if (actual != target)
		return;
	snprintf(data, sizeof(data), "{\"size\":%llu,\"actual_pages\":%u}",
		 (unsigned long long)(vm->mem.total - (uint64_t)actual * BALLOON_PAGE), actual);
	vm_event(vm, "balloon-target-reached", data);
}

static void *timer_fn(void *arg)
{
	struct balloon_timer *t = arg;
	struct timespec at;

	sandbox_thread_enter(SANDBOX_BALLOON_IO);
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		clock_gettime(CLOCK_MONOTONIC, &at);
		at.tv_sec += t->period_s;
		while (!t->stop && pthread_cond_timedwait(&t->cond, &t->lock, &at) != ETIMEDOUT)
			;
		if (!t->stop)
			virtio_balloon_request_stats(t->dev);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static int timer_start(struct vm *vm, unsigned int period_s)
{
	struct balloon_timer *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;
	int ret;

	if (!t)
		return -ENOMEM;
	t->period_s = period_s;
	t->dev = vm->balloon;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = -pthread_create(&t->thr, NULL, timer_fn, t);
	if (ret) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return ret;
	}
	vm->balloon_timer = t;
	return 0;
}

static void timer_stop(struct vm *vm)
{
	struct balloon_timer *t = vm->balloon_timer;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thr, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
	vm->balloon_timer = NULL;
}

int vm_add_balloon(struct vm *vm)
{
	const struct balloon_config *bc = &vm->cfg->balloon;
	struct virtio_balloon_opts o = {
		.name = "balloon",
		.stats = true,
		.deflate_on_oom = bc->deflate_on_oom,
		.reporting = bc->free_page_reporting,
		.thread_cpu = vm_host_cpu(vm, 0),
		.discard = discard,
		.actual_changed = actual_changed,
		.ctx = vm,
	};
	int ret;

	if (!bc->present)
		return 0;
	ret = virtio_balloon_create(&vm->balloon, &vm->mem, &o);
	if (ret) {
		pr_err("[balloon]: cannot create the device: %s", strerror(-ret));
		return ret;
	}
	ret = virtio_pci_add(vm, virtio_balloon_virtio(vm->balloon));
	if (ret) {
		pr_err("[balloon]: cannot put it on the PCI bus: %s", strerror(-ret));
		return ret;
	}
	if (bc->stats_s) {
		ret = timer_start(vm, bc->stats_s);
		if (ret) {
			pr_err("[balloon]: cannot start the statistics timer: %s", strerror(-ret));
			return ret;
		}
	}
	pr_info("balloon: free page reporting %s, deflate on OOM %s, statistics %s",
		bc->free_page_reporting ? "on" : "off", bc->deflate_on_oom ? "on" : "off",
		bc->stats_s ? "periodic" : "when asked");
	return 0;
}

/* After the PCI bus is gone (it stopped the device). */
void vm_remove_balloon(struct vm *vm)
{
	timer_stop(vm);
	virtio_balloon_destroy(vm->balloon);
	vm->balloon = NULL;
}

/* The API's balloon request: set the target (bytes the guest keeps), report the state. */
int vm_balloon_request(struct vm *vm, bool set, uint64_t size, char *json, size_t len)
{
	struct virtio_balloon_info i;
	uint64_t total = vm->mem.total;
	size_t n;

	if (!vm->balloon) {
		snprintf(json, len, "this VM has no balloon ([balloon])");
		return -ENODEV;
	}
	if (set) {
		if (!size || size > total) {
			snprintf(json, len, "balloon: size %llu: from 1 byte to the guest's %llu",
				 (unsigned long long)size, (unsigned long long)total);
			return -EINVAL;
		}
		virtio_balloon_set_target(vm->balloon, (uint32_t)((total - size) / BALLOON_PAGE));
	}
	virtio_balloon_request_stats(vm->balloon);
	virtio_balloon_info(vm->balloon, &i);
	n = (size_t)snprintf(json, len,
			     "{\"memory\":%llu,\"size\":%llu,\"actual\":%llu,\"target_pages\":%u,"
			     "\"actual_pages\":%u,\"inflated_pages\":%llu,\"deflated_pages\":%llu,"
			     "\"reported_bytes\":%llu,\"discarded_bytes\":%llu,\"bad_pages\":%llu,"
			     "\"bad_chains\":%llu,\"deflate_on_oom\":%s,\"stats_updates\":%llu,"
			     "\"stats\":{",
			     (unsigned long long)total,
			     (unsigned long long)(total - (uint64_t)i.target * BALLOON_PAGE),
			     (unsigned long long)(total - (uint64_t)i.actual * BALLOON_PAGE),
			     i.target, i.actual, (unsigned long long)i.inflated,
			     (unsigned long long)i.deflated, (unsigned long long)i.reported_bytes,
			     (unsigned long long)i.discarded_bytes, (unsigned long long)i.bad_pages,
			     (unsigned long long)i.bad_chains, i.deflate_on_oom ? "true" : "false",
			     (unsigned long long)i.stats_updates);
	for (unsigned int k = 0, first = 1; k < VIRTIO_BALLOON_S_NR && n < len; k++) {
		if (!i.stat_valid[k])
			continue;
		n += (size_t)snprintf(json + n, len - n, "%s\"%s\":%llu", first ? "" : ",",
				      stat_names[k], (unsigned long long)i.stat[k]);
		first = 0;
	}
	if (n < len)
		snprintf(json + n, len - n, "}}");
	return 0;
}
