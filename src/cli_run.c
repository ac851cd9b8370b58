// SPDX-License-Identifier: GPL-2.0-or-later
/* minivmm run: boot a guest from guest.cfg and map how it ended to an exit status. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "console.h"
#include "session.h"
#include "log.h"
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
    "  128+N  stopped by signal N (SIGINT, SIGTERM, SIGHUP)\n"
    "\n"
    "console: with [console] serial = stdio the guest's ttyS0 is this terminal;\n"
    "on a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A.\n";

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "set", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "api-socket", required_argument, NULL, 'a' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_config cfg;
	char **sets = NULL;
	int nsets = 0, timeout_ms = 0, c, ret;
	bool dry = false;
	const char *api_socket = NULL;

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
	if (dry) {
		config_dump(&cfg, stdout);
		ret = 0;
	} else {
		struct session_opts so = { .timeout_ms = timeout_ms,
					   .api_socket = api_socket,
					   .compress = true };

		ret = session_run(&cfg, &so);
	}
	config_free(&cfg);
out:
	free(sets);
	return ret;
}
