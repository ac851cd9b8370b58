// SPDX-License-Identifier: GPL-2.0-or-later
/* VM assembly: [vm] rng = on -> a virtio-rng device, a PCI function. */
#include <string.h>

#include "log.h"
#include "virtio/virtio_pci.h"
#include "virtio/rng.h"
#include "vm.h"

int vm_add_rng(struct vm *vm)
{
	struct virtio_rng_opts o = { .name = "rng", .thread_cpu = vm_host_cpu(vm, 0) };
	int ret;

	if (!vm->cfg->rng)
		return 0;
	ret = virtio_rng_create(&vm->rng, &vm->mem, &o);
	if (ret) {
		pr_err("[vm] rng: cannot create the device: %s", strerror(-ret));
		return ret;
	}
	ret = virtio_pci_add(vm, virtio_rng_virtio(vm->rng));
	if (ret)
		pr_err("[vm] rng: cannot put it on the PCI bus: %s", strerror(-ret));
	return ret;
}

/* After the PCI bus is gone (it stopped the device). */
void vm_remove_rng(struct vm *vm)
{
	struct virtio_rng_stats st;

	if (!vm->rng)
		return;
	virtio_rng_stats(vm->rng, &st);
	pr_debug("rng: %llu requests, %llu bytes, %llu bad", (unsigned long long)st.requests,
		 (unsigned long long)st.bytes, (unsigned long long)st.bad_chains);
	virtio_rng_destroy(vm->rng);
	vm->rng = NULL;
}
