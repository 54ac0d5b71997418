/* The one thing a unit test file exports: its check suite (check_main.c). */
#ifndef EPMD_UNIT_H
#define EPMD_UNIT_H

#include <check.h>

/* The suite of this binary's test_<module>.c, run by check_main.c. */
Suite	*unit_suite(void);

#endif
