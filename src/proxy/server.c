/* server.c - the main thread: load and reload configuration, own listening
 * sockets, start and stop workers, serve the admin endpoint.
 *
 * Reload is all-or-nothing: the new files are parsed, validated and turned
 * into a generation, and every new listening socket is bound, before any
 * worker hears of it. Any failure leaves the running generation untouched.
 * Sockets of addresses that stay are reused, so no connection is refused
 * during a reload; sockets of removed addresses are closed once every worker
 * has moved to the new generation. */
#include "proxy/server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "proto/http1/h1.h"
#include "proxy/gen.h"
#include "proxy/metrics.h"
#include "proxy/proto.h"
#include "proxy/worker.h"
#include "wasm/pw_host.h"

#define ADMIN_MAX_REQ 16384
#define ADMIN_TIMEOUT_MS 5000

/* Listening sockets for one address: one per worker (SO_REUSEPORT). */
struct lsock {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int *fds;
    uint64_t last_gen;      /* newest generation that uses it */
    struct lsock *next;
};

struct server {
    struct loop *loop;
    const char *const *files;
    size_t nfiles;
    unsigned nworkers;
    struct worker **workers;
    struct gen *cur;
    uint64_t next_id;
    struct lsock *socks;
    struct loop_io sig_io;
    struct loop_io admin_io;
    struct loop_timer sweep;  /* closes sockets no generation uses any more */
    struct metrics_shard *shard;  /* the main thread's own counters */
    uint32_t m_reload_ok, m_reload_err;
    int stopping;
};

struct admin_conn {
    struct loop_io io;
    struct loop_timer timer;
    struct server *srv;
    struct buf in;
    char *out;
    size_t outlen, outoff;
};

static struct lsock *lsock_find(struct server *s, const struct sockaddr_storage *a)
{
    for (struct lsock *l = s->socks; l; l = l->next)
        if (net_addr_eq((const struct sockaddr *)&l->addr, (const struct sockaddr *)a))
            return l;
    return NULL;
}

static void lsock_close(struct server *s, struct lsock *l)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        if (l->fds[i] >= 0)
            close(l->fds[i]);
    free(l->fds);
    free(l);
}

/* Binds (or reuses) the sockets of every listener of g. On failure closes
 * what it opened for g, fills err and returns -1. */
static int bind_listeners(struct server *s, struct gen *g, char *err, size_t errlen)
{
    struct lsock *fresh = NULL;
    for (size_t i = 0; i < g->nlisteners; i++) {
        struct gen_listener *gl = &g->listeners[i];
        struct lsock *l = lsock_find(s, &gl->cfg->addr);
        if (!l) {
            for (l = fresh; l; l = l->next)
                if (net_addr_eq((const struct sockaddr *)&l->addr,
                                (const struct sockaddr *)&gl->cfg->addr))
                    break;
        }
        if (!l) {
            l = calloc(1, sizeof(*l));
            int *fds = calloc(s->nworkers, sizeof(int));
            if (!l || !fds) {
                free(l);
                free(fds);
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            l->fds = fds;
            l->addr = gl->cfg->addr;
            l->addrlen = gl->cfg->addrlen;
            for (unsigned w = 0; w < s->nworkers; w++)
                l->fds[w] = -1;
            l->next = fresh;
            fresh = l;
            for (unsigned w = 0; w < s->nworkers; w++) {
                l->fds[w] = net_listen((const struct sockaddr *)&l->addr, l->addrlen, 1, 1024);
                if (l->fds[w] < 0) {
                    snprintf(err, errlen, "%s:%d: listener %s: cannot listen on %s: %s",
                             gl->cfg->where.file, gl->cfg->where.line, gl->cfg->name,
                             gl->cfg->address, strerror(errno));
                    goto fail;
                }
            }
        }
        l->last_gen = g->id;
        memcpy(gl->fds, l->fds, s->nworkers * sizeof(int));
    }
    /* Commit: the fresh sockets join the server's set. */
    while (fresh) {
        struct lsock *n = fresh->next;
        fresh->next = s->socks;
        s->socks = fresh;
        fresh = n;
    }
    return 0;
fail:
    while (fresh) {
        struct lsock *n = fresh->next;
        lsock_close(s, fresh);
        fresh = n;
    }
    return -1;
}

static int all_workers_at(struct server *s, uint64_t id)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        if (atomic_load(&s->workers[i]->gen_seen) < id)
            return 0;
    return 1;
}

static void sweep_sockets(struct loop *l, struct loop_timer *t)
{
    struct server *s = t->ud;
    if (!all_workers_at(s, s->cur->id)) {
        loop_timer_arm(l, t, loop_now(l) + 50);
        return;
    }
    struct lsock **pp = &s->socks;
    while (*pp) {
        struct lsock *x = *pp;
        if (x->last_gen < s->cur->id) {
            *pp = x->next;
            lsock_close(s, x);
        } else {
            pp = &x->next;
        }
    }
}

/* Builds a generation from the files. NULL + err on any error. */
static struct gen *load_gen(struct server *s, char *err, size_t errlen)
{
    struct config *cfg = NULL;
    if (config_load_files(s->files, s->nfiles, &cfg, err, errlen) < 0)
        return NULL;
    struct gen *g = gen_build(cfg, s->nworkers, s->next_id, err, errlen);
    if (!g) {
        config_free(cfg);
        return NULL;
    }
    if (bind_listeners(s, g, err, errlen) < 0) {
        gen_unref(g);
        return NULL;
    }
    s->next_id++;
    return g;
}

/* Returns 0, or -1 with err filled; the running config stays on failure. */
static int server_reload(struct server *s, char *err, size_t errlen)
{
    struct gen *g = load_gen(s, err, errlen);
    if (!g) {
        metrics_add(s->shard, s->m_reload_err, 1);
        log_error("reload rejected, keeping the running configuration: %s", err);
        return -1;
    }
    if (g->cfg->workers && g->cfg->workers != s->nworkers)
        log_warn("workers: %u takes effect at restart (running %u)", g->cfg->workers,
                 s->nworkers);
    struct gen *old = s->cur;
    s->cur = g;
    for (unsigned i = 0; i < s->nworkers; i++)
        worker_set_gen(s->workers[i], g);
    gen_unref(old);
    metrics_add(s->shard, s->m_reload_ok, 1);
    loop_timer_arm(s->loop, &s->sweep, loop_now(s->loop) + 50);
    log_info("configuration %llu loaded", (unsigned long long)g->id);
    return 0;
}

/* ---- admin --------------------------------------------------------------- */

static void admin_free(void *p)
{
    struct admin_conn *a = p;
    buf_free(&a->in);
    free(a->out);
    free(a);
}

static void admin_close(struct admin_conn *a)
{
    loop_timer_cancel(a->srv->loop, &a->timer);
    loop_io_del(a->srv->loop, &a->io);
    close(a->io.fd);
    loop_defer_free(a->srv->loop, admin_free, a);
}

/* Takes ownership of body (malloc'd). */
static void admin_reply(struct admin_conn *a, int status, const char *ctype, char *body,
                        size_t len)
{
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                      "connection: close\r\n\r\n",
                      status, h1_status_reason(status), ctype, len);
    a->out = malloc((size_t)hl + len);
    if (!a->out) {
        free(body);
        admin_close(a);
        return;
    }
    memcpy(a->out, head, (size_t)hl);
    if (len)
        memcpy(a->out + hl, body, len);
    free(body);
    a->outlen = (size_t)hl + len;
    a->outoff = 0;
    loop_io_set(a->srv->loop, &a->io, LOOP_WRITE);
}

static void admin_text(struct admin_conn *a, int status, const char *text)
{
    admin_reply(a, status, "text/plain; charset=utf-8", strdup(text), strlen(text));
}

static void admin_route(struct admin_conn *a, const struct h1_request *req)
{
    struct server *s = a->srv;
    int get = h1_str_ieq(req->method, "GET") || h1_str_ieq(req->method, "HEAD");
    int post = h1_str_ieq(req->method, "POST");
    h1_str p = req->path;
#define IS(lit) (p.len == sizeof(lit) - 1 && memcmp(p.p, lit, p.len) == 0)
    if (IS("/ready") && get) {
        if (all_workers_at(s, s->cur->id) && !s->stopping)
            admin_text(a, 200, "ready\n");
        else
            admin_text(a, 503, "not ready\n");
    } else if (IS("/metrics") && get) {
        size_t len = 0;
        char *text = metrics_render(&len);
        admin_reply(a, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    } else if (IS("/config") && get) {
        char *json = config_to_json(s->cur->cfg);
        admin_reply(a, 200, "application/json", json, json ? strlen(json) : 0);
    } else if (IS("/reload") && post) {
        char err[1024];
        if (server_reload(s, err, sizeof(err)) == 0) {
            admin_text(a, 200, "reloaded\n");
        } else {
            strncat(err, "\n", sizeof(err) - strlen(err) - 1);
            admin_text(a, 400, err);
        }
    } else if (IS("/") && get) {
        admin_text(a, 200, "strand admin: /ready /metrics /config, POST /reload\n");
    } else if (IS("/ready") || IS("/metrics") || IS("/config") || IS("/reload")) {
        admin_text(a, 405, "method not allowed\n");
    } else {
        admin_text(a, 404, "not found\n");
    }
#undef IS
}

static void admin_io(struct loop *l, struct loop_io *io, unsigned events)
{
    struct admin_conn *a = io->ud;
    if (a->out) {
        while (a->outoff < a->outlen) {
            ssize_t n = write(io->fd, a->out + a->outoff, a->outlen - a->outoff);
            if (n < 0) {
                if (errno == EAGAIN)
                    return;
                break;
            }
            a->outoff += (size_t)n;
        }
        shutdown(io->fd, SHUT_WR);
        admin_close(a);
        return;
    }
    ssize_t n = buf_read_fd(&a->in, io->fd);
    if (n == 0 || (n < 0 && errno != EAGAIN) || n == -2) {
        admin_close(a);
        return;
    }
    if (buf_len(&a->in) == 0)
        return;
    struct h1_header hs[64];
    struct h1_request req;
    memset(&req, 0, sizeof(req));
    req.headers = hs;
    int rc = h1_parse_request(buf_start(&a->in), buf_len(&a->in), &req, 64, ADMIN_MAX_REQ);
    if (rc == H1_INCOMPLETE)
        return;
    if (rc < 0) {
        admin_text(a, -rc, "bad request\n");
        return;
    }
    admin_route(a, &req);
}

static void admin_timeout(struct loop *l, struct loop_timer *t) { admin_close(t->ud); }

static void admin_accept(struct loop *l, struct loop_io *io, unsigned events)
{
    struct server *s = io->ud;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct admin_conn *a = calloc(1, sizeof(*a));
        if (!a) {
            close(fd);
            return;
        }
        a->srv = s;
        a->io.fd = fd;
        a->io.cb = admin_io;
        a->io.ud = a;
        a->timer.cb = admin_timeout;
        a->timer.ud = a;
        if (loop_io_add(l, &a->io, LOOP_READ) < 0) {
            close(fd);
            free(a);
            continue;
        }
        loop_timer_arm(l, &a->timer, loop_now(l) + ADMIN_TIMEOUT_MS);
    }
}

/* ---- signals and the main loop ------------------------------------------- */

static void on_signal(struct loop *l, struct loop_io *io, unsigned events)
{
    struct server *s = io->ud;
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            char err[1024];
            server_reload(s, err, sizeof(err));
        } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            log_info("signal %u: draining for up to %llu ms", si.ssi_signo,
                     (unsigned long long)s->cur->cfg->drain_timeout_ms);
            s->stopping = 1;
            loop_stop(l);
        }
    }
}

static int admin_listen(struct server *s)
{
    const struct config *cfg = s->cur->cfg;
    s->admin_io.fd = -1;
    if (!cfg->admin_address)
        return 0;
    int fd = net_listen((const struct sockaddr *)&cfg->admin_addr, cfg->admin_addrlen, 0, 64);
    if (fd < 0) {
        log_error("admin: cannot listen on %s: %s", cfg->admin_address, strerror(errno));
        return -1;
    }
    s->admin_io.fd = fd;
    s->admin_io.cb = admin_accept;
    s->admin_io.ud = s;
    return loop_io_add(s->loop, &s->admin_io, LOOP_READ);
}

int server_run(const char *const *files, size_t nfiles)
{
    struct server srv = {0}, *s = &srv;
    char err[1024];
    s->files = files;
    s->nfiles = nfiles;
    s->next_id = 1;
    s->shard = metrics_shard_new();
    s->m_reload_ok = metrics_counter("strand_config_reloads_total",
                                     "Configuration reloads, by result.", "result=\"ok\"");
    s->m_reload_err = metrics_counter("strand_config_reloads_total",
                                      "Configuration reloads, by result.", "result=\"error\"");

    /* Workers count is known only after the first parse. */
    struct config *cfg = NULL;
    if (config_load_files(files, nfiles, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    s->nworkers = cfg->workers ? cfg->workers : (unsigned)(ncpu > 0 ? ncpu : 1);
    config_free(cfg);
    s->cur = load_gen(s, err, sizeof(err));
    if (!s->cur) {
        fprintf(stderr, "%s\n", err);
        gen_limits_free();
        return 1;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked before workers start, so they inherit the mask and only the
     * signalfd here ever sees these signals. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    s->loop = loop_new();
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (!s->loop || sfd < 0) {
        fprintf(stderr, "cannot set up the main loop: %s\n", strerror(errno));
        return 1;
    }
    s->sig_io.fd = sfd;
    s->sig_io.cb = on_signal;
    s->sig_io.ud = s;
    loop_io_add(s->loop, &s->sig_io, LOOP_READ);
    s->sweep.cb = sweep_sockets;
    s->sweep.ud = s;
    if (admin_listen(s) < 0)
        return 1;

    http_init();
    s->workers = calloc(s->nworkers, sizeof(*s->workers));
    for (unsigned i = 0; i < s->nworkers; i++) {
        s->workers[i] = worker_new(i);
        if (!s->workers[i] || worker_start(s->workers[i], s->cur) < 0) {
            fprintf(stderr, "cannot start worker %u\n", i);
            return 1;
        }
    }
    log_info("strand proxy: %zu listener(s), %u worker(s), admin %s", s->cur->nlisteners,
             s->nworkers, s->cur->cfg->admin_address ? s->cur->cfg->admin_address : "off");

    loop_run(s->loop);

    /* Drain: workers stop accepting and finish what they hold. */
    uint64_t drain = s->cur->cfg->drain_timeout_ms;
    for (unsigned i = 0; i < s->nworkers; i++)
        worker_stop(s->workers[i], drain);
    /* Once no worker watches them, shut the listening sockets so new
     * connections are refused instead of queueing in a backlog nobody
     * accepts from. The fds stay open (no reuse races) until the end. */
    for (int spins = 0; spins < 200; spins++) {
        unsigned n = 0;
        for (unsigned i = 0; i < s->nworkers; i++)
            n += atomic_load(&s->workers[i]->unlistened) || atomic_load(&s->workers[i]->exited);
        if (n == s->nworkers)
            break;
        usleep(5000);
    }
    for (struct lsock *l = s->socks; l; l = l->next)
        for (unsigned i = 0; i < s->nworkers; i++)
            if (l->fds[i] >= 0)
                shutdown(l->fds[i], SHUT_RDWR);
    /* Every thread ends before any worker is freed: a VM one leaves behind
     * (a connection abandoned at the drain deadline) may still be told of
     * a shared queue item another worker enqueues. */
    for (unsigned i = 0; i < s->nworkers; i++)
        worker_join(s->workers[i]);
    for (unsigned i = 0; i < s->nworkers; i++)
        worker_join_free(s->workers[i]);
    free(s->workers);
    while (s->socks) {
        struct lsock *n = s->socks->next;
        lsock_close(s, s->socks);
        s->socks = n;
    }
    if (s->admin_io.fd >= 0)
        close(s->admin_io.fd);
    close(sfd);
    loop_free(s->loop);
    gen_unref(s->cur);
    gen_limits_free();
    metrics_shard_free(s->shard);
    buf_pool_free();
    pw_host_cleanup(); /* shared data and queues, now that no VM runs */
    log_info("strand proxy: stopped");
    return 0;
}
