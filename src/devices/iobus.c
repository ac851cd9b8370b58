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

bool io_bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned int len, bool is_write)
{
	bool found = false;
	unsigned int i;

	pthread_rwlock_rdlock(&bus->lock);
	for (i = 0; i < bus->n; i++) {
		struct io_range *r = &bus->r[i];

		/* An access must fall entirely inside one device's range. */
		if (addr < r->base || addr - r->base >= r->len || len > r->len - (addr - r->base))
			continue;
		if (is_write) {
			if (r->ops->write)
				r->ops->write(r->opaque, addr - r->base, data, len);
		} else if (r->ops->read) {
			r->ops->read(r->opaque, addr - r->base, data, len);
		} else {
			memset(data, 0xff, len);
		}
		found = true;
		break;
	}
	pthread_rwlock_unlock(&bus->lock);
	if (!found && !is_write)
		memset(data, 0xff, len);
	return found;
}
