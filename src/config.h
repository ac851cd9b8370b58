/* SPDX-License-Identifier: GPL-2.0-or-later */
/* guest.cfg: the INI configuration of one VM. */
#ifndef MINIVMM_CONFIG_H
#define MINIVMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ratelimit.h"

enum nested_mode { NESTED_AUTO, NESTED_ON, NESTED_OFF };
enum reboot_action { REBOOT_EXIT, REBOOT_RESTART };

/* Where the virtio-pci driver writes a queue's notification (the kick). */
enum notify_mode { NOTIFY_PIO, NOTIFY_MMIO };
enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE, SERIAL_API };
enum decompress_mode { DECOMPRESS_HOST, DECOMPRESS_GUEST };

enum disk_format { DISK_RAW, DISK_QCOW2 };
enum disk_cache { DISK_CACHE_WRITEBACK, DISK_CACHE_NONE };

#define CONFIG_MAX_VCPUS     64
#define CONFIG_MAX_DISKS     16
#define CONFIG_MAX_QUEUES    64
#define DISK_SERIAL_MAX	     20 /* VIRTIO_BLK_ID_BYTES */
#define DISK_POLL_US_DEFAULT 32

/* [disk.N]; present when path is set. */
struct disk_config {
	char *path;
	enum disk_format format; /* raw|qcow2 */
	unsigned int readonly;	 /* on|off */
	enum disk_cache cache;	 /* writeback|none (O_DIRECT) */
	unsigned int queues;	 /* 0: auto (one per vCPU) */
	unsigned int iothreads;	 /* 0: per-queue */
	unsigned int pin;	 /* on: sets [vm] pin = on (the older spelling) */
	unsigned int backing;	 /* on|off: qcow2 may open its backing file (default off) */
	char *backing_dir;	 /* backing = on: every backing file of the chain lies in here */
	char **backing_trusted;	 /* not a key: frozen snapshot images a restore may open */
	unsigned int poll_us;	 /* I/O threads busy-poll the rings this long before sleeping */
	char *serial;		 /* NULL: none */
	struct rl_config rl;	 /* iops, bandwidth and their bursts; 0: unlimited */
};
/* [share.N]: a host directory over virtio-fs; present when path is set. */
#define CONFIG_MAX_SHARES	 8
#define SHARE_TAG_MAX		 35 /* bytes; the device's field is 36 */
#define SHARE_DAX_WINDOW_DEFAULT (1ULL << 30)
#define SHARE_DAX_WINDOW_MAX	 (32ULL << 30) /* the PCI 64-bit window is 64 GiB */
/* max_fds = auto: at most this many, within what RLIMIT_NOFILE leaves (src/fs/budget.c) */
#define SHARE_MAX_FDS_AUTO 65536
enum share_dax { SHARE_DAX_INODE, SHARE_DAX_ALWAYS, SHARE_DAX_NEVER };
enum share_cache { SHARE_CACHE_AUTO, SHARE_CACHE_ALWAYS, SHARE_CACHE_NONE };
struct share_idmap {
	uint32_t guest, host, count; /* count 0: identity */
};
struct share_config {
	char *path;			     /* the directory the guest sees as its root */
	char *tag;			     /* NULL: "share<N>" */
	unsigned int readonly;		     /* on|off, enforced on the host */
	enum share_dax dax;		     /* inode|always|never */
	uint64_t dax_window;		     /* bytes, multiple of 2 MiB; 0 only with dax = never */
	enum share_cache cache;		     /* auto|always|none */
	unsigned int xattr;		     /* on|off */
	struct share_idmap uid_map, gid_map; /* "GUEST:HOST:COUNT" */
	unsigned int max_fds;		     /* host descriptors the share may hold; 0: auto */
	unsigned int allow_devices;	     /* on|off: the guest may make device nodes */
	unsigned int allow_setid;	     /* on|off: set-uid/set-gid bits kept */
	unsigned int allow_priv_xattr;	     /* on|off: security.*, trusted.* xattrs */
	struct rl_config rl;		     /* iops, bandwidth and their bursts; 0: unlimited */
};

#define CONFIG_MIN_MEMORY (16ULL << 20)
#define CONFIG_MAX_MEMORY (1ULL << 40)

/* [console] max_size default: what a serial = file: console may write. */
#define SERIAL_MAX_SIZE_DEFAULT (64ULL << 20)

/*
 * [sandbox] seccomp default: on (1). Sanitizer builds (make SAN=1) default to log (2):
 * the sanitizer runtime's own calls, LeakSanitizer's at-exit tracer above all, vary with
 * its version and options, and a denial there ended in a hang instead of a clean stop.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SECCOMP_DEFAULT 2
#else
#define SANDBOX_SECCOMP_DEFAULT 1
#endif

/* [sandbox] (docs/sandbox.md) */
struct sandbox_config {
	unsigned int seccomp;  /* off|on|log: SANDBOX_SECCOMP_* */
	char *jail;	       /* the directory the jail's root is built on; NULL: no jail */
	unsigned int uid, gid; /* the jail's user and group; 0: the jail directory's owner */
	char *cgroup_parent;   /* where the jail's cgroup is made; NULL: minivmm's own */
	uint64_t memory_max;   /* memory.max, bytes; 0: none */
	char *cpu_max;	       /* cpu.max, "QUOTA PERIOD"; NULL: none */
	unsigned int pids_max; /* pids.max; 0: none */
};

/* [vsock] (docs/vsock.md) */
struct vsock_config {
	unsigned int cid; /* the guest's CID; 0: no vsock device */
	char *socket;	  /* the host side's Unix socket (required with cid) */
};

/* [balloon] (docs/balloon.md): the section itself adds the device. */
struct balloon_config {
	bool present;
	unsigned int free_page_reporting; /* on (1, default) / off */
	unsigned int deflate_on_oom;	  /* on (1, default) / off */
	unsigned int stats_s;		  /* statistics every N s; 0: when asked (API) */
};

struct vm_config {
	char *path;			 /* the config file as given, NULL when none */
	uint64_t mem_size;		 /* [vm] memory, bytes */
	unsigned int vcpus;		 /* [vm] vcpus */
	enum nested_mode nested;	 /* [vm] nested */
	enum reboot_action on_reboot;	 /* [vm] on_reboot = exit|restart */
	unsigned int pin;		 /* [vm] pin: vCPU i and I/O threads i on host CPU i */
	unsigned int merge;		 /* [vm] merge: KSM may merge guest pages (off) */
	enum notify_mode notify;	 /* [vm] notify = pio|mmio: virtio queue notifications */
	unsigned int vmgenid;		 /* [vm] vmgenid: VM generation ID device (on) */
	unsigned int rng;		 /* [vm] rng: a virtio-rng device (off) */
	char *kernel;			 /* [boot] kernel, absolute or cwd-relative */
	char *initrd;			 /* [boot] initrd, NULL when none */
	char *cmdline;			 /* [boot] cmdline */
	enum decompress_mode decompress; /* [boot] decompress = host|guest */
	enum serial_mode serial;	 /* [console] serial */
	char *serial_path;		 /* for SERIAL_FILE */
	uint64_t serial_max;		 /* [console] max_size: bytes for SERIAL_FILE, 0: no cap */
	char *api_socket;		 /* [api] socket, NULL when none */
	struct disk_config disks[CONFIG_MAX_DISKS];
	struct share_config shares[CONFIG_MAX_SHARES];
	struct sandbox_config sandbox;
	struct vsock_config vsock;
	struct balloon_config balloon;
};

/*
 * Parse the INI file at @path (may be NULL: defaults plus overrides only),
 * then apply @n_overrides "section.key=value" strings in order, then validate
 * (required keys, files exist). Relative paths resolve against the directory
 * of @path (overrides: against the current directory).
 *
 * On error, prints one line per problem to @err as
 *   "<file>:<line>: [section] key: reason" (or "--set <arg>: reason")
 * and returns -EINVAL; the caller exits with status 2. Returns 0 on success.
 */
int config_load(struct vm_config *cfg, const char *path, char *const *overrides, int n_overrides,
		FILE *err);

/* Defaults only (no file). */
void config_init(struct vm_config *cfg);

void config_free(struct vm_config *cfg);

/* "512M", "2G", "1048576", "64K", "1T" -> bytes. -EINVAL on junk or overflow. */
int config_parse_size(const char *s, uint64_t *out);

/*
 * Like config_load(), but the file content is @data (@len bytes, need not be
 * NUL-terminated; NULL: no file). @name is used in messages and, like the
 * path in config_load(), as the base for relative paths.
 * Both initialise @cfg themselves; on failure it holds no allocations, on
 * success release it with config_free() (which is idempotent).
 */
int config_load_string(struct vm_config *cfg, const char *name, const char *data, size_t len,
		       char *const *overrides, int n_overrides, FILE *err);

/* The tag [share.@idx] is mounted by: its tag, else "share<idx>" (in @buf). */
const char *config_share_tag(const struct vm_config *cfg, unsigned int idx, char *buf, size_t size);

/* Print the effective configuration as a guest.cfg that loads back the same. */
void config_dump(const struct vm_config *cfg, FILE *out);

#endif
