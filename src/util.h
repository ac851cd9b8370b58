/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MINIVMM_UTIL_H
#define MINIVMM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a)	 (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a)	 (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
/* The structure holding @p as its @member. */
#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#define MIN(a, b)		      ((a) < (b) ? (a) : (b))
#define MAX(a, b)		      ((a) > (b) ? (a) : (b))
#define MiB			      (1ULL << 20)
#define GiB			      (1ULL << 30)

/* Little-endian fields of on-disk formats (snapshot files), at any alignment. */
static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* Read a whole file (at most @max bytes) into a malloc'd buffer. */
int read_file(const char *path, size_t max, void **buf, size_t *len);
/*
 * Read a small text file whole into @buf (@len with the NUL), also one whose size stat()
 * does not know (/proc, /sys). Returns the bytes read, or -errno (-EFBIG: longer).
 */
ssize_t read_text(const char *path, char *buf, size_t len);
/* write() all of @len, retrying on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len);
/* pwrite() all of it at @off: 0 or a negative errno. */
int pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* @addr for the Unix socket at @path: 0, or -ENAMETOOLONG if it does not fit sun_path. */
struct sockaddr_un;
int unix_addr(const char *path, struct sockaddr_un *addr);
/*
 * A stream socket connected to the Unix socket @path (SOCK_CLOEXEC | @flags, e.g.
 * SOCK_NONBLOCK), or -errno: -ENAMETOOLONG, connect()'s. @timeout_ms > 0 bounds a connect
 * to a full backlog (-ETIMEDOUT) and later sends (SO_SNDTIMEO).
 */
int unix_connect(const char *path, int flags, int timeout_ms);
/*
 * Make room to bind a Unix socket at @path: a socket nobody listens on (left by a process
 * that died) is removed (*@replaced). -EEXIST: not a socket; -EADDRINUSE: a process
 * listens on it; else -errno.
 */
int unix_clear_stale(const char *path, bool *replaced);
/* @p made absolute in *@out (malloc'd): the real path of its directory, which must exist,
 * and its last name (the file need not exist). -EINVAL for "", "." or ".." as that name. */
int path_absolute(const char *p, char **out);
/* Sleep @ms milliseconds, through signals. */
void sleep_ms(unsigned int ms);
/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);
/* now_ns() when main() began (0 in tests). */
extern uint64_t minivmm_start_ns;

#endif
