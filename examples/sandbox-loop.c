// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The CI-sandbox loop through libminivmm (docs/libminivmm.md): boot a guest once, wait for
 * its agent, snapshot it; then N times restore a clone, run a command in it, collect the
 * output, discard the clone. Prints the cold boot's and each clone's time to the first
 * output of the command.
 *
 *   sandbox-loop [-n N] [--lazy|--map|--cache] [--set SECTION.KEY=VALUE]... CONFIG -- COMMAND
 * [ARGS...]
 *
 * --lazy: clones fetch memory on first touch; --map: the snapshot is saved uncompressed
 * and clones map it (their unchanged memory is one copy in the host's page cache);
 * --cache: the first clone decompresses the snapshot's memory into the memory cache and
 * every clone maps that (docs/snapshot.md).
 *
 * CONFIG must give the guest a vsock device ([vsock] cid, socket) and the agent
 * (docs/agent.md); each clone gets its own vsock socket and CID. Exit status: 0 when every
 * clone ran the command with status 0 and the same output as the first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <minivmm.h>

#define MAX_SET 64

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: sandbox-loop [-n N] [--lazy|--map|--cache] [--set SECTION.KEY=VALUE]... "
		"CONFIG -- COMMAND [ARGS...]\n");
	exit(2);
}

/* Run the command; its stdout (malloc'd) in *out. */
static int run(struct minivmm_vm *vm, char *const *cmd, int wait_ms, char **out)
{
	struct minivmm_exec e = {
		.argv = (const char *const *)cmd,
		.timeout_ms = 60000,
		.wait_agent_ms = wait_ms,
	};
	struct minivmm_exec_result r;
	int ret;

	*out = NULL;
	ret = minivmm_exec(vm, &e, &r);
	if (ret) {
		fprintf(stderr, "sandbox-loop: exec: %s\n", minivmm_errmsg());
		return ret;
	}
	if (r.signaled || r.timed_out || r.status) {
		fprintf(stderr, "sandbox-loop: %s: %s %d; stderr: %s\n", cmd[0],
			r.signaled ? "signal" : "exit status", r.status, r.err ? r.err : "");
		ret = -ECANCELED;
	}
	*out = r.out ? strdup(r.out) : strdup("");
	minivmm_exec_result_free(&r);
	return ret;
}

int main(int argc, char **argv)
{
	const char *set[MAX_SET + 4] = { NULL }, *cfg = NULL;
	char dir[] = "/tmp/sandbox-loop-XXXXXX", snap[64], sock[2][128], *first = NULL, *out;
	int n = 3, nset = 0, i, status, ret, bad = 0;
	char **cmd = NULL;
	struct minivmm_vm *vm;
	bool lazy = false, map = false, cache = false;
	double t0, t;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--lazy"))
			lazy = true;
		else if (!strcmp(argv[i], "--map"))
			map = true;
		else if (!strcmp(argv[i], "--cache"))
			cache = true;
		else if (!strcmp(argv[i], "--set") && i + 1 < argc && nset < MAX_SET)
			set[nset++] = argv[++i];
		else if (!strcmp(argv[i], "--") && i + 1 < argc && cfg) {
			cmd = argv + i + 1;
			break;
		} else if (argv[i][0] != '-' && !cfg)
			cfg = argv[i];
		else
			usage();
	}
	if (!cfg || !cmd || n < 1 || n > 128 || lazy + map + cache > 1)
		usage();
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	printf("libminivmm %s (ABI %d)\n", minivmm_version(), minivmm_abi());

	/* Cold boot to the command's first output. */
	snprintf(sock[0], sizeof(sock[0]), "vsock.socket=%s/base.vsock", dir);
	set[nset] = sock[0];
	t0 = now_ms();
	struct minivmm_opts o = { .config_path = cfg, .set = set };
	ret = minivmm_start(&o, &vm);
	if (ret) {
		fprintf(stderr, "sandbox-loop: start: %s\n", minivmm_errmsg());
		return 1;
	}
	ret = run(vm, cmd, 120000, &first);
	t = now_ms() - t0;
	if (ret) {
		minivmm_free(vm);
		return 1;
	}
	printf("cold boot to first output: %.1f ms\n", t);
	snprintf(snap, sizeof(snap), "%s/base.snap", dir);
	ret = minivmm_save(vm, snap, MINIVMM_SAVE_STOP | (map ? MINIVMM_SAVE_RAW : 0), NULL, 0);
	if (ret || minivmm_wait(vm, 60000, &status)) {
		fprintf(stderr, "sandbox-loop: save: %s\n", minivmm_errmsg());
		minivmm_free(vm);
		return 1;
	}
	minivmm_free(vm);

	/* The loop: restore a clone, run, collect, discard. */
	for (i = 0; i < n; i++) {
		char clone[128], cid[32];
		const char *cset[4] = { sock[1], cid, NULL };
		struct minivmm_opts co = { .snapshot = snap,
					   .clone_dir = clone,
					   .lazy = lazy,
					   .map = map,
					   .cache = cache,
					   .set = cset };

		snprintf(clone, sizeof(clone), "%s/clone%d", dir, i);
		snprintf(sock[1], sizeof(sock[1]), "vsock.socket=%s/c%d.vsock", dir, i);
		snprintf(cid, sizeof(cid), "vsock.cid=%d", 100 + i);
		if (mkdir(clone, 0700)) {
			perror(clone);
			return 1;
		}
		t0 = now_ms();
		ret = minivmm_start(&co, &vm);
		if (ret) {
			fprintf(stderr, "sandbox-loop: clone %d: %s\n", i, minivmm_errmsg());
			bad++;
			continue;
		}
		ret = run(vm, cmd, 0, &out);
		t = now_ms() - t0;
		if (!ret && strcmp(out, first)) {
			fprintf(stderr, "sandbox-loop: clone %d printed '%s', not '%s'\n", i, out,
				first);
			ret = -EINVAL;
		}
		printf("clone %d: restore to first output %.1f ms%s\n", i, t, ret ? " FAILED" : "");
		bad += !!ret;
		free(out);
		minivmm_free(vm); /* stops it, removes its control socket */
		rmdir(clone);	  /* empty unless the guest has qcow2 disks (their overlays) */
	}
	unlink(snap);
	rmdir(dir);
	printf("output: %s", first);
	printf("%d of %d clones ran the command\n", n - bad, n);
	free(first);
	return bad ? 1 : 0;
}
