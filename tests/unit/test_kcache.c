// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The host-decompressed kernel cache (src/vcpu/unpack.c): keyed by a strong hash
 * (BLAKE2b-256, checked against RFC 7693), kept in a directory of ours that nobody
 * else can write, entries that are our own regular files. Uses small synthetic
 * bzImages (a gzip payload holding a fake ELF), so no real kernel is needed.
 */
#include <asm/bootparam.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "blake2b.h"
#include "log.h"
#include "util.h"
#include "vcpu/boot.h"
#include "vcpu/unpack.h"
#include "unit.h"

#define SETUP 1024
#define IMG   8192

static char dir[64], cache[96];

/* A bzImage whose payload decompresses to "\177ELF" + @tag. */
static uint8_t *make_bz(const char *tag, size_t *len)
{
	uint8_t *img = calloc(1, IMG), elf[256] = "\177ELF";
	struct setup_header *h = (void *)(img + 0x1f1);
	z_stream z;
	uint32_t plen;

	ck_assert_ptr_nonnull(img);
	snprintf((char *)elf + 4, sizeof(elf) - 4, "%s", tag);
	h->setup_sects = SETUP / 512 - 1;
	h->boot_flag = 0xaa55;
	h->header = 0x53726448; /* "HdrS" */
	h->version = 0x020f;
	h->xloadflags = XLF_KERNEL_64;
	memset(&z, 0, sizeof(z));
	ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	z.next_in = elf;
	z.avail_in = sizeof(elf);
	z.next_out = img + SETUP;
	z.avail_out = IMG - SETUP;
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	plen = (uint32_t)z.total_out;
	deflateEnd(&z);
	memcpy(img + 0x248, &(uint32_t){ 0 }, 4); /* payload_offset, after the setup */
	memcpy(img + 0x24c, &plen, 4);
	*len = IMG;
	return img;
}

/* Unpack @img through the cache; @cached and the first bytes after "\177ELF" out. */
static int unpack(const uint8_t *img, size_t len, char *tag, size_t n)
{
	struct bzimage bz;
	struct kimage ki;
	int cached = -1;

	ck_assert_int_eq(bzimage_parse(img, len, &bz), 0);
	ck_assert_int_eq(bzimage_unpack_cached(img, len, &bz, &ki, &cached), 0);
	ck_assert_uint_ge(ki.len, 4);
	snprintf(tag, n, "%s", (const char *)ki.data + 4);
	kimage_release(&ki);
	return cached;
}

/* The cache's name for @img (as unpack.c makes it). */
static void entry_path(const uint8_t *img, size_t len, char *out, size_t n)
{
	uint8_t h[32];
	int k;

	blake2b(h, sizeof(h), img, len);
	k = snprintf(out, n, "%s/vmlinux-", cache);
	for (int i = 0; i < 32; i++)
		k += snprintf(out + k, n - k, "%02x", h[i]);
	snprintf(out + k, n - k, ".elf");
}

static unsigned int entries(void)
{
	DIR *d = opendir(cache);
	struct dirent *e;
	unsigned int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void plant(const char *path, const char *tag, mode_t mode)
{
	char elf[64] = "\177ELF";
	int fd;

	snprintf(elf + 4, sizeof(elf) - 4, "%s", tag);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write_all(fd, elf, sizeof(elf)), 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/minivmm-kcache.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	setenv("MINIVMM_CACHE_DIR", cache, 1);
	log_verbosity = -1;
}

static void teardown(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s; rm -rf %s", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* RFC 7693 appendix A, and the 256-bit digest Python's hashlib gives for "abc". */
START_TEST(t_blake2b)
{
	static const char want512[] =
	    "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
	    "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923";
	static const char want256[] =
	    "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319";
	uint8_t h[64], *big = malloc(1000), h1[32], h2[32];
	struct blake2b s;
	char hex[129];

	blake2b(h, 64, "abc", 3);
	for (int i = 0; i < 64; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	ck_assert_str_eq(hex, want512);
	blake2b(h, 32, "abc", 3);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	ck_assert_str_eq(hex, want256);
	/* Fed in pieces across block boundaries: the same digest. */
	for (int i = 0; i < 1000; i++)
		big[i] = (uint8_t)(i * 13);
	blake2b(h1, 32, big, 1000);
	blake2b_init(&s, 32);
	blake2b_update(&s, big, 1);
	blake2b_update(&s, big + 1, 127);
	blake2b_update(&s, big + 128, 128);
	blake2b_update(&s, big + 256, 0);
	blake2b_update(&s, big + 256, 744);
	blake2b_final(&s, h2);
	ck_assert_mem_eq(h1, h2, 32);
	free(big);
}
END_TEST

/* First boot decompresses and stores (0700 directory, 0600 entry), the next one maps it. */
START_TEST(t_store_hit)
{
	size_t len;
	uint8_t *k = make_bz("kernel A", &len);
	char tag[32], path[200];
	struct stat st;

	ck_assert_int_eq(unpack(k, len, tag, sizeof(tag)), 0);
	ck_assert_str_eq(tag, "kernel A");
	ck_assert_int_eq(stat(cache, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	entry_path(k, len, path, sizeof(path));
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_uint_eq(entries(), 1); /* no temporary file left */
	ck_assert_int_eq(unpack(k, len, tag, sizeof(tag)), 1);
	ck_assert_str_eq(tag, "kernel A");
	free(k);
}
END_TEST

/*
 * Two different bzImages of the same size and CRC-32 (four bytes of the unused
 * setup code forged): each gets its own entry. Keyed by (size, CRC-32) the second
 * would boot the first one's kernel.
 */
static uint32_t crc_tab[256];

static void crc_force(uint8_t *buf, size_t p, uint32_t want)
{
	uint32_t r = ~want, before;

	for (unsigned int n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int b = 0; b < 8; b++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_tab[n] = c;
	}
	for (int i = 0; i < 4; i++) {
		unsigned int k = 0;

		while (crc_tab[k] >> 24 != r >> 24)
			k++;
		r = ((r ^ crc_tab[k]) << 8) | k;
	}
	before = ~(uint32_t)crc32(0, buf, (uInt)p);
	put_le32(buf + p, r ^ before);
}

START_TEST(t_crc_collision)
{
	size_t len;
	uint8_t *a = make_bz("kernel A", &len), *b = malloc(len);
	char tag[32];

	memcpy(b, a, len);
	b[0x300] ^= 0xff; /* setup code: never run, never parsed */
	crc_force(b, 0x304, (uint32_t)crc32(0, a, 0x308));
	ck_assert_uint_eq(crc32(0, a, (uInt)len), crc32(0, b, (uInt)len));
	ck_assert(memcmp(a, b, len));
	ck_assert_int_eq(unpack(a, len, tag, sizeof(tag)), 0);
	ck_assert_int_eq(unpack(b, len, tag, sizeof(tag)), 0); /* its own key: a miss */
	ck_assert_uint_eq(entries(), 2);
	free(a);
	free(b);
}
END_TEST

/*
 * A shared, world-writable cache directory that someone else owns, holding a
 * planted entry under every name a cache could use: not used at all.
 */
START_TEST(t_foreign_dir)
{
	size_t len;
	uint8_t *k = make_bz("kernel A", &len);
	char tag[32], path[200];
	uint32_t crc = (uint32_t)crc32(0, k, (uInt)len);

	if (geteuid())
		UNIT_SKIP("needs root to give the directory to another user");
	ck_assert_int_eq(mkdir(cache, 0777), 0);
	ck_assert_int_eq(chmod(cache, 01777), 0);
	snprintf(path, sizeof(path), "%s/vmlinux-%zu-%08x.elf", cache, len, crc);
	plant(path, "planted", 0644);
	entry_path(k, len, path, sizeof(path));
	plant(path, "planted", 0644);
	ck_assert_int_eq(chown(cache, 65534, 65534), 0);
	ck_assert_int_eq(unpack(k, len, tag, sizeof(tag)), 0);
	ck_assert_str_eq(tag, "kernel A");
	ck_assert_uint_eq(entries(), 2); /* nothing stored there either */
	free(k);
}
END_TEST

/* Our own directory, too open: tightened to 0700 and used. A symlink: not used. */
START_TEST(t_dir_mode)
{
	size_t len;
	uint8_t *k = make_bz("kernel A", &len);
	char tag[32], real[128];
	struct stat st;

	ck_assert_int_eq(mkdir(cache, 0700), 0);
	ck_assert_int_eq(chmod(cache, 0777), 0);
	ck_assert_int_eq(unpack(k, len, tag, sizeof(tag)), 0);
	ck_assert_int_eq(stat(cache, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	ck_assert_uint_eq(entries(), 1);
	ck_assert_int_eq(unpack(k, len, tag, sizeof(tag)), 1);
	/* The cache path a symlink to that directory: refused. */
	snprintf(real, sizeof(real), "%s/real", dir);
	ck_assert_int_eq(rename(cache, real), 0);
	ck_assert_int_eq(symlink(real, cache), 0);
	ck_assert_int_eq(unpack(k, len, tag, sizeof(tag)), 0);
	free(k);
}
END_TEST

/* Entries: a symlink, one others may write, one of another user: none is used. */
START_TEST(t_entry_checks)
{
	size_t len;
	uint8_t *k = make_bz("kernel A", &len);
	char tag[32], path[200], other[200];

	ck_assert_int_eq(mkdir(cache, 0700), 0);
	entry_path(k, len, path, sizeof(path));
	snprintf(other, sizeof(other), "%s/elsewhere", dir);
	plant(other, "planted", 0600);
	ck_assert_int_eq(symlink(other, path), 0);
	ck_assert_int_eq(unpack(k, len, tag, sizeof(tag)), 0);
	ck_assert_str_eq(tag, "kernel A");
	/* The store replaced the link, not what it points to. */
	ck_assert_int_eq(unpack(k, len, tag, sizeof(tag)), 1);
	ck_assert_str_eq(tag, "kernel A");
	plant(other, "planted", 0600);

	plant(path, "planted", 0666);
	ck_assert_int_eq(unpack(k, len, tag, sizeof(tag)), 0);
	ck_assert_str_eq(tag, "kernel A");
	if (!geteuid()) {
		plant(path, "planted", 0600);
		ck_assert_int_eq(chown(path, 65534, 65534), 0);
		ck_assert_int_eq(unpack(k, len, tag, sizeof(tag)), 0);
		ck_assert_str_eq(tag, "kernel A");
	}
	free(k);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kcache");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_blake2b);
	tcase_add_test(tc, t_store_hit);
	tcase_add_test(tc, t_crc_collision);
	tcase_add_test(tc, t_foreign_dir);
	tcase_add_test(tc, t_dir_mode);
	tcase_add_test(tc, t_entry_checks);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
