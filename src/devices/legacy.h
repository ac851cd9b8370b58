/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The small PC devices a stock kernel expects, and minivmm's power ports. */
#ifndef MINIVMM_LEGACY_H
#define MINIVMM_LEGACY_H

struct vm;
struct rtc;

/* i8042: only what "reboot=k" needs (command 0xfe pulses reset). */
int i8042_init(struct vm *vm);
/* CMOS RTC at 0x70/0x71, reading the host's clock. */
struct rtc *rtc_create(struct vm *vm);
void rtc_destroy(struct rtc *rtc);
int rtc_save(struct rtc *rtc, void *fdt, int node);
int rtc_load(struct rtc *rtc, const void *fdt, int node);
/* Exit port 0x501 and the ACPI sleep control/status registers. */
int power_init(struct vm *vm);
/* pvpanic-pci (1b36:0011): the guest reports a panic. */
int pvpanic_init(struct vm *vm);

#endif
