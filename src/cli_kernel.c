// SPDX-License-Identifier: GPL-2.0-or-later
/* minivmm kernel: decompress a bzImage on the host, into a file or the boot cache. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "util.h"
#include "vcpu/boot.h"
#include "vcpu/unpack.h"

static const char kernel_usage[] =
    "usage: minivmm kernel extract BZIMAGE VMLINUX   write the decompressed ELF kernel\n"
    "       minivmm kernel cache BZIMAGE             fill the boot cache for BZIMAGE\n"
    "\n"
    "With [boot] decompress = host (the default) minivmm boots a bzImage by decompressing\n"
    "it on the host and entering the kernel proper; the result is kept in the cache\n"
    "directory ($MINIVMM_CACHE_DIR, else $XDG_CACHE_HOME/minivmm, else ~/.cache/minivmm).\n"
    "An extracted VMLINUX boots through its PVH entry ([boot] kernel = VMLINUX).\n";

int cmd_kernel(int argc, char **argv)
{
	struct bzimage bz;
	size_t klen, elen;
	void *k = NULL, *elf = NULL;
	int ret, fd, cached;
	bool extract;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(kernel_usage, stdout);
		return 0;
	}
	extract = argc == 4 && !strcmp(argv[1], "extract");
	if (!extract && !(argc == 3 && !strcmp(argv[1], "cache"))) {
		fputs(kernel_usage, stderr);
		return EXIT_USAGE;
	}
	ret = read_file(argv[2], 512 << 20, &k, &klen);
	if (ret) {
		pr_err("%s: %s", argv[2], strerror(-ret));
		return EXIT_VM_ERROR;
	}
	ret = bzimage_parse(k, klen, &bz);
	if (ret) {
		pr_err("%s: not a bzImage with a 64-bit entry", argv[2]);
		ret = EXIT_VM_ERROR;
		goto out;
	}
	if (extract) {
		ret = bzimage_unpack(k, klen, &bz, &elf, &elen);
	} else {
		struct kimage ki;

		ret = bzimage_unpack_cached(k, klen, &bz, &ki, &cached);
		if (!ret)
			kimage_release(&ki);
	}
	if (ret) {
		pr_err("%s: cannot decompress the payload: %s", argv[2],
		       ret == -ENOTSUP ? "format not supported (xz, gzip, zstd are)"
				       : strerror(-ret));
		ret = EXIT_VM_ERROR;
		goto out;
	}
	if (extract) {
		fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write_all(fd, elf, elen) || close(fd)) {
			pr_err("%s: %s", argv[3], strerror(errno));
			ret = EXIT_VM_ERROR;
			goto out;
		}
	}
	ret = 0;
out:
	free(elf);
	free(k);
	return ret;
}
