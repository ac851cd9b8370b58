// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/agent: driving a guest through libminivmm (bench/agent/run.sh runs it):
 *   - exec round trip: `true` in the guest, N times, through the agent over vsock;
 *   - cp throughput: 64 MiB host -> guest and guest -> host;
 *   - time to the first output of a command: cold boot vs restore of a clone, eager and
 *     lazy (an LZO snapshot), mapped (an uncompressed one of the same guest) and cached
 *     (the LZO one through a memory cache: the first clone fills it, "_fill").
 * Prints "RESULT name value unit" lines.
 *
 *   agent_bench CONFIG N [--set SECTION.KEY=VALUE]...
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <minivmm.h>

#define MAX_SET 32

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int run(struct minivmm_vm *vm, const char *const *argv, int wait_ms)
{
	struct minivmm_exec e = { .argv = argv, .timeout_ms = 60000, .wait_agent_ms = wait_ms };
	struct minivmm_exec_result r;
	int ret = minivmm_exec(vm, &e, &r);

	if (!ret && (r.status || r.signaled))
		ret = -ECANCELED;
	if (ret)
		fprintf(stderr, "agent_bench: %s: %d %s\n", argv[0], ret, minivmm_errmsg());
	minivmm_exec_result_free(&r);
	return ret;
}

int main(int argc, char **argv)
{
	static const char *const t[] = { "true", NULL }, *const e[] = { "echo", "hi", NULL };
	const char *set[MAX_SET + 4] = { NULL };
	char dir[] = "/tmp/agent-bench-XXXXXX", path[256], back[256], snap[256], rawsnap[256],
	     mcache[280], cmd[300], vs[300];
	int n, nset = 0, status;
	struct minivmm_vm *vm;
	double *lat, t0, sum = 0;

	if (argc < 3)
		return fprintf(stderr, "usage: agent_bench CONFIG N [--set K=V]...\n"), 2;
	n = atoi(argv[2]);
	for (int i = 3; i + 1 < argc && nset < MAX_SET; i += 2)
		if (!strcmp(argv[i], "--set"))
			set[nset++] = argv[i + 1];
	if (n < 1 || !mkdtemp(dir))
		return 2;
	snprintf(vs, sizeof(vs), "vsock.socket=%s/v.sock", dir);
	set[nset] = vs;
	lat = calloc(n, sizeof(*lat));

	/* Cold boot to the first output. */
	struct minivmm_opts o = { .config_path = argv[1], .set = set };
	t0 = now_ms();
	if (minivmm_start(&o, &vm) || run(vm, e, 120000))
		return fprintf(stderr, "agent_bench: cold: %s\n", minivmm_errmsg()), 1;
	printf("RESULT cold_boot_to_first_output %.1f ms\n", now_ms() - t0);

	/* Exec round trips. */
	for (int i = 0; i < n; i++) {
		t0 = now_ms();
		if (run(vm, t, 0))
			return 1;
		lat[i] = now_ms() - t0;
		sum += lat[i];
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("RESULT exec_true_mean %.2f ms\nRESULT exec_true_median %.2f ms\n", sum / n,
	       lat[n / 2]);

	/* 64 MiB each way. */
	snprintf(path, sizeof(path), "%s/big", dir);
	snprintf(back, sizeof(back), "%s/back", dir);
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		char *buf = malloc(1 << 20);

		for (int i = 0; i < (1 << 20); i++)
			buf[i] = (char)((unsigned int)i * 7919u >> 3);
		for (int i = 0; i < 64; i++)
			if (write(fd, buf, 1 << 20) != 1 << 20)
				return 1;
		close(fd);
		free(buf);
	}
	t0 = now_ms();
	if (minivmm_copy_to_guest(vm, path, "/tmp/big", 0644))
		return fprintf(stderr, "agent_bench: cp to: %s\n", minivmm_errmsg()), 1;
	printf("RESULT cp_to_guest_64MiB %.1f MiB/s\n", 64 / ((now_ms() - t0) / 1e3));
	t0 = now_ms();
	if (minivmm_copy_from_guest(vm, "/tmp/big", back))
		return fprintf(stderr, "agent_bench: cp from: %s\n", minivmm_errmsg()), 1;
	printf("RESULT cp_from_guest_64MiB %.1f MiB/s\n", 64 / ((now_ms() - t0) / 1e3));
	unlink(path);
	unlink(back);
	run(vm, (const char *const[]){ "rm", "/tmp/big", NULL }, 0);

	/* Snapshot, then clones: restore to the first output. */
	/* The same guest twice: uncompressed (for mapped clones), then LZO. */
	snprintf(snap, sizeof(snap), "%s/s.snap", dir);
	snprintf(rawsnap, sizeof(rawsnap), "%s/raw.snap", dir);
	if (minivmm_save(vm, rawsnap, MINIVMM_SAVE_RAW, NULL, 0) ||
	    minivmm_save(vm, snap, MINIVMM_SAVE_STOP, NULL, 0) || minivmm_wait(vm, 60000, &status))
		return fprintf(stderr, "agent_bench: save: %s\n", minivmm_errmsg()), 1;
	minivmm_free(vm);
	/* Cached clones use a memory cache of their own: the first one fills it. */
	snprintf(mcache, sizeof(mcache), "%s/mcache", dir);
	setenv("MINIVMM_CACHE_DIR", mcache, 1);
	for (int mode = 0; mode < 4; mode++) {
		for (int i = 0; i < 3; i++) {
			static const char *const names[] = { "eager", "lazy", "mapped", "cached" };
			char clone[300], cvs[320];
			const char *cs[] = { cvs, "vsock.cid=77", NULL };
			struct minivmm_opts co = { .snapshot = mode == 2 ? rawsnap : snap,
						   .clone_dir = clone,
						   .lazy = mode == 1,
						   .map = mode == 2,
						   .set = cs,
						   .cache = mode == 3 };

			snprintf(clone, sizeof(clone), "%s/c%d%d", dir, mode, i);
			snprintf(cvs, sizeof(cvs), "vsock.socket=%s/c.sock", dir);
			mkdir(clone, 0700);
			t0 = now_ms();
			if (minivmm_start(&co, &vm) || run(vm, e, 0))
				return fprintf(stderr, "agent_bench: clone: %s\n",
					       minivmm_errmsg()),
				       1;
			printf("RESULT clone_%s%s_to_first_output %.1f ms\n", names[mode],
			       mode == 3 && !i ? "_fill" : "", now_ms() - t0);
			minivmm_free(vm);
			rmdir(clone);
		}
	}
	unlink(snap);
	unlink(rawsnap);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", mcache);
	if (system(cmd))
		fprintf(stderr, "agent_bench: %s left behind\n", mcache);
	rmdir(dir);
	free(lat);
	return 0;
}
