/* The daemon: event loop, listeners, signals, accept back-off. */
#ifndef SERVER_H
#define SERVER_H

#include "options.h"

/* Run the daemon until killed or signalled; returns the exit status. */
int server_run(const struct options *opts);

#endif
