/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A stream to a running VM's guest agent through the VM's control socket. */
#ifndef MINIVMM_AGENT_CONNECT_H
#define MINIVMM_AGENT_CONNECT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Ask the VM whose control socket is @api_socket for a stream to its guest's vsock @port
 * and wait (at most @timeout_ms, > 0) for the guest to accept it. A refused port is tried
 * again every 100 ms for @wait_ms (0: once), for an agent that is still starting.
 * 0 with *@out connected (the caller closes it), or a negative errno with the reason in
 * @err: -ECONNREFUSED (nothing listens on @port), -ENODEV (no vsock device), -ETIMEDOUT,
 * -EPROTO, or connect()'s errno for @api_socket.
 */
int agent_connect_api(const char *api_socket, uint32_t port, int timeout_ms, int wait_ms, int *out,
		      char *err, size_t errlen);

#endif
