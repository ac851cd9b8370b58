// SPDX-License-Identifier: GPL-2.0-or-later
/* A tiny AML byte-code emitter; see aml.h. */
#include <errno.h>
#include <string.h>

#include "acpi/aml.h"

void aml_init(struct aml *a, void *buf, size_t size)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->size = size;
	a->rt_size_at = (size_t)-1;
}

long aml_finish(const struct aml *a)
{
	if (a->err)
		return a->err;
	if (a->depth || a->rt_size_at != (size_t)-1)
		return -EINVAL;
	return (long)a->len;
}

static void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

/* Reserve @n bytes at the end; NULL (and a sticky error) when full. */
static uint8_t *aml_reserve(struct aml *a, size_t n)
{
	uint8_t *p;

	if (a->err)
		return NULL;
	if (n > a->size - a->len) {
		aml_fail(a, -ENOSPC);
		return NULL;
	}
	p = a->buf + a->len;
	a->len += n;
	return p;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	uint8_t *d = aml_reserve(a, n);

	if (d && n)
		memcpy(d, p, n);
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned int n)
{
	uint8_t b[8];

	for (unsigned int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, n);
}

int aml_pkglen_encode(uint32_t len, uint8_t out[4])
{
	int n;

	if (len > AML_PKGLEN_MAX)
		return -EINVAL;
	if (len <= 0x3f) {
		out[0] = (uint8_t)len;
		return 1;
	}
	/* Lead byte: count of following bytes in bits 7:6, low nibble in 3:0. */
	n = len <= 0xfff ? 2 : len <= 0xfffff ? 3 : 4;
	out[0] = (uint8_t)(((n - 1) << 6) | (len & 0xf));
	for (int i = 1; i < n; i++)
		out[i] = (uint8_t)(len >> (4 + 8 * (i - 1)));
	return n;
}

int aml_pkglen_size(size_t body)
{
	static const size_t max[] = { 0x3f, 0xfff, 0xfffff, AML_PKGLEN_MAX };

	/* The value counts its own bytes, so a body near a limit may need one more. */
	for (int n = 1; n <= 4; n++)
		if (body <= max[n - 1] - n)
			return n;
	return -EINVAL;
}

static void aml_open(struct aml *a)
{
	if (a->err)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		aml_fail(a, -EINVAL);
		return;
	}
	a->open[a->depth++] = a->len;
}

void aml_end(struct aml *a)
{
	uint8_t enc[4];
	size_t at, body;
	int n;

	if (a->err)
		return;
	if (!a->depth) {
		aml_fail(a, -EINVAL);
		return;
	}
	at = a->open[--a->depth];
	body = a->len - at;
	n = aml_pkglen_size(body);
	if (n < 0) {
		aml_fail(a, n);
		return;
	}
	if (!aml_reserve(a, (size_t)n))
		return;
	memmove(a->buf + at + n, a->buf + at, body);
	aml_pkglen_encode((uint32_t)(body + (size_t)n), enc);
	memcpy(a->buf + at, enc, (size_t)n);
}

/* One NameSeg: up to 4 of [A-Z0-9_] (not a leading digit), padded with '_'. */
static int aml_nameseg(const char *s, size_t n, uint8_t seg[4])
{
	if (!n || n > 4 || (s[0] >= '0' && s[0] <= '9'))
		return -EINVAL;
	for (size_t i = 0; i < 4; i++) {
		char c = i < n ? s[i] : '_';

		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return -EINVAL;
		seg[i] = (uint8_t)c;
	}
	return 0;
}

void aml_namestring(struct aml *a, const char *path)
{
	uint8_t segs[255][4];
	size_t nsegs = 0;
	const char *p = path;

	if (*p == AML_ROOT_CHAR) {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == AML_PARENT_CHAR) {
			aml_byte(a, AML_PARENT_CHAR);
			p++;
		}
	}
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (nsegs == 255 || aml_nameseg(p, n, segs[nsegs]) < 0) {
			aml_fail(a, -EINVAL);
			return;
		}
		nsegs++;
		p += n;
		if (dot) {
			p++;
			if (!*p) { /* trailing dot */
				aml_fail(a, -EINVAL);
				return;
			}
		}
	}
	if (nsegs == 0) {
		aml_byte(a, 0x00); /* NullName */
		return;
	}
	if (nsegs == 2)
		aml_byte(a, AML_DUAL_NAME);
	else if (nsegs > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)nsegs);
	}
	aml_bytes(a, segs, nsegs * 4);
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0)
		aml_byte(a, AML_ZERO_OP);
	else if (v == 1)
		aml_byte(a, AML_ONE_OP);
	else if (v == UINT64_MAX) /* Ones is all-ones for a revision 2 DSDT */
		aml_byte(a, AML_ONES_OP);
	else if (v <= UINT8_MAX) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_le(a, v, 1);
	} else if (v <= UINT16_MAX) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_le(a, v, 2);
	} else if (v <= UINT32_MAX) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7f) { /* AsciiCharList is 0x01-0x7f */
			aml_fail(a, -EINVAL);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

void aml_buffer(struct aml *a, const void *data, size_t n)
{
	aml_byte(a, AML_BUFFER_OP);
	aml_open(a);
	aml_integer(a, n);
	aml_bytes(a, data, n);
	aml_end(a);
}

int aml_eisaid_value(const char *id, uint32_t *out)
{
	uint32_t v = 0;

	if (strlen(id) != 7)
		return -EINVAL;
	/* Three 5-bit letters ('A' = 1), then four hex digits, big-endian. */
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return -EINVAL;
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return -EINVAL;
		v = (v << 4) | d;
	}
	*out = v; /* 31 bits: bit 31 stays 0 */
	return 0;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v;

	if (aml_eisaid_value(id, &v) < 0) {
		aml_fail(a, -EINVAL);
		return;
	}
	/* Stored big-endian in a DWordConst, always 5 bytes, as iasl emits it. */
	aml_byte(a, AML_DWORD_PREFIX);
	aml_byte(a, (uint8_t)(v >> 24));
	aml_byte(a, (uint8_t)(v >> 16));
	aml_byte(a, (uint8_t)(v >> 8));
	aml_byte(a, (uint8_t)v);
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, path);
}

void aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE_OP);
	aml_open(a);
	aml_namestring(a, path);
}

void aml_device_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	aml_open(a);
	aml_namestring(a, path);
}

void aml_method_begin(struct aml *a, const char *path, uint8_t nargs)
{
	if (nargs > 7)
		aml_fail(a, -EINVAL);
	aml_byte(a, AML_METHOD_OP);
	aml_open(a);
	aml_namestring(a, path);
	aml_byte(a, nargs & 7); /* MethodFlags: ArgCount, NotSerialized, SyncLevel 0 */
}

void aml_notify(struct aml *a, const char *path, uint8_t value)
{
	aml_byte(a, AML_NOTIFY_OP);
	aml_namestring(a, path);
	aml_integer(a, value);
}

void aml_package_begin(struct aml *a, uint8_t nelems)
{
	aml_byte(a, AML_PACKAGE_OP);
	aml_open(a);
	aml_byte(a, nelems);
}

void aml_rt_begin(struct aml *a)
{
	if (a->rt_size_at != (size_t)-1) { /* no nesting */
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, AML_BUFFER_OP);
	aml_open(a);
	/* BufferSize as a WordConst placeholder, patched by aml_rt_end(). */
	aml_byte(a, AML_WORD_PREFIX);
	a->rt_size_at = a->len;
	aml_le(a, 0, 2);
}

void aml_rt_end(struct aml *a)
{
	size_t n;

	if (a->rt_size_at == (size_t)-1) {
		aml_fail(a, -EINVAL);
		return;
	}
	/* End Tag; checksum 0 means "the descriptors are not summed". */
	aml_byte(a, 0x79);
	aml_byte(a, 0x00);
	if (!a->err) {
		n = a->len - (a->rt_size_at + 2);
		if (n > UINT16_MAX) {
			aml_fail(a, -EINVAL);
		} else {
			a->buf[a->rt_size_at] = (uint8_t)n;
			a->buf[a->rt_size_at + 1] = (uint8_t)(n >> 8);
		}
	}
	a->rt_size_at = (size_t)-1;
	aml_end(a);
}

void aml_rt_irq(struct aml *a, uint8_t irq)
{
	uint16_t mask = (uint16_t)(1U << (irq & 15));

	aml_byte(a, 0x22); /* small item 0x04 (IRQ), 2 bytes: the mask */
	aml_byte(a, mask & 0xff);
	aml_byte(a, mask >> 8);
}

void aml_rt_io16(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	aml_byte(a, 0x47); /* small item 0x08, 7 bytes */
	aml_byte(a, 0x01); /* decodes 16 address lines */
	aml_le(a, min, 2);
	aml_le(a, max, 2);
	aml_byte(a, align);
	aml_byte(a, len);
}

/* Word/DWord/QWord Address Space Descriptor with fields of @w bytes. */
static void aml_rt_addr(struct aml *a, uint8_t tag, unsigned int w, uint8_t type,
			uint8_t type_flags, uint64_t min, uint64_t max)
{
	if (max < min) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, tag);
	aml_le(a, 3 + 5 * w, 2);
	aml_byte(a, type);
	/* Producer (the bridge decodes it for children), fixed, positive decode. */
	aml_byte(a, AML_RES_MIN_FIXED | AML_RES_MAX_FIXED);
	aml_byte(a, type_flags);
	aml_le(a, 0, w); /* granularity */
	aml_le(a, min, w);
	aml_le(a, max, w);
	aml_le(a, 0, w); /* translation offset */
	aml_le(a, max - min + 1, w);
}

void aml_rt_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
	aml_rt_addr(a, 0x88, 2, 2, 0, min, max);
}

void aml_rt_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	aml_rt_addr(a, 0x88, 2, 1, AML_IO_ENTIRE, min, max);
}

void aml_rt_dword_mem(struct aml *a, uint8_t type_flags, uint32_t min, uint32_t max)
{
	aml_rt_addr(a, 0x87, 4, 0, type_flags, min, max);
}

void aml_rt_qword_mem(struct aml *a, uint8_t type_flags, uint64_t min, uint64_t max)
{
	aml_rt_addr(a, 0x8a, 8, 0, type_flags, min, max);
}
