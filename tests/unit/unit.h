/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the Check unit tests. */
#ifndef MINIVMM_TESTS_UNIT_H
#define MINIVMM_TESTS_UNIT_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * A test that cannot run here says so and returns: one `SKIP name: reason` line that
 * tests/run-unit.sh counts into its summary (Check itself would count it as passed).
 */
#define UNIT_SKIP(...)                                                                             \
	do {                                                                                       \
		/* START_TEST(name) defines name_fn */                                             \
		printf("SKIP %.*s: ", (int)(sizeof(__func__) - 4), __func__);                      \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		fflush(stdout);                                                                    \
		return;                                                                            \
	} while (0)

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
