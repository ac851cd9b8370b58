// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-blk device-model benchmark without KVM.
 *
 * The program plays the guest driver: it lays split rings out in fake guest
 * RAM (an anonymous mapping described by a struct guest_mem), negotiates
 * features, starts the real device (src/virtio/blk.c, its I/O threads and
 * their io_uring loops) and runs driver threads that keep requests in flight.
 * Driver thread j owns queue j (per-queue mode) or all drivers share queue 0
 * under a mutex (single-queue mode, --queues 1 --drivers N). Kicks honour
 * avail_event (EVENT_IDX) or NO_NOTIFY like a real driver; the device's
 * interrupts arrive through our transport ops as writes to a per-queue
 * "call" eventfd that a driver with nothing to harvest blocks on.
 *
 *   blk_model --backend null|file:PATH [--queues N] [--iothreads N] [--drivers N]
 *             [--seconds S] [--depth D] [--bs B] [--rw read|write]
 *             [--wait irq|delayed|poll] [--no-event-idx] [--pin]
 *
 * --depth is per driver thread (the queue of a single-queue run holds
 * drivers * depth). --wait: irq asks for an interrupt at the next completion
 * (Linux virtqueue_enable_cb); delayed asks for it when 3/4 of the requests
 * in flight are done (virtqueue_enable_cb_delayed: fewer wake-ups, bigger
 * batches, a cheap driver); poll never sleeps and never asks for interrupts.
 *
 * Prints one "RESULT key=value ..." line (bench/blk-model/run.sh parses it).
 * CPU time of the I/O threads and of the driver threads comes from
 * /proc/self/task/TID/schedstat over the measured window.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "block/backend.h"
#include "mm/guest_mem.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"

#define RAM_SIZE  (256ULL << 20)
#define QSIZE	  BLK_QUEUE_SIZE
#define MAX_SLOTS (QSIZE / 3) /* three descriptors per request */
#define RING_BASE 0x100000ULL /* queue i's rings at RING_BASE + i * RING_STEP */
#define RING_STEP 0x10000ULL
#define DESC_OFF  0x0000
#define AVAIL_OFF 0x1000
#define USED_OFF  0x2000
#define HDR_OFF	  0x4000
#define STAT_OFF  0x5000
#define DATA_BASE (16ULL << 20)
#define NULL_SIZE (1ULL << 30)
#define DEV_NAME  "bm"

enum wait_mode { WAIT_IRQ, WAIT_DELAYED, WAIT_POLL };

static struct {
	const char *backend;
	unsigned int queues, iothreads, drivers, depth, bs;
	double seconds;
	bool write, event_idx, pin;
	enum wait_mode wait;
} opt = {
	.backend = "null",
	.queues = 1,
	.iothreads = 1,
	.drivers = 1,
	.depth = 32,
	.bs = 4096,
	.seconds = 2,
	.event_idx = true,
	.wait = WAIT_IRQ,
};

/* The driver's view of one queue. */
struct dq {
	unsigned int idx;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	struct virtio_blk_outhdr *hdr; /* [slots] */
	uint8_t *status;	       /* [slots] */
	uint16_t avail_idx;	       /* shadow of avail->idx */
	uint16_t kick_base;	       /* avail_idx when we last considered a kick */
	uint16_t last_used;
	unsigned int slots, inflight;
	bool *busy;
	int kick_fd, call_fd;
	bool shared;
	pthread_mutex_t lock;
	uint64_t rng;
	atomic_uint_fast64_t kicks, calls;
} __attribute__((aligned(64)));

struct drv {
	unsigned int id;
	struct dq *q;
	pthread_t thr;
	atomic_uint_fast64_t done, waits;
	uint64_t errors;
} __attribute__((aligned(64)));

static struct guest_mem mem;
static struct dq *dqs;
static struct drv *drvs;
static uint64_t nr_blocks; /* of opt.bs on the disk */
static atomic_bool stopping;

static void *hva(uint64_t gpa)
{
	return (uint8_t *)mem.r[0].hva + gpa;
}

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64 */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* --- transport: the device's interrupts ------------------------------------------------ */

static void notify_queue(struct virtio_dev *d, unsigned int q)
{
	uint64_t one = 1;

	(void)d;
	atomic_fetch_add_explicit(&dqs[q].calls, 1, memory_order_relaxed);
	if (write(dqs[q].call_fd, &one, sizeof(one)) < 0)
		perror("call eventfd");
}

static void notify_config(struct virtio_dev *d)
{
	fprintf(stderr, "blk_model: config interrupt, status %#x\n", virtio_get_status(d));
}

static const struct virtio_transport_ops tops = {
	.notify_queue = notify_queue,
	.notify_config = notify_config,
};

/* --- the driver ------------------------------------------------------------------------ */

static void dq_layout(struct dq *q, unsigned int i, unsigned int slots)
{
	uint64_t base = RING_BASE + i * RING_STEP;
	uint64_t data = DATA_BASE + (uint64_t)i * MAX_SLOTS * opt.bs;

	q->idx = i;
	q->desc = hva(base + DESC_OFF);
	q->avail = hva(base + AVAIL_OFF);
	q->used = hva(base + USED_OFF);
	q->hdr = hva(base + HDR_OFF);
	q->status = hva(base + STAT_OFF);
	q->slots = slots;
	q->rng = 0x9e3779b97f4a7c15ULL * (i + 1);
	pthread_mutex_init(&q->lock, NULL);
	/* Slot s: descriptors 3s (header), 3s+1 (data), 3s+2 (status), fixed for the run. */
	for (unsigned int s = 0; s < slots; s++) {
		struct vring_desc *d = &q->desc[3 * s];

		d[0] = (struct vring_desc){ .addr = base + HDR_OFF + s * sizeof(*q->hdr),
					    .len = sizeof(*q->hdr),
					    .flags = VRING_DESC_F_NEXT,
					    .next = 3 * s + 1 };
		d[1] = (struct vring_desc){ .addr = data + (uint64_t)s * opt.bs,
					    .len = opt.bs,
					    .flags = VRING_DESC_F_NEXT |
						     (opt.write ? 0 : VRING_DESC_F_WRITE),
					    .next = 3 * s + 2 };
		d[2] = (struct vring_desc){ .addr = base + STAT_OFF + s,
					    .len = 1,
					    .flags = VRING_DESC_F_WRITE };
		q->hdr[s].type = opt.write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	}
}

static uint16_t *used_event(struct dq *q)
{
	return &q->avail->ring[QSIZE];
}

static uint16_t *avail_event(struct dq *q)
{
	return (uint16_t *)&q->used->ring[QSIZE];
}

/* Queue request slot @s (not yet published). */
static void post(struct dq *q, unsigned int s)
{
	q->hdr[s].sector = rnd(&q->rng) % nr_blocks * (opt.bs / 512);
	q->status[s] = 0xff;
	q->busy[s] = true;
	q->avail->ring[q->avail_idx & (QSIZE - 1)] = 3 * s;
	q->avail_idx++;
	q->inflight++;
}

/* Publish what post() queued and kick if the device asked for it (virtqueue_kick). */
static void publish(struct dq *q)
{
	uint64_t one = 1;
	bool kick;

	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
	/* The index store before we read the device's wish (virtio_mb). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (opt.event_idx)
		kick = vring_need_event(__atomic_load_n(avail_event(q), __ATOMIC_RELAXED),
					q->avail_idx, q->kick_base);
	else
		kick =
		    !(__atomic_load_n(&q->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
	q->kick_base = q->avail_idx;
	if (kick) {
		atomic_fetch_add_explicit(&q->kicks, 1, memory_order_relaxed);
		if (write(q->kick_fd, &one, sizeof(one)) < 0)
			perror("kick eventfd");
	}
}

/* Take every used element, check it, re-post its slot unless stopping. */
static unsigned int harvest(struct dq *q, struct drv *dr, bool repost)
{
	uint16_t uidx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	uint32_t want = opt.write ? 0 : opt.bs;
	unsigned int n = 0;

	while (q->last_used != uidx) {
		struct vring_used_elem *u = &q->used->ring[q->last_used & (QSIZE - 1)];
		uint32_t id = u->id, len = u->len;
		unsigned int s = id / 3;

		q->last_used++;
		n++;
		if (id % 3 || s >= q->slots || !q->busy[s]) {
			fprintf(stderr, "blk_model: queue %u: bogus used id %u\n", q->idx, id);
			dr->errors++;
			continue;
		}
		q->busy[s] = false;
		q->inflight--;
		if (q->status[s] != VIRTIO_BLK_S_OK || len != want + 1)
			dr->errors++;
		if (repost)
			post(q, s);
	}
	return n;
}

/* Ask for an interrupt and tell whether something arrived meanwhile (virtqueue_enable_cb). */
static bool arm_irq(struct dq *q)
{
	uint16_t ev = q->last_used;

	if (opt.wait == WAIT_DELAYED)
		ev += q->inflight * 3 / 4;
	if (opt.event_idx)
		__atomic_store_n(used_event(q), ev, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&q->avail->flags, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE) != q->last_used;
}

static void *drv_fn(void *arg)
{
	struct drv *dr = arg;
	struct dq *q = dr->q;
	char name[16];
	uint64_t v;

	snprintf(name, sizeof(name), "bm-drv%u", dr->id);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		bool stop = atomic_load_explicit(&stopping, memory_order_relaxed);
		unsigned int n;
		bool more, done;

		if (q->shared)
			pthread_mutex_lock(&q->lock);
		n = harvest(q, dr, !stop);
		if (n && !stop)
			publish(q);
		done = stop && !q->inflight;
		more = n || done || opt.wait == WAIT_POLL || arm_irq(q);
		if (q->shared)
			pthread_mutex_unlock(&q->lock);
		if (n)
			atomic_fetch_add_explicit(&dr->done, n, memory_order_relaxed);
		if (done)
			break;
		if (more) {
			if (!n && opt.wait == WAIT_POLL)
				__builtin_ia32_pause();
			continue;
		}
		atomic_fetch_add_explicit(&dr->waits, 1, memory_order_relaxed);
		if (read(q->call_fd, &v, sizeof(v)) < 0 && errno != EINTR) {
			perror("call eventfd");
			break;
		}
	}
	/* A sibling on a shared queue may sleep on the call eventfd: wake it. */
	v = 1;
	if (q->shared && write(q->call_fd, &v, sizeof(v)) < 0)
		perror("call eventfd");
	return NULL;
}

/* --- CPU accounting -------------------------------------------------------------------- */

struct cpu_snap {
	uint64_t io_ns, drv_ns, wq_ns; /* wq: io_uring's io-wq workers (iou-wrk-*) */
	unsigned int io_threads;
	double proc_s;
};

static uint64_t task_ns(const char *tid)
{
	char path[300];
	unsigned long long ns = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

static void cpu_snapshot(struct cpu_snap *c)
{
	struct rusage ru;
	struct dirent *de;
	DIR *dir = opendir("/proc/self/task");

	memset(c, 0, sizeof(*c));
	while (dir && (de = readdir(dir))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		fclose(f);
		if (!strncmp(comm, DEV_NAME "-io", strlen(DEV_NAME "-io"))) {
			c->io_ns += task_ns(de->d_name);
			c->io_threads++;
		} else if (!strncmp(comm, "bm-drv", 6)) {
			c->drv_ns += task_ns(de->d_name);
		} else if (!strncmp(comm, "iou-wrk", 7)) {
			c->wq_ns += task_ns(de->d_name);
		}
	}
	if (dir)
		closedir(dir);
	getrusage(RUSAGE_SELF, &ru);
	c->proc_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
		    ru.ru_stime.tv_usec / 1e6;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct counts {
	uint64_t done, waits, kicks, calls;
};

static void count(struct counts *c)
{
	memset(c, 0, sizeof(*c));
	for (unsigned int j = 0; j < opt.drivers; j++) {
		c->done += atomic_load(&drvs[j].done);
		c->waits += atomic_load(&drvs[j].waits);
	}
	for (unsigned int i = 0; i < opt.queues; i++) {
		c->kicks += atomic_load(&dqs[i].kicks);
		c->calls += atomic_load(&dqs[i].calls);
	}
}

/* --- set-up ---------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: blk_model [--backend null|file:PATH] [--queues N] [--iothreads N]\n"
		"         [--drivers N] [--seconds S] [--depth D] [--bs B] [--rw read|write]\n"
		"         [--wait irq|delayed|poll] [--no-event-idx] [--pin]\n");
	exit(2);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "queues", required_argument, NULL, 'q' },
		{ "iothreads", required_argument, NULL, 't' },
		{ "drivers", required_argument, NULL, 'j' },
		{ "seconds", required_argument, NULL, 's' },
		{ "depth", required_argument, NULL, 'd' },
		{ "bs", required_argument, NULL, 'B' },
		{ "rw", required_argument, NULL, 'r' },
		{ "wait", required_argument, NULL, 'w' },
		{ "no-event-idx", no_argument, NULL, 'E' },
		{ "pin", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'b':
			opt.backend = optarg;
			break;
		case 'q':
			opt.queues = atoi(optarg);
			break;
		case 't':
			opt.iothreads = atoi(optarg);
			break;
		case 'j':
			opt.drivers = atoi(optarg);
			break;
		case 's':
			opt.seconds = atof(optarg);
			break;
		case 'd':
			opt.depth = atoi(optarg);
			break;
		case 'B':
			opt.bs = atoi(optarg);
			break;
		case 'r':
			if (strcmp(optarg, "read") && strcmp(optarg, "write"))
				usage();
			opt.write = !strcmp(optarg, "write");
			break;
		case 'w':
			if (!strcmp(optarg, "irq"))
				opt.wait = WAIT_IRQ;
			else if (!strcmp(optarg, "delayed"))
				opt.wait = WAIT_DELAYED;
			else if (!strcmp(optarg, "poll"))
				opt.wait = WAIT_POLL;
			else
				usage();
			break;
		case 'E':
			opt.event_idx = false;
			break;
		case 'p':
			opt.pin = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !opt.queues || opt.queues > VIRTIO_MAX_QUEUES || !opt.iothreads ||
	    opt.iothreads > opt.queues || !opt.drivers || opt.seconds <= 0 || !opt.depth ||
	    !opt.bs || opt.bs % 512 || opt.bs > (1U << 20))
		usage();
	/* One driver per queue, or all drivers on one queue. */
	if (opt.queues != 1 && opt.queues != opt.drivers) {
		fprintf(stderr, "blk_model: --queues must be 1 or --drivers\n");
		exit(2);
	}
	if (opt.depth * (opt.queues == 1 ? opt.drivers : 1) > MAX_SLOTS) {
		fprintf(stderr, "blk_model: at most %u requests in flight per queue\n", MAX_SLOTS);
		exit(2);
	}
	if (DATA_BASE + (uint64_t)opt.queues * MAX_SLOTS * opt.bs > RAM_SIZE ||
	    RING_BASE + (uint64_t)opt.queues * RING_STEP > DATA_BASE) {
		fprintf(stderr, "blk_model: --bs * queues too large for the fake RAM\n");
		exit(2);
	}
}

static int open_backend(struct blk_backend **be)
{
	struct blk_open_opts bo = { .cache = BLK_CACHE_WRITEBACK, .readonly = !opt.write };
	const char *path = NULL;
	char err[256];
	int r;

	if (!strcmp(opt.backend, "null")) {
		bo.format = BLK_FMT_NULL;
		bo.null_size = NULL_SIZE;
	} else if (!strncmp(opt.backend, "file:", 5)) {
		bo.format = BLK_FMT_RAW;
		path = opt.backend + 5;
	} else {
		usage();
	}
	r = blk_open(be, path, &bo, err, sizeof(err));
	if (r)
		fprintf(stderr, "blk_model: %s\n", err);
	return r;
}

/* The driver's side of device initialisation (3.1.1). */
static int negotiate(struct virtio_dev *d)
{
	uint64_t want = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_MQ) |
			(1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_SIZE_MAX) |
			(1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |
			(1ULL << VIRTIO_BLK_F_RO);
	uint64_t offered, acked;
	uint8_t st;

	if (opt.event_idx)
		want |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	virtio_set_status(d, 0);
	virtio_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	virtio_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	offered = virtio_get_features(d, 0) | (uint64_t)virtio_get_features(d, 1) << 32;
	acked = offered & want;
	if (!(acked & (1ULL << VIRTIO_F_VERSION_1)) ||
	    (opt.event_idx && !(acked & (1ULL << VIRTIO_RING_F_EVENT_IDX))) ||
	    (opt.queues > 1 && !(acked & (1ULL << VIRTIO_BLK_F_MQ)))) {
		fprintf(stderr, "blk_model: device offers %#" PRIx64 "\n", offered);
		return -1;
	}
	virtio_set_features(d, 0, (uint32_t)acked);
	virtio_set_features(d, 1, (uint32_t)(acked >> 32));
	st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
	virtio_set_status(d, st);
	if (!(virtio_get_status(d) & VIRTIO_CONFIG_S_FEATURES_OK)) {
		fprintf(stderr, "blk_model: FEATURES_OK refused\n");
		return -1;
	}
	for (unsigned int i = 0; i < opt.queues; i++) {
		struct virtio_queue *vq = &d->q[i];
		uint64_t base = RING_BASE + i * RING_STEP;

		vq->size = QSIZE;
		vq->desc = base + DESC_OFF;
		vq->avail = base + AVAIL_OFF;
		vq->used = base + USED_OFF;
		vq->enabled = true;
	}
	virtio_set_status(d, st | VIRTIO_CONFIG_S_DRIVER_OK);
	st = virtio_get_status(d);
	if (!(st & VIRTIO_CONFIG_S_DRIVER_OK) || (st & VIRTIO_CONFIG_S_NEEDS_RESET)) {
		fprintf(stderr, "blk_model: DRIVER_OK failed, status %#x\n", st);
		return -1;
	}
	return 0;
}

static const char *wait_name(void)
{
	return opt.wait == WAIT_IRQ ? "irq" : opt.wait == WAIT_DELAYED ? "delayed" : "poll";
}

int main(int argc, char **argv)
{
	struct virtio_blk_opts bopts = { .name = DEV_NAME };
	struct blk_backend *be;
	struct virtio_blk *b = NULL;
	struct virtio_dev *d;
	struct counts c0, c1;
	struct cpu_snap s0, s1;
	struct virtio_blk_stats st;
	int cpus[VIRTIO_MAX_QUEUES];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t errors = 0;
	double t0, t1, secs, rps, io_cpu, drv_cpu, wq_cpu;
	unsigned int slots;
	int ret = 1;

	parse(argc, argv);
	mem.r[0].gpa = 0;
	mem.r[0].size = RAM_SIZE;
	mem.r[0].hva =
	    mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem.r[0].hva == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	mem.nr = 1;
	mem.total = RAM_SIZE;

	if (open_backend(&be))
		goto out_mem;
	nr_blocks = be->size / opt.bs;
	if (!nr_blocks) {
		fprintf(stderr, "blk_model: the disk is smaller than --bs\n");
		blk_close(be);
		goto out_mem;
	}
	bopts.queues = opt.queues;
	bopts.threads = opt.iothreads;
	if (opt.pin) {
		/* I/O threads from the last CPU down, drivers from CPU 0 up. */
		for (unsigned int i = 0; i < opt.iothreads; i++)
			cpus[i] = (int)((ncpu - 1 - i % ncpu + ncpu) % ncpu);
		bopts.thread_cpu = cpus;
	}
	ret = virtio_blk_create(&b, be, &mem, &bopts);
	if (ret) {
		fprintf(stderr, "blk_model: virtio_blk_create: %s\n", strerror(-ret));
		blk_close(be);
		ret = 1;
		goto out_mem;
	}
	ret = 1;
	d = virtio_blk_virtio(b);
	d->tops = &tops;

	/* Cache-line aligned: calloc() does not honour the types' alignment. */
	dqs = aligned_alloc(64, opt.queues * sizeof(*dqs));
	drvs = aligned_alloc(64, opt.drivers * sizeof(*drvs));
	if (!dqs || !drvs)
		goto out_dev;
	memset(dqs, 0, opt.queues * sizeof(*dqs));
	memset(drvs, 0, opt.drivers * sizeof(*drvs));
	slots = opt.queues == 1 ? opt.depth * opt.drivers : opt.depth;
	for (unsigned int i = 0; i < opt.queues; i++) {
		struct dq *q = &dqs[i];

		dq_layout(q, i, slots);
		q->shared = opt.drivers > 1 && opt.queues == 1;
		q->kick_fd = d->q[i].kick_fd;
		q->call_fd = eventfd(0, EFD_CLOEXEC);
		q->busy = calloc(slots, sizeof(*q->busy));
		if (q->call_fd < 0 || !q->busy) {
			perror("blk_model: set-up");
			goto out_q;
		}
	}
	if (negotiate(d))
		goto out_q;

	/* Fill every queue, then let the drivers loop. */
	for (unsigned int i = 0; i < opt.queues; i++) {
		for (unsigned int s = 0; s < dqs[i].slots; s++)
			post(&dqs[i], s);
		publish(&dqs[i]);
	}
	for (unsigned int j = 0; j < opt.drivers; j++) {
		drvs[j].id = j;
		drvs[j].q = &dqs[opt.queues == 1 ? 0 : j];
		if (pthread_create(&drvs[j].thr, NULL, drv_fn, &drvs[j])) {
			fprintf(stderr, "blk_model: pthread_create failed\n");
			atomic_store(&stopping, true);
			while (j--)
				pthread_join(drvs[j].thr, NULL);
			goto out_reset;
		}
		if (opt.pin) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(j % ncpu, &set);
			pthread_setaffinity_np(drvs[j].thr, sizeof(set), &set);
		}
	}

	/* Warm up, then measure a window of --seconds. */
	usleep(200000);
	count(&c0);
	cpu_snapshot(&s0);
	t0 = now();
	usleep((useconds_t)(opt.seconds * 1e6));
	count(&c1);
	cpu_snapshot(&s1);
	t1 = now();
	atomic_store(&stopping, true);
	for (unsigned int j = 0; j < opt.drivers; j++) {
		pthread_join(drvs[j].thr, NULL);
		errors += drvs[j].errors;
	}

	secs = t1 - t0;
	rps = (c1.done - c0.done) / secs;
	io_cpu = (s1.io_ns - s0.io_ns) / 1e9 / secs; /* CPUs' worth of I/O threads */
	drv_cpu = (s1.drv_ns - s0.drv_ns) / 1e9 / secs;
	/* Workers that exited inside the window are lost: a lower bound. */
	wq_cpu = s1.wq_ns > s0.wq_ns ? (s1.wq_ns - s0.wq_ns) / 1e9 / secs : 0;
	{
		double n = (double)(c1.done - c0.done);

		if (n < 1)
			n = 1;
		printf("RESULT backend=%s rw=%s bs=%u queues=%u iothreads=%u drivers=%u depth=%u "
		       "wait=%s event_idx=%d nproc=%ld secs=%.3f reqs=%" PRIu64 " rps=%.0f "
		       "rps_per_iothread=%.0f io_cpu=%.3f drv_cpu=%.3f wq_cpu=%.3f proc_cpu=%.3f "
		       "rps_per_io_cpu=%.0f io_ns_per_req=%.0f drv_ns_per_req=%.0f "
		       "kicks_per_req=%.4f calls_per_req=%.4f waits_per_req=%.4f errors=%" PRIu64
		       "\n",
		       strncmp(opt.backend, "file:", 5) ? opt.backend : "file",
		       opt.write ? "write" : "read", opt.bs, opt.queues, opt.iothreads, opt.drivers,
		       opt.depth, wait_name(), opt.event_idx, ncpu, secs, c1.done - c0.done, rps,
		       rps / opt.iothreads, io_cpu, drv_cpu, wq_cpu, (s1.proc_s - s0.proc_s) / secs,
		       io_cpu > 0 ? rps / io_cpu : 0, (s1.io_ns - s0.io_ns) / n,
		       (s1.drv_ns - s0.drv_ns) / n, (c1.kicks - c0.kicks) / n,
		       (c1.calls - c0.calls) / n, (c1.waits - c0.waits) / n, errors);
	}
	ret = errors ? 1 : 0;

out_reset:
	/* Reset stops and joins the I/O threads after they answered everything. */
	virtio_set_status(d, 0);
	virtio_blk_get_stats(b, &st);
	if (st.errors || st.bad_chains) {
		fprintf(stderr, "blk_model: device errors %" PRIu64 " bad chains %" PRIu64 "\n",
			st.errors, st.bad_chains);
		ret = 1;
	}
out_q:
	for (unsigned int i = 0; i < opt.queues; i++) {
		if (dqs[i].call_fd > 0)
			close(dqs[i].call_fd);
		free(dqs[i].busy);
		pthread_mutex_destroy(&dqs[i].lock);
	}
out_dev:
	free(dqs);
	free(drvs);
	virtio_blk_destroy(b);
out_mem:
	munmap(mem.r[0].hva, RAM_SIZE);
	return ret;
}
