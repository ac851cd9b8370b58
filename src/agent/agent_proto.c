// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guest agent's frames: encoders and checked decoders, no I/O. Linked into both the
 * agent and libminivmm, so it needs nothing but libc.
 */
#include <errno.h>
#include <string.h>

#include "agent/agent_proto.h"
#include "util.h"

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = v;
	p[1] = v >> 8;
}

static uint16_t get_le16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

/* Payload limits of every type (min == max: a fixed size). */
static const struct {
	uint16_t type;
	uint32_t min, max;
	const char *name;
} frame_types[] = {
	{ AGENT_HELLO, AGENT_HELLO_SIZE, AGENT_HELLO_SIZE, "HELLO" },
	{ AGENT_EXEC, AGENT_EXEC_HDR_SIZE + 3, AGENT_EXEC_MAX, "EXEC" },
	{ AGENT_STDIN, 1, AGENT_DATA_MAX, "STDIN" },
	{ AGENT_STDIN_EOF, 0, 0, "STDIN_EOF" },
	{ AGENT_SIGNAL, AGENT_U32_SIZE, AGENT_U32_SIZE, "SIGNAL" },
	{ AGENT_READ, 2, AGENT_PATH_MAX, "READ" },
	{ AGENT_WRITE, 4 + 2, 4 + AGENT_PATH_MAX, "WRITE" },
	{ AGENT_STAT, 4 + 2, 4 + AGENT_PATH_MAX, "STAT" },
	{ AGENT_MKDIR, 4 + 2, 4 + AGENT_PATH_MAX, "MKDIR" },
	{ AGENT_DATA, 1, AGENT_DATA_MAX, "DATA" },
	{ AGENT_END, AGENT_END_SIZE, AGENT_END_SIZE, "END" },
	{ AGENT_STARTED, AGENT_U32_SIZE, AGENT_U32_SIZE, "STARTED" },
	{ AGENT_STDOUT, 1, AGENT_DATA_MAX, "STDOUT" },
	{ AGENT_STDERR, 1, AGENT_DATA_MAX, "STDERR" },
	{ AGENT_EXIT, AGENT_EXIT_SIZE, AGENT_EXIT_SIZE, "EXIT" },
	{ AGENT_ERROR, 4, 4 + AGENT_MSG_MAX, "ERROR" },
	{ AGENT_FILE, AGENT_FILE_SIZE, AGENT_FILE_SIZE, "FILE" },
	{ AGENT_READY, 0, 0, "READY" },
	{ AGENT_OK, 0, 0, "OK" },
	{ AGENT_STATINFO, AGENT_STATINFO_SIZE, AGENT_STATINFO_SIZE, "STATINFO" },
};

const char *agent_type_name(uint16_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(frame_types); i++)
		if (frame_types[i].type == type)
			return frame_types[i].name;
	return "unknown";
}

int agent_hdr_decode(const uint8_t *p, struct agent_hdr *h)
{
	uint16_t type = get_le16(p);
	uint32_t len = get_le32(p + 4);

	if (get_le16(p + 2))
		return -EPROTO;
	for (size_t i = 0; i < ARRAY_SIZE(frame_types); i++) {
		if (frame_types[i].type != type)
			continue;
		if (len < frame_types[i].min || len > frame_types[i].max)
			return -EPROTO;
		h->type = type;
		h->len = len;
		return 0;
	}
	return -EPROTO;
}

void agent_hdr_encode(uint8_t *p, uint16_t type, uint32_t len)
{
	put_le16(p, type);
	put_le16(p + 2, 0);
	put_le32(p + 4, len);
}

void agent_hello_encode(uint8_t *p, uint16_t version, uint64_t caps)
{
	put_le32(p, AGENT_MAGIC);
	put_le16(p + 4, version);
	put_le16(p + 6, 0);
	put_le64(p + 8, caps);
}

int agent_hello_decode(const uint8_t *p, size_t len, struct agent_hello *h)
{
	if (len != AGENT_HELLO_SIZE || get_le32(p) != AGENT_MAGIC)
		return -EPROTO;
	h->magic = AGENT_MAGIC;
	h->version = get_le16(p + 4);
	h->caps = get_le64(p + 8);
	return 0;
}

/* Append @s and its NUL at @p[*off], within @cap. */
static int put_str(uint8_t *p, size_t cap, size_t *off, const char *s)
{
	size_t n = strlen(s) + 1;

	if (n > cap - *off)
		return -E2BIG;
	memcpy(p + *off, s, n);
	*off += n;
	return 0;
}

int agent_exec_encode(uint8_t *p, size_t cap, const struct agent_exec_req *r)
{
	const char *cwd = r->cwd ? r->cwd : "";
	size_t off = AGENT_EXEC_HDR_SIZE;
	int ret;

	if (r->flags & ~AGENT_EXEC_FLAGS || !r->argc || r->argc > AGENT_ARGS_MAX ||
	    r->envc > AGENT_ARGS_MAX || !r->argv || !r->argv[0] || !r->argv[0][0] ||
	    (r->envc && !r->env) || strlen(cwd) >= AGENT_PATH_MAX)
		return -EINVAL;
	if (cap > AGENT_EXEC_MAX)
		cap = AGENT_EXEC_MAX;
	if (cap < off)
		return -E2BIG;
	put_le32(p, r->flags);
	put_le32(p + 4, r->timeout_ms);
	put_le32(p + 8, r->grace_ms);
	put_le32(p + 12, r->uid);
	put_le32(p + 16, r->gid);
	put_le32(p + 20, r->argc);
	put_le32(p + 24, r->envc);
	ret = put_str(p, cap, &off, cwd);
	for (uint32_t i = 0; !ret && i < r->argc; i++)
		ret = r->argv[i] ? put_str(p, cap, &off, r->argv[i]) : -EINVAL;
	for (uint32_t i = 0; !ret && i < r->envc; i++) {
		const char *eq = r->env[i] ? strchr(r->env[i], '=') : NULL;

		ret = eq && eq != r->env[i] ? put_str(p, cap, &off, r->env[i]) : -EINVAL;
	}
	return ret ? ret : (int)off;
}

int agent_exec_decode(const uint8_t *p, size_t len, struct agent_exec_req *r)
{
	const uint8_t *s, *end = p + len;
	uint32_t n, i;

	if (len < AGENT_EXEC_HDR_SIZE || len > AGENT_EXEC_MAX)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->flags = get_le32(p);
	r->timeout_ms = get_le32(p + 4);
	r->grace_ms = get_le32(p + 8);
	r->uid = get_le32(p + 12);
	r->gid = get_le32(p + 16);
	r->argc = get_le32(p + 20);
	r->envc = get_le32(p + 24);
	if (r->flags & ~AGENT_EXEC_FLAGS || !r->argc || r->argc > AGENT_ARGS_MAX ||
	    r->envc > AGENT_ARGS_MAX)
		return -EINVAL;
	n = 1 + r->argc + r->envc;
	s = p + AGENT_EXEC_HDR_SIZE;
	for (i = 0; i < n && s < end; i++) {
		const uint8_t *nul = memchr(s, 0, end - s);
		size_t slen;

		if (!nul)
			return -EINVAL;
		slen = nul - s;
		if (i == 0) {
			if (slen >= AGENT_PATH_MAX)
				return -EINVAL;
			r->cwd = (const char *)s;
		} else if (i == 1) {
			if (!slen)
				return -EINVAL; /* argv[0] names the program */
			r->strs = (const char *)s;
		} else if (i > r->argc) {
			const uint8_t *eq = memchr(s, '=', slen);

			if (!eq || eq == s)
				return -EINVAL;
		}
		s = nul + 1;
	}
	/* Exactly the strings announced, and nothing after them. */
	if (i != n || s != end)
		return -EINVAL;
	return 0;
}

void agent_exec_vectors(const struct agent_exec_req *r, char **argv, char **env)
{
	char *s = (char *)r->strs;

	for (uint32_t i = 0; i < r->argc; i++, s += strlen(s) + 1)
		argv[i] = s;
	argv[r->argc] = NULL;
	for (uint32_t i = 0; i < r->envc; i++, s += strlen(s) + 1)
		env[i] = s;
	env[r->envc] = NULL;
}

/* Does @type carry a u32 before its path? */
static int path_arg_size(uint16_t type)
{
	switch (type) {
	case AGENT_READ:
		return 0;
	case AGENT_WRITE:
	case AGENT_STAT:
	case AGENT_MKDIR:
		return 4;
	default:
		return -EINVAL;
	}
}

static bool path_arg_ok(uint16_t type, uint32_t arg)
{
	if (type == AGENT_STAT)
		return !(arg & ~AGENT_STAT_NOFOLLOW);
	if (type == AGENT_READ)
		return !arg;
	return !(arg & ~07777U);
}

int agent_path_encode(uint8_t *p, size_t cap, uint16_t type, uint32_t arg, const char *path)
{
	int hdr = path_arg_size(type);
	size_t n;

	if (hdr < 0 || !path || !path_arg_ok(type, arg))
		return -EINVAL;
	n = strlen(path);
	if (!n || n >= AGENT_PATH_MAX)
		return -EINVAL;
	if (cap < hdr + n + 1)
		return -E2BIG;
	if (hdr)
		put_le32(p, arg);
	memcpy(p + hdr, path, n + 1);
	return hdr + n + 1;
}

int agent_path_decode(uint16_t type, const uint8_t *p, size_t len, struct agent_path_req *r)
{
	int hdr = path_arg_size(type);
	size_t n;

	if (hdr < 0 || len < (size_t)hdr + 2 || len > (size_t)hdr + AGENT_PATH_MAX)
		return -EINVAL;
	r->arg = hdr ? get_le32(p) : 0;
	if (!path_arg_ok(type, r->arg))
		return -EINVAL;
	n = len - hdr - 1;
	/* One NUL, at the end. */
	if (p[len - 1] || memchr(p + hdr, 0, n))
		return -EINVAL;
	r->path = (const char *)p + hdr;
	return 0;
}

void agent_u32_encode(uint8_t *p, uint32_t v)
{
	put_le32(p, v);
}

int agent_signal_decode(const uint8_t *p, size_t len, int *signo)
{
	uint32_t v;

	if (len != AGENT_U32_SIZE)
		return -EINVAL;
	v = get_le32(p);
	if (!v || v > AGENT_SIG_MAX)
		return -EINVAL;
	*signo = v;
	return 0;
}

int agent_started_decode(const uint8_t *p, size_t len, int *pid)
{
	uint32_t v;

	if (len != AGENT_U32_SIZE)
		return -EINVAL;
	v = get_le32(p);
	/* A pid, which the host may use as a process group: never 0, -1 or negative. */
	if (v < 1 || v > 0x3fffffff)
		return -EINVAL;
	*pid = v;
	return 0;
}

void agent_exit_encode(uint8_t *p, const struct agent_exit *e)
{
	put_le32(p, e->flags);
	put_le32(p + 4, e->status);
}

int agent_exit_decode(const uint8_t *p, size_t len, struct agent_exit *e)
{
	if (len != AGENT_EXIT_SIZE)
		return -EINVAL;
	e->flags = get_le32(p);
	e->status = get_le32(p + 4);
	if (e->flags & ~AGENT_EXIT_FLAGS)
		return -EINVAL;
	if (e->flags & AGENT_EXIT_SIGNALED)
		return e->status && e->status <= AGENT_SIG_MAX ? 0 : -EINVAL;
	return e->status <= 255 && !(e->flags & AGENT_EXIT_CORE) ? 0 : -EINVAL;
}

int agent_error_encode(uint8_t *p, int err, const char *msg)
{
	size_t n = msg ? strnlen(msg, AGENT_MSG_MAX) : 0;

	if (err < 1 || err > AGENT_ERRNO_MAX)
		err = EIO;
	put_le32(p, err);
	if (n)
		memcpy(p + 4, msg, n);
	return 4 + n;
}

int agent_error_decode(const uint8_t *p, size_t len, int *err, char *msg, size_t msglen)
{
	uint32_t v;
	size_t n, i;

	if (len < 4 || len > 4 + AGENT_MSG_MAX || !msglen)
		return -EINVAL;
	v = get_le32(p);
	if (!v || v > AGENT_ERRNO_MAX)
		return -EINVAL;
	*err = v;
	n = MIN(len - 4, msglen - 1);
	for (i = 0; i < n; i++) {
		uint8_t c = p[4 + i];

		msg[i] = c >= 0x20 && c < 0x7f ? c : '?';
	}
	msg[n] = '\0';
	return 0;
}

void agent_end_encode(uint8_t *p, uint64_t total, uint32_t flags)
{
	put_le64(p, total);
	put_le32(p + 8, flags);
	put_le32(p + 12, 0);
}

int agent_end_decode(const uint8_t *p, size_t len, uint64_t *total, uint32_t *flags)
{
	if (len != AGENT_END_SIZE)
		return -EINVAL;
	*total = get_le64(p);
	*flags = get_le32(p + 8);
	if (*flags & ~AGENT_END_ABORT || get_le32(p + 12))
		return -EINVAL;
	return 0;
}

void agent_file_encode(uint8_t *p, uint64_t size, uint32_t mode)
{
	put_le64(p, size);
	put_le32(p + 8, mode);
	put_le32(p + 12, 0);
}

int agent_file_decode(const uint8_t *p, size_t len, uint64_t *size, uint32_t *mode)
{
	if (len != AGENT_FILE_SIZE)
		return -EINVAL;
	*size = get_le64(p);
	*mode = get_le32(p + 8);
	if (*mode & ~07777U || get_le32(p + 12))
		return -EINVAL;
	return 0;
}

void agent_statinfo_encode(uint8_t *p, const struct agent_statinfo *st)
{
	put_le32(p, st->mode);
	put_le32(p + 4, st->uid);
	put_le32(p + 8, st->gid);
	put_le32(p + 12, st->nlink);
	put_le64(p + 16, st->size);
	put_le64(p + 24, (uint64_t)st->mtime_sec);
	put_le32(p + 32, st->mtime_nsec);
	put_le32(p + 36, 0);
}

int agent_statinfo_decode(const uint8_t *p, size_t len, struct agent_statinfo *st)
{
	if (len != AGENT_STATINFO_SIZE)
		return -EINVAL;
	st->mode = get_le32(p);
	st->uid = get_le32(p + 4);
	st->gid = get_le32(p + 8);
	st->nlink = get_le32(p + 12);
	st->size = get_le64(p + 16);
	st->mtime_sec = (int64_t)get_le64(p + 24);
	st->mtime_nsec = get_le32(p + 32);
	/* Type and permission bits only (S_IFMT | 07777), a valid nanosecond field. */
	if (st->mode & ~0177777U || st->mtime_nsec >= 1000000000U || get_le32(p + 36))
		return -EINVAL;
	return 0;
}
