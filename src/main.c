// SPDX-License-Identifier: GPL-2.0-or-later
/* minivmm: command dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "qcow2/img.h"
#include "util.h"

static const char usage[] =
    "usage: minivmm COMMAND [ARGS]\n"
    "\n"
    "A KVM micro-hypervisor that boots stock Linux kernels.\n"
    "\n"
    "commands:\n"
    "  run CONFIG [options]   boot a guest (minivmm run --help)\n"
    "  restore SNAPSHOT [options]   start a VM from a snapshot (minivmm restore --help)\n"
    "  img create|info|map|check|convert|compare  qcow2 images (minivmm img --help)\n"
    "  kernel extract|cache   decompress a bzImage on the host (minivmm kernel --help)\n"
    "  save --socket PATH SNAPSHOT  snapshot a running VM (minivmm save --help)\n"
    "  ctl --socket PATH COMMAND    pause|resume|status|stop a running VM (minivmm ctl --help)\n"
    "  exec --socket PATH -- CMD    run a command in a running VM's guest (minivmm exec --help)\n"
    "  cp --socket PATH SRC DST     copy a file to or from a guest (minivmm cp --help)\n"
    "  console --socket PATH        attach to a running VM's serial console (minivmm console --help)\n"
    "  balloon-policy --budget SIZE SOCKET...  keep VMs' balloons within a memory budget\n"
    "                         (minivmm balloon-policy --help)\n"
    "  check-kvm              can this host's KVM run a stock guest? (exit 0: yes)\n"
    "  version                print the version\n"
    "  help                   this text\n"
    "\n"
    "See README.md and docs/ for the configuration file and the guest interface.\n";

int main(int argc, char **argv)
{
	minivmm_start_ns = now_ns();
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "img"))
		return img_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "kernel"))
		return cmd_kernel(argc - 1, argv + 1);
	if (!strcmp(argv[1], "save"))
		return cmd_save(argc - 1, argv + 1);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ctl"))
		return cmd_ctl(argc - 1, argv + 1);
	if (!strcmp(argv[1], "exec"))
		return cmd_exec(argc - 1, argv + 1);
	if (!strcmp(argv[1], "cp"))
		return cmd_cp(argc - 1, argv + 1);
	if (!strcmp(argv[1], "console"))
		return cmd_console(argc - 1, argv + 1);
	if (!strcmp(argv[1], "balloon-policy"))
		return cmd_balloon_policy(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check-kvm"))
		return cmd_check_kvm(argc - 1, argv + 1);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("minivmm %s\n", MINIVMM_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, stdout);
		return 0;
	}
	pr_err("unknown command '%s' (try minivmm --help)", argv[1]);
	return EXIT_USAGE;
}
