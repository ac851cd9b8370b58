// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "term.h"

int log_verbosity;

void log_msg(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	if (level > log_verbosity)
		return;
	n = snprintf(buf, sizeof(buf), "minivmm: %s", level == LOG_WARN ? "warning: " : "");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	/* In raw terminal mode a bare \n does not return the carriage. */
	fprintf(stderr, "%s%s", buf, term_is_raw() ? "\r\n" : "\n");
}
