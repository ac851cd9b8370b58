// SPDX-License-Identifier: GPL-2.0-or-later
/* VM assembly: [vsock] -> a virtio-vsock device with its Unix socket, a PCI function. */
#include <errno.h>
#include <string.h>

#include "log.h"
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
