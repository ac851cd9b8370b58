// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * [console] serial = api: the guest's serial console for clients of the control socket
 * (`minivmm console`, docs/api.md). The UART writes into a pipe; one thread keeps the last
 * 64 KiB of it (what an attaching client sees first) and relays both ways with the one
 * attached client. A client that reads slowly skips what scrolled out of the buffer: the
 * guest never waits for it, and memory stays bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "console.h"
#include "devices/serial.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "vm.h"

#define RING_SIZE (64u << 10)

struct console_api {
	struct vm *vm;
	int rd, wr;   /* the pipe: the UART writes wr */
	int wake_efd; /* stop, or a client to take */
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	int pending; /* a client handed over by the API thread, under lock */
	bool stop;   /* under lock */
	int client;
	uint64_t total, sent; /* bytes of output ever, and the client's position */
	uint8_t ring[RING_SIZE];
};

int console_api_create(struct console_api **out)
{
	struct console_api *c = calloc(1, sizeof(*c));
	int p[2];

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->pending = c->client = -1;
	c->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/* The UART never waits: output that does not fit the pipe is dropped. */
	if (c->wake_efd < 0 || pipe2(p, O_CLOEXEC | O_NONBLOCK)) {
		int ret = -errno;

		if (c->wake_efd >= 0)
			close(c->wake_efd);
		free(c);
		return ret;
	}
	c->rd = p[0];
	c->wr = p[1];
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

int console_api_out_fd(const struct console_api *c)
{
	return c->wr;
}

static void wake(struct console_api *c)
{
	uint64_t one = 1;

	if (write(c->wake_efd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is full: a wake-up is pending anyway */
}

int console_api_attach(struct console_api *c, int *fd)
{
	int sv[2], ret = 0;

	/* Non-blocking: our reads and writes never wait (plain read/write, which the console
	 * thread's seccomp role has; the client makes its end blocking if it likes). */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv))
		return -errno;
	pthread_mutex_lock(&c->lock);
	if (c->stop)
		ret = -ESRCH;
	else if (c->pending >= 0 || c->client >= 0)
		ret = -EBUSY; /* one at a time: two typists on one console help nobody */
	else
		c->pending = sv[0];
	pthread_mutex_unlock(&c->lock);
	if (ret) {
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	wake(c);
	*fd = sv[1];
	return 0;
}

static void drop_client(struct console_api *c)
{
	if (c->client < 0)
		return;
	close(c->client);
	pthread_mutex_lock(&c->lock);
	c->client = -1;
	pthread_mutex_unlock(&c->lock);
}

/* The guest's output into the ring. */
static void take_output(struct console_api *c)
{
	uint8_t buf[4096];
	ssize_t n;

	while ((n = read(c->rd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			c->ring[(c->total + i) % RING_SIZE] = buf[i];
		c->total += n;
	}
}

/* What the client has not seen and the ring still holds, as far as its socket takes it. */
static void send_output(struct console_api *c)
{
	if (c->client < 0)
		return;
	if (c->total - c->sent > RING_SIZE)
		c->sent = c->total - RING_SIZE; /* scrolled out while it did not read */
	while (c->sent < c->total) {
		size_t off = c->sent % RING_SIZE, n = c->total - c->sent;
		ssize_t w;

		if (n > RING_SIZE - off)
			n = RING_SIZE - off;
		w = write(c->client, c->ring + off, n); /* SIGPIPE is ignored (session.c) */
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {
			drop_client(c);
			return;
		}
		c->sent += w;
	}
}

/* The client's keys into the UART, waiting while its FIFO is full (never dropped). */
static void take_input(struct console_api *c)
{
	uint8_t buf[256];
	ssize_t n = read(c->client, buf, sizeof(buf));
	size_t off = 0;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		drop_client(c);
		return;
	}
	while (off < (size_t)n && !vm_stopping(c->vm)) {
		off += serial_input(c->vm->serial, buf + off, n - off);
		if (off < (size_t)n)
			nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
	}
}

static void *thread_fn(void *arg)
{
	struct console_api *c = arg;
	uint64_t v;

	pthread_setname_np(pthread_self(), "console-api");
	sandbox_thread_enter(SANDBOX_CONSOLE);
	for (;;) {
		struct pollfd p[3] = {
			{ c->wake_efd, POLLIN, 0 },
			{ c->rd, POLLIN, 0 },
			{ c->client, POLLIN | (c->sent < c->total ? POLLOUT : 0), 0 },
		};
		bool stop;

		if (poll(p, 3, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents && read(c->wake_efd, &v, sizeof(v)) < 0)
			(void)0;
		pthread_mutex_lock(&c->lock);
		stop = c->stop;
		if (c->pending >= 0) {
			c->client = c->pending;
			c->pending = -1;
			/* It starts with what the ring holds. */
			c->sent = c->total > RING_SIZE ? c->total - RING_SIZE : 0;
		}
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		take_output(c);
		if (c->client >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
			take_input(c);
		send_output(c);
	}
	take_output(c);
	send_output(c); /* the last words, as far as they go without waiting */
	drop_client(c);
	return NULL;
}

int console_api_start(struct console_api *c, struct vm *vm)
{
	int ret;

	c->vm = vm;
	pthread_mutex_lock(&c->lock);
	c->stop = false;
	pthread_mutex_unlock(&c->lock);
	ret = -pthread_create(&c->thread, NULL, thread_fn, c);
	c->running = !ret;
	return ret;
}

void console_api_stop(struct console_api *c)
{
	if (!c || !c->running)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_mutex_unlock(&c->lock);
	wake(c);
	pthread_join(c->thread, NULL);
	c->running = false;
}

void console_api_destroy(struct console_api *c)
{
	if (!c)
		return;
	console_api_stop(c);
	if (c->pending >= 0)
		close(c->pending);
	close(c->rd);
	close(c->wr);
	close(c->wake_efd);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
