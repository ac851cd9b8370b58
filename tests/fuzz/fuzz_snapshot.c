// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the input is a whole snapshot file for a guest of 1 MiB.
 * Open it (header, fdt_check_full; checksums are not checked in fuzzing builds, so
 * the fuzzer reaches what they guard), read its disk records against an empty
 * configuration, load the device models' state (serial, RTC, PCI config space and
 * BARs, as a restore does) and then drive them through port I/O and MMIO as a guest
 * would after the restore: loaded state that is out of bounds shows up there.
 * Finally restore the memory eagerly. Nothing may crash, hang, leak or write
 * outside guest memory. (The vCPU and in-kernel device loaders need KVM; KVM
 * checks their input itself.)
 *
 * SNAPSHOT_GEN_SEEDS=DIR build/fuzz/fuzz_snapshot writes the seed corpus
 * (tests/fuzz/corpus/fuzz_snapshot/) and exits.
 */
#include <fcntl.h>
#include <libfdt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "devices/legacy.h"
#include "devices/serial.h"
#include "layout.h"
#include "log.h"
#include "mm/guest_mem.h"
#include "pci/pci.h"
#include "snapshot/snapshot.h"
#include "snapshot/state.h"
#include "vm.h"

#define MEM (1u << 20)

static struct guest_mem mem;
static char path[64];

static void map(void)
{
	void *p = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		abort();
	mem.nr = 1;
	mem.r[0] = (struct mem_region){ .gpa = 0, .size = MEM, .hva = p };
	mem.total = MEM;
}

/* The legacy devices and the PCI bus of a VM, without KVM (as fuzz_pio has them). */
static void devs_setup(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->fd = -1;
	vm->serial_fd = -1;
	io_bus_init(&vm->pio);
	io_bus_init(&vm->mmio);
	vm->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	vm->serial = serial_create(vm, PORT_COM1, IRQ_COM1, -1);
	vm->rtc = rtc_create(vm);
	vm->pci = pci_bus_create(vm, 1ULL << 32, 1ULL << 30);
	if (vm->stop_efd < 0 || !vm->serial || !vm->rtc || !vm->pci || i8042_init(vm) ||
	    power_init(vm) || pvpanic_init(vm))
		abort();
}

static void devs_teardown(struct vm *vm)
{
	pci_bus_destroy(vm->pci);
	rtc_destroy(vm->rtc);
	serial_destroy(vm->serial);
	close(vm->stop_efd);
	io_bus_destroy(&vm->pio);
	io_bus_destroy(&vm->mmio);
}

static void pio(struct vm *vm, uint16_t port, unsigned int len, bool write, uint32_t v)
{
	uint8_t b[8] = { 0 };

	memcpy(b, &v, 4);
	io_bus_access(&vm->pio, port, b, len, write);
}

/*
 * What a guest can do first after the restore, with the loaded state as it is:
 * data ports before index ports (the RTC's 0x71 before 0x70), config data at the
 * loaded 0xcf8 address before moving it, then every BAR the load mapped.
 */
static void exercise(struct vm *vm)
{
	static const uint8_t vals[] = { 0x00, 0xff, 0x80, 0x0f };
	unsigned int i, p, b;

	for (i = 0; i < sizeof(vals); i++) {
		pio(vm, PORT_CMOS_INDEX + 1, 1, false, 0);
		pio(vm, PORT_CMOS_INDEX + 1, 1, true, vals[i]);
		for (p = 0; p < 8; p++) {
			pio(vm, PORT_COM1 + p, 1, false, 0);
			pio(vm, PORT_COM1 + p, 1, true, vals[i]);
		}
		for (p = 0; p < 4; p++)
			pio(vm, PORT_PCI_CONF_ADDR + 4 + p, 1, false, 0);
		pio(vm, PORT_PCI_CONF_ADDR + 4, 4, true, vals[i] * 0x01010101u);
		pio(vm, PORT_I8042_DATA, 1, false, 0);
		pio(vm, PORT_CMOS_INDEX, 1, true, 0x8e + i);
	}
	for (p = 0; p < PCI_MAX_DEVS; p++) {
		struct pci_dev *d = vm->pci->devs[p];

		if (!d)
			continue;
		for (b = 0; b < PCI_NUM_BARS; b++) {
			const struct pci_bar *bar = &d->bar[b];
			uint8_t v[8] = { 0 };

			if (!bar->mapped_at || !bar->size)
				continue;
			io_bus_access(bar->type == PCI_BAR_IO ? &vm->pio : &vm->mmio,
				      bar->mapped_at, v, 1, false);
			io_bus_access(bar->type == PCI_BAR_IO ? &vm->pio : &vm->mmio,
				      bar->mapped_at + bar->size - 1, v, 1, false);
		}
		for (i = 0; i < PCI_CFG_SIZE; i += 4) {
			pio(vm, PORT_PCI_CONF_ADDR, 4, true, 0x80000000u | p << 11 | i);
			pio(vm, PORT_PCI_CONF_ADDR + 4, 4, false, 0);
		}
	}
}

static void gen_seeds(const char *dir)
{
	static const char cfg[] = "[vm]\nmemory = 1M\nvcpus = 1\n";
	static char buf[64 << 10];
	char out[4096];
	struct vm vm;
	int d, n;

	devs_setup(&vm);
	/* A guest that used the devices a little: an RTC index, a divisor, BARs moved. */
	pio(&vm, PORT_CMOS_INDEX, 1, true, 0x20);
	pio(&vm, PORT_CMOS_INDEX + 1, 1, true, 0x5a);
	pio(&vm, PORT_COM1 + 3, 1, true, 0x83);
	pio(&vm, PORT_COM1, 1, true, 0x01);
	pio(&vm, PORT_COM1 + 3, 1, true, 0x03);
	pio(&vm, PORT_PCI_CONF_ADDR, 4, true, 0x80000800u | 0x3c);
	fdt_create_empty_tree(buf, sizeof(buf));
	st_put_u64(buf, 0, "version", SNAPSHOT_VERSION);
	d = st_add_node(buf, 0, "disks");
	n = st_add_node(buf, d, "disk@0");
	st_put_u64(buf, n, "format", DISK_RAW);
	fdt_setprop_string(buf, n, "image", "/dev/null");
	if (serial_save(vm.serial, buf, st_add_node(buf, 0, "serial")) ||
	    rtc_save(vm.rtc, buf, st_add_node(buf, 0, "rtc")) ||
	    pci_bus_save(vm.pci, buf, st_add_node(buf, 0, "pci")))
		exit(1);
	devs_teardown(&vm);
	fdt_pack(buf);
	for (int i = 0; i < 16384; i += 32)
		snprintf((char *)mem.r[0].hva + i, 32, "seed page text %d\n", i);
	for (int k = 0; k < 2; k++) {
		struct snapshot_save_opts o = { .compress = k == 0, .threads = 1 };

		snprintf(out, sizeof(out), "%s/seed-%s", dir, k ? "raw" : "lzo");
		if (snapshot_write(out, cfg, sizeof(cfg) - 1, buf, fdt_totalsize(buf), &mem, 1, &o,
				   NULL))
			exit(1);
	}
	exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("SNAPSHOT_GEN_SEEDS");

	(void)argc;
	(void)argv;
	log_verbosity = -2;
	map();
	if (seeds)
		gen_seeds(seeds);
	snprintf(path, sizeof(path), "/tmp/fuzz_snapshot.%d", (int)getpid());
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot *s = NULL;
	struct vm_config cfg;
	struct vm vm;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (!snapshot_open(path, &s)) {
		config_init(&cfg);
		snapshot_prepare_disks(s, &cfg, NULL);
		config_free(&cfg);
		devs_setup(&vm);
		if (!snapshot_load_devices(s, &vm))
			exercise(&vm);
		devs_teardown(&vm);
		if (madvise(mem.r[0].hva, MEM, MADV_DONTNEED))
			abort();
		/* The last byte picks eager or mapped restore; a mapping gets undone. */
		if (size && data[size - 1] & 1) {
			if (!snapshot_restore_memory(s, &mem, SNAPSHOT_MEM_MAP, false) &&
			    mmap(mem.r[0].hva, MEM, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
				abort();
		} else {
			snapshot_restore_memory(s, &mem, SNAPSHOT_MEM_EAGER, false);
		}
		snapshot_close(s);
	}
	unlink(path);
	return 0;
}
