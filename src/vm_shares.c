// SPDX-License-Identifier: GPL-2.0-or-later
/* [share.N] -> a FUSE server, a DAX window, a virtio-fs device, a PCI function. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fs/budget.h"
#include "fs/dax.h"
#include "fs/fuse_server.h"
#include "log.h"
#include "util.h"
#include "virtio/fs.h"
#include "virtio/virtio.h"
#include "virtio/virtio_pci.h"
#include "vm.h"

struct vm_share {
	struct fuse_server *srv;
	struct dax_window *win; /* NULL: dax = never or dax_window = 0 */
	struct virtio_fs *dev;
	char name[8];
};

/* The DAX window's fault handler (vm_add_fault_handler). */
static int share_fault_repair(void *opaque)
{
	return dax_window_repair(opaque);
}

static void share_free(struct vm_share *sh)
{
	if (!sh)
		return;
	virtio_fs_destroy(sh->dev);
	fuse_server_free(sh->srv);
	dax_window_free(sh->win);
	free(sh);
}

static const char *const dax_names[] = { "inode", "always", "never" };
static const char *const cache_names[] = { "auto", "always", "none" };

static void server_opts(const struct share_config *sc, struct fs_share_opts *o)
{
	static const enum fs_dax_mode dax[] = {
		[SHARE_DAX_INODE] = FS_DAX_INODE,
		[SHARE_DAX_ALWAYS] = FS_DAX_ALWAYS,
		[SHARE_DAX_NEVER] = FS_DAX_NEVER,
	};
	static const enum fs_cache_mode cache[] = {
		[SHARE_CACHE_AUTO] = FS_CACHE_AUTO,
		[SHARE_CACHE_ALWAYS] = FS_CACHE_ALWAYS,
		[SHARE_CACHE_NONE] = FS_CACHE_NONE,
	};

	*o = (struct fs_share_opts){
		.path = sc->path,
		.readonly = sc->readonly,
		.dax = dax[sc->dax],
		.cache = cache[sc->cache],
		.xattr = sc->xattr,
		.allow_devices = sc->allow_devices,
		.allow_setid = sc->allow_setid,
		.allow_priv_xattr = sc->allow_priv_xattr,
		.max_fds = sc->max_fds,
		.uid_map = { sc->uid_map.guest, sc->uid_map.host, sc->uid_map.count },
		.gid_map = { sc->gid_map.guest, sc->gid_map.host, sc->gid_map.count },
	};
}

static int add_share(struct vm *vm, unsigned int idx, const struct share_config *sc,
		     const struct fs_budget_out *budget)
{
	struct virtio_fs_opts fo = { 0 };
	struct fs_share_opts so;
	int cpus[VIRTIO_MAX_QUEUES];
	struct vm_share *sh;
	char tagbuf[16], wbuf[96], limits[128];
	unsigned int i;
	int ret;

	sh = calloc(1, sizeof(*sh));
	if (!sh)
		return -ENOMEM;
	snprintf(sh->name, sizeof(sh->name), "fs%u", idx);
	server_opts(sc, &so);
	so.max_fds = budget->max_fds;
	if (sc->dax != SHARE_DAX_NEVER && sc->dax_window) {
		/* (0 would mean the window's default: the plan gives a window at least 1) */
		ret = dax_window_new(sc->dax_window, MAX(budget->win_files, 1u), &sh->win);
		if (ret) {
			pr_err("[share.%u]: cannot reserve a %llu MiB DAX window: %s", idx,
			       (unsigned long long)(sc->dax_window >> 20), strerror(-ret));
			goto fail;
		}
		dax_window_limit_maps(sh->win, budget->win_maps);
		so.dax_window = sc->dax_window;
	}
	ret = fuse_server_new(&so, sh->win ? &dax_window_ops : NULL, sh->win, &sh->srv);
	if (ret) {
		pr_err("[share.%u] %s: cannot serve it: %s", idx, sc->path, strerror(-ret));
		goto fail;
	}
	fo.name = sh->name;
	fo.tag = config_share_tag(vm->cfg, idx, tagbuf, sizeof(tagbuf));
	fo.queues = vm->nr_vcpus < VIRTIO_MAX_QUEUES - 1 ? vm->nr_vcpus : VIRTIO_MAX_QUEUES - 1;
	/* [vm] pin: I/O thread i next to vCPU i. */
	for (i = 0; i < fo.queues; i++)
		cpus[i] = vm_host_cpu(vm, i);
	fo.thread_cpu = cpus;
	fo.rl = &sc->rl;
	ret = virtio_fs_create(&sh->dev, sh->srv, sh->win, &vm->mem, &fo);
	if (ret) {
		pr_err("[share.%u]: cannot create the device: %s", idx, strerror(-ret));
		goto fail;
	}
	vm->shares[idx] = sh; /* from here the PCI bus may hold the device */
	if (sh->win) {
		ret = vm_add_fault_handler(vm, share_fault_repair, sh->win);
		if (ret)
			return ret;
	}
	ret = virtio_pci_add(vm, virtio_fs_virtio(sh->dev));
	if (ret) {
		pr_err("[share.%u]: cannot put it on the PCI bus: %s%s", idx, strerror(-ret),
		       ret == -ENOSPC ? " (DAX windows too large together?)" : "");
		return ret;
	}
	if (sh->win) {
		struct dax_window_stats ds;

		dax_window_get_stats(sh->win, &ds);
		snprintf(wbuf, sizeof(wbuf), "%llu MiB DAX window (%u mappings, %u files)",
			 (unsigned long long)(sc->dax_window >> 20), ds.max_maps, ds.max_files);
	}
	rl_config_describe(&sc->rl, limits, sizeof(limits));
	pr_info("share.%u: %s as tag '%s'%s, dax %s, %s, cache %s, xattr %s, %u request queue%s, "
		"up to %u host descriptors; guest may make devices %s, set-id bits %s, "
		"security/trusted xattrs %s%s",
		idx, sc->path, fo.tag, sc->readonly ? " read-only" : "", dax_names[sc->dax],
		sh->win ? wbuf : "no DAX window", cache_names[sc->cache], sc->xattr ? "on" : "off",
		fo.queues, fo.queues > 1 ? "s" : "", so.max_fds, sc->allow_devices ? "on" : "off",
		sc->allow_setid ? "on" : "off", sc->allow_priv_xattr ? "on" : "off", limits);
	return 0;
fail:
	share_free(sh);
	return ret;
}

/* A number from /proc/sys, or @def. */
static uint64_t sysctl_u64(const char *path, uint64_t def)
{
	unsigned long long v;
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return def;
	ok = fscanf(f, "%llu", &v) == 1;
	fclose(f);
	return ok ? v : def;
}

/*
 * Descriptors minivmm needs besides the shares' budgets: its own files, and
 * per vCPU its fd, eventfds, and each device queue's ioeventfd, irqfd and
 * I/O thread ring. An estimate on the generous side.
 */
static uint64_t fd_reserve(const struct vm *vm)
{
	unsigned int i, devs = 0;

	for (i = 0; i < CONFIG_MAX_DISKS; i++)
		devs += vm->cfg->disks[i].path != NULL;
	for (i = 0; i < CONFIG_MAX_SHARES; i++)
		devs += vm->cfg->shares[i].path != NULL;
	return 256 + (uint64_t)vm->nr_vcpus * (4 + 3 * devs);
}

/*
 * Decide every share's budgets (src/fs/budget.h) within what this process may
 * hold. First make room: as root (CAP_SYS_RESOURCE) the hard RLIMIT_NOFILE
 * may grow to what the shares want, and the soft limit (often 1024) goes up
 * to the hard one as far as needed, as virtiofsd does. Host VMAs and inotify
 * watches are shared with the rest of the process and of root's processes:
 * the DAX windows take at most half of what is left of each.
 */
static int plan_budgets(struct vm *vm, struct fs_budget_out *out)
{
	struct fs_budget_in in[CONFIG_MAX_SHARES] = { 0 };
	struct fs_budget_limits l = { .auto_max = SHARE_MAX_FDS_AUTO };
	struct rlimit rl;
	uint64_t want;
	char why[320];
	unsigned int i;
	int ret;

	for (i = 0; i < CONFIG_MAX_SHARES; i++) {
		const struct share_config *sc = &vm->cfg->shares[i];

		in[i].present = sc->path != NULL;
		in[i].max_fds = sc->max_fds;
		in[i].window = sc->dax != SHARE_DAX_NEVER ? sc->dax_window : 0;
	}
	l.reserve = fd_reserve(vm);
	/* The guest's RAM, libraries, thread stacks and malloc arenas keep the first 16384. */
	l.vmas = sysctl_u64("/proc/sys/vm/max_map_count", 65530);
	l.vmas = l.vmas > 16384 ? (l.vmas - 16384) / 2 : 0;
	l.watches = sysctl_u64("/proc/sys/fs/inotify/max_user_watches", 8192) / 2;
	want = fs_budget_want(&l, in, CONFIG_MAX_SHARES);
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		struct rlimit up = { .rlim_cur = rl.rlim_cur,
				     .rlim_max =
					 MIN(want, sysctl_u64("/proc/sys/fs/nr_open", want)) };

		if (up.rlim_max > rl.rlim_max && !setrlimit(RLIMIT_NOFILE, &up))
			rl = up;
		else
			pr_debug("open file hard limit stays %llu",
				 (unsigned long long)rl.rlim_max);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : MIN(rl.rlim_max, want);
		if (setrlimit(RLIMIT_NOFILE, &rl))
			pr_warn("cannot raise the open file limit: %s", strerror(errno));
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	l.nofile = rl.rlim_cur == RLIM_INFINITY ? want : rl.rlim_cur;
	ret = fs_budget_plan(&l, in, CONFIG_MAX_SHARES, out, why, sizeof(why));
	if (ret)
		pr_err("%s", why);
	return ret;
}

int vm_add_shares(struct vm *vm)
{
	struct fs_budget_out budget[CONFIG_MAX_SHARES] = { 0 };
	unsigned int i, n = 0;
	int ret;

	for (i = 0; i < CONFIG_MAX_SHARES; i++)
		n += vm->cfg->shares[i].path != NULL;
	if (!n)
		return 0;
	ret = plan_budgets(vm, budget);
	if (ret)
		return ret;
	for (i = 0; i < CONFIG_MAX_SHARES; i++) {
		if (!vm->cfg->shares[i].path)
			continue;
		ret = add_share(vm, i, &vm->cfg->shares[i], &budget[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* After the PCI bus is gone (it stopped the devices). */
void vm_remove_shares(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < CONFIG_MAX_SHARES; i++) {
		struct vm_share *sh = vm->shares[i];
		struct virtio_fs_stats st;
		struct dax_window_stats ds = { 0 };
		struct fuse_server_stats fst;

		if (!sh)
			continue;
		virtio_fs_get_stats(sh->dev, &st);
		fuse_server_get_stats(sh->srv, &fst);
		if (sh->win)
			dax_window_get_stats(sh->win, &ds);
		pr_info("share.%u: %llu requests, %llu malformed, %llu kicks, %llu interrupts; "
			"%llu forgets, %u host descriptors held at exit, %llu requests over a "
			"budget; DAX: %llu mappings set up, %llu removed, %llu re-clamped at EOF, "
			"%llu over a budget",
			i, (unsigned long long)st.requests, (unsigned long long)st.bad_chains,
			(unsigned long long)st.kicks, (unsigned long long)st.irqs,
			(unsigned long long)fst.forgets, fst.fds,
			(unsigned long long)fst.over_budget, (unsigned long long)ds.maps,
			(unsigned long long)ds.unmaps, (unsigned long long)ds.repairs,
			(unsigned long long)ds.over_budget);
		share_free(sh);
		vm->shares[i] = NULL;
	}
}
