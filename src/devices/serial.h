/* SPDX-License-Identifier: GPL-2.0-or-later */
/* 16550A UART (8250 family) with an interrupt line. */
#ifndef MINIVMM_SERIAL_H
#define MINIVMM_SERIAL_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct serial;

/* Output goes to @out_fd (-1: discarded). Registers on the VM's port bus. */
struct serial *serial_create(struct vm *vm, uint16_t port, unsigned int irq, int out_fd);
void serial_destroy(struct serial *s);
/* Write at most @max bytes of output (then one note saying so); 0: no cap. */
void serial_set_limit(struct serial *s, uint64_t max);
/* Queue input for the guest; returns how many bytes fit. */
size_t serial_input(struct serial *s, const uint8_t *buf, size_t len);
/* Register state into / out of a snapshot node. */
int serial_save(struct serial *s, void *fdt, int node);
int serial_load(struct serial *s, const void *fdt, int node);

#endif
