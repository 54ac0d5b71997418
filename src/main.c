/* epmd-c: the Erlang port mapper daemon and its command-line client. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "options.h"
#include "restart.h"
#include "server.h"
#include "systemd.h"

/* Fork; the parent exits 0 at once (erl relies on it), the child goes on. */
static void
fork_away(void)
{
	switch (fork()) {
	case -1:
		fatal("fork");
	case 0:
		return;
	default:
		_exit(0);
	}
}

/* Detach: double fork, new session, fds 0-2 on /dev/null. */
static void
daemonize(void)
{
	int fd;

	fork_away();
	if (setsid() == -1)
		fatal("setsid");
	signal(SIGHUP, SIG_IGN);
	fork_away();	/* not a session leader: never gets a terminal */
	if (chdir("/") == -1)
		fatal("chdir /");
	umask(022);
	if ((fd = open("/dev/null", O_RDWR)) == -1)
		fatal("/dev/null");
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/* The journal when systemd connected us to it, syslog when detached. */
static enum log_target
log_target(const struct options *opts)
{
	/* systemd sets JOURNAL_STREAM when stderr goes to the journal. */
	if (opts->systemd && getenv("JOURNAL_STREAM") != NULL)
		return LOG_TO_JOURNAL;
	return opts->daemon ? LOG_TO_SYSLOG : LOG_TO_STDERR;
}

/* The daemon's life: build, listen, serve, tear down. */
static int
serve(const struct options *opts)
{
	struct server	srv;
	int		status;

	server_init(&srv, opts);
	server_listen(&srv);
	status = server_loop(&srv);
	server_free(&srv);
	return status;
}

/* Parse the command line, then run a client command or the daemon. */
int
main(int argc, char *argv[])
{
	struct options opts;

	switch (options_parse(&opts, argc, argv)) {
	case OPTIONS_OK:
		break;
	case OPTIONS_USAGE:
		fputs(options_usage(), stderr);
		return 1;
	case OPTIONS_FATAL:
		fprintf(stderr, "epmd-c: %s\n", opts.error);
		return 1;
	}
	if (opts.command != CMD_SERVE)
		return client_run(&opts);
	if (opts.systemd && !systemd_supported()) {
		fprintf(stderr, "epmd-c: -systemd: this build of epmd-c has no "
		    "systemd support (built without libsystemd)\n");
		return 1;
	}
	if (opts.daemon && opts.systemd) {
		/* Forking would orphan the sockets (LISTEN_PID is the parent's). */
		fprintf(stderr, "epmd-c: -daemon cannot be used with -systemd: "
		    "systemd supervises the daemon itself\n");
		return 1;
	}

	if (opts.systemd) {
		systemd_enable();
		log_set_exit_hook(systemd_exiting);
	} else
		systemd_disable();
	restart_save_argv(argc, argv);
	/* A SIGUSR2 child is detached already, and must keep its pid. */
	if (opts.daemon && !restart_is_handover())
		daemonize();
	log_init(log_target(&opts), opts.debug);
	return serve(&opts);
}
