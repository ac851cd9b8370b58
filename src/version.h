/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The release and the control protocol's version (docs/api.md). */
#ifndef MINIVMM_VERSION_H
#define MINIVMM_VERSION_H

#define MINIVMM_VERSION	     "0.1.0"
#define MINIVMM_API_PROTOCOL 2

#endif
