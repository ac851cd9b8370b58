// SPDX-License-Identifier: GPL-2.0-or-later
/* Option parsing shared by the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "cli.h"

int cli_parse_seconds(const char *s, double max_s, int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > max_s)
		return -EINVAL;
	*ms = (int)ceil(v * 1000);
	return 0;
}
