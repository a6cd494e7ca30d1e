/* server.h - the proxy process: configuration, workers, signals, admin.
 *
 * The main thread owns the configuration files, the listening sockets and
 * the admin endpoint; it never touches a proxied connection. */
#ifndef STRAND_SERVER_H
#define STRAND_SERVER_H

#include <stddef.h>

/* Runs the proxy with the given config files (borrowed) until SIGTERM or
 * SIGINT. Returns the process exit status. */
int server_run(const char *const *files, size_t nfiles);

#endif
