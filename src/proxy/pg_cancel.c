/* pg_cancel.c - the process-wide table of backend keys and the one-shot
 * connections that carry a CancelRequest to the server (see pg_cancel.h).
 *
 * The table is a fixed array of buckets by pid, each a list under one
 * lock: registrations happen once per session and lookups once per cancel,
 * so a single mutex is never hot. */
#include "proxy/pg_cancel.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "proto/pg/pg.h"
#include "proxy/worker.h"

#define BUCKETS 1024
#define KEY_MAX 256
#define FORWARD_TIMEOUT_MS 5000

struct pg_cancel_key {
    struct pg_cancel_key *next;
    uint32_t pid;
    uint16_t len;
    unsigned char key[KEY_MAX];
    struct sockaddr_storage addr;
    socklen_t alen;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct pg_cancel_key *buckets[BUCKETS];
static size_t nkeys;

/* Borrows key and addr; the handle is the caller's until forgotten. */
struct pg_cancel_key *pg_cancel_remember(uint32_t pid, const void *key, size_t len,
                                         const struct sockaddr *addr, socklen_t alen)
{
    if (len < 4 || len > KEY_MAX || alen > sizeof(struct sockaddr_storage))
        return NULL;
    struct pg_cancel_key *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->pid = pid;
    k->len = (uint16_t)len;
    memcpy(k->key, key, len);
    memcpy(&k->addr, addr, alen);
    k->alen = alen;
    pthread_mutex_lock(&mu);
    k->next = buckets[pid % BUCKETS];
    buckets[pid % BUCKETS] = k;
    nkeys++;
    pthread_mutex_unlock(&mu);
    return k;
}

/* Takes ownership of k. */
void pg_cancel_forget(struct pg_cancel_key *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&mu);
    for (struct pg_cancel_key **p = &buckets[k->pid % BUCKETS]; *p; p = &(*p)->next)
        if (*p == k) {
            *p = k->next;
            nkeys--;
            break;
        }
    pthread_mutex_unlock(&mu);
    free(k);
}

size_t pg_cancel_count(void)
{
    pthread_mutex_lock(&mu);
    size_t n = nkeys;
    pthread_mutex_unlock(&mu);
    return n;
}

/* A CancelRequest on its way to the server: connect, write, close. */
struct fwd {
    struct loop_io io;
    struct loop_timer timer;
    struct worker *w;
    char msg[16 + KEY_MAX];
    int len;
};

static void fwd_end(struct fwd *f)
{
    struct loop *l = f->w->loop;
    loop_timer_cancel(l, &f->timer);
    loop_io_del(l, &f->io);
    close(f->io.fd);
    loop_defer_free(l, free, f);
}

static void fwd_io(struct loop *l, struct loop_io *io, unsigned events)
{
    struct fwd *f = io->ud;
    (void)l;
    (void)events;
    int err = net_connect_error(io->fd);
    if (err == 0 && send(io->fd, f->msg, (size_t)f->len, MSG_NOSIGNAL) != f->len)
        err = errno ? errno : EIO;
    if (err)
        log_info("postgres: could not forward a cancel request: %s", strerror(err));
    /* The server reads the request and closes; nothing comes back. */
    fwd_end(f);
}

static void fwd_timeout(struct loop *l, struct loop_timer *t)
{
    (void)l;
    log_info("postgres: cancel request not delivered in %d ms", FORWARD_TIMEOUT_MS);
    fwd_end(t->ud);
}

/* Borrows key. */
int pg_cancel_forward(struct worker *w, uint32_t pid, const void *key, size_t len)
{
    struct sockaddr_storage addr;
    socklen_t alen = 0;
    pthread_mutex_lock(&mu);
    for (struct pg_cancel_key *k = buckets[pid % BUCKETS]; k; k = k->next)
        if (k->pid == pid && k->len == len && memcmp(k->key, key, len) == 0) {
            addr = k->addr;
            alen = k->alen;
            break;
        }
    pthread_mutex_unlock(&mu);
    if (alen == 0)
        return 0;
    struct fwd *f = calloc(1, sizeof(*f));
    if (!f)
        return 0;
    f->w = w;
    f->len = pg_build_cancel(f->msg, sizeof(f->msg), pid, key, len);
    int fd = f->len > 0 ? net_connect((const struct sockaddr *)&addr, alen) : -1;
    if (fd < 0) {
        free(f);
        return 0;
    }
    f->io = (struct loop_io){.fd = fd, .cb = fwd_io, .ud = f};
    f->timer.cb = fwd_timeout;
    f->timer.ud = f;
    if (loop_io_add(w->loop, &f->io, LOOP_WRITE) < 0) {
        close(fd);
        free(f);
        return 0;
    }
    loop_timer_arm(w->loop, &f->timer, loop_now(w->loop) + FORWARD_TIMEOUT_MS);
    return 1;
}
