/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guest agent's wire protocol, shared by the agent (agent/, static, libc only) and the
 * host client (agent_client.c). Spec and frame layouts: docs/agent.md.
 *
 * A connection carries frames: an 8-byte header (u16 type, u16 flags = 0, u32 payload
 * length), then the payload. Every integer is little-endian. Each side checks a header
 * against the hard limits of its type before it reads the payload, and each payload
 * with the decoder of its type: neither side trusts the other.
 */
#ifndef MINIVMM_AGENT_PROTO_H
#define MINIVMM_AGENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_MAGIC	   0x4741564dU /* "MVAG" */
#define AGENT_VERSION	   1
#define AGENT_DEFAULT_PORT 1024

#define AGENT_HDR_SIZE	  8
#define AGENT_DATA_MAX	  (64 * 1024)  /* STDIN, STDOUT, STDERR, DATA payloads */
#define AGENT_EXEC_MAX	  (256 * 1024) /* an EXEC request: cwd, argv, env */
#define AGENT_PAYLOAD_MAX AGENT_EXEC_MAX
#define AGENT_PATH_MAX	  4096 /* a path with its NUL */
#define AGENT_ARGS_MAX	  4096 /* argv entries, and env entries */
#define AGENT_MSG_MAX	  1024 /* an ERROR's message */
#define AGENT_ERRNO_MAX	  4095
#define AGENT_SIG_MAX	  64
#define AGENT_GRACE_MS	  2000 /* SIGTERM to SIGKILL, when EXEC says 0 */

enum agent_type {
	AGENT_HELLO = 0x01, /* both ways, first */
	/* host -> agent */
	AGENT_EXEC = 0x10,
	AGENT_STDIN = 0x11,
	AGENT_STDIN_EOF = 0x12,
	AGENT_SIGNAL = 0x13,
	AGENT_READ = 0x20,
	AGENT_WRITE = 0x21,
	AGENT_STAT = 0x22,
	AGENT_MKDIR = 0x23,
	/* both ways: a file's contents */
	AGENT_DATA = 0x30,
	AGENT_END = 0x31,
	/* agent -> host */
	AGENT_STARTED = 0x40,
	AGENT_STDOUT = 0x41,
	AGENT_STDERR = 0x42,
	AGENT_EXIT = 0x43,
	AGENT_ERROR = 0x44,
	AGENT_FILE = 0x45,
	AGENT_READY = 0x46,
	AGENT_OK = 0x47,
	AGENT_STATINFO = 0x48,
};

/* HELLO capability bits: what the agent serves. */
#define AGENT_CAP_EXEC	 (1ULL << 0) /* EXEC, STDIN, STDIN_EOF */
#define AGENT_CAP_SIGNAL (1ULL << 1) /* SIGNAL */
#define AGENT_CAP_CREDS	 (1ULL << 2) /* EXEC with AGENT_EXEC_UID/GID */
#define AGENT_CAP_FILES	 (1ULL << 3) /* READ, WRITE */
#define AGENT_CAP_FSOPS	 (1ULL << 4) /* STAT, MKDIR */
#define AGENT_CAPS_ALL                                                                             \
	(AGENT_CAP_EXEC | AGENT_CAP_SIGNAL | AGENT_CAP_CREDS | AGENT_CAP_FILES | AGENT_CAP_FSOPS)

/* EXEC flags */
#define AGENT_EXEC_STDIN     (1U << 0) /* STDIN frames follow STARTED; else stdin is /dev/null */
#define AGENT_EXEC_ENV_CLEAR (1U << 1) /* env is the whole environment, not additions */
#define AGENT_EXEC_UID	     (1U << 2) /* run as uid */
#define AGENT_EXEC_GID	     (1U << 3) /* run as gid */
#define AGENT_EXEC_FLAGS     (AGENT_EXEC_STDIN | AGENT_EXEC_ENV_CLEAR | AGENT_EXEC_UID | AGENT_EXEC_GID)

/* EXIT flags */
#define AGENT_EXIT_SIGNALED (1U << 0) /* status is a signal number, else an exit code */
#define AGENT_EXIT_TIMEDOUT (1U << 1) /* the timeout expired and the group was killed */
#define AGENT_EXIT_CORE	    (1U << 2) /* a core was dumped (with SIGNALED) */
#define AGENT_EXIT_FLAGS    (AGENT_EXIT_SIGNALED | AGENT_EXIT_TIMEDOUT | AGENT_EXIT_CORE)

/* END flags (host -> agent, ending a WRITE) */
#define AGENT_END_ABORT (1U << 0) /* drop the temp file, answer ERROR ECANCELED */

/* STAT flags */
#define AGENT_STAT_NOFOLLOW (1U << 0) /* lstat */

/* Fixed payload sizes */
#define AGENT_HELLO_SIZE    16
#define AGENT_EXEC_HDR_SIZE 28
#define AGENT_U32_SIZE	    4 /* SIGNAL, STARTED */
#define AGENT_EXIT_SIZE	    8
#define AGENT_END_SIZE	    16
#define AGENT_FILE_SIZE	    16
#define AGENT_STATINFO_SIZE 40

struct agent_hdr {
	uint16_t type;
	uint32_t len;
};

/* Header at @p (AGENT_HDR_SIZE bytes): 0, or -EPROTO for an unknown type, nonzero flags
 * or a length outside the limits of the type. */
int agent_hdr_decode(const uint8_t *p, struct agent_hdr *h);
void agent_hdr_encode(uint8_t *p, uint16_t type, uint32_t len);

struct agent_hello {
	uint32_t magic;
	uint16_t version;
	uint64_t caps;
};

void agent_hello_encode(uint8_t *p, uint16_t version, uint64_t caps);
/* -EPROTO: not a HELLO payload (size, magic); the version is the caller's to check. */
int agent_hello_decode(const uint8_t *p, size_t len, struct agent_hello *h);

/*
 * EXEC: a fixed part (flags, timeout, grace, uid, gid, argc, envc), then 1 + argc + envc
 * NUL-terminated strings: cwd ("" for the agent's), argv, env ("NAME=value").
 */
struct agent_exec_req {
	uint32_t flags;
	uint32_t timeout_ms; /* 0: none */
	uint32_t grace_ms;   /* SIGTERM to SIGKILL; 0: AGENT_GRACE_MS */
	uint32_t uid, gid;   /* with AGENT_EXEC_UID / AGENT_EXEC_GID */
	uint32_t argc, envc;
	const char *cwd;
	const char *const *argv; /* encode: argc entries (decode: see agent_exec_vectors) */
	const char *const *env;	 /* encode: envc entries, may be NULL when envc is 0 */
	const char *strs;	 /* decode: argv then env, each NUL-terminated */
};

/* Encode @r into @p (@cap bytes): the payload length, or -E2BIG / -EINVAL (bad argv/env). */
int agent_exec_encode(uint8_t *p, size_t cap, const struct agent_exec_req *r);
/* -EINVAL unless @p is one well-formed EXEC payload; @r then points into @p. */
int agent_exec_decode(const uint8_t *p, size_t len, struct agent_exec_req *r);
/* Fill @argv (argc + 1 entries) and @env (envc + 1) from a decoded @r, NULL-terminated. */
void agent_exec_vectors(const struct agent_exec_req *r, char **argv, char **env);

/*
 * READ {path}, WRITE {u32 mode, path}, STAT {u32 flags, path}, MKDIR {u32 mode, path}:
 * path is 1..AGENT_PATH_MAX - 1 bytes with no NUL, then a NUL ending the payload.
 */
struct agent_path_req {
	uint32_t arg; /* mode (07777 at most) or STAT flags; 0 for READ */
	const char *path;
};

int agent_path_encode(uint8_t *p, size_t cap, uint16_t type, uint32_t arg, const char *path);
int agent_path_decode(uint16_t type, const uint8_t *p, size_t len, struct agent_path_req *r);

/* SIGNAL {u32 signo} and STARTED {u32 pid}: -EINVAL when out of range. */
void agent_u32_encode(uint8_t *p, uint32_t v);
int agent_signal_decode(const uint8_t *p, size_t len, int *signo);
int agent_started_decode(const uint8_t *p, size_t len, int *pid);

struct agent_exit {
	uint32_t flags; /* AGENT_EXIT_* */
	uint32_t status;
};

void agent_exit_encode(uint8_t *p, const struct agent_exit *e);
/* -EINVAL: unknown flags, CORE without SIGNALED, a code above 255 or a bad signal */
int agent_exit_decode(const uint8_t *p, size_t len, struct agent_exit *e);

/* ERROR {u32 errno, message}: the payload length, the message cut at AGENT_MSG_MAX. */
int agent_error_encode(uint8_t *p, int err, const char *msg);
/* errno 1..AGENT_ERRNO_MAX; @msg gets the message with every byte outside printable
 * ASCII replaced by '?', NUL-terminated in @msglen bytes (cut if need be). */
int agent_error_decode(const uint8_t *p, size_t len, int *err, char *msg, size_t msglen);

/* END {u64 total, u32 flags, u32 0} */
void agent_end_encode(uint8_t *p, uint64_t total, uint32_t flags);
int agent_end_decode(const uint8_t *p, size_t len, uint64_t *total, uint32_t *flags);

/* FILE {u64 size, u32 mode, u32 0}: answers READ before the DATA frames. */
void agent_file_encode(uint8_t *p, uint64_t size, uint32_t mode);
int agent_file_decode(const uint8_t *p, size_t len, uint64_t *size, uint32_t *mode);

struct agent_statinfo {
	uint32_t mode; /* st_mode: type and permission bits */
	uint32_t uid, gid, nlink;
	uint64_t size;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
};

void agent_statinfo_encode(uint8_t *p, const struct agent_statinfo *st);
int agent_statinfo_decode(const uint8_t *p, size_t len, struct agent_statinfo *st);

/* A frame type's name for messages: "EXEC", ..., "unknown". */
const char *agent_type_name(uint16_t type);

#endif
