// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "devices/serial.h"
#include "log.h"
#include "snapshot/state.h"
#include "util.h"
#include "vm.h"

#define RX_SIZE 4096

/* Register offsets (DLAB=0 unless noted). */
#define UART_RX	 0
#define UART_IER 1
#define UART_IIR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI	      0x01
#define IER_THRI      0x02
#define IIR_NO_INT    0x01
#define IIR_THRI      0x02
#define IIR_RDI	      0x04
#define IIR_FIFO_BITS 0xc0
#define FCR_ENABLE    0x01
#define FCR_CLEAR_RX  0x02
#define LCR_DLAB      0x80
#define MCR_DTR	      0x01
#define MCR_RTS	      0x02
#define MCR_OUT1      0x04
#define MCR_OUT2      0x08
#define MCR_LOOP      0x10
#define LSR_DR	      0x01
#define LSR_THRE      0x20
#define LSR_TEMT      0x40
#define MSR_CTS	      0x10
#define MSR_DSR	      0x20
#define MSR_RI	      0x40
#define MSR_DCD	      0x80

struct serial {
	struct vm *vm;
	pthread_mutex_t lock; /* vCPU threads and the console input thread */
	unsigned int irq;
	uint16_t port;
	int out_fd;
	uint64_t out_max, out_written; /* serial_set_limit(); 0: no cap */
	bool out_capped;
	int irq_level;

	uint8_t dll, dlm, ier, fcr, lcr, mcr, scr;
	bool thri_pending;
	uint8_t rx[RX_SIZE];
	size_t rx_head, rx_count;
};

static uint8_t iir(struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO_BITS : 0;

	if ((s->ier & IER_RDI) && s->rx_count)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thri_pending)
		return IIR_THRI | fifo;
	return IIR_NO_INT | fifo;
}

/* The INTR output follows "an interrupt is pending"; the IOAPIC sees edges. */
static void update_irq(struct serial *s)
{
	int level = !(iir(s) & IIR_NO_INT);

	if (level != s->irq_level) {
		s->irq_level = level;
		vm_irq_line(s->vm, s->irq, level);
	}
}

static void rx_push(struct serial *s, uint8_t c)
{
	if (s->rx_count == RX_SIZE)
		return;
	s->rx[(s->rx_head + s->rx_count++) % RX_SIZE] = c;
}

static void tx(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		rx_push(s, c);
		return;
	}
	if (s->out_fd < 0)
		return;
	/* A guest writing forever must not fill the host's disk. */
	if (s->out_max && s->out_written >= s->out_max) {
		static const char note[] = "\r\n[minivmm: console output stopped here: "
					   "[console] max_size reached]\r\n";

		if (!s->out_capped) {
			s->out_capped = true;
			write_all(s->out_fd, note, sizeof(note) - 1);
			pr_warn("console file: %llu bytes written ([console] max_size), the "
				"rest is dropped",
				(unsigned long long)s->out_written);
		}
		return;
	}
	if (!write_all(s->out_fd, &c, 1))
		s->out_written++;
}

static uint8_t reg_read(struct serial *s, unsigned int off)
{
	uint8_t v = 0, m;

	switch (off) {
	case UART_RX:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (s->rx_count) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % RX_SIZE;
			s->rx_count--;
		}
		return v;
	case UART_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR:
		v = iir(s);
		/* Reading IIR acknowledges a THRE interrupt. */
		if ((v & 0x0f) == IIR_THRI)
			s->thri_pending = false;
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
	case UART_MSR:
		if (!(s->mcr & MCR_LOOP))
			return MSR_DCD | MSR_DSR | MSR_CTS;
		/* Loopback: the modem outputs appear as inputs (8250 probing). */
		m = s->mcr;
		return (m & MCR_RTS ? MSR_CTS : 0) | (m & MCR_DTR ? MSR_DSR : 0) |
		       (m & MCR_OUT1 ? MSR_RI : 0) | (m & MCR_OUT2 ? MSR_DCD : 0);
	default:
		return s->scr;
	}
}

static void reg_write(struct serial *s, unsigned int off, uint8_t v)
{
	switch (off) {
	case UART_RX:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			return;
		}
		tx(s, v);
		s->thri_pending = true; /* transmitted at once: THR is empty again */
		return;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			return;
		}
		/* Enabling THRI with an empty THR raises the interrupt at once. */
		if (!(s->ier & IER_THRI) && (v & IER_THRI))
			s->thri_pending = true;
		s->ier = v & 0x0f;
		return;
	case UART_IIR: /* FCR */
		if (v & FCR_CLEAR_RX)
			s->rx_head = s->rx_count = 0;
		s->fcr = v & 0xc9;
		return;
	case UART_LCR:
		s->lcr = v;
		return;
	case UART_MCR:
		s->mcr = v & 0x1f;
		return;
	case UART_SCR:
		s->scr = v;
		return;
	default: /* LSR, MSR: read-only */
		return;
	}
}

static void serial_pio_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct serial *s = opaque;

	memset(data, 0xff, len);
	if (len != 1)
		return;
	pthread_mutex_lock(&s->lock);
	*(uint8_t *)data = reg_read(s, off);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_pio_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct serial *s = opaque;

	if (len != 1)
		return;
	pthread_mutex_lock(&s->lock);
	reg_write(s, off, *(const uint8_t *)data);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static const struct io_ops serial_ops = {
	.read = serial_pio_read,
	.write = serial_pio_write,
};

size_t serial_input(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_count < RX_SIZE)
		rx_push(s, buf[n++]);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

struct serial *serial_create(struct vm *vm, uint16_t port, unsigned int irq, int out_fd)
{
	struct serial *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->vm = vm;
	s->port = port;
	s->irq = irq;
	s->out_fd = out_fd;
	s->mcr = MCR_OUT2;
	pthread_mutex_init(&s->lock, NULL);
	if (io_bus_register(&vm->pio, port, 8, &serial_ops, s)) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	return s;
}

void serial_set_limit(struct serial *s, uint64_t max)
{
	pthread_mutex_lock(&s->lock);
	s->out_max = max;
	pthread_mutex_unlock(&s->lock);
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	io_bus_unregister(&s->vm->pio, s->port, s);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int serial_save(struct serial *s, void *fdt, int node)
{
	uint8_t r[8];
	int ret;

	pthread_mutex_lock(&s->lock);
	r[0] = s->dll, r[1] = s->dlm, r[2] = s->ier, r[3] = s->fcr;
	r[4] = s->lcr, r[5] = s->mcr, r[6] = s->scr, r[7] = s->thri_pending;
	/* Input not yet read by the guest is console typing: dropped, not saved. */
	ret = st_put_blob(fdt, node, "regs", r, sizeof(r))
		  ?: st_put_u64(fdt, node, "irq-level", (uint64_t)s->irq_level);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int serial_load(struct serial *s, const void *fdt, int node)
{
	uint8_t r[8];
	uint64_t lvl;

	/* Only values the guest could have written (reg_write masks them the same way). */
	if (st_get_blob(fdt, node, "regs", r, sizeof(r)) ||
	    st_get_u64(fdt, node, "irq-level", &lvl) || lvl > 1 || r[2] & ~0x0f || r[3] & ~0xc9 ||
	    r[5] & ~0x1f || r[7] > 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->dll = r[0], s->dlm = r[1], s->ier = r[2], s->fcr = r[3];
	s->lcr = r[4], s->mcr = r[5], s->scr = r[6], s->thri_pending = r[7] != 0;
	/* The IOAPIC's pin state came back with the irqchip: just agree with it. */
	s->irq_level = lvl != 0;
	s->rx_count = 0;
	pthread_mutex_unlock(&s->lock);
	return 0;
}
