// SPDX-License-Identifier: GPL-2.0-or-later
/* minivmm save / minivmm ctl: requests to a running VM's control socket (docs/api.md). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/minivmm.h"
#include "api.h"
#include "cli.h"
#include "log.h"
#include "util.h"

#define CTL_TIMEOUT_MS 30000

static const char save_usage[] =
    "usage: minivmm save --socket PATH SNAPSHOT [--stop] [options]\n"
    "\n"
    "Snapshot the VM whose control socket is PATH ([api] socket) into the file\n"
    "SNAPSHOT: the VM pauses, is written out, then resumes (or stops with --stop).\n"
    "\n"
    "options:\n"
    "  --socket PATH       the VM's control socket (required)\n"
    "  --stop              stop the VM once the snapshot is written\n"
    "  --raw               store guest memory uncompressed, each page in its place,\n"
    "                      so that `restore --map` can map it (default: LZO1X-1)\n"
    "  --timeout SECONDS   give up after SECONDS (default: wait as long as it takes)\n"
    "  -v, --verbose       print what was written on stderr\n"
    "  -h, --help          this text\n"
    "\n"
    "exit status:\n"
    "  0    the snapshot was written\n"
    "  1    no VM answered, or the VM could not save\n"
    "  2    bad command line\n";

static const char ctl_usage[] =
    "usage: minivmm ctl --socket PATH COMMAND [options]\n"
    "\n"
    "Send COMMAND to the VM whose control socket is PATH ([api] socket):\n"
    "  pause    stop running the vCPUs\n"
    "  resume   run them again\n"
    "  status   print the VM's state as JSON on stdout\n"
    "  stop     stop the VM (minivmm run exits 0)\n"
    "  events   print the VM's events as JSON lines (docs/api.md) until it stops\n"
    "  balloon [SIZE]\n"
    "           ([balloon]) ask the guest to keep SIZE bytes of memory (K, M, G\n"
    "           suffixes) and give the rest back; without SIZE, or after it, print\n"
    "           the balloon's state and the guest's last statistics as JSON\n"
    "\n"
    "options:\n"
    "  --socket PATH       the VM's control socket (required)\n"
    "  --timeout SECONDS   give up after SECONDS (default 30; events: waits for\n"
    "                      events as long as the VM runs, 5 s to connect)\n"
    "  -v, --verbose       more messages on stderr\n"
    "  -h, --help          this text\n"
    "\n"
    "exit status: 0 done, 1 no VM answered or the VM refused, 2 bad command line\n";

/*
 * The server's cwd is not ours: send an absolute path (path_absolute: the directory must
 * exist, the file need not).
 */
static int absolute_snapshot(const char *arg, char **out)
{
	int ret = path_absolute(arg, out);

	if (ret == -EINVAL)
		pr_err("save: %s: not a file name", arg);
	else if (ret)
		pr_err("save: %s: %s", arg, strerror(-ret));
	return ret;
}

/* One request; 0 on "ok" (*body set), else an exit status after an error message. */
static int call(const char *what, const char *socket, const char *request, int timeout_ms,
		char *reply, size_t len, const char **body)
{
	char name[16];
	int ret;

	ret = api_call(socket, request, reply, len, timeout_ms);
	if (ret == -ETIMEDOUT) {
		pr_err("%s: no reply from %s within %.3g s", what, socket, timeout_ms / 1000.0);
		return EXIT_VM_ERROR;
	}
	if (ret == -EPROTO) {
		pr_err("%s: %s closed the connection without a reply", what, socket);
		return EXIT_VM_ERROR;
	}
	if (ret && ret != -EMSGSIZE) {
		pr_err("%s: cannot connect to %s: %s", what, socket, strerror(-ret));
		return EXIT_VM_ERROR;
	}
	ret = api_reply_parse(reply, body);
	if (ret == -EPROTO) {
		pr_err("%s: unexpected reply from %s: '%.200s'", what, socket, reply);
		return EXIT_VM_ERROR;
	}
	if (ret) {
		pr_err("%s failed: %s: %s", what, api_errno_name(-ret, name), *body);
		return EXIT_VM_ERROR;
	}
	return 0;
}

static bool save_raw;

static int parse_opts(int argc, char **argv, const char *usage, const char **socket, bool *stop,
		      int *timeout_ms)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "stop", no_argument, NULL, 'S' },
		{ "raw", no_argument, NULL, 'R' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			*socket = optarg;
			break;
		case 'S':
			if (!stop)
				goto bad;
			*stop = true;
			break;
		case 'R':
			if (!stop) /* save only */
				goto bad;
			save_raw = true;
			break;
		case 't':
			if (cli_parse_seconds(optarg, INT_MAX / 1000, timeout_ms)) {
				pr_err("--timeout %s: expected a positive number of seconds",
				       optarg);
				return EXIT_USAGE;
			}
			break;
		case 'v':
			log_verbosity++;
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			goto bad;
		}
	}
	if (!*socket) {
		pr_err("%s: --socket PATH is required", argv[0]);
		goto bad;
	}
	/* ctl balloon takes an optional SIZE. */
	if (usage == ctl_usage && optind == argc - 2 && !strcmp(argv[optind], "balloon"))
		return 0;
	if (optind != argc - 1) {
		pr_err(optind == argc ? "%s: missing argument" : "%s: too many arguments", argv[0]);
		goto bad;
	}
	return 0;
bad:
	fputs(usage, stderr);
	return EXIT_USAGE;
}

int cmd_save(int argc, char **argv)
{
	const char *socket = NULL, *body;
	char *snap = NULL, *req = NULL, reply[API_MSG_MAX + 256];
	int timeout_ms = 0, ret;
	bool stop = false;

	ret = parse_opts(argc, argv, save_usage, &socket, &stop, &timeout_ms);
	if (ret)
		return ret < 0 ? 0 : ret;
	ret = absolute_snapshot(argv[optind], &snap);
	if (ret)
		return ret == -ENOMEM ? EXIT_VM_ERROR : EXIT_USAGE;
	if (asprintf(&req, "save %s%s%s", stop ? "--stop " : "", save_raw ? "--raw " : "", snap) <
	    0) {
		req = NULL;
		ret = EXIT_VM_ERROR;
		goto out;
	}
	if (strlen(req) > API_LINE_MAX || strchr(snap, '\n')) {
		pr_err("save: %s: path too long or has a newline", snap);
		ret = EXIT_USAGE;
		goto out;
	}
	pr_debug("save: sending '%s' to %s", req, socket);
	ret = call("save", socket, req, timeout_ms, reply, sizeof(reply), &body);
	if (ret)
		goto out;
	if (cli_json_number(body, "bytes") >= 0 && cli_json_number(body, "ms") >= 0)
		pr_info("saved %s: %lld bytes in %lld ms%s", snap, cli_json_number(body, "bytes"),
			cli_json_number(body, "ms"), stop ? ", VM stopped" : "");
	else
		pr_info("saved %s%s%s%s", snap, *body ? ": " : "", body,
			stop ? ", VM stopped" : "");
out:
	free(req);
	free(snap);
	return ret;
}

/* Each event line on stdout until the VM stops (0) or stdout goes away (1). */
static int ctl_events(const char *socket)
{
	struct minivmm_vm *vm;
	char line[8192];
	int ret;

	ret = minivmm_attach(socket, &vm);
	while (!ret) {
		ret = minivmm_next_event(vm, line, sizeof(line), -1);
		if (!ret && (printf("%s\n", line) < 0 || fflush(stdout))) {
			minivmm_free(vm);
			return EXIT_VM_ERROR;
		}
	}
	if (ret != -EPIPE)
		pr_err("ctl events: %s", minivmm_errmsg());
	minivmm_free(vm);
	return ret == -EPIPE ? 0 : EXIT_VM_ERROR;
}

int cmd_ctl(int argc, char **argv)
{
	static const char *const cmds[] = { "pause", "resume", "status", "stop", "balloon" };
	const char *socket = NULL, *body, *cmd;
	int timeout_ms = CTL_TIMEOUT_MS, ret;
	char reply[API_MSG_MAX + 256], what[16], req[64];
	size_t i;

	ret = parse_opts(argc, argv, ctl_usage, &socket, NULL, &timeout_ms);
	if (ret)
		return ret < 0 ? 0 : ret;
	cmd = argv[optind];
	if (!strcmp(cmd, "events")) {
		return ctl_events(socket);
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmd, cmds[i]))
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		pr_err("ctl: unknown command '%s' (pause, resume, status, stop, events or balloon)",
		       cmd);
		fputs(ctl_usage, stderr);
		return EXIT_USAGE;
	}
	snprintf(what, sizeof(what), "ctl %s", cmd);
	if (optind == argc - 2 && strlen(argv[optind + 1]) > 32) {
		pr_err("ctl balloon: bad size '%.32s...'", argv[optind + 1]);
		return EXIT_USAGE;
	}
	snprintf(req, sizeof(req), "%s%s%s", cmd, optind == argc - 2 ? " " : "",
		 optind == argc - 2 ? argv[optind + 1] : "");
	ret = call(what, socket, req, timeout_ms, reply, sizeof(reply), &body);
	if (ret)
		return ret;
	if (*body)
		printf("%s\n", body);
	pr_info("%s: ok", what);
	return 0;
}
