// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Control socket requests (line and JSON forms): arbitrary bytes as one
 * request line. A request that parses must be one the server can act on:
 * a known command, for save an absolute path inside the line, a port for vsock only,
 * a size for balloon only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_request req;
	char *line, err[256];

	if (size > API_LINE_MAX)
		return 0;
	/* What the server hands over: no '\n', NUL-terminated. */
	line = malloc(size + 1);
	if (!line)
		abort();
	memcpy(line, data, size);
	line[size] = '\0';
	if (memchr(line, '\n', size) || strlen(line) != size)
		goto out;
	err[0] = 'x';
	if (api_parse_request(line, &req, err, sizeof(err))) {
		if (!memchr(err, '\0', sizeof(err)) || !err[0])
			abort(); /* every error has a reason */
		goto out;
	}
	if (req.cmd == API_SAVE) {
		if (!req.path || req.path[0] != '/' || req.path < line ||
		    req.path + strlen(req.path) > line + size)
			abort();
	} else if (req.cmd > API_BALLOON || req.path || req.stop) {
		abort();
	}
	if (req.cmd != API_VSOCK && req.port)
		abort();
	if (req.cmd != API_BALLOON && (req.has_size || req.size))
		abort();
out:
	free(line);
	return 0;
}
