// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Allowlist rules -> a classic BPF seccomp program:
 *
 *   arch != x86-64            -> deny (SB_DENY_ARCH)
 *   nr >= x32 bit             -> deny (SB_DENY_ARCH)
 *   nr == ioctl: request in the list -> allow, else deny
 *   nr == each other call: allow, or check one argument word as for ioctl
 *   anything else             -> deny
 *
 * In log mode (seccomp = log) a first test allows the SIGSYS handler's own
 * syscall instruction. ioctl comes first: KVM_RUN is the hot path, and calls allowed whatever
 * their arguments are answered by the kernel's seccomp cache without
 * running the program at all. Deny is SECCOMP_RET_TRAP with the role in the
 * data, which the SIGSYS handler reports.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"

#define X32_SYSCALL_BIT 0x40000000u
#define ARG_LO(i)	(offsetof(struct seccomp_data, args) + 8 * (i)) /* little-endian */
#define IP_LO		offsetof(struct seccomp_data, instruction_pointer)

struct prog_buf {
	struct sock_filter *v;
	size_t n, cap;
	int err;
};

static size_t emit(struct prog_buf *b, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct sock_filter *v = realloc(b->v, cap * sizeof(*v));

		if (!v) {
			b->err = -ENOMEM;
			return b->n;
		}
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n] = (struct sock_filter){ code, jt, jf, k };
	return b->n++;
}

/* Relative jump from instruction @from to @to, if it fits the 8-bit field. */
static uint8_t jump(struct prog_buf *b, size_t from, size_t to)
{
	if (to <= from || to - from - 1 > 255) {
		b->err = -E2BIG;
		return 0;
	}
	return (uint8_t)(to - from - 1);
}

struct sorted_rule {
	const struct sb_rule *r;
	unsigned int idx;
};

/* ioctl first, then by number; ties keep table order. */
static int rule_cmp(const void *a, const void *b)
{
	const struct sorted_rule *x = a, *y = b;
	int kx = x->r->nr == __NR_ioctl ? -1 : x->r->nr;
	int ky = y->r->nr == __NR_ioctl ? -1 : y->r->nr;

	if (kx != ky)
		return kx < ky ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The rules of one system call, [s, e) of @sr. */
static void emit_call(struct prog_buf *b, const struct sorted_rule *sr, size_t s, size_t e,
		      uint32_t deny)
{
	size_t head, i, allow, fix[256], nfix = 0;
	uint32_t any_ret = 0;
	bool any = false;

	for (i = s; i < e; i++)
		if (sr[i].r->arg < 0) {
			any = true;
			any_ret = sr[i].r->ret;
		}
	head = emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, (uint32_t)sr[s].r->nr);
	if (any) {
		emit(b, BPF_RET | BPF_K, 0, 0, any_ret ? any_ret : SECCOMP_RET_ALLOW);
	} else {
		for (i = s; i < e; i++) {
			const struct sb_rule *r = sr[i].r;

			if (r->ret) { /* conditional rules only allow */
				b->err = -EINVAL;
				return;
			}
			emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(r->arg));
			if (r->mask != 0xffffffffu)
				emit(b, BPF_ALU | BPF_AND | BPF_K, 0, 0, r->mask);
			for (unsigned int v = 0; v < r->nvals; v++) {
				if (nfix == sizeof(fix) / sizeof(fix[0])) {
					b->err = -E2BIG;
					return;
				}
				fix[nfix++] = emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, r->vals[v]);
			}
		}
		emit(b, BPF_RET | BPF_K, 0, 0, deny);
		allow = emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
		for (i = 0; i < nfix && !b->err; i++)
			b->v[fix[i]].jt = jump(b, fix[i], allow);
	}
	/* Not this call: on to the next test; the accumulator still holds the number
	 * (argument loads happen only on a match, and every match ends in a return). */
	if (!b->err)
		b->v[head].jf = jump(b, head, b->n);
}

int sb_build(const struct sb_group *const *groups, unsigned int role, bool log, struct sb_prog *out)
{
	const uint32_t deny = SECCOMP_RET_TRAP | (role & 0xff);
	const uint32_t deny_abi = deny | SB_DENY_ARCH;
	struct prog_buf b = { 0 };
	struct sorted_rule *sr;
	size_t n = 0, i, s;

	for (i = 0; groups[i]; i++)
		n += groups[i]->n;
	sr = calloc(n ? n : 1, sizeof(*sr));
	if (!sr)
		return -ENOMEM;
	n = 0;
	for (i = 0; groups[i]; i++)
		for (size_t j = 0; j < groups[i]->n; j++, n++)
			sr[n] = (struct sorted_rule){ &groups[i]->rules[j], (unsigned int)n };
	qsort(sr, n, sizeof(*sr), rule_cmp);

	if (log) {
		uint64_t ip = sb_escape_ip();

		emit(&b, BPF_LD | BPF_W | BPF_ABS, 0, 0, IP_LO);
		emit(&b, BPF_JMP | BPF_JEQ | BPF_K, 0, 3, (uint32_t)ip);
		emit(&b, BPF_LD | BPF_W | BPF_ABS, 0, 0, IP_LO + 4);
		emit(&b, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (uint32_t)(ip >> 32));
		emit(&b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
	}
	emit(&b, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch));
	emit(&b, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, AUDIT_ARCH_X86_64);
	emit(&b, BPF_RET | BPF_K, 0, 0, deny_abi);
	emit(&b, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
	emit(&b, BPF_JMP | BPF_JGE | BPF_K, 0, 1, X32_SYSCALL_BIT);
	emit(&b, BPF_RET | BPF_K, 0, 0, deny_abi);
	for (s = 0; s < n && !b.err; s = i) {
		for (i = s + 1; i < n && sr[i].r->nr == sr[s].r->nr; i++)
			;
		emit_call(&b, sr, s, i, deny);
	}
	emit(&b, BPF_RET | BPF_K, 0, 0, deny);
	free(sr);
	if (!b.err && b.n > BPF_MAXINSNS)
		b.err = -E2BIG;
	if (b.err) {
		free(b.v);
		return b.err;
	}
	out->insns = b.v;
	out->len = (unsigned short)b.n;
	return 0;
}

void sb_prog_free(struct sb_prog *p)
{
	free(p->insns);
	p->insns = NULL;
	p->len = 0;
}

/* The subset of classic BPF that sb_build() emits, run on a made-up call. */
uint32_t sb_prog_eval(const struct sb_prog *p, uint32_t arch, int nr, const uint64_t args[6])
{
	struct seccomp_data d = { .nr = nr, .arch = arch };
	uint32_t a = 0, w;
	size_t pc = 0;

	if (args)
		memcpy(d.args, args, sizeof(d.args));
	while (pc < p->len) {
		const struct sock_filter *f = &p->insns[pc++];

		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (f->k > sizeof(d) - 4)
				return SECCOMP_RET_KILL_PROCESS;
			memcpy(&w, (const char *)&d + f->k, 4);
			a = w;
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= f->k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == f->k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= f->k ? f->jt : f->jf;
			break;
		case BPF_RET | BPF_K:
			return f->k;
		default:
			return SECCOMP_RET_KILL_PROCESS;
		}
	}
	return SECCOMP_RET_KILL_PROCESS;
}

bool sb_prog_allows(const struct sb_prog *p, int nr, const uint64_t args[6])
{
	return sb_prog_eval(p, AUDIT_ARCH_X86_64, nr, args) == SECCOMP_RET_ALLOW;
}

int sb_install(const struct sb_prog *p)
{
	struct sock_fprog fp = { .len = p->len, .filter = p->insns };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp))
		return -errno;
	return 0;
}
