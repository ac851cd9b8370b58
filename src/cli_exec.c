// SPDX-License-Identifier: GPL-2.0-or-later
/* minivmm exec / minivmm cp: libminivmm's exec and copies on a running VM (attached by its
 * control socket). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/minivmm.h"
#include "agent/agent_proto.h"
#include "cli.h"
#include "log.h"
#include "util.h"

#define EXIT_EXEC_ERROR	   255 /* ours, not the command's (as ssh) */
#define CONNECT_TIMEOUT_MS 10000

static const char exec_usage[] =
    "usage: minivmm exec --socket PATH [options] -- COMMAND [ARGS...]\n"
    "\n"
    "Run COMMAND in the guest of the VM whose control socket is PATH ([api] socket,\n"
    "--api-socket), through the guest agent (docs/agent.md) on the VM's vsock device.\n"
    "Its stdout and stderr go to ours as they come, our stdin goes to its stdin, and\n"
    "SIGINT, SIGTERM and SIGHUP sent to us go to its process group.\n"
    "\n"
    "options:\n"
    "  --socket PATH       the VM's control socket (required)\n"
    "  --env NAME=VALUE    set a variable in the command's environment (repeatable)\n"
    "  --cwd DIR           run it in DIR (default: /)\n"
    "  --timeout SECONDS   kill it (SIGTERM, SIGKILL 2 s later) after SECONDS\n"
    "  --no-stdin          give it /dev/null as stdin\n"
    "  --port N            the agent's vsock port (default 1024)\n"
    "  --wait SECONDS      retry while the VM or its agent is not there yet (booting)\n"
    "  -v, --verbose       more messages on stderr\n"
    "  -h, --help          this text\n"
    "\n"
    "exit status:\n"
    "  the command's exit status; 128+N when signal N killed it; 124 when --timeout\n"
    "  killed it; 255 when minivmm could not run it (bad command line, no VM, no agent,\n"
    "  no such program, connection lost)\n";

static const char cp_usage[] =
    "usage: minivmm cp --socket PATH [options] SRC DST\n"
    "\n"
    "Copy a regular file between this host and the guest of the VM whose control socket\n"
    "is PATH, through the guest agent (docs/agent.md). Exactly one of SRC and DST names\n"
    "a guest file, written guest:/ABSOLUTE/PATH. A DST that ends in '/' (or a host DST\n"
    "that is a directory) gets SRC's file name. Guest files are written to a temporary\n"
    "file beside them, synced and renamed into place; host files are written in place.\n"
    "\n"
    "options:\n"
    "  --socket PATH       the VM's control socket (required)\n"
    "  --mode MODE         permission bits of the copy, octal (default: the source's)\n"
    "  --port N            the agent's vsock port (default 1024)\n"
    "  --wait SECONDS      retry while the VM or its agent is not there yet (booting)\n"
    "  -v, --verbose       print what was copied on stderr\n"
    "  -h, --help          this text\n"
    "\n"
    "exit status: 0 copied, 1 the copy failed, 2 bad command line\n";

struct agent_opts {
	const char *socket;
	uint32_t port;
	int wait_ms;
};

/* Options both commands take; 1: consumed, 0: not ours, < 0: bad. */
static int common_opt(int c, struct agent_opts *o)
{
	unsigned long v;
	char *end;

	switch (c) {
	case 's':
		o->socket = optarg;
		return 1;
	case 'p':
		errno = 0;
		v = strtoul(optarg, &end, 10);
		if (errno || end == optarg || *end || v > UINT32_MAX) {
			pr_err("--port %s: expected a number (0..4294967295)", optarg);
			return -EINVAL;
		}
		o->port = v;
		return 1;
	case 'w':
		if (cli_parse_seconds(optarg, INT_MAX / 1000, &o->wait_ms)) {
			pr_err("--wait %s: expected a positive number of seconds", optarg);
			return -EINVAL;
		}
		return 1;
	case 'v':
		log_verbosity++;
		return 1;
	}
	return 0;
}

/* The VM behind @o->socket, through libminivmm (include/minivmm.h). */
static struct minivmm_vm *attach(const char *what, const struct agent_opts *o)
{
	struct minivmm_vm *vm;

	if (minivmm_attach(o->socket, &vm)) {
		pr_err("%s: %s", what, minivmm_errmsg());
		return NULL;
	}
	minivmm_set_agent(vm, o->port, o->wait_ms);
	return vm;
}

/* --- exec -------------------------------------------------------------------------------- */

static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	int e = errno;

	if (write(sig_pipe[1], &sig, sizeof(sig)) < 0)
		(void)0; /* full: the command gets the ones already queued */
	errno = e;
}

static int forward_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	return 0;
}

static int exec_parse(int argc, char **argv, struct agent_opts *o, struct minivmm_exec *spec,
		      const char ***env, size_t *nenv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "env", required_argument, NULL, 'e' },
		{ "cwd", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "no-stdin", no_argument, NULL, 'n' },
		{ "port", required_argument, NULL, 'p' },
		{ "wait", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, ret, ms;

	optind = 1;
	/* '+': stop at the command, whose options are its own. */
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		ret = common_opt(c, o);
		if (ret < 0)
			return -EINVAL;
		if (ret)
			continue;
		switch (c) {
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				pr_err("--env %s: expected NAME=VALUE", optarg);
				return -EINVAL;
			}
			(*env)[(*nenv)++] = optarg;
			break;
		case 'c':
			spec->cwd = optarg;
			break;
		case 't':
			if (cli_parse_seconds(optarg, INT_MAX / 1000, &ms)) {
				pr_err("--timeout %s: expected a positive number of seconds",
				       optarg);
				return -EINVAL;
			}
			spec->timeout_ms = ms;
			break;
		case 'n':
			spec->stdin_fd = -1;
			break;
		case 'h':
			fputs(exec_usage, stdout);
			return 1;
		default:
			return -EINVAL;
		}
	}
	if (!o->socket) {
		pr_err("exec: --socket PATH is required");
		return -EINVAL;
	}
	if (optind == argc) {
		pr_err("exec: no command (minivmm exec --socket PATH -- COMMAND [ARGS...])");
		return -EINVAL;
	}
	spec->argv = (const char *const *)argv + optind;
	return 0;
}

int cmd_exec(int argc, char **argv)
{
	struct agent_opts o = { .port = AGENT_DEFAULT_PORT };
	struct minivmm_exec spec = {
		.use_fds = true,
		.stdin_fd = STDIN_FILENO,
		.stdout_fd = STDOUT_FILENO,
		.stderr_fd = STDERR_FILENO,
		.signal_fd = -1,
	};
	struct minivmm_exec_result res;
	struct minivmm_vm *vm;
	const char **env;
	size_t nenv = 0;
	int ret, status = EXIT_EXEC_ERROR;

	/* At most one --env per argument. */
	env = calloc(argc + 1, sizeof(*env));
	if (!env)
		return EXIT_EXEC_ERROR;
	ret = exec_parse(argc, argv, &o, &spec, &env, &nenv);
	if (ret) {
		if (ret < 0)
			fputs("(minivmm exec --help)\n", stderr);
		free(env);
		return ret > 0 ? 0 : EXIT_EXEC_ERROR;
	}
	spec.env = nenv ? env : NULL;
	signal(SIGPIPE, SIG_IGN); /* a closed stdout is an error we report, not a death */
	vm = attach("exec", &o);
	if (!vm)
		goto out;
	if (!forward_signals())
		spec.signal_fd = sig_pipe[0];
	ret = minivmm_exec(vm, &spec, &res);
	if (ret) {
		pr_err("exec: %s", minivmm_errmsg());
	} else if (res.timed_out) {
		pr_err("exec: %s: timed out after %.3g s, killed", spec.argv[0],
		       spec.timeout_ms / 1000.0);
		status = EXIT_TIMEOUT;
	} else if (res.signaled) {
		pr_info("exec: %s: killed by signal %d", spec.argv[0], res.status);
		status = 128 + res.status;
	} else {
		pr_debug("exec: %s: exit status %d", spec.argv[0], res.status);
		status = res.status;
	}
	minivmm_free(vm);
out:
	free(env);
	return status;
}

/* --- cp ---------------------------------------------------------------------------------- */

static const char *guest_path(const char *arg)
{
	return strncmp(arg, "guest:", 6) ? NULL : arg + 6;
}

/* @dst, or @dst/basename(@src) when @dst is a directory (@is_dir) or ends in '/'. */
static char *target(const char *src, const char *dst, bool is_dir)
{
	const char *base = strrchr(src, '/');
	size_t n = strlen(dst);
	char *out;

	base = base ? base + 1 : src;
	if (!is_dir && (!n || dst[n - 1] != '/'))
		return strdup(dst);
	if (!*base)
		return NULL;
	if (asprintf(&out, "%s%s%s", dst, n && dst[n - 1] == '/' ? "" : "/", base) < 0)
		return NULL;
	return out;
}

static int copy(struct minivmm_vm *vm, const char *gsrc, const char *src, const char *gdst,
		const char *dst, long mode)
{
	struct stat st;
	char *path;
	int ret;

	if (gsrc)
		path = target(gsrc, dst, !stat(dst, &st) && S_ISDIR(st.st_mode));
	else
		path = target(src, gdst, false);
	if (!path) {
		pr_err("cp: %s: cannot name the copy", gsrc ? dst : gdst);
		return EXIT_VM_ERROR;
	}
	if (gsrc) {
		ret = minivmm_copy_from_guest(vm, gsrc, path);
		if (!ret && mode >= 0 && chmod(path, mode))
			ret = -errno;
	} else {
		ret = minivmm_copy_to_guest(vm, src, path, (int)mode);
	}
	if (ret)
		pr_err("cp: %s", minivmm_errmsg());
	else
		pr_info("cp: %s%s -> %s%s", gsrc ? "guest:" : "", gsrc ? gsrc : src,
			gsrc ? "" : "guest:", path);
	free(path);
	return ret ? EXIT_VM_ERROR : 0;
}

int cmd_cp(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "port", required_argument, NULL, 'p' },
		{ "wait", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_opts o = { .port = AGENT_DEFAULT_PORT };
	const char *src, *dst, *gsrc, *gdst;
	struct minivmm_vm *vm;
	long mode = -1;
	char *end;
	int ch, ret;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		ret = common_opt(ch, &o);
		if (ret < 0)
			goto usage;
		if (ret)
			continue;
		switch (ch) {
		case 'm':
			errno = 0;
			mode = strtol(optarg, &end, 8);
			if (errno || end == optarg || *end || mode < 0 || mode > 07777) {
				pr_err("--mode %s: expected octal permission bits (0..7777)",
				       optarg);
				goto usage;
			}
			break;
		case 'h':
			fputs(cp_usage, stdout);
			return 0;
		default:
			goto usage;
		}
	}
	if (!o.socket) {
		pr_err("cp: --socket PATH is required");
		goto usage;
	}
	if (argc - optind != 2) {
		pr_err("cp: expected SRC and DST");
		goto usage;
	}
	src = argv[optind];
	dst = argv[optind + 1];
	gsrc = guest_path(src);
	gdst = guest_path(dst);
	if (!gsrc == !gdst) {
		pr_err("cp: exactly one of SRC and DST must be guest:PATH");
		goto usage;
	}
	if ((gsrc ? gsrc : gdst)[0] != '/') {
		pr_err("cp: %s: the guest path must be absolute", gsrc ? src : dst);
		goto usage;
	}
	signal(SIGPIPE, SIG_IGN);
	vm = attach("cp", &o);
	if (!vm)
		return EXIT_VM_ERROR;
	ret = copy(vm, gsrc, src, gdst, dst, mode);
	minivmm_free(vm);
	return ret;
usage:
	fputs("(minivmm cp --help)\n", stderr);
	return EXIT_USAGE;
}
