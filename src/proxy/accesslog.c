/* accesslog.c - formats access-log records as JSON lines and batches writes.
 *
 * The buffer holds ALOG_FLUSH_AT bytes plus one worst-case line, and a line
 * is only started when a worst-case line fits, so formatting never checks
 * for a full buffer except through the per-field caps. Every emitter still
 * bounds-checks against the buffer end (a record that would overflow is
 * discarded) so a miscounted cap degrades into a dropped line, not memory
 * corruption. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, gmtime_r, O_CLOEXEC under a strict -std */
#endif
#include "proxy/accesslog.h"

#include "core/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NSTR 11                                     /* alog_str fields */
/* escaped field, "...", quotes and key per string; numbers and keys besides */
#define LINE_MAX_BYTES (NSTR * (ALOG_FIELD_MAX + 32) + 1024)
#define BUF_SIZE (ALOG_FLUSH_AT + LINE_MAX_BYTES)

struct alog {
    int fd;
    bool is_stdout;
    bool chunked;         /* not a regular file: write <= PIPE_BUF at a time */
    char *path;
    size_t len;           /* bytes buffered, always whole lines */
    uint64_t dropped;
    int64_t ts_sec;       /* second that ts_text describes */
    char ts_text[24];     /* "YYYY-MM-DDTHH:MM:SS" */
    char buf[BUF_SIZE];
};

/* Output cursor into a->buf; `bad` is set on overflow and sticks. */
struct out {
    char *p, *end;
    bool bad;
};

/* s: borrowed, copied into o's buffer. */
static inline void put(struct out *o, const void *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n) {
        o->bad = true;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

/* o: the caller's cursor. Decimal, no snprintf on the hot path. */
static void put_u64(struct out *o, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof tmp - i);
}

/* s: borrowed. Writes s as a JSON string (or null), escaped and capped at
 * ALOG_FIELD_MAX bytes between the quotes plus "..." when cut. */
static void put_str(struct out *o, struct alog_str s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s.p) {
        PUTS(o, "null");
        return;
    }
    PUTS(o, "\"");
    const unsigned char *p = (const unsigned char *)s.p;
    size_t used = 0;
    for (size_t i = 0; i < s.len;) {
        char esc[6];
        const void *piece = esc;
        size_t n, adv = 1;
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            static const char short_esc[32] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n',
                                               ['\r'] = 'r', ['\t'] = 't'};
            esc[0] = '\\';
            if (c < 0x20 && short_esc[c]) {
                esc[1] = short_esc[c];
                n = 2;
            } else {
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                n = 6;
            }
        } else if (c < 0x80) {
            piece = p + i;
            n = 1;
        } else if ((adv = utf8_len(p + i, s.len - i)) != 0) {
            piece = p + i;
            n = adv;
        } else {
            piece = "\\ufffd"; /* one per invalid byte */
            n = 6;
            adv = 1;
        }
        if (used + n > ALOG_FIELD_MAX) {
            PUTS(o, "...");
            break;
        }
        put(o, piece, n);
        used += n;
        i += adv;
    }
    PUTS(o, "\"");
}

const char *alog_outcome_name(enum alog_outcome oc)
{
    static const char *const names[] = {"ok", "client_error", "server_error",
                                        "denied", "timeout", "unavailable"};
    return (unsigned)oc < sizeof names / sizeof *names ? names[oc] : "unknown";
}

/* a: the caller's alog, for its per-second cache. Writes the RFC 3339 UTC
 * time of start_ms with milliseconds; gmtime_r runs once per second. */
static void put_time(struct alog *a, struct out *o, uint64_t ms)
{
    int64_t sec = (int64_t)(ms / 1000);
    if (sec != a->ts_sec || !a->ts_text[0]) {
        time_t t = (time_t)sec;
        struct tm tm;
        if (!gmtime_r(&t, &tm) ||
            strftime(a->ts_text, sizeof a->ts_text, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
            memcpy(a->ts_text, "1970-01-01T00:00:00", 20);
        a->ts_sec = sec;
    }
    char frac[6] = {'.', (char)('0' + ms % 1000 / 100), (char)('0' + ms % 100 / 10),
                    (char)('0' + ms % 10), 'Z', '"'};
    PUTS(o, "\"");
    put(o, a->ts_text, 19);
    put(o, frac, sizeof frac);
}

/* ---- writing ---- */

/* a: the caller's alog. Bytes from off to write in one write(): all of them
 * for a regular file; for a pipe, whole lines up to PIPE_BUF (or one longer
 * line alone), since only writes that small are atomic on a pipe. */
static size_t next_chunk(const struct alog *a, size_t off)
{
    size_t rest = a->len - off;
    if (!a->chunked || rest <= PIPE_BUF)
        return rest;
    const char *base = a->buf + off;
    const char *nl = memchr(base, '\n', rest);
    size_t take = nl ? (size_t)(nl - base) + 1 : rest;
    if (take > PIPE_BUF)
        return take;
    for (;;) {
        nl = memchr(base + take, '\n', rest - take);
        if (!nl || (size_t)(nl - base) + 1 > PIPE_BUF)
            return take;
        take = (size_t)(nl - base) + 1;
    }
}

/* p: borrowed. Newlines in p[0..n). */
static uint64_t count_lines(const char *p, size_t n)
{
    uint64_t k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        k++;
    return k;
}

int alog_flush(struct alog *a)
{
    size_t off = 0;
    int err = 0;
    while (off < a->len) {
        ssize_t w = write(a->fd, a->buf + off, next_chunk(a, off));
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        err = w < 0 ? errno : EIO;
        if (err != EAGAIN && err != EWOULDBLOCK) {
            /* a line cut by a partial write still counts as lost */
            size_t line0 = off;
            while (line0 > 0 && a->buf[line0 - 1] != '\n')
                line0--;
            a->dropped += count_lines(a->buf + line0, a->len - line0);
            off = a->len;
        }
        break;
    }
    memmove(a->buf, a->buf + off, a->len - off);
    a->len -= off;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

void alog_write(struct alog *a, const struct alog_rec *r)
{
    if (BUF_SIZE - a->len < LINE_MAX_BYTES) {
        (void)alog_flush(a);
        if (BUF_SIZE - a->len < LINE_MAX_BYTES) {
            a->dropped++;
            return;
        }
    }
    struct out o = {a->buf + a->len, a->buf + BUF_SIZE, false};
    PUTS(&o, "{\"time\":");
    put_time(a, &o, r->start_ms);
    PUTS(&o, ",\"start_ms\":");
    put_u64(&o, r->start_ms);
    PUTS(&o, ",\"duration_us\":");
    put_u64(&o, r->duration_us);
    static const char *const protos[] = {
        [ALOG_HTTP] = ",\"protocol\":\"http\"", [ALOG_TCP] = ",\"protocol\":\"tcp\"",
        [ALOG_HTTP2] = ",\"protocol\":\"http2\"", [ALOG_GRPC] = ",\"protocol\":\"grpc\"",
        [ALOG_POSTGRES] = ",\"protocol\":\"postgres\"", [ALOG_MYSQL] = ",\"protocol\":\"mysql\""};
    const char *proto = protos[r->protocol <= ALOG_MYSQL ? r->protocol : ALOG_HTTP];
    put(&o, proto, strlen(proto));
    PUTS(&o, ",\"listener\":");
    put_str(&o, r->listener);
    PUTS(&o, ",\"route\":");
    put_str(&o, r->route);
    PUTS(&o, ",\"cluster\":");
    put_str(&o, r->cluster);
    PUTS(&o, ",\"upstream\":");
    put_str(&o, r->upstream);
    PUTS(&o, ",\"source\":");
    put_str(&o, r->source);
    PUTS(&o, ",\"method\":");
    put_str(&o, r->method);
    PUTS(&o, ",\"authority\":");
    put_str(&o, r->authority);
    PUTS(&o, ",\"path\":");
    put_str(&o, r->path);
    PUTS(&o, ",\"status\":");
    if (r->status > 0)
        put_u64(&o, (uint64_t)r->status);
    else
        PUTS(&o, "null");
    PUTS(&o, ",\"outcome\":\"");
    const char *oc = alog_outcome_name(r->outcome);
    put(&o, oc, strlen(oc));
    PUTS(&o, "\",\"bytes_in\":");
    put_u64(&o, r->bytes_in);
    PUTS(&o, ",\"bytes_out\":");
    put_u64(&o, r->bytes_out);
    PUTS(&o, ",\"retries\":");
    put_u64(&o, r->retries);
    PUTS(&o, ",\"request_id\":");
    put_str(&o, r->request_id);
    PUTS(&o, ",\"user_agent\":");
    put_str(&o, r->user_agent);
    PUTS(&o, ",\"reason\":");
    put_str(&o, r->reason);
    PUTS(&o, ",\"grpc_status\":");
    if (r->has_grpc_status)
        put_u64(&o, (uint64_t)(r->grpc_status < 0 ? 0 : r->grpc_status));
    else
        PUTS(&o, "null");
    PUTS(&o, "}\n");
    if (o.bad) {
        a->dropped++;
        return;
    }
    a->len = (size_t)(o.p - a->buf);
    if (a->len >= ALOG_FLUSH_AT)
        (void)alog_flush(a);
}

/* ---- lifecycle ---- */

/* path: borrowed. Returns an fd opened for appending, or -1 with errno. */
static int open_path(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static bool needs_chunks(int fd)
{
    struct stat st;
    return fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
}

struct alog *alog_open(const char *path)
{
    if (!path) {
        errno = EINVAL;
        return NULL;
    }
    struct alog *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    memset(a, 0, offsetof(struct alog, buf));
    a->is_stdout = strcmp(path, "stdout") == 0;
    a->fd = a->is_stdout ? STDOUT_FILENO : open_path(path);
    if (a->fd < 0 || !(a->path = strdup(path))) {
        int e = errno;
        if (a->fd >= 0 && !a->is_stdout)
            close(a->fd);
        free(a);
        errno = e;
        return NULL;
    }
    a->chunked = needs_chunks(a->fd);
    return a;
}

int alog_reopen(struct alog *a)
{
    if (a->is_stdout)
        return 0;
    int fd = open_path(a->path);
    if (fd < 0)
        return -1;
    /* lines buffered before the rotation belong to the old file */
    (void)alog_flush(a);
    close(a->fd);
    a->fd = fd;
    a->chunked = needs_chunks(fd);
    return 0;
}

void alog_close(struct alog *a)
{
    if (!a)
        return;
    (void)alog_flush(a);
    if (!a->is_stdout)
        close(a->fd);
    free(a->path);
    free(a);
}

uint64_t alog_dropped(const struct alog *a)
{
    return a->dropped;
}
