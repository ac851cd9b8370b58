// SPDX-License-Identifier: GPL-2.0-or-later
/* Small libfdt helpers shared by every state writer and reader. */
#include <errno.h>
#include <string.h>

#include "snapshot/state.h"

/* A libfdt error as an errno: only a full tree is -ENOSPC (the writer grows it and retries). */
static int st_err(int fdt_err)
{
	if (fdt_err >= 0)
		return 0;
	return fdt_err == -FDT_ERR_NOSPACE ? -ENOSPC : fdt_err == -FDT_ERR_EXISTS ? -EEXIST : -EINVAL;
}

int st_put_u64(void *fdt, int node, const char *name, uint64_t v)
{
	return st_err(fdt_setprop_u64(fdt, node, name, v));
}

int st_get_u64(const void *fdt, int node, const char *name, uint64_t *v)
{
	int len;
	const fdt64_t *p = fdt_getprop(fdt, node, name, &len);

	if (!p || len != sizeof(*p))
		return -EINVAL;
	*v = fdt64_ld(p); /* property data is only 4-byte aligned */
	return 0;
}

int st_put_u32(void *fdt, int node, const char *name, uint32_t v)
{
	return st_err(fdt_setprop_u32(fdt, node, name, v));
}

int st_get_u32(const void *fdt, int node, const char *name, uint32_t *v)
{
	int len;
	const fdt32_t *p = fdt_getprop(fdt, node, name, &len);

	if (!p || len != sizeof(*p))
		return -EINVAL;
	*v = fdt32_ld(p);
	return 0;
}

int st_put_blob(void *fdt, int node, const char *name, const void *p, size_t len)
{
	if (len > INT32_MAX)
		return -EINVAL;
	return st_err(fdt_setprop(fdt, node, name, p, (int)len));
}

const void *st_get_raw(const void *fdt, int node, const char *name, int *len)
{
	return fdt_getprop(fdt, node, name, len);
}

int st_get_blob(const void *fdt, int node, const char *name, void *p, size_t len)
{
	int l;
	const void *v = fdt_getprop(fdt, node, name, &l);

	if (!v || l < 0 || (size_t)l != len)
		return -EINVAL;
	memcpy(p, v, len);
	return 0;
}

int st_add_node(void *fdt, int parent, const char *name)
{
	int n = fdt_add_subnode(fdt, parent, name);

	return n < 0 ? st_err(n) : n;
}

int st_node(const void *fdt, int parent, const char *name)
{
	int n = fdt_subnode_offset(fdt, parent, name);

	return n < 0 ? -ENOENT : n;
}
