// SPDX-License-Identifier: GPL-2.0-or-later
/* CPUID policy: topology (APIC IDs, leaves 1/4/0xB/0x1F/AMD), nested, flags. */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vcpu/cpuid.h"
#include "unit.h"

#define SIG	     KVM_CPUID_FLAG_SIGNIFCANT_INDEX
#define F1_ECX_VMX   (1U << 5)
#define F1_ECX_TSCDL (1U << 24)
#define F1_ECX_HV    (1U << 31)
#define F1_EDX_HTT   (1U << 28)
#define X1_ECX_CMPL  (1U << 1)
#define X1_ECX_SVM   (1U << 2)

enum vendor { AMD, INTEL, HYGON };

/* Host-like values the policy must overwrite or keep. */
#define L1_EAX 0x00a20f12U
#define L1_EBX 0x7f400800U /* APIC ID 0x7f, 64 logical, CLFLUSH 8 */
#define L1_ECX 0x7ed8320bU /* no VMX, no TSC deadline, no hypervisor */
#define L1_EDX 0x178bfbffU /* HTT set */
#define X8_ECX 0x00037a3fU /* host: 64 threads, shift 7, other bits to keep */
#define XA_EDX 0x1ebfbcffU
#define XE_EAX 0x0000004dU
#define X1_ECX (0x75c237f9U | X1_ECX_CMPL) /* no SVM; CmpLegacy as on a big host */

static struct kvm_cpuid2 *alloc_table(unsigned int max)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(c->entries[0]));

	ck_assert_ptr_nonnull(c);
	return c;
}

static void add(struct kvm_cpuid2 *c, unsigned int fn, unsigned int idx, unsigned int flags,
		unsigned int eax, unsigned int ebx, unsigned int ecx, unsigned int edx)
{
	struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];

	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = flags;
	e->eax = eax;
	e->ebx = ebx;
	e->ecx = ecx;
	e->edx = edx;
}

/* What KVM_GET_SUPPORTED_CPUID could return on a host of @v with @max_basic. */
static struct kvm_cpuid2 *host_table(enum vendor v, unsigned int max_basic, bool virt)
{
	struct kvm_cpuid2 *c = alloc_table(64);
	static const unsigned int vendors[][3] = {
		[AMD] = { 0x68747541, 0x69746e65, 0x444d4163 },	  /* AuthenticAMD */
		[INTEL] = { 0x756e6547, 0x49656e69, 0x6c65746e }, /* GenuineIntel */
		[HYGON] = { 0x6f677948, 0x656e6975, 0x6e65476e }, /* HygonGenuine */
	};

	add(c, 0, 0, 0, max_basic, vendors[v][0], vendors[v][2], vendors[v][1]);
	add(c, 1, 0, 0, L1_EAX, L1_EBX, L1_ECX | (v == INTEL && virt ? F1_ECX_VMX : 0), L1_EDX);
	/* Leaf 4: L1d, L1i, L2, L3, then the null terminator; garbage in the
	 * topology fields (bits 31:14). */
	add(c, 4, 0, SIG, 0xfc03c121, 0x01c0003f, 0x3f, 0);
	add(c, 4, 1, SIG, 0xfc03c122, 0x01c0003f, 0x3f, 0);
	add(c, 4, 2, SIG, 0xfc03c143, 0x01c0003f, 0x3ff, 0);
	add(c, 4, 3, SIG, 0xfc0fc163, 0x03c0003f, 0x7fff, 6);
	add(c, 4, 4, SIG, 0, 0, 0, 0);
	add(c, 7, 0, SIG, 0, 0x219c91a9, 0x0040069c, 0);
	/* Host topology (2 threads per core, 64 threads): must all be replaced. */
	add(c, 0xb, 0, SIG, 1, 2, 0x100, 0x7f);
	add(c, 0xb, 1, SIG, 7, 64, 0x201, 0x7f);
	add(c, 0xb, 2, SIG, 0, 0, 2, 0x7f);
	add(c, 0x1f, 0, SIG, 1, 2, 0x100, 0x7f);
	add(c, 0x1f, 1, SIG, 4, 16, 0x201, 0x7f);
	add(c, 0x1f, 2, SIG, 7, 64, 0x502, 0x7f); /* die level */
	add(c, 0x1f, 3, SIG, 0, 0, 3, 0x7f);
	add(c, 0x80000000, 0, 0, 0x80000021, vendors[v][0], vendors[v][2], vendors[v][1]);
	add(c, 0x80000001, 0, 0, 0x00a20f12, 0, X1_ECX | (v != INTEL && virt ? X1_ECX_SVM : 0),
	    0x2fd3fbff);
	add(c, 0x80000008, 0, 0, 0x3030, 0x1ef257, X8_ECX, 0);
	add(c, 0x8000000a, 0, 0, 1, 0x8000, 0, XA_EDX);
	add(c, 0x8000001e, 0, 0, XE_EAX, 0x0106, 0x0300, 0);
	return c;
}

static unsigned int count_fn(const struct kvm_cpuid2 *c, unsigned int fn)
{
	unsigned int i, n = 0;

	for (i = 0; i < c->nent; i++)
		n += c->entries[i].function == fn;
	return n;
}

static struct kvm_cpuid_entry2 *get(struct kvm_cpuid2 *c, unsigned int fn, unsigned int idx)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, fn, idx);

	ck_assert_msg(e, "leaf %#x.%u missing", fn, idx);
	return e;
}

static void check_topo_leaf(struct kvm_cpuid2 *c, unsigned int fn, unsigned int index,
			    unsigned int ncpus)
{
	unsigned int shift = cpuid_core_shift(ncpus), sub;
	struct kvm_cpuid_entry2 *e;

	ck_assert_uint_eq(count_fn(c, fn), 3);
	for (sub = 0; sub < 3; sub++) {
		e = get(c, fn, sub);
		ck_assert_uint_eq(e->index, sub);
		ck_assert_uint_eq(e->flags & SIG, SIG);
		ck_assert_uint_eq(e->edx, index);
		ck_assert_uint_eq(e->ecx & 0xff, sub);
	}
	e = get(c, fn, 0); /* SMT: one thread per core */
	ck_assert_uint_eq((e->ecx >> 8) & 0xff, 1);
	ck_assert_uint_eq(e->eax & 0x1f, 0);
	ck_assert_uint_eq(e->ebx & 0xffff, 1);
	e = get(c, fn, 1); /* core: ncpus cores in the package */
	ck_assert_uint_eq((e->ecx >> 8) & 0xff, 2);
	ck_assert_uint_eq(e->eax & 0x1f, shift);
	ck_assert_uint_ge(1U << (e->eax & 0x1f), ncpus);
	ck_assert_uint_eq(e->ebx & 0xffff, ncpus);
	e = get(c, fn, 2); /* end of the list */
	ck_assert_uint_eq((e->ecx >> 8) & 0xff, 0);
	ck_assert_uint_eq(e->eax, 0);
	ck_assert_uint_eq(e->ebx, 0);
	/* No subleaf 3 left over from the host's table. */
	ck_assert_ptr_null(cpuid_find(c, fn, 3));
}

static void check_one(enum vendor v, unsigned int index, unsigned int ncpus, bool nested,
		      bool tscdl)
{
	struct kvm_cpuid2 *s = host_table(v, 0x1f, true), *copy, *c;
	unsigned int shift = cpuid_core_shift(ncpus), logical, sub;
	size_t bytes = sizeof(*s) + s->nent * sizeof(s->entries[0]);
	struct kvm_cpuid_entry2 *e, *h;
	bool amd = v != INTEL;

	copy = malloc(bytes);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, s, bytes);
	c = cpuid_build(s, index, ncpus, nested, tscdl);
	ck_assert_ptr_nonnull(c);
	/* The supported table is shared by all vCPUs: untouched. */
	ck_assert_mem_eq(s, copy, bytes);
	/* 0xB and 0x1F replaced by 3 subleaves each, nothing else added or lost. */
	ck_assert_uint_eq(c->nent, s->nent - 7 + 6);

	/* Leaf 1. */
	e = get(c, 1, 0);
	ck_assert_uint_eq(e->eax, L1_EAX);
	ck_assert_uint_eq(e->ebx >> 24, index);
	logical = (e->ebx >> 16) & 0xff;
	ck_assert_uint_ge(logical, ncpus);
	ck_assert_uint_eq(logical & (logical - 1), 0);
	ck_assert_uint_lt(logical, 2 * ncpus);
	ck_assert_uint_eq(e->ebx & 0xffff, L1_EBX & 0xffff);
	ck_assert_uint_eq(!!(e->edx & F1_EDX_HTT), ncpus > 1);
	ck_assert_uint_eq(e->edx & ~F1_EDX_HTT, L1_EDX & ~F1_EDX_HTT);
	ck_assert(e->ecx & F1_ECX_HV);
	ck_assert_uint_eq(!!(e->ecx & F1_ECX_TSCDL), tscdl);
	ck_assert_uint_eq(!!(e->ecx & F1_ECX_VMX), v == INTEL && nested);
	ck_assert_uint_eq(e->ecx & ~(F1_ECX_HV | F1_ECX_TSCDL | F1_ECX_VMX), L1_ECX);

	/* Leaf 4: cores per package in every cache, L3 shared by all of them. */
	for (sub = 0; sub < 4; sub++) {
		e = get(c, 4, sub);
		h = cpuid_find(s, 4, sub);
		ck_assert_uint_eq(e->eax >> 26, (1U << shift) - 1);
		ck_assert_uint_eq(e->eax & 0x3fff, h->eax & 0x3fff);
		ck_assert_uint_eq((e->eax >> 14) & 0xfff, sub == 3 ? (1U << shift) - 1 : 0);
		ck_assert_uint_eq(e->ebx, h->ebx);
		ck_assert_uint_eq(e->ecx, h->ecx);
	}
	ck_assert_uint_eq(get(c, 4, 4)->eax, 0);

	check_topo_leaf(c, 0xb, index, ncpus);
	check_topo_leaf(c, 0x1f, index, ncpus);

	/* Extended leaves. */
	e = get(c, 0x80000001, 0);
	ck_assert_uint_eq(!!(e->ecx & X1_ECX_SVM), amd && nested);
	ck_assert_uint_eq(!!(e->ecx & X1_ECX_CMPL), amd && ncpus > 1);
	ck_assert_uint_eq(e->ecx & ~(X1_ECX_SVM | X1_ECX_CMPL), X1_ECX & ~X1_ECX_CMPL);
	ck_assert_uint_eq(e->edx, 0x2fd3fbff);
	e = get(c, 0x8000000a, 0);
	if (nested) {
		ck_assert_uint_eq(e->eax, 1);
		ck_assert_uint_eq(e->ebx, 0x8000);
		ck_assert_uint_eq(e->edx, XA_EDX);
	} else {
		ck_assert_uint_eq(e->eax | e->ebx | e->ecx | e->edx, 0);
	}
	e = get(c, 0x80000008, 0);
	ck_assert_uint_eq(e->eax, 0x3030);
	if (amd) {
		ck_assert_uint_eq(e->ecx & 0xff, ncpus - 1);
		ck_assert_uint_eq((e->ecx >> 12) & 0xf, shift);
		ck_assert_uint_eq(e->ecx & ~0xf0ffU, X8_ECX & ~0xf0ffU);
	} else {
		ck_assert_uint_eq(e->ecx, X8_ECX);
	}
	e = get(c, 0x8000001e, 0);
	if (amd) {
		ck_assert_uint_eq(e->eax, index);
		ck_assert_uint_eq(e->ebx & 0xff, index);    /* core ID */
		ck_assert_uint_eq((e->ebx >> 8) & 0xff, 0); /* 1 thread per core */
	} else {
		ck_assert_uint_eq(e->eax, XE_EAX);
	}
	/* Leaves the policy does not care about are copied verbatim. */
	ck_assert_mem_eq(get(c, 0, 0), cpuid_find(s, 0, 0), sizeof(*e));
	ck_assert_mem_eq(get(c, 7, 0), cpuid_find(s, 7, 0), sizeof(*e));
	ck_assert_mem_eq(get(c, 0x80000000, 0), cpuid_find(s, 0x80000000, 0), sizeof(*e));
	free(c);
	free(copy);
	free(s);
}

static const unsigned int counts[] = { 1, 2, 3, 5, 8, 64 };

static void check_vendor(enum vendor v)
{
	unsigned int i, index, mode;

	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		for (index = 0; index < counts[i]; index++)
			for (mode = 0; mode < 4; mode++)
				check_one(v, index, counts[i], mode & 1, mode & 2);
}

START_TEST(test_amd)
{
	check_vendor(AMD);
}
END_TEST

START_TEST(test_intel)
{
	check_vendor(INTEL);
}
END_TEST

START_TEST(test_hygon)
{
	/* Hygon uses AMD's topology leaves. */
	check_one(HYGON, 2, 3, false, true);
	check_one(HYGON, 7, 8, true, false);
}
END_TEST

START_TEST(test_spec_values)
{
	/* Spot checks with the numbers written out. */
	struct kvm_cpuid2 *s = host_table(AMD, 0x1f, true), *c;

	c = cpuid_build(s, 2, 3, false, true);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(get(c, 1, 0)->ebx >> 16, 0x0204);
	ck_assert_uint_eq(get(c, 0xb, 1)->eax, 2);
	ck_assert_uint_eq(get(c, 0xb, 1)->ebx, 3);
	ck_assert_uint_eq(get(c, 0xb, 1)->ecx, 0x201);
	ck_assert_uint_eq(get(c, 0xb, 0)->ecx, 0x100);
	ck_assert_uint_eq(get(c, 0x1f, 2)->ecx, 2);
	ck_assert_uint_eq(get(c, 0x80000008, 0)->ecx & 0xf0ff, 0x2002);
	ck_assert_uint_eq(get(c, 0x8000001e, 0)->eax, 2);
	free(c);

	c = cpuid_build(s, 0, 1, true, false);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(get(c, 1, 0)->ebx >> 16, 0x0001);
	ck_assert_uint_eq(get(c, 1, 0)->edx & F1_EDX_HTT, 0);
	ck_assert_uint_eq(get(c, 0xb, 1)->eax, 0);
	ck_assert_uint_eq(get(c, 0xb, 1)->ebx, 1);
	ck_assert_uint_eq(get(c, 0x80000008, 0)->ecx & 0xf0ff, 0);
	ck_assert(get(c, 0x80000001, 0)->ecx & X1_ECX_SVM);
	free(c);

	c = cpuid_build(s, 7, 8, false, false);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(get(c, 1, 0)->ebx >> 16, 0x0708);
	ck_assert_uint_eq(get(c, 0x1f, 1)->eax, 3);
	ck_assert_uint_eq(get(c, 0x1f, 0)->edx, 7);
	ck_assert_uint_eq(get(c, 0x80000008, 0)->ecx & 0xf0ff, 0x3007);
	ck_assert_uint_eq(get(c, 0x80000001, 0)->ecx & X1_ECX_SVM, 0);
	free(c);
	free(s);
}
END_TEST

START_TEST(test_max_basic)
{
	struct kvm_cpuid2 *s, *c;

	/* Max basic leaf 0xd: 0xB is synthesized, 0x1F is not (and the host's goes). */
	s = host_table(INTEL, 0xd, false);
	c = cpuid_build(s, 1, 2, false, false);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(count_fn(c, 0xb), 3);
	ck_assert_uint_eq(count_fn(c, 0x1f), 0);
	check_topo_leaf(c, 0xb, 1, 2);
	free(c);
	free(s);

	/* Max basic leaf 7: neither. */
	s = host_table(AMD, 7, false);
	c = cpuid_build(s, 0, 4, false, false);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(count_fn(c, 0xb), 0);
	ck_assert_uint_eq(count_fn(c, 0x1f), 0);
	ck_assert_uint_eq(c->nent, s->nent - 7);
	free(c);
	free(s);

	/* An empty table stays empty. */
	s = alloc_table(0);
	c = cpuid_build(s, 0, 1, false, false);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->nent, 0);
	free(c);
	free(s);
}
END_TEST

START_TEST(test_nested_supported)
{
	struct kvm_cpuid2 *s;

	s = host_table(AMD, 0x1f, true);
	ck_assert(cpuid_nested_supported(s));
	free(s);
	s = host_table(AMD, 0x1f, false);
	ck_assert(!cpuid_nested_supported(s));
	free(s);
	s = host_table(INTEL, 0x1f, true);
	ck_assert(cpuid_nested_supported(s));
	free(s);
	s = host_table(INTEL, 0x1f, false);
	ck_assert(!cpuid_nested_supported(s));
	free(s);

	s = alloc_table(2);
	ck_assert(!cpuid_nested_supported(s));
	add(s, 0x80000001, 0, 0, 0, 0, X1_ECX_SVM, 0);
	ck_assert(cpuid_nested_supported(s));
	s->nent = 0;
	add(s, 1, 0, 0, 0, 0, F1_ECX_VMX, 0);
	ck_assert(cpuid_nested_supported(s));
	free(s);
}
END_TEST

START_TEST(test_core_shift)
{
	ck_assert_uint_eq(cpuid_core_shift(0), 0);
	ck_assert_uint_eq(cpuid_core_shift(1), 0);
	ck_assert_uint_eq(cpuid_core_shift(2), 1);
	ck_assert_uint_eq(cpuid_core_shift(3), 2);
	ck_assert_uint_eq(cpuid_core_shift(4), 2);
	ck_assert_uint_eq(cpuid_core_shift(5), 3);
	ck_assert_uint_eq(cpuid_core_shift(8), 3);
	ck_assert_uint_eq(cpuid_core_shift(9), 4);
	ck_assert_uint_eq(cpuid_core_shift(63), 6);
	ck_assert_uint_eq(cpuid_core_shift(64), 6);
	ck_assert_uint_eq(cpuid_core_shift(65), 7);
}
END_TEST

START_TEST(test_find)
{
	struct kvm_cpuid2 *s = host_table(INTEL, 0x1f, false);

	/* Significant index: exact subleaf; otherwise any index finds the leaf. */
	ck_assert_uint_eq(cpuid_find(s, 4, 3)->eax, 0xfc0fc163);
	ck_assert_ptr_null(cpuid_find(s, 4, 5));
	ck_assert_ptr_nonnull(cpuid_find(s, 1, 5));
	ck_assert_ptr_eq(cpuid_find(s, 1, 5), cpuid_find(s, 1, 0));
	ck_assert_ptr_null(cpuid_find(s, 0x40000000, 0));
	free(s);
}
END_TEST

static Suite *cpuid_suite(void)
{
	Suite *s = suite_create("cpuid");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_amd);
	tcase_add_test(tc, test_intel);
	tcase_add_test(tc, test_hygon);
	tcase_add_test(tc, test_spec_values);
	tcase_add_test(tc, test_max_basic);
	tcase_add_test(tc, test_nested_supported);
	tcase_add_test(tc, test_core_shift);
	tcase_add_test(tc, test_find);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(cpuid_suite());
}
