// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <string.h>

#include "devices/iobus.h"

void io_bus_init(struct io_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	pthread_rwlock_init(&bus->lock, NULL);
}

void io_bus_destroy(struct io_bus *bus)
{
	pthread_rwlock_destroy(&bus->lock);
}

static bool overlaps(const struct io_range *r, uint64_t base, uint64_t len)
{
	return base < r->base + r->len && r->base < base + len;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, const struct io_ops *ops,
		    void *opaque)
{
	unsigned int i;
	int ret = 0;

	if (!len || base + len < base)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	for (i = 0; i < bus->n; i++) {
		if (overlaps(&bus->r[i], base, len)) {
			ret = -EBUSY;
			goto out;
		}
	}
	if (bus->n == IO_BUS_MAX) {
		ret = -ENOSPC;
		goto out;
	}
	bus->r[bus->n++] = (struct io_range){ base, len, ops, opaque };
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int io_bus_unregister(struct io_bus *bus, uint64_t base, void *opaque)
{
	unsigned int i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	for (i = 0; i < bus->n; i++) {
		if (bus->r[i].base == base && bus->r[i].opaque == opaque) {
			bus->r[i] = bus->r[--bus->n];
			ret = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

/*
 * The handler runs without the lock: a handler may move a range on its own bus (a PCI
 * config write through ports 0xcf8/0xcfc that moves an I/O BAR), which would otherwise wait
 * for its own read lock. A range can be gone by the time its handler runs (a BAR moved by
 * another vCPU): the device then sees one access at its old place, as real hardware may.
 * Devices outlive the vCPU threads, the only callers.
 */
bool io_bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned int len, bool is_write)
{
	struct io_range r = { 0 };
	bool found = false;
	unsigned int i;

	pthread_rwlock_rdlock(&bus->lock);
	for (i = 0; i < bus->n; i++) {
		const struct io_range *c = &bus->r[i];

		/* An access must fall entirely inside one device's range. */
		if (addr < c->base || addr - c->base >= c->len || len > c->len - (addr - c->base))
			continue;
		r = *c;
		found = true;
		break;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (!found) {
		if (!is_write)
			memset(data, 0xff, len);
		return false;
	}
	if (is_write) {
		if (r.ops->write)
			r.ops->write(r.opaque, addr - r.base, data, len);
	} else if (r.ops->read) {
		r.ops->read(r.opaque, addr - r.base, data, len);
	} else {
		memset(data, 0xff, len);
	}
	return true;
}
