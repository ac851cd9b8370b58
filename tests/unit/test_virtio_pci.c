// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The virtio-pci transport as a hostile guest sees it: a virtio-blk device
 * (null backend, real I/O threads) on a bare VM without KVM, driven only
 * through BAR 0 accesses and PCI configuration space, as vCPU exits would.
 * Status games, queue set-up after DRIVER_OK, kicks of queues that were never
 * mapped, rings on top of each other, every register offset and width, and
 * kicks racing resets.
 */
#include <check.h>
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/backend.h"
#include "layout.h"
#include "log.h"
#include "pci/pci.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"
#include "virtio/virtio_pci.h"
#include "vm.h"
#include "unit.h"

#define RAM_SIZE  0x400000ULL /* 4 MiB at GPA 0 */
#define RING_GPA  0x100000ULL /* queue i's rings at RING_GPA + i * RING_STEP */
#define RING_STEP 0x10000ULL
#define BUF_GPA	  0x300000ULL
#define QSIZE	  16
#define NQ	  2
#define DISK	  (1024 * 1024ULL)

#define CC(f)  offsetof(struct virtio_pci_common_cfg, f)
#define S_FEAT (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)
#define S_LIVE (S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK)

static struct vm vm;
static uint8_t *ram;
static struct virtio_blk *blk;
static struct virtio_dev *vd;
static unsigned int slot;
static uint64_t bar0;

/* --- a VM without KVM ---------------------------------------------------------------------- */

static void setup(void)
{
	struct blk_open_opts o = { .format = BLK_FMT_NULL, .null_size = DISK };
	struct virtio_blk_opts bo = { .name = "vdp", .queues = NQ, .threads = 1, .serial = "s" };
	struct blk_backend *be;
	char err[256];

	log_verbosity = -1; /* the protocol errors warn by design */
	memset(&vm, 0, sizeof(vm));
	io_bus_init(&vm.pio);
	io_bus_init(&vm.mmio);
	vm.fd = -1;
	vm.serial_fd = -1;
	vm.stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(vm.stop_efd, 0);
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(ram, MAP_FAILED);
	vm.mem.r[0] = (struct mem_region){ .gpa = 0, .size = RAM_SIZE, .hva = ram };
	vm.mem.nr = 1;
	vm.mem.total = RAM_SIZE;
	ck_assert_int_eq(vm_irq_init(&vm), 0);
	vm.pci = pci_bus_create(&vm, FOUR_GIB, 1ULL << 30);
	ck_assert_ptr_nonnull(vm.pci);
	ck_assert_int_eq(blk_open(&be, NULL, &o, err, sizeof(err)), 0);
	ck_assert_int_eq(virtio_blk_create(&blk, be, &vm.mem, &bo), 0);
	vd = virtio_blk_virtio(blk);
	ck_assert_int_eq(virtio_pci_add(&vm, vd), 0);
	for (slot = 0; slot < PCI_MAX_DEVS; slot++)
		if (pci_cfg_read(vm.pci, slot, PCI_VENDOR_ID, 4) == 0x10421af4)
			break;
	ck_assert_uint_lt(slot, PCI_MAX_DEVS);
	bar0 = pci_cfg_read(vm.pci, slot, PCI_BAR0, 4) & ~0xfULL;
	ck_assert_uint_ne(bar0, 0);
}

static void teardown(void)
{
	pci_bus_destroy(vm.pci); /* resets the device through the transport's release */
	virtio_blk_destroy(blk);
	vm_irq_exit(&vm);
	io_bus_destroy(&vm.pio);
	io_bus_destroy(&vm.mmio);
	close(vm.stop_efd);
	munmap(ram, RAM_SIZE);
}

static void wr(uint64_t off, uint64_t v, unsigned int len)
{
	ck_assert(io_bus_access(&vm.mmio, bar0 + off, &v, len, true));
}

static uint64_t rd(uint64_t off, unsigned int len)
{
	uint64_t v = 0;

	ck_assert(io_bus_access(&vm.mmio, bar0 + off, &v, len, false));
	return v;
}

static void set_status(uint8_t s)
{
	wr(CC(device_status), s, 1);
}

static uint8_t status(void)
{
	return rd(CC(device_status), 1);
}

/* --- a driver that only has the registers ------------------------------------------------ */

struct ring {
	uint64_t desc, avail, used;
	struct vring_desc *d;
	struct vring_avail *a;
	struct vring_used *u;
	uint16_t next, avail_idx;
};

static struct ring rings[NQ];
static uint64_t buf_next;

static void *hva(uint64_t gpa)
{
	void *p = gpa_to_hva(&vm.mem, gpa, 1);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void ring_init(unsigned int qi)
{
	struct ring *r = &rings[qi];
	uint64_t base = RING_GPA + qi * RING_STEP;

	memset(r, 0, sizeof(*r));
	memset(hva(base), 0, RING_STEP);
	r->desc = base;
	r->avail = base + 0x1000;
	r->used = base + 0x2000;
	r->d = hva(r->desc);
	r->a = hva(r->avail);
	r->u = hva(r->used);
}

static void negotiate(void)
{
	set_status(0);
	ck_assert_uint_eq(status(), 0);
	set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
	set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	for (unsigned int i = 0; i < 2; i++) {
		wr(CC(device_feature_select), i, 4);
		wr(CC(guest_feature_select), i, 4);
		wr(CC(guest_feature), rd(CC(device_feature), 4), 4);
	}
	set_status(S_FEAT);
	ck_assert_uint_eq(status(), S_FEAT);
}

static void queue_addrs(unsigned int qi, uint64_t desc, uint64_t avail, uint64_t used)
{
	wr(CC(queue_select), qi, 2);
	wr(CC(queue_size), QSIZE, 2);
	wr(CC(queue_desc_lo), (uint32_t)desc, 4);
	wr(CC(queue_desc_hi), desc >> 32, 4);
	wr(CC(queue_avail_lo), (uint32_t)avail, 4);
	wr(CC(queue_avail_hi), avail >> 32, 4);
	wr(CC(queue_used_lo), (uint32_t)used, 4);
	wr(CC(queue_used_hi), used >> 32, 4);
	wr(CC(queue_msix_vector), qi, 2);
}

static void queue_setup(unsigned int qi)
{
	ring_init(qi);
	queue_addrs(qi, rings[qi].desc, rings[qi].avail, rings[qi].used);
	wr(CC(queue_enable), 1, 2);
	ck_assert_uint_eq(rd(CC(queue_enable), 2), 1);
}

/* What the selected queue's registers say: size, enable, desc. */
static void expect_queue(unsigned int qi, uint16_t size, uint16_t enable, uint64_t desc)
{
	wr(CC(queue_select), qi, 2);
	ck_assert_uint_eq(rd(CC(queue_size), 2), size);
	ck_assert_uint_eq(rd(CC(queue_enable), 2), enable);
	ck_assert_uint_eq(rd(CC(queue_desc_lo), 4) | rd(CC(queue_desc_hi), 4) << 32, desc);
}

static void notify(unsigned int qi)
{
	wr(VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * qi, qi, 2);
}

/* A one-sector read on queue @qi; returns the gpa of its status byte. */
static uint64_t post_read(unsigned int qi, uint64_t sector)
{
	struct ring *r = &rings[qi];
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = sector };
	uint64_t hdr = buf_next, data = buf_next + 16, st = buf_next + 16 + 512;
	uint16_t head = r->next;

	buf_next += 1024;
	ck_assert_uint_le(buf_next, RAM_SIZE);
	memcpy(hva(hdr), &h, sizeof(h));
	*(uint8_t *)hva(st) = 0xee;
	r->d[head] = (struct vring_desc){ hdr, 16, VRING_DESC_F_NEXT, (head + 1) % QSIZE };
	r->d[(head + 1) % QSIZE] =
	    (struct vring_desc){ data, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
				 (head + 2) % QSIZE };
	r->d[(head + 2) % QSIZE] = (struct vring_desc){ st, 1, VRING_DESC_F_WRITE, 0 };
	r->next = (head + 3) % QSIZE;
	r->a->ring[r->avail_idx % QSIZE] = head;
	r->avail_idx++;
	__atomic_store_n(&r->a->idx, r->avail_idx, __ATOMIC_RELEASE);
	return st;
}

static bool wait_used(unsigned int qi, uint16_t n)
{
	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n(&rings[qi].u->idx, __ATOMIC_ACQUIRE) == n)
			return true;
		usleep(1000);
	}
	return false;
}

/* A full honest life: set-up, one read on each queue, answered. */
static void honest_round(void)
{
	uint64_t st[NQ];

	buf_next = BUF_GPA;
	negotiate();
	for (unsigned int i = 0; i < NQ; i++)
		queue_setup(i);
	set_status(S_LIVE);
	ck_assert_uint_eq(status(), S_LIVE);
	for (unsigned int i = 0; i < NQ; i++) {
		st[i] = post_read(i, i);
		notify(i);
	}
	for (unsigned int i = 0; i < NQ; i++) {
		ck_assert_msg(wait_used(i, 1), "queue %u: no answer", i);
		ck_assert_uint_eq(*(uint8_t *)hva(st[i]), VIRTIO_BLK_S_OK);
	}
}

/* --- tests ------------------------------------------------------------------------------- */

/* The first capability with @id (and, @type >= 0, a virtio cfg_type of @type), as Linux
 * walks the list; 0: none. */
static unsigned int first_cap(unsigned int id, int type)
{
	unsigned int at;

	for (at = pci_cfg_read(vm.pci, slot, PCI_CAP_PTR, 1); at;
	     at = pci_cfg_read(vm.pci, slot, at + 1, 1))
		if (pci_cfg_read(vm.pci, slot, at, 1) == id &&
		    (type < 0 || pci_cfg_read(vm.pci, slot, at + 3, 1) == (unsigned int)type))
			return at;
	return 0;
}

/* A configuration write through ports 0xcf8/0xcfc, as a vCPU's port exit makes it. */
static void conf1_write(unsigned int off, uint32_t v, unsigned int len)
{
	uint64_t a = 0x80000000u | slot << 11 | (off & 0xfc), d = v;

	ck_assert(io_bus_access(&vm.pio, 0xcf8, &a, 4, true));
	ck_assert(io_bus_access(&vm.pio, 0xcfc + (off & 3), &d, len, true));
}

/*
 * [vm] notify = pio (the default): the first notify capability, the one Linux takes, is
 * in an I/O BAR; a 16-bit OUT at its queue's port kicks that queue, and a write between
 * ports or past the last queue kicks nothing. The memory notify region still works (a
 * guest that could not place the I/O BAR, a snapshot taken before it existed).
 */
START_TEST(t_pio_notify)
{
	unsigned int at, mult = 0, bar = 99, off = 0;
	uint64_t st[NQ], port;
	uint32_t b;

	at = first_cap(0x09, VIRTIO_PCI_CAP_NOTIFY_CFG);
	if (at) {
		bar = pci_cfg_read(vm.pci, slot, at + 4, 1);
		off = pci_cfg_read(vm.pci, slot, at + 8, 4);
		mult = pci_cfg_read(vm.pci, slot, at + 16, 4);
	}
	ck_assert_uint_lt(bar, PCI_NUM_BARS);
	b = pci_cfg_read(vm.pci, slot, PCI_BAR0 + 4 * bar, 4);
	ck_assert_uint_eq(b & 1, 1); /* an I/O BAR */
	ck_assert_uint_ne(pci_cfg_read(vm.pci, slot, PCI_COMMAND, 2) & PCI_CMD_IO, 0);
	ck_assert_uint_ge(mult, 2);
	port = (b & ~3U) + off;
	ck_assert_uint_ne(port, off);

	buf_next = BUF_GPA;
	negotiate();
	for (unsigned int i = 0; i < NQ; i++)
		queue_setup(i);
	set_status(S_LIVE);
	st[0] = post_read(0, 0);
	st[1] = post_read(1, 1);
	for (unsigned int i = 0; i < NQ; i++) {
		uint64_t v = i;

		/* A write between two queues' ports, and past the last queue: no kick. */
		io_bus_access(&vm.pio, port + mult * i + 1, &v, 1, true);
		io_bus_access(&vm.pio, port + mult * NQ, &v, 2, true);
	}
	usleep(20000);
	for (unsigned int i = 0; i < NQ; i++)
		ck_assert_uint_eq(__atomic_load_n(&rings[i].u->idx, __ATOMIC_ACQUIRE), 0);
	for (unsigned int i = 0; i < NQ; i++) {
		uint64_t v = i;

		ck_assert(io_bus_access(&vm.pio, port + (uint64_t)mult * i, &v, 2, true));
		ck_assert_msg(wait_used(i, 1), "queue %u: no answer to the port kick", i);
		ck_assert_uint_eq(*(uint8_t *)hva(st[i]), VIRTIO_BLK_S_OK);
	}
	/* The memory notify region too. */
	st[0] = post_read(0, 2);
	notify(0);
	ck_assert(wait_used(0, 2));
	ck_assert_uint_eq(*(uint8_t *)hva(st[0]), VIRTIO_BLK_S_OK);

	/*
	 * The guest moves the I/O BAR through the configuration ports, as Linux does when it
	 * sizes BARs: the port handler moves a range of its own bus (this hung on the bus's
	 * lock), and the kick follows the BAR.
	 */
	conf1_write(PCI_COMMAND, pci_cfg_read(vm.pci, slot, PCI_COMMAND, 2) & ~PCI_CMD_IO, 2);
	conf1_write(PCI_BAR0 + 4 * bar, 0xffffffff, 4);
	ck_assert_uint_eq(pci_cfg_read(vm.pci, slot, PCI_BAR0 + 4 * bar, 4) & 3, 1);
	conf1_write(PCI_BAR0 + 4 * bar, 0xd000, 4);
	conf1_write(PCI_COMMAND, pci_cfg_read(vm.pci, slot, PCI_COMMAND, 2) | PCI_CMD_IO, 2);
	st[1] = post_read(1, 3);
	{
		uint64_t v = 1;

		ck_assert(!io_bus_access(&vm.pio, port + mult, &v, 2, true));
		ck_assert(io_bus_access(&vm.pio, 0xd000 + off + mult, &v, 2, true));
	}
	ck_assert(wait_used(1, 2));
	ck_assert_uint_eq(*(uint8_t *)hva(st[1]), VIRTIO_BLK_S_OK);
}
END_TEST

/*
 * The crash, with register writes only: clear DRIVER_OK without a
 * reset, set up and enable a queue that was never mapped, kick it. The I/O
 * thread served the all-zero ring and wrote through NULL. Now: NEEDS_RESET,
 * the queue set-up stays frozen, the kick finds nothing, a reset recovers.
 */
START_TEST(t_status_games)
{
	uint64_t st;

	buf_next = BUF_GPA;
	negotiate();
	queue_setup(0);
	set_status(S_LIVE);
	st = post_read(0, 1);
	notify(0);
	ck_assert(wait_used(0, 1));
	ck_assert_uint_eq(*(uint8_t *)hva(st), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(rd(VPCI_ISR_OFF, 1), 1);
	ck_assert_uint_eq(rd(VPCI_ISR_OFF, 1), 0); /* read clears */

	set_status(S_FEAT); /* DRIVER_OK cleared */
	ring_init(1);
	queue_addrs(1, rings[1].desc, rings[1].avail, rings[1].used);
	wr(CC(queue_enable), 1, 2);
	post_read(1, 2);
	notify(1);
	set_status(S_LIVE);
	notify(1);
	usleep(20000);
	ck_assert_uint_eq(status(), S_LIVE | VIRTIO_CONFIG_S_NEEDS_RESET);
	ck_assert_uint_eq(rd(VPCI_ISR_OFF, 1), 2); /* configuration change */
	expect_queue(1, BLK_QUEUE_SIZE, 0, 0);	   /* untouched */
	ck_assert_uint_eq(rings[1].u->idx, 0);
	/* Queue 0 is frozen too, and still answers. */
	wr(CC(queue_select), 0, 2);
	wr(CC(queue_desc_lo), 0x1234000, 4);
	wr(CC(queue_size), 4, 2);
	expect_queue(0, QSIZE, 1, rings[0].desc);
	post_read(0, 3);
	notify(0);
	ck_assert(wait_used(0, 2));

	/* Only a reset gets out of it; then everything works again. */
	set_status(0);
	ck_assert_uint_eq(status(), 0);
	expect_queue(0, BLK_QUEUE_SIZE, 0, 0);
	expect_queue(1, BLK_QUEUE_SIZE, 0, 0);
	honest_round();
}
END_TEST

/* FEATURES_OK cleared before DRIVER_OK: the driver cannot go live on that. */
START_TEST(t_status_features_cleared)
{
	negotiate();
	queue_setup(0);
	set_status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	ck_assert_uint_eq(status(), S_FEAT | VIRTIO_CONFIG_S_NEEDS_RESET);
	set_status(S_LIVE);
	ck_assert(!vd->started);
	post_read(0, 0);
	notify(0);
	usleep(20000);
	ck_assert_uint_eq(rings[0].u->idx, 0);
	honest_round();
}
END_TEST

/* After DRIVER_OK no queue's set-up changes, enabled or not; selecting a queue that
 * does not exist shows size 0 and takes nothing. */
START_TEST(t_queue_frozen)
{
	honest_round();
	for (unsigned int q = 0; q < NQ; q++) {
		wr(CC(queue_select), q, 2);
		wr(CC(queue_size), 4, 2);
		wr(CC(queue_desc_lo), 0x40000, 4);
		wr(CC(queue_desc_hi), 1, 4);
		wr(CC(queue_avail_lo), 0x50000, 4);
		wr(CC(queue_used_lo), 0x60000, 4);
		wr(CC(queue_enable), 0, 2);
		/* 8-byte writes over two fields at once. */
		wr(CC(queue_desc_lo), 0x7000000070000ULL, 8);
		expect_queue(q, QSIZE, 1, rings[q].desc);
		ck_assert_uint_eq(rd(CC(queue_avail_lo), 4), (uint32_t)rings[q].avail);
		ck_assert_uint_eq(rd(CC(queue_used_lo), 4), (uint32_t)rings[q].used);
	}
	for (unsigned int q = NQ; q < 0x10000; q += 0x1111) {
		wr(CC(queue_select), q, 2);
		ck_assert_uint_eq(rd(CC(queue_select), 2), q);
		ck_assert_uint_eq(rd(CC(queue_size), 2), 0);
		wr(CC(queue_size), 8, 2);
		wr(CC(queue_enable), 1, 2);
		wr(CC(queue_msix_vector), 0, 2);
		ck_assert_uint_eq(rd(CC(queue_size), 2), 0);
		ck_assert_uint_eq(rd(CC(queue_enable), 2), 0);
		notify(NQ + q % 64); /* no such queue: nothing */
	}
	/* Vectors past the table read back as none. */
	wr(CC(queue_select), 0, 2);
	wr(CC(queue_msix_vector), NQ + 1, 2);
	ck_assert_uint_eq(rd(CC(queue_msix_vector), 2), VIRTIO_NO_VECTOR);
	wr(CC(msix_config), 0x8000, 2);
	ck_assert_uint_eq(rd(CC(msix_config), 2), VIRTIO_NO_VECTOR);
	/* The device still works. */
	post_read(1, 5);
	notify(1);
	ck_assert(wait_used(1, 2));
}
END_TEST

/* Rings on top of each other, or outside RAM: DRIVER_OK gets NEEDS_RESET, nothing runs. */
START_TEST(t_rings_overlap)
{
	const struct {
		uint64_t d, a, u;
	} bad[] = {
		{ RING_GPA, RING_GPA + 0x1000, RING_GPA + 0x1000 }, /* used on avail */
		{ RING_GPA, RING_GPA + 0x1000, RING_GPA },	    /* used on desc */
		{ RING_GPA, RING_GPA + 0x80, RING_GPA + 0x2000 },   /* avail on desc */
		{ RING_GPA, RING_GPA + 0x1000, RAM_SIZE - 8 },	    /* past the end of RAM */
		{ 0xfffffffffffff000ULL, RING_GPA + 0x1000, RING_GPA + 0x2000 },
	};

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		negotiate();
		ring_init(0);
		queue_addrs(0, bad[i].d, bad[i].a, bad[i].u);
		wr(CC(queue_enable), 1, 2);
		set_status(S_LIVE);
		ck_assert_msg(status() & VIRTIO_CONFIG_S_NEEDS_RESET, "rings %u accepted", i);
		ck_assert(!vd->started);
		notify(0);
	}
	honest_round();
}
END_TEST

/* Every offset and width of BAR 0, read, then written where the guest may not write:
 * nothing breaks, holes read 0, read-only state stays. */
START_TEST(t_register_sweep)
{
	static const unsigned int widths[] = { 1, 2, 4, 8 };
	uint8_t cfg[sizeof(struct virtio_blk_config)];
	uint64_t msix[2 * (NQ + 1)];

	honest_round();
	for (unsigned int i = 0; i < sizeof(cfg); i++)
		cfg[i] = rd(VPCI_DEVICE_OFF + i, 1);
	for (unsigned int v = 0; v < 2 * (NQ + 1); v++)
		msix[v] = rd(VPCI_MSIX_OFF + 8 * v, 8);
	for (uint64_t off = 0; off < VPCI_BAR0_SIZE; off++)
		for (unsigned int w = 0; w < 4 && off + widths[w] <= VPCI_BAR0_SIZE; w++) {
			uint64_t v = rd(off, widths[w]);
			bool hole =
			    (off >= sizeof(struct virtio_pci_common_cfg) && off < VPCI_ISR_OFF) ||
			    (off >= VPCI_ISR_OFF + 1 && off < VPCI_DEVICE_OFF) ||
			    (off >= VPCI_DEVICE_OFF + sizeof(cfg) && off < VPCI_MSIX_OFF) ||
			    (off >= VPCI_MSIX_OFF + 16 * (NQ + 1) && off < VPCI_PBA_OFF) ||
			    off >= VPCI_PBA_OFF + 16;

			if (hole)
				ck_assert_msg(v == 0, "read %u at %#llx: %#llx", widths[w],
					      (unsigned long long)off, (unsigned long long)v);
		}
	/* Writes to what is read-only, absent or another queue's. */
	for (uint64_t off = VPCI_ISR_OFF; off < VPCI_BAR0_SIZE; off++) {
		if (off >= VPCI_NOTIFY_OFF && off < VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * NQ)
			continue;
		if (off >= VPCI_MSIX_OFF && off < VPCI_MSIX_OFF + 16 * (NQ + 1))
			continue;
		for (unsigned int w = 0; w < 4 && off + widths[w] <= VPCI_BAR0_SIZE; w++)
			wr(off, ~0ULL, widths[w]);
	}
	/* Common config: the read-only fields. */
	wr(CC(device_feature), 0, 4);
	wr(CC(num_queues), 7, 2);
	wr(CC(config_generation), 9, 1);
	wr(CC(queue_select), 1, 2);
	wr(CC(queue_notify_off), 9, 2);
	ck_assert_uint_eq(rd(CC(num_queues), 2), NQ);
	ck_assert_uint_eq(rd(CC(queue_notify_off), 2), 1);
	wr(CC(device_feature_select), 0, 4);
	ck_assert_uint_eq(rd(CC(device_feature), 4), (uint32_t)vd->features);
	ck_assert_uint_eq(status(), S_LIVE);
	for (unsigned int i = 0; i < sizeof(cfg); i++)
		ck_assert_uint_eq(rd(VPCI_DEVICE_OFF + i, 1), cfg[i]);
	for (unsigned int v = 0; v < 2 * (NQ + 1); v++)
		ck_assert_uint_eq(rd(VPCI_MSIX_OFF + 8 * v, 8), msix[v]);
	post_read(0, 9);
	notify(0);
	ck_assert(wait_used(0, 2));
}
END_TEST

/* MSI-X: masked or disabled vectors keep their interrupt pending; the table takes
 * entries of any width; the control word through PCI config space. */
START_TEST(t_msix)
{
	unsigned int cap = first_cap(0x11, -1);

	ck_assert_uint_ne(cap, 0);
	ck_assert_uint_eq(pci_cfg_read(vm.pci, slot, cap + 2, 2) & 0x7ff, NQ); /* table size - 1 */
	honest_round();
	/* MSI-X is off: both queues' vectors pending. */
	ck_assert_uint_eq(rd(VPCI_PBA_OFF, 8), 3);
	wr(VPCI_MSIX_OFF, 0xfee00000, 4);
	wr(VPCI_MSIX_OFF + 8, 0x4041, 4);
	wr(VPCI_MSIX_OFF + 12, 0, 4); /* unmask vector 0 */
	ck_assert_uint_eq(rd(VPCI_MSIX_OFF, 8), 0xfee00000);
	ck_assert_uint_eq(rd(VPCI_MSIX_OFF + 8, 8), 0x4041);
	pci_cfg_write(vm.pci, slot, cap + 2, 2, 0x8000 | 0x4000); /* enabled, function-masked */
	ck_assert_uint_eq(rd(VPCI_PBA_OFF, 1), 3);
	pci_cfg_write(vm.pci, slot, cap + 2, 2, 0x8000); /* delivered now */
	ck_assert_uint_eq(rd(VPCI_PBA_OFF, 1), 2);
	/* Vector 1 unmasked with an INIT message, then outside the APIC window: held. */
	wr(VPCI_MSIX_OFF + 16, 0xfee00000, 4);
	wr(VPCI_MSIX_OFF + 16 + 8, 0x0542, 4);
	wr(VPCI_MSIX_OFF + 16 + 12, 0, 4);
	ck_assert_uint_eq(rd(VPCI_PBA_OFF, 1), 2);
	wr(VPCI_MSIX_OFF + 16, 0xffffffff, 4);
	wr(VPCI_MSIX_OFF + 16 + 8, 0x4042, 4);
	ck_assert_uint_eq(rd(VPCI_PBA_OFF, 1), 2);
	wr(VPCI_MSIX_OFF + 16, 0xfee00000, 4); /* a proper message: delivered */
	ck_assert_uint_eq(rd(VPCI_PBA_OFF, 1), 0);
	/* Entry writes straddling entries or past the table are dropped. */
	wr(VPCI_MSIX_OFF + 12, ~0ULL, 8);
	wr(VPCI_MSIX_OFF + 16 * (NQ + 1), ~0ULL, 8);
	ck_assert_uint_eq(rd(VPCI_MSIX_OFF + 12, 4), 0);
	ck_assert_uint_eq(rd(VPCI_MSIX_OFF + 16 * (NQ + 1), 4), 0);
	pci_cfg_write(vm.pci, slot, cap + 2, 2, 0);
}
END_TEST

static atomic_bool hammering;

static void *hammer(void *arg)
{
	uint64_t n = 0;

	(void)arg;
	while (atomic_load(&hammering)) {
		uint64_t v = n++ % NQ;

		io_bus_access(&vm.mmio, bar0 + VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * v, &v, 2, true);
		io_bus_access(&vm.mmio, bar0 + CC(queue_select), &v, 2, true);
		v = 1;
		io_bus_access(&vm.mmio, bar0 + CC(queue_enable), &v, 2, true);
	}
	return NULL;
}

/* Another vCPU kicks and enables queues while this one resets and re-initialises. */
START_TEST(t_kicks_during_reset)
{
	pthread_t t;

	atomic_store(&hammering, true);
	ck_assert_int_eq(pthread_create(&t, NULL, hammer, NULL), 0);
	for (unsigned int round = 0; round < 100; round++) {
		negotiate();
		for (unsigned int i = 0; i < NQ; i++) {
			ring_init(i);
			queue_addrs(i, rings[i].desc, rings[i].avail, rings[i].used);
		}
		set_status(round % 2 ? S_LIVE : S_FEAT);
		set_status(0);
	}
	atomic_store(&hammering, false);
	pthread_join(t, NULL);
	honest_round();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_pci");
	TCase *tc = tcase_create("transport");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_status_games);
	tcase_add_test(tc, t_status_features_cleared);
	tcase_add_test(tc, t_queue_frozen);
	tcase_add_test(tc, t_rings_overlap);
	tcase_add_test(tc, t_register_sweep);
	tcase_add_test(tc, t_msix);
	tcase_add_test(tc, t_kicks_during_reset);
	tcase_add_test(tc, t_pio_notify);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
