// SPDX-License-Identifier: GPL-2.0-or-later
/* guest.cfg parsing: every key, every error message, overrides, dump. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

/* Each test runs in a fresh temp dir that is also the cwd. */
static char tmpdir[PATH_MAX];
static struct vm_config cfg;
static char *errs; /* what config_load() printed */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
	strcpy(tmpdir, "/tmp/minivmm-test-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(chdir(tmpdir), 0);
	ck_assert_int_eq(mkdir("sub", 0755), 0);
	ck_assert_int_eq(mkdir("kdir", 0755), 0);
	write_file("bzImage", "kernel");
	write_file("sub/bzImage", "kernel");
	write_file("initrd.img", "initrd");
	errs = NULL;
	memset(&cfg, 0, sizeof(cfg));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void teardown(void)
{
	config_free(&cfg);
	free(errs);
	errs = NULL;
	ck_assert_int_eq(chdir("/"), 0);
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Load @path (NULL: none) with overrides; messages land in errs. */
static int load_args(const char *path, char *const *overrides, int n)
{
	size_t len;
	FILE *err;
	int ret;

	free(errs);
	errs = NULL;
	config_free(&cfg);
	err = open_memstream(&errs, &len);
	ck_assert_ptr_nonnull(err);
	ret = config_load(&cfg, path, overrides, n, err);
	fclose(err);
	return ret;
}

/* Write @text to guest.cfg and load it. */
static int load_text(const char *text, char *const *overrides, int n)
{
	write_file("guest.cfg", text);
	return load_args("guest.cfg", overrides, n);
}

#define BOOT "[boot]\nkernel = bzImage\n"

/* config_dump of cfg, as text (the caller frees it). */
static char *dump_cfg(void)
{
	char *dump = NULL;
	size_t len;
	FILE *f = open_memstream(&dump, &len);

	ck_assert_ptr_nonnull(f);
	config_dump(&cfg, f);
	fclose(f);
	return dump;
}

START_TEST(test_disks)
{
	char *const set[] = { "disk.3.path=disk.img", "disk.3.queues=auto", "disk.3.pin=on" };

	write_file("disk.img", "");
	ck_assert_int_eq(load_text(BOOT "[disk.0]\npath = disk.img\nformat = qcow2\nreadonly = on\n"
					"cache = none\nqueues = 4\niothreads = 2\nserial = abc\n"
					"backing = off\n",
				   set, 3),
			 0);
	ck_assert_str_eq(cfg.disks[0].path, "disk.img");
	ck_assert_int_eq(cfg.disks[0].format, DISK_QCOW2);
	ck_assert_uint_eq(cfg.disks[0].readonly, 1);
	ck_assert_int_eq(cfg.disks[0].cache, DISK_CACHE_NONE);
	ck_assert_uint_eq(cfg.disks[0].queues, 4);
	ck_assert_uint_eq(cfg.disks[0].iothreads, 2);
	ck_assert_str_eq(cfg.disks[0].serial, "abc");
	ck_assert_uint_eq(cfg.disks[0].backing, 0);
	ck_assert_ptr_null(cfg.disks[1].path);
	/* Defaults: raw, writable, writeback, one queue per vCPU, a thread per queue. */
	ck_assert_str_eq(cfg.disks[3].path, "disk.img");
	ck_assert_int_eq(cfg.disks[3].format, DISK_RAW);
	ck_assert_uint_eq(cfg.disks[3].readonly, 0);
	ck_assert_int_eq(cfg.disks[3].cache, DISK_CACHE_WRITEBACK);
	ck_assert_uint_eq(cfg.disks[3].queues, 0);
	ck_assert_uint_eq(cfg.disks[3].iothreads, 0);
	ck_assert_uint_eq(cfg.disks[3].pin, 1);
	ck_assert_uint_eq(cfg.pin, 1); /* the older spelling of [vm] pin = on */
	ck_assert_uint_eq(cfg.disks[3].backing, 0); /* backing files are opt-in */
	ck_assert_ptr_null(cfg.disks[3].backing_dir);
	ck_assert_uint_eq(cfg.disks[3].poll_us, DISK_POLL_US_DEFAULT);
	config_free(&cfg);

	ck_assert_int_eq(load_text(BOOT "[disk.0]\npath = disk.img\nqueues = 0\niothreads = many\n"
					"serial = 123456789012345678901\nformat = vmdk\n",
				   NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(
	    errs,
	    "guest.cfg:5: [disk.0] queues: 0 out of range (1..64)\n"
	    "guest.cfg:6: [disk.0] iothreads: bad value 'many' (expected per-queue or a number)\n"
	    "guest.cfg:7: [disk.0] serial: '123456789012345678901' is longer than 20 characters\n"
	    "guest.cfg:8: [disk.0] format: bad value 'vmdk' (expected raw|qcow2)\n");
	/* A disk section without a path, and one past the last index. */
	ck_assert_int_eq(load_text(BOOT "[disk.1]\nreadonly = on\n[disk.16]\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs,
			 "guest.cfg:5: [disk.16]: bad instance number (use [disk.N], N = 0..15)\n"
			 "guest.cfg: [disk.1] path: required key missing\n");
}
END_TEST

/* [disk.N] and [share.N] iops, bandwidth and their bursts: 0 (unlimited) by default. */
START_TEST(test_rate_limits)
{
	char *const set[] = { "share.1.path=kdir", "share.1.bandwidth=1G",
			      "share.1.bandwidth_burst=64M" };
	char *dump = NULL, *d1, *sh0;

	write_file("disk.img", "");
	ck_assert_int_eq(load_text(BOOT "[disk.0]\npath = disk.img\niops = 500\niops_burst = 50\n"
					"bandwidth = 50M\nbandwidth_burst = 8M\n"
					"[disk.1]\npath = disk.img\n"
					"[share.0]\npath = kdir\niops = 1125899906842624\n",
				   set, 3),
			 0);
	ck_assert_str_eq(errs, "");
	ck_assert_uint_eq(cfg.disks[0].rl.iops, 500);
	ck_assert_uint_eq(cfg.disks[0].rl.iops_burst, 50);
	ck_assert_uint_eq(cfg.disks[0].rl.bandwidth, 50ULL << 20);
	ck_assert_uint_eq(cfg.disks[0].rl.bandwidth_burst, 8ULL << 20);
	ck_assert(!rl_config_limited(&cfg.disks[1].rl));
	ck_assert_uint_eq(cfg.disks[1].rl.bandwidth, 0);
	ck_assert_uint_eq(cfg.shares[0].rl.iops, RL_RATE_MAX);
	ck_assert_uint_eq(cfg.shares[0].rl.bandwidth, 0);
	ck_assert_uint_eq(cfg.shares[1].rl.bandwidth, 1ULL << 30);
	ck_assert_uint_eq(cfg.shares[1].rl.bandwidth_burst, 64ULL << 20);
	/* Shown when set, and loaded back the same. */
	dump = dump_cfg();
	ck_assert_ptr_nonnull(strstr(dump, "poll_us = 32\niops = 500\niops_burst = 50\n"
					   "bandwidth = 50M\nbandwidth_burst = 8M\n"));
	ck_assert_ptr_nonnull(strstr(dump, "bandwidth = 1G\nbandwidth_burst = 64M\n"));
	/* [disk.1] sets none: it shows none. */
	d1 = strstr(dump, "[disk.1]");
	sh0 = strstr(dump, "[share.0]");
	ck_assert(d1 && sh0 && d1 < sh0);
	ck_assert_ptr_null(memmem(d1, sh0 - d1, "iops", 4));
	ck_assert_ptr_null(memmem(d1, sh0 - d1, "bandwidth", 9));
	ck_assert_int_eq(load_text(dump, NULL, 0), 0);
	ck_assert_uint_eq(cfg.disks[0].rl.bandwidth_burst, 8ULL << 20);
	ck_assert_uint_eq(cfg.shares[0].rl.iops, RL_RATE_MAX);
	free(dump);

	/* Too big, junk, bad suffixes, a burst without its rate. */
	ck_assert_int_eq(load_text(BOOT "[disk.0]\npath = disk.img\niops = 1125899906842625\n"
					"bandwidth = 2048T\niops_burst = 10k\n"
					"bandwidth_burst = 5Q\n"
					"[share.0]\npath = kdir\niops = -1\nbandwidth = 1.5G\n"
					"iops_burst = 99999999999999999999\nbandwidth_burst = 1M\n",
				   NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(
	    errs,
	    "guest.cfg:5: [disk.0] iops: 1125899906842625 out of range (0..1125899906842624)\n"
	    "guest.cfg:6: [disk.0] bandwidth: 2048T out of range (0..1024T)\n"
	    "guest.cfg:7: [disk.0] iops_burst: bad number '10k'\n"
	    "guest.cfg:8: [disk.0] bandwidth_burst: bad size '5Q' (bytes per second, "
	    "e.g. 50M or 1G)\n"
	    "guest.cfg:11: [share.0] iops: bad number '-1'\n"
	    "guest.cfg:12: [share.0] bandwidth: bad size '1.5G' (bytes per second, "
	    "e.g. 50M or 1G)\n"
	    "guest.cfg:13: [share.0] iops_burst: bad number '99999999999999999999'\n"
	    "guest.cfg:14: [share.0] bandwidth_burst: has no effect without bandwidth\n");
}
END_TEST

/* Backing files are off by default and, when on, confined to backing_dir. */
START_TEST(test_disk_backing)
{
	char *dump = NULL;

	write_file("disk.img", "");
	ck_assert_int_eq(mkdir("base", 0755), 0);
	ck_assert_int_eq(load_text(BOOT "[disk.0]\npath = disk.img\nbacking = on\n", NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:5: [disk.0] backing: on needs backing_dir = DIR, the "
			       "directory that holds the image's backing files\n");
	ck_assert_int_eq(load_text(BOOT "[disk.0]\npath = disk.img\nbacking = on\n"
					"backing_dir = disk.img\n",
				   NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:6: [disk.0] backing_dir: disk.img: Not a directory\n");
	ck_assert_int_eq(load_text(BOOT "[disk.0]\npath = disk.img\nbacking = on\n"
					"backing_dir = base\n",
				   NULL, 0),
			 0);
	ck_assert_uint_eq(cfg.disks[0].backing, 1);
	ck_assert_str_eq(cfg.disks[0].backing_dir, "base");
	dump = dump_cfg();
	ck_assert_ptr_nonnull(strstr(dump, "backing = on\n"));
	ck_assert_ptr_nonnull(strstr(dump, "backing_dir = base\n"));
	free(dump);
}
END_TEST

/* [vsock]: a CID in range needs the socket; both dump and load back. */
START_TEST(test_vsock)
{
	char *dump = NULL;

	ck_assert_int_eq(load_text(BOOT, NULL, 0), 0);
	ck_assert_uint_eq(cfg.vsock.cid, 0);
	ck_assert_int_eq(load_text(BOOT "[vsock]\ncid = 3\nsocket = v.sock\n", NULL, 0), 0);
	ck_assert_uint_eq(cfg.vsock.cid, 3);
	ck_assert_str_eq(cfg.vsock.socket, "v.sock");
	dump = dump_cfg();
	ck_assert_ptr_nonnull(strstr(dump, "\n[vsock]\ncid = 3\nsocket = v.sock\n"));
	free(dump);
	ck_assert_int_eq(load_text(BOOT "[vsock]\ncid = 3\n", NULL, 0), -EINVAL);
	ck_assert_ptr_nonnull(strstr(errs, "needs [vsock] socket"));
	ck_assert_int_eq(load_text(BOOT "[vsock]\ncid = 2\nsocket = v.sock\n", NULL, 0), -EINVAL);
	ck_assert_int_eq(load_text(BOOT "[vsock]\ncid = 4294967295\nsocket = v.sock\n", NULL, 0),
			 -EINVAL);
}
END_TEST

/* [vm] merge: off by default and then not dumped; on loads back. */
START_TEST(test_merge_key)
{
	char *dump;

	ck_assert_int_eq(load_text(BOOT, NULL, 0), 0);
	ck_assert_uint_eq(cfg.merge, 0);
	dump = dump_cfg();
	ck_assert_ptr_null(strstr(dump, "merge"));
	free(dump);
	ck_assert_int_eq(load_text("[vm]\nmerge = on\n" BOOT, NULL, 0), 0);
	ck_assert_uint_eq(cfg.merge, 1);
	dump = dump_cfg();
	ck_assert_ptr_nonnull(strstr(dump, "merge = on\n"));
	free(dump);
	ck_assert_int_eq(load_text("[vm]\nmerge = yes\n" BOOT, NULL, 0), -EINVAL);
}
END_TEST

/* [balloon]: the section alone adds the device, as does --set; dumps load back. */
START_TEST(test_balloon)
{
	char *const set[] = { "balloon.stats_s=5" };
	char *dump;

	ck_assert_int_eq(load_text(BOOT, NULL, 0), 0);
	ck_assert(!cfg.balloon.present);
	dump = dump_cfg();
	ck_assert_ptr_null(strstr(dump, "[balloon]"));
	free(dump);
	ck_assert_int_eq(load_text(BOOT "[balloon]\n", NULL, 0), 0);
	ck_assert(cfg.balloon.present);
	ck_assert_uint_eq(cfg.balloon.free_page_reporting, 1);
	ck_assert_uint_eq(cfg.balloon.deflate_on_oom, 1);
	ck_assert_uint_eq(cfg.balloon.stats_s, 0);
	dump = dump_cfg();
	ck_assert_ptr_nonnull(strstr(dump, "\n[balloon]\nfree_page_reporting = on\n"
					   "deflate_on_oom = on\nstats_s = 0\n"));
	free(dump);
	ck_assert_int_eq(
	    load_text(BOOT "[balloon]\nfree_page_reporting = off\nstats_s = 10\n", NULL, 0), 0);
	ck_assert_uint_eq(cfg.balloon.free_page_reporting, 0);
	ck_assert_uint_eq(cfg.balloon.stats_s, 10);
	ck_assert_int_eq(load_text(BOOT, set, 1), 0);
	ck_assert(cfg.balloon.present);
	ck_assert_uint_eq(cfg.balloon.stats_s, 5);
	ck_assert_int_eq(load_text(BOOT "[balloon]\nstats_s = 3601\n", NULL, 0), -EINVAL);
	ck_assert_int_eq(load_text(BOOT "[balloon]\ndeflate_on_oom = maybe\n", NULL, 0), -EINVAL);
	ck_assert_int_eq(load_text(BOOT "[balloon]\ntarget = 1G\n", NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_api_socket)
{
	char *const set[] = { "api.socket=run.sock" };
	char longpath[128], text[256], *dump = NULL;

	ck_assert_int_eq(load_text(BOOT, NULL, 0), 0);
	ck_assert_ptr_null(cfg.api_socket);
	ck_assert_int_eq(load_text(BOOT "[api]\nsocket =\n", NULL, 0), 0);
	ck_assert_ptr_null(cfg.api_socket);
	/* Relative to the config file, like every path; the socket need not exist. */
	write_file("sub/guest.cfg", BOOT "[api]\nsocket = vm.sock\n");
	ck_assert_int_eq(load_args("sub/guest.cfg", NULL, 0), 0);
	ck_assert_str_eq(cfg.api_socket, "sub/vm.sock");
	dump = dump_cfg();
	ck_assert_ptr_nonnull(strstr(dump, "\n[api]\nsocket = sub/vm.sock\n"));
	free(dump);
	ck_assert_int_eq(load_args("sub/guest.cfg", set, 1), 0);
	ck_assert_str_eq(cfg.api_socket, "run.sock");

	ck_assert_int_eq(load_text(BOOT "[api]\nsocket = nodir/vm.sock\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: [api] socket: nodir/vm.sock: nodir: No such file or "
			       "directory\n");
	ck_assert_int_eq(load_text(BOOT "[api]\nsocket = bzImage/vm.sock\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: [api] socket: bzImage/vm.sock: bzImage: Not a "
			       "directory\n");
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	snprintf(text, sizeof(text), BOOT "[api]\nsocket = %s\n", longpath);
	ck_assert_int_eq(load_text(text, NULL, 0), -EINVAL);
	ck_assert_ptr_nonnull(strstr(errs, "too long for a Unix socket (at most 107 bytes)\n"));
	ck_assert_int_eq(load_text(BOOT "[api]\npath = x\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: [api] path: unknown key\n");
}
END_TEST

START_TEST(test_shares)
{
	char *const set[] = { "share.7.path=sub", "share.7.readonly=on", "share.7.dax=never",
			      "share.7.dax_window=0" };
	char tag[16], *dump = NULL;

	ck_assert_int_eq(load_text(BOOT
				   "[share.0]\npath = kdir\ntag = my-tag\ndax = always\n"
				   "dax_window = 256M\ncache = none\nxattr = on\n"
				   "uid_map = 0:1000:1\ngid_map = 100:2000:65536\nmax_fds = 100\n",
				   set, 4),
			 0);
	ck_assert_str_eq(cfg.shares[0].path, "kdir");
	ck_assert_str_eq(config_share_tag(&cfg, 0, tag, sizeof(tag)), "my-tag");
	ck_assert_int_eq(cfg.shares[0].dax, SHARE_DAX_ALWAYS);
	ck_assert_uint_eq(cfg.shares[0].dax_window, 256ULL << 20);
	ck_assert_int_eq(cfg.shares[0].cache, SHARE_CACHE_NONE);
	ck_assert_uint_eq(cfg.shares[0].xattr, 1);
	ck_assert_uint_eq(cfg.shares[0].uid_map.guest, 0);
	ck_assert_uint_eq(cfg.shares[0].uid_map.host, 1000);
	ck_assert_uint_eq(cfg.shares[0].uid_map.count, 1);
	ck_assert_uint_eq(cfg.shares[0].gid_map.guest, 100);
	ck_assert_uint_eq(cfg.shares[0].gid_map.count, 65536);
	ck_assert_uint_eq(cfg.shares[0].max_fds, 100);
	ck_assert_ptr_null(cfg.shares[1].path);
	/* Defaults: share<N>, writable, dax inode, 1G window, cache auto, no xattrs, identity. */
	ck_assert_str_eq(cfg.shares[7].path, "sub");
	ck_assert_str_eq(config_share_tag(&cfg, 7, tag, sizeof(tag)), "share7");
	ck_assert_uint_eq(cfg.shares[7].readonly, 1);
	ck_assert_uint_eq(cfg.shares[7].dax_window, 0);
	ck_assert_int_eq(cfg.shares[7].cache, SHARE_CACHE_AUTO);
	ck_assert_uint_eq(cfg.shares[7].xattr, 0);
	ck_assert_uint_eq(cfg.shares[7].uid_map.count, 0);
	ck_assert_uint_eq(cfg.shares[7].max_fds, 0); /* auto */
	dump = dump_cfg();
	ck_assert_ptr_nonnull(strstr(dump,
				     "\n[share.0]\npath = kdir\ntag = my-tag\nreadonly = off\n"
				     "dax = always\ndax_window = 256M\ncache = none\n"
				     "xattr = on\nuid_map = 0:1000:1\n"
				     "gid_map = 100:2000:65536\nmax_fds = 100\n"));
	ck_assert_ptr_nonnull(strstr(dump, "\n[share.7]\npath = sub\nreadonly = on\ndax = never\n"
					   "dax_window = 0\n"));
	free(dump);
	ck_assert_int_eq(load_text(BOOT "[share.1]\npath = sub\n", NULL, 0), 0);
	ck_assert_int_eq(cfg.shares[1].dax, SHARE_DAX_INODE);
	ck_assert_uint_eq(cfg.shares[1].dax_window, 1ULL << 30);

	/* Every way to get it wrong, each on its line. */
	ck_assert_int_eq(load_text(BOOT "[share.0]\npath = nosuch\ntag = a b\ndax = sometimes\n"
					"dax_window = 3M\ncache = maybe\nuid_map = 1:2\n"
					"gid_map = 0:4294967295:2\nmax_fds = 8\n"
					"[share.1]\npath = bzImage\n"
					"tag = 0123456789012345678901234567890123456\n"
					"[share.2]\npath = kdir\ndax_window = 0\n"
					"[share.3]\ntag = x\n[share.8]\n",
				   NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(
	    errs,
	    "guest.cfg:5: [share.0] tag: only printable ASCII characters without blanks are "
	    "allowed\n"
	    "guest.cfg:6: [share.0] dax: bad value 'sometimes' (expected inode|always|never)\n"
	    "guest.cfg:7: [share.0] dax_window: 3M is not a multiple of 2M\n"
	    "guest.cfg:8: [share.0] cache: bad value 'maybe' (expected auto|always|none)\n"
	    "guest.cfg:9: [share.0] uid_map: bad value '1:2' (expected GUEST:HOST:COUNT, e.g. "
	    "0:1000:1)\n"
	    "guest.cfg:10: [share.0] gid_map: '0:4294967295:2': the range goes past id "
	    "4294967295\n"
	    "guest.cfg:11: [share.0] max_fds: 8 out of range (16..1048576)\n"
	    "guest.cfg:14: [share.1] tag: '0123456789012345678901234567890123456' is longer than "
	    "35 bytes\n"
	    "guest.cfg:20: [share.8]: bad instance number (use [share.N], N = 0..7)\n"
	    "guest.cfg:4: [share.0] path: nosuch: No such file or directory\n"
	    "guest.cfg:13: [share.1] path: bzImage: Not a directory\n"
	    "guest.cfg: [share.3] path: required key missing\n"
	    "guest.cfg:17: [share.2] dax_window: 0 (no DAX window) needs dax = never\n");
	/* Tags are unique, the default ones included. */
	ck_assert_int_eq(load_text(BOOT
				   "[share.0]\npath = kdir\ntag = share1\n[share.1]\npath = sub\n",
				   NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg: [share.1] tag: 'share1' is also the tag of [share.0]\n");
	ck_assert_int_eq(load_text(BOOT "[share.0]\npath = kdir\ntag = t\n[share.2]\npath = sub\n"
					"tag = t\n",
				   NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:8: [share.2] tag: 't' is also the tag of [share.0]\n");
}
END_TEST

START_TEST(test_defaults)
{
	char *const set[] = { "boot.kernel=bzImage" };

	config_init(&cfg);
	ck_assert_uint_eq(cfg.mem_size, 256ULL << 20);
	ck_assert_uint_eq(cfg.vcpus, 1);
	ck_assert_int_eq(cfg.nested, NESTED_AUTO);
	ck_assert_int_eq(cfg.on_reboot, REBOOT_EXIT);
	ck_assert_str_eq(cfg.cmdline, "console=ttyS0");
	ck_assert_ptr_null(cfg.kernel);
	ck_assert_ptr_null(cfg.initrd);
	ck_assert_ptr_null(cfg.path);
	ck_assert_int_eq(cfg.serial, SERIAL_STDIO);
	ck_assert_ptr_null(cfg.serial_path);
	/* The safe choice: seccomp enforcing, except in sanitizer builds (log; docs/sandbox.md). */
#if defined(__SANITIZE_ADDRESS__)
	ck_assert_uint_eq(cfg.sandbox.seccomp, 2);
#else
	ck_assert_uint_eq(cfg.sandbox.seccomp, 1);
#endif
	ck_assert_ptr_null(cfg.sandbox.jail);
	config_free(&cfg);
	config_free(&cfg); /* idempotent */

	/* A file with only the kernel: everything else defaults. */
	ck_assert_int_eq(load_text(BOOT, NULL, 0), 0);
	ck_assert_str_eq(errs, "");
	ck_assert_str_eq(cfg.path, "guest.cfg");
	ck_assert_uint_eq(cfg.mem_size, 256ULL << 20);
	ck_assert_uint_eq(cfg.vcpus, 1);
	ck_assert_str_eq(cfg.kernel, "bzImage");
	ck_assert_str_eq(cfg.cmdline, "console=ttyS0");
	ck_assert_int_eq(cfg.serial, SERIAL_STDIO);

	/* No file at all: defaults plus overrides. */
	ck_assert_int_eq(load_args(NULL, set, 1), 0);
	ck_assert_ptr_null(cfg.path);
	ck_assert_str_eq(cfg.kernel, "bzImage");

	ck_assert_int_eq(load_args(NULL, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "[boot] kernel: required key missing\n");
}
END_TEST

START_TEST(test_every_key)
{
	ck_assert_int_eq(load_text("[vm]\n"
				   "memory = 512M\n"
				   "vcpus = 2\n"
				   "nested = off\n"
				   "on_reboot = restart\n"
				   "pin = on\n"
				   "[boot]\n"
				   "kernel = bzImage\n"
				   "initrd = initrd.img\n"
				   "cmdline = console=ttyS0 quiet\n"
				   "[console]\n"
				   "serial = file:serial.log\n",
				   NULL, 0),
			 0);
	ck_assert_str_eq(errs, "");
	ck_assert_uint_eq(cfg.mem_size, 512ULL << 20);
	ck_assert_uint_eq(cfg.vcpus, 2);
	ck_assert_int_eq(cfg.nested, NESTED_OFF);
	ck_assert_int_eq(cfg.on_reboot, REBOOT_RESTART);
	ck_assert_uint_eq(cfg.pin, 1);
	ck_assert_str_eq(cfg.kernel, "bzImage");
	ck_assert_str_eq(cfg.initrd, "initrd.img");
	ck_assert_str_eq(cfg.cmdline, "console=ttyS0 quiet");
	ck_assert_int_eq(cfg.serial, SERIAL_FILE);
	ck_assert_str_eq(cfg.serial_path, "serial.log");

	ck_assert_int_eq(load_text("[vm]\nnested = on\non_reboot = exit\n" BOOT
				   "[console]\nserial = none\n",
				   NULL, 0),
			 0);
	ck_assert_int_eq(cfg.nested, NESTED_ON);
	ck_assert_int_eq(cfg.on_reboot, REBOOT_EXIT);
	ck_assert_int_eq(cfg.serial, SERIAL_NONE);
	ck_assert_ptr_null(cfg.serial_path);

	ck_assert_int_eq(load_text("[vm]\nnested = auto\nvcpus = 64\n" BOOT
				   "[console]\nserial = stdio\n",
				   NULL, 0),
			 0);
	ck_assert_int_eq(cfg.nested, NESTED_AUTO);
	ck_assert_uint_eq(cfg.vcpus, 64);
	ck_assert_int_eq(cfg.serial, SERIAL_STDIO);
}
END_TEST

static const struct {
	const char *s;
	uint64_t v;
} good_sizes[] = {
	{ "0", 0 },
	{ "4096", 4096 },
	{ "64k", 64ULL << 10 },
	{ "64K", 64ULL << 10 },
	{ "512M", 512ULL << 20 },
	{ "512m", 512ULL << 20 },
	{ "2G", 2ULL << 30 },
	{ "1T", 1ULL << 40 },
	{ "1t", 1ULL << 40 },
	{ "512MiB", 512ULL << 20 },
	{ "512MB", 512ULL << 20 },
	{ "4096B", 4096 },
	{ "16777215T", 16777215ULL << 40 },
	{ "18446744073709551615", UINT64_MAX },
};

static const char *const bad_sizes[] = {
	"",
	"-1",
	"+1",
	" 1",
	"1 ",
	"1.5G",
	"12Q",
	"M",
	"1MM",
	"1iB",
	"1Mi",
	"1MiBB",
	"0x10",
	"1b",
	"1 M",
	"18446744073709551616",
	"16777216T",
	"17179869184G",
	"99999999999999999999",
};

START_TEST(test_parse_size)
{
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(good_sizes) / sizeof(good_sizes[0]); i++) {
		v = 1;
		ck_assert_msg(config_parse_size(good_sizes[i].s, &v) == 0, "'%s'", good_sizes[i].s);
		ck_assert_msg(v == good_sizes[i].v, "'%s' -> %llu", good_sizes[i].s,
			      (unsigned long long)v);
	}
	for (i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		v = 1;
		ck_assert_msg(config_parse_size(bad_sizes[i], &v) == -EINVAL, "'%s'", bad_sizes[i]);
		ck_assert_uint_eq(v, 1);
	}
}
END_TEST

/* [sandbox] cpu_max: "QUOTA [PERIOD]"; a period that is not a number is refused (the
 * fuzzer found "max x" reading through an unset end pointer). */
START_TEST(test_cpu_max)
{
	ck_assert_int_eq(load_text("[sandbox]\ncpu_max = max 20000\n" BOOT, NULL, 0), 0);
	ck_assert_str_eq(cfg.sandbox.cpu_max, "max 20000");
	ck_assert_int_eq(load_text("[sandbox]\ncpu_max = 50000\n" BOOT, NULL, 0), 0);
	ck_assert_str_eq(cfg.sandbox.cpu_max, "50000 100000");
	ck_assert_int_eq(load_text("[sandbox]\ncpu_max = max x\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_int_eq(load_text("[sandbox]\ncpu_max = 50000 \xde\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_int_eq(load_text("[sandbox]\ncpu_max = 50000 10\n" BOOT, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_memory_values)
{
	ck_assert_int_eq(load_text("[vm]\nmemory = 16M\n" BOOT, NULL, 0), 0);
	ck_assert_uint_eq(cfg.mem_size, 16ULL << 20);
	ck_assert_int_eq(load_text("[vm]\nmemory = 1T\n" BOOT, NULL, 0), 0);
	ck_assert_uint_eq(cfg.mem_size, 1ULL << 40);
	ck_assert_int_eq(load_text("[vm]\nmemory = 1073741824\n" BOOT, NULL, 0), 0);
	ck_assert_uint_eq(cfg.mem_size, 1ULL << 30);

	ck_assert_int_eq(load_text("[vm]\nmemory = 12Q\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] memory: bad size '12Q' (use e.g. 512M or 2G)\n");
	ck_assert_int_eq(load_text("[vm]\nmemory = 8M\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] memory: 8M out of range (16M..1T)\n");
	ck_assert_int_eq(load_text("[vm]\nmemory = 2T\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] memory: 2T out of range (16M..1T)\n");
	ck_assert_int_eq(load_text("[vm]\nmemory = 1073741828K\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] memory: 1073741828K out of range (16M..1T)\n");
	ck_assert_int_eq(load_text("[vm]\nmemory = 16386K\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] memory: 16386K is not a multiple of 4K\n");
	ck_assert_int_eq(load_text("[vm]\nmemory = 99999999999999999999\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] memory: bad size '99999999999999999999' (use "
			       "e.g. 512M or 2G)\n");
	ck_assert_int_eq(load_text("[vm]\nmemory =\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] memory: bad size '' (use e.g. 512M or 2G)\n");
}
END_TEST

START_TEST(test_bad_numbers_and_enums)
{
	ck_assert_int_eq(load_text("[vm]\n"
				   "vcpus = 0\n"
				   "nested = maybe\n"
				   "on_reboot = halt\n" BOOT "[console]\n"
				   "serial = tty\n",
				   NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(errs,
			 "guest.cfg:2: [vm] vcpus: 0 out of range (1..64)\n"
			 "guest.cfg:3: [vm] nested: bad value 'maybe' (expected auto|on|off)\n"
			 "guest.cfg:4: [vm] on_reboot: bad value 'halt' (expected exit|restart)\n"
			 "guest.cfg:8: [console] serial: bad value 'tty' (expected "
			 "stdio|file:PATH|none|api)\n");
	ck_assert_int_eq(load_text("[vm]\nvcpus = 65\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] vcpus: 65 out of range (1..64)\n");
	ck_assert_int_eq(load_text("[vm]\nvcpus = 2x\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] vcpus: bad number '2x'\n");
	ck_assert_int_eq(load_text("[vm]\nvcpus = -1\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] vcpus: bad number '-1'\n");
	ck_assert_int_eq(load_text("[vm]\nvcpus = 99999999999999999999999\n" BOOT, NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] vcpus: bad number '99999999999999999999999'\n");
	ck_assert_int_eq(load_text("[vm]\nnested = ON\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_int_eq(load_text(BOOT "[console]\nserial = file:\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: [console] serial: file: needs a path (file:PATH)\n");
}
END_TEST

START_TEST(test_relative_paths)
{
	char abs[PATH_MAX + 64], want[PATH_MAX + 64];
	char *const set[] = { "boot.initrd=initrd.img" };

	/* Against the config file's directory, not the cwd. */
	write_file("sub/guest.cfg", "[boot]\nkernel = bzImage\ninitrd = ../initrd.img\n"
				    "[console]\nserial = file:serial.log\n");
	ck_assert_int_eq(load_args("sub/guest.cfg", NULL, 0), 0);
	ck_assert_str_eq(errs, "");
	ck_assert_str_eq(cfg.kernel, "sub/bzImage");
	ck_assert_str_eq(cfg.initrd, "sub/../initrd.img");
	ck_assert_str_eq(cfg.serial_path, "sub/serial.log");

	snprintf(abs, sizeof(abs), "%s/sub/guest.cfg", tmpdir);
	ck_assert_int_eq(load_args(abs, NULL, 0), 0);
	snprintf(want, sizeof(want), "%s/sub/bzImage", tmpdir);
	ck_assert_str_eq(cfg.kernel, want);

	/* Absolute paths stay as they are. */
	snprintf(want, sizeof(want), "[boot]\nkernel = %s/bzImage\n", tmpdir);
	write_file("sub/abs.cfg", want);
	ck_assert_int_eq(load_args("sub/abs.cfg", NULL, 0), 0);
	snprintf(want, sizeof(want), "%s/bzImage", tmpdir);
	ck_assert_str_eq(cfg.kernel, want);

	/* Overrides resolve against the cwd. */
	ck_assert_int_eq(load_args("sub/guest.cfg", set, 1), 0);
	ck_assert_str_eq(cfg.initrd, "initrd.img");

	/* The file's kernel is checked where it resolves to. */
	write_file("sub/bad.cfg", "[boot]\nkernel = nokernel\n");
	ck_assert_int_eq(load_args("sub/bad.cfg", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs,
			 "sub/bad.cfg:2: [boot] kernel: sub/nokernel: No such file or directory\n");
}
END_TEST

START_TEST(test_overrides)
{
	char *const replace[] = { "vm.memory=1G", "vm.vcpus=4", "vm.vcpus=8" };
	char *const add[] = { "boot.initrd=initrd.img", "console.serial=file:out/log" };
	char *const cmdline[] = { "boot.cmdline=console=ttyS0 root=/dev/vda ; not a comment" };
	char *const bad[] = { "novalue",     "vm=1",	     ".memory=1", "vm.=1",
			      "vm.nosuch=1", "vmm.memory=1", "=",	  "vm.memory=huge" };
	char *const clear[] = { "boot.initrd=", "boot.cmdline=" };
	char *const kernel[] = { "boot.kernel=kdir" };

	ck_assert_int_eq(load_text("[vm]\nmemory = 512M\nvcpus = 2\n" BOOT, replace, 3), 0);
	ck_assert_str_eq(errs, "");
	ck_assert_uint_eq(cfg.mem_size, 1ULL << 30);
	ck_assert_uint_eq(cfg.vcpus, 8);

	ck_assert_int_eq(mkdir("out", 0755), 0);
	ck_assert_int_eq(load_text(BOOT, add, 2), 0);
	ck_assert_str_eq(cfg.initrd, "initrd.img");
	ck_assert_int_eq(cfg.serial, SERIAL_FILE);
	ck_assert_str_eq(cfg.serial_path, "out/log");

	/* Verbatim: spaces, '=' and ';' are all part of the value. */
	ck_assert_int_eq(load_text(BOOT, cmdline, 1), 0);
	ck_assert_str_eq(cfg.cmdline, "console=ttyS0 root=/dev/vda ; not a comment");

	ck_assert_int_eq(load_text(BOOT "initrd = initrd.img\n", clear, 2), 0);
	ck_assert_ptr_null(cfg.initrd);
	ck_assert_str_eq(cfg.cmdline, "");

	ck_assert_int_eq(load_text(BOOT, bad, 8), -EINVAL);
	ck_assert_str_eq(errs, "--set novalue: expected section.key=value\n"
			       "--set vm=1: expected section.key=value\n"
			       "--set .memory=1: expected section.key=value\n"
			       "--set vm.=1: expected section.key=value\n"
			       "--set vm.nosuch=1: [vm] nosuch: unknown key\n"
			       "--set vmm.memory=1: [vmm]: unknown section\n"
			       "--set =: expected section.key=value\n"
			       "--set vm.memory=huge: [vm] memory: bad size 'huge' (use e.g. 512M "
			       "or 2G)\n");

	/* A bad kernel from --set is reported against the --set. */
	ck_assert_int_eq(load_text(BOOT, kernel, 1), -EINVAL);
	ck_assert_str_eq(errs, "--set boot.kernel=kdir: [boot] kernel: kdir: Is a directory\n");
}
END_TEST

START_TEST(test_error_messages)
{
	ck_assert_int_eq(load_text("[vm]\nfoo = 1\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] foo: unknown key\n");

	ck_assert_int_eq(load_text(BOOT "[vmm]\nmemory = 1G\nfoo = 2\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:3: [vmm]: unknown section\n");

	ck_assert_int_eq(load_text(BOOT "memory 1G\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:3: malformed line (expected key = value)\n");
	ck_assert_int_eq(load_text(BOOT "= 1G\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:3: malformed line (expected key = value)\n");
	ck_assert_int_eq(load_text(BOOT "mem ory = 1G\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:3: malformed line (expected key = value)\n");
	ck_assert_int_eq(load_text(BOOT "memory: 1G\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:3: malformed line (expected key = value)\n");

	ck_assert_int_eq(load_text(BOOT "[vm\nmemory = 1G\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:3: malformed section header (expected [name])\n");
	ck_assert_int_eq(load_text(BOOT "[vm] x\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:3: malformed section header (expected [name])\n");

	ck_assert_int_eq(load_text("memory = 1G\n" BOOT, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:1: memory: key outside of any [section]\n");

	ck_assert_int_eq(load_text("[boot]\nkernel = /x/y\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [boot] kernel: /x/y: No such file or directory\n");

	ck_assert_int_eq(load_text("[boot]\nkernel =\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [boot] kernel: empty path\n");

	/* [net.N] is not defined (yet); a disk's path must exist. */
	ck_assert_int_eq(load_text(BOOT "[disk.0]\npath = x\n[net.3]\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:5: [net.3]: unknown section\n"
			       "guest.cfg:4: [disk.0] path: x: No such file or directory\n");
	ck_assert_int_eq(load_text(BOOT "[vm.0]\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:3: [vm.0]: unknown section\n");
}
END_TEST

START_TEST(test_multiple_errors)
{
	ck_assert_int_eq(load_text("[vm]\n"
				   "memory = 12Q\n"
				   "foo = 1\n"
				   "vcpus = 2\n"
				   "vcpus = 3\n"
				   "junk\n"
				   "[vmm]\n"
				   "[boot]\n"
				   "initrd = nosuch.img\n"
				   "[console]\n"
				   "serial = file:nodir/out.log\n",
				   NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [vm] memory: bad size '12Q' (use e.g. 512M or 2G)\n"
			       "guest.cfg:3: [vm] foo: unknown key\n"
			       "guest.cfg:5: [vm] vcpus: duplicate key (first set on line 4)\n"
			       "guest.cfg:6: malformed line (expected key = value)\n"
			       "guest.cfg:7: [vmm]: unknown section\n"
			       "guest.cfg: [boot] kernel: required key missing\n"
			       "guest.cfg:9: [boot] initrd: nosuch.img: No such file or directory\n"
			       "guest.cfg:11: [console] serial: file:nodir/out.log: nodir: No such "
			       "file or directory\n");
	/* Nothing leaks out of a failed load. */
	ck_assert_ptr_null(cfg.kernel);
	ck_assert_ptr_null(cfg.initrd);
	ck_assert_ptr_null(cfg.cmdline);
	ck_assert_ptr_null(cfg.serial_path);
	ck_assert_ptr_null(cfg.path);
}
END_TEST

START_TEST(test_duplicate_and_missing)
{
	ck_assert_int_eq(load_text(BOOT "kernel = bzImage\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:3: [boot] kernel: duplicate key (first set on line 2)\n");

	/* A second [vm] header is fine; the key inside is still a duplicate. */
	ck_assert_int_eq(load_text("[vm]\nvcpus = 1\n" BOOT "[vm]\nvcpus = 2\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:6: [vm] vcpus: duplicate key (first set on line 2)\n");

	ck_assert_int_eq(load_text("[vm]\nvcpus = 2\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg: [boot] kernel: required key missing\n");

	ck_assert_int_eq(load_text("", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg: [boot] kernel: required key missing\n");
}
END_TEST

START_TEST(test_file_checks)
{
	ck_assert_int_eq(load_text("[boot]\nkernel = kdir\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [boot] kernel: kdir: Is a directory\n");

	ck_assert_int_eq(load_text("[boot]\nkernel = /dev/null\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:2: [boot] kernel: /dev/null: not a regular file\n");

	ck_assert_int_eq(load_text(BOOT "initrd = missing.img\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs,
			 "guest.cfg:3: [boot] initrd: missing.img: No such file or directory\n");

	/* A symlink to the kernel is fine and is stored as written. */
	ck_assert_int_eq(symlink("bzImage", "vmlinuz"), 0);
	ck_assert_int_eq(load_text("[boot]\nkernel = vmlinuz\n", NULL, 0), 0);
	ck_assert_str_eq(cfg.kernel, "vmlinuz");

	ck_assert_int_eq(load_text(BOOT "[console]\nserial = file:nodir/out.log\n", NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: [console] serial: file:nodir/out.log: nodir: No "
			       "such file or directory\n");
	ck_assert_int_eq(load_text(BOOT "[console]\nserial = file:bzImage/out.log\n", NULL, 0),
			 -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: [console] serial: file:bzImage/out.log: bzImage: Not "
			       "a directory\n");
	/* The log file itself need not exist yet. */
	ck_assert_int_eq(load_text(BOOT "[console]\nserial = file:out.log\n", NULL, 0), 0);
	ck_assert_int_eq(load_text(BOOT "[console]\nserial = file:/out.log\n", NULL, 0), 0);

	/* The config file itself. */
	ck_assert_int_eq(load_args("nosuch.cfg", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "nosuch.cfg: No such file or directory\n");
	ck_assert_ptr_null(cfg.cmdline);
	ck_assert_int_eq(load_args("kdir", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "kdir: Is a directory\n");
}
END_TEST

START_TEST(test_comments_and_quoting)
{
	ck_assert_int_eq(load_text("; comment\n"
				   "# comment\n"
				   "\n"
				   "   [ boot ]   ; header comment\n"
				   "\tkernel = bzImage   # trailing\n"
				   "  cmdline = a b ; comment\n",
				   NULL, 0),
			 0);
	ck_assert_str_eq(errs, "");
	ck_assert_str_eq(cfg.kernel, "bzImage");
	ck_assert_str_eq(cfg.cmdline, "a b");

	/* ';' and '#' not after whitespace are data. */
	ck_assert_int_eq(load_text(BOOT "cmdline = a;b c#d\n", NULL, 0), 0);
	ck_assert_str_eq(cfg.cmdline, "a;b c#d");

	ck_assert_int_eq(
	    load_text(BOOT "cmdline = \"  x ; y # z \\\"q\\\" \\\\ \\n \" ; c\n", NULL, 0), 0);
	ck_assert_str_eq(cfg.cmdline, "  x ; y # z \"q\" \\ \\n ");

	ck_assert_int_eq(load_text(BOOT "cmdline = \"\"\n", NULL, 0), 0);
	ck_assert_str_eq(cfg.cmdline, "");
	ck_assert_int_eq(load_text(BOOT "cmdline = ; nothing\n", NULL, 0), 0);
	ck_assert_str_eq(cfg.cmdline, "");
	ck_assert_int_eq(load_text(BOOT "cmdline = a \"b\" c\n", NULL, 0), 0);
	ck_assert_str_eq(cfg.cmdline, "a \"b\" c");

	ck_assert_int_eq(load_text(BOOT "cmdline = \"abc\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:3: [boot] cmdline: unterminated quoted value\n");
	ck_assert_int_eq(load_text(BOOT "cmdline = \"abc\" d\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs,
			 "guest.cfg:3: [boot] cmdline: unexpected text after closing quote\n");

	/* CRLF line endings, a UTF-8 BOM, no final newline. */
	ck_assert_int_eq(
	    load_text("\xef\xbb\xbf[vm]\r\nvcpus = 3\r\n[boot]\r\nkernel = bzImage", NULL, 0), 0);
	ck_assert_uint_eq(cfg.vcpus, 3);
	ck_assert_str_eq(cfg.kernel, "bzImage");

	/* No continuation lines: an indented line is a line of its own. */
	ck_assert_int_eq(load_text(BOOT "cmdline = a\n   b\n", NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: malformed line (expected key = value)\n");
}
END_TEST

START_TEST(test_long_lines)
{
	size_t n = 10000, i;
	char *text = malloc(n + 64);

	/* Longer than inih's line buffer: the reader hands inih only "key=". */
	ck_assert_ptr_nonnull(text);
	strcpy(text, BOOT "cmdline = ");
	for (i = strlen(text); i < n; i++)
		text[i] = 'a' + i % 26;
	strcpy(text + n, "\n[vm]\nvcpus = 5\nbad\n");
	ck_assert_int_eq(load_text(text, NULL, 0), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:6: malformed line (expected key = value)\n");
	strcpy(text + n, "\n[vm]\nvcpus = 5\n");
	ck_assert_int_eq(load_text(text, NULL, 0), 0);
	ck_assert_uint_eq(strlen(cfg.cmdline), n - strlen(BOOT "cmdline = "));
	ck_assert_uint_eq(cfg.vcpus, 5);
	free(text);
}
END_TEST

START_TEST(test_string_entry)
{
	static const char data[] = "[boot]\nkernel = bzImage\n\0junk\n[vm]\nvcpus=2\n";
	size_t len;
	FILE *err;

	err = open_memstream(&errs, &len);
	ck_assert_int_eq(config_load_string(&cfg, "mem.cfg", data, sizeof(data) - 1, NULL, 0, err),
			 -EINVAL);
	fclose(err);
	ck_assert_str_eq(errs, "mem.cfg:3: malformed line (NUL byte)\n");
}
END_TEST

START_TEST(test_dump_round_trip)
{
	char *text = NULL;
	struct vm_config first;

	ck_assert_int_eq(mkdir("my dir", 0755), 0);
	write_file("my dir/k;1", "k");
	ck_assert_int_eq(
	    load_text(
		"[vm]\nmemory = 1536M\nvcpus = 3\nnested = off\n"
		"on_reboot = restart\nvmgenid = off\nnotify = mmio\n[boot]\nkernel = \"my dir/k;1\"\n"
		"initrd = initrd.img\n"
		"cmdline = \" a \\\"b\\\" ; c\\\\ \"\n"
		"decompress = guest\n"
		"[console]\nserial = \"file:my dir/#log\"\n",
		NULL, 0),
	    0);
	text = dump_cfg();
	ck_assert_str_eq(text, "[vm]\n"
			       "memory = 1536M\n"
			       "vcpus = 3\n"
			       "nested = off\n"
			       "on_reboot = restart\n"
			       "pin = off\n"
			       "vmgenid = off\n"
			       "notify = mmio\n"
			       "\n"
			       "[boot]\n"
			       "kernel = \"my dir/k;1\"\n"
			       "initrd = initrd.img\n"
			       "cmdline = \" a \\\"b\\\" ; c\\\\ \"\n"
			       "decompress = guest\n"
			       "\n"
			       "[console]\n"
			       "serial = \"file:my dir/#log\"\n");

	first = cfg;
	memset(&cfg, 0, sizeof(cfg));
	ck_assert_int_eq(load_text(text, NULL, 0), 0);
	ck_assert_uint_eq(cfg.mem_size, first.mem_size);
	ck_assert_uint_eq(cfg.vcpus, first.vcpus);
	ck_assert_int_eq(cfg.nested, first.nested);
	ck_assert_int_eq(cfg.on_reboot, first.on_reboot);
	ck_assert_str_eq(cfg.kernel, first.kernel);
	ck_assert_str_eq(cfg.initrd, first.initrd);
	ck_assert_str_eq(cfg.cmdline, first.cmdline);
	ck_assert_int_eq(cfg.decompress, DECOMPRESS_GUEST);
	ck_assert_int_eq(cfg.decompress, first.decompress);
	ck_assert_int_eq(cfg.serial, first.serial);
	ck_assert_str_eq(cfg.serial_path, first.serial_path);
	config_free(&first);
	free(text);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_memory_values);
	tcase_add_test(tc, test_cpu_max);
	tcase_add_test(tc, test_bad_numbers_and_enums);
	tcase_add_test(tc, test_relative_paths);
	tcase_add_test(tc, test_overrides);
	tcase_add_test(tc, test_error_messages);
	tcase_add_test(tc, test_multiple_errors);
	tcase_add_test(tc, test_duplicate_and_missing);
	tcase_add_test(tc, test_file_checks);
	tcase_add_test(tc, test_comments_and_quoting);
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_string_entry);
	tcase_add_test(tc, test_dump_round_trip);
	tcase_add_test(tc, test_disks);
	tcase_add_test(tc, test_disk_backing);
	tcase_add_test(tc, test_rate_limits);
	tcase_add_test(tc, test_api_socket);
	tcase_add_test(tc, test_vsock);
	tcase_add_test(tc, test_balloon);
	tcase_add_test(tc, test_merge_key);
	tcase_add_test(tc, test_shares);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(config_suite());
}
