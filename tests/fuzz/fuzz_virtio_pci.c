// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The virtio-pci transport's register state machine with a real device model
 * behind it: virtio-blk on the null backend with its I/O threads, on a VM
 * without KVM (vectors are plain eventfds, kicks come through the notify
 * registers). The input is a program for a hostile driver: accesses to common
 * configuration, all of BAR 0 (ISR, device configuration, notify, MSI-X table
 * and PBA) and PCI configuration space (MSI-X control, the PCI_CFG window) of
 * any offset and width, writes into guest RAM, honest set-ups, requests and
 * raw descriptor chains anywhere (on the rings too), kicks, resets, and
 * snapshots: save, patch any property, load, go on with I/O.
 *
 *   [0]    bit 0: two queues (else one), bit 1: the I/O thread polls (poll_us),
 *          bit 2: rate limits (requests wait on the limit, resets must not)
 *   [1..]  operations: an opcode byte, then its operands (missing bytes are 0)
 *
 * Guest RAM is one exactly sized heap block, so ASan sees any device access
 * outside it. Checked after each operation: the status only gains bits except
 * through a reset; queue set-up does not change once DRIVER_OK is set; a queue
 * the driver did not enable is never usable by the device; a started device has
 * DRIVER_OK. A watchdog aborts an input that runs for 10 s (a stop or reset that
 * never returns).
 *
 * FUZZ_VIRTIO_PCI_SEEDS=DIR build/fuzz/fuzz_virtio_pci writes the seed corpus
 * (tests/fuzz/corpus/fuzz_virtio_pci/) and exits.
 */
#include <errno.h>
#include <libfdt.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "block/backend.h"
#include "layout.h"
#include "log.h"
#include "pci/pci.h"
#include "ratelimit.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"
#include "virtio/virtio_pci.h"
#include "vm.h"

#define RAM	    0x10000u /* 64 KiB at GPA 0 */
#define MAX_OPS	    128
#define MAX_PROPS   512
#define FDT_SIZE    (64 * 1024)
#define WATCHDOG_NS (10ULL * 1000 * 1000 * 1000)
#define CC(f)	    offsetof(struct virtio_pci_common_cfg, f)
#define S_FEAT	    (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)

enum {
	OP_COMMON_WRITE,
	OP_COMMON_READ,
	OP_BAR_WRITE,
	OP_BAR_READ,
	OP_CFG_WRITE,
	OP_CFG_READ,
	OP_KICK,
	OP_POKE,
	OP_SETUP,
	OP_REQUEST,
	OP_CHAIN,
	OP_SYNC,
	OP_SNAPSHOT,
	OP_RESET,
	NR_OPS
};

/* --- the input ------------------------------------------------------------------------------ */

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t get8(struct in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static uint16_t get16(struct in *in)
{
	return get8(in) | get8(in) << 8;
}

static uint64_t get64(struct in *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)get8(in) << (8 * i);
	return v;
}

/* --- the machine ---------------------------------------------------------------------------- */

static struct vm vm;
static uint8_t *ram;
static struct virtio_blk *blk;
static struct virtio_dev *vd;
static unsigned int slot;
static uint64_t bar0;
static uint16_t next_desc[VIRTIO_MAX_QUEUES];
static char fdt[FDT_SIZE];

static atomic_ullong input_start; /* ns; 0: no input running */
static atomic_ullong op_start;	  /* ns, when the current operation began */
static atomic_uint op_now, op_index;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		uint64_t s = atomic_load(&input_start);

		if (s && now_ns() - s > WATCHDOG_NS) {
			unsigned int k = atomic_load(&op_index);

			if (k < MAX_OPS)
				fprintf(
				    stderr,
				    "fuzz_virtio_pci: an input ran for 10 s: hang in operation %u "
				    "(opcode %u), running for %llu ms\n",
				    k, atomic_load(&op_now),
				    (now_ns() - atomic_load(&op_start)) / 1000000);
			else
				fprintf(stderr, "fuzz_virtio_pci: an input ran for 10 s: hang in "
						"the final sync or teardown\n");
			/* FUZZ_VIRTIO_PCI_HANG_WAIT=S: time to attach a debugger first. */
			if (getenv("FUZZ_VIRTIO_PCI_HANG_WAIT"))
				sleep(atoi(getenv("FUZZ_VIRTIO_PCI_HANG_WAIT")));
			if (atomic_load(&input_start) == s)
				abort();
		}
		usleep(100000);
	}
	return NULL;
}

/* Tight enough that a burst of requests waits, loose enough to go on within an input. */
static const struct rl_config fuzz_rl = {
	.iops = 2000, .iops_burst = 2, .bandwidth = 1 << 20, .bandwidth_burst = 4096
};

static void machine_up(uint8_t flags)
{
	struct blk_open_opts o = { .format = BLK_FMT_NULL, .null_size = 64 * 512 };
	struct virtio_blk_opts bo = { .name = "fz",
				   .queues = 1 + (flags & 1),
				   .threads = 1,
				   .serial = "fuzz",
				   .poll_us = flags & 2 ? 4 : 0,
				   .rl = flags & 4 ? &fuzz_rl : NULL };
	struct blk_backend *be;
	char err[256];

	memset(&vm, 0, sizeof(vm));
	io_bus_init(&vm.pio);
	io_bus_init(&vm.mmio);
	vm.fd = -1;
	vm.serial_fd = -1;
	vm.stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ram = calloc(1, RAM);
	if (vm.stop_efd < 0 || !ram)
		abort();
	vm.mem.r[0] = (struct mem_region){ .gpa = 0, .size = RAM, .hva = ram };
	vm.mem.nr = 1;
	vm.mem.total = RAM;
	if (vm_irq_init(&vm))
		abort();
	vm.pci = pci_bus_create(&vm, FOUR_GIB, 1ULL << 30);
	if (!vm.pci || blk_open(&be, NULL, &o, err, sizeof(err)) ||
	    virtio_blk_create(&blk, be, &vm.mem, &bo))
		abort();
	vd = virtio_blk_virtio(blk);
	if (virtio_pci_add(&vm, vd))
		abort();
	for (slot = 0; slot < PCI_MAX_DEVS; slot++)
		if (pci_cfg_read(vm.pci, slot, PCI_VENDOR_ID, 4) == 0x10421af4)
			break;
	if (slot == PCI_MAX_DEVS)
		abort();
	bar0 = pci_cfg_read(vm.pci, slot, PCI_BAR0, 4) & ~0xfULL;
	memset(next_desc, 0, sizeof(next_desc));
}

static void machine_down(void)
{
	pci_bus_destroy(vm.pci); /* resets the device: its threads are gone after this */
	virtio_blk_destroy(blk);
	vm_irq_exit(&vm);
	io_bus_destroy(&vm.pio);
	io_bus_destroy(&vm.mmio);
	close(vm.stop_efd);
	free(ram);
}

static void bar_write(uint64_t off, uint64_t v, unsigned int len)
{
	if (off + len <= VPCI_BAR0_SIZE)
		io_bus_access(&vm.mmio, bar0 + off, &v, len, true);
}

static uint64_t bar_read(uint64_t off, unsigned int len)
{
	uint64_t v = 0;

	if (off + len <= VPCI_BAR0_SIZE)
		io_bus_access(&vm.mmio, bar0 + off, &v, len, false);
	return v;
}

static void *ram_at(uint64_t gpa, uint64_t len)
{
	return gpa < RAM && len <= RAM - gpa ? ram + gpa : NULL;
}

static void put(uint64_t gpa, const void *p, size_t len)
{
	void *d = ram_at(gpa, len);

	if (d)
		memcpy(d, p, len);
}

/* --- what the driver does ------------------------------------------------------------------- */

static unsigned int width(uint8_t b)
{
	return 1u << (b & 3);
}

/* ACKNOWLEDGE, DRIVER, features (@how: bit 0 no EVENT_IDX, 1 no INDIRECT, 2 a bit never
 * offered, 3 no VERSION_1), FEATURES_OK, queues at @base laid out as Linux does, DRIVER_OK. */
static void honest_setup(uint8_t how, uint16_t base, uint8_t size)
{
	uint64_t f;
	uint16_t qs = 1u << (size % 9);

	bar_write(CC(device_status), 0, 1);
	bar_write(CC(device_status), VIRTIO_CONFIG_S_ACKNOWLEDGE, 1);
	bar_write(CC(device_status), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER, 1);
	bar_write(CC(device_feature_select), 0, 4);
	f = bar_read(CC(device_feature), 4);
	bar_write(CC(device_feature_select), 1, 4);
	f |= bar_read(CC(device_feature), 4) << 32;
	if (how & 1)
		f &= ~(1ULL << VIRTIO_RING_F_EVENT_IDX);
	if (how & 2)
		f &= ~(1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	if (how & 4)
		f |= 1ULL << 40;
	if (how & 8)
		f &= ~(1ULL << VIRTIO_F_VERSION_1);
	for (unsigned int i = 0; i < 2; i++) {
		bar_write(CC(guest_feature_select), i, 4);
		bar_write(CC(guest_feature), (uint32_t)(f >> (32 * i)), 4);
	}
	bar_write(CC(device_status), S_FEAT, 1);
	for (unsigned int q = 0; q < vd->nr_queues; q++) {
		uint64_t d = ((uint64_t)base + q * 0x4000) & ~15ULL;
		uint64_t a = d + 16ULL * qs, u = (a + 6 + 2ULL * qs + 3) & ~3ULL;

		bar_write(CC(queue_select), q, 2);
		bar_write(CC(queue_size), qs, 2);
		bar_write(CC(queue_desc_lo), d, 8);
		bar_write(CC(queue_avail_lo), a, 8);
		bar_write(CC(queue_used_lo), u, 8);
		bar_write(CC(queue_msix_vector), q, 2);
		bar_write(CC(queue_enable), 1, 2);
		next_desc[q] = 0;
	}
	bar_write(CC(msix_config), vd->nr_queues, 2);
	bar_write(CC(device_status), S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK, 1);
}

/* Make @head available on queue @q where the device has the rings, and kick. */
static void publish(unsigned int q, uint16_t head)
{
	struct virtio_queue *vq = &vd->q[q];
	struct vring_avail *a = ram_at(vq->avail, 4 + 2ULL * vq->size);
	uint16_t idx;

	if (!a ||
	    (vq->avail & 1)) /* a misaligned ring is the device's to refuse, not ours to use */
		return;
	idx = __atomic_load_n(&a->idx, __ATOMIC_RELAXED);
	a->ring[idx % vq->size] = head;
	__atomic_store_n(&a->idx, idx + 1, __ATOMIC_RELEASE);
	bar_write(VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * q, q, 2);
}

static void set_desc(unsigned int q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct vring_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	put(vd->q[q].desc + 16ULL * (i % vd->q[q].size), &d, sizeof(d));
}

/* A virtio-blk request with its header, data and status wherever the input says. */
static void request(struct in *in)
{
	unsigned int q = get8(in) % vd->nr_queues;
	struct virtio_blk_outhdr h = { .type = get8(in) };
	uint16_t dlen, hdr, data, st, head = next_desc[q] % vd->q[q].size;
	bool wr;

	/* Mostly the types there are; 15 takes the next byte as it is. */
	h.type = h.type % 16 == 15 ? get8(in) : h.type % 16;
	h.sector = get16(in);
	dlen = get16(in);
	hdr = get16(in);
	data = get16(in);
	st = get16(in);
	wr = h.type == VIRTIO_BLK_T_IN || h.type == VIRTIO_BLK_T_GET_ID;

	put(hdr, &h, sizeof(h));
	set_desc(q, head, hdr, sizeof(h), VRING_DESC_F_NEXT, head + 1);
	set_desc(q, head + 1, data, dlen, (wr ? VRING_DESC_F_WRITE : 0) | VRING_DESC_F_NEXT,
		 head + 2);
	set_desc(q, head + 2, st, 1, VRING_DESC_F_WRITE, 0);
	next_desc[q] = head + 3;
	publish(q, head);
}

/* Up to 8 raw descriptors anywhere in the table, then their head made available. */
static void chain(struct in *in)
{
	unsigned int q = get8(in) % vd->nr_queues, n = get8(in) % 9;
	uint16_t start = get8(in);

	for (unsigned int i = 0; i < n; i++) {
		uint64_t addr = get16(in);
		uint32_t len = get16(in);
		uint16_t flags = get8(in) & 7, next = get8(in);

		if (flags & VRING_DESC_F_INDIRECT)
			len &= ~15u;
		set_desc(q, start + i, addr, len, flags, next);
	}
	publish(q, start % vd->q[q].size);
}

/* Let the I/O thread take the kicks it has (bounded: it may be told to stop any time). */
static void sync_threads(void)
{
	for (int i = 0; i < 100; i++) {
		bool pending = false;

		for (unsigned int q = 0; q < vd->nr_queues; q++) {
			struct pollfd p = { .fd = vd->q[q].kick_fd, .events = POLLIN };

			pending |= poll(&p, 1, 0) > 0;
		}
		if (!pending)
			break;
		usleep(100);
	}
	usleep(200);
}

/* Save the bus, overwrite parts of any properties, load it back (as a restore would). */
static void snapshot(struct in *in)
{
	int offs[MAX_PROPS], nprops = 0, node, depth = 0, n = get8(in) % 8;

	pci_bus_quiesce(vm.pci, true);
	if (fdt_create_empty_tree(fdt, sizeof(fdt)))
		abort();
	node = fdt_add_subnode(fdt, 0, "pci");
	if (node < 0 || pci_bus_save(vm.pci, fdt, node))
		abort();
	for (int nd = 0; nd >= 0 && nprops < MAX_PROPS; nd = fdt_next_node(fdt, nd, &depth))
		for (int p = fdt_first_property_offset(fdt, nd); p >= 0 && nprops < MAX_PROPS;
		     p = fdt_next_property_offset(fdt, p))
			offs[nprops++] = p;
	for (int i = 0; i < n && nprops; i++) {
		int len, k = get16(in) % nprops;
		const struct fdt_property *p = fdt_get_property_by_offset(fdt, offs[k], &len);
		unsigned int off = get8(in);
		uint64_t v = get64(in);

		if (!p || len <= 0)
			continue;
		off %= len;
		/* Our own buffer: the property data may be rewritten in place. */
		memcpy((uint8_t *)p->data + off, &v, len - off < 8 ? (size_t)(len - off) : 8);
	}
	pci_bus_load(vm.pci, fdt, node);
	pci_bus_quiesce(vm.pci, false);
	/* The snapshot may have moved BAR 0. */
	bar0 = pci_cfg_read(vm.pci, slot, PCI_BAR0, 4) & ~0xfULL;
}

/* --- what must hold ------------------------------------------------------------------------- */

struct qstate {
	uint64_t size, enabled, desc, avail, used; /* no padding: compared with memcmp */
};

static void queue_states(struct qstate *s)
{
	for (unsigned int q = 0; q < vd->nr_queues; q++)
		s[q] = (struct qstate){ vd->q[q].size, vd->q[q].enabled, vd->q[q].desc,
					vd->q[q].avail, vd->q[q].used };
}

static void check(void)
{
	uint8_t st = virtio_get_status(vd);

	if (vd->started && !(st & VIRTIO_CONFIG_S_DRIVER_OK))
		abort();
	/* An unmapped queue is never usable; only the driver's own thread writes these. */
	for (unsigned int q = 0; q < vd->nr_queues; q++)
		if (!vd->q[q].enabled && (!vd->q[q].vq.broken || vd->q[q].vq.desc))
			abort();
}

/*
 * A write of @len bytes at @off of BAR 0 (common configuration if below 64):
 * the status only gains bits unless the write reset it, and a live driver's
 * queue set-up stays as it was.
 */
static void common_write(uint64_t off, uint64_t v, unsigned int len)
{
	struct qstate before[VIRTIO_MAX_QUEUES], after[VIRTIO_MAX_QUEUES];
	uint8_t old = virtio_get_status(vd), now;
	bool status = off <= CC(device_status) && CC(device_status) < off + len;
	bool reset = status && !((const uint8_t *)&v)[CC(device_status) - off];

	queue_states(before);
	bar_write(off, v, len);
	if (reset || off >= sizeof(struct virtio_pci_common_cfg))
		return;
	now = virtio_get_status(vd);
	if ((now & old) != old)
		abort();
	queue_states(after);
	if ((old & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    memcmp(before, after, vd->nr_queues * sizeof(before[0])))
		abort();
}

static void run(struct in *in)
{
	for (unsigned int k = 0; k < MAX_OPS && in->n; k++) {
		uint8_t op = get8(in) % NR_OPS, b;
		uint64_t off, v;

		atomic_store(&op_index, k);
		atomic_store(&op_now, op);
		atomic_store(&op_start, now_ns());
		switch (op) {
		case OP_COMMON_WRITE:
			off = get8(in) % sizeof(struct virtio_pci_common_cfg);
			b = get8(in);
			common_write(off, get64(in), width(b));
			break;
		case OP_COMMON_READ:
			off = get8(in) % sizeof(struct virtio_pci_common_cfg);
			bar_read(off, width(get8(in)));
			break;
		case OP_BAR_WRITE:
			off = get16(in) % VPCI_BAR0_SIZE;
			b = get8(in);
			v = get64(in);
			common_write(off, v, width(b));
			break;
		case OP_BAR_READ:
			off = get16(in) % VPCI_BAR0_SIZE;
			bar_read(off, width(get8(in)));
			break;
		case OP_CFG_WRITE:
			b = width(get8(in) % 3);
			off = get8(in) & ~(b - 1);
			pci_cfg_write(vm.pci, slot, off, b, (uint32_t)get64(in));
			bar0 = pci_cfg_read(vm.pci, slot, PCI_BAR0, 4) & ~0xfULL;
			break;
		case OP_CFG_READ:
			b = width(get8(in) % 3);
			off = get8(in) & ~(b - 1);
			pci_cfg_read(vm.pci, slot, off, b);
			break;
		case OP_KICK:
			b = get8(in);
			bar_write(VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * (b % (vd->nr_queues + 2)), b,
				  width(b >> 6));
			break;
		case OP_POKE: {
			uint16_t gpa = get16(in);
			uint8_t n = get8(in) % 33, buf[32];

			for (unsigned int i = 0; i < n; i++)
				buf[i] = get8(in);
			put(gpa, buf, n);
			break;
		}
		case OP_SETUP: {
			uint8_t how = get8(in);
			uint16_t base = get16(in);

			honest_setup(how, base, get8(in));
			break;
		}
		case OP_REQUEST:
			request(in);
			break;
		case OP_CHAIN:
			chain(in);
			break;
		case OP_SYNC:
			sync_threads();
			break;
		case OP_SNAPSHOT:
			snapshot(in);
			break;
		case OP_RESET:
			common_write(CC(device_status), 0, 1);
			break;
		}
		check();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };

	if (!size)
		return 0;
	atomic_store(&input_start, now_ns());
	machine_up(get8(&in));
	run(&in);
	atomic_store(&op_index, MAX_OPS);
	sync_threads();
	machine_down();
	atomic_store(&input_start, 0);
	return 0;
}

/* --- seeds ---------------------------------------------------------------------------------- */

struct seed {
	uint8_t b[1024];
	size_t n;
};

static void s8(struct seed *s, unsigned int v)
{
	if (s->n < sizeof(s->b))
		s->b[s->n++] = v;
}

static void s16(struct seed *s, unsigned int v)
{
	s8(s, v & 0xff);
	s8(s, v >> 8);
}

static void s64(struct seed *s, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		s8(s, v >> (8 * i));
}

static void s_cw(struct seed *s, unsigned int off, unsigned int wlog, uint64_t v)
{
	s8(s, OP_COMMON_WRITE), s8(s, off), s8(s, wlog), s64(s, v);
}

static void s_setup(struct seed *s, unsigned int how, unsigned int base, unsigned int size)
{
	s8(s, OP_SETUP), s8(s, how), s16(s, base), s8(s, size);
}

static void s_read(struct seed *s, unsigned int q, unsigned int sector, unsigned int data,
		   unsigned int st)
{
	s8(s, OP_REQUEST), s8(s, q), s8(s, VIRTIO_BLK_T_IN), s16(s, sector), s16(s, 512);
	s16(s, 0x8000), s16(s, data), s16(s, st);
}

static void write_seed(const char *dir, const char *name, const struct seed *s)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f))
		abort();
}

static void gen_seeds(const char *dir)
{
	struct seed s;

	/* An honest life: two queues, a read on each, a reset, again. */
	s.n = 0, s8(&s, 1);
	s_setup(&s, 0, 0x1000, 4);
	s_read(&s, 0, 1, 0x9000, 0x9400), s_read(&s, 1, 2, 0x9800, 0x9c00);
	s8(&s, OP_SYNC), s8(&s, OP_RESET);
	s_setup(&s, 3, 0x1000, 8);
	s_read(&s, 1, 3, 0x9000, 0x9400), s8(&s, OP_SYNC);
	write_seed(dir, "honest", &s);

	/* The crash: DRIVER_OK cleared, queue 1 set up and enabled, kicked. */
	s.n = 0, s8(&s, 1);
	s_cw(&s, CC(device_status), 0, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	s_cw(&s, CC(device_status), 0, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	s_cw(&s, CC(guest_feature_select), 2, 1), s_cw(&s, CC(guest_feature), 2, 1);
	s_cw(&s, CC(device_status), 0, S_FEAT);
	s_cw(&s, CC(queue_select), 1, 0), s_cw(&s, CC(queue_size), 1, 16);
	s_cw(&s, CC(queue_desc_lo), 3, 0x1000), s_cw(&s, CC(queue_avail_lo), 3, 0x1100);
	s_cw(&s, CC(queue_used_lo), 3, 0x1200), s_cw(&s, CC(queue_enable), 1, 1);
	s_cw(&s, CC(device_status), 0, S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK);
	s_cw(&s, CC(device_status), 0, S_FEAT);
	s_cw(&s, CC(queue_select), 1, 1), s_cw(&s, CC(queue_desc_lo), 3, 0x5000);
	s_cw(&s, CC(queue_avail_lo), 3, 0x5100), s_cw(&s, CC(queue_used_lo), 3, 0x5200);
	s_cw(&s, CC(queue_enable), 1, 1);
	s8(&s, OP_KICK), s8(&s, 1), s8(&s, OP_SYNC);
	write_seed(dir, "status_games", &s);

	/* Rings on top of each other; then a read whose status lands on the used ring. */
	s.n = 0, s8(&s, 0);
	s8(&s, OP_SETUP), s8(&s, 0), s16(&s, 0x1000), s8(&s, 4);
	s_cw(&s, CC(device_status), 0, 0);
	s_setup(&s, 2, 0x2000, 3);
	s_read(&s, 0, 0, 0x2080, 0x2000 + 16 * 8 + 6 + 2 * 8 + 2 + 4);
	s_read(&s, 0, 0, 0x2000 + 16 * 8, 0x9400), s8(&s, OP_SYNC);
	write_seed(dir, "write_over_rings", &s);

	/* Descriptor loops and indirect tables. */
	s.n = 0, s8(&s, 2);
	s_setup(&s, 0, 0x1000, 4);
	s8(&s, OP_CHAIN), s8(&s, 0), s8(&s, 3), s8(&s, 0);
	s16(&s, 0x9000), s16(&s, 16), s8(&s, VRING_DESC_F_NEXT), s8(&s, 1);
	s16(&s, 0x9100), s16(&s, 512), s8(&s, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE), s8(&s, 2);
	s16(&s, 0x9400), s16(&s, 1), s8(&s, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT), s8(&s, 0);
	s8(&s, OP_CHAIN), s8(&s, 0), s8(&s, 1), s8(&s, 5);
	s16(&s, 0xa000), s16(&s, 48), s8(&s, VRING_DESC_F_INDIRECT), s8(&s, 0);
	s8(&s, OP_SYNC);
	write_seed(dir, "chains", &s);

	/* MSI-X: enable through config space, program and unmask the vectors. */
	s.n = 0, s8(&s, 1);
	s_setup(&s, 0, 0x1000, 4);
	for (unsigned int v = 0; v < 3; v++) {
		s8(&s, OP_BAR_WRITE), s16(&s, VPCI_MSIX_OFF + 16 * v), s8(&s, 3);
		s64(&s, 0xfee00000ULL);
		s8(&s, OP_BAR_WRITE), s16(&s, VPCI_MSIX_OFF + 16 * v + 8), s8(&s, 3);
		s64(&s, 0x4040 + v);
	}
	s8(&s, OP_CFG_WRITE), s8(&s, 1), s8(&s, 0x40 + 2), s64(&s, 0xc000);
	s8(&s, OP_CFG_WRITE), s8(&s, 1), s8(&s, 0x40 + 2), s64(&s, 0x8000);
	s_read(&s, 0, 1, 0x9000, 0x9400), s8(&s, OP_SYNC);
	s8(&s, OP_BAR_READ), s16(&s, VPCI_PBA_OFF), s8(&s, 3);
	s8(&s, OP_BAR_READ), s16(&s, VPCI_ISR_OFF), s8(&s, 0);
	write_seed(dir, "msix", &s);

	/* A snapshot with patched properties, then more I/O. */
	s.n = 0, s8(&s, 1);
	s_setup(&s, 0, 0x1000, 4);
	s_read(&s, 0, 1, 0x9000, 0x9400), s8(&s, OP_SYNC);
	s8(&s, OP_SNAPSHOT), s8(&s, 0);
	s_read(&s, 1, 2, 0x9800, 0x9c00), s8(&s, OP_SYNC);
	s8(&s, OP_SNAPSHOT), s8(&s, 2);
	s16(&s, 20), s8(&s, 0), s64(&s, 0x7fff);
	s16(&s, 30), s8(&s, 4), s64(&s, 0x1000);
	s_read(&s, 0, 3, 0x9000, 0x9400), s8(&s, OP_SYNC);
	write_seed(dir, "snapshot", &s);

	/* Kicks and set-up writes racing resets. */
	s.n = 0, s8(&s, 3);
	for (unsigned int i = 0; i < 8; i++) {
		s_setup(&s, i & 3, 0x1000, 4);
		s_read(&s, i & 1, i, 0x9000, 0x9400);
		s8(&s, OP_KICK), s8(&s, i);
		s8(&s, OP_RESET);
		s8(&s, OP_KICK), s8(&s, i + 1);
	}
	write_seed(dir, "kicks_and_resets", &s);
	/* The same under rate limits: requests wait on them, resets must not. */
	s.b[0] |= 4;
	write_seed(dir, "kicks_and_resets_limited", &s);

	/* A burst of reads beyond the limit's, a snapshot while they wait, a reset. */
	s.n = 0, s8(&s, 5);
	s_setup(&s, 0, 0x1000, 4);
	for (unsigned int i = 0; i < 6; i++)
		s_read(&s, i & 1, i, 0x9000 + 0x800 * i, 0x9400 + 0x800 * i);
	s8(&s, OP_SNAPSHOT), s8(&s, 0);
	s8(&s, OP_SYNC), s8(&s, OP_RESET);
	write_seed(dir, "limited_burst", &s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_VIRTIO_PCI_SEEDS");
	pthread_t t;

	(void)argc;
	(void)argv;
	log_verbosity = -1; /* protocol errors warn by design */
	if (dir) {
		gen_seeds(dir);
		exit(0);
	}
	if (pthread_create(&t, NULL, watchdog, NULL))
		abort();
	pthread_detach(t);
	return 0;
}
