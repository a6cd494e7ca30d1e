/* sio.c - plain and TLS reads and writes behind one interface. */
#include "proxy/sio.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/loop.h"
#include "tls/tls.h"

/* Maps a TLS result onto the socket-call convention. */
static ssize_t tls_result(struct sio *s, ssize_t n, unsigned own)
{
    if (n >= 0)
        return n;
    if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
        unsigned need = n == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE;
        if (need != own)
            s->want |= need;
        errno = EAGAIN;
        return -1;
    }
    errno = ECONNRESET;
    return -1;
}

ssize_t sio_read_buf(struct sio *s, struct buf *b)
{
    if (!s->tls)
        return buf_read_fd(b, s->fd);
    s->want = 0;
    if (buf_ensure(b) < 0) {
        errno = ENOMEM;
        return -1;
    }
    uint32_t space = buf_space(b);
    if (space == 0)
        return -2;
    ssize_t n = tls_result(s, tls_conn_read(s->tls, b->data + b->tail, space), LOOP_READ);
    if (n > 0)
        b->tail += (uint32_t)n;
    else if (b->head == b->tail)
        buf_shrink(b);
    return n;
}

ssize_t sio_writev(struct sio *s, const struct iovec *iov, int n)
{
    if (!s->tls) {
        struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
        ssize_t w;
        do
            w = sendmsg(s->fd, &mh, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        return w;
    }
    s->want = 0;
    return tls_result(s, tls_conn_writev(s->tls, iov, n), LOOP_WRITE);
}

ssize_t sio_write_buf(struct sio *s, struct buf *b)
{
    if (!s->tls)
        return buf_write_fd(b, s->fd);
    if (buf_len(b) == 0)
        return 0;
    struct iovec iov = {buf_start(b), buf_len(b)};
    ssize_t w = sio_writev(s, &iov, 1);
    if (w > 0)
        buf_consume(b, (uint32_t)w);
    return w;
}

int sio_pending(const struct sio *s) { return s->tls ? tls_conn_pending(s->tls) : 0; }

void sio_tls_close(struct sio *s)
{
    if (!s->tls)
        return;
    tls_conn_shutdown(s->tls);
    tls_conn_free(s->tls);
    s->tls = NULL;
}
