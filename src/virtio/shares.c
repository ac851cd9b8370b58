// SPDX-License-Identifier: GPL-2.0-or-later
/* [share.N] -> a FUSE server, a DAX window, a virtio-fs device, a PCI function. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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
	struct fs_dev *dev;
	char name[8];
};

static void share_free(struct vm_share *sh)
{
	if (!sh)
		return;
	fs_dev_destroy(sh->dev);
	fuse_server_free(sh->srv);
	dax_window_free(sh->win);
	free(sh);
}

static unsigned int share_max_fds(const struct vm_config *cfg, unsigned int i);

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
		.max_fds = sc->max_fds,
		.uid_map = { sc->uid_map.guest, sc->uid_map.host, sc->uid_map.count },
		.gid_map = { sc->gid_map.guest, sc->gid_map.host, sc->gid_map.count },
	};
}

static int add_share(struct vm *vm, unsigned int idx, const struct share_config *sc)
{
	struct fs_dev_opts fo = { 0 };
	struct fs_share_opts so;
	int cpus[VIRTIO_MAX_QUEUES];
	struct vm_share *sh;
	char tagbuf[16], wbuf[32];
	unsigned int i;
	int ret;

	sh = calloc(1, sizeof(*sh));
	if (!sh)
		return -ENOMEM;
	snprintf(sh->name, sizeof(sh->name), "fs%u", idx);
	server_opts(sc, &so);
	so.max_fds = share_max_fds(vm->cfg, idx);
	if (sc->dax != SHARE_DAX_NEVER && sc->dax_window) {
		/* The window's own descriptors count against the share's budget too. */
		ret = dax_window_new(sc->dax_window, so.max_fds, &sh->win);
		if (ret) {
			pr_err("[share.%u]: cannot reserve a %llu MiB DAX window: %s", idx,
			       (unsigned long long)(sc->dax_window >> 20), strerror(-ret));
			goto fail;
		}
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
	/* Next to the vCPU of the same number when [disk.N] pin = on made a CPU list. */
	for (i = 0; i < fo.queues; i++)
		cpus[i] = vm_host_cpu(vm, i);
	fo.thread_cpu = cpus;
	ret = fs_dev_create(&sh->dev, sh->srv, sh->win, &vm->mem, &fo);
	if (ret) {
		pr_err("[share.%u]: cannot create the device: %s", idx, strerror(-ret));
		goto fail;
	}
	vm->shares[idx] = sh; /* from here the PCI bus may hold the device */
	ret = virtio_pci_add(vm, fs_dev_virtio(sh->dev));
	if (ret) {
		pr_err("[share.%u]: cannot put it on the PCI bus: %s%s", idx, strerror(-ret),
		       ret == -ENOSPC ? " (DAX windows too large together?)" : "");
		return ret;
	}
	if (sh->win)
		snprintf(wbuf, sizeof(wbuf), "%llu MiB DAX window",
			 (unsigned long long)(sc->dax_window >> 20));
	pr_info("share.%u: %s as tag '%s'%s, dax %s, %s, cache %s, xattr %s, %u request queue%s, "
		"up to %u host descriptors",
		idx, sc->path, fo.tag, sc->readonly ? " read-only" : "", dax_names[sc->dax],
		sh->win ? wbuf : "no DAX window", cache_names[sc->cache], sc->xattr ? "on" : "off",
		fo.queues, fo.queues > 1 ? "s" : "", so.max_fds);
	return 0;
fail:
	share_free(sh);
	return ret;
}

/*
 * max_fds = auto: a guest keeps every inode it has cached (a `find` over a
 * big tree) and each costs the server a descriptor, so take as many as the
 * hard limit allows, up to SHARE_MAX_FDS_AUTO, shared by the auto shares.
 */
static unsigned int auto_max_fds(const struct vm_config *cfg)
{
	unsigned int i, n = 0;
	uint64_t room = 8192, fixed = 256;
	struct rlimit rl;

	for (i = 0; i < CONFIG_MAX_SHARES; i++) {
		if (!cfg->shares[i].path)
			continue;
		if (cfg->shares[i].max_fds)
			fixed += 2ULL * cfg->shares[i].max_fds;
		else
			n++;
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_max != RLIM_INFINITY)
		room = rl.rlim_max > fixed ? rl.rlim_max - fixed : 0;
	else
		room = 2ULL * SHARE_MAX_FDS_AUTO * CONFIG_MAX_SHARES;
	room = n ? room / (2 * n) : room;
	return (unsigned int)MAX(4096, MIN(room, SHARE_MAX_FDS_AUTO));
}

/* With CAP_SYS_RESOURCE (root) the hard limit itself may grow: make room for auto. */
static void raise_hard_limit(const struct vm_config *cfg)
{
	uint64_t want = 256;
	struct rlimit rl;
	unsigned int i;

	for (i = 0; i < CONFIG_MAX_SHARES; i++)
		if (cfg->shares[i].path)
			want += 2ULL * (cfg->shares[i].max_fds ?: SHARE_MAX_FDS_AUTO);
	if (want == 256 || getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_max == RLIM_INFINITY ||
	    rl.rlim_max >= want)
		return;
	rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		pr_debug("open file hard limit stays: %s", strerror(errno));
}

static unsigned int share_max_fds(const struct vm_config *cfg, unsigned int i)
{
	return cfg->shares[i].max_fds ? cfg->shares[i].max_fds : auto_max_fds(cfg);
}

/*
 * Each share may hold max_fds descriptors in its server and as many in its
 * window: raise the soft limit (often 1024) to the hard one, as virtiofsd does,
 * so the guest meets the share's own budget, not the process's.
 */
static void raise_fd_limit(const struct vm_config *cfg)
{
	uint64_t need = 256, servers = 0; /* 256: everything else minivmm opens */
	struct rlimit rl;
	unsigned int i;

	for (i = 0; i < CONFIG_MAX_SHARES; i++) {
		if (!cfg->shares[i].path)
			continue;
		need += 2ULL * share_max_fds(cfg, i);
		servers += share_max_fds(cfg, i);
	}
	if (need == 256 || getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? need : MIN(rl.rlim_max, need);
		if (setrlimit(RLIMIT_NOFILE, &rl))
			pr_warn("cannot raise the open file limit: %s", strerror(errno));
	}
	/* The windows rarely hold many (one per mapped file); the servers' budgets matter. */
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < servers)
		pr_warn("shares may hold %llu descriptors, the limit is %llu: lower [share.N] "
			"max_fds or raise ulimit -n",
			(unsigned long long)servers, (unsigned long long)rl.rlim_cur);
	else if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		pr_debug("open file limit %llu: DAX windows may run short of descriptors",
			 (unsigned long long)rl.rlim_cur);
}

int vm_add_shares(struct vm *vm)
{
	unsigned int i;
	int ret;

	raise_hard_limit(vm->cfg);
	raise_fd_limit(vm->cfg);
	for (i = 0; i < CONFIG_MAX_SHARES; i++) {
		if (!vm->cfg->shares[i].path)
			continue;
		ret = add_share(vm, i, &vm->cfg->shares[i]);
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
		struct fs_dev_stats st;
		struct dax_window_stats ds = { 0 };
		struct fuse_server_stats fst;

		if (!sh)
			continue;
		fs_dev_get_stats(sh->dev, &st);
		fuse_server_get_stats(sh->srv, &fst);
		if (sh->win)
			dax_window_get_stats(sh->win, &ds);
		pr_info("share.%u: %llu requests, %llu malformed, %llu kicks, %llu interrupts; "
			"%llu forgets, %u host descriptors held at exit; "
			"DAX: %llu mappings set up, %llu removed, %llu re-clamped at EOF",
			i, (unsigned long long)st.requests, (unsigned long long)st.bad_chains,
			(unsigned long long)st.kicks, (unsigned long long)st.irqs,
			(unsigned long long)fst.forgets, fst.fds, (unsigned long long)ds.maps,
			(unsigned long long)ds.unmaps, (unsigned long long)ds.repairs);
		share_free(sh);
		vm->shares[i] = NULL;
	}
}

int vm_fault_repair(struct vm *vm)
{
	unsigned int i;
	int n = 0;

	for (i = 0; i < CONFIG_MAX_SHARES; i++)
		if (vm->shares[i] && vm->shares[i]->win)
			n += dax_window_repair(vm->shares[i]->win);
	return n;
}
