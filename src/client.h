/* The command-line client: -names, -dump, -kill, -stop, -started. */
#ifndef CLIENT_H
#define CLIENT_H

#include "options.h"

/* Run the client command in opts; returns the process exit status. */
int client_run(const struct options *opts);

#endif
