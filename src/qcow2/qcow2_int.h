/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qcow2 engine internals shared by the files of src/qcow2. */
#ifndef MINIVMM_QCOW2_INT_H
#define MINIVMM_QCOW2_INT_H

#include <endian.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "block/file_io.h"
#include "qcow2/qcow2.h"

#define QCOW2_MAGIC	       0x514649fbU
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_V2_HDR_LEN       72
#define QCOW2_V3_HDR_LEN       104
#define QCOW2_MAX_L1_BYTES     (32u << 20) /* as QEMU: bounds memory and open time */
#define QCOW2_MAX_RT_BYTES     (8u << 20)
#define QCOW2_MAX_SNAPSHOTS    65536
#define QCOW2_MAX_SIZE	       (1ULL << 56) /* 64 PiB virtual */
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_SECTOR	       512u /* metadata write granularity */

#define L1E_OFFSET_MASK	      0x00fffffffffffe00ULL
#define L1E_RESERVED_MASK     0x7f000000000001ffULL
#define L2E_OFFSET_MASK	      0x00fffffffffffe00ULL
#define L2E_RESERVED_MASK     0x3f000000000001feULL
#define RTE_OFFSET_MASK	      0xfffffffffffffe00ULL
#define QCOW_OFLAG_COPIED     (1ULL << 63)
#define QCOW_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW_OFLAG_ZERO	      1ULL

#define INCOMPAT_DIRTY	      (1ULL << 0)
#define INCOMPAT_CORRUPT      (1ULL << 1)
#define INCOMPAT_DATA_FILE    (1ULL << 2)
#define INCOMPAT_COMPRESSION  (1ULL << 3)
#define INCOMPAT_EXTL2	      (1ULL << 4)
#define INCOMPAT_SUPPORTED    (INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION)
#define COMPAT_LAZY_REFCOUNTS (1ULL << 0)
/*
 * Autoclear bit 63: "this image may hold clusters reserved by minivmm".
 * Set (and ordered) before the first reservation of a session, cleared at
 * clean close; when found set, a read-write open reclaims the leaks. Other
 * programs clear unknown autoclear bits, which only loses the hint.
 */
#define AUTOCLEAR_POOL (1ULL << 63)

#define EXT_END		  0
#define EXT_BACKING_FMT	  0xe2792acaU
#define EXT_FEATURE_TABLE 0x6803f857U
#define EXT_BITMAPS	  0x23852875U
#define EXT_CRYPTO	  0x0537be77U
#define EXT_DATA_FILE	  0x44415441U

/* Header field offsets (big-endian on disk). */
#define HDR_BACKING_OFF	 8
#define HDR_BACKING_SIZE 16
#define HDR_RT_OFFSET	 48
#define HDR_RT_CLUSTERS	 56
#define HDR_INCOMPAT	 72
#define HDR_AUTOCLEAR	 88

enum l2_type { L2_UNALLOC, L2_ZERO_PLAIN, L2_ZERO_ALLOC, L2_NORMAL, L2_COMPRESSED };

/* A cache of cluster-sized tables (L2 tables or refcount blocks). */
struct tc_ent {
	uint64_t off; /* host offset of the table; 0 when the slot is free */
	uint8_t *data;
	uint64_t *dirty; /* one bit per 512-byte sector */
	bool is_dirty;
	uint64_t need_gen; /* writeback waits until q->sync_gen >= need_gen */
	uint64_t lru;
	int next; /* hash chain */
};

struct tcache {
	struct tc_ent *ents;
	unsigned int n;
	unsigned int sectors; /* per table */
	size_t table_size;
	uint64_t tick;
	unsigned int last;
	uint8_t *mem;
	uint64_t *dirty_mem;
	int *bucket; /* hash of offsets -> entry index, chained through next */
	unsigned int nbuckets;
	unsigned int shift; /* log2 of table_size */
};

/* Reserved clusters: on-disk refcount 1, unreferenced, zeroed. */
struct pool_ext {
	uint64_t start, count; /* cluster indexes */
	uint64_t gen;	       /* durable once q->sync_gen >= gen */
};

/* Clusters freed by an L2 update that is not durable yet. */
struct freed {
	uint64_t cluster;
	uint64_t epoch; /* flush count when freed */
	bool to_pool;	/* plain cluster: punch and reuse; else decrement refcount */
};

struct qcow2 {
	pthread_mutex_t lock;
	struct fio *f;
	bool ro;
	bool prefill; /* reserve with written zeros rather than holes */
	char *path;

	/* Header. */
	int version;
	unsigned int cluster_bits, l2_bits, rb_bits, refcount_order;
	uint64_t cluster_size, size;
	uint32_t l1_size;
	uint64_t l1_offset, rt_offset;
	uint32_t rt_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompat, compat, autoclear;
	uint32_t header_length;
	bool zstd;
	char *backing_name;
	char backing_fmt[32];
	uint8_t *hdr; /* cluster 0 as read: extensions are never rewritten */
	size_t hdr_len;

	/* Tables. */
	uint64_t *l1;	    /* big-endian, as on disk */
	uint64_t *l1_dirty; /* sector bitmap */
	bool l1_is_dirty;
	uint64_t l1_need_gen;
	uint64_t *rt; /* refcount table, big-endian */
	uint32_t rt_entries;
	uint64_t *rt_dirty;
	bool rt_is_dirty;
	struct tcache l2c, rbc;

	/* Allocation. */
	uint64_t file_end;  /* in clusters: first cluster past every allocation */
	uint64_t free_hint; /* where the next free-cluster scan starts */
	struct pool_ext *pool;
	unsigned int pool_n, pool_cap;
	struct freed *freed;
	unsigned int freed_n, freed_cap;
	uint64_t allocs_since_refill;
	uint64_t allocs_since_flush;

	/* Ordering state. */
	uint64_t sync_gen;    /* completed syncs (barriers included) */
	uint64_t flush_epoch; /* completed flushes */
	bool dirty;	      /* guest-visible changes since the last flush */

	/* Backing chain. */
	struct qcow2 *bq;
	struct fio *braw;
	uint64_t bsize;

	/* Compressed-cluster cache. */
	uint8_t *cbuf; /* decompressed cluster */
	uint64_t cbuf_key;
	uint8_t *zbuf; /* compressed input */

	struct qcow2_stats st;
	uint64_t base_syncs, base_barriers; /* fio counters at open */
	char *err;			    /* where open errors go */
	size_t errlen;
};

static inline uint64_t be64_at(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

static inline uint32_t be32_at(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static inline uint16_t be16_at(const void *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return be16toh(v);
}

static inline void put_be64(void *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static inline void put_be32(void *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static inline void bit_set(uint64_t *bm, unsigned int i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

static inline bool bit_test(const uint64_t *bm, unsigned int i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

static inline uint64_t l1_get(struct qcow2 *q, uint32_t i)
{
	return be64toh(q->l1[i]);
}

static inline uint64_t rt_get(struct qcow2 *q, uint32_t i)
{
	return be64toh(q->rt[i]);
}

void qcow2_seterr(struct qcow2 *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qcow2_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* header.c */
int qcow2_parse_header(struct qcow2 *q);
int qcow2_write_header_field(struct qcow2 *q, unsigned int off, unsigned int len);
int qcow2_load_tables(struct qcow2 *q);

/* cache.c */
int tc_init(struct tcache *c, size_t table_size, size_t budget);
void tc_free(struct tcache *c);
/* Return the cached table at @off, reading it unless @fresh (then zeroed). */
int tc_get(struct qcow2 *q, struct tcache *c, uint64_t off, bool fresh, struct tc_ent **out);
void tc_mark(struct tcache *c, struct tc_ent *e, size_t byte_off, size_t len);
/* Append writes for dirty sectors of every entry allowed by @max_need. */
int tc_collect(struct qcow2 *q, struct tcache *c, struct fio_req **reqs, int *n, int *cap);
void tc_clean_all(struct tcache *c);
uint64_t tc_max_need(struct tcache *c);
void tc_drop(struct tcache *c, uint64_t off);
/* Append writes for the dirty sectors of a flat in-memory table. */
int flat_collect(struct qcow2 *q, void *table, uint64_t host_off, size_t bytes, uint64_t *dirty,
		 struct fio_req **reqs, int *n, int *cap);
int req_push(struct fio_req **reqs, int *n, int *cap, const void *buf, uint64_t off, uint32_t len);
/* Write queued requests, counting them as metadata. */
int qcow2_meta_submit(struct qcow2 *q, struct fio_req *reqs, int n, bool sync);

/* refcount.c */
int rc_get(struct qcow2 *q, uint64_t cluster, uint64_t *rc);
int rc_set(struct qcow2 *q, uint64_t cluster, uint64_t rc);
uint64_t rc_max(struct qcow2 *q);
int pool_alloc(struct qcow2 *q, uint64_t *cluster, uint64_t *gen);
int pool_reserve(struct qcow2 *q, uint64_t n, bool fill);
uint64_t pool_ready(struct qcow2 *q, uint64_t by_gen);
int pool_release_all(struct qcow2 *q);
int pool_refill_ahead(struct qcow2 *q, uint64_t demand);
int freed_add(struct qcow2 *q, uint64_t cluster, bool to_pool);
int freed_process(struct qcow2 *q);
int rc_write_dirty(struct qcow2 *q);
int rc_write_dirty_and_barrier(struct qcow2 *q);

/* cluster.c */
enum l2_type l2_classify(struct qcow2 *q, uint64_t e);
int l2_lookup(struct qcow2 *q, uint64_t vcl, uint64_t *entry);
int l2_for_write(struct qcow2 *q, uint64_t vcl, struct tc_ent **tab, unsigned int *idx);
void l2_set(struct qcow2 *q, struct tc_ent *tab, unsigned int idx, uint64_t e, uint64_t need);
int qcow2_check_meta_off(struct qcow2 *q, uint64_t off, uint64_t len, const char *what);

/* compress.c */
int qcow2_decompress(struct qcow2 *q, uint64_t entry, uint8_t *out);

/* rw.c */
int qcow2_read_locked(struct qcow2 *q, const struct iovec *iov, int cnt, uint64_t off);
int qcow2_flush_locked(struct qcow2 *q);

/* backing.c */
int qcow2_open_backing(struct qcow2 *q, const struct qcow2_opts *o, unsigned int depth,
		       const void *chain, int chain_n);
int qcow2_chain_self(const char *path, void *out);
size_t qcow2_chain_id_size(void);
int qcow2_backing_read(struct qcow2 *q, void *buf, size_t len, uint64_t off);
int qcow2_open_internal(struct qcow2 **out, const char *path, const struct qcow2_opts *o,
			unsigned int depth, const void *chain, int chain_n, char *err,
			size_t errlen);

#endif
