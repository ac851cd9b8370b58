// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Node ids and file handles of the FUSE server.
 *
 * A node id is (generation << 32 | slot). Slot 1 generation 0 is the root
 * (FUSE_ROOT_ID); every other slot starts at generation 1 and bumps it each
 * time it is freed, so an id the guest kept past its FORGET no longer
 * matches and gets ESTALE instead of reaching whatever reuses the slot. File
 * handles use the same encoding. Inodes are found again by (st_dev, st_ino)
 * so two names of one file share one node id, as the kernel expects.
 *
 * Every inode slot holds one O_PATH descriptor and every handle one open
 * descriptor; together they are bounded by max_fds (CVE-2020-10717: a guest
 * must not exhaust the VMM's descriptors), and so are the tables: slots are
 * reused, so ino[] and h[] never grow past the most descriptors held at once.
 * A directory handle's read buffer counts against FUSE_SRV_MAX_DIRBUFS.
 * Requests take a reference while they use a descriptor so a concurrent
 * FORGET/RELEASE/reset never closes it under them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fuse_priv.h"

#define SLOT(id) ((uint32_t)((id)&0xffffffffu))
#define GEN(id)	 ((uint32_t)((id) >> 32))

static uint32_t hash_of(const struct fuse_server *s, dev_t dev, ino_t ino)
{
	uint64_t h =
	    ((uint64_t)dev * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)ino * 0xff51afd7ed558ccdULL);

	return (uint32_t)(h ^ (h >> 29)) & s->hash_mask;
}

static void hash_del(struct fuse_server *s, uint32_t idx)
{
	int32_t *pp = &s->hash[hash_of(s, s->ino[idx].dev, s->ino[idx].ino)];

	while (*pp >= 0) {
		if ((uint32_t)*pp == idx) {
			*pp = s->ino[idx].next;
			return;
		}
		pp = &s->ino[*pp].next;
	}
}

/* Close a slot nobody references any more; called with s->lock held. */
static void ino_release_locked(struct fuse_server *s, uint32_t idx)
{
	struct fuse_inode *n = &s->ino[idx];

	hash_del(s, idx);
	close(n->fd);
	n->fd = -1;
	n->gen++;
	if (n->gen == 0) /* never hand out generation 0 again (the root's) */
		n->gen = 1;
	n->next = s->ino_free;
	s->ino_free = (int32_t)idx;
	s->nfds--;
}

int fuse_table_init(struct fuse_server *s)
{
	uint32_t nb = 64;

	while (nb < s->max_fds && nb < (1u << 16))
		nb <<= 1;
	s->hash = malloc(nb * sizeof(*s->hash));
	s->ino_cap = 64;
	s->ino = calloc(s->ino_cap, sizeof(*s->ino));
	s->h_cap = 16;
	s->h = calloc(s->h_cap, sizeof(*s->h));
	if (!s->hash || !s->ino || !s->h)
		return -ENOMEM;
	memset(s->hash, 0xff, nb * sizeof(*s->hash));
	s->hash_mask = nb - 1;
	s->ino_free = -1;
	s->h_free = -1;
	for (uint32_t i = 0; i < s->ino_cap; i++) {
		s->ino[i].fd = -1;
		s->ino[i].gen = 1;
	}
	s->nino = 2; /* slot 0 unused: node id 0 is never valid */
	return 0;
}

static int ino_alloc_locked(struct fuse_server *s, uint32_t *idx)
{
	if (s->ino_free >= 0) {
		*idx = (uint32_t)s->ino_free;
		s->ino_free = s->ino[*idx].next;
		return 0;
	}
	if (s->nino == s->ino_cap) {
		uint32_t cap = s->ino_cap * 2;
		struct fuse_inode *n = realloc(s->ino, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (uint32_t i = s->ino_cap; i < cap; i++) {
			memset(&n[i], 0, sizeof(n[i]));
			n[i].fd = -1;
			n[i].gen = 1;
		}
		s->ino = n;
		s->ino_cap = cap;
	}
	*idx = s->nino++;
	return 0;
}

static void ino_insert_locked(struct fuse_server *s, uint32_t idx, int fd, const struct stat *st)
{
	struct fuse_inode *n = &s->ino[idx];
	uint32_t b = hash_of(s, st->st_dev, st->st_ino);

	n->fd = fd;
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->type = st->st_mode & S_IFMT;
	n->nlookup = 1;
	n->refs = 0;
	n->next = s->hash[b];
	s->hash[b] = (int32_t)idx;
	s->nfds++;
}

/* Install the root: slot 1, generation 0, pinned until fuse_table_free. */
int fuse_table_set_root(struct fuse_server *s, int fd, const struct stat *st)
{
	s->ino[FUSE_ROOT_ID].gen = 0;
	ino_insert_locked(s, FUSE_ROOT_ID, fd, st);
	return 0;
}

int fuse_ino_get(struct fuse_server *s, uint64_t nodeid, struct fuse_iref *r)
{
	uint32_t idx = SLOT(nodeid);
	int ret = -ESTALE;

	pthread_mutex_lock(&s->lock);
	if (idx >= 1 && idx < s->nino && s->ino[idx].fd >= 0 && s->ino[idx].gen == GEN(nodeid) &&
	    (s->ino[idx].nlookup > 0 || idx == FUSE_ROOT_ID)) {
		s->ino[idx].refs++;
		r->idx = idx;
		r->fd = s->ino[idx].fd;
		r->type = s->ino[idx].type;
		ret = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void fuse_ino_put(struct fuse_server *s, const struct fuse_iref *r)
{
	struct fuse_inode *n;

	pthread_mutex_lock(&s->lock);
	n = &s->ino[r->idx];
	if (--n->refs == 0 && n->nlookup == 0 && r->idx != FUSE_ROOT_ID)
		ino_release_locked(s, r->idx);
	pthread_mutex_unlock(&s->lock);
}

int fuse_ino_lookup(struct fuse_server *s, int dirfd, const char *name, uint64_t *nodeid,
		    uint32_t *gen, struct stat *st)
{
	uint32_t idx;
	int32_t i;
	int fd, ret;

	fd = fuse_open_beneath(dirfd, name, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		return fd;
	ret = fuse_stat_fd(fd, st);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	pthread_mutex_lock(&s->lock);
	for (i = s->hash[hash_of(s, st->st_dev, st->st_ino)]; i >= 0; i = s->ino[i].next) {
		if (s->ino[i].dev == st->st_dev && s->ino[i].ino == st->st_ino)
			break;
	}
	if (i >= 0) {
		idx = (uint32_t)i;
		s->ino[idx].nlookup++;
	} else if (s->nfds >= s->max_fds) {
		ret = -ENFILE;
	} else {
		ret = ino_alloc_locked(s, &idx);
		if (!ret) {
			ino_insert_locked(s, idx, fd, st);
			fd = -1;
		}
	}
	if (!ret) {
		*nodeid = (uint64_t)s->ino[idx].gen << 32 | idx;
		*gen = s->ino[idx].gen;
	}
	pthread_mutex_unlock(&s->lock);
	if (fd >= 0)
		close(fd);
	if (ret == -ENFILE)
		fuse_over_budget(s, FUSE_BUDGET_NODES);
	return ret;
}

void fuse_ino_forget(struct fuse_server *s, uint64_t nodeid, uint64_t n)
{
	uint32_t idx = SLOT(nodeid);
	struct fuse_inode *in;

	if (idx == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&s->lock);
	s->forgets++;
	if (idx < s->nino && s->ino[idx].fd >= 0 && s->ino[idx].gen == GEN(nodeid)) {
		in = &s->ino[idx];
		in->nlookup -= n < in->nlookup ? n : in->nlookup;
		if (in->nlookup == 0 && in->refs == 0)
			ino_release_locked(s, idx);
	}
	pthread_mutex_unlock(&s->lock);
}

int fuse_fh_new(struct fuse_server *s, int fd, bool dir, uint64_t *fh)
{
	struct fuse_handle *h;
	uint32_t idx;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->nfds >= s->max_fds) {
		ret = -EMFILE;
		goto out;
	}
	if (s->h_free >= 0) {
		idx = (uint32_t)s->h_free;
		s->h_free = s->h[idx]->next;
	} else {
		if (s->nh == s->h_cap) {
			uint32_t cap = s->h_cap * 2;
			struct fuse_handle **n = realloc(s->h, cap * sizeof(*n));

			if (!n) {
				ret = -ENOMEM;
				goto out;
			}
			memset(n + s->h_cap, 0, (cap - s->h_cap) * sizeof(*n));
			s->h = n;
			s->h_cap = cap;
		}
		h = calloc(1, sizeof(*h));
		if (!h) {
			ret = -ENOMEM;
			goto out;
		}
		pthread_mutex_init(&h->lock, NULL);
		h->gen = 1;
		idx = s->nh++;
		s->h[idx] = h;
	}
	h = s->h[idx];
	h->fd = fd;
	h->dir = dir;
	h->refs = 0;
	h->released = false;
	h->dvalid = false;
	h->dlen = h->dpos = 0;
	s->nfds++;
	*fh = (uint64_t)h->gen << 32 | idx;
out:
	pthread_mutex_unlock(&s->lock);
	if (ret == -EMFILE)
		fuse_over_budget(s, FUSE_BUDGET_HANDLES);
	return ret;
}

static void fh_close_locked(struct fuse_server *s, uint32_t idx)
{
	struct fuse_handle *h = s->h[idx];

	close(h->fd);
	h->fd = -1;
	if (h->dbuf) {
		free(h->dbuf);
		h->dbuf = NULL;
		s->ndirbufs--;
	}
	h->dvalid = false;
	h->gen++;
	if (h->gen == 0)
		h->gen = 1;
	h->next = s->h_free;
	s->h_free = (int32_t)idx;
	s->nfds--;
}

int fuse_fh_get(struct fuse_server *s, uint64_t fh, bool dir, struct fuse_href *r)
{
	uint32_t idx = SLOT(fh);
	int ret = -EBADF;

	pthread_mutex_lock(&s->lock);
	if (idx < s->nh && s->h[idx]->fd >= 0 && s->h[idx]->gen == GEN(fh) &&
	    !s->h[idx]->released && s->h[idx]->dir == dir) {
		s->h[idx]->refs++;
		r->idx = idx;
		r->fd = s->h[idx]->fd;
		r->dir = dir;
		ret = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void fuse_fh_put(struct fuse_server *s, const struct fuse_href *r)
{
	struct fuse_handle *h;

	pthread_mutex_lock(&s->lock);
	h = s->h[r->idx];
	if (--h->refs == 0 && h->released)
		fh_close_locked(s, r->idx);
	pthread_mutex_unlock(&s->lock);
}

int fuse_fh_release(struct fuse_server *s, uint64_t fh, bool dir)
{
	uint32_t idx = SLOT(fh);
	int ret = -EBADF;

	pthread_mutex_lock(&s->lock);
	if (idx < s->nh && s->h[idx]->fd >= 0 && s->h[idx]->gen == GEN(fh) &&
	    !s->h[idx]->released && s->h[idx]->dir == dir) {
		s->h[idx]->released = true;
		if (s->h[idx]->refs == 0)
			fh_close_locked(s, idx);
		ret = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

pthread_mutex_t *fuse_fh_lock(struct fuse_server *s, uint32_t idx)
{
	pthread_mutex_t *m;

	pthread_mutex_lock(&s->lock);
	m = &s->h[idx]->lock;
	pthread_mutex_unlock(&s->lock);
	return m;
}

/* Drop every guest reference; @all also closes the root (fuse_server_free). */
void fuse_table_reset(struct fuse_server *s, bool all)
{
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 1; i < s->nino; i++) {
		struct fuse_inode *n = &s->ino[i];

		if (n->fd < 0 || (i == FUSE_ROOT_ID && !all))
			continue;
		n->nlookup = 0;
		if (n->refs == 0 || all)
			ino_release_locked(s, i);
	}
	for (uint32_t i = 0; i < s->nh; i++) {
		struct fuse_handle *h = s->h[i];

		if (h->fd < 0 || (h->released && !all))
			continue;
		h->released = true;
		if (h->refs == 0 || all)
			fh_close_locked(s, i);
	}
	pthread_mutex_unlock(&s->lock);
}

void fuse_table_free(struct fuse_server *s)
{
	if (s->ino && s->h && s->hash)
		fuse_table_reset(s, true);
	for (uint32_t i = 0; s->h && i < s->nh; i++) {
		pthread_mutex_destroy(&s->h[i]->lock);
		free(s->h[i]->dbuf);
		free(s->h[i]);
	}
	free(s->h);
	free(s->ino);
	free(s->hash);
}
