/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Transport-agnostic virtio devices (virtio 1.x).
 *
 * A device model (blk, fs, ...) fills a struct virtio_dev with its ops, its
 * feature bits and queue count; a transport (virtio-pci) exposes it to the
 * guest and calls the virtio_* functions below on register accesses. Each
 * queue owns a kick eventfd: the PCI transport attaches it to KVM as an
 * ioeventfd, a benchmark or fuzzer writes it directly, and the device's I/O
 * threads poll it. Interrupts go back through the transport's notify ops.
 */
#ifndef MINIVMM_VIRTIO_H
#define MINIVMM_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "mm/guest_mem.h"
#include "virtio/virtqueue.h"

#define VIRTIO_MAX_QUEUES 64
#define VIRTIO_MAX_SHM	  4
#define VIRTIO_NO_VECTOR  0xffff

/*
 * Status bits (VIRTIO_CONFIG_S_*) and the transport feature bits the core
 * offers for every device (VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX,
 * VIRTIO_RING_F_INDIRECT_DESC) come from the kernel's UAPI headers.
 */

struct virtio_dev;

/*
 * A queue's set-up is the driver's until it enables the queue or sets
 * DRIVER_OK; from then on it is fixed until a reset (virtio_queue_set). The
 * device threads see only @vq, which is mapped (vq_init) at DRIVER_OK for the
 * enabled queues and unusable (vq_clear) otherwise.
 */
struct virtio_queue {
	struct virtqueue vq;
	uint16_t size_max;
	uint16_t size; /* as set by the driver */
	bool enabled;
	uint64_t desc, avail, used; /* guest-physical, as set by the driver */
	uint16_t vector;	    /* MSI-X vector, VIRTIO_NO_VECTOR: none (__atomic access) */
	int kick_fd;		    /* eventfd the driver's notifications arrive on */
	bool holds_buffers; /* rx-like: buffers wait for the device's data (set at create) */
	unsigned int index;
	struct virtio_dev *dev;
};

/* A shared-memory region (2.10): host memory the guest maps through the transport. */
struct virtio_shm {
	uint8_t id;
	uint64_t size;
	void *hva;    /* the device owns it: mmap'd, stays valid while the device lives */
	uint64_t gpa; /* where the transport mapped it, 0: not mapped */
};

struct virtio_dev_ops {
	/* Device-specific configuration space (read-only unless config_write). */
	void (*config_read)(struct virtio_dev *d, unsigned int off, void *buf, unsigned int len);
	void (*config_write)(struct virtio_dev *d, unsigned int off, const void *buf,
			     unsigned int len);
	/* DRIVER_OK with the enabled queues mapped: start serving them. A negative
	 * errno sets DEVICE_NEEDS_RESET. */
	int (*start)(struct virtio_dev *d);
	/* Reset or teardown: stop serving, finish in-flight requests, forget state. */
	void (*stop)(struct virtio_dev *d);
	/* Pause (snapshot, `ctl pause`): stop serving and finish in-flight requests but
	 * keep what the driver set up (FUSE session, DAX mappings); start resumes. NULL:
	 * stop keeps nothing a resume needs. */
	void (*pause)(struct virtio_dev *d);
	/* Device state beyond what the core saves, into/out of a libfdt node. */
	int (*save)(struct virtio_dev *d, void *fdt, int node);
	int (*load)(struct virtio_dev *d, const void *fdt, int node);
	void (*destroy)(struct virtio_dev *d);
};

struct virtio_transport_ops {
	/* Raise queue @q's interrupt (any thread). */
	void (*notify_queue)(struct virtio_dev *d, unsigned int q);
	/* Raise the configuration-change interrupt (any thread). */
	void (*notify_config)(struct virtio_dev *d);
};

struct virtio_dev {
	const char *name; /* "virtio-blk0", for messages */
	uint16_t device_id;
	uint32_t pci_class;
	const struct virtio_dev_ops *ops;
	void *priv;
	const struct guest_mem *mem;
	size_t config_size;

	uint64_t features; /* offered: device bits | the core's */
	uint64_t acked;	   /* accepted by the driver (valid once FEATURES_OK) */
	atomic_uchar status;
	atomic_uchar config_gen;
	atomic_uint nr_warned; /* protocol errors reported (bounded: the guest makes them) */
	bool started;
	bool quiesced;	      /* started, but the device threads are stopped for a snapshot */
	pthread_mutex_t lock; /* status and queue set-up vs. device threads */

	unsigned int nr_queues;
	struct virtio_queue *q;
	uint16_t config_vector; /* __atomic access: the device threads read it */

	struct virtio_shm shm[VIRTIO_MAX_SHM];
	unsigned int nr_shm;

	const struct virtio_transport_ops *tops;
	void *transport;
};

/* Set up @d with @nr_queues queues of at most @qsize entries and the device
 * feature bits @features (the core adds VERSION_1, EVENT_IDX, INDIRECT_DESC). */
int virtio_dev_init(struct virtio_dev *d, const char *name, uint16_t device_id,
		    const struct virtio_dev_ops *ops, void *priv, const struct guest_mem *mem,
		    unsigned int nr_queues, unsigned int qsize, uint64_t features,
		    size_t config_size);
/* Stop the device and free what virtio_dev_init made (not @d, not priv). */
void virtio_dev_exit(struct virtio_dev *d);
/*
 * At exit (-v): a ring the guest was still waiting on says which side it waited for:
 * buffers never taken (a kick we missed) or completions past the driver's used_event (an
 * interrupt it missed). A VM stopped mid-request shows one too.
 */
void virtio_report_pending(struct virtio_dev *d);
/* Add a shared-memory region of @size bytes at @hva (before the transport). */
int virtio_dev_add_shm(struct virtio_dev *d, uint8_t id, void *hva, uint64_t size);

/* Driver accesses (from the transport). */
uint8_t virtio_get_status(struct virtio_dev *d);
/*
 * 0 resets. Otherwise the driver only adds bits (virtio 1.2, 2.1.2): a write
 * that clears one is a protocol error (DEVICE_NEEDS_RESET, old bits kept), and
 * once NEEDS_RESET is set only FAILED and a reset change anything.
 */
void virtio_set_status(struct virtio_dev *d, uint8_t status);

enum virtio_queue_field {
	VIRTIO_QUEUE_SIZE,   /* a power of two up to size_max */
	VIRTIO_QUEUE_DESC,   /* descriptor area */
	VIRTIO_QUEUE_DRIVER, /* available ring */
	VIRTIO_QUEUE_DEVICE, /* used ring */
	VIRTIO_QUEUE_ENABLE, /* 1 only: the driver never disables a queue (no RING_RESET) */
};
/* The driver writes queue @qi's set-up: -EBUSY once it is fixed (queue enabled,
 * DRIVER_OK or NEEDS_RESET set), -EINVAL for no such queue or a bad value. */
int virtio_queue_set(struct virtio_dev *d, unsigned int qi, enum virtio_queue_field f,
		     uint64_t val);
uint32_t virtio_get_features(struct virtio_dev *d, unsigned int word);
void virtio_set_features(struct virtio_dev *d, unsigned int word, uint32_t val);
bool virtio_negotiated(const struct virtio_dev *d, unsigned int bit);

/* Device side. */
/* After pushing used buffers on @q: interrupt the driver if it wants one (true: sent). */
bool virtio_queue_signal(struct virtio_queue *q);
/* Kick @q as the driver would: its I/O thread comes back for work it left. */
void virtio_queue_kick(struct virtio_queue *q);
/* Something is wrong beyond one request: DEVICE_NEEDS_RESET + config interrupt. */
void virtio_needs_reset(struct virtio_dev *d, const char *why);

/* Finish in-flight requests and stop serving the queues, keeping their state
 * (a running VM's snapshot); unquiesce serves them again. */
void virtio_quiesce(struct virtio_dev *d);
int virtio_unquiesce(struct virtio_dev *d);
/* Snapshot of the transport-independent state (features, status, queues). */
int virtio_save(struct virtio_dev *d, void *fdt, int node);
int virtio_load(struct virtio_dev *d, const void *fdt, int node);

#endif
