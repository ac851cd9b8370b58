// SPDX-License-Identifier: GPL-2.0-or-later
/* minivmm run: boot a guest from guest.cfg and map how it ended to an exit status. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "console.h"
#include "session.h"
#include "log.h"
#include "sandbox/jail.h"
#include "term.h"
#include "util.h"
#include "vcpu/vcpu.h"
#include "vm.h"

static const char run_usage[] =
    "usage: minivmm run CONFIG [options]\n"
    "\n"
    "Boot the guest described by CONFIG (an INI file, see docs/config.md).\n"
    "\n"
    "options:\n"
    "  --set SECTION.KEY=VALUE  override a config key (repeatable), e.g.\n"
    "                           --set vm.vcpus=4 --set boot.cmdline=\"console=ttyS0\"\n"
    "  --timeout SECONDS        stop the guest after SECONDS and exit 124\n"
    "  --dry-run                check the config, print the effective settings, exit\n"
    "  --api-socket PATH        control socket for pause/resume/save/status/stop\n"
    "                           (overrides [api] socket; see docs/api.md)\n"
    "  --jail DIR               run in a jail built on DIR (overrides [sandbox] jail):\n"
    "                           new namespaces, a root holding only what the VM uses,\n"
    "                           an unprivileged uid/gid; needs root (docs/sandbox.md)\n"
    "  -v, --verbose            more messages on stderr (repeat for debug)\n"
    "  -h, --help               this text\n"
    "\n"
    "exit status:\n"
    "  0    the guest powered off or rebooted (see [vm] on_reboot), or was\n"
    "       stopped through the API socket\n"
    "  N    the guest wrote byte N to the exit port (I/O port 0x501)\n"
    "  1    the VM could not start or failed (KVM error, bad kernel, or a KVM\n"
    "       that cannot run a stock guest: see minivmm check-kvm)\n"
    "  2    bad command line or configuration\n"
    "  3    the guest kernel panicked (reported through pvpanic)\n"
    "  124  --timeout expired\n"
    "  128+N  stopped by signal N (SIGINT, SIGTERM, SIGHUP; SIGUSR2 also prints\n"
    "         each vCPU's registers: where a hung guest was)\n"
    "  159  a thread made a system call its seccomp filter denies (128+SIGSYS;\n"
    "       the line before names the thread and the call)\n"
    "\n"
    "console: with [console] serial = stdio the guest's ttyS0 is this terminal;\n"
    "on a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A. With\n"
    "serial = api it is reached with `minivmm console --socket PATH` instead.\n"
    "\n"
    "sandbox ([sandbox] in the config, docs/sandbox.md): every thread runs under a\n"
    "seccomp filter for its role (seccomp = on, the default; off or log to debug),\n"
    "capabilities are dropped once the VM is built, guest memory stays out of core\n"
    "dumps, and a console file stops at [console] max_size (default 64M).\n";

/* --jail DIR: like [sandbox] jail = DIR, DIR relative to the current directory. */
static int run_set_jail(struct vm_config *cfg, const char *dir)
{
	struct stat st;
	char *copy;

	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		pr_err("--jail %s: %s", dir, errno ? strerror(errno) : strerror(ENOTDIR));
		return -EINVAL;
	}
	copy = strdup(dir);
	if (!copy)
		return -ENOMEM;
	free(cfg->sandbox.jail);
	cfg->sandbox.jail = copy;
	return 0;
}

/* The session, in the jail when there is one: there, or in the parent that waited. */
static int run_jailed(struct vm_config *cfg, const struct session_opts *so)
{
	struct session_opts o = *so;
	int status = EXIT_VM_ERROR, ret;

	if (!cfg->sandbox.jail) {
		if (jail_cgroup_wanted(cfg)) {
			pr_err("[sandbox] memory_max, cpu_max and pids_max apply to a jail: set "
			       "[sandbox] jail (or --jail DIR)");
			return EXIT_USAGE;
		}
		return session_run(cfg, so);
	}
	/* The jail moves paths to their real names: the socket too. */
	if (o.api_socket) {
		free(cfg->api_socket);
		cfg->api_socket = strdup(o.api_socket);
		if (!cfg->api_socket)
			return EXIT_VM_ERROR;
		o.api_socket = NULL;
	}
	ret = jail_run(cfg, &status);
	if (ret < 0)
		return EXIT_VM_ERROR;
	if (ret > 0)
		return status; /* the parent: the jailed VMM has ended */
	return session_run(cfg, &o);
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "set", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "api-socket", required_argument, NULL, 'a' },
		{ "jail", required_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_config cfg;
	char **sets = NULL;
	int nsets = 0, timeout_ms = 0, c, ret;
	bool dry = false;
	const char *api_socket = NULL, *jail = NULL;

	sets = calloc(argc, sizeof(*sets));
	if (!sets)
		return EXIT_VM_ERROR;
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sets[nsets++] = optarg;
			break;
		case 't':
			if (cli_parse_seconds(optarg, CLI_TIMEOUT_MAX_S, &timeout_ms)) {
				pr_err("--timeout %s: expected a positive number of seconds",
				       optarg);
				ret = EXIT_USAGE;
				goto out;
			}
			break;
		case 'n':
			dry = true;
			break;
		case 'a':
			api_socket = optarg;
			break;
		case 'j':
			jail = optarg;
			break;
		case 'v':
			log_verbosity++;
			break;
		case 'h':
			fputs(run_usage, stdout);
			ret = 0;
			goto out;
		default:
			fputs(run_usage, stderr);
			ret = EXIT_USAGE;
			goto out;
		}
	}
	if (optind != argc - 1) {
		pr_err(optind == argc ? "run: missing CONFIG" : "run: too many arguments");
		fputs(run_usage, stderr);
		ret = EXIT_USAGE;
		goto out;
	}
	if (config_load(&cfg, argv[optind], sets, nsets, stderr)) {
		ret = EXIT_USAGE;
		goto out;
	}
	if (jail && run_set_jail(&cfg, jail)) {
		config_free(&cfg);
		ret = EXIT_USAGE;
		goto out;
	}
	if (dry) {
		config_dump(&cfg, stdout);
		ret = 0;
	} else {
		struct session_opts so = { .timeout_ms = timeout_ms,
					   .api_socket = api_socket,
					   .compress = true };

		ret = run_jailed(&cfg, &so);
	}
	config_free(&cfg);
out:
	free(sets);
	return ret;
}
