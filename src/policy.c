// SPDX-License-Identifier: GPL-2.0-or-later
/* The overcommit policy's arithmetic (policy.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define MIB (1ull << 20)

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

uint64_t policy_guest_used(uint64_t memory, uint64_t actual, uint64_t total, uint64_t avail,
			   bool deflate_on_oom)
{
	uint64_t used = total > avail ? total - avail : 0;
	uint64_t balloon = memory > actual ? memory - actual : 0;

	/* Without deflate_on_oom Linux takes balloon pages out of its total already. */
	if (deflate_on_oom)
		used = used > balloon ? used - balloon : 0;
	return used;
}

uint64_t policy_budget(const struct policy *p)
{
	unsigned int sq = min_u64(p->squeeze_pct, 100);

	return (uint64_t)((unsigned __int128)p->budget * (100 - sq) / 100);
}

static uint64_t need_of(const struct policy *p, const struct policy_vm *v)
{
	uint64_t floor = min_u64(p->min_size, v->memory), need;

	if (!v->have_stats)
		return min_u64(v->actual, v->memory);
	need = v->used + max_u64(p->headroom, v->used / 4);
	if (need < v->used) /* wrapped */
		need = v->memory;
	return min_u64(max_u64(need, floor), v->memory);
}

uint64_t policy_plan(const struct policy *p, struct policy_vm *v, size_t n)
{
	uint64_t budget = policy_budget(p), mem = 0, need = 0, over = 0;
	size_t i;

	/* VMs without statistics stay where they are: nothing says what they use. */
	for (i = 0; i < n; i++) {
		v[i].need = need_of(p, &v[i]);
		v[i].target = v[i].need;
		mem += v[i].memory;
		if (v[i].have_stats)
			need += v[i].need;
		else
			budget = budget > v[i].need ? budget - v[i].need : 0;
	}
	if (mem <= policy_budget(p)) {
		for (i = 0; i < n; i++)
			v[i].target = v[i].memory;
		return 0;
	}
	if (need <= budget) {
		uint64_t spare = budget - need, room = 0;

		for (i = 0; i < n; i++)
			if (v[i].have_stats)
				room += v[i].memory - v[i].need;
		for (i = 0; i < n && room; i++)
			if (v[i].have_stats)
				v[i].target += (uint64_t)((unsigned __int128)min_u64(spare, room) *
							  (v[i].memory - v[i].need) / room);
	} else {
		over = need - budget;
		for (i = 0; i < n; i++)
			if (v[i].have_stats)
				v[i].target =
				    (uint64_t)((unsigned __int128)v[i].need * budget / need);
	}
	for (i = 0; i < n; i++) {
		uint64_t floor = min_u64(p->min_size, v[i].memory);

		if (!v[i].have_stats)
			continue;
		v[i].target = min_u64(max_u64(v[i].target & ~(MIB - 1), floor), v[i].memory);
	}
	return over;
}

unsigned int policy_squeeze(unsigned int squeeze, double pressure, double limit)
{
	if (pressure > limit)
		return squeeze + 10 > 50 ? 50 : squeeze + 10;
	if (pressure < limit / 2)
		return squeeze > 5 ? squeeze - 5 : 0;
	return squeeze;
}

/* The line of @text that starts with @key, or NULL. */
static const char *line_with(const char *text, const char *key)
{
	size_t len = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, len))
			return p + len;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

int policy_parse_psi(const char *text, double *avg10)
{
	const char *p = line_with(text, "some avg10=");
	char *end;
	double v;

	if (!p)
		return -EINVAL;
	v = strtod(p, &end);
	if (end == p || !(v >= 0 && v <= 100))
		return -EINVAL;
	*avg10 = v;
	return 0;
}

static int meminfo_kib(const char *text, const char *key, uint64_t *out)
{
	const char *p = line_with(text, key);
	unsigned long long v;
	char *end;

	if (!p)
		return -EINVAL;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (end == p || errno || v > UINT64_MAX >> 10)
		return -EINVAL;
	*out = (uint64_t)v << 10;
	return 0;
}

int policy_parse_meminfo(const char *text, uint64_t *total, uint64_t *avail)
{
	if (meminfo_kib(text, "MemTotal:", total) || meminfo_kib(text, "MemAvailable:", avail))
		return -EINVAL;
	return 0;
}
