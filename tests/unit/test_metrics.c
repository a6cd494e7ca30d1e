/* test_metrics.c - unit tests for the metrics registry, shards and renderer.
 *
 * Checks registration (ids, dedup, type conflicts, name/label validation),
 * escaping, histogram bucket placement, concurrent writers against a
 * concurrent renderer, shard retirement, and that the exposition text passes
 * `promtool check metrics`. */
#include "proxy/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"



/* text: borrowed exposition; key: borrowed "name{labels}" as rendered.
 * Returns a pointer into text at the sample's value, or NULL. */
static const char *sample(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, n) == 0 && p[n] == ' ')
            return p + n + 1;
    return NULL;
}

static bool sample_u64(const char *text, const char *key, unsigned long long *v)
{
    const char *p = sample(text, key);
    return p && sscanf(p, "%llu", v) == 1;
}

static bool sample_is(const char *text, const char *key, const char *want)
{
    const char *p = sample(text, key);
    return p && strncmp(p, want, strlen(want)) == 0 && p[strlen(want)] == '\n';
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, len) == 0)
            n++;
    return n;
}

/* Runs promtool over text; returns its exit status, or -1 when promtool is
 * not installed. text: borrowed. */
static int promtool_check(const char *text, bool quiet)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        return -1;
    char path[] = "/tmp/strand_metrics_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -2;
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    int rc = -2;
    if (ok) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "promtool check metrics < %s%s", path,
                 quiet ? " >/dev/null 2>&1" : "");
        rc = system(cmd);
        rc = rc == -1 ? -2 : WEXITSTATUS(rc);
    }
    unlink(path);
    return rc;
}

static void test_registration(void)
{
    uint32_t a = metrics_counter("strand_test_requests_total", "Requests.", "route=\"a\"");
    uint32_t b = metrics_counter("strand_test_requests_total", "Requests.", "route=\"b\"");
    uint32_t a2 = metrics_counter("strand_test_requests_total", "Other help.", "route=\"a\"");
    uint32_t none = metrics_counter("strand_test_requests_total", "Requests.", NULL);
    uint32_t none2 = metrics_counter("strand_test_requests_total", "Requests.", "");
    CHECK(a != METRICS_INVALID && b != METRICS_INVALID, "valid registration");
    CHECK(a != b, "different labels, different ids");
    CHECK(a == a2, "same labels, same id (%u vs %u)", a, a2);
    CHECK(none == none2 && none != a && none != b, "NULL and \"\" labels are one series");

    uint32_t g = metrics_gauge("strand_test_active", "Active.", "listener=\"web\"");
    CHECK(g != METRICS_INVALID, "gauge registers");
    CHECK(metrics_counter("strand_test_active_total", "x", NULL) != METRICS_INVALID,
          "different family name is fine");
    CHECK(metrics_gauge("strand_test_requests_total", "x", "route=\"a\"") == METRICS_INVALID,
          "counter family re-registered as gauge");
    CHECK(metrics_histogram("strand_test_active", "x", NULL) == METRICS_INVALID,
          "gauge family re-registered as histogram");
    CHECK(metrics_counter("strand_test_active", "x", NULL) == METRICS_INVALID,
          "gauge family re-registered as counter");

    /* names promtool would flag or the parser would reject */
    CHECK(metrics_counter("strand_test_requests", "x", NULL) == METRICS_INVALID,
          "counter without _total");
    CHECK(metrics_gauge("strand_test_things_total", "x", NULL) == METRICS_INVALID,
          "gauge with _total");
    CHECK(metrics_gauge("strand_test_count", "x", NULL) == METRICS_INVALID, "gauge _count");
    CHECK(metrics_histogram("strand_test_bucket", "x", NULL) == METRICS_INVALID,
          "histogram _bucket");
    CHECK(metrics_gauge("strandTest", "x", NULL) == METRICS_INVALID, "camelCase name");
    CHECK(metrics_gauge("9strand", "x", NULL) == METRICS_INVALID, "leading digit");
    CHECK(metrics_gauge("strand:test", "x", NULL) == METRICS_INVALID, "colon");
    CHECK(metrics_gauge("", "x", NULL) == METRICS_INVALID, "empty name");
    CHECK(metrics_gauge("strand_test_nohelp", "", NULL) == METRICS_INVALID, "empty help");
    CHECK(metrics_gauge("strand_test_nohelp", NULL, NULL) == METRICS_INVALID, "NULL help");
    CHECK(metrics_gauge(NULL, "x", NULL) == METRICS_INVALID, "NULL name");
    CHECK(metrics_gauge("strand_process_resident_memory_bytes", "x", NULL) == METRICS_INVALID,
          "reserved process family");

    static const char *bad_labels[] = {
        "a=b", "a=\"b", "a=\"b\",", "a=\"b\" ", "=\"b\"", "A=\"b\"", "__a=\"b\"",
        "a=\"b\",a=\"c\"", "a=\"x\ny\"", "a=\"x\\ty\"", "a=\"\xff\"", "a=\"\xc0\xaf\"",
        "a=\"\xed\xa0\x80\"", "a=\"b\"c=\"d\"",
    };
    for (size_t i = 0; i < sizeof bad_labels / sizeof *bad_labels; i++)
        CHECK(metrics_gauge("strand_test_labels", "x", bad_labels[i]) == METRICS_INVALID,
              "bad label string #%zu rejected", i);
    CHECK(metrics_gauge("strand_test_labels", "x", "a=\"\\\\\\\"\\n\",b=\"\xc3\xa9\xe2\x82\xac\"") !=
              METRICS_INVALID,
          "escaped and UTF-8 label values accepted");
    CHECK(metrics_histogram("strand_test_latency_seconds", "x", "le=\"1\"") == METRICS_INVALID,
          "le label on a histogram");
    CHECK(metrics_gauge("strand_test_labels", "x", "a=\"1\",le=\"1\"") == METRICS_INVALID,
          "le label on a gauge");
    CHECK(metrics_counter("strand_test_q_total", "x", "quantile=\"1\"") == METRICS_INVALID,
          "quantile label");
}

static void test_escape(void)
{
    char buf[64];
    size_t n = metrics_label_escape(buf, sizeof buf, "a\"b\\c\nd");
    CHECK(n == 10 && strcmp(buf, "a\\\"b\\\\c\\nd") == 0, "escape quote/backslash/newline: %s", buf);
    n = metrics_label_escape(buf, sizeof buf, "x\xffy\xc3");
    CHECK(n == 8 && strcmp(buf, "x\xef\xbf\xbdy\xef\xbf\xbd") == 0, "invalid UTF-8 -> U+FFFD");
    n = metrics_label_escape(buf, sizeof buf, "\xe2\x82\xac ok");
    CHECK(n == 6 && strcmp(buf, "\xe2\x82\xac ok") == 0, "valid UTF-8 passes through");
    CHECK(metrics_label_escape(NULL, 0, "a\"b") == 4, "length query with NULL out");
    /* truncation: never splits an escape or a sequence; returns full length */
    memset(buf, 'X', sizeof buf);
    n = metrics_label_escape(buf, 3, "a\"b");
    CHECK(n == 4 && strcmp(buf, "a") == 0, "truncation keeps escapes whole: '%s'", buf);
    n = metrics_label_escape(buf, 3, "a\xe2\x82\xac");
    CHECK(n == 4 && strcmp(buf, "a") == 0, "truncation keeps UTF-8 whole");
    n = metrics_label_escape(buf, 1, "abc");
    CHECK(n == 3 && buf[0] == '\0', "outlen 1 gives empty string");

    /* an escaped value round-trips through registration and render */
    char lab[128];
    memcpy(lab, "path=\"", 6);
    size_t m = metrics_label_escape(lab + 6, sizeof lab - 8, "/a\"b\\c\nd\xfe");
    memcpy(lab + 6 + m, "\"", 2);
    uint32_t id = metrics_counter("strand_test_escaped_total", "Escaped \\ help\nline.", lab);
    CHECK(id != METRICS_INVALID, "escaped label registers: %s", lab);
    struct metrics_shard *s = metrics_shard_new();
    metrics_add(s, id, 7);
    char *text = metrics_render(NULL);
    char key[160];
    snprintf(key, sizeof key, "strand_test_escaped_total{%s}", lab);
    CHECK(text && sample_is(text, key, "7"), "escaped series renders");
    CHECK(text && strstr(text, "# HELP strand_test_escaped_total Escaped \\\\ help\\nline.\n"),
          "HELP text escaped");
    free(text);
    metrics_shard_free(s);
}

static void test_histogram(void)
{
    static const uint64_t bounds[] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
                                      100000, 250000, 500000, 1000000, 2500000, 5000000,
                                      10000000};
    static const char *le[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                               "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
                               "5", "10", "+Inf"};
    struct metrics_shard *s = metrics_shard_new();
    uint32_t h = metrics_histogram("strand_test_latency_seconds", "Latency.", "route=\"r\"");
    uint32_t h0 = metrics_histogram("strand_test_latency_seconds", "Latency.", NULL);
    CHECK(h != METRICS_INVALID && h0 != METRICS_INVALID && h != h0, "histograms register");

    /* every bound, one below and one above; plus 0 and a huge value */
    unsigned long long want[17] = {0}, count = 0, sum = 0;
    for (int i = 0; i < 16; i++) {
        uint64_t vs[3] = {bounds[i] - 1, bounds[i], bounds[i] + 1};
        for (int k = 0; k < 3; k++) {
            metrics_observe(s, h, vs[k]);
            int b = 0;
            while (b < 16 && vs[k] > bounds[b])
                b++;
            want[b]++;
            count++;
            sum += vs[k];
        }
    }
    uint64_t extra[] = {0, 1, 99, 123456789ULL, UINT64_C(1) << 40};
    for (size_t k = 0; k < sizeof extra / sizeof *extra; k++) {
        metrics_observe(s, h, extra[k]);
        int b = 0;
        while (b < 16 && extra[k] > bounds[b])
            b++;
        want[b]++;
        count++;
        sum += extra[k];
    }
    metrics_observe(s, h0, 1500000); /* 1.5 s */
    metrics_observe(s, METRICS_INVALID, 5); /* harmless */

    CHECK(metrics_read(h) == count, "metrics_read(hist) is the count: %llu",
          (unsigned long long)metrics_read(h));
    char *text = metrics_render(NULL);
    CHECK(text != NULL, "render");
    if (!text)
        return;
    unsigned long long cum = 0;
    for (int i = 0; i < 17; i++) {
        char key[128];
        unsigned long long v = 0;
        cum += want[i];
        snprintf(key, sizeof key, "strand_test_latency_seconds_bucket{route=\"r\",le=\"%s\"}", le[i]);
        CHECK(sample_u64(text, key, &v) && v == cum, "%s = %llu, want %llu", key, v, cum);
    }
    unsigned long long c = 0;
    CHECK(sample_u64(text, "strand_test_latency_seconds_count{route=\"r\"}", &c) && c == count,
          "_count");
    char sumstr[64];
    snprintf(sumstr, sizeof sumstr, "%llu.%06llu", sum / 1000000, sum % 1000000);
    CHECK(sample_is(text, "strand_test_latency_seconds_sum{route=\"r\"}", sumstr), "_sum = %s",
          sumstr);
    CHECK(sample_is(text, "strand_test_latency_seconds_bucket{le=\"1\"}", "0"), "unlabelled le=1");
    CHECK(sample_is(text, "strand_test_latency_seconds_bucket{le=\"2.5\"}", "1"),
          "unlabelled le=2.5");
    CHECK(sample_is(text, "strand_test_latency_seconds_sum", "1.500000"), "unlabelled sum");
    CHECK(count_lines_starting(text, "# TYPE strand_test_latency_seconds histogram\n") == 1,
          "one TYPE line per family");
    free(text);
    metrics_shard_free(s);
}

/* ---- concurrency: 4 workers, one renderer ---- */

#define WORKERS 4
#define ITERS 200000

static uint32_t conc_counter, conc_gauge, conc_hist;
static atomic_int workers_done;

static void *worker(void *arg)
{
    struct metrics_shard *s = arg;
    for (int i = 0; i < ITERS; i++) {
        metrics_add(s, conc_counter, 1);
        metrics_gauge_add(s, conc_gauge, 1);
        metrics_observe(s, conc_hist, (uint64_t)(i % 20000));
        metrics_gauge_add(s, conc_gauge, -1);
    }
    metrics_gauge_add(s, conc_gauge, 1); /* one left "active" per worker */
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

static void test_concurrent(void)
{
    conc_counter = metrics_counter("strand_test_conc_total", "Concurrent.", "w=\"all\"");
    conc_gauge = metrics_gauge("strand_test_conc_active", "Concurrent gauge.", NULL);
    conc_hist = metrics_histogram("strand_test_conc_seconds", "Concurrent histogram.", NULL);
    struct metrics_shard *shards[WORKERS];
    pthread_t th[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        shards[i] = metrics_shard_new();
        CHECK(shards[i] != NULL, "shard_new");
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&th[i], NULL, worker, shards[i]);

    unsigned long long last = 0;
    int renders = 0;
    bool monotonic = true, consistent = true;
    while (atomic_load(&workers_done) < WORKERS || renders < 3) {
        char *text = metrics_render(NULL);
        if (!text)
            break;
        unsigned long long v = 0, inf = 0, cnt = 0, prev = 0;
        if (sample_u64(text, "strand_test_conc_total{w=\"all\"}", &v)) {
            if (v < last)
                monotonic = false;
            last = v;
        }
        sample_u64(text, "strand_test_conc_seconds_bucket{le=\"+Inf\"}", &inf);
        sample_u64(text, "strand_test_conc_seconds_count", &cnt);
        if (inf != cnt)
            consistent = false;
        /* cumulative buckets never decrease */
        for (const char *p = strstr(text, "strand_test_conc_seconds_bucket"); p;
             p = strstr(p + 1, "strand_test_conc_seconds_bucket")) {
            unsigned long long b = 0;
            const char *sp = strchr(p, ' ');
            if (sp && sscanf(sp + 1, "%llu", &b) == 1) {
                if (b < prev)
                    consistent = false;
                prev = b;
            }
        }
        free(text);
        renders++;
        (void)metrics_read(conc_counter);
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(th[i], NULL);
    CHECK(renders >= 3, "renderer ran concurrently (%d renders)", renders);
    CHECK(monotonic, "counter monotonic across concurrent renders");
    CHECK(consistent, "histogram self-consistent in concurrent renders");
    CHECK(metrics_read(conc_counter) == (uint64_t)WORKERS * ITERS, "counter sum exact: %llu",
          (unsigned long long)metrics_read(conc_counter));
    CHECK((int64_t)metrics_read(conc_gauge) == WORKERS, "gauge sum exact: %lld",
          (long long)(int64_t)metrics_read(conc_gauge));
    CHECK(metrics_read(conc_hist) == (uint64_t)WORKERS * ITERS, "histogram count exact");

    /* retiring a shard keeps counters and histograms, drops gauge deltas */
    metrics_shard_free(shards[0]);
    CHECK(metrics_read(conc_counter) == (uint64_t)WORKERS * ITERS, "counter survives shard_free");
    CHECK(metrics_read(conc_hist) == (uint64_t)WORKERS * ITERS, "histogram survives shard_free");
    CHECK((int64_t)metrics_read(conc_gauge) == WORKERS - 1, "gauge delta dropped with shard");
    char *text = metrics_render(NULL);
    CHECK(text && sample_is(text, "strand_test_conc_active", "3"), "gauge renders signed sum");
    free(text);
    for (int i = 1; i < WORKERS; i++)
        metrics_shard_free(shards[i]);
    metrics_shard_free(NULL);
}

/* ---- chunks: shards made before and after registrations that span chunks ---- */

static void test_chunks_and_reload(void)
{
    struct metrics_shard *early = metrics_shard_new();
    uint32_t first = METRICS_INVALID, last = METRICS_INVALID;
    char lab[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(lab, sizeof lab, "route=\"r%d\"", i);
        uint32_t id = metrics_counter("strand_test_many_total", "Many.", lab);
        if (i == 0)
            first = id;
        last = id;
    }
    CHECK(first != METRICS_INVALID && last != METRICS_INVALID && last - first >= 4999,
          "5000 series registered across chunks");
    /* a histogram registered near a chunk's end (18 slots would straddle)
     * moves to the next chunk */
    uint32_t pad = last;
    for (int i = 0; pad != METRICS_INVALID && (pad & 1023) != 1015 && i < 2048; i++) {
        snprintf(lab, sizeof lab, "pad=\"%d\"", i);
        pad = metrics_counter("strand_test_pad_total", "Padding.", lab);
    }
    CHECK((pad & 1023) == 1015, "padded to a chunk's end");
    uint32_t h = metrics_histogram("strand_test_many_seconds", "Many.", "route=\"h\"");
    CHECK(h != METRICS_INVALID && (h & 1023) + 18 <= 1024, "histogram within one chunk");
    struct metrics_shard *late = metrics_shard_new();
    metrics_add(early, last, 2);
    metrics_add(late, last, 3);
    metrics_observe(early, h, 10);
    metrics_observe(late, h, 20);
    metrics_observe(late, h, UINT64_C(1) << 50); /* overflow bucket and sum: last slots */
    CHECK(metrics_read(last) == 5, "ids in late chunks work in early and late shards");
    CHECK(metrics_read(h) == 3, "histogram in late chunk");

    /* a "reload": registering again finds every old id; values carry over */
    bool same = true;
    for (int i = 0; i < 5000; i++) {
        snprintf(lab, sizeof lab, "route=\"r%d\"", i);
        if (metrics_counter("strand_test_many_total", "Many.", lab) != first + (uint32_t)i)
            same = false;
    }
    CHECK(same, "re-registration returns the same ids");
    CHECK(metrics_read(last) == 5, "value survives re-registration");

    /* an unchecked invalid id goes to the sink and changes nothing */
    char *before = metrics_render(NULL);
    metrics_add(early, METRICS_INVALID, 1000);
    metrics_gauge_add(late, METRICS_INVALID, -1000);
    char *after = metrics_render(NULL);
    char *pb = before ? strstr(before, "# HELP strand_process_") : NULL;
    char *pa = after ? strstr(after, "# HELP strand_process_") : NULL;
    CHECK(pb && pa && pb - before == pa - after && memcmp(before, after, (size_t)(pb - before)) == 0,
          "writes to METRICS_INVALID are not rendered");
    CHECK(metrics_read(METRICS_INVALID) == 0, "read of invalid id is 0");
    free(before);
    free(after);
    metrics_shard_free(early);
    metrics_shard_free(late);
}

static void test_render_promtool(void)
{
    struct metrics_shard *s = metrics_shard_new();
    uint32_t g = metrics_gauge("strand_test_neg", "Negative gauge.", "x=\"1\"");
    metrics_gauge_add(s, g, -42);
    size_t len = 0;
    char *text = metrics_render(&len);
    CHECK(text && len == strlen(text), "render length");
    if (!text) {
        metrics_shard_free(s);
        return;
    }
    CHECK(sample_is(text, "strand_test_neg{x=\"1\"}", "-42"), "negative gauge");
    unsigned long long rss = 0;
    CHECK(sample_u64(text, "strand_process_resident_memory_bytes", &rss) && rss > 0, "rss > 0");
    CHECK(sample(text, "strand_process_cpu_seconds_total") != NULL, "cpu seconds present");
    const char *st = sample(text, "strand_process_start_time_seconds");
    double start = st ? strtod(st, NULL) : 0;
    CHECK(start > 1.5e9 && start <= (double)time(NULL) + 1, "start time plausible: %f", start);
    CHECK(count_lines_starting(text, "# HELP strand_test_requests_total ") == 1 &&
              count_lines_starting(text, "# TYPE strand_test_requests_total counter") == 1,
          "one HELP/TYPE per family");
    CHECK(strstr(text, "# HELP strand_test_requests_total Requests.\n") != NULL,
          "first help wins");

    int rc = promtool_check(text, false);
    if (rc == -1)
        fprintf(stderr, "FAIL: promtool not found in PATH; install Debian's 'prometheus' "
                        "package (it provides /usr/bin/promtool)\n");
    CHECK(rc == 0, "promtool check metrics passes (rc=%d)", rc);
    if (rc != 0) {
        FILE *fp = fopen("/tmp/strand_metrics_failed.txt", "w");
        if (fp) {
            fputs(text, fp);
            fclose(fp);
            fprintf(stderr, "  exposition saved to /tmp/strand_metrics_failed.txt\n");
        }
    }
    free(text);
    metrics_shard_free(s);

    /* and promtool does catch what we guard against (the check is real) */
    rc = promtool_check("# HELP x_total a\n# TYPE x_total counter\nx_total{a=\"1\",a=\"2\"} 1\n",
                        true);
    CHECK(rc > 0, "promtool rejects a broken exposition (rc=%d)", rc);
}

static void test_reset(void)
{
    metrics_reset_for_tests();
    char *text = metrics_render(NULL);
    CHECK(text && strncmp(text, "# HELP strand_process_", 22) == 0, "reset empties the registry");
    free(text);
    /* a type may change after a reset, and new series start at zero */
    uint32_t id = metrics_gauge("strand_test_requests_total_x", "x", NULL);
    CHECK(id != METRICS_INVALID, "register after reset");
    struct metrics_shard *s = metrics_shard_new();
    CHECK(s && metrics_read(id) == 0, "fresh after reset");
    metrics_shard_free(s);
    metrics_reset_for_tests();
}

int main(void)
{
    test_registration();
    test_escape();
    test_histogram();
    test_concurrent();
    test_chunks_and_reload();
    test_render_promtool();
    test_reset();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
