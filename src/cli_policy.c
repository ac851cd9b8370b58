// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * minivmm balloon-policy: keep a set of running VMs within a host memory budget
 * by moving their balloon targets (docs/balloon.md), from each guest's own use
 * (its balloon statistics) and the host's memory pressure (PSI).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/minivmm.h"
#include "api.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "policy.h"
#include "util.h"

#define MIB (1ull << 20)

static const char usage[] =
    "usage: minivmm balloon-policy --budget SIZE [options] SOCKET...\n"
    "\n"
    "Keep the VMs behind the control sockets SOCKET... (each with a [balloon]) within\n"
    "SIZE bytes of guest memory together: every interval, read each guest's use from\n"
    "its balloon statistics and set balloon targets so that each keeps its use plus\n"
    "headroom, and the rest of the budget is shared in proportion to the memory each\n"
    "could still use. Host memory pressure shrinks the budget until it eases.\n"
    "Targets are left where they are on exit. docs/balloon.md.\n"
    "\n"
    "options:\n"
    "  --budget SIZE        guest memory the VMs keep together (K, M, G suffixes)\n"
    "  --interval SECONDS   between rounds (default 2)\n"
    "  --rounds N           stop after N rounds (default: until every VM is gone)\n"
    "  --once               one round (the statistics asked for by a first read)\n"
    "  --min SIZE           no VM keeps less (default 128M)\n"
    "  --headroom SIZE      free memory left above a guest's use: SIZE or a quarter\n"
    "                       of the use, the larger (default 64M)\n"
    "  --psi-limit PCT      host pressure: 'some avg10' above PCT cuts the budget by\n"
    "                       10% per round, down to half; below PCT/2 it grows back 5%\n"
    "                       per round (default 10)\n"
    "  --pressure-file PATH PSI file to watch (default /proc/pressure/memory; a\n"
    "                       cgroup's memory.pressure watches that cgroup)\n"
    "  --dry-run            print the targets, set none\n"
    "  -v, --verbose        print every VM every round\n"
    "  -h, --help           this text\n"
    "\n"
    "exit status: 0 done (rounds, every VM gone, SIGINT/SIGTERM), 1 a VM without a\n"
    "balloon or a failed request, 2 usage\n";

struct pvm {
	const char *socket;
	struct minivmm_vm *vm;
	bool gone;
	uint64_t size; /* the target it has now */
	struct policy_vm p;
};

struct popts {
	struct policy pol;
	int interval_ms;
	long rounds;
	double psi_limit;
	const char *pressure_file;
	bool dry_run;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static unsigned long long mib(uint64_t v)
{
	return (unsigned long long)(v / MIB);
}

/* The VM behind a socket is gone (not an error: VMs come and go). */
static bool is_gone(int ret)
{
	return ret == -ENOENT || ret == -ECONNREFUSED;
}

/* libminivmm's message, which names the socket when the connection failed. */
static void vm_err(const struct pvm *v)
{
	const char *m = minivmm_errmsg();

	if (!strncmp(m, v->socket, strlen(v->socket)))
		pr_err("balloon-policy: %s", m);
	else
		pr_err("balloon-policy: %s: %s", v->socket, m);
}

static void drop(struct pvm *v)
{
	printf("balloon-policy: %s: the VM is gone\n", v->socket);
	v->gone = true;
}

/* Read one VM's balloon; 0, -ENOENT/-ECONNREFUSED when it is gone, or another error. */
static int read_vm(struct pvm *v)
{
	char json[API_MSG_MAX];
	long long mem, size, actual, total, avail;
	int ret;

	ret = minivmm_balloon(v->vm, 0, json, sizeof(json));
	if (ret)
		return ret;
	mem = cli_json_number(json, "memory");
	size = cli_json_number(json, "size");
	actual = cli_json_number(json, "actual");
	if (mem <= 0 || size < 0 || actual < 0) {
		pr_err("balloon-policy: %s: unexpected reply '%.200s'", v->socket, json);
		return -EPROTO;
	}
	v->p.memory = (uint64_t)mem;
	v->p.actual = (uint64_t)actual;
	v->size = (uint64_t)size;
	total = cli_json_number(json, "total-memory");
	avail = cli_json_number(json, "available-memory");
	v->p.have_stats = total > 0 && avail >= 0;
	if (v->p.have_stats)
		v->p.used =
		    policy_guest_used(v->p.memory, v->p.actual, (uint64_t)total, (uint64_t)avail,
				      strstr(json, "\"deflate_on_oom\":true") != NULL);
	return 0;
}

/* Host pressure in %: PSI's some avg10, or 100 when MemAvailable is under 5%. */
static double host_pressure(const char *psi_file)
{
	static bool warned;
	double avg10 = 0;
	uint64_t total, avail;
	char buf[4096];

	if (read_text(psi_file, buf, sizeof(buf)) >= 0) {
		if (policy_parse_psi(buf, &avg10) && !warned) {
			pr_warn("balloon-policy: %s: no 'some avg10=' line", psi_file);
			warned = true;
		}
	} else if (!warned) {
		pr_warn("balloon-policy: %s unreadable: only MemAvailable tells host pressure",
			psi_file);
		warned = true;
	}
	if (read_text("/proc/meminfo", buf, sizeof(buf)) >= 0 &&
	    !policy_parse_meminfo(buf, &total, &avail) && avail < total / 20)
		avg10 = 100;
	return avg10;
}

/* One round over the live VMs; the number still live. */
static size_t round_once(struct popts *o, struct pvm *vms, size_t n, long round, int *err)
{
	struct policy_vm pv[n];
	size_t idx[n], live = 0, i;
	uint64_t over;
	double pressure;

	for (i = 0; i < n; i++) {
		int ret;

		if (vms[i].gone)
			continue;
		ret = read_vm(&vms[i]);
		if (is_gone(ret)) {
			drop(&vms[i]);
			continue;
		}
		if (ret) {
			if (ret != -EPROTO)
				vm_err(&vms[i]);
			*err = ret;
			return 0;
		}
		pv[live] = vms[i].p;
		idx[live++] = i;
	}
	if (!live)
		return 0;
	pressure = host_pressure(o->pressure_file);
	o->pol.squeeze_pct = policy_squeeze(o->pol.squeeze_pct, pressure, o->psi_limit);
	over = policy_plan(&o->pol, pv, live);
	if (log_verbosity)
		printf("balloon-policy: round %ld: %zu VMs, budget %llu MiB (squeeze %u%%, host "
		       "pressure %.2f%%)%s\n",
		       round, live, mib(policy_budget(&o->pol)), o->pol.squeeze_pct, pressure,
		       over ? ", their needs exceed it" : "");
	if (over)
		pr_warn("balloon-policy: the guests need %llu MiB more than the budget", mib(over));
	for (i = 0; i < live; i++) {
		struct pvm *v = &vms[idx[i]];
		int ret;
		uint64_t t = pv[i].target,
			 band = v->p.memory / 100 > 4 * MIB ? v->p.memory / 100 : 4 * MIB;
		bool move = pv[i].have_stats && (t > v->size ? t - v->size : v->size - t) >= band;
		char use[32];

		if (pv[i].have_stats)
			snprintf(use, sizeof(use), "%llu MiB", mib(pv[i].used));
		else
			snprintf(use, sizeof(use), "unknown (no statistics yet)");
		if (move || log_verbosity)
			printf("balloon-policy: %s: %llu MiB RAM, keeps %llu MiB, uses %s, target "
			       "%llu -> %llu MiB%s\n",
			       v->socket, mib(v->p.memory), mib(v->p.actual), use, mib(v->size),
			       mib(move ? t : v->size), move && o->dry_run ? " (dry run)" : "");
		if (!move || o->dry_run)
			continue;
		ret = minivmm_balloon(v->vm, t, NULL, 0);
		if (is_gone(ret)) {
			drop(v);
			live--;
			continue;
		}
		if (ret) {
			vm_err(v);
			*err = ret;
			return 0;
		}
		v->size = t;
	}
	fflush(stdout);
	return live;
}

static int parse_size_opt(const char *name, const char *arg, uint64_t *out)
{
	if (config_parse_size(arg, out) || !*out) {
		pr_err("balloon-policy: %s %s: expected a size (bytes, or with K, M, G)", name,
		       arg);
		return -EINVAL;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct popts *o)
{
	static const struct option opts[] = {
		{ "budget", required_argument, NULL, 'b' },
		{ "interval", required_argument, NULL, 'i' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "once", no_argument, NULL, '1' },
		{ "min", required_argument, NULL, 'm' },
		{ "headroom", required_argument, NULL, 'H' },
		{ "psi-limit", required_argument, NULL, 'p' },
		{ "pressure-file", required_argument, NULL, 'f' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_size_opt("--budget", optarg, &o->pol.budget))
				return EXIT_USAGE;
			break;
		case 'm':
			if (parse_size_opt("--min", optarg, &o->pol.min_size))
				return EXIT_USAGE;
			break;
		case 'H':
			if (parse_size_opt("--headroom", optarg, &o->pol.headroom))
				return EXIT_USAGE;
			break;
		case 'i':
			if (cli_parse_seconds(optarg, 3600, &o->interval_ms)) {
				pr_err(
				    "balloon-policy: --interval %s: expected seconds (at most 3600)",
				    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'r':
		case '1':
			o->rounds = c == '1' ? 1 : strtol(optarg, &end, 10);
			if (c == 'r' && (end == optarg || *end || o->rounds < 1)) {
				pr_err("balloon-policy: --rounds %s: expected a positive number",
				       optarg);
				return EXIT_USAGE;
			}
			break;
		case 'p':
			o->psi_limit = strtod(optarg, &end);
			if (end == optarg || *end || !(o->psi_limit > 0 && o->psi_limit <= 100)) {
				pr_err(
				    "balloon-policy: --psi-limit %s: expected a percentage (0-100]",
				    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'f':
			o->pressure_file = optarg;
			break;
		case 'n':
			o->dry_run = true;
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
	if (!o->pol.budget) {
		pr_err("balloon-policy: --budget SIZE is required");
		goto bad;
	}
	if (optind == argc) {
		pr_err("balloon-policy: no control socket");
		goto bad;
	}
	return 0;
bad:
	fputs(usage, stderr);
	return EXIT_USAGE;
}

int cmd_balloon_policy(int argc, char **argv)
{
	struct popts o = {
		.pol = { .min_size = 128 * MIB, .headroom = 64 * MIB },
		.interval_ms = 2000,
		.psi_limit = 10,
		.pressure_file = "/proc/pressure/memory",
	};
	struct sigaction sa = { .sa_handler = on_signal }, old_int, old_term;
	struct pvm *vms;
	size_t n, i, live = 1;
	long round;
	int ret, err = 0;

	ret = parse_args(argc, argv, &o);
	if (ret)
		return ret < 0 ? 0 : ret;
	n = (size_t)(argc - optind);
	vms = calloc(n, sizeof(*vms));
	if (!vms)
		return EXIT_VM_ERROR;
	ret = 0;
	for (i = 0; i < n; i++) {
		vms[i].socket = argv[optind + i];
		ret = minivmm_attach(vms[i].socket, &vms[i].vm);
		if (!ret)
			ret = read_vm(&vms[i]);
		if (ret) {
			if (ret != -EPROTO)
				vm_err(&vms[i]);
			ret = EXIT_VM_ERROR;
			goto out;
		}
	}
	stopping = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	/* The reads above asked for statistics: give them a moment to arrive. */
	for (round = 1; !stopping; round++) {
		int wait = round == 1 && o.interval_ms > 1000 ? 1000 : o.interval_ms;

		for (; !stopping && wait > 0; wait -= 50)
			sleep_ms(wait < 50 ? (unsigned int)wait : 50);
		if (stopping)
			break;
		live = round_once(&o, vms, n, round, &err);
		if (err || !live || (o.rounds && round >= o.rounds))
			break;
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (err)
		ret = EXIT_VM_ERROR;
	else if (!live)
		printf("balloon-policy: every VM is gone\n");
out:
	for (i = 0; i < n; i++)
		minivmm_free(vms[i].vm);
	free(vms);
	return ret;
}
