// SPDX-License-Identifier: GPL-2.0-or-later
/* Token buckets for I/O rate limits (ratelimit.h). */
#include <errno.h>
#include <stdio.h>
#include <sys/timerfd.h>

#include "ratelimit.h"

#define NSEC 1000000000ULL

uint64_t rl_default_burst(uint64_t rate)
{
	/* As QEMU's throttling: short bursts keep a limited disk from feeling stuck. */
	return rate / 10 ? rate / 10 : 1;
}

bool rl_config_limited(const struct rl_config *c)
{
	return c && (c->iops || c->bandwidth);
}

void rl_config_describe(const struct rl_config *c, char *buf, size_t size)
{
	unsigned long long io = c->iops, iob = c->iops_burst ?: rl_default_burst(c->iops);
	unsigned long long bw = c->bandwidth, bwb = c->bandwidth_burst ?: rl_default_burst(bw);

	if (io && bw)
		snprintf(buf, size,
			 ", at most %llu requests/s (burst %llu), %llu bytes/s (burst %llu)", io,
			 iob, bw, bwb);
	else if (io)
		snprintf(buf, size, ", at most %llu requests/s (burst %llu)", io, iob);
	else if (bw)
		snprintf(buf, size, ", at most %llu bytes/s (burst %llu)", bw, bwb);
	else if (size)
		buf[0] = 0;
}

void rl_bucket_init(struct rl_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
	if (rate > RL_RATE_MAX)
		rate = RL_RATE_MAX;
	if (!burst)
		burst = rl_default_burst(rate);
	if (burst > RL_RATE_MAX)
		burst = RL_RATE_MAX;
	b->rate = rate;
	b->burst = rate ? burst : 0;
	b->tokens = (int64_t)b->burst;
	b->frac = 0;
	b->last_ns = now_ns;
}

void rl_bucket_refill(struct rl_bucket *b, uint64_t now_ns)
{
	unsigned __int128 earned, whole;
	int64_t room;

	if (!b->rate)
		return;
	/* Another thread may have refilled with a later clock reading: time never goes back. */
	if (now_ns <= b->last_ns)
		return;
	earned = (unsigned __int128)(now_ns - b->last_ns) * b->rate + b->frac;
	b->last_ns = now_ns;
	whole = earned / NSEC;
	room = (int64_t)b->burst - b->tokens; /* > 0 unless full: tokens <= burst <= 2^50 */
	if (room <= 0 || whole >= (unsigned __int128)room) {
		b->tokens = (int64_t)b->burst;
		b->frac = 0;
		return;
	}
	b->tokens += (int64_t)whole;
	b->frac = (uint64_t)(earned % NSEC);
}

uint64_t rl_bucket_wait(const struct rl_bucket *b)
{
	unsigned __int128 need;

	if (!b->rate || b->tokens >= 1)
		return 0;
	/* (1 - tokens) whole tokens, less the fraction already earned, at rate per second. */
	need = (unsigned __int128)(1 - b->tokens) * NSEC - b->frac;
	need = (need + b->rate - 1) / b->rate;
	return need > UINT64_MAX ? UINT64_MAX : (uint64_t)need;
}

void rl_bucket_take(struct rl_bucket *b, uint64_t n)
{
	if (!b->rate || !n)
		return;
	/* Bounded below: a request costs at most a few GiB, and waits for the next. */
	if (n > (uint64_t)INT64_MAX / 4)
		n = (uint64_t)INT64_MAX / 4;
	if (b->tokens < INT64_MIN / 2 + (int64_t)n)
		b->tokens = INT64_MIN / 2;
	else
		b->tokens -= (int64_t)n;
}

void rl_init(struct ratelimit *rl, const struct rl_config *c, uint64_t now_ns)
{
	pthread_mutex_init(&rl->lock, NULL);
	rl_bucket_init(&rl->ops, c->iops, c->iops_burst, now_ns);
	rl_bucket_init(&rl->bytes, c->bandwidth, c->bandwidth_burst, now_ns);
}

void rl_destroy(struct ratelimit *rl)
{
	pthread_mutex_destroy(&rl->lock);
}

uint64_t rl_wait(struct ratelimit *rl, uint64_t now_ns)
{
	uint64_t a, b;

	pthread_mutex_lock(&rl->lock);
	rl_bucket_refill(&rl->ops, now_ns);
	rl_bucket_refill(&rl->bytes, now_ns);
	a = rl_bucket_wait(&rl->ops);
	b = rl_bucket_wait(&rl->bytes);
	pthread_mutex_unlock(&rl->lock);
	return a > b ? a : b;
}

void rl_charge(struct ratelimit *rl, uint64_t ops, uint64_t bytes)
{
	pthread_mutex_lock(&rl->lock);
	rl_bucket_take(&rl->ops, ops);
	rl_bucket_take(&rl->bytes, bytes);
	pthread_mutex_unlock(&rl->lock);
}

int rl_timer_arm(int fd, uint64_t *armed_at, uint64_t at_ns)
{
	struct itimerspec its = { .it_value = { .tv_sec = at_ns / 1000000000ULL,
						.tv_nsec = at_ns % 1000000000ULL } };

	if (*armed_at && *armed_at <= at_ns)
		return 0;
	if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL))
		return -errno;
	*armed_at = at_ns;
	return 0;
}
