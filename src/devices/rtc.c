// SPDX-License-Identifier: GPL-2.0-or-later
/* MC146818 CMOS RTC: the guest reads the host's wall clock (UTC, BCD, 24 h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/legacy.h"
#include "layout.h"
#include "snapshot/state.h"
#include "vm.h"

#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS   0x04
#define RTC_WEEKDAY 0x06
#define RTC_DAY	    0x07
#define RTC_MONTH   0x08
#define RTC_YEAR    0x09
#define RTC_REG_A   0x0a
#define RTC_REG_B   0x0b
#define RTC_REG_C   0x0c
#define RTC_REG_D   0x0d
#define RTC_CENTURY 0x32

struct rtc {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t ram[128];
};

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t rtc_reg(struct rtc *r, uint8_t i)
{
	struct tm tm;
	time_t t = time(NULL);

	gmtime_r(&t, &tm);
	switch (i) {
	case RTC_SECONDS:
		return bcd(tm.tm_sec);
	case RTC_MINUTES:
		return bcd(tm.tm_min);
	case RTC_HOURS:
		return bcd(tm.tm_hour);
	case RTC_WEEKDAY:
		return bcd(tm.tm_wday + 1);
	case RTC_DAY:
		return bcd(tm.tm_mday);
	case RTC_MONTH:
		return bcd(tm.tm_mon + 1);
	case RTC_YEAR:
		return bcd(tm.tm_year % 100);
	case RTC_CENTURY:
		return bcd((tm.tm_year + 1900) / 100);
	case RTC_REG_A:
		return 0x26; /* 32.768 kHz base, 1024 Hz rate, never "update in progress" */
	case RTC_REG_B:
		return 0x02; /* 24-hour, BCD, no interrupts */
	case RTC_REG_C:
		return 0;
	case RTC_REG_D:
		return 0x80; /* valid RAM and time */
	default:
		return r->ram[i & 0x7f];
	}
}

static void rtc_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct rtc *r = opaque;
	uint8_t v = 0xff;

	pthread_mutex_lock(&r->lock);
	if (off == 1)
		v = rtc_reg(r, r->index);
	pthread_mutex_unlock(&r->lock);
	memset(data, v, len);
}

static void rtc_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct rtc *r = opaque;
	uint8_t v = *(const uint8_t *)data;

	(void)len;
	pthread_mutex_lock(&r->lock);
	if (off == 0)
		r->index = v & 0x7f; /* bit 7 masks NMIs on real hardware */
	else if (r->index > RTC_REG_D)
		r->ram[r->index & 0x7f] = v; /* CMOS RAM; clock registers stay the host's */
	pthread_mutex_unlock(&r->lock);
}

static const struct io_ops rtc_ops = { .read = rtc_read, .write = rtc_write };

struct rtc *rtc_create(struct vm *vm)
{
	struct rtc *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->vm = vm;
	pthread_mutex_init(&r->lock, NULL);
	if (io_bus_register(&vm->pio, PORT_CMOS_INDEX, 2, &rtc_ops, r)) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		return NULL;
	}
	return r;
}

void rtc_destroy(struct rtc *r)
{
	if (!r)
		return;
	io_bus_unregister(&r->vm->pio, PORT_CMOS_INDEX, r);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* CMOS RAM and the index; the time registers are read from the host clock anyway. */
int rtc_save(struct rtc *r, void *fdt, int node)
{
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = st_put_blob(fdt, node, "ram", r->ram, sizeof(r->ram))
		  ?: st_put_u64(fdt, node, "index", r->index);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int rtc_load(struct rtc *r, const void *fdt, int node)
{
	uint8_t ram[sizeof(r->ram)];
	uint64_t idx;

	/* The index selects a byte of ram[]: only what a guest can write (7 bits) loads. */
	if (st_get_blob(fdt, node, "ram", ram, sizeof(ram)) ||
	    st_get_u64(fdt, node, "index", &idx) || idx >= sizeof(ram))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	memcpy(r->ram, ram, sizeof(ram));
	r->index = (uint8_t)idx;
	pthread_mutex_unlock(&r->lock);
	return 0;
}
