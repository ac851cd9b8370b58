// SPDX-License-Identifier: GPL-2.0-or-later
/* minivmm run: boot a guest from guest.cfg and map how it ended to an exit status. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "console.h"
#include "kvm.h"
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
    "  -v, --verbose            more messages on stderr (repeat for debug)\n"
    "  -h, --help               this text\n"
    "\n"
    "exit status:\n"
    "  0    the guest powered off or rebooted (see [vm] on_reboot)\n"
    "  N    the guest wrote byte N to the exit port (I/O port 0x501)\n"
    "  1    the VM could not start or failed (KVM error, bad kernel)\n"
    "  2    bad command line or configuration\n"
    "  3    the guest kernel panicked (reported through pvpanic)\n"
    "  124  --timeout expired\n"
    "  128+N  stopped by signal N (SIGINT, SIGTERM, SIGHUP)\n"
    "\n"
    "console: with [console] serial = stdio the guest's ttyS0 is this terminal;\n"
    "on a terminal, Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A.\n";

static int parse_timeout(const char *s, int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 86400.0 * 365)
		return -EINVAL;
	*ms = (int)ceil(v * 1000);
	return 0;
}

static int stop_status(enum vm_stop why, int code, int timeout_ms)
{
	switch (why) {
	case VM_STOP_POWEROFF:
		pr_info("guest powered off");
		return 0;
	case VM_STOP_REBOOT:
		pr_info("guest rebooted");
		return 0;
	case VM_STOP_EXIT_PORT:
		pr_info("guest exit port: status %d", code);
		return code;
	case VM_STOP_PANIC:
		pr_err("guest kernel panic (reported through pvpanic)");
		return EXIT_PANIC;
	case VM_STOP_TIMEOUT:
		pr_err("timeout: guest still running after %.3g s, stopped it",
		       timeout_ms / 1000.0);
		return EXIT_TIMEOUT;
	case VM_STOP_SIGNAL:
		pr_err("stopped by signal %s", strsignal(code));
		return 128 + code;
	case VM_STOP_USER:
		pr_info("stopped from the console");
		return 0;
	case VM_STOP_ERROR:
	case VM_RUNNING:
		break;
	}
	pr_err("the VM failed");
	return EXIT_VM_ERROR;
}

static int run_vm(const struct vm_config *cfg, int timeout_ms)
{
	uint64_t start = now_ns();
	struct kvm_sys kvm;
	enum vm_stop why;
	struct vm vm;
	int sig_fd, ret, left = timeout_ms;

	sig_fd = console_signals_fd();
	vcpu_signals_init();
	/* A reader that goes away must not kill the VM: console writes just fail. */
	signal(SIGPIPE, SIG_IGN);
	ret = kvm_sys_open(&kvm);
	if (ret)
		return EXIT_VM_ERROR;
	if (cfg->serial == SERIAL_STDIO && isatty(STDIN_FILENO))
		term_raw_enter(STDIN_FILENO);
	for (;;) {
		ret = vm_create(&vm, &kvm, cfg);
		if (ret) {
			vm_destroy(&vm);
			ret = EXIT_VM_ERROR;
			break;
		}
		why = vm_run(&vm, left, sig_fd);
		ret = stop_status(why, vm.stop_code, timeout_ms);
		vm_destroy(&vm);
		if (why != VM_STOP_REBOOT || cfg->on_reboot != REBOOT_RESTART)
			break;
		/* The timeout covers the whole run, restarts included. */
		if (timeout_ms > 0) {
			left = timeout_ms - (int)((now_ns() - start) / 1000000);
			if (left <= 0) {
				ret = stop_status(VM_STOP_TIMEOUT, 0, timeout_ms);
				break;
			}
		}
		pr_info("restarting the guest ([vm] on_reboot = restart)");
	}
	term_restore();
	kvm_sys_close(&kvm);
	if (sig_fd >= 0)
		close(sig_fd);
	return ret;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "set", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_config cfg;
	char **sets = NULL;
	int nsets = 0, timeout_ms = 0, c, ret;
	bool dry = false;

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
			if (parse_timeout(optarg, &timeout_ms)) {
				pr_err("--timeout %s: expected a positive number of seconds",
				       optarg);
				ret = EXIT_USAGE;
				goto out;
			}
			break;
		case 'n':
			dry = true;
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
		ret = run_vm(&cfg, timeout_ms);
	}
	config_free(&cfg);
out:
	free(sets);
	return ret;
}
