/* sio.h - a connection's byte stream: a plain socket, or TLS over it.
 *
 * The proxy's connection code reads and writes through these calls only, so
 * that HTTP and TCP proxying work the same with and without TLS. Errors
 * look like the socket calls' (-1 with errno, EAGAIN to wait); what TLS adds
 * is `want`: after a call, extra readiness TLS needs (a read that must wait
 * for the socket to be writable, or the reverse), which the owner ORs into
 * its epoll interest; and sio_pending(): bytes already decrypted, which
 * epoll will never report, so the owner reads them without waiting. */
#ifndef STRAND_SIO_H
#define STRAND_SIO_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct buf;
struct tls_conn;

struct sio {
    int fd;
    struct tls_conn *tls;   /* NULL for plain TCP; owned by the sio */
    unsigned want;          /* LOOP_* readiness the last call needs besides its own */
};

/* Reads into the free space of b (like buf_read_fd): bytes read, 0 on EOF,
 * -1 with errno (EAGAIN: wait), -2 when b is full. */
ssize_t sio_read_buf(struct sio *s, struct buf *b);
/* Writes the iovecs (borrowed): bytes accepted or -1 with errno. */
ssize_t sio_writev(struct sio *s, const struct iovec *iov, int n);
/* Writes what b holds and consumes it: bytes written or -1 with errno. */
ssize_t sio_write_buf(struct sio *s, struct buf *b);
/* Decrypted bytes waiting (0 for plain sockets). */
int sio_pending(const struct sio *s);
/* Ends TLS (best-effort close_notify) and frees it; the fd stays open. */
void sio_tls_close(struct sio *s);

#endif
