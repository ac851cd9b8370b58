// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * minivmm img create|info|check|bench: qcow2 tooling for users without QEMU.
 * Output and exit codes follow qemu-img where it has an equivalent.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "block/file_io.h"
#include "config.h"
#include "qcow2/img.h"
#include "qcow2/qcow2.h"

static int usage_to(FILE *out)
{
	fprintf(
	    out,
	    "usage: minivmm img create [-o cluster_size=N,backing_file=F,backing_fmt=qcow2|raw,\n"
	    "                            lazy_refcounts=on|off,compat=0.10|1.1,refcount_bits=N]\n"
	    "                           [-b BACKING -F qcow2|raw] FILE SIZE\n"
	    "       minivmm img info [--output=human|json] FILE\n"
	    "       minivmm img map [--output=human|json] [--backing-dir DIR] FILE\n"
	    "       minivmm img check [-r leaks|all] [--output=human|json] FILE\n"
	    "       minivmm img convert [-f qcow2|raw] -O raw|qcow2 [-o OPTIONS] [-p]\n"
	    "                           [--backing-dir DIR] SRC DST\n"
	    "       minivmm img compare [-f FMT] [-F FMT] [-s] [-p] [--backing-dir DIR] A B\n"
	    "       minivmm img commit [-d] [-p] --backing-dir DIR FILE\n"
	    "       minivmm img rebase -b NEW|\"\" [-F qcow2|raw] [-u] [-p] [--backing-dir DIR] FILE\n"
	    "       minivmm img io [-s] [--backing-dir DIR] FILE 'write -P BYTE OFF LEN' |\n"
	    "                      'read -P BYTE OFF LEN' | 'discard OFF LEN' | 'zero OFF LEN' | flush ...\n"
	    "       minivmm img bench [-w] [-c COUNT] [-s SIZE] [-S STEP] [-o OFFSET]\n"
	    "                         [--flush-interval N] [--random RANGE] [--seed N]\n"
	    "                         [--backing-dir DIR] FILE\n");
	return 1;
}

static int usage(void)
{
	return usage_to(stderr);
}

#define BACKING_HINT "allow the directory holding the chain with --backing-dir DIR"

static int parse_size(const char *s, uint64_t *out)
{
	if (config_parse_size(s, out)) {
		fprintf(stderr, "img: invalid size '%s'\n", s);
		return -1;
	}
	return 0;
}

static bool parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
		*out = false;
	else
		return false;
	return true;
}

/* -o key=value[,key=value...] */
static int parse_create_opts(char *s, struct qcow2_create_opts *o)
{
	for (char *save = NULL, *kv = strtok_r(s, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		uint64_t n;

		if (!v) {
			fprintf(stderr, "img: option '%s' needs a value\n", kv);
			return -1;
		}
		*v++ = 0;
		if (!strcmp(kv, "cluster_size")) {
			if (parse_size(v, &n))
				return -1;
			o->cluster_bits = 0;
			while (o->cluster_bits < 63 && (1ULL << o->cluster_bits) < n)
				o->cluster_bits++;
			if ((1ULL << o->cluster_bits) != n) {
				fprintf(stderr, "img: cluster_size must be a power of two\n");
				return -1;
			}
		} else if (!strcmp(kv, "backing_file")) {
			o->backing_file = v;
		} else if (!strcmp(kv, "backing_fmt")) {
			o->backing_fmt = v;
		} else if (!strcmp(kv, "lazy_refcounts")) {
			if (!parse_bool(v, &o->lazy_refcounts))
				goto bad;
		} else if (!strcmp(kv, "compat")) {
			if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
				o->version = 2;
			else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
				o->version = 3;
			else
				goto bad;
		} else if (!strcmp(kv, "refcount_bits")) {
			o->refcount_bits = strtoul(v, NULL, 10);
		} else {
			fprintf(stderr, "img: unknown option '%s'\n", kv);
			return -1;
		}
		continue;
	bad:
		fprintf(stderr, "img: bad value '%s' for %s\n", v, kv);
		return -1;
	}
	return 0;
}

static int cmd_create(int argc, char **argv)
{
	struct qcow2_create_opts o = { 0 };
	char err[1024] = "";
	int c;

	while ((c = getopt(argc, argv, "o:b:F:f:")) != -1) {
		switch (c) {
		case 'o':
			if (parse_create_opts(optarg, &o))
				return 1;
			break;
		case 'b':
			o.backing_file = optarg;
			break;
		case 'F':
			o.backing_fmt = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "qcow2")) {
				fprintf(stderr, "img: only qcow2 images can be created\n");
				return 1;
			}
			break;
		default:
			return usage();
		}
	}
	if (argc - optind != 2)
		return usage();
	if (parse_size(argv[optind + 1], &o.size))
		return 1;
	/* As qemu-img: an image without it would have a raw backing file (docs/qcow2.md). */
	if (o.backing_file && !o.backing_fmt) {
		fprintf(stderr, "img: a backing file needs its format: -F qcow2|raw "
				"(or -o backing_fmt=)\n");
		return 1;
	}
	if (qcow2_create(argv[optind], &o, err, sizeof(err))) {
		fprintf(stderr, "img: %s: %s\n", argv[optind], err);
		return 1;
	}
	printf("Formatting '%s', fmt=qcow2 cluster_size=%llu size=%" PRIu64 "%s%s\n", argv[optind],
	       1ULL << (o.cluster_bits ? o.cluster_bits : 16), o.size,
	       o.backing_file ? " backing_file=" : "", o.backing_file ? o.backing_file : "");
	return 0;
}

static int open_for_tool(struct qcow2 **q, const char *path, bool rw)
{
	struct qcow2_opts o = { .readonly = !rw, .ignore_backing = true, .no_repair = true };
	char err[1024] = "";
	int r = qcow2_open(q, path, &o, err, sizeof(err));

	if (r)
		fprintf(stderr, "img: could not open '%s': %s\n", path,
			err[0] ? err : strerror(-r));
	return r;
}

/* --output=human|json (qemu-img's option); -1: neither. */
static int parse_output(const char *v)
{
	if (!strcmp(v, "human"))
		return 0;
	if (!strcmp(v, "json"))
		return 1;
	fprintf(stderr, "img: --output=%s: expected human or json\n", v);
	return -1;
}

/* Options shared by info and map: --output, --backing-dir; the FILE's index or -1. */
static int parse_view_opts(int argc, char **argv, int *json, const char **bdir)
{
	static const struct option lo[] = { { "output", required_argument, NULL, 'O' },
					    { "backing-dir", required_argument, NULL, 'B' },
					    { NULL, 0, NULL, 0 } };
	int c;

	*json = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'O' && (*json = parse_output(optarg)) >= 0)
			continue;
		if (c == 'B' && bdir) {
			*bdir = optarg;
			continue;
		}
		return -1;
	}
	return optind == argc - 1 ? optind : -1;
}

/* A JSON string for @s (a path: any bytes), quoted and escaped. */
static void put_json_string(const char *s)
{
	char buf[4 * 1024 * 6 + 8] = "";

	if (api_json_append_string(buf, sizeof(buf), s))
		snprintf(buf, sizeof(buf), "\"\"");
	fputs(buf, stdout);
}

/* Where a backing name written into @image points: relative names from its directory. */
static char *backing_path(const char *image, const char *name)
{
	const char *slash = strrchr(image, '/');
	char *p;

	if (name[0] == '/' || !slash)
		return strdup(name);
	return asprintf(&p, "%.*s/%s", (int)(slash - image), image, name) < 0 ? NULL : p;
}

/* Where qemu-img says a relative backing file is: next to the image. */
static void put_full_backing(const char *image, const char *backing)
{
	char *p = backing_path(image, backing);

	put_json_string(p ? p : backing);
	free(p);
}

/* qemu-img info --output=json's fields and layout, for scripts written against it. */
static void print_info_json(const char *path, const struct qcow2_info *in, const struct stat *st)
{
	printf("{\n");
	if (in->has_backing && in->backing_fmt[0])
		printf("    \"backing-filename-format\": \"%s\",\n", in->backing_fmt);
	printf("    \"virtual-size\": %" PRIu64 ",\n    \"filename\": ", in->size);
	put_json_string(path);
	printf(",\n    \"cluster-size\": %llu,\n    \"format\": \"qcow2\",\n",
	       1ULL << in->cluster_bits);
	if (st)
		printf("    \"actual-size\": %llu,\n", (unsigned long long)st->st_blocks * 512);
	printf("    \"format-specific\": {\n        \"type\": \"qcow2\",\n        \"data\": {\n"
	       "            \"compat\": \"%s\",\n            \"compression-type\": \"%s\",\n",
	       in->version == 2 ? "0.10" : "1.1", in->zstd ? "zstd" : "zlib");
	/* Version 2 has no feature bits: qemu-img shows none. */
	if (in->version == 2)
		printf("            \"refcount-bits\": %u\n", in->refcount_bits);
	else
		printf("            \"lazy-refcounts\": %s,\n            \"refcount-bits\": %u,\n"
		       "            \"corrupt\": %s,\n            \"extended-l2\": false\n",
		       in->lazy_refcounts ? "true" : "false", in->refcount_bits,
		       in->corrupt ? "true" : "false");
	printf("        }\n    },\n");
	if (in->has_backing) {
		printf("    \"full-backing-filename\": ");
		put_full_backing(path, in->backing_file);
		printf(",\n    \"backing-filename\": ");
		put_json_string(in->backing_file);
		printf(",\n");
	}
	if (in->nb_snapshots)
		printf("    \"snapshots\": %u,\n", in->nb_snapshots);
	printf("    \"dirty-flag\": %s\n}\n", in->dirty ? "true" : "false");
}

static int cmd_info(int argc, char **argv)
{
	struct qcow2_info in;
	struct qcow2 *q;
	struct stat st;
	int json, i = parse_view_opts(argc, argv, &json, NULL);
	bool have_st;

	if (i < 0)
		return usage();
	if (open_for_tool(&q, argv[i], false))
		return 1;
	qcow2_get_info(q, &in);
	qcow2_close(q);
	have_st = !stat(argv[i], &st);
	if (json) {
		print_info_json(argv[i], &in, have_st ? &st : NULL);
		return 0;
	}
	printf("image: %s\nfile format: qcow2\n", argv[i]);
	printf("virtual size: %" PRIu64 " bytes\n", in.size);
	if (have_st)
		printf("disk size: %llu bytes\n", (unsigned long long)st.st_blocks * 512);
	printf("cluster_size: %llu\n", 1ULL << in.cluster_bits);
	if (in.has_backing) {
		printf("backing file: %s\n", in.backing_file);
		if (in.backing_fmt[0])
			printf("backing file format: %s\n", in.backing_fmt);
	}
	printf("Format specific information:\n    compat: %s\n", in.version == 2 ? "0.10" : "1.1");
	if (in.version == 3) {
		printf("    compression type: %s\n", in.zstd ? "zstd" : "zlib");
		printf("    lazy refcounts: %s\n", in.lazy_refcounts ? "true" : "false");
	}
	printf("    refcount bits: %u\n    corrupt: %s\n", in.refcount_bits,
	       in.corrupt ? "true" : "false");
	if (in.dirty)
		printf("    dirty: true\n");
	if (in.nb_snapshots)
		printf("    snapshots: %u\n", in.nb_snapshots);
	return 0;
}

/* A finding of check: to @ctx (a FILE), stdout if NULL. */
static void print_line(void *ctx, const char *line)
{
	fprintf(ctx ? ctx : stdout, "%s\n", line);
}

static void print_result(const struct qcow2_check_result *r)
{
	uint64_t c = r->corruptions - r->corruptions_fixed, l = r->leaks - r->leaks_fixed;

	if (!c && !l && !r->check_errors)
		printf("No errors were found on the image.\n");
	if (c)
		printf("\n%" PRIu64 " errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image may corrupt it.\n",
		       c);
	if (l)
		printf("\n%" PRIu64 " leaked clusters were found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n",
		       l);
	if (r->total_clusters)
		printf("%" PRIu64 "/%" PRIu64 " = %.2f%% allocated\n", r->allocated_clusters,
		       r->total_clusters, 100.0 * r->allocated_clusters / r->total_clusters);
	printf("Image end offset: %" PRIu64 "\n", r->image_end);
}

/* qemu-img check --output=json: its fields, each optional one only when not zero. */
static void print_check_json(const char *path, const struct qcow2_check_result *r)
{
	const struct {
		const char *name;
		uint64_t v;
	} opt[] = {
		{ "image-end-offset", r->image_end },
		{ "compressed-clusters", r->compressed_clusters },
		{ "total-clusters", r->total_clusters },
		{ "allocated-clusters", r->allocated_clusters },
		{ "fragmented-clusters", r->fragmented_clusters },
		{ "corruptions", r->corruptions - r->corruptions_fixed },
		{ "leaks", r->leaks - r->leaks_fixed },
		{ "corruptions-fixed", r->corruptions_fixed },
		{ "leaks-fixed", r->leaks_fixed },
	};

	printf("{\n");
	for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
		if (opt[i].v)
			printf("    \"%s\": %" PRIu64 ",\n", opt[i].name, opt[i].v);
	printf("    \"check-errors\": %d,\n    \"filename\": ", r->check_errors);
	put_json_string(path);
	printf(",\n    \"format\": \"qcow2\"\n}\n");
}

static int cmd_check(int argc, char **argv)
{
	static const struct option lo[] = { { "output", required_argument, NULL, 'O' },
					    { NULL, 0, NULL, 0 } };
	enum qcow2_repair rep = QCOW2_REPAIR_NONE;
	struct qcow2_check_result res, again;
	struct qcow2 *q;
	int c, r, json = 0;

	while ((c = getopt_long(argc, argv, "r:f:", lo, NULL)) != -1) {
		if (c == 'r' && !strcmp(optarg, "leaks"))
			rep = QCOW2_REPAIR_LEAKS;
		else if (c == 'r' && !strcmp(optarg, "all"))
			rep = QCOW2_REPAIR_ALL;
		else if (c == 'O' && (json = parse_output(optarg)) >= 0)
			continue;
		else if (c != 'f')
			return usage();
	}
	if (argc - optind != 1)
		return usage();
	if (open_for_tool(&q, argv[optind], rep != QCOW2_REPAIR_NONE))
		return 1;
	/* JSON: the findings' lines go to stderr, as qemu-img's do. */
	r = qcow2_check(q, rep, &res, print_line, json ? stderr : NULL);
	if (!r && (res.leaks_fixed || res.corruptions_fixed)) {
		if (!json)
			printf("The following inconsistencies were found and repaired:\n\n"
			       "    %" PRIu64 " leaked clusters\n    %" PRIu64 " corruptions\n\n"
			       "Double checking the fixed image now...\n",
			       res.leaks_fixed, res.corruptions_fixed);
		r = qcow2_check(q, QCOW2_REPAIR_NONE, &again, print_line, json ? stderr : NULL);
		/* What is left, and what the first pass fixed. */
		again.leaks_fixed = res.leaks_fixed;
		again.corruptions_fixed = res.corruptions_fixed;
		again.leaks += res.leaks_fixed;
		again.corruptions += res.corruptions_fixed;
		res = again;
	}
	qcow2_close(q);
	if (r) {
		fprintf(stderr, "img: check failed: %s\n", strerror(-r));
		return 1;
	}
	if (json)
		print_check_json(argv[optind], &res);
	else
		print_result(&res);
	if (res.corruptions > res.corruptions_fixed)
		return 2;
	if (res.leaks > res.leaks_fixed)
		return 3;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Like qemu-img bench (depth 1), plus random offsets and the engine's counters. */
static void print_stats(const struct qcow2_stats *st, double mib, double t, uint64_t count)
{
	uint64_t real_flushes = st->flushes - st->noop_flushes;

	printf("throughput_mib_s=%.1f requests=%" PRIu64 " flushes=%" PRIu64
	       " noop_flushes=%" PRIu64 " syncs=%" PRIu64 " barriers=%" PRIu64
	       " syncs_per_flush=%.3f allocs=%" PRIu64 " meta_bytes=%" PRIu64
	       " meta_bytes_per_alloc=%.0f meta_writes=%" PRIu64 " reserved=%" PRIu64
	       " prefill_bytes=%" PRIu64 "\n",
	       t > 0 ? mib / t : 0.0, count, st->flushes, st->noop_flushes, st->syncs, st->barriers,
	       real_flushes ? (double)st->syncs / real_flushes : 0.0, st->allocs, st->meta_bytes,
	       st->allocs ? (double)st->meta_bytes / st->allocs : 0.0, st->meta_writes,
	       st->reserved, st->prefill_bytes);
}

static int cmd_bench(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "flush-interval", required_argument, NULL, 'I' },
		{ "random", required_argument, NULL, 'R' },
		{ "seed", required_argument, NULL, 'E' },
		{ "backing-dir", required_argument, NULL, 'B' },
		{ "no-uring", no_argument, NULL, 'U' },
		{ "sparse", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t count = 75000, size = 4096, step = 0, offset = 0, range = 0, seed = 1;
	uint64_t flush_every = 0;
	struct qcow2_opts o = { .backing = QCOW2_BACKING_DENY, .policy_hint = BACKING_HINT };
	struct qcow2_stats st;
	bool wr = false;
	struct qcow2 *q;
	char err[1024] = "";
	int c, r = 0;

	while ((c = getopt_long(argc, argv, "wc:s:S:o:d:t:f:n", lo, NULL)) != -1) {
		switch (c) {
		case 'w':
			wr = true;
			break;
		case 'c':
			count = strtoull(optarg, NULL, 0);
			break;
		case 's':
			if (parse_size(optarg, &size))
				return 1;
			break;
		case 'S':
			if (parse_size(optarg, &step))
				return 1;
			break;
		case 'o':
			if (parse_size(optarg, &offset))
				return 1;
			break;
		case 'I':
			flush_every = strtoull(optarg, NULL, 0);
			break;
		case 'R':
			if (parse_size(optarg, &range))
				return 1;
			break;
		case 'E':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'B':
			o.backing = QCOW2_BACKING_DIR;
			o.backing_dir = optarg;
			break;
		case 'U':
			o.no_uring = true;
			break;
		case 'P':
			o.sparse_reserve = true;
			break;
		case 'd':
		case 't':
		case 'f':
		case 'n':
			break; /* qemu-img bench options without meaning here */
		default:
			return usage();
		}
	}
	if (argc - optind != 1 || !size || size % 512)
		return usage();
	if (!step)
		step = size;
	o.readonly = !wr;
	if (qcow2_open(&q, argv[optind], &o, err, sizeof(err))) {
		fprintf(stderr, "img: could not open '%s': %s\n", argv[optind], err);
		return 1;
	}
	uint8_t *buf = aligned_alloc(4096, (size + 4095) & ~4095ULL);
	uint64_t vsize = qcow2_size(q), x = seed * 0x9e3779b97f4a7c15ULL | 1;

	if (!buf) {
		qcow2_close(q);
		return 1;
	}
	memset(buf, 0xa5, size);
	double t0 = now();

	for (uint64_t i = 0; i < count && !r; i++) {
		uint64_t off = offset + i * step;

		if (range) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			off = offset + (x % (range / size)) * size;
		}
		if (off + size > vsize)
			off %= (vsize - size + 1) & ~511ULL;
		r = wr ? qcow2_pwrite(q, buf, size, off) : qcow2_pread(q, buf, size, off);
		if (!r && wr && flush_every && (i + 1) % flush_every == 0)
			r = qcow2_flush(q);
	}
	double t = now() - t0;

	qcow2_get_stats(q, &st);
	if (!r)
		r = qcow2_close(q);
	else
		qcow2_close(q);
	free(buf);
	if (r) {
		fprintf(stderr, "img: bench: %s\n", strerror(-r));
		return 1;
	}
	double mib = (double)count * size / (1 << 20);

	printf("Run completed in %.3f seconds.\n", t);
	print_stats(&st, mib, t, count);
	return 0;
}

static int open_guest(struct qcow2 **q, const char *path, const char *bdir, bool ro)
{
	struct qcow2_opts o = { .readonly = ro, .policy_hint = BACKING_HINT };
	char err[1024] = "";
	int r;

	if (bdir) {
		o.backing = QCOW2_BACKING_DIR;
		o.backing_dir = bdir;
	}
	r = qcow2_open(q, path, &o, err, sizeof(err));
	if (r)
		fprintf(stderr, "img: could not open '%s': %s\n", path,
			err[0] ? err : strerror(-r));
	return r;
}

/* An image as the guest sees it: a qcow2 chain, or a raw file (-f raw: never probed). */
struct view {
	struct qcow2 *q;
	struct fio *raw;
	uint64_t size;
};

static int view_open(struct view *v, const char *path, const char *fmt, const char *bdir)
{
	int r;

	*v = (struct view){ 0 };
	if (!strcmp(fmt, "qcow2")) {
		if (open_guest(&v->q, path, bdir, true))
			return -EINVAL;
		v->size = qcow2_size(v->q);
		return 0;
	}
	if (strcmp(fmt, "raw")) {
		fprintf(stderr, "img: format '%s': expected qcow2 or raw\n", fmt);
		return -EINVAL;
	}
	r = fio_open_posix(&v->raw, path, FIO_RDONLY | FIO_NO_URING);
	r = r ?: fio_size(v->raw, &v->size);
	if (r)
		fprintf(stderr, "img: could not open '%s': %s\n", path, strerror(-r));
	return r;
}

static int view_read(struct view *v, void *buf, size_t len, uint64_t off)
{
	return v->q ? qcow2_pread(v->q, buf, len, off) : fio_pread(v->raw, buf, len, off);
}

static void view_close(struct view *v)
{
	if (v->q)
		qcow2_close(v->q);
	if (v->raw)
		fio_close(v->raw);
}

#define COPY_CHUNK (1u << 20)

/* -p: a progress line on stderr, as qemu-img's "(NN.NN/100%)". */
static void progress(bool on, uint64_t done, uint64_t total)
{
	if (on)
		fprintf(stderr, "    (%.2f/100%%)\r%s", total ? 100.0 * done / total : 100.0,
			done == total ? "\n" : "");
}

/*
 * Copy @src's guest view through @put into a fresh, all-zero target, @gran bytes at a time:
 * a piece that reads as zeros is never written (a hole, or a cluster never allocated).
 */
static int copy_view(struct view *src,
		     int (*put)(void *ctx, const void *buf, size_t n, uint64_t off), void *ctx,
		     size_t gran, bool prog)
{
	uint8_t *buf = malloc(COPY_CHUNK), *zero = calloc(1, COPY_CHUNK);
	int r = buf && zero ? 0 : -ENOMEM;

	for (uint64_t off = 0; !r && off < src->size; off += COPY_CHUNK) {
		size_t n = src->size - off < COPY_CHUNK ? src->size - off : COPY_CHUNK;

		r = view_read(src, buf, n, off);
		for (size_t i = 0; !r && i < n; i += gran) {
			size_t k = n - i < gran ? n - i : gran;

			if (memcmp(buf + i, zero, k))
				r = put(ctx, buf + i, k, off + i);
		}
		progress(prog, off + n, src->size);
	}
	free(buf);
	free(zero);
	return r;
}

static int put_qcow2(void *ctx, const void *buf, size_t n, uint64_t off)
{
	return qcow2_pwrite(ctx, buf, n, off);
}

static int put_raw(void *ctx, const void *buf, size_t n, uint64_t off)
{
	return fio_pwrite(ctx, buf, n, off);
}

/* -O qcow2: a new image (-o cluster_size=, compat=, ... as create) with @src's content, no
 * backing file (a chain is flattened); removed again if anything fails. */
static int convert_to_qcow2(struct view *src, const char *dst, struct qcow2_create_opts *o,
			    bool prog)
{
	/* Clusters reserved ahead stay holes: a new image needs no pre-zeroed pool. */
	struct qcow2_opts oo = { .sparse_reserve = true };
	char err[1024] = "";
	struct qcow2 *q;
	struct stat st;
	int r;

	if (src->size % 512) {
		fprintf(stderr, "img: convert: the source's size is not a multiple of 512\n");
		return -EINVAL;
	}
	if (!lstat(dst, &st)) {
		fprintf(stderr,
			"img: convert: %s exists: remove it first (convert never "
			"overwrites)\n",
			dst);
		return -EEXIST;
	}
	o->size = src->size;
	r = qcow2_create(dst, o, err, sizeof(err));
	if (r) {
		fprintf(stderr, "img: %s: %s\n", dst, err[0] ? err : strerror(-r));
		return r;
	}
	r = qcow2_open(&q, dst, &oo, err, sizeof(err));
	if (r) {
		fprintf(stderr, "img: %s: %s\n", dst, err[0] ? err : strerror(-r));
		unlink(dst);
		return r;
	}
	/* Cluster by cluster: one that reads as zeros is never allocated. */
	r = copy_view(src, put_qcow2, q, (size_t)1 << (o->cluster_bits ? o->cluster_bits : 16),
		      prog);
	r = r ?: qcow2_flush(q);
	r = qcow2_close(q) ?: r;
	if (r) {
		fprintf(stderr, "img: convert: %s\n", strerror(-r));
		unlink(dst);
	}
	return r;
}

/* -O raw: the guest view as a raw file (sparse where it reads zeros). */
static int convert_to_raw(struct view *src, const char *dst, bool prog)
{
	struct fio *out;
	int r = fio_open_posix(&out, dst, FIO_CREATE | FIO_NO_URING);

	if (r) {
		fprintf(stderr, "img: %s: %s\n", dst, strerror(-r));
		return r;
	}
	r = copy_view(src, put_raw, out, COPY_CHUNK, prog);
	r = r ?: fio_truncate(out, src->size);
	fio_close(out);
	if (r)
		fprintf(stderr, "img: convert: %s\n", strerror(-r));
	return r;
}

static int cmd_convert(int argc, char **argv)
{
	static const struct option lo[] = { { "backing-dir", required_argument, NULL, 'B' },
					    { NULL, 0, NULL, 0 } };
	struct qcow2_create_opts co = { 0 };
	const char *bdir = NULL, *ofmt = NULL, *ifmt = "qcow2";
	struct view v;
	bool prog = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "O:f:o:p", lo, NULL)) != -1) {
		switch (c) {
		case 'O':
			ofmt = optarg;
			break;
		case 'f':
			ifmt = optarg;
			break;
		case 'o':
			if (parse_create_opts(optarg, &co))
				return 1;
			break;
		case 'p':
			prog = true;
			break;
		case 'B':
			bdir = optarg;
			break;
		default:
			return usage();
		}
	}
	if (argc - optind != 2 || !ofmt)
		return usage();
	if (strcmp(ofmt, "raw") && strcmp(ofmt, "qcow2")) {
		fprintf(stderr, "img: -O %s: expected raw or qcow2\n", ofmt);
		return 1;
	}
	if (co.backing_file) {
		fprintf(stderr, "img: convert writes a whole image: no backing_file\n");
		return 1;
	}
	if (view_open(&v, argv[optind], ifmt, bdir))
		return 1;
	r = strcmp(ofmt, "raw") ? convert_to_qcow2(&v, argv[optind + 1], &co, prog)
				: convert_to_raw(&v, argv[optind + 1], prog);
	view_close(&v);
	return r ? 1 : 0;
}

/* @n bytes at @off of @v's view, zeros past its end (compare of different sizes). */
static int read_padded(struct view *v, uint8_t *buf, size_t n, uint64_t off)
{
	size_t m = off >= v->size ? 0 : v->size - off < n ? (size_t)(v->size - off) : n;

	memset(buf + m, 0, n - m);
	return m ? view_read(v, buf, m, off) : 0;
}

/*
 * qemu-img compare: the guest views of two images, 0 "Images are identical.", 1 "Content
 * mismatch at offset N!", 2 on errors. Different sizes: a warning, and the larger one's
 * extra part must read as zeros (-s, strict: a mismatch at once).
 */
static int cmd_compare(int argc, char **argv)
{
	static const struct option lo[] = { { "backing-dir", required_argument, NULL, 'B' },
					    { NULL, 0, NULL, 0 } };
	const char *bdir = NULL, *fa = "qcow2", *fb = "qcow2";
	uint8_t *x = malloc(COPY_CHUNK), *y = malloc(COPY_CHUNK);
	struct view a, b;
	bool strict = false, prog = false;
	uint64_t off, big;
	int c, r = 2;

	while ((c = getopt_long(argc, argv, "f:F:sp", lo, NULL)) != -1) {
		if (c == 'f')
			fa = optarg;
		else if (c == 'F')
			fb = optarg;
		else if (c == 's')
			strict = true;
		else if (c == 'p')
			prog = true;
		else if (c == 'B')
			bdir = optarg;
		else
			goto usage;
	}
	if (argc - optind != 2 || !x || !y)
		goto usage;
	if (view_open(&a, argv[optind], fa, bdir))
		goto out;
	if (view_open(&b, argv[optind + 1], fb, bdir)) {
		view_close(&a);
		goto out;
	}
	big = a.size < b.size ? b.size : a.size;
	if (a.size != b.size) {
		if (strict) {
			printf("Strict mode: Image size mismatch!\n");
			r = 1;
			goto done;
		}
		printf("Warning: Image size mismatch!\n");
	}
	for (off = 0, r = 0; !r && off < big; off += COPY_CHUNK) {
		size_t n = big - off < COPY_CHUNK ? big - off : COPY_CHUNK, i;

		r = read_padded(&a, x, n, off) ?: read_padded(&b, y, n, off);
		if (r) {
			fprintf(stderr, "img: compare: %s\n", strerror(-r));
			r = 2;
			break;
		}
		progress(prog, off + n, big);
		if (!memcmp(x, y, n))
			continue;
		for (i = 0; x[i] == y[i]; i++)
			;
		printf("Content mismatch at offset %" PRIu64 "!\n", (off + i) & ~(uint64_t)511);
		r = 1;
	}
	if (!r)
		printf("Images are identical.\n");
done:
	view_close(&a);
	view_close(&b);
out:
	free(x);
	free(y);
	return r;
usage:
	free(x);
	free(y);
	usage();
	return 2;
}

/* The base a commit writes into: a qcow2 image or a raw file, opened for writing. */
struct base {
	struct qcow2 *q;
	struct fio *raw;
	uint64_t size;
};

static int base_open(struct base *b, struct qcow2 *top, const char *bdir)
{
	struct qcow2_opts o = { .backing = QCOW2_BACKING_DIR,
				.backing_dir = bdir,
				.policy_hint = BACKING_HINT };
	char err[1024] = "";
	const char *path;
	bool raw;
	int fd, r = qcow2_backing_reopen_rw(top, &fd, &path, &raw);

	*b = (struct base){ 0 };
	if (r) {
		fprintf(stderr, "img: commit: %s\n",
			r == -ENOENT ? "the image has no backing file to commit into"
				     : strerror(-r));
		return r;
	}
	r = fio_from_fd(raw ? &b->raw : &o.file, fd, FIO_NO_URING);
	if (r) {
		close(fd);
		return r;
	}
	if (raw)
		return fio_size(b->raw, &b->size);
	r = qcow2_open(&b->q, path, &o, err, sizeof(err));
	if (r) {
		fio_close(o.file);
		fprintf(stderr, "img: commit: %s: %s\n", path, err[0] ? err : strerror(-r));
		return r;
	}
	b->size = qcow2_size(b->q);
	return 0;
}

static int base_write(struct base *b, const void *buf, size_t n, uint64_t off)
{
	return b->q ? qcow2_pwrite(b->q, buf, n, off) : fio_pwrite(b->raw, buf, n, off);
}

/* The run's zeros: the zero flag in a qcow2 base, written zero bytes in a raw one. */
static int base_zero(struct base *b, const uint8_t *zero, uint64_t len, uint64_t off)
{
	int r = 0;

	if (b->q)
		return qcow2_write_zeroes(b->q, off, len);
	for (uint64_t done = 0; !r && done < len; done += COPY_CHUNK)
		r = fio_pwrite(b->raw, zero, len - done < COPY_CHUNK ? len - done : COPY_CHUNK,
			       off + done);
	return r;
}

static int base_close(struct base *b, int r)
{
	if (b->q) {
		r = r ?: qcow2_flush(b->q);
		r = qcow2_close(b->q) ?: r;
	}
	if (b->raw) {
		r = r ?: fio_sync(b->raw);
		fio_close(b->raw);
	}
	return r;
}

/*
 * qemu-img commit: FILE's own clusters (data and zeros) written into its backing file,
 * which is made durable first; then FILE is emptied (-d: left as it is), so that it
 * shows the base again. A crash in between leaves FILE's view as it was.
 */
static int cmd_commit(int argc, char **argv)
{
	static const struct option lo[] = { { "backing-dir", required_argument, NULL, 'B' },
					    { NULL, 0, NULL, 0 } };
	uint8_t *buf = malloc(COPY_CHUNK), *zero = calloc(1, COPY_CHUNK);
	struct qcow2_opts o = { .backing = QCOW2_BACKING_DIR, .policy_hint = BACKING_HINT };
	bool keep = false, prog = false;
	struct qcow2_map_ent m;
	char err[1024] = "";
	struct qcow2 *top = NULL;
	struct base b = { 0 };
	uint64_t size = 0;
	int c, r = -EINVAL;

	while ((c = getopt_long(argc, argv, "dpf:", lo, NULL)) != -1) {
		if (c == 'd')
			keep = true;
		else if (c == 'p')
			prog = true;
		else if (c == 'B')
			o.backing_dir = optarg;
		else if (c != 'f')
			goto usage;
	}
	if (argc - optind != 1 || !buf || !zero)
		goto usage;
	if (!o.backing_dir) {
		fprintf(stderr, "img: commit writes into the backing file: allow the directory "
				"holding the chain with --backing-dir DIR\n");
		goto out;
	}
	r = qcow2_open(&top, argv[optind], &o, err, sizeof(err));
	if (r) {
		fprintf(stderr, "img: could not open '%s': %s\n", argv[optind],
			err[0] ? err : strerror(-r));
		goto out;
	}
	r = base_open(&b, top, o.backing_dir);
	size = qcow2_size(top);
	if (!r && b.size < size) {
		fprintf(stderr,
			"img: commit: the backing file (%" PRIu64 " bytes) is smaller than "
			"the image (%" PRIu64 "): grow it first\n",
			b.size, size);
		r = -EINVAL;
	}
	for (uint64_t off = 0; !r && off < size; off += m.length) {
		r = qcow2_map(top, off, &m);
		if (r || m.depth || !m.present)
			continue;
		if (m.zero)
			r = base_zero(&b, zero, m.length, m.start);
		for (uint64_t d = 0; !r && !m.zero && d < m.length; d += COPY_CHUNK) {
			size_t n = m.length - d < COPY_CHUNK ? m.length - d : COPY_CHUNK;

			r = qcow2_pread(top, buf, n, m.start + d)
				?: base_write(&b, buf, n, m.start + d);
		}
		progress(prog, m.start + m.length, size);
	}
	r = base_close(&b, r);
	if (!r && !keep)
		r = qcow2_make_empty(top) ?: qcow2_flush(top);
	if (r)
		fprintf(stderr, "img: commit: %s\n", strerror(-r));
	else
		printf("Image committed.\n");
out:
	if (top && qcow2_close(top) && !r)
		r = -EIO;
	free(buf);
	free(zero);
	return r ? 1 : 0;
usage:
	free(buf);
	free(zero);
	return usage();
}

/*
 * Safe rebase: every cluster of FILE that it does not hold itself and where the new
 * backing file reads differently from the old chain gets the old data copied into FILE,
 * so the guest view does not change. @nb NULL: no backing file (all of it copied).
 */
static int rebase_copy(struct qcow2 *q, struct view *nb, unsigned int cbits, bool prog)
{
	size_t cs = (size_t)1 << cbits;
	uint8_t *x = malloc(cs), *y = calloc(1, cs);
	uint64_t size = qcow2_size(q);
	struct qcow2_map_ent m;
	int r = x && y ? 0 : -ENOMEM;

	for (uint64_t off = 0; !r && off < size; off += m.length) {
		r = qcow2_map(q, off, &m);
		if (r || (!m.depth && m.present))
			continue;
		for (uint64_t d = 0; !r && d < m.length; d += cs) {
			size_t n = m.length - d < cs ? m.length - d : cs;

			r = qcow2_pread(q, x, n, m.start + d);
			if (!r && nb)
				r = read_padded(nb, y, n, m.start + d);
			if (!r && memcmp(x, y, n))
				r = qcow2_pwrite(q, x, n, m.start + d);
		}
		progress(prog, m.start + m.length, size);
	}
	free(x);
	free(y);
	return r ?: qcow2_flush(q);
}

/*
 * qemu-img rebase: FILE names another backing file (-b NEW -F FMT; -b "": none). Safe (the
 * default): data FILE would then read differently is first copied into it, which needs
 * the old chain and the new backing file, both under --backing-dir. -u: only the name.
 */
static int cmd_rebase(int argc, char **argv)
{
	static const struct option lo[] = { { "backing-dir", required_argument, NULL, 'B' },
					    { NULL, 0, NULL, 0 } };
	struct qcow2_opts o = { .policy_hint = BACKING_HINT };
	const char *nb = NULL, *fmt = NULL;
	bool unsafe = false, prog = false, nb_open = false;
	struct qcow2_info in;
	char err[1024] = "", *path = NULL;
	struct qcow2 *q = NULL;
	struct view v;
	int c, r;

	while ((c = getopt_long(argc, argv, "ub:F:pf:", lo, NULL)) != -1) {
		if (c == 'u')
			unsafe = true;
		else if (c == 'b')
			nb = optarg;
		else if (c == 'F')
			fmt = optarg;
		else if (c == 'p')
			prog = true;
		else if (c == 'B')
			o.backing_dir = optarg;
		else if (c != 'f')
			return usage();
	}
	if (argc - optind != 1 || !nb)
		return usage();
	if (!*nb)
		nb = NULL;
	if (nb && !fmt) {
		fprintf(stderr,
			"img: rebase: the new backing file needs its format: -F qcow2|raw\n");
		return 1;
	}
	if (fmt && strcmp(fmt, "qcow2") && strcmp(fmt, "raw")) {
		fprintf(stderr, "img: rebase: -F %s: expected qcow2 or raw\n", fmt);
		return 1;
	}
	if (unsafe) {
		o.ignore_backing = true; /* only the name changes: nothing is read */
	} else if (!o.backing_dir) {
		fprintf(stderr,
			"img: rebase reads the old and the new backing file: allow the "
			"directory holding them with --backing-dir DIR (or -u: only rename)\n");
		return 1;
	} else {
		o.backing = QCOW2_BACKING_DIR;
	}
	r = qcow2_open(&q, argv[optind], &o, err, sizeof(err));
	if (r) {
		fprintf(stderr, "img: could not open '%s': %s\n", argv[optind],
			err[0] ? err : strerror(-r));
		return 1;
	}
	if (!unsafe && nb) {
		path = backing_path(argv[optind], nb);
		r = path ? view_open(&v, path, fmt, o.backing_dir) : -ENOMEM;
		nb_open = !r;
	}
	if (!r && !unsafe) {
		qcow2_get_info(q, &in);
		r = rebase_copy(q, nb_open ? &v : NULL, in.cluster_bits, prog);
		if (r)
			fprintf(stderr, "img: rebase: copying data into %s: %s\n", argv[optind],
				strerror(-r));
	}
	if (!r) {
		r = qcow2_set_backing(q, nb, nb ? fmt : NULL);
		if (r)
			fprintf(stderr, "img: rebase: %s\n",
				r == -ENOSPC ? "the new backing file name does not fit in the "
					       "image's first cluster"
					     : strerror(-r));
	}
	if (nb_open)
		view_close(&v);
	free(path);
	if (qcow2_close(q) && !r)
		r = -EIO;
	return r ? 1 : 0;
}

/*
 * Where each run of guest bytes comes from, in qemu-img map's two formats: JSON (every
 * run) or human (the runs stored as plain data: offset, length, where, which file).
 */
static int cmd_map(int argc, char **argv)
{
	struct qcow2_map_ent m;
	const char *bdir = NULL;
	struct qcow2 *q;
	uint64_t off, size;
	int json, n = 0, r = 0, i = parse_view_opts(argc, argv, &json, &bdir);

	if (i < 0)
		return usage();
	if (open_guest(&q, argv[i], bdir, true))
		return 1;
	size = qcow2_size(q);
	if (json)
		putchar('[');
	else
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	for (off = 0; off < size; off += m.length, n++) {
		r = qcow2_map(q, off, &m);
		if (r) {
			fprintf(stderr, "img: map %s at %" PRIu64 ": %s\n", argv[i], off,
				strerror(-r));
			break;
		}
		if (json) {
			printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
			       ", \"depth\": %u, \"present\": %s, \"zero\": %s, \"data\": %s",
			       n ? ",\n" : "", m.start, m.length, m.depth,
			       m.present ? "true" : "false", m.zero ? "true" : "false",
			       m.data ? "true" : "false");
			if (m.has_offset)
				printf(", \"offset\": %" PRIu64, m.offset);
			putchar('}');
		} else if (m.data && !m.has_offset) {
			fprintf(stderr,
				"img: %s has compressed clusters, which the human format "
				"cannot show: use --output=json\n",
				argv[i]);
			r = -EINVAL;
			break;
		} else if (m.data) {
			printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", m.start,
			       m.length, m.offset, m.file);
		}
	}
	if (json)
		printf("]\n");
	qcow2_close(q);
	return r ? 1 : 0;
}

static int io_cmd(struct qcow2 *q, const char *cmd)
{
	char verb[16] = "", flag[8] = "", pat[16] = "", a[32] = "", b[32] = "";
	uint64_t off = 0, len = 0;
	unsigned int p = 0;
	int n = sscanf(cmd, "%15s %7s %15s %31s %31s", verb, flag, pat, a, b), r;

	if (!strcmp(verb, "flush"))
		return qcow2_flush(q);
	if ((!strcmp(verb, "write") || !strcmp(verb, "read")) && n == 5 && !strcmp(flag, "-P")) {
		p = strtoul(pat, NULL, 0);
	} else if ((!strcmp(verb, "discard") || !strcmp(verb, "zero")) && n == 3) {
		snprintf(a, sizeof(a), "%s", flag);
		snprintf(b, sizeof(b), "%s", pat);
	} else {
		fprintf(stderr, "img: io: cannot parse '%s'\n", cmd);
		return -EINVAL;
	}
	if (config_parse_size(a, &off) || config_parse_size(b, &len))
		return -EINVAL;
	if (!strcmp(verb, "discard"))
		return qcow2_discard(q, off, len);
	if (!strcmp(verb, "zero"))
		return qcow2_write_zeroes(q, off, len);
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		return -ENOMEM;
	if (verb[0] == 'w') {
		memset(buf, p, len);
		r = qcow2_pwrite(q, buf, len, off);
	} else {
		r = qcow2_pread(q, buf, len, off);
		for (uint64_t i = 0; !r && i < len; i++) {
			if (buf[i] != (uint8_t)p) {
				fprintf(stderr,
					"Pattern verification failed at offset %" PRIu64 "\n",
					off + i);
				r = -EILSEQ;
			}
		}
	}
	free(buf);
	return r;
}

static int cmd_io(int argc, char **argv)
{
	static const struct option lo[] = { { "backing-dir", required_argument, NULL, 'B' },
					    { NULL, 0, NULL, 0 } };
	const char *bdir = NULL;
	bool stats = false;
	struct qcow2 *q;
	int c, r = 0, i;

	while ((c = getopt_long(argc, argv, "+s", lo, NULL)) != -1) {
		if (c == 's')
			stats = true;
		else if (c == 'B')
			bdir = optarg;
		else
			return usage();
	}
	if (argc - optind < 1)
		return usage();
	if (open_guest(&q, argv[optind], bdir, false))
		return 1;
	double t0 = now();

	for (i = optind + 1; i < argc && !r; i++)
		r = io_cmd(q, argv[i]);
	if (r)
		fprintf(stderr, "img: io: '%s': %s\n", argv[i - 1], strerror(-r));
	if (stats) {
		struct qcow2_stats st;
		double t = now() - t0;

		qcow2_get_stats(q, &st);
		printf("Run completed in %.3f seconds.\n", t);
		print_stats(&st, st.data_bytes / 1048576.0, t, argc - optind - 1);
	}
	c = qcow2_close(q);
	return r || c ? 1 : 0;
}

int img_main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage_to(stdout);
		return 0;
	}
	optind = 0; /* reinitialise getopt: img_main may run after other parsing */
	argc--;
	argv++;
	if (!strcmp(argv[0], "create"))
		return cmd_create(argc, argv);
	if (!strcmp(argv[0], "info"))
		return cmd_info(argc, argv);
	if (!strcmp(argv[0], "check"))
		return cmd_check(argc, argv);
	if (!strcmp(argv[0], "map"))
		return cmd_map(argc, argv);
	if (!strcmp(argv[0], "compare"))
		return cmd_compare(argc, argv);
	if (!strcmp(argv[0], "commit"))
		return cmd_commit(argc, argv);
	if (!strcmp(argv[0], "rebase"))
		return cmd_rebase(argc, argv);
	if (!strcmp(argv[0], "convert"))
		return cmd_convert(argc, argv);
	if (!strcmp(argv[0], "io"))
		return cmd_io(argc, argv);
	if (!strcmp(argv[0], "bench"))
		return cmd_bench(argc, argv);
	return usage();
}
