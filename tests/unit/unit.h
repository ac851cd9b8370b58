/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the Check unit tests. */
#ifndef MINIVMM_TESTS_UNIT_H
#define MINIVMM_TESTS_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Run @s, print Check's summary, and turn failures into the exit status. */
static inline int unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
