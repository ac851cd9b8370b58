/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Dispatch of guest port I/O and MMIO exits to device handlers. */
#ifndef MINIVMM_IOBUS_H
#define MINIVMM_IOBUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct io_ops {
	/* @off is relative to the registered base; @len is 1, 2, 4 or 8. */
	void (*read)(void *opaque, uint64_t off, void *data, unsigned int len);
	void (*write)(void *opaque, uint64_t off, const void *data, unsigned int len);
};

#define IO_BUS_MAX 64

struct io_range {
	uint64_t base, len;
	const struct io_ops *ops;
	void *opaque;
};

struct io_bus {
	pthread_rwlock_t lock; /* ranges move when the guest reprograms a BAR */
	struct io_range r[IO_BUS_MAX];
	unsigned int n;
};

void io_bus_init(struct io_bus *bus);
void io_bus_destroy(struct io_bus *bus);
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, const struct io_ops *ops,
		    void *opaque);
int io_bus_unregister(struct io_bus *bus, uint64_t base, void *opaque);
/* Returns false when nothing is mapped there (reads then see all-ones). */
bool io_bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned int len, bool is_write);

#endif
