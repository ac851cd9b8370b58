// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * guest.cfg parser: arbitrary bytes as the file content. Kernel/initrd checks
 * may fail (a seed uses /proc/self/exe so they can pass too). Whatever loads
 * must dump to text that loads back to the same config.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static FILE *devnull;

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void round_trip(const struct vm_config *cfg)
{
	struct vm_config again;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out)
		abort();
	config_dump(cfg, out);
	fclose(out);
	if (config_load_string(&again, "fuzz.cfg", text, len, NULL, 0, devnull))
		abort();
	if (again.mem_size != cfg->mem_size || again.vcpus != cfg->vcpus ||
	    again.nested != cfg->nested || again.on_reboot != cfg->on_reboot ||
	    again.serial != cfg->serial || !same(again.kernel, cfg->kernel) ||
	    !same(again.initrd, cfg->initrd) || !same(again.cmdline, cfg->cmdline) ||
	    !same(again.serial_path, cfg->serial_path))
		abort();
	/* Rate limits: those set are dumped, the others stay 0. */
	for (unsigned int i = 0; i < CONFIG_MAX_DISKS; i++)
		if (memcmp(&again.disks[i].rl, &cfg->disks[i].rl, sizeof(cfg->disks[i].rl)))
			abort();
	for (unsigned int i = 0; i < CONFIG_MAX_SHARES; i++)
		if (memcmp(&again.shares[i].rl, &cfg->shares[i].rl, sizeof(cfg->shares[i].rl)))
			abort();
	/* Every key: the reloaded configuration dumps to the very same text. */
	{
		char *text2 = NULL;
		size_t len2 = 0;
		FILE *out2 = open_memstream(&text2, &len2);

		if (!out2)
			abort();
		config_dump(&again, out2);
		fclose(out2);
		if (len2 != len || memcmp(text, text2, len))
			abort();
		free(text2);
	}
	config_free(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_config cfg;
	char *s;
	uint64_t v;

	if (!devnull)
		devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();

	/* No directory in the name: relative paths stay cwd-relative. */
	if (!config_load_string(&cfg, "fuzz.cfg", (const char *)data, size, NULL, 0, devnull)) {
		round_trip(&cfg);
		config_free(&cfg);
	}

	s = strndup((const char *)data, size);
	if (s) {
		config_parse_size(s, &v);
		free(s);
	}
	return 0;
}
