/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * New files in directories others may write to (snapshots, overlays, the kernel
 * cache): created exclusively (O_EXCL, so never through a symlink or over a file
 * someone planted), mode 0600, under an unpredictable name when the name is ours
 * to choose.
 */
#ifndef MINIVMM_EXCL_FILE_H
#define MINIVMM_EXCL_FILE_H

#include <stddef.h>

/*
 * Create "@prefix<12 random hex digits>@suffix" relative to @dirfd (AT_FDCWD:
 * the current directory, or @prefix may be absolute) with O_RDWR | O_CREAT |
 * O_EXCL | O_NOFOLLOW | O_CLOEXEC and mode 0600, trying again on a name
 * collision. Returns the descriptor and the malloc'd name in *@name, or a
 * negative errno.
 */
int excl_create_random(int dirfd, const char *prefix, const char *suffix, char **name);

/* "@prefix<12 random hex digits>@suffix", malloc'd, for a name taken another way
 * (renameat2 RENAME_NOREPLACE); 0 or a negative errno. */
int excl_random_name(const char *prefix, const char *suffix, char **name);

/* Create exactly @name (same flags and mode); -EEXIST if anything is there. */
int excl_create(int dirfd, const char *name);

#endif
