// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Asynchronous events of the control socket (docs/api.md): any thread queues one, the
 * server thread copies it into each subscriber's buffer and sends it without blocking.
 * A subscriber that stops reading is closed once 64 KiB wait for it, so the VMM never
 * waits for a client nor holds more than that per connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_int.h"
#include "log.h"

#define EVENT_MAX 4096 /* one event line */

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void api_server_event(struct api_server *s, const char *name, const char *data)
{
	uint64_t one = 1;
	char *line;

	if (!s)
		return;
	if (asprintf(&line, "{\"event\":\"%s\",\"ts_ms\":%llu%s%s}\n", name,
		     (unsigned long long)wall_ms(), data ? ",\"data\":" : "", data ? data : "") < 0)
		return;
	if (strlen(line) > EVENT_MAX) {
		free(line);
		return;
	}
	pthread_mutex_lock(&s->ev_lock);
	if (s->ev_n == API_EVQ_LEN) { /* nobody drains it fast enough: the oldest go */
		free(s->evq[s->ev_head]);
		s->ev_head = (s->ev_head + 1) % API_EVQ_LEN;
		s->ev_n--;
		s->ev_dropped++;
	}
	s->evq[(s->ev_head + s->ev_n++) % API_EVQ_LEN] = line;
	pthread_mutex_unlock(&s->ev_lock);
	if (write(s->ev_fd, &one, sizeof(one)) < 0)
		(void)0; /* the counter is full: a wake-up is pending anyway */
}

int api_conn_flush(struct api_server *s, struct api_conn *c, bool wait)
{
	ssize_t n;

	if (!c->out_len)
		return 0;
	if (wait) {
		n = api_send_line(s, c->fd, c->out, c->out_len);
		c->out_len = 0;
		return n;
	}
	n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	memmove(c->out, c->out + n, c->out_len - n);
	c->out_len -= n;
	return 0;
}

static void to_subscribers(struct api_server *s, const char *line)
{
	size_t len = strlen(line);

	for (int i = 0; i < API_MAX_CONNS; i++) {
		struct api_conn *c = &s->conns[i];

		if (c->fd < 0 || !c->subscribed)
			continue;
		if (len > API_OUT_MAX - c->out_len) {
			pr_warn("api: a subscriber left %zu bytes of events unread: closing it",
				c->out_len);
			api_conn_close(c);
			continue;
		}
		memcpy(c->out + c->out_len, line, len);
		c->out_len += len;
	}
}

void api_events_deliver(struct api_server *s)
{
	char *q[API_EVQ_LEN], lost[96];
	unsigned int n, i;
	uint64_t dropped, v;

	if (read(s->ev_fd, &v, sizeof(v)) < 0)
		(void)0; /* nothing new, or already read */
	pthread_mutex_lock(&s->ev_lock);
	n = s->ev_n;
	for (i = 0; i < n; i++)
		q[i] = s->evq[(s->ev_head + i) % API_EVQ_LEN];
	s->ev_head = s->ev_n = 0;
	dropped = s->ev_dropped;
	s->ev_dropped = 0;
	pthread_mutex_unlock(&s->ev_lock);
	if (dropped) {
		snprintf(lost, sizeof(lost),
			 "{\"event\":\"events-dropped\",\"data\":{\"count\":%llu}}\n",
			 (unsigned long long)dropped);
		to_subscribers(s, lost);
	}
	for (i = 0; i < n; i++) {
		to_subscribers(s, q[i]);
		free(q[i]);
	}
	for (i = 0; i < API_MAX_CONNS; i++) {
		struct api_conn *c = &s->conns[i];

		if (c->fd >= 0 && api_conn_flush(s, c, false))
			api_conn_close(c);
	}
}

void api_events_free(struct api_server *s)
{
	for (unsigned int i = 0; i < s->ev_n; i++)
		free(s->evq[(s->ev_head + i) % API_EVQ_LEN]);
	s->ev_n = 0;
}
