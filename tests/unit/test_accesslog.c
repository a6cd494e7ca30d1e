/* test_accesslog.c - unit tests for the JSON-lines access log.
 *
 * Every log written here is read back by python3's json module (strict
 * UTF-8), and string fields are compared byte for byte with what the
 * escaping promises: control characters and quotes survive, invalid UTF-8
 * turns into U+FFFD, long fields are cut. Also covered: buffering, batching
 * past ALOG_FLUSH_AT, several workers on one file and on one pipe, rotation,
 * write errors and a non-blocking pipe that fills up. */
#include "proxy/accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char dir[64];


#define PY "/usr/bin/python3"

/* Validates every line of a JSON-lines file and compares fields with an
 * expectation file of "line<TAB>key<TAB>value" rows, where value is
 * "null", "=<json literal>" or the hex of the expected UTF-8 string.
 * Prints the number of lines; exits 1 on any mismatch. */
static const char check_py[] =
    "import json, sys\n"
    "lines = open(sys.argv[1], 'rb').read().split(b'\\n')\n"
    "assert lines[-1] == b'', 'file does not end with a newline'\n"
    "objs = [json.loads(l.decode('utf-8', 'strict')) for l in lines[:-1]]\n"
    "bad = 0\n"
    "if len(sys.argv) > 2:\n"
    "    for row in open(sys.argv[2]):\n"
    "        n, key, want = row.rstrip('\\n').split('\\t')\n"
    "        got = objs[int(n)].get(key, 'MISSING')\n"
    "        if want == 'null': ok = got is None\n"
    "        elif want.startswith('='): ok = got == json.loads(want[1:])\n"
    "        else: ok = isinstance(got, str) and got.encode('utf-8').hex() == want\n"
    "        if not ok:\n"
    "            bad += 1\n"
    "            print('line', n, key, 'got', repr(got)[:200], 'want', want[:200], file=sys.stderr)\n"
    "keys = ['time','start_ms','duration_us','protocol','listener','route','cluster','upstream',\n"
    "        'source','method','authority','path','status','outcome','bytes_in','bytes_out',\n"
    "        'retries','request_id','user_agent','reason','grpc_status']\n"
    "for i, o in enumerate(objs):\n"
    "    if list(o.keys()) != keys:\n"
    "        bad += 1\n"
    "        print('line', i, 'keys', list(o.keys()), file=sys.stderr)\n"
    "print(len(objs))\n"
    "sys.exit(1 if bad else 0)\n";

static char script[128];

/* path, expect: borrowed file paths (expect may be NULL). Returns the line
 * count python parsed, or -1 if python failed or found a mismatch. */
static long py_check(const char *path, const char *expect)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, PY " %s %s %s", script, path, expect ? expect : "");
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    long n = -1;
    if (fscanf(p, "%ld", &n) != 1)
        n = -1;
    int st = pclose(p);
    return st == 0 ? n : -1;
}

/* The brief's own one-liner, reading the file on stdin: 0 if every line is
 * JSON. path: borrowed. */
static int py_oneliner(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "PYTHONIOENCODING=utf-8:strict " PY
             " -c 'import json,sys; [json.loads(l) for l in sys.stdin]' < %s",
             path);
    int st = system(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

/* name: borrowed; out: caller's buffer of at least 128 bytes. */
static void tmp_path(char *out, const char *name)
{
    snprintf(out, 128, "%s/%s", dir, name);
}

/* True if the file holds no raw control bytes besides the line ends, so a
 * log viewed in a terminal cannot carry escape sequences. path: borrowed. */
static bool no_raw_controls(const char *path)
{
    FILE *f = fopen(path, "rb");
    int c;
    bool ok = f != NULL;
    while (f && (c = getc(f)) != EOF)
        if ((c < 0x20 && c != '\n') || c == 0x7f)
            ok = false;
    if (f)
        fclose(f);
    return ok;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* ---- expectations ---- */

static FILE *exp_fp;

/* want: borrowed expected UTF-8 bytes (n of them). */
static void expect_str(int line, const char *key, const char *want, size_t n)
{
    fprintf(exp_fp, "%d\t%s\t", line, key);
    for (size_t i = 0; i < n; i++)
        fprintf(exp_fp, "%02x", (unsigned char)want[i]);
    fputc('\n', exp_fp);
}

/* lit: borrowed JSON literal. */
static void expect_lit(int line, const char *key, const char *lit)
{
    fprintf(exp_fp, "%d\t%s\t%s%s\n", line, key, strcmp(lit, "null") ? "=" : "", lit);
}

static struct alog_rec base_rec(void)
{
    struct alog_rec r = {
        .start_ms = 1714564800123ULL,
        .duration_us = 1520,
        .protocol = ALOG_HTTP,
        .outcome = ALOG_OK,
        .status = 200,
        .retries = 1,
        .bytes_in = 17,
        .bytes_out = UINT64_MAX,
        .listener = alog_cstr("web"),
        .route = alog_cstr("default/api"),
        .cluster = alog_cstr("v1"),
        .upstream = alog_cstr("127.0.0.1:8080"),
        .source = alog_cstr("[::1]:51234"),
        .method = alog_cstr("GET"),
        .authority = alog_cstr("example.com"),
        .path = alog_cstr("/api?q=1"),
        .request_id = alog_cstr("req-1"),
        .user_agent = alog_cstr("curl/8.0"),
        .reason = alog_cstr(NULL),
    };
    return r;
}

static void test_roundtrip(void)
{
    char path[128], exp[128];
    tmp_path(path, "rt.log");
    tmp_path(exp, "rt.expect");
    exp_fp = fopen(exp, "w");
    struct alog *a = alog_open(path);
    CHECK(a != NULL && exp_fp != NULL, "open %s", path);
    if (!a || !exp_fp)
        return;
    int line = 0;

    /* 0: an ordinary request */
    struct alog_rec r = base_rec();
    alog_write(a, &r);
    CHECK(file_size(path) == 0, "nothing written before a flush");
    expect_lit(line, "time", "\"2024-05-01T12:00:00.123Z\"");
    expect_lit(line, "start_ms", "1714564800123");
    expect_lit(line, "duration_us", "1520");
    expect_lit(line, "protocol", "\"http\"");
    expect_lit(line, "status", "200");
    expect_lit(line, "outcome", "\"ok\"");
    expect_lit(line, "bytes_in", "17");
    expect_lit(line, "bytes_out", "18446744073709551615");
    expect_lit(line, "retries", "1");
    expect_str(line, "route", "default/api", 11);
    expect_str(line, "source", "[::1]:51234", 11);
    expect_lit(line, "reason", "null");
    line++;

    /* 1: hostile strings */
    static const char ctl[] = "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
                              "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f";
    static const char quotes[] = "\"\\\"\\\\\" '</script>\\u0000";
    static const char withnul[] = "a\0b";
    static const char bad_utf8[] = "x\xff" "y\xc0\xaf" "z\x80" "s\xed\xa0\x80" "m\xf4\x90\x80\x80"
                                   "t\xe2\x82";
    static const char want_bad[] = "x\xef\xbf\xbd" "y\xef\xbf\xbd\xef\xbf\xbd" "z\xef\xbf\xbd"
                                   "s\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                   "m\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                   "t\xef\xbf\xbd\xef\xbf\xbd";
    static const char good_utf8[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xe2\x80\xa8";
    r = base_rec();
    r.protocol = ALOG_TCP;
    r.outcome = ALOG_UNAVAILABLE;
    r.status = 0;
    r.method = (struct alog_str){ctl, sizeof ctl - 1};
    r.path = (struct alog_str){quotes, sizeof quotes - 1};
    r.authority = (struct alog_str){withnul, 3};
    r.user_agent = (struct alog_str){bad_utf8, sizeof bad_utf8 - 1};
    r.request_id = (struct alog_str){good_utf8, sizeof good_utf8 - 1};
    r.reason = alog_cstr("upstream_connect_timeout");
    r.route = (struct alog_str){"not-terminated-here", 14};
    alog_write(a, &r);
    expect_lit(line, "protocol", "\"tcp\"");
    expect_lit(line, "outcome", "\"unavailable\"");
    expect_lit(line, "status", "null");
    expect_str(line, "method", ctl, sizeof ctl - 1);
    expect_str(line, "path", quotes, sizeof quotes - 1);
    expect_str(line, "authority", withnul, 3);
    expect_str(line, "user_agent", want_bad, sizeof want_bad - 1);
    expect_str(line, "request_id", good_utf8, sizeof good_utf8 - 1);
    expect_str(line, "reason", "upstream_connect_timeout", 24);
    expect_str(line, "route", "not-terminated", 14);
    line++;

    /* 2: absent vs empty, zero numbers, out-of-range enum */
    struct alog_rec z = {0};
    z.outcome = (enum alog_outcome)99;
    z.path = (struct alog_str){"", 0};
    alog_write(a, &z);
    expect_lit(line, "time", "\"1970-01-01T00:00:00.000Z\"");
    expect_lit(line, "listener", "null");
    expect_lit(line, "path", "\"\"");
    expect_lit(line, "status", "null");
    expect_lit(line, "outcome", "\"unknown\"");
    expect_lit(line, "bytes_out", "0");
    line++;

    /* 3: long fields are cut at ALOG_FIELD_MAX escaped bytes plus "..." */
    char *longa = malloc(10000), *longc = malloc(5000), *want = malloc(ALOG_FIELD_MAX + 8);
    memset(longa, 'a', 10000);
    memset(longc, 0x01, 5000);
    r = base_rec();
    r.path = (struct alog_str){longa, 10000};
    r.user_agent = (struct alog_str){longc, 5000};
    r.authority = (struct alog_str){longa, ALOG_FIELD_MAX}; /* exactly fits: not cut */
    alog_write(a, &r);
    memset(want, 'a', ALOG_FIELD_MAX);
    memcpy(want + ALOG_FIELD_MAX, "...", 3);
    expect_str(line, "path", want, ALOG_FIELD_MAX + 3);
    expect_str(line, "authority", want, ALOG_FIELD_MAX);
    size_t k = ALOG_FIELD_MAX / 6; /* each \u0001 takes 6 bytes */
    memset(want, 0x01, k);
    memcpy(want + k, "...", 3);
    expect_str(line, "user_agent", want, k + 3);
    line++;

    /* 4: every field at its worst at once still makes one line */
    r = base_rec();
    struct alog_str big = {longc, 5000};
    r.listener = r.route = r.cluster = r.upstream = r.source = r.method = r.authority = r.path =
        r.request_id = r.user_agent = r.reason = big;
    alog_write(a, &r);
    expect_str(line, "reason", want, k + 3);
    line++;

    CHECK(alog_flush(a) == 0, "flush");
    CHECK(alog_dropped(a) == 0, "nothing dropped");
    alog_close(a);
    fclose(exp_fp);
    free(longa);
    free(longc);
    free(want);
    CHECK(py_oneliner(path) == 0, "every line is JSON (python one-liner)");
    CHECK(py_check(path, exp) == line, "fields round-trip through python's json");
    CHECK(no_raw_controls(path), "no raw control bytes in the log");
    unlink(path);
    unlink(exp);
}

static void test_batching(void)
{
    char path[128];
    tmp_path(path, "batch.log");
    struct alog *a = alog_open(path);
    CHECK(a != NULL, "open");
    if (!a)
        return;
    struct alog_rec r = base_rec();
    int n = 0;
    while (file_size(path) == 0 && n < 10000) {
        alog_write(a, &r);
        n++;
    }
    off_t sz = file_size(path);
    CHECK(sz >= (off_t)ALOG_FLUSH_AT && sz < (off_t)ALOG_FLUSH_AT + 1024,
          "auto flush once past ALOG_FLUSH_AT (%lld bytes after %d records)", (long long)sz, n);
    alog_write(a, &r);
    alog_close(a); /* flushes */
    CHECK(py_check(path, NULL) == n + 1, "all records present after close");
    unlink(path);
}

/* ---- several workers ---- */

#define THREADS 4
#define PER_THREAD 3000

struct wargs {
    const char *path;
    int id;
    size_t maxlen; /* upper bound on the varying field */
};

static void *worker(void *arg)
{
    struct wargs *w = arg;
    struct alog *a = alog_open(w->path);
    if (!a)
        return (void *)1;
    char pad[4096], rid[32];
    memset(pad, 'p', sizeof pad);
    for (int i = 0; i < PER_THREAD; i++) {
        struct alog_rec r = base_rec();
        snprintf(rid, sizeof rid, "t%d-%d", w->id, i);
        r.request_id = alog_cstr(rid);
        r.user_agent = (struct alog_str){pad, (size_t)(i * 37 + w->id * 101) % w->maxlen};
        alog_write(a, &r);
        if (i % 500 == 0)
            alog_flush(a); /* the worker's timer */
    }
    alog_close(a);
    return NULL;
}

/* Counts distinct request ids in a log: THREADS * PER_THREAD if no line was
 * lost or torn. path: borrowed. */
static long distinct_ids(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             PY " -c 'import json,sys; print(len({json.loads(l)[\"request_id\"] for l in "
                "open(sys.argv[1], encoding=\"utf-8\")}))' %s",
             path);
    FILE *p = popen(cmd, "r");
    long n = -1;
    if (p) {
        if (fscanf(p, "%ld", &n) != 1)
            n = -1;
        if (pclose(p) != 0)
            n = -1;
    }
    return n;
}

static void test_shared_file(void)
{
    char path[128];
    tmp_path(path, "shared.log");
    pthread_t th[THREADS];
    struct wargs args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct wargs){path, i, 4000};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    int errs = 0;
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        errs += ret != NULL;
    }
    CHECK(errs == 0, "workers opened the shared file");
    CHECK(py_check(path, NULL) == THREADS * PER_THREAD, "shared file: every line intact");
    CHECK(distinct_ids(path) == THREADS * PER_THREAD, "shared file: no line lost");
    unlink(path);
}

struct reader {
    const char *fifo, *out;
    int ok;
};

static void *fifo_reader(void *arg)
{
    struct reader *rd = arg;
    int in = open(rd->fifo, O_RDONLY);
    int out = open(rd->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char buf[65536];
    ssize_t n;
    rd->ok = in >= 0 && out >= 0;
    while (in >= 0 && (n = read(in, buf, sizeof buf)) > 0)
        if (out < 0 || write(out, buf, (size_t)n) != n)
            rd->ok = 0;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return NULL;
}

static void test_shared_pipe(void)
{
    char fifo[128], out[128];
    tmp_path(fifo, "log.fifo");
    tmp_path(out, "fifo.out");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    /* the reader holds the FIFO open (O_RDWR keeps it from seeing EOF until
     * every writer is done and it closes its own end) */
    int keep = open(fifo, O_RDWR);
    struct reader rd = {fifo, out, 0};
    pthread_t rt, th[THREADS];
    pthread_create(&rt, NULL, fifo_reader, &rd);
    struct wargs args[THREADS];
    /* lines stay under PIPE_BUF: only those can be kept whole on a pipe */
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct wargs){fifo, i, PIPE_BUF - 700};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    close(keep);
    pthread_join(rt, NULL);
    CHECK(rd.ok, "fifo reader");
    CHECK(py_check(out, NULL) == THREADS * PER_THREAD, "shared pipe: no interleaved lines");
    CHECK(distinct_ids(out) == THREADS * PER_THREAD, "shared pipe: no line lost");
    unlink(fifo);
    unlink(out);
}

static void test_reopen(void)
{
    char path[128], rotated[128];
    tmp_path(path, "rot.log");
    tmp_path(rotated, "rot.log.1");
    struct alog *a = alog_open(path);
    CHECK(a != NULL, "open");
    if (!a)
        return;
    struct alog_rec r = base_rec();
    for (int i = 0; i < 10; i++)
        alog_write(a, &r);
    alog_flush(a);
    for (int i = 0; i < 3; i++) /* buffered across the rename */
        alog_write(a, &r);
    CHECK(rename(path, rotated) == 0, "rotate");
    CHECK(alog_reopen(a) == 0, "reopen");
    for (int i = 0; i < 5; i++)
        alog_write(a, &r);
    alog_close(a);
    CHECK(py_check(rotated, NULL) == 13, "rotated file has the lines from before reopen");
    CHECK(py_check(path, NULL) == 5, "new file has the lines after reopen");
    unlink(path);
    unlink(rotated);

    /* reopen failing keeps the old file */
    char sub[128], subfile[128];
    tmp_path(sub, "sub");
    tmp_path(subfile, "sub/x.log");
    mkdir(sub, 0700);
    a = alog_open(subfile);
    CHECK(a != NULL, "open in subdir");
    if (!a)
        return;
    alog_write(a, &r);
    rename(subfile, path);
    rmdir(sub);
    errno = 0;
    CHECK(alog_reopen(a) == -1 && errno == ENOENT, "reopen into a vanished dir fails");
    alog_write(a, &r);
    alog_close(a);
    CHECK(py_check(path, NULL) == 2, "old file kept after a failed reopen");
    unlink(path);
}

static void test_errors(void)
{
    errno = 0;
    CHECK(alog_open("/nonexistent-dir/x/y.log") == NULL && errno == ENOENT, "open failure");
    errno = 0;
    CHECK(alog_open(NULL) == NULL && errno == EINVAL, "NULL path");

    struct alog *a = alog_open("stdout");
    CHECK(a != NULL && alog_reopen(a) == 0, "stdout opens; reopen is a no-op");
    alog_close(a); /* nothing buffered: writes nothing */
    CHECK(fcntl(STDOUT_FILENO, F_GETFD) != -1, "closing the stdout log leaves fd 1 open");
    alog_close(NULL);

    /* a device that always fails: lines are dropped and counted, not kept */
    a = alog_open("/dev/full");
    CHECK(a != NULL, "open /dev/full");
    if (a) {
        struct alog_rec r = base_rec();
        for (int i = 0; i < 7; i++)
            alog_write(a, &r);
        errno = 0;
        CHECK(alog_flush(a) == -1 && errno == ENOSPC, "flush reports ENOSPC");
        CHECK(alog_dropped(a) == 7, "7 lines dropped (%llu)", (unsigned long long)alog_dropped(a));
        CHECK(alog_flush(a) == 0, "buffer emptied after the error");
        alog_close(a);
    }
}

static void test_nonblocking_pipe(void)
{
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[1]);
    /* learn which fd alog_open will get (the lowest free) to make it
     * non-blocking, as a supervisor's stdout might be */
    int probe = dup(0);
    close(probe);
    struct alog *a = alog_open(path);
    struct stat s1, s2;
    bool same = a && fstat(probe, &s1) == 0 && fstat(p[1], &s2) == 0 && s1.st_ino == s2.st_ino;
    CHECK(same, "alog got the probed fd");
    if (!same) {
        alog_close(a);
        close(p[0]);
        close(p[1]);
        return;
    }
    fcntl(probe, F_SETFL, fcntl(probe, F_GETFL) | O_NONBLOCK);
    struct alog_rec r = base_rec();
    int written = 0, rc = 0;
    for (; written < 100000; written++) {
        alog_write(a, &r);
        if ((rc = alog_flush(a)) != 0)
            break;
    }
    written++;
    CHECK(rc == -1 && (errno == EAGAIN || errno == EWOULDBLOCK), "full pipe gives EAGAIN");
    CHECK(alog_dropped(a) == 0, "EAGAIN keeps lines");
    /* keep writing with nobody reading: the buffer fills, then records drop */
    int extra = 0;
    while (alog_dropped(a) == 0 && extra < 100000) {
        alog_write(a, &r);
        extra++;
    }
    CHECK(alog_dropped(a) == 1, "a full buffer drops the new record");
    written += extra - 1;
    /* drain to a file while flushing the rest */
    char out[128];
    tmp_path(out, "nb.out");
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    char buf[65536];
    for (int spins = 0; spins < 100000; spins++) {
        ssize_t n;
        while ((n = read(p[0], buf, sizeof buf)) > 0)
            if (write(fd, buf, (size_t)n) != n)
                break;
        if (alog_flush(a) == 0)
            break;
    }
    alog_close(a);
    close(p[1]);
    ssize_t n;
    fcntl(p[0], F_SETFL, 0);
    while ((n = read(p[0], buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n)
            break;
    close(p[0]);
    close(fd);
    long got = py_check(out, NULL);
    CHECK(got == written, "every kept line arrived whole (%ld of %d)", got, written);
    unlink(out);
}

int main(void)
{
    strcpy(dir, "/tmp/strand_alog_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (access(PY, X_OK) != 0) {
        fprintf(stderr, "FAIL: %s is needed to check the JSON output\n", PY);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    snprintf(script, sizeof script, "%s/check.py", dir);
    FILE *f = fopen(script, "w");
    if (!f || fputs(check_py, f) < 0 || fclose(f) != 0) {
        perror(script);
        return 1;
    }
    test_roundtrip();
    test_batching();
    test_shared_file();
    test_shared_pipe();
    test_reopen();
    test_errors();
    test_nonblocking_pipe();
    unlink(script);
    rmdir(dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
