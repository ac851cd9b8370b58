/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * minivmm's cache directory ($MINIVMM_CACHE_DIR, else $XDG_CACHE_HOME/minivmm, else
 * ~/.cache/minivmm): unpacked kernels and decompressed snapshot memory. What is in it
 * becomes a guest's kernel or memory, so only a directory of ours that nobody else can
 * write to is used.
 */
#ifndef MINIVMM_CACHE_DIR_H
#define MINIVMM_CACHE_DIR_H

#include <stddef.h>
#include <stdint.h>

/* The directory's path in @buf, or NULL if there is none (no $HOME either). */
const char *cache_dir_path(char *buf, size_t size);

/*
 * Open @dir (created 0700 if missing): a directory owned by us that others cannot
 * write to; an existing one of ours is tightened to 0700 where the file system lets
 * us. @what names the user in the warning printed on refusal (-EPERM).
 */
int cache_dir_open(const char *dir, const char *what);

/* Lower-case hex of @len bytes at @p into @out (room for 2 * @len + 1). */
void cache_hex(const uint8_t *p, size_t len, char *out);

#endif
