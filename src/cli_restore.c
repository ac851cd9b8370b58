// SPDX-License-Identifier: GPL-2.0-or-later
/* minivmm restore: start a VM from a snapshot and run it like `minivmm run`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "kvm.h"
#include "log.h"
#include "sandbox/jail.h"
#include "session.h"
#include "snapshot/snapshot.h"
#include "util.h"

static const char restore_usage[] =
    "usage: minivmm restore SNAPSHOT [options]\n"
    "\n"
    "Start the VM saved in SNAPSHOT (minivmm save, or `save` on the API socket)\n"
    "where it was, and run it like `minivmm run`: same console, exit statuses,\n"
    "timeout and API socket. See docs/snapshot.md.\n"
    "\n"
    "options:\n"
    "  --clone DIR              give this VM its own overlay of each qcow2 disk in DIR\n"
    "                           (kept); one snapshot can run as many clones at once.\n"
    "                           Without it, the overlays are temporary.\n"
    "  --lazy                   start at once and fetch memory on first touch\n"
    "                           (userfaultfd) instead of loading it all first\n"
    "  --map                    start at once with guest memory mapped from SNAPSHOT,\n"
    "                           copy-on-write: clones share the file's page cache\n"
    "                           (a snapshot saved with --raw; SNAPSHOT must not be\n"
    "                           truncated or rewritten in place while the VM runs)\n"
    "  --cache                  start at once with guest memory mapped copy-on-write\n"
    "                           from a decompressed copy of SNAPSHOT's memory in the\n"
    "                           cache directory, made by the first such restore of\n"
    "                           SNAPSHOT: clones then read no memory and share every\n"
    "                           page they do not write ($MINIVMM_CACHE_DIR, else\n"
    "                           ~/.cache/minivmm; entries are kept within\n"
    "                           $MINIVMM_MEM_CACHE_MAX MiB, default 4096)\n"
    "  --set SECTION.KEY=VALUE  override a key of the saved configuration, e.g.\n"
    "                           --set console.serial=file:out.log (repeatable)\n"
    "  --timeout SECONDS        stop the guest after SECONDS and exit 124\n"
    "  --api-socket PATH        control socket (see minivmm run --help)\n"
    "  -v, --verbose            more messages on stderr (repeat for debug)\n"
    "  -h, --help               this text\n"
    "\n"
    "exit status: as `minivmm run` (1 also when the snapshot is unusable: truncated,\n"
    "corrupt, another version, or its disks changed; nothing runs then).\n"
    "\n"
    "sandbox: as `minivmm run` (the saved [sandbox] seccomp applies), except that a\n"
    "restore does not run in a jail: --set sandbox.jail= for a VM saved from one\n"
    "(docs/sandbox.md).\n";

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "set", required_argument, NULL, 's' },
		{ "clone", required_argument, NULL, 'c' },
		{ "lazy", no_argument, NULL, 'l' },
		{ "map", no_argument, NULL, 'm' },
		{ "cache", no_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "api-socket", required_argument, NULL, 'a' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct session_opts so = { .compress = true };
	const char *clone = NULL, *text;
	struct snapshot *snap = NULL;
	struct vm_config cfg;
	char **sets;
	int nsets = 0, c, ret;
	bool loaded = false;
	size_t len;

	sets = calloc(argc, sizeof(*sets));
	if (!sets)
		return EXIT_VM_ERROR;
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sets[nsets++] = optarg;
			break;
		case 'c':
			clone = optarg;
			break;
		case 'l':
		case 'm':
		case 'C':
			if (so.mem != SNAPSHOT_MEM_EAGER) {
				pr_err("--lazy, --map and --cache: choose one");
				ret = EXIT_USAGE;
				goto out;
			}
			so.mem = c == 'l'   ? SNAPSHOT_MEM_LAZY
				 : c == 'm' ? SNAPSHOT_MEM_MAP
					    : SNAPSHOT_MEM_CACHE;
			break;
		case 't':
			if (cli_parse_seconds(optarg, CLI_TIMEOUT_MAX_S, &so.timeout_ms)) {
				pr_err("--timeout %s: expected a positive number of seconds",
				       optarg);
				ret = EXIT_USAGE;
				goto out;
			}
			break;
		case 'a':
			so.api_socket = optarg;
			break;
		case 'v':
			log_verbosity++;
			break;
		case 'h':
			fputs(restore_usage, stdout);
			ret = 0;
			goto out;
		default:
			fputs(restore_usage, stderr);
			ret = EXIT_USAGE;
			goto out;
		}
	}
	if (optind != argc - 1) {
		pr_err(optind == argc ? "restore: missing SNAPSHOT"
				      : "restore: too many arguments");
		fputs(restore_usage, stderr);
		ret = EXIT_USAGE;
		goto out;
	}
	/* The KVM check runs while the snapshot is read and checked. */
	so.probe = kvm_probe_start();
	ret = EXIT_VM_ERROR;
	if (snapshot_open(argv[optind], &snap))
		goto out;
	pr_debug("restore: snapshot open after %.1f ms", (now_ns() - minivmm_start_ns) / 1e6);
	text = snapshot_config(snap, &len);
	if (config_load_string(&cfg, argv[optind], text, len, sets, nsets, stderr)) {
		ret = EXIT_USAGE;
		goto out;
	}
	loaded = true;
	if (cfg.sandbox.jail || jail_cgroup_wanted(&cfg)) {
		pr_err(
		    "restore: a jail ([sandbox] jail and its cgroup limits) is for `minivmm run` "
		    "only; restore without one: --set sandbox.jail= (and memory_max=, cpu_max=, "
		    "pids_max=)");
		ret = EXIT_USAGE;
		goto out;
	}
	if (snapshot_prepare_disks(snap, &cfg, clone))
		goto out;
	pr_debug("restore: configuration and disks ready after %.1f ms",
		 (now_ns() - minivmm_start_ns) / 1e6);
	so.snap = snap;
	ret = session_run(&cfg, &so);
	so.probe = NULL; /* session_run took it */
out:
	kvm_probe_cancel(so.probe);
	if (loaded)
		config_free(&cfg);
	snapshot_close(snap);
	free(sets);
	return ret;
}
