// SPDX-License-Identifier: GPL-2.0-or-later
/* VM assembly: [disk.N] -> a block backend, a virtio-blk device, a PCI function. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "block/backend.h"
#include "log.h"
#include "virtio/blk.h"
#include "virtio/virtio_pci.h"
#include "util.h"
#include "vm.h"

/* From an I/O thread: a request the backend failed (EIO, ENOSPC...), as an event. */
static void disk_error(void *opaque, int err, uint64_t offset)
{
	struct vm_disk_errors *de = opaque;
	uint64_t now = now_ns(), last = atomic_load(&de->last_ns), n;
	char data[160], name[16];

	n = atomic_fetch_add(&de->count, 1) + 1;
	/* At most one a second: a guest can make a failing disk fail at its own pace. */
	if ((last && now - last < 1000000000ULL) ||
	    !atomic_compare_exchange_strong(&de->last_ns, &last, now))
		return;
	snprintf(data, sizeof(data),
		 "{\"disk\":%u,\"errno\":\"%s\",\"offset\":%llu,\"errors\":%llu}", de->idx,
		 api_errno_name(-err, name), (unsigned long long)offset, (unsigned long long)n);
	vm_event(de->vm, "disk-error", data);
}

static int add_disk(struct vm *vm, unsigned int idx, const struct disk_config *dc, char letter)
{
	struct blk_open_opts o = {
		.format = dc->format == DISK_QCOW2 ? BLK_FMT_QCOW2 : BLK_FMT_RAW,
		.readonly = dc->readonly,
		.cache = dc->cache == DISK_CACHE_NONE ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK,
		.allow_backing = dc->backing,
		.backing_dir = dc->backing_dir,
		.trusted_backing = (const char *const *)dc->backing_trusted,
	};
	struct virtio_blk_opts bo = { .serial = dc->serial, .poll_us = dc->poll_us, .rl = &dc->rl };
	int cpus[CONFIG_MAX_QUEUES];
	struct blk_backend *be;
	struct virtio_blk *b;
	char err[256] = "", name[8], limits[128];
	unsigned int i;
	int ret;

	snprintf(name, sizeof(name), "vd%c", letter);
	bo.name = name;
	bo.queues = dc->queues ? dc->queues : vm->nr_vcpus;
	if (bo.queues > CONFIG_MAX_QUEUES)
		bo.queues = CONFIG_MAX_QUEUES;
	bo.threads = dc->iothreads ? dc->iothreads : bo.queues;
	if (bo.threads > bo.queues) {
		pr_warn("[disk.%u] iothreads = %u, but only %u queues: using %u threads", idx,
			bo.threads, bo.queues, bo.queues);
		bo.threads = bo.queues;
	}
	/* [vm] pin: I/O thread i next to vCPU i. */
	for (i = 0; i < bo.threads; i++)
		cpus[i] = vm_host_cpu(vm, i);
	bo.thread_cpu = cpus;
	vm->disk_errors[idx].vm = vm;
	vm->disk_errors[idx].idx = idx;
	bo.on_error = disk_error;
	bo.opaque = &vm->disk_errors[idx];
	ret = blk_open(&be, dc->path, &o, err, sizeof(err));
	if (ret) {
		pr_err("[disk.%u] %s: %s", idx, dc->path, err[0] ? err : strerror(-ret));
		return ret;
	}
	ret = virtio_blk_create(&b, be, &vm->mem, &bo);
	if (ret) {
		blk_close(be);
		pr_err("[disk.%u]: cannot create the device: %s", idx, strerror(-ret));
		return ret;
	}
	vm->disks[idx] = b;
	ret = virtio_pci_add(vm, virtio_blk_virtio(b));
	if (ret) {
		pr_err("[disk.%u]: cannot put it on the PCI bus: %s", idx, strerror(-ret));
		return ret;
	}
	rl_config_describe(&dc->rl, limits, sizeof(limits));
	pr_info("disk.%u: %s, %s%s, %llu MiB, %u queue%s, %u I/O thread%s%s%s", idx, dc->path,
		be->ops->name, dc->readonly ? " read-only" : "",
		(unsigned long long)(be->size >> 20), bo.queues, bo.queues > 1 ? "s" : "",
		bo.threads, bo.threads > 1 ? "s" : "", vm->cfg->pin ? ", pinned" : "", limits);
	return 0;
}

int vm_add_disks(struct vm *vm)
{
	unsigned int i;
	char letter = 'a';
	int ret;

	for (i = 0; i < CONFIG_MAX_DISKS; i++) {
		if (!vm->cfg->disks[i].path)
			continue;
		ret = add_disk(vm, i, &vm->cfg->disks[i], letter++);
		if (ret)
			return ret;
	}
	return 0;
}

/* After the PCI bus is gone (it stopped the devices). */
void vm_remove_disks(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < CONFIG_MAX_DISKS; i++) {
		struct virtio_blk_stats st;

		if (!vm->disks[i])
			continue;
		virtio_blk_get_stats(vm->disks[i], &st);
		pr_info("disk.%u: %llu requests, %llu failed, %llu malformed, %llu flushes; "
			"%llu kicks, %llu found by polling, %llu interrupts; "
			"polling window %llu us",
			i, (unsigned long long)st.requests, (unsigned long long)st.errors,
			(unsigned long long)st.bad_chains, (unsigned long long)st.flushes,
			(unsigned long long)st.kicks, (unsigned long long)st.polled,
			(unsigned long long)st.irqs, (unsigned long long)(st.poll_ns / 1000));
		virtio_blk_destroy(vm->disks[i]);
		vm->disks[i] = NULL;
	}
}
