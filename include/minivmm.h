/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libminivmm: run minivmm VMs and drive them from a program (docs/libminivmm.md).
 *
 * Each VM is a `minivmm run` or `minivmm restore` process of its own (its sandbox, its
 * crash, its memory), which the library starts and then drives through the VM's control
 * socket (docs/api.md) and, for exec and copies, the guest agent (docs/agent.md).
 *
 * Thread safety: no global state. Calls on different VMs never interfere; calls on one VM
 * may come from several threads at once (each exec, copy or request uses a connection of
 * its own), except minivmm_free(), which must be the last call on it. Every call returns 0
 * or a negative errno; minivmm_errmsg() says more, per thread.
 *
 * ABI: symbols are versioned (MINIVMM_0.1); MINIVMM_ABI is bumped, and the soname with
 * it, when a struct or a signature changes. Structs are zero-initialized by the caller,
 * so fields added at their end in later versions read as 0 (their default).
 */
#ifndef MINIVMM_H
#define MINIVMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MINIVMM_ABI 0

#if defined(__GNUC__)
#define MINIVMM_API __attribute__((visibility("default")))
#else
#define MINIVMM_API
#endif

/* "0.1.0": the library's release (the same as the minivmm binary it was built with). */
MINIVMM_API const char *minivmm_version(void);
/* MINIVMM_ABI of the library actually loaded. */
MINIVMM_API int minivmm_abi(void);
/* The message of this thread's last failed call ("" if none). */
MINIVMM_API const char *minivmm_errmsg(void);

struct minivmm_vm;

struct minivmm_opts {
	/* What to run: a configuration file, its text (INI, as in a file; relative paths
	 * then resolve against a private temporary directory, so use absolute ones), or a
	 * snapshot to restore (its saved configuration). Exactly one. */
	const char *config_path;
	const char *config_text;
	const char *snapshot;
	const char *clone_dir; /* with snapshot: its own overlays of the qcow2 disks here */
	bool lazy;	       /* with snapshot: memory on first touch */
	bool map;	       /* with snapshot: memory mapped from it (saved with raw) */
	/* "section.key=value" overrides (NULL-terminated), as `--set`. */
	const char *const *set;
	/* The guest's serial console into this file (default: nowhere). */
	const char *console_path;
	/* minivmm's own messages into this file (default: a file in the VM's temporary
	 * directory, whose last lines minivmm_errmsg() quotes when the VM fails to start). */
	const char *log_path;
	int verbosity; /* -v this many times */
	/* Stop the VM after this long (0: no limit), as `--timeout`. */
	int timeout_ms;
	/* The minivmm binary (default: $MINIVMM, else the one installed with the library). */
	const char *minivmm;
	/* With snapshot: memory mapped from a decompressed copy in the cache directory,
	 * made by the first such restore (`restore --cache`). */
	bool cache;
};

/*
 * Start a VM and wait until it runs (its control socket answers), at most 120 s. The VM
 * gets a private temporary directory with its control socket (minivmm_api_socket()).
 * -ENOENT: no minivmm binary; -EIO: it exited first (minivmm_errmsg() quotes its log).
 */
MINIVMM_API int minivmm_start(const struct minivmm_opts *o, struct minivmm_vm **out);
/* A VM started some other way, by its control socket: every call but minivmm_wait(). */
MINIVMM_API int minivmm_attach(const char *api_socket, struct minivmm_vm **out);
MINIVMM_API const char *minivmm_api_socket(const struct minivmm_vm *vm);

/*
 * Wait for a started VM's process to end, at most @timeout_ms (< 0: forever).
 * *@exit_status gets `minivmm run`'s exit status (the guest's exit-port status, 3 for a
 * panic, 124 for its timeout, 128+N for signal N...). -ETIMEDOUT: still running.
 */
MINIVMM_API int minivmm_wait(struct minivmm_vm *vm, int timeout_ms, int *exit_status);
MINIVMM_API int minivmm_pause(struct minivmm_vm *vm);
MINIVMM_API int minivmm_resume(struct minivmm_vm *vm);
/* {"state":"running|paused","vcpus":N,"memory":BYTES,"uptime_ms":N} into @json. */
MINIVMM_API int minivmm_status(struct minivmm_vm *vm, char *json, size_t len);
/*
 * The balloon ([balloon], docs/balloon.md): with @size > 0 ask the guest to keep @size bytes
 * (the rest goes into its balloon); 0 only reads. @json (may be NULL) gets the balloon's state
 * and the guest's last statistics; each call also asks for fresh ones. -ENODEV: no balloon.
 */
MINIVMM_API int minivmm_balloon(struct minivmm_vm *vm, uint64_t size, char *json, size_t len);
#define MINIVMM_SAVE_STOP (1u << 0) /* stop the VM once saved */
#define MINIVMM_SAVE_RAW  (1u << 1) /* memory uncompressed */
/* Snapshot to @path (made absolute here); @json (may be NULL) gets the result object. */
MINIVMM_API int minivmm_save(struct minivmm_vm *vm, const char *path, unsigned int flags,
			     char *json, size_t len);
/* Ask the VM to stop (it exits 0); minivmm_wait() for it. */
MINIVMM_API int minivmm_stop(struct minivmm_vm *vm);
/* SIGKILL a started VM's process (nothing is saved). */
MINIVMM_API int minivmm_kill(struct minivmm_vm *vm);
/* Stop a started VM still running (stop, then kill after 5 s), remove its temporary
 * directory, free @vm. NULL: nothing. */
MINIVMM_API void minivmm_free(struct minivmm_vm *vm);

/*
 * The next event (docs/api.md, one JSON object, no '\n') into @buf, waiting at most
 * @timeout_ms (< 0: forever). The first call subscribes: events come from then on.
 * -ETIMEDOUT: none yet; -EPIPE: the VM stopped (after its "stopped" event).
 * One thread at a time per VM.
 */
MINIVMM_API int minivmm_next_event(struct minivmm_vm *vm, char *buf, size_t len, int timeout_ms);

/* Running a command in the guest through its agent (vsock port 1024 by default). */
struct minivmm_exec {
	const char *const *argv; /* NULL-terminated; argv[0] looked up in PATH */
	const char *const *env;	 /* "NAME=value" set over the agent's, NULL-terminated, or NULL */
	const char *cwd;	 /* NULL: / */
	int timeout_ms;		 /* 0: none; then SIGTERM, SIGKILL 2 s later */
	const void *stdin_data;	 /* its stdin (else /dev/null, or stdin_fd) */
	size_t stdin_len;
	size_t max_output; /* kept per stream when captured (default 16 MiB); the rest counted */
	/* use_fds: stream instead of capturing: stdout and stderr to their fds as they come,
	 * stdin read from stdin_fd to its end (-1: stdin_data or /dev/null); signal_fd (-1:
	 * none): ints read from it (a pipe) signal the command's process group. */
	bool use_fds;
	int stdin_fd, stdout_fd, stderr_fd;
	int signal_fd;
	uint32_t port;	   /* the agent's vsock port; 0: 1024 */
	int wait_agent_ms; /* retry while the agent does not listen yet (a booting guest) */
};

struct minivmm_exec_result {
	int status;	 /* exit code 0..255, or the signal when signaled */
	bool signaled;	 /* killed by signal `status` */
	bool timed_out;	 /* the timeout killed it */
	char *out, *err; /* captured stdout/stderr, NUL-terminated (NULL when empty) */
	size_t out_len, err_len;
	bool out_truncated, err_truncated;
};

/* 0 when the command ran (@r says how it ended); -ENOENT etc. when it could not start. */
MINIVMM_API int minivmm_exec(struct minivmm_vm *vm, const struct minivmm_exec *e,
			     struct minivmm_exec_result *r);
MINIVMM_API void minivmm_exec_result_free(struct minivmm_exec_result *r);

/* Where the agent listens (0: 1024) and how long copies (and execs with wait_agent_ms 0)
 * retry while it does not listen yet (0: no retry). Per VM; before other calls on it. */
MINIVMM_API void minivmm_set_agent(struct minivmm_vm *vm, uint32_t port, int wait_ms);

/* Copy a regular file into the guest (@mode: permission bits, < 0: the source's) or out
 * of it (the guest file's bits). Guest paths are absolute. */
MINIVMM_API int minivmm_copy_to_guest(struct minivmm_vm *vm, const char *host_path,
				      const char *guest_path, int mode);
MINIVMM_API int minivmm_copy_from_guest(struct minivmm_vm *vm, const char *guest_path,
					const char *host_path);

#ifdef __cplusplus
}
#endif

#endif
