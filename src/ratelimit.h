/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * I/O rate limits: token buckets for operations and bytes ([disk.N] and
 * [share.N] iops, bandwidth and their bursts; docs/config.md).
 *
 * A bucket holds up to @burst tokens and gains @rate per second; it starts
 * full. A request may start while its buckets hold a token (a whole one: at
 * least one operation, at least one byte), and then takes what it costs,
 * which may leave a bucket below zero: a request larger than what is left
 * (or than the burst) is not refused for ever, it is paid back before the
 * next one may start. Over any stretch of time T the bytes and operations
 * started are thus at most burst + rate * T, plus one request.
 */
#ifndef MINIVMM_RATELIMIT_H
#define MINIVMM_RATELIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the configuration asks for; 0: unlimited (rates), the default (bursts). */
struct rl_config {
	uint64_t iops, iops_burst;	     /* operations per second, and how many at once */
	uint64_t bandwidth, bandwidth_burst; /* bytes per second, and how many at once */
};

/* Rates and bursts beyond this are refused by the configuration (overflow-free maths). */
#define RL_RATE_MAX (1ULL << 50)

struct rl_bucket {
	uint64_t rate;	  /* tokens per second; 0: unlimited */
	uint64_t burst;	  /* the most it holds */
	int64_t tokens;	  /* below zero: still paying for a large request */
	uint64_t frac;	  /* what the last refill left over, in 1e-9 tokens */
	uint64_t last_ns; /* when it was last refilled */
};

/* One device's limits, shared by its I/O threads. */
struct ratelimit {
	pthread_mutex_t lock;
	struct rl_bucket ops, bytes;
};

/* The burst a rate gets when none is given: a tenth of a second's worth, at least one. */
uint64_t rl_default_burst(uint64_t rate);
/* Whether @c limits anything. */
bool rl_config_limited(const struct rl_config *c);
/* ", at most N requests/s (burst B), N bytes/s (burst B)" for the limits set; "" for none. */
void rl_config_describe(const struct rl_config *c, char *buf, size_t size);

/* A full bucket of @rate per second, holding @burst (0: the default). */
void rl_bucket_init(struct rl_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns);
/* Add what @now_ns - last refill earned, up to the burst. */
void rl_bucket_refill(struct rl_bucket *b, uint64_t now_ns);
/* After a refill: 0 when the bucket holds a whole token, else nanoseconds until it will. */
uint64_t rl_bucket_wait(const struct rl_bucket *b);
/* Take @n tokens (the bucket may go below zero). */
void rl_bucket_take(struct rl_bucket *b, uint64_t n);

void rl_init(struct ratelimit *rl, const struct rl_config *c, uint64_t now_ns);
void rl_destroy(struct ratelimit *rl);
/* 0 when a request may start now, else nanoseconds to wait before asking again. */
uint64_t rl_wait(struct ratelimit *rl, uint64_t now_ns);
/* A request started: @ops operations and @bytes bytes. */
void rl_charge(struct ratelimit *rl, uint64_t ops, uint64_t bytes);

/* Arm timerfd @fd (CLOCK_MONOTONIC) for @at_ns unless it is armed earlier already
 * (*@armed_at, 0: disarmed); 0 or a negative errno. */
int rl_timer_arm(int fd, uint64_t *armed_at, uint64_t at_ns);

#endif
