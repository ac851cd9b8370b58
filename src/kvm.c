// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm.h"
#include "log.h"

#define CAP(x)                                                                                     \
	{                                                                                          \
		x, #x                                                                              \
	}
const struct kvm_cap_name kvm_required_caps[] = {
	CAP(KVM_CAP_USER_MEMORY),
	CAP(KVM_CAP_IRQCHIP),
	CAP(KVM_CAP_PIT2),
	CAP(KVM_CAP_SET_TSS_ADDR),
	CAP(KVM_CAP_SET_IDENTITY_MAP_ADDR),
	CAP(KVM_CAP_EXT_CPUID),
	CAP(KVM_CAP_MP_STATE),
	CAP(KVM_CAP_IRQ_ROUTING),
	CAP(KVM_CAP_IOEVENTFD),
	CAP(KVM_CAP_IRQFD),
	CAP(KVM_CAP_IMMEDIATE_EXIT),
	CAP(KVM_CAP_TSC_DEADLINE_TIMER),
};
const unsigned int kvm_nr_required_caps = sizeof(kvm_required_caps) / sizeof(kvm_required_caps[0]);

int kvm_check_extension(int fd, int cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

static int get_supported_cpuid(struct kvm_sys *k)
{
	unsigned int n = 128;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (ioctl(k->fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			k->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG || n >= 4096)
			return -errno;
		n *= 2;
	}
}

const char *kvm_dev_path(void)
{
	return getenv("MINIVMM_KVM_DEV") ?: "/dev/kvm";
}

int kvm_sys_open(struct kvm_sys *k)
{
	const char *dev = kvm_dev_path();
	unsigned int i;
	int ret, ver;

	memset(k, 0, sizeof(*k));
	k->fd = open(dev, O_RDWR | O_CLOEXEC);
	if (k->fd < 0) {
		ret = -errno;
		if (errno == ENOENT)
			pr_err("%s does not exist: KVM is not available (load kvm_intel or "
			       "kvm_amd, or enable virtualization in the firmware; without "
			       "either, run minivmm in a nested VM: tests/harness/in-vm.sh)",
			       dev);
		else if (errno == EACCES || errno == EPERM)
			pr_err("%s: permission denied (add yourself to the 'kvm' group)", dev);
		else
			pr_err("%s: %s", dev, strerror(errno));
		return ret;
	}
	ver = ioctl(k->fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		pr_err("%s: KVM API version %d, minivmm needs %d", dev, ver, KVM_API_VERSION);
		ret = -EINVAL;
		goto fail;
	}
	k->api_version = ver;
	for (i = 0; i < kvm_nr_required_caps; i++) {
		if (!kvm_check_extension(k->fd, kvm_required_caps[i].cap)) {
			pr_err("%s: KVM lacks the required capability %s", dev,
			       kvm_required_caps[i].name);
			ret = -ENOTSUP;
			goto fail;
		}
	}
	k->vcpu_mmap_size = ioctl(k->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->vcpu_mmap_size <= 0) {
		ret = -errno;
		pr_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		goto fail;
	}
	ret = get_supported_cpuid(k);
	if (ret) {
		pr_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(-ret));
		goto fail;
	}
	return 0;
fail:
	close(k->fd);
	k->fd = -1;
	return ret;
}

void kvm_sys_close(struct kvm_sys *k)
{
	free(k->cpuid);
	k->cpuid = NULL;
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}
