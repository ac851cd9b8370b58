// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The spawner: once the sandbox is on, every pthread_create() of the VMM is
 * carried out by this one thread (the link maps pthread_create to
 * __wrap_pthread_create, see the Makefile). A seccomp filter is inherited by
 * the threads a thread creates and cannot be removed, so a device thread
 * started by a vCPU (DRIVER_OK is a guest register write) would otherwise
 * carry the vCPU's filter under its own, and the vCPU's would have to allow
 * everything its children do. The spawner holds the baseline filter (the
 * union of all roles); its children start from that and narrow it to their
 * role. The caller waits for the result, so pthread_create() keeps its
 * meaning; the new thread starts with the caller's signal mask, as it would
 * have.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "sandbox/sandbox_int.h"

int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

struct spawn_req {
	char name[16]; /* the creator's, for the new thread until it names itself */
	pthread_t *thread;
	const pthread_attr_t *attr;
	void *(*fn)(void *);
	void *arg;
	sigset_t mask;
	int ret;
	bool done;
};

struct trampoline {
	char name[16];
	void *(*fn)(void *);
	void *arg;
	sigset_t mask;
};

static pthread_mutex_t caller_lock = PTHREAD_MUTEX_INITIALIZER; /* one request at a time */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t req_cond = PTHREAD_COND_INITIALIZER, done_cond = PTHREAD_COND_INITIALIZER;
static struct spawn_req *pending;
static bool stopping;
static atomic_bool running;
static pthread_t spawner;
static __thread bool in_spawner;
static int start_err;
static bool started;

static void *trampoline_fn(void *p)
{
	struct trampoline t = *(struct trampoline *)p;

	free(p);
	/* Not "spawner": a thread that never names itself is its creator's helper. */
	prctl(PR_SET_NAME, t.name, 0, 0, 0);
	pthread_sigmask(SIG_SETMASK, &t.mask, NULL);
	return t.fn(t.arg);
}

static int create(struct spawn_req *r)
{
	struct trampoline *t = malloc(sizeof(*t));
	int ret;

	if (!t)
		return EAGAIN;
	memcpy(t->name, r->name, sizeof(t->name));
	t->fn = r->fn;
	t->arg = r->arg;
	t->mask = r->mask;
	ret = __real_pthread_create(r->thread, r->attr, trampoline_fn, t);
	if (ret)
		free(t);
	return ret;
}

static void *spawner_fn(void *arg)
{
	sigset_t all;
	int ret;

	(void)arg;
	in_spawner = true;
	/* Children start with every signal blocked until their trampoline sets the
	 * creator's mask. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), "spawner");
	ret = sb_enter(SANDBOX_BASE);
	pthread_mutex_lock(&lock);
	start_err = ret;
	started = true;
	pthread_cond_broadcast(&done_cond);
	while (!ret) {
		struct spawn_req *r;

		while (!pending && !stopping)
			pthread_cond_wait(&req_cond, &lock);
		if (!pending)
			break;
		r = pending;
		pending = NULL;
		pthread_mutex_unlock(&lock);
		ret = create(r);
		pthread_mutex_lock(&lock);
		r->ret = ret;
		r->done = true;
		ret = 0;
		pthread_cond_broadcast(&done_cond);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	struct spawn_req r = { .thread = t, .attr = attr, .fn = fn, .arg = arg };

	if (!atomic_load(&running) || in_spawner)
		return __real_pthread_create(t, attr, fn, arg);
	pthread_sigmask(SIG_BLOCK, NULL, &r.mask);
	snprintf(r.name, sizeof(r.name), "%.12s+",
		 *sb_identity_name() ? sb_identity_name() : "minivmm");
	pthread_mutex_lock(&caller_lock);
	pthread_mutex_lock(&lock);
	pending = &r;
	pthread_cond_signal(&req_cond);
	while (!r.done)
		pthread_cond_wait(&done_cond, &lock);
	pthread_mutex_unlock(&lock);
	pthread_mutex_unlock(&caller_lock);
	return r.ret;
}

int sb_spawner_start(void)
{
	int ret;

	stopping = false;
	started = false;
	ret = __real_pthread_create(&spawner, NULL, spawner_fn, NULL);
	if (ret)
		return -ret;
	pthread_mutex_lock(&lock);
	while (!started)
		pthread_cond_wait(&done_cond, &lock);
	ret = start_err;
	pthread_mutex_unlock(&lock);
	if (ret) {
		pthread_join(spawner, NULL);
		return ret;
	}
	atomic_store(&running, true);
	return 0;
}

void sb_spawner_stop(void)
{
	if (!atomic_load(&running))
		return;
	pthread_mutex_lock(&caller_lock); /* no request in flight */
	atomic_store(&running, false);
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_signal(&req_cond);
	pthread_mutex_unlock(&lock);
	pthread_mutex_unlock(&caller_lock);
	pthread_join(spawner, NULL);
}
