// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdlib.h>
#include <string.h>

#include "vcpu/cpuid.h"

#define F1_ECX_VMX	   (1U << 5)
#define F1_ECX_TSCDEADLINE (1U << 24)
#define F1_ECX_HYPERVISOR  (1U << 31)
#define F1_EDX_HTT	   (1U << 28)
#define X1_ECX_CMPLEGACY   (1U << 1)
#define X1_ECX_SVM	   (1U << 2)

#define TOPO_SMT  1
#define TOPO_CORE 2

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, unsigned int function, unsigned int index)
{
	unsigned int i;

	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
			continue;
		return e;
	}
	return NULL;
}

static const struct kvm_cpuid_entry2 *find_const(const struct kvm_cpuid2 *c, unsigned int fn)
{
	return cpuid_find((struct kvm_cpuid2 *)c, fn, 0);
}

bool cpuid_nested_supported(const struct kvm_cpuid2 *s)
{
	const struct kvm_cpuid_entry2 *e1 = find_const(s, 1), *x1 = find_const(s, 0x80000001);

	return (e1 && (e1->ecx & F1_ECX_VMX)) || (x1 && (x1->ecx & X1_ECX_SVM));
}

unsigned int cpuid_core_shift(unsigned int ncpus)
{
	unsigned int s = 0;

	while ((1U << s) < ncpus)
		s++;
	return s;
}

static bool is_amd(const struct kvm_cpuid2 *c)
{
	const struct kvm_cpuid_entry2 *e = find_const(c, 0);

	/* "AuthenticAMD" and "HygonGenuine" use AMD's topology leaves. */
	return e && (e->ebx == 0x68747541 || e->ebx == 0x6f677948);
}

/* Leaves 0xB and 0x1F: SMT level (1 thread) and core level (ncpus cores). */
static void set_ext_topology(struct kvm_cpuid2 *c, unsigned int fn, unsigned int apic,
			     unsigned int ncpus)
{
	unsigned int shift = cpuid_core_shift(ncpus), sub;

	for (sub = 0; sub < 3; sub++) {
		struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];

		memset(e, 0, sizeof(*e));
		e->function = fn;
		e->index = sub;
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e->edx = apic;
		e->ecx = sub;
		if (sub == 0) {
			e->eax = 0;
			e->ebx = 1;
			e->ecx |= TOPO_SMT << 8;
		} else if (sub == 1) {
			e->eax = shift;
			e->ebx = ncpus;
			e->ecx |= TOPO_CORE << 8;
		}
	}
}

static void drop_leaf(struct kvm_cpuid2 *c, unsigned int fn)
{
	unsigned int i, j = 0;

	for (i = 0; i < c->nent; i++)
		if (c->entries[i].function != fn)
			c->entries[j++] = c->entries[i];
	c->nent = j;
}

struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *s, unsigned int index, unsigned int ncpus,
			       bool nested_on, bool tsc_deadline)
{
	unsigned int shift = cpuid_core_shift(ncpus), max_basic = 0, i;
	struct kvm_cpuid_entry2 *e;
	struct kvm_cpuid2 *c;
	bool amd = is_amd(s);

	/* Room for the 2 x 3 topology entries we may add. */
	c = calloc(1, sizeof(*c) + (s->nent + 6) * sizeof(c->entries[0]));
	if (!c)
		return NULL;
	c->nent = s->nent;
	memcpy(c->entries, s->entries, s->nent * sizeof(c->entries[0]));

	e = cpuid_find(c, 0, 0);
	if (e)
		max_basic = e->eax;

	e = cpuid_find(c, 1, 0);
	if (e) {
		e->ebx &= 0x0000ffff;
		e->ebx |= index << 24 | (1U << shift) << 16;
		e->ecx |= F1_ECX_HYPERVISOR;
		if (tsc_deadline)
			e->ecx |= F1_ECX_TSCDEADLINE;
		if (!nested_on)
			e->ecx &= ~F1_ECX_VMX;
		if (ncpus > 1)
			e->edx |= F1_EDX_HTT;
		else
			e->edx &= ~F1_EDX_HTT;
	}

	/* Intel deterministic cache parameters: cores per package, sharing. */
	for (i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		if (e->function != 4 || !(e->eax & 0x1f))
			continue;
		e->eax &= 0x3fff;
		e->eax |= ((1U << shift) - 1) << 26;
		if (((e->eax >> 5) & 7) == 3) /* L3 is shared by the package */
			e->eax |= ((1U << shift) - 1) << 14;
	}

	drop_leaf(c, 0xb);
	drop_leaf(c, 0x1f);
	if (max_basic >= 0xb)
		set_ext_topology(c, 0xb, index, ncpus);
	if (max_basic >= 0x1f)
		set_ext_topology(c, 0x1f, index, ncpus);

	e = cpuid_find(c, 0x80000001, 0);
	if (e) {
		if (!nested_on)
			e->ecx &= ~X1_ECX_SVM;
		if (amd && ncpus > 1)
			e->ecx |= X1_ECX_CMPLEGACY;
		else
			e->ecx &= ~X1_ECX_CMPLEGACY;
	}
	if (!nested_on) {
		e = cpuid_find(c, 0x8000000a, 0);
		if (e)
			e->eax = e->ebx = e->ecx = e->edx = 0;
	}
	if (amd) {
		e = cpuid_find(c, 0x80000008, 0);
		if (e)
			e->ecx = (e->ecx & ~0xf0ffU) | shift << 12 | (ncpus - 1);
		e = cpuid_find(c, 0x8000001e, 0);
		if (e) {
			e->eax = index;
			e->ebx = index & 0xff; /* core id; threads per core - 1 = 0 */
			e->ecx = 0;
			e->edx = 0;
		}
	}
	return c;
}
