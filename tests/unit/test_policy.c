// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The overcommit policy (`minivmm balloon-policy`): its arithmetic (a guest's use
 * from its statistics, shares of a budget, the squeeze under host pressure, the
 * PSI and meminfo parsers), and the command itself driving fake VMs behind real
 * control sockets: targets set within the budget, pressure shrinking it, a VM
 * that goes away, a VM without a balloon, a reply that is not one.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "policy.h"
#include "unit.h"
#include "util.h"

#define MIB (1ull << 20)

START_TEST(t_used)
{
	/* deflate_on_oom: the balloon (512 - 400 = 112 MiB) is in the guest's "used". */
	ck_assert_uint_eq(policy_guest_used(512 * MIB, 400 * MIB, 490 * MIB, 290 * MIB, true),
			  88 * MIB);
	/* without it Linux took the balloon out of its total already */
	ck_assert_uint_eq(policy_guest_used(512 * MIB, 400 * MIB, 378 * MIB, 290 * MIB, false),
			  88 * MIB);
	/* a guest that says more is available than it has, or a balloon above its use */
	ck_assert_uint_eq(policy_guest_used(512 * MIB, 512 * MIB, 100, 200, true), 0);
	ck_assert_uint_eq(policy_guest_used(512 * MIB, 100 * MIB, 490 * MIB, 400 * MIB, true), 0);
}
END_TEST

static const struct policy pol = { .budget = 640 * MIB,
				   .min_size = 128 * MIB,
				   .headroom = 64 * MIB };

static uint64_t sum_targets(const struct policy_vm *v, size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += v[i].target;
	return s;
}

START_TEST(t_fits)
{
	struct policy_vm v[2] = {
		{ .memory = 256 * MIB, .actual = 128 * MIB, .have_stats = true, .used = 10 * MIB },
		{ .memory = 384 * MIB, .actual = 384 * MIB },
	};

	ck_assert_uint_eq(policy_plan(&pol, v, 2), 0);
	ck_assert_uint_eq(v[0].target, 256 * MIB); /* all back: 640 MiB fit */
	ck_assert_uint_eq(v[1].target, 384 * MIB);
}
END_TEST

/* Needs (use + max(64M, use/4)) first, the rest by the room each could still use. */
START_TEST(t_share)
{
	struct policy_vm v[2] = {
		{ .memory = 512 * MIB, .actual = 512 * MIB, .have_stats = true, .used = 100 * MIB },
		{ .memory = 512 * MIB, .actual = 512 * MIB, .have_stats = true, .used = 300 * MIB },
	};

	ck_assert_uint_eq(policy_plan(&pol, v, 2), 0);
	ck_assert_uint_eq(v[0].need, 164 * MIB);
	ck_assert_uint_eq(v[1].need, 375 * MIB);
	/* spare 101 MiB: 348/485 of it and 137/485, each rounded down to a MiB */
	ck_assert_uint_eq(v[0].target, 236 * MIB);
	ck_assert_uint_eq(v[1].target, 403 * MIB);
	ck_assert_uint_le(sum_targets(v, 2), pol.budget);
}
END_TEST

/* Needs beyond the budget: scaled down together, never below --min or above RAM. */
START_TEST(t_over)
{
	struct policy p = pol;
	struct policy_vm v[3] = {
		{ .memory = 512 * MIB, .have_stats = true, .used = 400 * MIB },
		{ .memory = 512 * MIB, .have_stats = true, .used = 400 * MIB },
		{ .memory = 64 * MIB, .have_stats = true, .used = 60 * MIB },
	};

	p.budget = 1064 * MIB; /* 500 + 500 + 64: just fits */
	ck_assert_uint_eq(policy_plan(&p, v, 3), 0);
	ck_assert_uint_eq(v[0].need, 500 * MIB);
	ck_assert_uint_eq(v[2].need, 64 * MIB); /* its RAM */
	ck_assert_uint_eq(v[0].target, 500 * MIB);
	v[2].memory = 512 * MIB;
	v[2].used = 100 * MIB; /* 164 */
	p.budget = 1000 * MIB;
	ck_assert_uint_eq(policy_plan(&p, v, 3), 164 * MIB);
	ck_assert_uint_eq(v[0].target, 429 * MIB); /* 500 * 1000 / 1164 */
	ck_assert_uint_eq(v[1].target, 429 * MIB);
	ck_assert_uint_eq(v[2].target, 140 * MIB);
	ck_assert_uint_le(sum_targets(v, 3), p.budget);
	v[2].memory = 64 * MIB;
	v[2].used = 60 * MIB;
	p.budget = 100 * MIB;
	ck_assert_uint_gt(policy_plan(&p, v, 3), 0);
	ck_assert_uint_eq(v[0].target, 128 * MIB);
	ck_assert_uint_eq(v[2].target, 64 * MIB); /* min_size above its RAM: its RAM */
}
END_TEST

/* A VM without statistics stays where it is and its memory counts against the budget. */
START_TEST(t_nostats)
{
	struct policy_vm v[2] = {
		{ .memory = 512 * MIB, .actual = 300 * MIB },
		{ .memory = 512 * MIB, .actual = 512 * MIB, .have_stats = true, .used = 50 * MIB },
	};

	policy_plan(&pol, v, 2);
	ck_assert_uint_eq(v[0].target, 300 * MIB);
	ck_assert_uint_eq(v[1].target, 340 * MIB);
}
END_TEST

START_TEST(t_squeeze)
{
	struct policy p = pol;
	unsigned int sq = 0;
	int i;

	for (i = 0; i < 8; i++)
		sq = policy_squeeze(sq, 30, 10);
	ck_assert_uint_eq(sq, 50);
	p.squeeze_pct = sq;
	ck_assert_uint_eq(policy_budget(&p), 320 * MIB);
	ck_assert_uint_eq(policy_squeeze(sq, 7, 10), 50); /* between: hold */
	ck_assert_uint_eq(policy_squeeze(sq, 4.9, 10), 45);
	ck_assert_uint_eq(policy_squeeze(3, 0, 10), 0);
	p.squeeze_pct = 250; /* garbage: at most all of it */
	ck_assert_uint_eq(policy_budget(&p), 0);
}
END_TEST

START_TEST(t_parse)
{
	uint64_t total, avail;
	double a = -1;

	ck_assert_int_eq(policy_parse_psi("some avg10=12.50 avg60=1.00 avg300=0.00 total=9\n"
					  "full avg10=3.00 avg60=0.00 avg300=0.00 total=1\n",
					  &a),
			 0);
	ck_assert(a == 12.5);
	ck_assert_int_eq(policy_parse_psi("full avg10=3.00\nsome avg10=0.25 x\n", &a), 0);
	ck_assert(a == 0.25);
	ck_assert_int_eq(policy_parse_psi("", &a), -EINVAL);
	ck_assert_int_eq(policy_parse_psi("some avg10=", &a), -EINVAL);
	ck_assert_int_eq(policy_parse_psi("some avg10=nan", &a), -EINVAL);
	ck_assert_int_eq(policy_parse_psi("some avg10=101", &a), -EINVAL);
	ck_assert_int_eq(policy_parse_psi(" some avg10=1", &a), -EINVAL);
	ck_assert_int_eq(policy_parse_meminfo("MemTotal:  1024 kB\nMemFree: 1 kB\n"
					      "MemAvailable:     512 kB\n",
					      &total, &avail),
			 0);
	ck_assert_uint_eq(total, 1 << 20);
	ck_assert_uint_eq(avail, 1 << 19);
	ck_assert_int_eq(policy_parse_meminfo("MemTotal: 1 kB\n", &total, &avail), -EINVAL);
	ck_assert_int_eq(policy_parse_meminfo("MemTotal: 99999999999999999999 kB\n"
					      "MemAvailable: 1 kB\n",
					      &total, &avail),
			 -EINVAL);
}
END_TEST

/* What the command reads: /proc files, whose size stat() does not give (it read them as
 * empty once, and never saw any pressure). */
START_TEST(t_proc)
{
	char buf[8192], small[8];
	uint64_t total = 0, avail = 0;
	double a = -1;

	ck_assert_int_gt(read_text("/proc/meminfo", buf, sizeof(buf)), 100);
	ck_assert_int_eq(policy_parse_meminfo(buf, &total, &avail), 0);
	ck_assert_uint_gt(total, 0);
	ck_assert_uint_le(avail, total);
	if (access("/proc/pressure/memory", R_OK) == 0) {
		ck_assert_int_gt(read_text("/proc/pressure/memory", buf, sizeof(buf)), 0);
		ck_assert_int_eq(policy_parse_psi(buf, &a), 0);
		ck_assert(a >= 0);
	}
	ck_assert_int_eq(read_text("/proc/meminfo", small, sizeof(small)), -EFBIG);
	ck_assert_int_eq(read_text("/nonexistent/x", buf, sizeof(buf)), -ENOENT);
}
END_TEST

/* A guest behind a control socket: it reaches any target at once, counts its balloon as
 * used (deflate_on_oom), and sends statistics from its second request on. */
struct fake_vm {
	pthread_mutex_t lock;
	uint64_t memory, used, size;
	unsigned int calls, sets;
	const char *garbage;	   /* reply this instead */
	unsigned int vanish_after; /* requests, then the socket is gone */
	char sock[128];
	struct api_server *srv;
};

static int fake_balloon(void *ctx, bool set, uint64_t size, char *json, size_t len)
{
	struct fake_vm *f = ctx;
	uint64_t total, avail;

	pthread_mutex_lock(&f->lock);
	if (set) {
		f->size = size;
		f->sets++;
	}
	total = f->memory - 20 * MIB;
	avail = total - f->used - (f->memory - f->size);
	if (f->garbage)
		snprintf(json, len, "%s", f->garbage);
	else if (f->calls++)
		snprintf(json, len,
			 "{\"memory\":%llu,\"size\":%llu,\"actual\":%llu,\"deflate_on_oom\":true,"
			 "\"stats\":{\"total-memory\":%llu,\"available-memory\":%llu}}",
			 (unsigned long long)f->memory, (unsigned long long)f->size,
			 (unsigned long long)f->size, (unsigned long long)total,
			 (unsigned long long)avail);
	else
		snprintf(json, len, "{\"memory\":%llu,\"size\":%llu,\"actual\":%llu,\"stats\":{}}",
			 (unsigned long long)f->memory, (unsigned long long)f->size,
			 (unsigned long long)f->size);
	if (f->vanish_after && f->calls >= f->vanish_after)
		unlink(f->sock);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static const struct api_ops balloon_ops = { .balloon = fake_balloon };
static const struct api_ops no_balloon_ops = { 0 };

static char dir[64];
static struct fake_vm vms[2];

static void fake_start(struct fake_vm *f, int i, uint64_t used, const struct api_ops *ops)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->memory = f->size = 512 * MIB;
	f->used = used;
	snprintf(f->sock, sizeof(f->sock), "%s/vm%d.sock", dir, i);
	ck_assert_int_eq(api_server_start(f->sock, ops, f, &f->srv), 0);
}

static void setup(void)
{
	strcpy(dir, "/tmp/minivmm-test-policy-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	for (int i = 0; i < 2; i++) {
		api_server_stop(vms[i].srv);
		vms[i].srv = NULL;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int policy(const char *budget, const char *rounds, const char *psi)
{
	char pfile[96], b[32], r[32];
	char *argv[] = {
		"balloon-policy",  "--budget", b,	    "--interval", "0.05", "--rounds", r,
		"--pressure-file", pfile,      vms[0].sock, vms[1].sock,  NULL
	};
	FILE *f;

	snprintf(b, sizeof(b), "%s", budget);
	snprintf(r, sizeof(r), "%s", rounds);
	snprintf(pfile, sizeof(pfile), "%s/pressure", dir);
	f = fopen(pfile, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "some avg10=%s avg60=0.00 avg300=0.00 total=0\n", psi);
	fclose(f);
	return cmd_balloon_policy(11, argv);
}

/* 2 x 512 MiB in a 640 MiB budget: the guest that uses more keeps more, both within. */
START_TEST(t_cmd_budget)
{
	fake_start(&vms[0], 0, 100 * MIB, &balloon_ops);
	fake_start(&vms[1], 1, 300 * MIB, &balloon_ops);
	ck_assert_int_eq(policy("640M", "3", "0.00"), 0);
	ck_assert_uint_eq(vms[0].size, 236 * MIB); /* as t_share */
	ck_assert_uint_eq(vms[1].size, 403 * MIB);
	/* set once each: later rounds are within the dead band */
	ck_assert_uint_eq(vms[0].sets, 1);
	ck_assert_uint_eq(vms[1].sets, 1);
}
END_TEST

/* Host pressure above --psi-limit: 10% less budget per round. */
START_TEST(t_cmd_pressure)
{
	fake_start(&vms[0], 0, 100 * MIB, &balloon_ops);
	fake_start(&vms[1], 1, 100 * MIB, &balloon_ops);
	ck_assert_int_eq(policy("640M", "3", "55.00"), 0);
	/* 3 rounds: 70% of 640 MiB = 448, each needs 164 */
	ck_assert_uint_le(vms[0].size + vms[1].size, 448 * MIB);
	ck_assert_uint_ge(vms[0].size + vms[1].size, 440 * MIB);
}
END_TEST

/* The pressure file as /proc's are: no size (here a FIFO whose writer says 55% to each
 * reader). The command once read such files as empty and saw no pressure at all. */
static volatile int psi_stop;

static void *psi_writer(void *arg)
{
	static const char line[] = "some avg10=55.00 avg60=0.00 avg300=0.00 total=0\n";
	const char *path = arg;

	while (!psi_stop) {
		int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

		if (fd >= 0) { /* a reader: one line, then EOF */
			if (write(fd, line, sizeof(line) - 1) < 0)
				break;
			close(fd);
		}
		usleep(2000);
	}
	return NULL;
}

START_TEST(t_cmd_pressure_proc)
{
	char pfile[96], *argv[] = {
		"balloon-policy",  "--budget", "640M",	    "--interval", "0.05", "--rounds", "3",
		"--pressure-file", pfile,      vms[0].sock, vms[1].sock,  NULL
	};
	pthread_t thr;

	fake_start(&vms[0], 0, 100 * MIB, &balloon_ops);
	fake_start(&vms[1], 1, 100 * MIB, &balloon_ops);
	snprintf(pfile, sizeof(pfile), "%s/pressure.fifo", dir);
	ck_assert_int_eq(mkfifo(pfile, 0600), 0);
	signal(SIGPIPE, SIG_IGN); /* a reader gone between open and write */
	ck_assert_int_eq(pthread_create(&thr, NULL, psi_writer, pfile), 0);
	ck_assert_int_eq(cmd_balloon_policy(11, argv), 0);
	psi_stop = 1;
	pthread_join(thr, NULL);
	ck_assert_uint_le(vms[0].size + vms[1].size, 448 * MIB); /* as t_cmd_pressure */
}
END_TEST

/* A VM that goes away is dropped; the last one gone ends the command (0). */
START_TEST(t_cmd_gone)
{
	fake_start(&vms[0], 0, 100 * MIB, &balloon_ops);
	fake_start(&vms[1], 1, 100 * MIB, &balloon_ops);
	api_server_stop(vms[1].srv);
	vms[1].srv = NULL;
	ck_assert_int_eq(policy("300M", "2", "0"), 1); /* gone before it started: an error */
	for (int i = 0; i < 2; i++) {
		api_server_stop(vms[i].srv);
		fake_start(&vms[i], i, 100 * MIB, &balloon_ops);
	}
	vms[1].vanish_after = 2; /* the first read and round 1 */
	ck_assert_int_eq(policy("300M", "5", "0"), 0);
	ck_assert_uint_eq(vms[1].calls, 2);
	ck_assert_uint_eq(vms[0].calls - vms[0].sets, 6); /* its first read and 5 rounds */
	/* alone, it gets all 300 MiB */
	ck_assert_uint_eq(vms[0].size, 300 * MIB);
	/* both go after round 1: the command ends before its 50 rounds */
	for (int i = 0; i < 2; i++) {
		api_server_stop(vms[i].srv);
		fake_start(&vms[i], i, 100 * MIB, &balloon_ops);
		vms[i].vanish_after = 2;
	}
	ck_assert_int_eq(policy("300M", "50", "0"), 0);
	ck_assert_uint_eq(vms[0].calls + vms[1].calls, 4);
}
END_TEST

/* A VM without a balloon, and one whose reply is not a balloon's: exit 1, nothing set. */
START_TEST(t_cmd_errors)
{
	fake_start(&vms[0], 0, 100 * MIB, &balloon_ops);
	fake_start(&vms[1], 1, 100 * MIB, &no_balloon_ops);
	ck_assert_int_eq(policy("640M", "2", "0"), 1);
	api_server_stop(vms[1].srv);
	fake_start(&vms[1], 1, 100 * MIB, &balloon_ops);
	vms[1].garbage = "{\"memory\":-5}";
	ck_assert_int_eq(policy("640M", "2", "0"), 1);
	ck_assert_uint_eq(vms[0].sets, 0);
	ck_assert_uint_eq(vms[1].sets, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("arithmetic");
	TCase *cmd = tcase_create("command");

	tcase_add_test(tc, t_used);
	tcase_add_test(tc, t_fits);
	tcase_add_test(tc, t_share);
	tcase_add_test(tc, t_over);
	tcase_add_test(tc, t_nostats);
	tcase_add_test(tc, t_squeeze);
	tcase_add_test(tc, t_parse);
	tcase_add_test(tc, t_proc);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(cmd, setup, teardown);
	tcase_set_timeout(cmd, 30);
	tcase_add_test(cmd, t_cmd_budget);
	tcase_add_test(cmd, t_cmd_pressure);
	tcase_add_test(cmd, t_cmd_pressure_proc);
	tcase_add_test(cmd, t_cmd_gone);
	tcase_add_test(cmd, t_cmd_errors);
	suite_add_tcase(s, cmd);
	return unit_run(s);
}
