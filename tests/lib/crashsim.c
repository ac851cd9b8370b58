// SPDX-License-Identifier: GPL-2.0-or-later
/* In-memory fault-injecting file: see crashsim.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/file_io.h"
#include "crashsim.h"

enum op_type { OP_WRITE, OP_PUNCH, OP_TRUNC };

struct op {
	enum op_type type;
	uint64_t off, len; /* OP_TRUNC: len is the new size */
	uint8_t *data;
	uint32_t epoch;
};

struct buf {
	uint8_t *p;
	uint64_t size, cap;
};

struct crashsim {
	struct fio f;
	struct buf cur, dur;
	uint64_t max_size;
	struct op *ops;
	size_t nops, cap;
	uint32_t epoch;
	bool ordering_barrier;
	bool dur_lazy; /* dur not materialised: it equals cur (no ops yet) */
	long fail_after;
	void (*hook)(void *ctx);
	void *hook_ctx;
};

static struct crashsim *cs(struct fio *f)
{
	return (struct crashsim *)f;
}

static int buf_resize(struct buf *b, uint64_t size)
{
	if (size > b->cap) {
		uint64_t nc = b->cap ? b->cap : 65536;

		while (nc < size)
			nc *= 2;
		uint8_t *np = b->cap ? realloc(b->p, nc) : calloc(1, nc);

		if (!np)
			return -ENOMEM;
		if (b->cap)
			memset(np + b->cap, 0, nc - b->cap);
		b->p = np;
		b->cap = nc;
	}
	if (size < b->size)
		memset(b->p + size, 0, b->size - size);
	b->size = size;
	return 0;
}

static int buf_write(struct buf *b, const void *d, uint64_t off, uint64_t len)
{
	if (off + len > b->size) {
		int r = buf_resize(b, off + len);

		if (r)
			return r;
	}
	if (d)
		memcpy(b->p + off, d, len);
	else
		memset(b->p + off, 0, len);
	return 0;
}

static int dur_materialise(struct crashsim *c)
{
	if (!c->dur_lazy)
		return 0;
	int r = buf_resize(&c->dur, c->cur.size);

	if (r)
		return r;
	if (c->cur.size)
		memcpy(c->dur.p, c->cur.p, c->cur.size);
	c->dur_lazy = false;
	return 0;
}

static int op_push(struct crashsim *c, enum op_type t, const void *d, uint64_t off, uint64_t len)
{
	struct op *o;
	int r = dur_materialise(c);

	if (r)
		return r;

	if (c->nops == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 64;
		struct op *n = realloc(c->ops, sizeof(*n) * nc);

		if (!n)
			return -ENOMEM;
		c->ops = n;
		c->cap = nc;
	}
	o = &c->ops[c->nops];
	*o = (struct op){ t, off, len, NULL, c->epoch };
	if (d) {
		o->data = malloc(len);
		if (!o->data)
			return -ENOMEM;
		memcpy(o->data, d, len);
	}
	c->nops++;
	return 0;
}

static void ops_clear(struct crashsim *c)
{
	for (size_t i = 0; i < c->nops; i++)
		free(c->ops[i].data);
	c->nops = 0;
	c->epoch = 0;
}

static int s_preadv(struct fio *f, const struct iovec *iov, int cnt, uint64_t off)
{
	struct crashsim *c = cs(f);

	for (int i = 0; i < cnt; i++) {
		uint64_t n = iov[i].iov_len, have = 0;

		if (off < c->cur.size)
			have = c->cur.size - off < n ? c->cur.size - off : n;
		if (have)
			memcpy(iov[i].iov_base, c->cur.p + off, have);
		memset((char *)iov[i].iov_base + have, 0, n - have);
		off += n;
	}
	return 0;
}

static int s_write(struct crashsim *c, const void *d, uint64_t off, uint64_t len)
{
	int r;

	if (c->fail_after == 0)
		return -EIO;
	if (c->fail_after > 0)
		c->fail_after--;
	if (off + len > c->max_size || off + len < off)
		return -ENOSPC;
	r = op_push(c, OP_WRITE, d, off, len);
	return r ? r : buf_write(&c->cur, d, off, len);
}

static int s_pwritev(struct fio *f, const struct iovec *iov, int cnt, uint64_t off)
{
	for (int i = 0; i < cnt; i++) {
		int r = s_write(cs(f), iov[i].iov_base, off, iov[i].iov_len);

		if (r)
			return r;
		off += iov[i].iov_len;
	}
	return 0;
}

/* Apply one recorded operation to @b. */
static int op_apply(struct buf *b, const struct op *o, uint64_t off, uint64_t len)
{
	switch (o->type) {
	case OP_TRUNC:
		return buf_resize(b, o->len);
	case OP_PUNCH:
		if (o->off < b->size)
			memset(b->p + o->off, 0,
			       o->len < b->size - o->off ? o->len : b->size - o->off);
		return 0;
	default:
		return buf_write(b, o->data + off, o->off + off, len);
	}
}

static int s_sync(struct fio *f)
{
	struct crashsim *c = cs(f);

	if (c->hook)
		c->hook(c->hook_ctx);

	for (size_t i = 0; i < c->nops; i++) {
		int r = op_apply(&c->dur, &c->ops[i], 0, c->ops[i].len);

		if (r)
			return r;
	}
	ops_clear(c);
	return 0;
}

static int s_barrier(struct fio *f)
{
	struct crashsim *c = cs(f);

	if (!c->ordering_barrier)
		return s_sync(f);
	if (c->hook)
		c->hook(c->hook_ctx);
	c->epoch++;
	return 0;
}

static int s_truncate(struct fio *f, uint64_t size)
{
	struct crashsim *c = cs(f);
	int r;

	if (size > c->max_size)
		return -ENOSPC;
	r = op_push(c, OP_TRUNC, NULL, 0, size);
	return r ? r : buf_resize(&c->cur, size);
}

static int s_size(struct fio *f, uint64_t *size)
{
	*size = cs(f)->cur.size;
	return 0;
}

static int s_punch(struct fio *f, uint64_t off, uint64_t len)
{
	struct crashsim *c = cs(f);
	int r;

	if (off >= c->cur.size)
		return 0;
	if (len > c->cur.size - off)
		len = c->cur.size - off;
	r = op_push(c, OP_PUNCH, NULL, off, len);
	if (!r)
		memset(c->cur.p + off, 0, len);
	return r;
}

static int s_submit(struct fio *f, const struct fio_req *reqs, int n, bool sync_after)
{
	for (int i = 0; i < n; i++) {
		int r = s_write(cs(f), reqs[i].buf, reqs[i].off, reqs[i].len);

		if (r)
			return r;
	}
	return sync_after ? s_sync(f) : 0;
}

static void s_close(struct fio *f)
{
	struct crashsim *c = cs(f);

	ops_clear(c);
	free(c->ops);
	free(c->cur.p);
	free(c->dur.p);
	free(c);
}

static const struct fio_ops crashsim_ops = {
	.preadv = s_preadv,
	.pwritev = s_pwritev,
	.sync = s_sync,
	.barrier = s_barrier,
	.truncate = s_truncate,
	.size = s_size,
	.punch = s_punch,
	.submit = s_submit,
	.close = s_close,
};

static struct crashsim *cs_alloc(uint64_t max_size)
{
	struct crashsim *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->f.ops = &crashsim_ops;
	c->max_size = max_size;
	c->fail_after = -1;
	c->dur_lazy = true;
	return c;
}

struct fio *crashsim_new(const void *init, uint64_t size, uint64_t max_size)
{
	struct crashsim *c = cs_alloc(max_size);

	if (!c)
		return NULL;
	if (buf_resize(&c->cur, size)) {
		s_close(&c->f);
		return NULL;
	}
	if (size && init)
		memcpy(c->cur.p, init, size);
	return &c->f;
}

struct fio *crashsim_adopt(uint8_t *img, uint64_t size, uint64_t max_size)
{
	struct crashsim *c = cs_alloc(max_size);

	if (!c)
		return NULL;
	c->cur = (struct buf){ img, size, size };
	return &c->f;
}

void crashsim_ordering_barrier(struct fio *f, bool on)
{
	cs(f)->ordering_barrier = on;
	f->has_barrier = on;
}

void crashsim_fail_after(struct fio *f, long n)
{
	cs(f)->fail_after = n;
}

const uint8_t *crashsim_data(struct fio *f, uint64_t *size)
{
	*size = cs(f)->cur.size;
	return cs(f)->cur.p;
}

void crashsim_on_sync(struct fio *f, void (*fn)(void *ctx), void *ctx)
{
	cs(f)->hook = fn;
	cs(f)->hook_ctx = ctx;
}

uint64_t crashsim_pending_ops(struct fio *f)
{
	return cs(f)->nops;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int crashsim_crash(struct fio *f, uint64_t seed, uint8_t **img, uint64_t *size)
{
	struct crashsim *c = cs(f);
	struct buf b = { 0 };
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
	uint32_t cut = c->epoch ? rnd(&s) % (c->epoch + 1) : 0;
	const struct buf *d = c->dur_lazy ? &c->cur : &c->dur;
	int r = buf_resize(&b, d->size);

	if (r)
		return r;
	if (d->size)
		memcpy(b.p, d->p, d->size);
	/* Some crashes keep everything or nothing of the cut epoch. */
	unsigned int mode = rnd(&s) % 4;

	for (size_t i = 0; i < c->nops && !r; i++) {
		struct op *o = &c->ops[i];
		bool whole = o->epoch < cut;

		if (o->epoch > cut)
			break;
		if (!whole && mode == 0)
			continue;
		if (o->type != OP_WRITE) {
			if (whole || mode == 1 || rnd(&s) & 1)
				r = op_apply(&b, o, 0, o->len);
			continue;
		}
		/* Writes land sector by sector, in any order. */
		for (uint64_t p = 0; p < o->len && !r; p += 512) {
			uint64_t n = o->len - p < 512 ? o->len - p : 512;

			if (whole || mode == 1 || rnd(&s) & 1)
				r = op_apply(&b, o, p, n);
		}
	}
	if (r) {
		free(b.p);
		return r;
	}
	*img = b.p;
	*size = b.size;
	return 0;
}
