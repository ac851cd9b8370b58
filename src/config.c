// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * guest.cfg: INI parsing on top of inih, driven by one table of settings.
 *
 * What inih does depends on how the library was built: whether the handler
 * gets line numbers (Debian's build: no), inline comments, multi-line values,
 * the maximum line length. So our reader hands inih one normalised line per
 * physical line -- "[section]", "key=" or an empty line -- after doing the
 * lexical checks itself. inih calls the handler right after reading a line,
 * so the reader's line counter is the line of each handler call, and the
 * handler takes the raw value text from the reader state, not from inih.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"

#define CONFIG_MAX_FILE (1 << 20)
#define MAX_INSTANCES	16 /* [disk.0] .. [disk.15] */
#define SIZE_ALIGN	4096ULL
#define DEFAULT_MEMORY	(256ULL << 20)
#define DEFAULT_CMDLINE "console=ttyS0"

/* Enum fields are stored through an unsigned int pointer. */
_Static_assert(sizeof(enum nested_mode) == sizeof(unsigned int), "enum size");
_Static_assert(sizeof(enum reboot_action) == sizeof(unsigned int), "enum size");
_Static_assert(sizeof(enum serial_mode) == sizeof(unsigned int), "enum size");
_Static_assert(sizeof(enum share_dax) == sizeof(unsigned int), "enum size");
_Static_assert(sizeof(enum share_cache) == sizeof(unsigned int), "enum size");
_Static_assert(sizeof(enum notify_mode) == sizeof(unsigned int), "enum size");

struct parse_ctx;
struct setting;

/* Store @val into @field; on a bad value return -EINVAL with *why set. */
typedef int (*parse_fn)(struct parse_ctx *ctx, const struct setting *s, void *field,
			const char *val, char **why);
/* Cross-checks once every source is applied (files exist, ...). */
typedef int (*check_fn)(struct parse_ctx *ctx, const struct setting *s, const void *field,
			char **why);

struct section_desc {
	const char *name;
	unsigned int count; /* 0: plain [name]; else [name.0] .. [name.<count-1>] */
	size_t stride;	    /* offset between instances in struct vm_config */
};

enum {
	SEC_VM,
	SEC_BOOT,
	SEC_CONSOLE,
	SEC_DISK,
	SEC_SHARE,
	SEC_API,
	SEC_SANDBOX,
	SEC_VSOCK,
	SEC_BALLOON,
	N_SECTIONS
};

static const struct section_desc sections[N_SECTIONS] = {
	[SEC_VM] = { .name = "vm" },
	[SEC_BOOT] = { .name = "boot" },
	[SEC_CONSOLE] = { .name = "console" },
	[SEC_API] = { .name = "api" },
	[SEC_SANDBOX] = { .name = "sandbox" },
	[SEC_VSOCK] = { .name = "vsock" },
	[SEC_BALLOON] = { .name = "balloon" },
	/* Indexed: settings use offsetof(struct vm_config, disks[0].field). */
	[SEC_DISK] = { .name = "disk",
		       .count = CONFIG_MAX_DISKS,
		       .stride = sizeof(struct disk_config) },
	[SEC_SHARE] = { .name = "share",
			.count = CONFIG_MAX_SHARES,
			.stride = sizeof(struct share_config) },
};
_Static_assert(CONFIG_MAX_DISKS <= MAX_INSTANCES, "instances");
_Static_assert(CONFIG_MAX_SHARES <= MAX_INSTANCES, "instances");

#define S_REQUIRED 1u /* must be set (in every instance that appears) */
#define S_EMPTY_OK 2u /* "" is allowed and means unset/empty */
#define S_IF_SET   4u /* config_dump: only when not the default (limits, optional ids) */

struct setting {
	int section;
	const char *key;
	parse_fn parse;
	size_t offset; /* of the field of instance 0 */
	unsigned int flags;
	uint64_t min, max;	  /* numbers and sizes */
	const char *const *names; /* enums, indexed by value, NULL-terminated */
	check_fn check;
};

/* Where a value came from, for messages. */
struct origin {
	int line;	 /* > 0: line in the config file */
	const char *set; /* else the --set argument, when not NULL */
};

struct parse_ctx {
	struct vm_config *cfg;
	FILE *err;
	const char *file;      /* for messages; NULL when there is no file */
	char *base;	       /* prefix for relative paths in the file, "dir/"; NULL: cwd */
	bool in_file;	       /* parsing the file (not overrides) */
	const char *pos, *end; /* reader: unread input */
	int lineno;
	bool in_section, section_ok;
	const char *raw; /* value text of the current "key = value" line */
	size_t raw_len;
	int errors;
	bool nomem;
	struct origin seen[]; /* [setting][instance]; .line or .set set when seen */
};

static int parse_memory(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int parse_uint(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int parse_enum(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int parse_path(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int parse_string(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int parse_serial(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int parse_auto_uint(struct parse_ctx *, const struct setting *, void *, const char *,
			   char **);
static int parse_disk_serial(struct parse_ctx *, const struct setting *, void *, const char *,
			     char **);
static int check_file(struct parse_ctx *, const struct setting *, const void *, char **);
static int check_disk(struct parse_ctx *, const struct setting *, const void *, char **);
static int check_backing(struct parse_ctx *, const struct setting *, const void *, char **);
static int check_dir(struct parse_ctx *, const struct setting *, const void *, char **);
static int check_serial(struct parse_ctx *, const struct setting *, const void *, char **);
static int check_api_socket(struct parse_ctx *, const struct setting *, const void *, char **);
static int parse_bytes(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int parse_rate(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int check_burst(struct parse_ctx *, const struct setting *, const void *, char **);
static int parse_cpu_max(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int parse_share_tag(struct parse_ctx *, const struct setting *, void *, const char *,
			   char **);
static int parse_window(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int parse_idmap(struct parse_ctx *, const struct setting *, void *, const char *, char **);
static int check_share_dir(struct parse_ctx *, const struct setting *, const void *, char **);
static int check_share_tag(struct parse_ctx *, const struct setting *, const void *, char **);
static int check_share_window(struct parse_ctx *, const struct setting *, const void *, char **);
static int check_vsock(struct parse_ctx *, const struct setting *, const void *, char **);

static const char *const nested_names[] = {
	[NESTED_AUTO] = "auto", [NESTED_ON] = "on", [NESTED_OFF] = "off", NULL
};
static const char *const decompress_names[] = {
	[DECOMPRESS_HOST] = "host", [DECOMPRESS_GUEST] = "guest", NULL
};
static const char *const reboot_names[] = {
	[REBOOT_EXIT] = "exit", [REBOOT_RESTART] = "restart", NULL
};

static const char *const notify_names[] = { [NOTIFY_PIO] = "pio", [NOTIFY_MMIO] = "mmio", NULL };
static const char *const onoff_names[] = { "off", "on", NULL };
static const char *const format_names[] = { [DISK_RAW] = "raw", [DISK_QCOW2] = "qcow2", NULL };
static const char *const cache_names[] = {
	[DISK_CACHE_WRITEBACK] = "writeback", [DISK_CACHE_NONE] = "none", NULL
};
/* The word that means 0 for parse_auto_uint. */
static const char *const queues_auto[] = { "auto", NULL };
static const char *const seccomp_names[] = { "off", "on", "log", NULL };
static const char *const iothreads_auto[] = { "per-queue", NULL };
/* parse_rate: a size (bytes per second), not a plain number. */
static const char *const rate_size[] = { "size", NULL };
static const char *const share_dax_names[] = { [SHARE_DAX_INODE] = "inode",
					       [SHARE_DAX_ALWAYS] = "always",
					       [SHARE_DAX_NEVER] = "never",
					       NULL };
static const char *const share_cache_names[] = { [SHARE_CACHE_AUTO] = "auto",
						 [SHARE_CACHE_ALWAYS] = "always",
						 [SHARE_CACHE_NONE] = "none",
						 NULL };

#define F(field)  offsetof(struct vm_config, field)
#define D(field)  offsetof(struct vm_config, disks[0].field)
#define SH(field) offsetof(struct vm_config, shares[0].field)

/*
 * The rate limit (struct rl_config rl) that [disk.N] and [share.N] both take:
 * the same four keys with the same checks, in section @sec, at @OFF(rl...).
 */
/* clang-format off */
#define RATE_LIMIT_SETTINGS(sec, OFF)		\
	{ .section = (sec),			\
	  .key = "iops",			\
	  .flags = S_IF_SET,			\
	  .parse = parse_rate,			\
	  .offset = OFF(rl.iops),		\
	  .max = RL_RATE_MAX },			\
	{ .section = (sec),			\
	  .key = "iops_burst",			\
	  .flags = S_IF_SET,			\
	  .parse = parse_rate,			\
	  .offset = OFF(rl.iops_burst),		\
	  .max = RL_RATE_MAX,			\
	  .check = check_burst },		\
	{ .section = (sec),			\
	  .key = "bandwidth",			\
	  .flags = S_IF_SET,			\
	  .parse = parse_rate,			\
	  .offset = OFF(rl.bandwidth),		\
	  .max = RL_RATE_MAX,			\
	  .names = rate_size },			\
	{ .section = (sec),			\
	  .key = "bandwidth_burst",		\
	  .flags = S_IF_SET,			\
	  .parse = parse_rate,			\
	  .offset = OFF(rl.bandwidth_burst),	\
	  .max = RL_RATE_MAX,			\
	  .check = check_burst,			\
	  .names = rate_size }
/* clang-format on */

/* clang-format off: one row per setting reads better than one field per line */
static const struct setting settings[] = {
	{ .section = SEC_VM,
	  .key = "memory",
	  .parse = parse_memory,
	  .offset = F(mem_size),
	  .min = CONFIG_MIN_MEMORY,
	  .max = CONFIG_MAX_MEMORY },
	{ .section = SEC_VM,
	  .key = "vcpus",
	  .parse = parse_uint,
	  .offset = F(vcpus),
	  .min = 1,
	  .max = CONFIG_MAX_VCPUS },
	{ .section = SEC_VM,
	  .key = "nested",
	  .parse = parse_enum,
	  .offset = F(nested),
	  .names = nested_names },
	{ .section = SEC_VM,
	  .key = "on_reboot",
	  .parse = parse_enum,
	  .offset = F(on_reboot),
	  .names = reboot_names },
	{ .section = SEC_VM,
	  .key = "pin",
	  .parse = parse_enum,
	  .offset = F(pin),
	  .names = onoff_names },
	{ .section = SEC_VM,
	  .key = "merge",
	  .parse = parse_enum,
	  .offset = F(merge),
	  .flags = S_IF_SET,
	  .names = onoff_names },
	{ .section = SEC_VM,
	  .key = "vmgenid",
	  .parse = parse_enum,
	  .offset = F(vmgenid),
	  .names = onoff_names },
	{ .section = SEC_VM,
	  .key = "rng",
	  .parse = parse_enum,
	  .offset = F(rng),
	  .flags = S_IF_SET,
	  .names = onoff_names },
	{ .section = SEC_VM,
	  .key = "notify",
	  .parse = parse_enum,
	  .offset = F(notify),
	  .names = notify_names },
	{ .section = SEC_BOOT,
	  .key = "kernel",
	  .parse = parse_path,
	  .offset = F(kernel),
	  .flags = S_REQUIRED,
	  .check = check_file },
	{ .section = SEC_BOOT,
	  .key = "initrd",
	  .parse = parse_path,
	  .offset = F(initrd),
	  .flags = S_EMPTY_OK,
	  .check = check_file },
	{ .section = SEC_BOOT,
	  .key = "cmdline",
	  .parse = parse_string,
	  .offset = F(cmdline),
	  .flags = S_EMPTY_OK },
	{ .section = SEC_BOOT,
	  .key = "decompress",
	  .parse = parse_enum,
	  .offset = F(decompress),
	  .names = decompress_names },
	{ .section = SEC_CONSOLE,
	  .key = "serial",
	  .parse = parse_serial,
	  .offset = F(serial),
	  .check = check_serial },
	{ .section = SEC_CONSOLE,
	  .key = "max_size",
	  .flags = S_IF_SET,
	  .parse = parse_bytes,
	  .offset = F(serial_max),
	  .max = 1ULL << 50 },
	{ .section = SEC_API,
	  .key = "socket",
	  .parse = parse_path,
	  .offset = F(api_socket),
	  .flags = S_EMPTY_OK,
	  .check = check_api_socket },
	{ .section = SEC_DISK,
	  .key = "path",
	  .parse = parse_path,
	  .offset = D(path),
	  .flags = S_REQUIRED,
	  .check = check_disk },
	{ .section = SEC_DISK,
	  .key = "format",
	  .parse = parse_enum,
	  .offset = D(format),
	  .names = format_names },
	{ .section = SEC_DISK,
	  .key = "readonly",
	  .parse = parse_enum,
	  .offset = D(readonly),
	  .names = onoff_names },
	{ .section = SEC_DISK,
	  .key = "cache",
	  .parse = parse_enum,
	  .offset = D(cache),
	  .names = cache_names },
	{ .section = SEC_DISK,
	  .key = "queues",
	  .parse = parse_auto_uint,
	  .offset = D(queues),
	  .min = 1,
	  .max = CONFIG_MAX_QUEUES,
	  .names = queues_auto },
	{ .section = SEC_DISK,
	  .key = "iothreads",
	  .parse = parse_auto_uint,
	  .offset = D(iothreads),
	  .min = 1,
	  .max = CONFIG_MAX_QUEUES,
	  .names = iothreads_auto },
	{ .section = SEC_DISK,
	  .key = "pin", /* an alias of [vm] pin = on */
	  .flags = S_IF_SET,
	  .parse = parse_enum,
	  .offset = D(pin),
	  .names = onoff_names },
	{ .section = SEC_DISK,
	  .key = "backing",
	  .parse = parse_enum,
	  .offset = D(backing),
	  .names = onoff_names,
	  .check = check_backing },
	{ .section = SEC_DISK,
	  .key = "backing_dir",
	  .parse = parse_path,
	  .offset = D(backing_dir),
	  .check = check_dir },
	{ .section = SEC_DISK,
	  .key = "serial",
	  .parse = parse_disk_serial,
	  .offset = D(serial),
	  .flags = S_EMPTY_OK },
	{ .section = SEC_DISK,
	  .key = "poll_us",
	  .parse = parse_uint,
	  .offset = D(poll_us),
	  .min = 0,
	  .max = 1000000 },
	RATE_LIMIT_SETTINGS(SEC_DISK, D),
	{ .section = SEC_SHARE,
	  .key = "path",
	  .parse = parse_path,
	  .offset = SH(path),
	  .flags = S_REQUIRED,
	  .check = check_share_dir },
	{ .section = SEC_SHARE,
	  .key = "tag",
	  .parse = parse_share_tag,
	  .offset = SH(tag),
	  .check = check_share_tag },
	{ .section = SEC_SHARE,
	  .key = "readonly",
	  .parse = parse_enum,
	  .offset = SH(readonly),
	  .names = onoff_names },
	{ .section = SEC_SHARE,
	  .key = "dax",
	  .parse = parse_enum,
	  .offset = SH(dax),
	  .names = share_dax_names },
	{ .section = SEC_SHARE,
	  .key = "dax_window",
	  .parse = parse_window,
	  .offset = SH(dax_window),
	  .max = SHARE_DAX_WINDOW_MAX,
	  .check = check_share_window },
	{ .section = SEC_SHARE,
	  .key = "cache",
	  .parse = parse_enum,
	  .offset = SH(cache),
	  .names = share_cache_names },
	{ .section = SEC_SHARE,
	  .key = "xattr",
	  .parse = parse_enum,
	  .offset = SH(xattr),
	  .names = onoff_names },
	{ .section = SEC_SHARE,
	  .key = "uid_map",
	  .parse = parse_idmap,
	  .offset = SH(uid_map),
	  .flags = S_IF_SET },
	{ .section = SEC_SHARE,
	  .key = "gid_map",
	  .parse = parse_idmap,
	  .offset = SH(gid_map),
	  .flags = S_IF_SET },
	{ .section = SEC_SHARE,
	  .key = "max_fds",
	  .parse = parse_auto_uint,
	  .offset = SH(max_fds),
	  .min = 16,
	  .max = 1U << 20,
	  .names = queues_auto },
	{ .section = SEC_SHARE,
	  .key = "allow_devices",
	  .parse = parse_enum,
	  .offset = SH(allow_devices),
	  .names = onoff_names },
	{ .section = SEC_SHARE,
	  .key = "allow_setid",
	  .parse = parse_enum,
	  .offset = SH(allow_setid),
	  .names = onoff_names },
	{ .section = SEC_SHARE,
	  .key = "allow_priv_xattr",
	  .parse = parse_enum,
	  .offset = SH(allow_priv_xattr),
	  .names = onoff_names },
	RATE_LIMIT_SETTINGS(SEC_SHARE, SH),
	{ .section = SEC_SANDBOX,
	  .key = "seccomp",
	  .flags = S_IF_SET,
	  .parse = parse_enum,
	  .offset = F(sandbox.seccomp),
	  .names = seccomp_names },
	{ .section = SEC_SANDBOX,
	  .key = "jail",
	  .parse = parse_path,
	  .offset = F(sandbox.jail),
	  .flags = S_EMPTY_OK,
	  .check = check_dir },
	{ .section = SEC_SANDBOX,
	  .key = "uid",
	  .flags = S_IF_SET,
	  .parse = parse_auto_uint,
	  .offset = F(sandbox.uid),
	  .min = 1,
	  .max = 4294967294U,
	  .names = queues_auto },
	{ .section = SEC_SANDBOX,
	  .key = "gid",
	  .flags = S_IF_SET,
	  .parse = parse_auto_uint,
	  .offset = F(sandbox.gid),
	  .min = 1,
	  .max = 4294967294U,
	  .names = queues_auto },
	{ .section = SEC_SANDBOX,
	  .key = "cgroup_parent",
	  .parse = parse_path,
	  .offset = F(sandbox.cgroup_parent),
	  .flags = S_EMPTY_OK,
	  .check = check_dir },
	{ .section = SEC_SANDBOX,
	  .key = "memory_max",
	  .parse = parse_bytes,
	  .offset = F(sandbox.memory_max),
	  .flags = S_EMPTY_OK | S_IF_SET,
	  .min = 1ULL << 20,
	  .max = 1ULL << 50 },
	{ .section = SEC_SANDBOX,
	  .key = "cpu_max",
	  .parse = parse_cpu_max,
	  .offset = F(sandbox.cpu_max) },
	{ .section = SEC_SANDBOX,
	  .key = "pids_max",
	  .parse = parse_uint,
	  .offset = F(sandbox.pids_max),
	  .flags = S_EMPTY_OK | S_IF_SET,
	  .min = 8,
	  .max = 4194304 },
	{ .section = SEC_VSOCK,
	  .key = "cid",
	  .parse = parse_uint,
	  .offset = F(vsock.cid),
	  .flags = S_IF_SET,
	  .min = 3,
	  .max = 4294967294U,
	  .check = check_vsock },
	{ .section = SEC_VSOCK,
	  .key = "socket",
	  .parse = parse_path,
	  .offset = F(vsock.socket),
	  .check = check_api_socket },
	{ .section = SEC_BALLOON,
	  .key = "free_page_reporting",
	  .parse = parse_enum,
	  .offset = F(balloon.free_page_reporting),
	  .names = onoff_names },
	{ .section = SEC_BALLOON,
	  .key = "deflate_on_oom",
	  .parse = parse_enum,
	  .offset = F(balloon.deflate_on_oom),
	  .names = onoff_names },
	{ .section = SEC_BALLOON,
	  .key = "stats_s",
	  .parse = parse_uint,
	  .offset = F(balloon.stats_s),
	  .max = 3600 },
};
/* clang-format on */

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static struct origin *seen(struct parse_ctx *ctx, const struct setting *s, unsigned int idx)
{
	return &ctx->seen[(size_t)(s - settings) * MAX_INSTANCES + idx];
}

static void *field_of(struct vm_config *cfg, const struct setting *s, unsigned int idx)
{
	return (char *)cfg + s->offset + idx * sections[s->section].stride;
}

static unsigned int instances(int sec)
{
	return sections[sec].count ? sections[sec].count : 1;
}

/* "vm" or "disk.3", for messages. */
static void section_name(char *buf, size_t size, int sec, unsigned int idx)
{
	if (sections[sec].count)
		snprintf(buf, size, "%s.%u", sections[sec].name, idx);
	else
		snprintf(buf, size, "%s", sections[sec].name);
}

static int __attribute__((format(printf, 2, 3))) failf(char **why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(why, fmt, ap) < 0)
		*why = NULL;
	va_end(ap);
	return -EINVAL;
}

static void __attribute__((format(printf, 5, 6)))
report(struct parse_ctx *ctx, const struct origin *o, const char *section, const char *key,
       const char *fmt, ...)
{
	va_list ap;

	ctx->errors++;
	if (o && o->set)
		fprintf(ctx->err, "--set %s: ", o->set);
	else if (o && o->line > 0)
		fprintf(ctx->err, "%s:%d: ", ctx->file ? ctx->file : "<config>", o->line);
	else if (ctx->file)
		fprintf(ctx->err, "%s: ", ctx->file);
	if (section && key)
		fprintf(ctx->err, "[%s] %s: ", section, key);
	else if (section)
		fprintf(ctx->err, "[%s]: ", section);
	else if (key)
		fprintf(ctx->err, "%s: ", key);
	va_start(ap, fmt);
	vfprintf(ctx->err, fmt, ap);
	va_end(ap);
	fputc('\n', ctx->err);
}

/* A reason from a parser or checker; NULL means vasprintf ran out of memory. */
static void report_why(struct parse_ctx *ctx, const struct origin *o, const char *section,
		       const char *key, char *why)
{
	report(ctx, o, section, key, "%s", why ? why : "out of memory");
	free(why);
}

/* "vm" -> SEC_VM/0, "disk.3" -> SEC_DISK/3. */
static int lookup_section(const char *name, int *sec, unsigned int *idx, char **why)
{
	const char *dot = strchr(name, '.');
	size_t len = dot ? (size_t)(dot - name) : strlen(name);
	unsigned long n;
	char *end;
	int i;

	for (i = 0; i < N_SECTIONS; i++) {
		const struct section_desc *d = &sections[i];

		if (strlen(d->name) != len || strncmp(d->name, name, len))
			continue;
		if (!d->count) {
			if (dot)
				break;
			*sec = i;
			*idx = 0;
			return 0;
		}
		if (!dot)
			return failf(why, "missing instance number (use [%s.N], N = 0..%u)",
				     d->name, d->count - 1);
		/* Plain decimal: "01", "+1", " 1" would alias other names. */
		if (!isdigit((unsigned char)dot[1]) || (dot[1] == '0' && dot[2]))
			return failf(why, "bad instance number (use [%s.N], N = 0..%u)", d->name,
				     d->count - 1);
		errno = 0;
		n = strtoul(dot + 1, &end, 10);
		if (*end || errno || n >= d->count)
			return failf(why, "bad instance number (use [%s.N], N = 0..%u)", d->name,
				     d->count - 1);
		*sec = i;
		*idx = n;
		return 0;
	}
	return failf(why, "unknown section");
}

static const struct setting *lookup_key(int sec, const char *key)
{
	size_t i;

	for (i = 0; i < N_SETTINGS; i++)
		if (settings[i].section == sec && !strcmp(settings[i].key, key))
			return &settings[i];
	return NULL;
}

/* "dir/" + @path unless @path is absolute or there is no base. */
static char *resolve(struct parse_ctx *ctx, const char *path)
{
	char *out;

	if (path[0] == '/' || !ctx->in_file || !ctx->base)
		return strdup(path);
	if (asprintf(&out, "%s%s", ctx->base, path) < 0)
		return NULL;
	return out;
}

int config_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	const char *p = s, *u;
	uint64_t v = 0;
	unsigned int shift = 0;

	if (!s || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned int d = *p - '0';

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (*p && (u = strchr(units, toupper((unsigned char)*p)))) {
		shift = 10 * (unsigned int)(u - units + 1);
		p++;
		if (*p == 'i' && p[1] == 'B') /* "MiB" */
			p++;
	}
	if (*p == 'B') /* "MB", "MiB", "4096B" */
		p++;
	if (*p)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* 512M, 2G, ...: the largest unit that is exact. */
static void format_size(char *buf, size_t size, uint64_t v)
{
	static const char units[] = "TGMK";
	unsigned int i;

	for (i = 0; i < 4; i++) {
		unsigned int shift = 10 * (4 - i);

		if (v && !(v & ((1ULL << shift) - 1))) {
			snprintf(buf, size, "%llu%c", (unsigned long long)(v >> shift), units[i]);
			return;
		}
	}
	snprintf(buf, size, "%llu", (unsigned long long)v);
}

static int parse_memory(struct parse_ctx *ctx, const struct setting *s, void *field,
			const char *val, char **why)
{
	char lo[32], hi[32];
	uint64_t v;

	(void)ctx;
	if (config_parse_size(val, &v))
		return failf(why, "bad size '%s' (use e.g. 512M or 2G)", val);
	if (v < s->min || v > s->max) {
		format_size(lo, sizeof(lo), s->min);
		format_size(hi, sizeof(hi), s->max);
		return failf(why, "%s out of range (%s..%s)", val, lo, hi);
	}
	if (v % SIZE_ALIGN)
		return failf(why, "%s is not a multiple of 4K", val);
	*(uint64_t *)field = v;
	return 0;
}

static int parse_uint(struct parse_ctx *ctx, const struct setting *s, void *field, const char *val,
		      char **why)
{
	unsigned long long v;
	char *end;

	(void)ctx;
	if (!*val && (s->flags & S_EMPTY_OK)) {
		*(unsigned int *)field = 0; /* unset */
		return 0;
	}
	errno = 0;
	v = strtoull(val, &end, 10);
	if (!isdigit((unsigned char)*val) || *end || errno)
		return failf(why, "bad number '%s'", val);
	if (v < s->min || v > s->max)
		return failf(why, "%s out of range (%llu..%llu)", val, (unsigned long long)s->min,
			     (unsigned long long)s->max);
	*(unsigned int *)field = v;
	return 0;
}

/* "auto" (names[0]) for 0, else a number in [min, max]. */
static int parse_auto_uint(struct parse_ctx *ctx, const struct setting *s, void *field,
			   const char *val, char **why)
{
	if (!strcmp(val, s->names[0])) {
		*(unsigned int *)field = 0;
		return 0;
	}
	if (!isdigit((unsigned char)*val))
		return failf(why, "bad value '%s' (expected %s or a number)", val, s->names[0]);
	return parse_uint(ctx, s, field, val, why);
}

/* A byte count with an optional K/M/G/T suffix, in [min, max]. */
static int parse_bytes(struct parse_ctx *ctx, const struct setting *s, void *field, const char *val,
		       char **why)
{
	uint64_t v;

	(void)ctx;
	if (!*val && (s->flags & S_EMPTY_OK)) {
		*(uint64_t *)field = 0; /* unset */
		return 0;
	}
	if (config_parse_size(val, &v))
		return failf(why, "bad size '%s' (use e.g. 64M or 1G)", val);
	if (v < s->min || v > s->max)
		return failf(why, "%s out of range", val);
	*(uint64_t *)field = v;
	return 0;
}

/*
 * iops, bandwidth and their bursts: a uint64_t in [0, max], 0 unlimited (the
 * rates) or the default (the bursts). Bandwidths (names set) take sizes.
 */
static int parse_rate(struct parse_ctx *ctx, const struct setting *s, void *field, const char *val,
		      char **why)
{
	unsigned long long n;
	char hi[32], *end;
	uint64_t v;

	(void)ctx;
	if (s->names) {
		if (config_parse_size(val, &v))
			return failf(why, "bad size '%s' (bytes per second, e.g. 50M or 1G)", val);
		format_size(hi, sizeof(hi), s->max);
	} else {
		errno = 0;
		n = strtoull(val, &end, 10);
		if (!isdigit((unsigned char)*val) || *end || errno)
			return failf(why, "bad number '%s'", val);
		v = n;
		snprintf(hi, sizeof(hi), "%llu", (unsigned long long)s->max);
	}
	if (v > s->max)
		return failf(why, "%s out of range (0..%s)", val, hi);
	*(uint64_t *)field = v;
	return 0;
}

/* A burst without its rate would limit nothing: say so rather than ignore it. */
static int check_burst(struct parse_ctx *ctx, const struct setting *s, const void *field,
		       char **why)
{
	bool ops = !strcmp(s->key, "iops_burst");
	const struct rl_config *rl =
	    (const void *)((const char *)field -
			   (ops ? offsetof(struct rl_config, iops_burst)
				: offsetof(struct rl_config, bandwidth_burst)));

	(void)ctx;
	if (*(const uint64_t *)field && !(ops ? rl->iops : rl->bandwidth))
		return failf(why, "has no effect without %s", ops ? "iops" : "bandwidth");
	return 0;
}

/* cpu.max: "QUOTA [PERIOD]" in microseconds, QUOTA a number or "max", PERIOD 1000..1000000. */
static int parse_cpu_max(struct parse_ctx *ctx, const struct setting *s, void *field,
			 const char *val, char **why)
{
	unsigned long long q = 0, per = 100000;
	char **p = field, *end, *copy;
	const char *rest = val;

	(void)ctx;
	(void)s;
	if (!*val) { /* unset */
		free(*p);
		*p = NULL;
		return 0;
	}
	if (!strncmp(val, "max", 3)) {
		rest = val + 3;
	} else {
		errno = 0;
		q = isdigit((unsigned char)*val) ? strtoull(val, &end, 10) : 0;
		if (!isdigit((unsigned char)*val) || errno || q < 1000 || q > 1000000000ULL)
			goto bad;
		rest = end;
	}
	if (*rest == ' ') {
		if (!isdigit((unsigned char)rest[1])) /* "max x": strtoull would not set end */
			goto bad;
		errno = 0;
		per = strtoull(rest + 1, &end, 10);
		if (errno || *end || per < 1000 || per > 1000000)
			goto bad;
	} else if (*rest) {
		goto bad;
	}
	if ((q ? asprintf(&copy, "%llu %llu", q, per) : asprintf(&copy, "max %llu", per)) < 0)
		return -ENOMEM;
	free(*p);
	*p = copy;
	return 0;
bad:
	return failf(why,
		     "bad value '%s' (expected QUOTA [PERIOD] in microseconds, "
		     "e.g. 50000 100000, QUOTA >= 1000 or max, PERIOD 1000..1000000)",
		     val);
}

/* What GET_ID returns: up to 20 printable ASCII characters. */
static int parse_disk_serial(struct parse_ctx *ctx, const struct setting *s, void *field,
			     const char *val, char **why)
{
	const char *p;

	if (strlen(val) > DISK_SERIAL_MAX)
		return failf(why, "'%s' is longer than %d characters", val, DISK_SERIAL_MAX);
	for (p = val; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return failf(why, "only printable ASCII characters are allowed");
	return parse_string(ctx, s, field, val, why);
}

static int parse_enum(struct parse_ctx *ctx, const struct setting *s, void *field, const char *val,
		      char **why)
{
	char list[128] = "";
	unsigned int i;

	(void)ctx;
	for (i = 0; s->names[i]; i++) {
		if (!strcmp(val, s->names[i])) {
			*(unsigned int *)field = i;
			return 0;
		}
	}
	for (i = 0; s->names[i]; i++) {
		if (i)
			strncat(list, "|", sizeof(list) - strlen(list) - 1);
		strncat(list, s->names[i], sizeof(list) - strlen(list) - 1);
	}
	return failf(why, "bad value '%s' (expected %s)", val, list);
}

static int parse_path(struct parse_ctx *ctx, const struct setting *s, void *field, const char *val,
		      char **why)
{
	char **p = field, *path = NULL;

	if (!*val && !(s->flags & S_EMPTY_OK))
		return failf(why, "empty path");
	if (*val) {
		path = resolve(ctx, val);
		if (!path)
			return -ENOMEM;
	}
	free(*p);
	*p = path;
	return 0;
}

static int parse_string(struct parse_ctx *ctx, const struct setting *s, void *field,
			const char *val, char **why)
{
	char **p = field, *copy;

	(void)ctx;
	if (!*val && !(s->flags & S_EMPTY_OK))
		return failf(why, "empty value");
	copy = strdup(val);
	if (!copy)
		return -ENOMEM;
	free(*p);
	*p = copy;
	return 0;
}

static int parse_serial(struct parse_ctx *ctx, const struct setting *s, void *field,
			const char *val, char **why)
{
	unsigned int mode;
	char *path = NULL;

	(void)s;
	if (!strcmp(val, "stdio")) {
		mode = SERIAL_STDIO;
	} else if (!strcmp(val, "none")) {
		mode = SERIAL_NONE;
	} else if (!strcmp(val, "api")) {
		mode = SERIAL_API;
	} else if (!strncmp(val, "file:", 5)) {
		if (!val[5])
			return failf(why, "file: needs a path (file:PATH)");
		mode = SERIAL_FILE;
		path = resolve(ctx, val + 5);
		if (!path)
			return -ENOMEM;
	} else {
		return failf(why, "bad value '%s' (expected stdio|file:PATH|none|api)", val);
	}
	*(unsigned int *)field = mode;
	free(ctx->cfg->serial_path);
	ctx->cfg->serial_path = path;
	return 0;
}

/* kernel, initrd: an existing, readable regular file (symlinks to one are fine). */
static int check_file(struct parse_ctx *ctx, const struct setting *s, const void *field, char **why)
{
	const char *path = *(char *const *)field;
	struct stat st;

	(void)ctx;
	(void)s;
	if (!path)
		return 0;
	if (stat(path, &st))
		return failf(why, "%s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return failf(why, "%s: %s", path, strerror(EISDIR));
	if (!S_ISREG(st.st_mode))
		return failf(why, "%s: not a regular file", path);
	if (access(path, R_OK))
		return failf(why, "%s: %s", path, strerror(errno));
	return 0;
}

/* A disk: a regular file or a block device we may read (and write unless readonly). */
static int check_disk(struct parse_ctx *ctx, const struct setting *s, const void *field, char **why)
{
	const struct disk_config *d =
	    (const void *)((const char *)field - offsetof(struct disk_config, path));
	const char *path = *(char *const *)field;
	struct stat st;

	(void)ctx;
	(void)s;
	if (!path)
		return 0;
	if (stat(path, &st))
		return failf(why, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return failf(why, "%s: not a regular file or block device", path);
	if (access(path, d->readonly ? R_OK : R_OK | W_OK))
		return failf(why, "%s: %s%s", path, strerror(errno),
			     d->readonly ? "" : " (set readonly = on for a read-only disk)");
	return 0;
}

/* A backing file may be anything an image names: only inside a directory the user chose. */
static int check_backing(struct parse_ctx *ctx, const struct setting *s, const void *field,
			 char **why)
{
	const struct disk_config *d =
	    (const void *)((const char *)field - offsetof(struct disk_config, backing));

	(void)ctx;
	(void)s;
	if (d->backing && !d->backing_dir)
		return failf(why, "on needs backing_dir = DIR, the directory that holds the "
				  "image's backing files");
	return 0;
}

/* An existing directory (symlinks to one are fine). */
static int check_dir(struct parse_ctx *ctx, const struct setting *s, const void *field, char **why)
{
	const char *path = *(char *const *)field;
	struct stat st;

	(void)ctx;
	(void)s;
	if (!path)
		return 0;
	if (stat(path, &st))
		return failf(why, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return failf(why, "%s: %s", path, strerror(ENOTDIR));
	return 0;
}

/* @path is created at start-up: the directory it names must exist now (@prefix: "file:"). */
static int check_parent_dir(const char *path, const char *prefix, char **why)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	struct stat st;
	int ret = 0;

	if (!dir)
		return -ENOMEM;
	if (stat(dir, &st))
		ret = failf(why, "%s%s: %s: %s", prefix, path, dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		ret = failf(why, "%s%s: %s: %s", prefix, path, dir, strerror(ENOTDIR));
	free(dir);
	return ret;
}

/* file:PATH is created at start-up, so only its directory must exist now. */
static int check_serial(struct parse_ctx *ctx, const struct setting *s, const void *field,
			char **why)
{
	const char *path = ctx->cfg->serial_path;

	(void)s;
	if (*(const unsigned int *)field != SERIAL_FILE || !path)
		return 0;
	return check_parent_dir(path, "file:", why);
}

/* --- [share.N] ------------------------------------------------------------------------- */

/* The share a field of [share.N] belongs to, and N. */
static unsigned int share_index(const struct parse_ctx *ctx, const struct setting *s,
				const void *field)
{
	return ((const char *)field - ((const char *)ctx->cfg + s->offset)) /
	       sizeof(struct share_config);
}

const char *config_share_tag(const struct vm_config *cfg, unsigned int idx, char *buf, size_t size)
{
	if (cfg->shares[idx].tag)
		return cfg->shares[idx].tag;
	snprintf(buf, size, "share%u", idx);
	return buf;
}

/* What `mount -t virtiofs TAG` takes: printable ASCII, no blanks, at most 35 bytes. */
static int parse_share_tag(struct parse_ctx *ctx, const struct setting *s, void *field,
			   const char *val, char **why)
{
	const char *p;

	if (strlen(val) > SHARE_TAG_MAX)
		return failf(why, "'%s' is longer than %d bytes", val, SHARE_TAG_MAX);
	for (p = val; *p; p++)
		if (*p <= 0x20 || *p > 0x7e)
			return failf(why,
				     "only printable ASCII characters without blanks are allowed");
	return parse_string(ctx, s, field, val, why);
}

/* A size in whole 2 MiB units (the guest maps 2 MiB ranges); 0 is "no window". */
static int parse_window(struct parse_ctx *ctx, const struct setting *s, void *field,
			const char *val, char **why)
{
	uint64_t v;

	(void)ctx;
	if (config_parse_size(val, &v))
		return failf(why, "bad size '%s' (use e.g. 1G or 256M)", val);
	if (v % (2ULL << 20))
		return failf(why, "%s is not a multiple of 2M", val);
	if (v > s->max)
		return failf(why, "%s is larger than %lluG", val,
			     (unsigned long long)(s->max >> 30));
	*(uint64_t *)field = v;
	return 0;
}

/* "GUEST:HOST:COUNT": guest ids [GUEST, GUEST+COUNT) are host ids [HOST, HOST+COUNT). */
static int parse_idmap(struct parse_ctx *ctx, const struct setting *s, void *field, const char *val,
		       char **why)
{
	unsigned long long v[3];
	const char *p = val;
	char *end;
	int i;

	(void)ctx;
	(void)s;
	for (i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)*p))
			goto bad;
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (errno || v[i] > UINT32_MAX || *end != (i < 2 ? ':' : '\0'))
			goto bad;
		p = end + 1;
	}
	if (!v[2])
		return failf(why, "'%s': COUNT must be at least 1", val);
	if (v[0] + v[2] > 1ULL << 32 || v[1] + v[2] > 1ULL << 32)
		return failf(why, "'%s': the range goes past id 4294967295", val);
	*(struct share_idmap *)field =
	    (struct share_idmap){ .guest = v[0], .host = v[1], .count = v[2] };
	return 0;
bad:
	return failf(why, "bad value '%s' (expected GUEST:HOST:COUNT, e.g. 0:1000:1)", val);
}

/* The shared directory: exists, is a directory we may read (and write unless readonly). */
static int check_share_dir(struct parse_ctx *ctx, const struct setting *s, const void *field,
			   char **why)
{
	const struct share_config *sh = &ctx->cfg->shares[share_index(ctx, s, field)];
	const char *path = *(char *const *)field;
	int ret = check_dir(ctx, s, field, why);

	if (ret || !path)
		return ret;
	if (access(path, sh->readonly ? R_OK | X_OK : R_OK | W_OK | X_OK))
		return failf(why, "%s: %s%s", path, strerror(errno),
			     sh->readonly ? "" : " (set readonly = on for a read-only share)");
	return 0;
}

/* Tags name shares in the guest: no two alike, defaults ("share<N>") included. */
static int check_share_tag(struct parse_ctx *ctx, const struct setting *s, const void *field,
			   char **why)
{
	unsigned int idx = share_index(ctx, s, field), i;
	char mine[16], other[16];
	const char *t = config_share_tag(ctx->cfg, idx, mine, sizeof(mine));

	for (i = 0; i < idx; i++) {
		if (!ctx->cfg->shares[i].path)
			continue;
		if (!strcmp(t, config_share_tag(ctx->cfg, i, other, sizeof(other))))
			return failf(why, "'%s' is also the tag of [share.%u]", t, i);
	}
	return 0;
}

static int check_share_window(struct parse_ctx *ctx, const struct setting *s, const void *field,
			      char **why)
{
	const struct share_config *sh = &ctx->cfg->shares[share_index(ctx, s, field)];

	if (!*(const uint64_t *)field && sh->dax != SHARE_DAX_NEVER)
		return failf(why, "0 (no DAX window) needs dax = never");
	return 0;
}

/* The socket is created at start-up: its directory must exist, and the path fit sun_path. */
static int check_api_socket(struct parse_ctx *ctx, const struct setting *s, const void *field,
			    char **why)
{
	const char *path = *(char *const *)field;
	struct sockaddr_un addr;

	(void)ctx;
	(void)s;
	if (!path)
		return 0;
	if (strlen(path) >= sizeof(addr.sun_path))
		return failf(why, "%s: too long for a Unix socket (at most %zu bytes)", path,
			     sizeof(addr.sun_path) - 1);
	return check_parent_dir(path, "", why);
}

/* [vsock]: a CID needs the host side's socket (a socket without a CID adds nothing). */
static int check_vsock(struct parse_ctx *ctx, const struct setting *s, const void *field,
		       char **why)
{
	(void)s;
	(void)field;
	if (ctx->cfg->vsock.cid && !ctx->cfg->vsock.socket)
		return failf(why, "needs [vsock] socket = PATH (the host side's Unix socket)");
	return 0;
}

/* Apply one value of a known setting; @o says where it came from. */
static void apply(struct parse_ctx *ctx, const struct origin *o, const struct setting *s,
		  unsigned int idx, const char *section, const char *val)
{
	char *why = NULL;
	int ret;

	*seen(ctx, s, idx) = *o;
	if (s->section == SEC_BALLOON) /* --set balloon.KEY=... adds it too */
		ctx->cfg->balloon.present = true;
	ret = s->parse(ctx, s, field_of(ctx->cfg, s, idx), val, &why);
	if (ret == -ENOMEM)
		ctx->nomem = true;
	else if (ret)
		report_why(ctx, o, section, s->key, why);
}

/*
 * The text after '=': either "quoted" (\" and \\ are the escapes; anything
 * else is literal, ';' and '#' included) or bare, where ';' or '#' at the
 * start or after whitespace begins a comment (so "a;b" and "x#1" survive).
 */
static int lex_value(const char *s, size_t len, char **out, char **why)
{
	const char *end = s + len, *start;
	char *buf, *d;

	while (s < end && isspace((unsigned char)*s))
		s++;
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	d = buf;
	if (s < end && *s == '"') {
		for (s++; s < end && *s != '"'; s++) {
			if (*s == '\\' && s + 1 < end && (s[1] == '"' || s[1] == '\\'))
				s++;
			*d++ = *s;
		}
		if (s == end) {
			free(buf);
			return failf(why, "unterminated quoted value");
		}
		for (s++; s < end && isspace((unsigned char)*s); s++)
			;
		if (s < end && *s != ';' && *s != '#') {
			free(buf);
			return failf(why, "unexpected text after closing quote");
		}
	} else {
		for (start = s; s < end; s++)
			if ((*s == ';' || *s == '#') &&
			    (s == start || isspace((unsigned char)s[-1])))
				break;
		while (s > start && isspace((unsigned char)s[-1]))
			s--;
		memcpy(d, start, s - start);
		d += s - start;
	}
	*d = '\0';
	*out = buf;
	return 0;
}

static char *section_line(struct parse_ctx *ctx, char *buf, int num, const char *s, const char *e)
{
	struct origin o = { .line = ctx->lineno };
	const char *close = memchr(s, ']', e - s), *p, *n, *ne;
	unsigned int idx;
	char *name, *why = NULL;
	int sec;

	/* Keys below a bad header are skipped: their errors would be noise. */
	ctx->in_section = true;
	ctx->section_ok = false;
	if (!close)
		goto malformed;
	for (p = close + 1; p < e && isspace((unsigned char)*p); p++)
		;
	if (p < e && *p != ';' && *p != '#')
		goto malformed;
	for (n = s + 1; n < close && isspace((unsigned char)*n); n++)
		;
	for (ne = close; ne > n && isspace((unsigned char)ne[-1]); ne--)
		;
	name = strndup(n, ne - n);
	if (!name) {
		ctx->nomem = true;
		return buf;
	}
	if (lookup_section(name, &sec, &idx, &why)) {
		report_why(ctx, &o, name, NULL, why);
	} else if ((int)strlen(name) + 3 >= num) {
		report(ctx, &o, name, NULL, "section name too long");
	} else {
		snprintf(buf, num, "[%s]\n", name);
		ctx->section_ok = true;
		if (sec == SEC_BALLOON) /* the section alone adds the device */
			ctx->cfg->balloon.present = true;
	}
	free(name);
	return buf;
malformed:
	report(ctx, &o, NULL, NULL, "malformed section header (expected [name])");
	return buf;
}

static char *key_line(struct parse_ctx *ctx, char *buf, int num, const char *s, const char *e)
{
	struct origin o = { .line = ctx->lineno };
	const char *eq = memchr(s, '=', e - s), *k, *ke;

	if (!eq)
		goto malformed;
	for (ke = eq; ke > s && isspace((unsigned char)ke[-1]); ke--)
		;
	if (ke == s)
		goto malformed;
	/* Keeps ':' (inih's other separator) and comment chars away from inih. */
	for (k = s; k < ke; k++)
		if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-')
			goto malformed;
	if (ke - s + 3 >= num) {
		report(ctx, &o, NULL, NULL, "malformed line (key too long)");
		return buf;
	}
	memcpy(buf, s, ke - s);
	strcpy(buf + (ke - s), "=\n");
	ctx->raw = eq + 1;
	ctx->raw_len = e - eq - 1;
	return buf;
malformed:
	report(ctx, &o, NULL, NULL, "malformed line (expected key = value)");
	return buf;
}

/* ini_reader: one physical line per call, normalised (see the top of the file). */
static char *read_line(char *buf, int num, void *stream)
{
	struct parse_ctx *ctx = stream;
	const char *s = ctx->pos, *e, *nl;

	if (s >= ctx->end || num < 8)
		return NULL;
	nl = memchr(s, '\n', ctx->end - s);
	e = nl ? nl : ctx->end;
	ctx->pos = nl ? nl + 1 : ctx->end;
	ctx->lineno++;
	ctx->raw = NULL;
	strcpy(buf, "\n");

	if (ctx->lineno == 1 && e - s >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	if (s == e || *s == ';' || *s == '#')
		return buf;
	if (memchr(s, '\0', e - s)) {
		struct origin o = { .line = ctx->lineno };

		report(ctx, &o, NULL, NULL, "malformed line (NUL byte)");
		return buf;
	}
	if (*s == '[')
		return section_line(ctx, buf, num, s, e);
	return key_line(ctx, buf, num, s, e);
}

/* ini_handler: only ever sees "key=" lines from read_line(). */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	struct origin o = { .line = ctx->lineno };
	const struct setting *s;
	char *val = NULL, *why = NULL;
	unsigned int idx;
	struct origin *prev;
	int sec, ret;

	(void)value;
	if (!ctx->raw)
		return 1;
	if (!ctx->in_section) {
		report(ctx, &o, NULL, name, "key outside of any [section]");
		return 1;
	}
	if (!ctx->section_ok || lookup_section(section, &sec, &idx, &why)) {
		free(why); /* reported at the section header */
		return 1;
	}
	s = lookup_key(sec, name);
	if (!s) {
		report(ctx, &o, section, name, "unknown key");
		return 1;
	}
	prev = seen(ctx, s, idx);
	if (prev->line) {
		report(ctx, &o, section, name, "duplicate key (first set on line %d)", prev->line);
		return 1;
	}
	ret = lex_value(ctx->raw, ctx->raw_len, &val, &why);
	if (ret == -ENOMEM) {
		ctx->nomem = true;
	} else if (ret) {
		*prev = o; /* no "required key missing" on top */
		report_why(ctx, &o, section, name, why);
	} else {
		apply(ctx, &o, s, idx, section, val);
	}
	free(val);
	return 1;
}

/* "section.key=value"; the value is taken verbatim (the shell did the quoting). */
static void apply_override(struct parse_ctx *ctx, const char *arg)
{
	struct origin o = { .set = arg };
	const char *eq = strchr(arg, '='), *dot;
	const struct setting *s;
	char *section = NULL, *key, *why = NULL;
	unsigned int idx;
	int sec;

	if (!eq)
		goto bad_form;
	dot = memrchr(arg, '.', eq - arg);
	if (!dot || dot == arg || dot + 1 == eq)
		goto bad_form;
	section = strndup(arg, eq - arg);
	if (!section) {
		ctx->nomem = true;
		return;
	}
	section[dot - arg] = '\0';
	key = section + (dot - arg) + 1;
	if (lookup_section(section, &sec, &idx, &why)) {
		report_why(ctx, &o, section, NULL, why);
		goto out;
	}
	s = lookup_key(sec, key);
	if (!s) {
		report(ctx, &o, section, key, "unknown key");
		goto out;
	}
	apply(ctx, &o, s, idx, section, eq + 1);
out:
	free(section);
	return;
bad_form:
	report(ctx, &o, NULL, NULL, "expected section.key=value");
}

static void validate(struct parse_ctx *ctx)
{
	static const struct origin none;
	char name[64], *why;
	unsigned int idx;
	size_t i, j;
	int ret;

	for (i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];

		for (idx = 0; idx < instances(s->section); idx++) {
			const struct origin *o = seen(ctx, s, idx);
			bool present = !sections[s->section].count;

			/* An instance of an indexed section exists if any of its keys is set. */
			for (j = 0; !present && j < N_SETTINGS; j++)
				if (settings[j].section == s->section)
					present = seen(ctx, &settings[j], idx)->line ||
						  seen(ctx, &settings[j], idx)->set;
			if (!present)
				continue;
			section_name(name, sizeof(name), s->section, idx);
			if ((s->flags & S_REQUIRED) && !o->line && !o->set) {
				report(ctx, &none, name, s->key, "required key missing");
				continue;
			}
			if (!s->check)
				continue;
			why = NULL;
			ret = s->check(ctx, s, field_of(ctx->cfg, s, idx), &why);
			if (ret == -ENOMEM)
				ctx->nomem = true;
			else if (ret)
				report_why(ctx, o, name, s->key, why);
		}
	}
	/* [disk.N] pin, the key before [vm] pin (kept so older files and snapshots load). */
	for (idx = 0; idx < CONFIG_MAX_DISKS; idx++)
		if (ctx->cfg->disks[idx].path && ctx->cfg->disks[idx].pin)
			ctx->cfg->pin = 1;
}

void config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = DEFAULT_MEMORY;
	cfg->vcpus = 1;
	cfg->nested = NESTED_AUTO;
	cfg->on_reboot = REBOOT_EXIT;
	cfg->vmgenid = 1;
	cfg->serial = SERIAL_STDIO;
	cfg->serial_max = SERIAL_MAX_SIZE_DEFAULT;
	cfg->sandbox.seccomp = SANDBOX_SECCOMP_DEFAULT;
	cfg->balloon.free_page_reporting = 1;
	cfg->balloon.deflate_on_oom = 1;
	for (unsigned int i = 0; i < CONFIG_MAX_DISKS; i++)
		cfg->disks[i].poll_us = DISK_POLL_US_DEFAULT;
	for (unsigned int i = 0; i < CONFIG_MAX_SHARES; i++) {
		cfg->shares[i].dax_window = SHARE_DAX_WINDOW_DEFAULT;
		cfg->shares[i].max_fds = 0; /* auto */
	}
	cfg->cmdline = strdup(DEFAULT_CMDLINE); /* NULL on ENOMEM: config_load fails */
}

void config_free(struct vm_config *cfg)
{
	free(cfg->path);
	free(cfg->kernel);
	free(cfg->initrd);
	free(cfg->cmdline);
	free(cfg->serial_path);
	cfg->path = cfg->kernel = cfg->initrd = cfg->cmdline = cfg->serial_path = NULL;
	free(cfg->api_socket);
	cfg->api_socket = NULL;
	free(cfg->sandbox.jail);
	free(cfg->vsock.socket);
	cfg->vsock.socket = NULL;
	free(cfg->sandbox.cgroup_parent);
	free(cfg->sandbox.cpu_max);
	cfg->sandbox.jail = cfg->sandbox.cgroup_parent = cfg->sandbox.cpu_max = NULL;
	for (unsigned int i = 0; i < CONFIG_MAX_DISKS; i++) {
		char **t = cfg->disks[i].backing_trusted;

		free(cfg->disks[i].path);
		free(cfg->disks[i].serial);
		free(cfg->disks[i].backing_dir);
		for (unsigned int j = 0; t && t[j]; j++)
			free(t[j]);
		free(t);
		cfg->disks[i].path = cfg->disks[i].serial = cfg->disks[i].backing_dir = NULL;
		cfg->disks[i].backing_trusted = NULL;
	}
	for (unsigned int i = 0; i < CONFIG_MAX_SHARES; i++) {
		free(cfg->shares[i].path);
		free(cfg->shares[i].tag);
		cfg->shares[i].path = cfg->shares[i].tag = NULL;
	}
}

int config_load_string(struct vm_config *cfg, const char *name, const char *data, size_t len,
		       char *const *overrides, int n_overrides, FILE *err)
{
	struct parse_ctx *ctx;
	const char *slash;
	int i, ret = -ENOMEM;

	config_init(cfg);
	ctx = calloc(1, sizeof(*ctx) + N_SETTINGS * MAX_INSTANCES * sizeof(struct origin));
	if (!ctx || !cfg->cmdline)
		goto out;
	ctx->cfg = cfg;
	ctx->err = err;
	ctx->file = name;
	if (name) {
		cfg->path = strdup(name);
		if (!cfg->path)
			goto out;
		slash = strrchr(name, '/');
		if (slash) {
			ctx->base = strndup(name, slash - name + 1);
			if (!ctx->base)
				goto out;
		}
	}
	if (data) {
		ctx->in_file = true;
		ctx->pos = data;
		ctx->end = data + len;
		ret = ini_parse_stream(read_line, ctx, on_key, ctx);
		ctx->in_file = false;
		if (ret == -2) {
			ctx->nomem = true;
		} else if (ret) {
			/* Can't happen: read_line only passes well-formed lines. */
			struct origin o = { .line = ret > 0 ? ret : 0 };

			report(ctx, &o, NULL, NULL, "parse error");
		}
	}
	for (i = 0; i < n_overrides; i++)
		apply_override(ctx, overrides[i]);
	validate(ctx);
	ret = ctx->nomem ? -ENOMEM : ctx->errors ? -EINVAL : 0;
	if (ret == -ENOMEM)
		fprintf(err, "%s: out of memory\n", name ? name : "config");
out:
	if (ctx)
		free(ctx->base);
	free(ctx);
	if (ret)
		config_free(cfg);
	return ret;
}

/* The whole file in memory, so lines can be of any length. */
static int read_file(const char *path, char **data, size_t *len)
{
	size_t size = 0, cap = 4096;
	char *buf = NULL, *tmp;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (size == cap || !buf) {
			if (size >= CONFIG_MAX_FILE) {
				ret = -EFBIG;
				goto fail;
			}
			cap = buf ? cap * 2 : cap;
			tmp = realloc(buf, cap + 1);
			if (!tmp) {
				ret = -ENOMEM;
				goto fail;
			}
			buf = tmp;
		}
		n = read(fd, buf + size, cap - size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		size += n;
	}
	close(fd);
	buf[size] = '\0';
	*data = buf;
	*len = size;
	return 0;
fail:
	free(buf);
	close(fd);
	return ret;
}

int config_load(struct vm_config *cfg, const char *path, char *const *overrides, int n_overrides,
		FILE *err)
{
	char *data = NULL;
	size_t len = 0;
	int ret;

	if (path) {
		ret = read_file(path, &data, &len);
		if (ret) {
			fprintf(err, "%s: %s\n", path,
				ret == -EFBIG ? "file too large (max 1 MiB)" : strerror(-ret));
			config_init(cfg);
			config_free(cfg);
			return ret == -ENOMEM ? -ENOMEM : -EINVAL;
		}
	}
	ret = config_load_string(cfg, path, data, len, overrides, n_overrides, err);
	free(data);
	return ret;
}

/* Quote when a bare value would not read back the same. */
static void dump_value(FILE *out, const char *key, const char *prefix, const char *val)
{
	size_t len = strlen(val);
	bool quote = !*prefix && (!len || val[0] == '"');
	const char *p;

	if (len && (isspace((unsigned char)val[0]) || isspace((unsigned char)val[len - 1])))
		quote = true;
	if (strpbrk(val, ";#\n"))
		quote = true;
	if (!quote) {
		fprintf(out, "%s = %s%s\n", key, prefix, val);
		return;
	}
	fprintf(out, "%s = \"%s", key, prefix);
	for (p = val; *p; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', out);
		fputc(*p, out);
	}
	fputs("\"\n", out);
}

static const char *enum_name(const char *const *names, unsigned int v)
{
	for (unsigned int i = 0; names[i]; i++)
		if (i == v)
			return names[i];
	return "?";
}

/* A string-valued setting: the field is a char * (NULL: unset). */
static bool is_string(const struct setting *s)
{
	return s->parse == parse_path || s->parse == parse_string || s->parse == parse_cpu_max ||
	       s->parse == parse_disk_serial || s->parse == parse_share_tag;
}

static size_t field_size(const struct setting *s)
{
	if (is_string(s))
		return sizeof(char *);
	if (s->parse == parse_idmap)
		return sizeof(struct share_idmap);
	if (s->parse == parse_memory || s->parse == parse_bytes || s->parse == parse_window ||
	    s->parse == parse_rate)
		return sizeof(uint64_t);
	return sizeof(unsigned int); /* parse_uint, parse_auto_uint, parse_enum, parse_serial */
}

/* Whether config_dump writes @s: set strings; S_IF_SET ones only when not the default. */
static bool dumped(const struct setting *s, const void *field, const void *dflt)
{
	if (is_string(s))
		return *(char *const *)field != NULL;
	return !(s->flags & S_IF_SET) || memcmp(field, dflt, field_size(s));
}

/* One setting as text that parses back to the same value. */
static void dump_setting(const struct vm_config *cfg, const struct setting *s, const void *field,
			 FILE *out)
{
	unsigned int u = 0;
	uint64_t v = 0;
	char size[32];

	if (is_string(s)) {
		dump_value(out, s->key, "", *(char *const *)field);
		return;
	}
	if (s->parse == parse_idmap) {
		const struct share_idmap *m = field;

		fprintf(out, "%s = %u:%u:%u\n", s->key, m->guest, m->host, m->count);
		return;
	}
	if (field_size(s) == sizeof(uint64_t))
		memcpy(&v, field, sizeof(v));
	else
		memcpy(&u, field, sizeof(u));
	if (s->parse == parse_serial) {
		if (u == SERIAL_FILE)
			dump_value(out, s->key, "file:", cfg->serial_path ? cfg->serial_path : "");
		else
			fprintf(out, "%s = %s\n", s->key,
				u == SERIAL_NONE  ? "none"
				: u == SERIAL_API ? "api"
						  : "stdio");
	} else if (s->parse == parse_enum) {
		fprintf(out, "%s = %s\n", s->key, enum_name(s->names, u));
	} else if (s->parse == parse_auto_uint && !u) {
		fprintf(out, "%s = %s\n", s->key, s->names[0]);
	} else if (s->parse == parse_uint || s->parse == parse_auto_uint) {
		fprintf(out, "%s = %u\n", s->key, u);
	} else if (s->parse == parse_rate && !s->names) {
		fprintf(out, "%s = %llu\n", s->key, (unsigned long long)v);
	} else {
		format_size(size, sizeof(size), v);
		fprintf(out, "%s = %s\n", s->key, size);
	}
}

/*
 * The configuration as a file that loads back to it, driven by the settings
 * table: every key in table order, strings when set, S_IF_SET keys when not the
 * default; a disk or share when its path is set; [api] and [sandbox] only when
 * something in them is.
 */
void config_dump(const struct vm_config *cfg, FILE *out)
{
	static const int order[] = { SEC_VM,	SEC_BOOT,    SEC_CONSOLE, SEC_API,    SEC_DISK,
				     SEC_SHARE, SEC_SANDBOX, SEC_VSOCK,	  SEC_BALLOON };
	struct vm_config def;
	bool first = true;

	config_init(&def);
	for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
		const struct section_desc *sd = &sections[order[o]];
		unsigned int n = sd->count ? sd->count : 1;

		/* [balloon] is there or not, whatever its keys say: all of them when there. */
		if (order[o] == SEC_BALLOON && !cfg->balloon.present)
			continue;

		for (unsigned int idx = 0; idx < n; idx++) {
			bool header = false;

			for (size_t k = 0; k < N_SETTINGS; k++) {
				const struct setting *s = &settings[k];
				const void *field, *dflt;

				if (s->section != order[o])
					continue;
				field = field_of((struct vm_config *)cfg, s, idx);
				dflt = field_of(&def, s, idx);
				/* An instance exists when its required key (the path) is set. */
				if (sd->count && (s->flags & S_REQUIRED) && !*(char *const *)field)
					break;
				if (s->section != SEC_BALLOON && !dumped(s, field, dflt))
					continue;
				if (!header) {
					if (!first)
						fputc('\n', out);
					if (sd->count)
						fprintf(out, "[%s.%u]\n", sd->name, idx);
					else
						fprintf(out, "[%s]\n", sd->name);
					header = true;
					first = false;
				}
				dump_setting(cfg, s, field, out);
			}
		}
	}
	config_free(&def);
}
