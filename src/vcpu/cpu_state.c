// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vCPU and in-kernel device state through KVM's get/set ioctls.
 *
 * Saved with the vCPUs parked outside KVM_RUN after an immediate_exit round
 * trip (so no I/O instruction is half done). Restored in the order KVM needs:
 * sregs before the nested state (EFER.SVME), the LAPIC before the MSRs (the
 * TSC deadline is relative to an enabled LAPIC timer), events and MP state last.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm.h"
#include "log.h"
#include "snapshot/state.h"
#include "util.h"
#include "vcpu/vcpu.h"
#include "vm.h"

#define MAX_MSRS 1024

static int get_msr_list(struct vm *vm, uint32_t **out, unsigned int *n)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	struct kvm_msr_list *l;

	/* E2BIG tells how many there are. */
	if (ioctl(vm->kvm->fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -errno;
	if (!probe.nmsrs || probe.nmsrs > MAX_MSRS)
		return -EINVAL;
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return -ENOMEM;
	l->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm->fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		int ret = -errno;

		free(l);
		return ret;
	}
	*n = l->nmsrs;
	*out = malloc(*n * sizeof(uint32_t));
	if (!*out) {
		free(l);
		return -ENOMEM;
	}
	memcpy(*out, l->indices, *n * sizeof(uint32_t));
	free(l);
	return 0;
}

/*
 * KVM_GET/SET_MSRS stop at the first MSR they cannot handle and return how
 * many they did; skip that one and go on, so one MSR this CPU model lacks does
 * not lose the rest.
 */
static int msrs_xfer(int fd, unsigned long req, struct kvm_msr_entry *e, unsigned int n,
		     unsigned int *done)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(*e));
	unsigned int i = 0, kept = 0;

	if (!m)
		return -ENOMEM;
	while (i < n) {
		int r;

		m->nmsrs = n - i;
		memcpy(m->entries, e + i, (n - i) * sizeof(*e));
		r = ioctl(fd, req, m);
		if (r < 0) {
			r = -errno;
			free(m);
			return r;
		}
		if (req == KVM_GET_MSRS)
			memcpy(e + kept, m->entries, r * sizeof(*e));
		kept += r;
		i += r;
		if (i < n) {
			pr_debug("MSR %#x: not %s by KVM, skipped", e[i].index,
				 req == KVM_GET_MSRS ? "readable" : "writable");
			i++;
		}
	}
	free(m);
	*done = kept;
	return 0;
}

#define MSR_IA32_TSC_DEADLINE 0x6e0

static int save_msrs(struct vcpu *v, void *fdt, int node)
{
	struct kvm_msr_entry *e;
	uint32_t *idx = NULL;
	unsigned int n = 0, i, got;
	int ret;

	ret = get_msr_list(v->vm, &idx, &n);
	if (ret)
		return ret;
	e = calloc(n, sizeof(*e));
	if (!e) {
		free(idx);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		e[i].index = idx[i];
	free(idx);
	ret = msrs_xfer(v->fd, KVM_GET_MSRS, e, n, &got);
	if (!ret)
		ret = st_put_blob(fdt, node, "msrs", e, got * sizeof(*e));
	free(e);
	return ret;
}

static int load_msrs(struct vcpu *v, const void *fdt, int node)
{
	int len;
	const void *p = st_get_raw(fdt, node, "msrs", &len);
	struct kvm_msr_entry *src, *e;
	unsigned int n, done, i, j = 0;
	int ret;

	if (!p || len < 0 || len % sizeof(*e) || len / sizeof(*e) > MAX_MSRS)
		return -EINVAL;
	n = len / sizeof(*e);
	/* Property data is only 4-byte aligned: work on aligned copies. */
	src = malloc(len ? len : 1);
	e = malloc(len ? len : 1);
	if (!src || !e) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(src, p, len);
	/* The TSC deadline last: it only sticks once the LAPIC timer mode is set. */
	for (i = 0; i < n; i++)
		if (src[i].index != MSR_IA32_TSC_DEADLINE)
			e[j++] = src[i];
	for (i = 0; i < n; i++)
		if (src[i].index == MSR_IA32_TSC_DEADLINE)
			e[j++] = src[i];
	ret = msrs_xfer(v->fd, KVM_SET_MSRS, e, n, &done);
	if (!ret && done != n)
		pr_debug("vcpu%u: %u of %u MSRs restored", v->id, done, n);
out:
	free(src);
	free(e);
	return ret;
}

/* Fixed-size KVM structures: saved as blobs of exactly their size. */
struct blob_io {
	const char *name;
	unsigned long get, set;
	size_t size;
};

static const struct blob_io fixed[] = {
	{ "sregs", KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs) },
	{ "regs", KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs) },
	{ "xcrs", KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs) },
	{ "lapic", KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state) },
	{ "debugregs", KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs) },
};

static const struct blob_io *blob(const char *name)
{
	unsigned int i;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (!strcmp(fixed[i].name, name))
			return &fixed[i];
	return NULL;
}

static int save_blob(struct vcpu *v, void *fdt, int node, const char *name)
{
	const struct blob_io *b = blob(name);
	uint8_t buf[sizeof(struct kvm_lapic_state) + sizeof(struct kvm_sregs)];

	memset(buf, 0, sizeof(buf));
	if (ioctl(v->fd, b->get, buf) < 0) {
		pr_err("vcpu%u: getting %s: %s", v->id, name, strerror(errno));
		return -errno;
	}
	return st_put_blob(fdt, node, name, buf, b->size);
}

static int load_blob(struct vcpu *v, const void *fdt, int node, const char *name)
{
	const struct blob_io *b = blob(name);
	uint8_t buf[sizeof(struct kvm_lapic_state) + sizeof(struct kvm_sregs)];

	if (st_get_blob(fdt, node, name, buf, b->size)) {
		pr_err("vcpu%u: %s missing or of the wrong size", v->id, name);
		return -EINVAL;
	}
	if (ioctl(v->fd, b->set, buf) < 0) {
		pr_err("vcpu%u: setting %s: %s", v->id, name, strerror(errno));
		return -errno;
	}
	return 0;
}

/* XSAVE2 (AMX-sized areas) when KVM has it, the 4 KiB legacy area otherwise. */
static size_t xsave_size(struct vcpu *v)
{
	int n = kvm_check_extension(v->vm->fd, KVM_CAP_XSAVE2);

	return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

static int save_xsave(struct vcpu *v, void *fdt, int node)
{
	size_t n = xsave_size(v);
	void *buf = calloc(1, n);
	int ret;

	if (!buf)
		return -ENOMEM;
	if (ioctl(v->fd, n > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, buf) < 0)
		ret = -errno;
	else
		ret = st_put_blob(fdt, node, "xsave", buf, n);
	free(buf);
	return ret;
}

static int load_xsave(struct vcpu *v, const void *fdt, int node)
{
	size_t n = xsave_size(v);
	void *buf = calloc(1, n);
	int ret = -EINVAL;

	if (!buf)
		return -ENOMEM;
	if (st_get_blob(fdt, node, "xsave", buf, n))
		pr_err("vcpu%u: FPU/XSAVE state missing or of another size (another host CPU?)",
		       v->id);
	else
		ret = ioctl(v->fd, KVM_SET_XSAVE, buf) < 0 ? -errno : 0;
	free(buf);
	return ret;
}

static int save_nested(struct vcpu *v, void *fdt, int node)
{
	int max = kvm_check_extension(v->vm->fd, KVM_CAP_NESTED_STATE);
	struct kvm_nested_state *ns;
	int ret;

	if (!v->vm->nested || max < (int)sizeof(*ns))
		return 0;
	ns = calloc(1, max);
	if (!ns)
		return -ENOMEM;
	ns->size = max;
	if (ioctl(v->fd, KVM_GET_NESTED_STATE, ns) < 0) {
		ret = -errno;
		pr_err("vcpu%u: KVM_GET_NESTED_STATE: %s", v->id, strerror(errno));
	} else {
		ret = st_put_blob(fdt, node, "nested", ns, MIN(ns->size, (uint32_t)max));
	}
	free(ns);
	return ret;
}

static int load_nested(struct vcpu *v, const void *fdt, int node)
{
	int len, max = kvm_check_extension(v->vm->fd, KVM_CAP_NESTED_STATE);
	const void *p = st_get_raw(fdt, node, "nested", &len);
	struct kvm_nested_state *ns;
	int ret = 0;

	if (!p)
		return 0;
	if (len < (int)sizeof(*ns) || len > max) {
		pr_err("vcpu%u: nested state of %d bytes does not fit this KVM", v->id, len);
		return -EINVAL;
	}
	ns = calloc(1, max);
	if (!ns)
		return -ENOMEM;
	memcpy(ns, p, len);
	if (ns->size != (uint32_t)len) {
		ret = -EINVAL;
	} else if (ioctl(v->fd, KVM_SET_NESTED_STATE, ns) < 0) {
		ret = -errno;
		pr_err("vcpu%u: KVM_SET_NESTED_STATE: %s", v->id, strerror(errno));
	}
	free(ns);
	return ret;
}

int vcpu_state_save(struct vcpu *v, void *fdt, int node)
{
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	int ret;

	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0 || ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0)
		return -errno;
	ret = save_blob(v, fdt, node, "regs") ?: save_blob(v, fdt, node, "sregs") ?:
	      save_blob(v, fdt, node, "xcrs") ?: save_blob(v, fdt, node, "lapic") ?:
	      save_blob(v, fdt, node, "debugregs") ?: save_xsave(v, fdt, node) ?:
	      save_msrs(v, fdt, node) ?: save_nested(v, fdt, node) ?:
	      st_put_blob(fdt, node, "events", &ev, sizeof(ev)) ?:
	      st_put_u64(fdt, node, "mp-state", mp.mp_state);
	return ret;
}

/* The states an x86 vCPU can be saved in: KVM stores others as they come. */
static bool mp_state_ok(uint64_t m)
{
	switch (m) {
	case KVM_MP_STATE_RUNNABLE:
	case KVM_MP_STATE_UNINITIALIZED:
	case KVM_MP_STATE_INIT_RECEIVED:
	case KVM_MP_STATE_HALTED:
	case KVM_MP_STATE_SIPI_RECEIVED:
	case KVM_MP_STATE_AP_RESET_HOLD:
	case KVM_MP_STATE_SUSPENDED:
		return true;
	default:
		return false;
	}
}

int vcpu_state_load(struct vcpu *v, const void *fdt, int node)
{
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	uint64_t m;
	int ret;

	if (st_get_blob(fdt, node, "events", &ev, sizeof(ev)) ||
	    st_get_u64(fdt, node, "mp-state", &m) || !mp_state_ok(m)) {
		pr_err("vcpu%u: events or MP state missing or invalid", v->id);
		return -EINVAL;
	}
	mp.mp_state = (uint32_t)m;
	ret = load_blob(v, fdt, node, "sregs") ?: load_nested(v, fdt, node) ?:
	      load_blob(v, fdt, node, "regs") ?: load_xsave(v, fdt, node) ?:
	      load_blob(v, fdt, node, "xcrs") ?: load_blob(v, fdt, node, "lapic") ?:
	      load_msrs(v, fdt, node);
	if (ret)
		return ret;
	ev.flags &= KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
		    KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0) {
		/* Older KVMs reject flags they do not know; the basic set must work. */
		ev.flags &= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
			    KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
		if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0) {
			pr_err("vcpu%u: KVM_SET_VCPU_EVENTS: %s", v->id, strerror(errno));
			return -errno;
		}
	}
	if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0) {
		pr_err("vcpu%u: KVM_SET_MP_STATE: %s", v->id, strerror(errno));
		return -errno;
	}
	return load_blob(v, fdt, node, "debugregs");
}

static const char *const chip_names[] = { "pic-master", "pic-slave", "ioapic" };

int vm_kvm_state_save(struct vm *vm, void *fdt, int node)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clk;
	unsigned int i;
	int ret;

	for (i = 0; i < 3; i++) {
		struct kvm_irqchip chip = { .chip_id = i };

		if (ioctl(vm->fd, KVM_GET_IRQCHIP, &chip) < 0)
			return -errno;
		ret = st_put_blob(fdt, node, chip_names[i], &chip.chip, sizeof(chip.chip));
		if (ret)
			return ret;
	}
	memset(&clk, 0, sizeof(clk));
	if (ioctl(vm->fd, KVM_GET_PIT2, &pit) < 0 || ioctl(vm->fd, KVM_GET_CLOCK, &clk) < 0)
		return -errno;
	return st_put_blob(fdt, node, "pit", &pit, sizeof(pit))
		   ?: st_put_u64(fdt, node, "kvmclock", clk.clock);
}

int vm_kvm_state_load(struct vm *vm, const void *fdt, int node)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clk;
	uint64_t ns;
	unsigned int i;

	for (i = 0; i < 3; i++) {
		struct kvm_irqchip chip = { .chip_id = i };

		if (st_get_blob(fdt, node, chip_names[i], &chip.chip, sizeof(chip.chip))) {
			pr_err("snapshot: %s state missing", chip_names[i]);
			return -EINVAL;
		}
		if (ioctl(vm->fd, KVM_SET_IRQCHIP, &chip) < 0) {
			pr_err("KVM_SET_IRQCHIP %s: %s", chip_names[i], strerror(errno));
			return -errno;
		}
	}
	if (st_get_blob(fdt, node, "pit", &pit, sizeof(pit)) ||
	    st_get_u64(fdt, node, "kvmclock", &ns)) {
		pr_err("snapshot: PIT or kvmclock state missing");
		return -EINVAL;
	}
	if (ioctl(vm->fd, KVM_SET_PIT2, &pit) < 0) {
		pr_err("KVM_SET_PIT2: %s", strerror(errno));
		return -errno;
	}
	/* The guest's clock goes on from where it was saved: never backwards. */
	memset(&clk, 0, sizeof(clk));
	clk.clock = ns;
	if (ioctl(vm->fd, KVM_SET_CLOCK, &clk) < 0) {
		pr_err("KVM_SET_CLOCK: %s", strerror(errno));
		return -errno;
	}
	return 0;
}
