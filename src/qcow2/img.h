/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `minivmm img`: create, info, check and bench qcow2 images without QEMU. */
#ifndef MINIVMM_QCOW2_IMG_H
#define MINIVMM_QCOW2_IMG_H

/* argv[0] is "img" (or anything); argv[1] the subcommand. Returns the exit status. */
int img_main(int argc, char **argv);

#endif
