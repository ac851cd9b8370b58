// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The FUSE server's request parser and opcodes against arbitrary messages,
 * on a real share: a temp directory made once per process whose contents are
 * rebuilt for every input (a file, a directory, a symlink to "/", a FIFO).
 * Two servers (read-write and read-only, both with a fake DAX window) are
 * made once and reset per input. Every segment is its own exactly sized heap
 * block so ASan sees any access outside it. Input:
 *
 *   [0]      bit 0: read-only server; bit 1: skip the automatic INIT; bit 2 (and
 *            not bit 0): the server with allow_devices, allow_setid and
 *            allow_priv_xattr on
 *   then up to 16 records:
 *   [0..1]   le16 message length L (clamped to what is left)
 *   [2]      bits 0-1: readable segments - 1; bit 2: set in.len = L;
 *            bit 3: in.nodeid = a node id the server returned (index in its
 *            low byte); bit 4: the first 8 argument bytes = a returned file
 *            handle (index in their low byte); bit 5: two writable segments
 *   [3..4]   le16 writable room
 *   then     L message bytes
 *
 * Checked: the return is < 0 or fits the room; a reply's header says its own
 * length and a sane error; a sibling directory outside the share never
 * changes; with the default servers the share holds no device node (but
 * whiteouts), no set-uid file or directory, no set-gid non-directory, no
 * trusted.* or security.capability xattr, and the server's descriptors and
 * directory buffers stay within their budgets. FALLOCATE and COPY_FILE_RANGE
 * over 1 MiB are skipped (they would only fill the host disk, which is the
 * guest's right, not a bug).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/fuse.h>

#include "fs/fuse_server.h"

#define MAX_RECORDS 16
#define TABLE	    8

static char base[64], share[128], outside[128];
static struct fuse_server *srv_rw, *srv_ro, *srv_allow;
static struct stat outside_st;
static uint64_t nodes[TABLE], fhs[TABLE];
static unsigned int nnodes, nfhs;

static int fake_map(void *ctx, int fd, uint64_t foffset, uint64_t moffset, uint64_t len,
		    bool writable)
{
	struct stat st;

	(void)ctx;
	(void)writable;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		abort(); /* the server handed the window something that is not a file */
	if (moffset + len > (64ULL << 20) || moffset + len < moffset || foffset % 4096)
		abort();
	return 0;
}

static int fake_unmap(void *ctx, uint64_t moffset, uint64_t len)
{
	(void)ctx;
	if (moffset + len > (64ULL << 20) || moffset + len < moffset || !len)
		abort();
	return 0;
}

static const struct fuse_dax_ops dax = { .map = fake_map, .unmap = fake_unmap };

static int rm_cb(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)type;
	if (f->level == 0)
		return 0; /* keep the share directory itself: the servers hold it */
	return remove(p);
}

static void rm_all(void)
{
	nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	rmdir(base);
}

static void cleanup(void)
{
	fuse_server_free(srv_rw);
	fuse_server_free(srv_ro);
	fuse_server_free(srv_allow);
	rm_all();
}

static void populate(void)
{
	char p[256], names[4096];
	ssize_t n;
	int fd;

	nftw(share, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	chmod(share, 0755);
	/* The share's root stays: drop what the last input (the permissive server) set on it. */
	n = llistxattr(share, names, sizeof(names));
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
		lremovexattr(share, names + i);
	snprintf(p, sizeof(p), "%s/f", share);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, "hello world\n", 12) < 0)
			abort();
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/d", share);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/d/g", share);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	snprintf(p, sizeof(p), "%s/l", share);
	symlink("/", p);
	snprintf(p, sizeof(p), "%s/p", share);
	mkfifo(p, 0644);
}

static void setup(void)
{
	struct fs_share_opts o;
	char p[256];

	strcpy(base, "/tmp/fuzz_fuse.XXXXXX");
	if (!mkdtemp(base))
		abort();
	snprintf(share, sizeof(share), "%s/share", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	mkdir(share, 0755);
	mkdir(outside, 0755);
	snprintf(p, sizeof(p), "%s/secret", outside);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	if (stat(outside, &outside_st) < 0)
		abort();
	memset(&o, 0, sizeof(o));
	o.path = share;
	o.dax = FS_DAX_INODE;
	o.xattr = true;
	o.max_fds = 64;
	o.dax_window = 64ULL << 20;
	if (fuse_server_new(&o, &dax, NULL, &srv_rw))
		abort();
	o.allow_devices = o.allow_setid = o.allow_priv_xattr = true;
	if (fuse_server_new(&o, &dax, NULL, &srv_allow))
		abort();
	o.allow_devices = o.allow_setid = o.allow_priv_xattr = false;
	o.readonly = true;
	if (fuse_server_new(&o, &dax, NULL, &srv_ro))
		abort();
	atexit(cleanup);
}

/* What a default share may never hold for host users (nftw callback). */
static int check_entry(const char *p, const struct stat *st, int type, struct FTW *f)
{
	char names[4096];
	ssize_t n;

	(void)type;
	(void)f;
	if ((S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) &&
	    !(S_ISCHR(st->st_mode) && st->st_rdev == 0))
		abort(); /* a device node, not a whiteout */
	if ((st->st_mode & S_ISUID) || (!S_ISDIR(st->st_mode) && (st->st_mode & S_ISGID)))
		abort(); /* a set-id bit */
	n = llistxattr(p, names, sizeof(names));
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
		if (!strncmp(names + i, "trusted.", 8) || !strcmp(names + i, "security.capability"))
			abort();
	return 0;
}

static void remember(uint32_t op, const uint8_t *out, size_t n)
{
	struct fuse_entry_out e;
	struct fuse_open_out oo;
	size_t h = sizeof(struct fuse_out_header);

	if ((op == FUSE_LOOKUP || op == FUSE_CREATE || op == FUSE_MKDIR || op == FUSE_MKNOD ||
	     op == FUSE_SYMLINK || op == FUSE_LINK) &&
	    n >= h + sizeof(e)) {
		memcpy(&e, out + h, sizeof(e));
		nodes[nnodes++ % TABLE] = e.nodeid;
	}
	if (op == FUSE_CREATE && n >= h + sizeof(e) + sizeof(oo)) {
		memcpy(&oo, out + h + sizeof(e), sizeof(oo));
		fhs[nfhs++ % TABLE] = oo.fh;
	}
	if ((op == FUSE_OPEN || op == FUSE_OPENDIR) && n >= h + sizeof(oo)) {
		memcpy(&oo, out + h, sizeof(oo));
		fhs[nfhs++ % TABLE] = oo.fh;
	}
}

static bool skip(const uint8_t *msg, size_t len)
{
	struct fuse_in_header h;

	if (len < sizeof(h))
		return false;
	memcpy(&h, msg, sizeof(h));
	if (h.opcode == FUSE_FALLOCATE && len >= sizeof(h) + sizeof(struct fuse_fallocate_in)) {
		struct fuse_fallocate_in f;

		memcpy(&f, msg + sizeof(h), sizeof(f));
		return f.length > (1 << 20);
	}
	if (h.opcode == FUSE_COPY_FILE_RANGE &&
	    len >= sizeof(h) + sizeof(struct fuse_copy_file_range_in)) {
		struct fuse_copy_file_range_in c;

		memcpy(&c, msg + sizeof(h), sizeof(c));
		return c.len > (1 << 20);
	}
	return false;
}

static void one(struct fuse_server *s, const uint8_t *msg, size_t len, uint8_t ctl, size_t room)
{
	struct iovec in[4], out[2];
	unsigned int nin = 1 + (ctl & 3), nout = (ctl & 0x20) ? 2 : 1;
	uint8_t *ob, *seg[4] = { 0 };
	struct fuse_out_header oh;
	struct fuse_in_header h;
	size_t off = 0;
	ssize_t ret;

	for (unsigned int i = 0; i < nin; i++) {
		size_t n = (i == nin - 1) ? len - off : len / nin;

		seg[i] = malloc(n ? n : 1);
		memcpy(seg[i], msg + off, n);
		in[i].iov_base = seg[i];
		in[i].iov_len = n;
		off += n;
	}
	ob = malloc(room ? room : 1);
	out[0].iov_base = ob;
	out[0].iov_len = nout == 2 ? room / 3 : room;
	out[1].iov_base = ob + out[0].iov_len;
	out[1].iov_len = room - out[0].iov_len;
	if (out[1].iov_len) {
		/* the second segment is its own block, to catch an overflow of the first */
		out[1].iov_base = malloc(out[1].iov_len);
	}
	ret = fuse_server_handle(s, in, nin, out, nout);
	if (ret > (ssize_t)room)
		abort();
	if (ret >= (ssize_t)sizeof(oh)) {
		uint8_t *flat = malloc((size_t)ret);
		size_t a = (size_t)ret < out[0].iov_len ? (size_t)ret : out[0].iov_len;

		memcpy(flat, out[0].iov_base, a);
		if ((size_t)ret > a)
			memcpy(flat + a, out[1].iov_base, (size_t)ret - a);
		memcpy(&oh, flat, sizeof(oh));
		if (oh.len != (uint32_t)ret || oh.error > 0 || oh.error < -4095 ||
		    (oh.error && oh.len != sizeof(oh)))
			abort();
		if (!oh.error && len >= sizeof(h)) {
			memcpy(&h, msg, sizeof(h));
			remember(h.opcode, flat, (size_t)ret);
		}
		free(flat);
	}
	if (nout == 2 && out[1].iov_len)
		free(out[1].iov_base);
	free(ob);
	for (unsigned int i = 0; i < nin; i++)
		free(seg[i]);
}

static void init(struct fuse_server *s)
{
	struct {
		struct fuse_in_header h;
		struct fuse_init_in i;
	} m = { { sizeof(m), FUSE_INIT, 1, 0, 0, 0, 0, 0, 0 },
		{ 7, 37, 1 << 17, 0xffffffffu, 0xffffffffu, { 0 } } };

	one(s, (const uint8_t *)&m, sizeof(m), 0, 4096);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool done;
	struct fuse_server *s;
	struct stat st;
	size_t pos = 1;

	if (!done) {
		setup();
		done = true;
	}
	if (size < 1)
		return 0;
	s = (data[0] & 1) ? srv_ro : (data[0] & 4) ? srv_allow : srv_rw;
	populate();
	fuse_server_reset(s);
	nnodes = nfhs = 0;
	memset(nodes, 0, sizeof(nodes));
	memset(fhs, 0, sizeof(fhs));
	if (!(data[0] & 2))
		init(s);
	for (int r = 0; r < MAX_RECORDS && pos + 5 <= size; r++) {
		size_t len = data[pos] | data[pos + 1] << 8;
		uint8_t ctl = data[pos + 2];
		size_t room = data[pos + 3] | data[pos + 4] << 8;
		uint8_t *msg;

		pos += 5;
		if (len > size - pos)
			len = size - pos;
		msg = malloc(len ? len : 1);
		memcpy(msg, data + pos, len);
		pos += len;
		if (len >= sizeof(struct fuse_in_header)) {
			struct fuse_in_header h;

			memcpy(&h, msg, sizeof(h));
			if (ctl & 4)
				h.len = (uint32_t)len;
			if (ctl & 8)
				h.nodeid = (h.nodeid & 0xff) % TABLE == 0
					       ? 1
					       : nodes[(h.nodeid & 0xff) % TABLE];
			memcpy(msg, &h, sizeof(h));
			if ((ctl & 0x10) && len >= sizeof(h) + 8) {
				uint64_t fh = fhs[msg[sizeof(h)] % TABLE];

				memcpy(msg + sizeof(h), &fh, 8);
			}
		}
		if (!skip(msg, len))
			one(s, msg, len, ctl, room);
		free(msg);
	}
	if (s != srv_allow) {
		struct fuse_server_stats fst;

		nftw(share, check_entry, 16, FTW_PHYS);
		fuse_server_get_stats(s, &fst);
		if (fst.fds > 64 || fst.dirbufs > 256)
			abort();
	}
	/* Nothing outside the share changed. */
	if (stat(outside, &st) < 0 || st.st_mtim.tv_sec != outside_st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != outside_st.st_mtim.tv_nsec || st.st_nlink != outside_st.st_nlink)
		abort();
	return 0;
}
