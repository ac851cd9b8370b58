// SPDX-License-Identifier: GPL-2.0-or-later
/* Stand-alone `img` entry for tests, until `minivmm img` is dispatched by main.c. */
#include "qcow2/img.h"

int main(int argc, char **argv)
{
	return img_main(argc, argv);
}
