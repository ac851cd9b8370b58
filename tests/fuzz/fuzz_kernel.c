// SPDX-License-Identifier: GPL-2.0-or-later
/* Fuzz the kernel loaders: arbitrary bytes as the [boot] kernel file (bzImage
 * header checks, ELF program headers and notes, PVH start info). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "vcpu/boot.h"
#include "vm.h"

static struct vm vm;
static struct vm_config cfg;
static char path[64];
static int fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct boot_info bi;
	struct bzimage bz;

	if (fd < 0) {
		log_verbosity = -2; /* errors are the expected outcome here */
		fd = memfd_create("kernel", 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		cfg.kernel = path;
		cfg.cmdline = "console=ttyS0";
		cfg.decompress = DECOMPRESS_GUEST;
		vm.cfg = &cfg;
		if (guest_mem_init(&vm.mem, 64 << 20))
			abort();
	}
	bzimage_parse(data, size, &bz);
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	boot_load(&vm, &bi);
	return 0;
}
