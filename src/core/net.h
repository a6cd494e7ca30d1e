/* net.h - socket helpers (in the spirit of Redis' anet.c). */
#ifndef STRAND_NET_H
#define STRAND_NET_H

#include <stddef.h>
#include <sys/socket.h>

/* A non-blocking listening socket on addr; reuseport lets every worker bind
 * its own socket to the same address. Returns fd or -1 (errno). */
int net_listen(const struct sockaddr *addr, socklen_t len, int reuseport, int backlog);
/* A non-blocking socket with a connect in progress. Returns fd or -1. */
int net_connect(const struct sockaddr *addr, socklen_t len);
/* 0 when the connect of fd finished well, else the errno it failed with. */
int net_connect_error(int fd);
void net_nodelay(int fd);
/* Writes "ip:port" (IPv6 as "[ip]:port") into out; returns out. */
char *net_addr_str(const struct sockaddr *addr, char *out, size_t outlen);
/* Writes the ip alone into out; returns out. */
char *net_ip_str(const struct sockaddr *addr, char *out, size_t outlen);
int net_port(const struct sockaddr *addr);
/* 1 when both addresses are the same family, ip and port. */
int net_addr_eq(const struct sockaddr *a, const struct sockaddr *b);

#endif
