/* Unit tests for the LISTEN_FDS reader of src/systemd.c (restart handovers). */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "systemd.h"
#include "unit.h"

/* Set LISTEN_PID to ours (or pid), LISTEN_FDS and LISTEN_FDNAMES. */
static void
set_env(long pid, const char *fds, const char *names)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", pid != 0 ? pid : (long)getpid());
	setenv("LISTEN_PID", buf, 1);
	setenv("LISTEN_FDS", fds, 1);
	if (names != NULL)
		setenv("LISTEN_FDNAMES", names, 1);
	else
		unsetenv("LISTEN_FDNAMES");
}

/* Free a names array. */
static void
free_names(char **names)
{
	size_t i;

	for (i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

START_TEST(test_names_come_in_order_and_the_environment_is_cleared)
{
	char	**names = NULL;

	set_env(0, "3", "epmd-c.socket:1f:epmd-c-state.0");
	ck_assert_int_eq(systemd_listen_env(&names), 3);
	ck_assert_ptr_nonnull(names);
	ck_assert_str_eq(names[0], "epmd-c.socket");
	ck_assert_str_eq(names[1], "1f");
	ck_assert_str_eq(names[2], "epmd-c-state.0");
	ck_assert_ptr_null(names[3]);
	ck_assert_ptr_null(getenv("LISTEN_PID"));
	ck_assert_ptr_null(getenv("LISTEN_FDS"));
	ck_assert_ptr_null(getenv("LISTEN_FDNAMES"));
	free_names(names);
}
END_TEST

START_TEST(test_missing_names_are_empty)
{
	char	**names = NULL;

	set_env(0, "3", "a");
	ck_assert_int_eq(systemd_listen_env(&names), 3);
	ck_assert_str_eq(names[0], "a");
	ck_assert_str_eq(names[1], "");
	ck_assert_str_eq(names[2], "");
	free_names(names);
	set_env(0, "2", NULL);
	ck_assert_int_eq(systemd_listen_env(&names), 2);
	ck_assert_str_eq(names[0], "");
	ck_assert_str_eq(names[1], "");
	free_names(names);
}
END_TEST

START_TEST(test_another_process_fds_are_not_ours)
{
	char	**names = NULL;

	set_env((long)getpid() + 1, "2", "a:b");
	ck_assert_int_eq(systemd_listen_env(&names), 0);
	ck_assert_ptr_null(names);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	ck_assert_int_eq(systemd_listen_env(&names), 0);
}
END_TEST

START_TEST(test_bad_counts_are_refused)
{
	char	**names = NULL;

	set_env(0, "x", "a");
	ck_assert_int_eq(systemd_listen_env(&names), -1);
	set_env(0, "-1", "a");
	ck_assert_int_eq(systemd_listen_env(&names), -1);
	set_env(0, "99999999999", "a");
	ck_assert_int_eq(systemd_listen_env(&names), -1);
	set_env(0, "0", "");
	ck_assert_int_eq(systemd_listen_env(&names), 0);
	free_names(names);
}
END_TEST

/* Every test of the reader in one suite. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("systemd");
	TCase	*tc = tcase_create("listen_fds");

	tcase_add_test(tc,
	    test_names_come_in_order_and_the_environment_is_cleared);
	tcase_add_test(tc, test_missing_names_are_empty);
	tcase_add_test(tc, test_another_process_fds_are_not_ours);
	tcase_add_test(tc, test_bad_counts_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

