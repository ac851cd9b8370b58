// SPDX-License-Identifier: GPL-2.0-or-later
/* The virtio-pci transport: capabilities, common config, MSI-X, notifications. */
#include <errno.h>
#include <linux/virtio_pci.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "pci/pci.h"
#include "snapshot/state.h"
#include "util.h"
#include "virtio/virtio.h"
#include "virtio/virtio_pci.h"
#include "vm.h"

#define PCI_VENDOR_REDHAT_QUMRANET 0x1af4
#define PCI_CAP_ID_VNDR		   0x09
#define PCI_CAP_ID_MSIX		   0x11
#define MSIX_CTRL_ENABLE	   0x8000
#define MSIX_CTRL_FMASK		   0x4000
#define MSIX_ENTRY_SIZE		   16
#define MSIX_VEC_MASKED		   1
#define COMMON_SIZE		   64
#define SHM_BAR			   2
#define PIO_BAR			   1
#define PIO_NOTIFY_MULT		   2

struct msix_vec {
	uint32_t addr_lo, addr_hi, data, ctrl;
	int gsi;
	int fd; /* irqfd */
	bool pending;
	atomic_bool blocked; /* masked by entry or function, or MSI-X off */
};

struct virtio_pci {
	struct pci_dev pci;
	struct vm *vm;
	struct virtio_dev *d;
	pthread_mutex_t cfg_lock;  /* common-config selectors */
	pthread_mutex_t msix_lock; /* vector table and pending bits */
	uint32_t dfselect, gfselect;
	uint16_t qsel;
	atomic_uchar isr;
	uint64_t bar0; /* where BAR 0 is mapped, 0: not */
	uint64_t pio;  /* where the port notify BAR is, 0: not mapped or none */
	unsigned int nr_vec;
	struct msix_vec *vec;
	bool msix_on, msix_fmask;
	unsigned int msix_cap, cfg_cap;
	int shm_slot[VIRTIO_MAX_SHM];
	uint64_t shm_off[VIRTIO_MAX_SHM];
};

/*
 * A VM without a KVM fd (unit tests and fuzzers drive the transport on a bare
 * struct vm) gets no MSI routes, irqfds, ioeventfds or memory slots: each
 * vector stays a plain eventfd and kicks arrive through bar0_write.
 */
static bool has_kvm(const struct virtio_pci *p)
{
	return p->vm->fd >= 0;
}

/*
 * A message a virtio device may send: a fixed or lowest-priority interrupt into the local
 * APICs' window. Anything else (INIT, SMI, NMI, ExtINT, an address outside
 * 0xfee00000-0xfeefffff: a junk entry, or one the guest rewrites while unmasked) is held
 * pending until the entry holds a proper message: a device must not reset or stop a vCPU.
 */
static bool msg_ok(const struct msix_vec *m)
{
	return !m->addr_hi && (m->addr_lo & 0xfff00000) == 0xfee00000 && ((m->data >> 8) & 7) <= 1;
}

static void route_vector(struct virtio_pci *p, unsigned int v)
{
	struct msix_vec *m = &p->vec[v];

	if (has_kvm(p) && msg_ok(m) &&
	    vm_msi_set(p->vm, m->gsi, ((uint64_t)m->addr_hi << 32) | m->addr_lo, m->data))
		pr_debug("%s: MSI route for vector %u failed", p->d->name, v);
}

/* --- MSI-X ----------------------------------------------------------------------------- */

static void vec_update_locked(struct virtio_pci *p, unsigned int v)
{
	struct msix_vec *m = &p->vec[v];
	bool blocked = !p->msix_on || p->msix_fmask || (m->ctrl & MSIX_VEC_MASKED) || !msg_ok(m);
	uint64_t one = 1;

	atomic_store(&m->blocked, blocked);
	if (!blocked && m->pending) {
		m->pending = false;
		if (write(m->fd, &one, sizeof(one)) < 0)
			pr_debug("irqfd write: %s", strerror(errno));
	}
}

/* Any thread: deliver vector @v, or remember it while it is masked. */
static void vec_signal(struct virtio_pci *p, uint16_t v)
{
	struct msix_vec *m;
	uint64_t one = 1;

	if (v >= p->nr_vec)
		return;
	m = &p->vec[v];
	if (!atomic_load(&m->blocked)) {
		if (write(m->fd, &one, sizeof(one)) < 0)
			pr_debug("irqfd write: %s", strerror(errno));
		return;
	}
	pthread_mutex_lock(&p->msix_lock);
	m->pending = true;
	vec_update_locked(p, v); /* unmasked meanwhile: deliver now */
	pthread_mutex_unlock(&p->msix_lock);
}

static void msix_table_read(struct virtio_pci *p, uint64_t off, void *data, unsigned int len)
{
	unsigned int v = off / MSIX_ENTRY_SIZE, o = off % MSIX_ENTRY_SIZE;
	uint32_t e[4];

	memset(data, 0, len);
	if (v >= p->nr_vec || o + len > MSIX_ENTRY_SIZE)
		return;
	pthread_mutex_lock(&p->msix_lock);
	e[0] = p->vec[v].addr_lo;
	e[1] = p->vec[v].addr_hi;
	e[2] = p->vec[v].data;
	e[3] = p->vec[v].ctrl;
	pthread_mutex_unlock(&p->msix_lock);
	memcpy(data, (uint8_t *)e + o, len);
}

static void msix_table_write(struct virtio_pci *p, uint64_t off, const void *data, unsigned int len)
{
	unsigned int v = off / MSIX_ENTRY_SIZE, o = off % MSIX_ENTRY_SIZE;
	struct msix_vec *m;
	uint32_t e[4];

	if (v >= p->nr_vec || o + len > MSIX_ENTRY_SIZE)
		return;
	m = &p->vec[v];
	pthread_mutex_lock(&p->msix_lock);
	e[0] = m->addr_lo;
	e[1] = m->addr_hi;
	e[2] = m->data;
	e[3] = m->ctrl;
	memcpy((uint8_t *)e + o, data, len);
	m->addr_lo = e[0];
	m->addr_hi = e[1];
	m->data = e[2];
	m->ctrl = e[3] & MSIX_VEC_MASKED;
	/* The route follows the entry; the guest changes it only while masked. */
	if (o < 12)
		route_vector(p, v);
	vec_update_locked(p, v);
	pthread_mutex_unlock(&p->msix_lock);
}

static void pba_read(struct virtio_pci *p, uint64_t off, void *data, unsigned int len)
{
	uint8_t bits[(VIRTIO_MAX_QUEUES + 1 + 63) / 64 * 8] = { 0 };
	unsigned int v;

	memset(data, 0, len);
	if (off >= sizeof(bits) || len > sizeof(bits) - off)
		return;
	pthread_mutex_lock(&p->msix_lock);
	for (v = 0; v < p->nr_vec; v++)
		if (p->vec[v].pending)
			bits[v / 8] |= 1 << (v % 8);
	pthread_mutex_unlock(&p->msix_lock);
	memcpy(data, bits + off, len);
}

/* The guest wrote the MSI-X message control word (enable, function mask). */
static void msix_ctrl_written(struct virtio_pci *p)
{
	uint16_t ctrl;
	unsigned int v;

	memcpy(&ctrl, p->pci.cfg + p->msix_cap + 2, 2);
	pthread_mutex_lock(&p->msix_lock);
	p->msix_on = ctrl & MSIX_CTRL_ENABLE;
	p->msix_fmask = ctrl & MSIX_CTRL_FMASK;
	for (v = 0; v < p->nr_vec; v++)
		vec_update_locked(p, v);
	pthread_mutex_unlock(&p->msix_lock);
}

/* --- transport ops (device threads) ----------------------------------------------------- */

static void vpci_notify_queue(struct virtio_dev *d, unsigned int q)
{
	struct virtio_pci *p = d->transport;

	atomic_fetch_or(&p->isr, 1);
	vec_signal(p, __atomic_load_n(&d->q[q].vector, __ATOMIC_RELAXED));
}

static void vpci_notify_config(struct virtio_dev *d)
{
	struct virtio_pci *p = d->transport;

	atomic_fetch_or(&p->isr, 2);
	vec_signal(p, __atomic_load_n(&d->config_vector, __ATOMIC_RELAXED));
}

static const struct virtio_transport_ops vpci_tops = {
	.notify_queue = vpci_notify_queue,
	.notify_config = vpci_notify_config,
};

/* --- common configuration --------------------------------------------------------------- */

static void common_snapshot(struct virtio_pci *p, uint8_t *c)
{
	struct virtio_dev *d = p->d;
	struct virtio_pci_common_cfg *cc = (void *)c;
	struct virtio_queue *q = p->qsel < d->nr_queues ? &d->q[p->qsel] : NULL;

	memset(c, 0, COMMON_SIZE);
	cc->device_feature_select = p->dfselect;
	cc->device_feature = virtio_get_features(d, p->dfselect);
	cc->guest_feature_select = p->gfselect;
	cc->guest_feature = p->gfselect < 2 ? (uint32_t)(d->acked >> (32 * p->gfselect)) : 0;
	cc->msix_config = __atomic_load_n(&d->config_vector, __ATOMIC_RELAXED);
	cc->num_queues = d->nr_queues;
	cc->device_status = virtio_get_status(d);
	cc->config_generation = atomic_load(&d->config_gen);
	cc->queue_select = p->qsel;
	if (q) {
		cc->queue_size = q->size;
		cc->queue_msix_vector = __atomic_load_n(&q->vector, __ATOMIC_RELAXED);
		cc->queue_enable = q->enabled;
		cc->queue_notify_off = q->index;
		cc->queue_desc_lo = (uint32_t)q->desc;
		cc->queue_desc_hi = q->desc >> 32;
		cc->queue_avail_lo = (uint32_t)q->avail;
		cc->queue_avail_hi = q->avail >> 32;
		cc->queue_used_lo = (uint32_t)q->used;
		cc->queue_used_hi = q->used >> 32;
	}
}

static bool touches(uint64_t off, unsigned int len, size_t field, size_t flen)
{
	return off < field + flen && field < off + len;
}

#define FIELD(f)                                                                                   \
	offsetof(struct virtio_pci_common_cfg, f), sizeof(((struct virtio_pci_common_cfg *)0)->f)

static uint16_t valid_vector(struct virtio_pci *p, uint16_t v)
{
	return v < p->nr_vec ? v : VIRTIO_NO_VECTOR;
}

/* A queue's set-up field written: the core decides whether it still may change. */
static void queue_write(struct virtio_pci *p, enum virtio_queue_field f, uint64_t val)
{
	int ret = virtio_queue_set(p->d, p->qsel, f, val);

	if (ret)
		pr_debug("%s: queue %u: set-up write %d ignored: %s", p->d->name, p->qsel, f,
			 strerror(-ret));
}

static void common_write(struct virtio_pci *p, uint64_t off, const void *data, unsigned int len)
{
	struct virtio_dev *d = p->d;
	uint8_t buf[COMMON_SIZE];
	struct virtio_pci_common_cfg *cc = (void *)buf;
	struct virtio_queue *q;

	if (off >= COMMON_SIZE || len > COMMON_SIZE - off)
		return;
	pthread_mutex_lock(&p->cfg_lock);
	common_snapshot(p, buf);
	memcpy(buf + off, data, len);
	if (touches(off, len, FIELD(device_feature_select)))
		p->dfselect = cc->device_feature_select;
	if (touches(off, len, FIELD(guest_feature_select)))
		p->gfselect = cc->guest_feature_select;
	if (touches(off, len, FIELD(guest_feature)))
		virtio_set_features(d, p->gfselect, cc->guest_feature);
	if (touches(off, len, FIELD(msix_config)))
		__atomic_store_n(&d->config_vector, valid_vector(p, cc->msix_config),
				 __ATOMIC_RELAXED);
	if (touches(off, len, FIELD(queue_select)))
		p->qsel = cc->queue_select;
	q = p->qsel < d->nr_queues ? &d->q[p->qsel] : NULL;
	/* The vector may change any time (the device threads read it atomically). */
	if (q && touches(off, len, FIELD(queue_msix_vector)))
		__atomic_store_n(&q->vector, valid_vector(p, cc->queue_msix_vector),
				 __ATOMIC_RELAXED);
	if (q) {
		/* The rest of a queue's set-up is fixed once it is enabled or the driver runs. */
		if (touches(off, len, FIELD(queue_size)))
			queue_write(p, VIRTIO_QUEUE_SIZE, cc->queue_size);
		if (touches(off, len, FIELD(queue_desc_lo)) ||
		    touches(off, len, FIELD(queue_desc_hi)))
			queue_write(p, VIRTIO_QUEUE_DESC,
				    (uint64_t)cc->queue_desc_hi << 32 | cc->queue_desc_lo);
		if (touches(off, len, FIELD(queue_avail_lo)) ||
		    touches(off, len, FIELD(queue_avail_hi)))
			queue_write(p, VIRTIO_QUEUE_DRIVER,
				    (uint64_t)cc->queue_avail_hi << 32 | cc->queue_avail_lo);
		if (touches(off, len, FIELD(queue_used_lo)) ||
		    touches(off, len, FIELD(queue_used_hi)))
			queue_write(p, VIRTIO_QUEUE_DEVICE,
				    (uint64_t)cc->queue_used_hi << 32 | cc->queue_used_lo);
		if (touches(off, len, FIELD(queue_enable)))
			queue_write(p, VIRTIO_QUEUE_ENABLE, cc->queue_enable);
	}
	if (touches(off, len, FIELD(device_status)))
		virtio_set_status(d, cc->device_status);
	pthread_mutex_unlock(&p->cfg_lock);
}

/* --- BAR 0 ------------------------------------------------------------------------------ */

static void kick(struct virtio_pci *p, unsigned int qi)
{
	uint64_t one = 1;

	if (qi < p->d->nr_queues && write(p->d->q[qi].kick_fd, &one, sizeof(one)) < 0)
		pr_debug("kick: %s", strerror(errno));
}

static void bar0_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct virtio_pci *p = opaque;
	struct virtio_dev *d = p->d;
	uint8_t buf[COMMON_SIZE];

	memset(data, 0, len);
	if (off + len <= VPCI_COMMON_OFF + COMMON_SIZE) {
		pthread_mutex_lock(&p->cfg_lock);
		common_snapshot(p, buf);
		pthread_mutex_unlock(&p->cfg_lock);
		memcpy(data, buf + off, len);
	} else if (off == VPCI_ISR_OFF) {
		/* Reading ISR clears it (and would deassert INTx, which we do not wire). */
		*(uint8_t *)data = atomic_exchange(&p->isr, 0);
	} else if (off >= VPCI_DEVICE_OFF && off + len <= VPCI_DEVICE_OFF + d->config_size) {
		if (d->ops->config_read)
			d->ops->config_read(d, off - VPCI_DEVICE_OFF, data, len);
	} else if (off >= VPCI_MSIX_OFF && off < VPCI_PBA_OFF) {
		msix_table_read(p, off - VPCI_MSIX_OFF, data, len);
	} else if (off >= VPCI_PBA_OFF) {
		pba_read(p, off - VPCI_PBA_OFF, data, len);
	}
}

static void bar0_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct virtio_pci *p = opaque;
	struct virtio_dev *d = p->d;

	if (off + len <= VPCI_COMMON_OFF + COMMON_SIZE) {
		common_write(p, off, data, len);
	} else if (off >= VPCI_DEVICE_OFF && off + len <= VPCI_DEVICE_OFF + d->config_size) {
		if (d->ops->config_write)
			d->ops->config_write(d, off - VPCI_DEVICE_OFF, data, len);
	} else if (off >= VPCI_NOTIFY_OFF &&
		   off < VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * d->nr_queues) {
		/* Only when KVM did not take it as an ioeventfd (other width, no ioeventfd). */
		kick(p, (off - VPCI_NOTIFY_OFF) / VPCI_NOTIFY_MULT);
	} else if (off >= VPCI_MSIX_OFF && off < VPCI_PBA_OFF) {
		msix_table_write(p, off - VPCI_MSIX_OFF, data, len);
	}
}

static const struct io_ops bar0_ops = { .read = bar0_read, .write = bar0_write };

/*
 * The port notify BAR ([vm] notify = pio): an OUT exits with the port and the value in
 * registers, where an MMIO write makes KVM fetch and decode the instruction from guest
 * memory (nested SVM without decode assists, or any MMIO not on KVM's fast path).
 */
static void pio_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	(void)opaque, (void)off;
	memset(data, 0, len);
}

static void pio_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct virtio_pci *p = opaque;

	(void)data, (void)len;
	/* Only when KVM did not take it as an ioeventfd (other width, no ioeventfd). */
	if (off % PIO_NOTIFY_MULT == 0)
		kick(p, off / PIO_NOTIFY_MULT);
}

static const struct io_ops pio_ops = { .read = pio_read, .write = pio_write };

/* @pio: the port notify BAR at @base, else BAR 0's notify region. */
static void set_ioeventfds(struct virtio_pci *p, uint64_t base, bool pio, bool assign)
{
	unsigned int i;

	for (i = 0; has_kvm(p) && i < p->d->nr_queues; i++) {
		uint64_t a = pio ? base + PIO_NOTIFY_MULT * i
				 : base + VPCI_NOTIFY_OFF + VPCI_NOTIFY_MULT * i;

		/* Linux writes the queue index as 16 bits; other widths trap to us. */
		if (vm_ioeventfd(p->vm, a, 2, p->d->q[i].kick_fd, pio, assign) && assign)
			pr_warn("%s: no ioeventfd for queue %u: kicks will exit to userspace",
				p->d->name, i);
	}
}

/* A BAR with a notify region moved from *@at to @addr (0: unmapped): the ioeventfds follow. */
static void notify_moved(struct virtio_pci *p, uint64_t *at, uint64_t addr, bool pio)
{
	if (*at)
		set_ioeventfds(p, *at, pio, false);
	*at = addr;
	if (addr)
		set_ioeventfds(p, addr, pio, true);
}

static void vpci_bar_moved(struct pci_dev *dev, unsigned int bar, uint64_t addr)
{
	struct virtio_pci *p = dev->priv;
	struct virtio_dev *d = p->d;
	unsigned int i;

	if (bar == 0) {
		notify_moved(p, &p->bar0, addr, false);
	} else if (bar == PIO_BAR) {
		notify_moved(p, &p->pio, addr, true);
	} else if (bar == SHM_BAR) {
		for (i = 0; has_kvm(p) && i < d->nr_shm; i++) {
			/* KVM refuses to delete a slot it does not have (and we would warn). */
			if (d->shm[i].gpa)
				vm_memslot_set(p->vm, p->shm_slot[i], 0, 0, d->shm[i].hva);
			d->shm[i].gpa = 0;
			if (addr && !vm_memslot_set(p->vm, p->shm_slot[i], addr + p->shm_off[i],
						    d->shm[i].size, d->shm[i].hva))
				d->shm[i].gpa = addr + p->shm_off[i];
		}
	}
}

/* --- PCI configuration ------------------------------------------------------------------ */

/* VIRTIO_PCI_CAP_PCI_CFG: BAR access through config space (the spec requires it). */
static void cfg_cap_access(struct virtio_pci *p, bool write)
{
	struct virtio_pci_cfg_cap *c = (void *)(p->pci.cfg + p->cfg_cap);
	uint32_t off = c->cap.offset, len = c->cap.length;

	if (c->cap.bar != 0 || (len != 1 && len != 2 && len != 4) || off >= VPCI_BAR0_SIZE ||
	    len > VPCI_BAR0_SIZE - off || off % len)
		return;
	if (write)
		bar0_write(p, off, c->pci_cfg_data, len);
	else if (off != VPCI_ISR_OFF) /* no read side effects behind the guest's back */
		bar0_read(p, off, c->pci_cfg_data, len);
}

static void vpci_cfg_written(struct pci_dev *dev, unsigned int off, unsigned int len)
{
	struct virtio_pci *p = dev->priv;
	unsigned int data = p->cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);

	if (off < p->msix_cap + 4 && p->msix_cap + 2 < off + len)
		msix_ctrl_written(p);
	if (off < data + 4 && data < off + len)
		cfg_cap_access(p, true);
	else if (off < data && p->cfg_cap + 4 < off + len)
		cfg_cap_access(p, false);
}

static void vpci_release(struct pci_dev *dev)
{
	struct virtio_pci *p = dev->priv;
	unsigned int i;

	virtio_report_pending(p->d);
	/* Device threads first: they signal through the vectors freed below. */
	virtio_set_status(p->d, 0);
	notify_moved(p, &p->bar0, 0, false);
	notify_moved(p, &p->pio, 0, true);
	for (i = 0; has_kvm(p) && i < p->d->nr_shm; i++)
		if (p->d->shm[i].gpa)
			vm_memslot_set(p->vm, p->shm_slot[i], 0, 0, p->d->shm[i].hva);
	for (i = 0; i < p->nr_vec; i++) {
		if (p->vec[i].fd < 0)
			continue;
		if (has_kvm(p))
			vm_irqfd(p->vm, p->vec[i].fd, p->vec[i].gsi, false);
		close(p->vec[i].fd);
	}
	p->d->transport = NULL;
	p->d->tops = NULL;
	free(p->vec);
	pthread_mutex_destroy(&p->cfg_lock);
	pthread_mutex_destroy(&p->msix_lock);
	free(p);
}

static int add_vcap(struct virtio_pci *p, uint8_t type, uint8_t bar, uint8_t id, uint64_t off,
		    uint64_t len, unsigned int caplen)
{
	struct virtio_pci_cap64 *c;
	int at = pci_dev_add_cap(&p->pci, PCI_CAP_ID_VNDR, caplen);

	if (at < 0)
		return at;
	c = (void *)(p->pci.cfg + at);
	c->cap.cap_len = caplen;
	c->cap.cfg_type = type;
	c->cap.bar = bar;
	c->cap.id = id;
	c->cap.offset = (uint32_t)off;
	c->cap.length = (uint32_t)len;
	if (caplen >= sizeof(*c)) {
		c->offset_hi = off >> 32;
		c->length_hi = len >> 32;
	}
	return at;
}

static int setup_caps(struct virtio_pci *p)
{
	struct virtio_dev *d = p->d;
	struct virtio_pci_notify_cap *n;
	uint16_t ctrl = p->nr_vec - 1;
	uint32_t tbl = VPCI_MSIX_OFF, pba = VPCI_PBA_OFF;
	unsigned int i;
	int at;

	if (add_vcap(p, VIRTIO_PCI_CAP_COMMON_CFG, 0, 0, VPCI_COMMON_OFF, COMMON_SIZE, 16) < 0 ||
	    add_vcap(p, VIRTIO_PCI_CAP_ISR_CFG, 0, 0, VPCI_ISR_OFF, 1, 16) < 0)
		return -ENOSPC;
	if (d->config_size &&
	    add_vcap(p, VIRTIO_PCI_CAP_DEVICE_CFG, 0, 0, VPCI_DEVICE_OFF, d->config_size, 16) < 0)
		return -ENOSPC;
	/* Linux takes the first notify capability whose BAR it could assign: the port one
	 * when there is one, the memory one when its I/O space ran out. */
	if (p->pci.bar[PIO_BAR].type == PCI_BAR_IO) {
		at = add_vcap(p, VIRTIO_PCI_CAP_NOTIFY_CFG, PIO_BAR, 0, 0,
			      PIO_NOTIFY_MULT * d->nr_queues, sizeof(*n));
		if (at < 0)
			return at;
		n = (void *)(p->pci.cfg + at);
		n->notify_off_multiplier = PIO_NOTIFY_MULT;
	}
	at = add_vcap(p, VIRTIO_PCI_CAP_NOTIFY_CFG, 0, 0, VPCI_NOTIFY_OFF,
		      VPCI_NOTIFY_MULT * d->nr_queues, sizeof(*n));
	if (at < 0)
		return at;
	n = (void *)(p->pci.cfg + at);
	n->notify_off_multiplier = VPCI_NOTIFY_MULT;
	for (i = 0; i < d->nr_shm; i++)
		if (add_vcap(p, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, SHM_BAR, d->shm[i].id,
			     p->shm_off[i], d->shm[i].size, sizeof(struct virtio_pci_cap64)) < 0)
			return -ENOSPC;
	at = add_vcap(p, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, 0, sizeof(struct virtio_pci_cfg_cap));
	if (at < 0)
		return at;
	p->cfg_cap = at;
	/* The guest picks the BAR, offset and length of a cfg-cap access, and its data. */
	memset(p->pci.wmask + at + 4, 0xff, 1);
	memset(p->pci.wmask + at + 8, 0xff, 12);
	at = pci_dev_add_cap(&p->pci, PCI_CAP_ID_MSIX, 12);
	if (at < 0)
		return at;
	p->msix_cap = at;
	memcpy(p->pci.cfg + at + 2, &ctrl, 2);
	memcpy(p->pci.cfg + at + 4, &tbl, 4); /* BIR 0 */
	memcpy(p->pci.cfg + at + 8, &pba, 4);
	p->pci.wmask[at + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK) >> 8;
	return 0;
}

static int setup_vectors(struct virtio_pci *p)
{
	unsigned int i;

	p->vec = calloc(p->nr_vec, sizeof(*p->vec));
	if (!p->vec)
		return -ENOMEM;
	for (i = 0; i < p->nr_vec; i++)
		p->vec[i].fd = -1;
	for (i = 0; i < p->nr_vec; i++) {
		struct msix_vec *m = &p->vec[i];
		int ret;

		m->ctrl = MSIX_VEC_MASKED;
		atomic_store(&m->blocked, true);
		m->gsi = vm_msi_alloc(p->vm);
		if (m->gsi < 0)
			return m->gsi;
		m->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->fd < 0)
			return -errno;
		ret = has_kvm(p) ? vm_irqfd(p->vm, m->fd, m->gsi, true) : 0;
		if (ret) {
			pr_err("%s: KVM_IRQFD: %s", p->d->name, strerror(-ret));
			close(m->fd);
			m->fd = -1;
			return ret;
		}
	}
	return 0;
}

/* --- snapshots --------------------------------------------------------------------------- */

static void vpci_quiesce(struct pci_dev *dev, bool on)
{
	struct virtio_pci *p = dev->priv;

	if (on)
		virtio_quiesce(p->d);
	else if (virtio_unquiesce(p->d))
		pr_err("%s: cannot restart after the snapshot; the device needs a reset",
		       p->d->name);
}

static int vpci_save(struct pci_dev *dev, void *fdt, int node)
{
	struct virtio_pci *p = dev->priv;
	uint32_t *tab = calloc(p->nr_vec, 5 * sizeof(uint32_t));
	unsigned int v;
	int vn, ret;

	if (!tab)
		return -ENOMEM;
	pthread_mutex_lock(&p->msix_lock);
	for (v = 0; v < p->nr_vec; v++) {
		uint32_t *e = tab + 5 * v;

		e[0] = p->vec[v].addr_lo, e[1] = p->vec[v].addr_hi, e[2] = p->vec[v].data;
		e[3] = p->vec[v].ctrl, e[4] = p->vec[v].pending;
	}
	pthread_mutex_unlock(&p->msix_lock);
	pthread_mutex_lock(&p->cfg_lock);
	ret = st_put_blob(fdt, node, "msix", tab, p->nr_vec * 5 * sizeof(uint32_t)) ?:
	      st_put_u64(fdt, node, "dfselect", p->dfselect) ?:
	      st_put_u64(fdt, node, "gfselect", p->gfselect) ?:
	      st_put_u64(fdt, node, "qsel", p->qsel) ?:
	      st_put_u64(fdt, node, "isr", atomic_load(&p->isr));
	pthread_mutex_unlock(&p->cfg_lock);
	free(tab);
	if (ret)
		return ret;
	vn = st_add_node(fdt, node, "virtio");
	return vn < 0 ? vn : virtio_save(p->d, fdt, vn);
}

static int vpci_load(struct pci_dev *dev, const void *fdt, int node)
{
	struct virtio_pci *p = dev->priv;
	uint32_t *tab = calloc(p->nr_vec, 5 * sizeof(uint32_t));
	uint64_t df, gf, qs, isr;
	unsigned int v, q;
	int vn, ret = -EINVAL;

	if (!tab)
		return -ENOMEM;
	if (st_get_blob(fdt, node, "msix", tab, p->nr_vec * 5 * sizeof(uint32_t)) ||
	    st_get_u64(fdt, node, "dfselect", &df) || st_get_u64(fdt, node, "gfselect", &gf) ||
	    st_get_u64(fdt, node, "qsel", &qs) || st_get_u64(fdt, node, "isr", &isr) ||
	    df > 0xffffffffu || gf > 0xffffffffu || qs > 0xffff || isr > 0xff) {
		pr_err("%s: transport state missing or malformed", p->d->name);
		goto out;
	}
	pthread_mutex_lock(&p->cfg_lock);
	p->dfselect = (uint32_t)df, p->gfselect = (uint32_t)gf, p->qsel = (uint16_t)qs;
	atomic_store(&p->isr, (uint8_t)isr);
	pthread_mutex_unlock(&p->cfg_lock);
	pthread_mutex_lock(&p->msix_lock);
	for (v = 0; v < p->nr_vec; v++) {
		struct msix_vec *m = &p->vec[v];
		const uint32_t *e = tab + 5 * v;

		m->addr_lo = e[0], m->addr_hi = e[1], m->data = e[2];
		m->ctrl = e[3] & MSIX_VEC_MASKED, m->pending = e[4] != 0;
		route_vector(p, v);
	}
	pthread_mutex_unlock(&p->msix_lock);
	msix_ctrl_written(p); /* enable/mask from the restored config space */
	vn = st_node(fdt, node, "virtio");
	ret = vn < 0 ? vn : virtio_load(p->d, fdt, vn);
	if (ret) {
		pr_err("%s: cannot restore the device state", p->d->name);
		goto out;
	}
	/* An interrupt raised just before the save may not have reached the saved
	 * LAPIC: one spurious interrupt per queue is harmless, a lost one hangs. */
	for (q = 0; q < p->d->nr_queues; q++)
		if (p->d->q[q].enabled && p->d->started)
			vpci_notify_queue(p->d, q);
out:
	free(tab);
	return ret;
}

/* BAR sizes and alignments: the smallest power of two >= @x and >= @min (one). */
static uint64_t pow2_at_least(uint64_t x, uint64_t min)
{
	uint64_t s = min;

	while (s < x)
		s <<= 1;
	return s;
}

int virtio_pci_add(struct vm *vm, struct virtio_dev *d)
{
	struct virtio_pci *p = calloc(1, sizeof(*p));
	uint64_t shm_size = 0;
	unsigned int i;
	int ret;

	if (!p)
		return -ENOMEM;
	p->vm = vm;
	p->d = d;
	p->nr_vec = d->nr_queues + 1;
	pthread_mutex_init(&p->cfg_lock, NULL);
	pthread_mutex_init(&p->msix_lock, NULL);
	pci_dev_init(&p->pci, PCI_VENDOR_REDHAT_QUMRANET, 0x1040 + d->device_id, d->pci_class, 1);
	memcpy(p->pci.cfg + PCI_SUBSYS_VID, &(uint16_t){ PCI_VENDOR_REDHAT_QUMRANET }, 2);
	memcpy(p->pci.cfg + PCI_SUBSYS_ID, &(uint16_t){ 0x40 }, 2);
	p->pci.priv = p;
	p->pci.cfg_written = vpci_cfg_written;
	p->pci.bar_moved = vpci_bar_moved;
	p->pci.release = vpci_release;
	p->pci.save = vpci_save;
	p->pci.quiesce = vpci_quiesce;
	p->pci.load = vpci_load;
	pci_dev_set_bar(&p->pci, 0, PCI_BAR_MEM32, false, VPCI_BAR0_SIZE, &bar0_ops, p);
	if (!vm->cfg || vm->cfg->notify == NOTIFY_PIO)
		pci_dev_set_bar(&p->pci, PIO_BAR, PCI_BAR_IO, false,
				pow2_at_least(PIO_NOTIFY_MULT * d->nr_queues, 4), &pio_ops, p);
	for (i = 0; i < d->nr_shm; i++) {
		/* Each region aligned to its own size (a power of two, at least a page). */
		p->shm_off[i] = ALIGN_UP(shm_size, pow2_at_least(d->shm[i].size, 4096));
		shm_size = p->shm_off[i] + d->shm[i].size;
		p->shm_slot[i] = vm_memslot_alloc(vm);
	}
	if (shm_size)
		pci_dev_set_bar(&p->pci, SHM_BAR, PCI_BAR_MEM64, true,
				pow2_at_least(shm_size, 4096), NULL, p);
	d->transport = p;
	d->tops = &vpci_tops;
	ret = setup_caps(p) ?: setup_vectors(p);
	if (ret)
		goto fail;
	ret = pci_register(vm->pci, &p->pci);
	if (ret)
		goto fail;
	pr_debug("%s: PCI slot %u, %u queues, %u MSI-X vectors", d->name, p->pci.slot, d->nr_queues,
		 p->nr_vec);
	return 0;
fail:
	vpci_release(&p->pci);
	return ret;
}
