/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A tiny AML byte-code emitter: just enough of ACPI 6 chapter 20 and the
 * resource descriptors of chapter 6.4 to write a static DSDT.
 *
 * The emitter writes into a caller-owned, bounded buffer. Errors are sticky:
 * the first one (-ENOSPC, -EINVAL) is kept in a->err, later calls do nothing,
 * and aml_finish() reports it, so callers check once at the end.
 *
 * Objects with a PkgLength (Scope, Device, Package, Buffer) are open/close
 * pairs: *_begin() remembers where the PkgLength goes, *_end() measures the
 * body, then moves it up by the 1-4 bytes the encoding needs and writes it.
 */
#ifndef MINIVMM_ACPI_AML_H
#define MINIVMM_ACPI_AML_H

#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH  16
#define AML_PKGLEN_MAX 0x0fffffffU /* 28 bits */

/* Opcodes and prefixes (ACPI 6.x, 20.2). */
#define AML_ZERO_OP	  0x00
#define AML_ONE_OP	  0x01
#define AML_NAME_OP	  0x08
#define AML_BYTE_PREFIX	  0x0a
#define AML_WORD_PREFIX	  0x0b
#define AML_DWORD_PREFIX  0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX  0x0e
#define AML_SCOPE_OP	  0x10
#define AML_BUFFER_OP	  0x11
#define AML_PACKAGE_OP	  0x12
#define AML_METHOD_OP	  0x14
#define AML_NOTIFY_OP	  0x86
#define AML_DUAL_NAME	  0x2e
#define AML_MULTI_NAME	  0x2f
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP	  0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR	  '\\'
#define AML_PARENT_CHAR	  '^'
#define AML_ONES_OP	  0xff

/* Address space descriptor flags (ACPI 6.x, 6.4.3.5). */
#define AML_RES_CONSUMER   (1 << 0) /* general flags; clear = producer */
#define AML_RES_SUB_DECODE (1 << 1)
#define AML_RES_MIN_FIXED  (1 << 2)
#define AML_RES_MAX_FIXED  (1 << 3)
#define AML_MEM_RW	   (1 << 0) /* memory type-specific flags */
#define AML_MEM_NONCACHE   (0 << 1)
#define AML_MEM_CACHE	   (1 << 1)
#define AML_MEM_WC	   (2 << 1)
#define AML_MEM_PREFETCH   (3 << 1)
#define AML_IO_ENTIRE	   3 /* I/O type-specific flags: ISA and non-ISA ranges */

struct aml {
	uint8_t *buf;
	size_t size;
	size_t len;
	int err;
	unsigned int depth;
	size_t open[AML_MAX_DEPTH]; /* where each open PkgLength goes */
	size_t rt_size_at;	    /* ResourceTemplate BufferSize placeholder */
};

void aml_init(struct aml *a, void *buf, size_t size);
/* Bytes written, or the first error; -EINVAL when an object is left open. */
long aml_finish(const struct aml *a);

/*
 * Encode @len (the PkgLength value, which counts its own bytes) into @out.
 * Returns the number of bytes (1-4) or -EINVAL when @len > AML_PKGLEN_MAX or
 * when @len is too small to count its own encoding.
 */
int aml_pkglen_encode(uint32_t len, uint8_t out[4]);
/* Bytes of PkgLength needed in front of a body of @body bytes, or -EINVAL. */
int aml_pkglen_size(size_t body);

void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);

/* "\\_SB.PCI0", "^FOO", "_S5_", "PCI" (padded with '_'), "" (NullName). */
void aml_namestring(struct aml *a, const char *path);
void aml_integer(struct aml *a, uint64_t v); /* shortest encoding */
void aml_string(struct aml *a, const char *s);
void aml_buffer(struct aml *a, const void *data, size_t n);
/* "PNP0A03" -> DWordConst of the compressed EISA id (bytes 41 d0 0a 03). */
void aml_eisaid(struct aml *a, const char *id);
/* Notify(path, value) */
void aml_notify(struct aml *a, const char *path, uint8_t value);
int aml_eisaid_value(const char *id, uint32_t *out);

/* Name(path, <the next object>). */
void aml_name(struct aml *a, const char *path);
void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *path);
void aml_package_begin(struct aml *a, uint8_t nelems);
/* Method(path, nargs, NotSerialized){ ... } */
void aml_method_begin(struct aml *a, const char *path, uint8_t nargs);
/* Closes the innermost Scope, Device, Package or Method. */
void aml_end(struct aml *a);

/* Buffer(){ descriptors..., EndTag } */
void aml_rt_begin(struct aml *a);
void aml_rt_end(struct aml *a);
void aml_rt_io16(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* IRQNoFlags(){irq}: edge-triggered, active-high, exclusive ISA interrupt. */
void aml_rt_irq(struct aml *a, uint8_t irq);
void aml_rt_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_rt_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_rt_dword_mem(struct aml *a, uint8_t type_flags, uint32_t min, uint32_t max);
void aml_rt_qword_mem(struct aml *a, uint8_t type_flags, uint64_t min, uint64_t max);

#endif
