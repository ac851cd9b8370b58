// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "term.h"
#include "util.h"

int log_verbosity;
static uint64_t log_t0;

/* Debug messages carry the time since start-up: where does boot time go? */
__attribute__((constructor)) static void log_init(void)
{
	log_t0 = now_ns();
}

void log_msg(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	if (level > log_verbosity)
		return;
	if (log_verbosity >= LOG_DEBUG)
		n = snprintf(buf, sizeof(buf), "minivmm: [%8.3f] %s", (now_ns() - log_t0) / 1e9,
			     level == LOG_WARN ? "warning: " : "");
	else
		n = snprintf(buf, sizeof(buf), "minivmm: %s", level == LOG_WARN ? "warning: " : "");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	/* In raw terminal mode a bare \n does not return the carriage. */
	fprintf(stderr, "%s%s", buf, term_is_raw() ? "\r\n" : "\n");
}
