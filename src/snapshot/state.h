/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Device and CPU state in a snapshot: one libfdt tree, one node per object,
 * named properties. Readers check every property's presence and exact size;
 * the tree itself was checked with fdt_check_full() before anyone reads it.
 */
#ifndef MINIVMM_SNAPSHOT_STATE_H
#define MINIVMM_SNAPSHOT_STATE_H

#include <libfdt.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;

int st_put_u64(void *fdt, int node, const char *name, uint64_t v);
int st_get_u64(const void *fdt, int node, const char *name, uint64_t *v);
int st_put_u32(void *fdt, int node, const char *name, uint32_t v);
int st_get_u32(const void *fdt, int node, const char *name, uint32_t *v);
int st_put_blob(void *fdt, int node, const char *name, const void *p, size_t len);
/* Copies exactly @len bytes; -EINVAL when the property is missing or of another size. */
int st_get_blob(const void *fdt, int node, const char *name, void *p, size_t len);
/* The property's bytes and length (NULL when missing). */
const void *st_get_raw(const void *fdt, int node, const char *name, int *len);
/*
 * Writers return -ENOSPC when the tree is full (and only then), -EINVAL or -EEXIST for
 * other libfdt errors. Add a subnode; find one when loading (-ENOENT if absent).
 */
int st_add_node(void *fdt, int parent, const char *name);
int st_node(const void *fdt, int parent, const char *name);

/* src/vcpu/cpu_state.c: one vCPU (KVM registers, MSRs, LAPIC, events, nested state). */
int vcpu_state_save(struct vcpu *v, void *fdt, int node);
int vcpu_state_load(struct vcpu *v, const void *fdt, int node);
/* The VM's in-kernel devices: PIC, IOAPIC, PIT, kvmclock. */
int vm_kvm_state_save(struct vm *vm, void *fdt, int node);
int vm_kvm_state_load(struct vm *vm, const void *fdt, int node);

#endif
