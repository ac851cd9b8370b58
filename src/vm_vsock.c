// SPDX-License-Identifier: GPL-2.0-or-later
/* VM assembly: [vsock] -> a virtio-vsock device with its Unix socket, a PCI function. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "virtio/virtio_pci.h"
#include "virtio/vsock.h"
#include "vm.h"

int vm_add_vsock(struct vm *vm)
{
	const struct vsock_config *vc = &vm->cfg->vsock;
	struct virtio_vsock_opts o = {
		.name = "vsock",
		.cid = vc->cid,
		.uds_path = vc->socket,
		.thread_cpu = vm_host_cpu(vm, 0),
	};
	int ret;

	if (!vc->cid)
		return 0;
	ret = virtio_vsock_create(&vm->vsock, &vm->mem, &o);
	if (ret) {
		pr_err("[vsock]: cannot create the device: %s", strerror(-ret));
		return ret;
	}
	ret = virtio_pci_add(vm, virtio_vsock_virtio(vm->vsock));
	if (ret) {
		pr_err("[vsock]: cannot put it on the PCI bus: %s", strerror(-ret));
		return ret;
	}
	pr_info("vsock: guest CID %u, host side %s", vc->cid, vc->socket);
	return 0;
}

/* After the PCI bus is gone (it stopped the device). */
void vm_remove_vsock(struct vm *vm)
{
	virtio_vsock_destroy(vm->vsock);
	vm->vsock = NULL;
}

/*
 * A host connection to the guest's @port, as any client of the VM's vsock socket makes
 * one: connected, "CONNECT <port>" sent; the caller reads the "OK" (for the API's vsock
 * request, which hands the stream to its client).
 */
int vm_vsock_connect(struct vm *vm, uint32_t port, int *out)
{
	char line[32];
	int fd, n;

	if (!vm->vsock || !vm->cfg->vsock.socket)
		return -ENODEV;
	/* Our own listener: the connect does not wait for an accept. */
	fd = unix_connect(vm->cfg->vsock.socket, 0, 1000);
	if (fd < 0)
		return fd;
	n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (send(fd, line, n, MSG_NOSIGNAL) != n) {
		close(fd);
		return -EIO;
	}
	*out = fd;
	return 0;
}
