/* test_config_wasm.c - unit tests of the WasmPlugin kind
 * (src/config/config_wasm.c) with the example modules built into
 * BUILD/examples/wasm/ (found next to this binary). Error cases mark the
 * line they expect the error on with `#<` in the YAML. Prints
 * "N passed, M failed". */
#include "config/config.h"

#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "check_config.h"

static char mods[PATH_MAX + 32]; /* BUILD/examples/wasm */

#define API "apiVersion: strand.dev/v1alpha1\n"
/* Listeners web (http), web2 (http), raw (tcp), pg (postgres), a cluster and
 * a Route `api` on web and `other` on web2. */
#define BASE                                                                                   \
    API "kind: Listener\nmetadata: {name: web}\nspec: {address: 127.0.0.1:10000}\n---\n" API   \
        "kind: Listener\nmetadata: {name: web2}\nspec: {address: 127.0.0.1:10002}\n---\n" API  \
        "kind: Listener\nmetadata: {name: raw}\nspec: {address: 127.0.0.1:10001, protocol: "   \
        "tcp}\n---\n" API "kind: Listener\nmetadata: {name: pg}\nspec: {address: "             \
        "127.0.0.1:10003, protocol: postgres}\n---\n" API                                      \
        "kind: Cluster\nmetadata: {name: be}\nspec:\n  endpoints: [{address: 127.0.0.1:8080}]" \
        "\n---\n" API "kind: Route\nmetadata: {name: api}\nspec:\n  parents: [web]\n  rules:\n" \
        "  - backends: [{cluster: be}]\n---\n" API "kind: Route\nmetadata: {name: other}\n"    \
        "spec:\n  parents: [web2]\n  rules:\n  - backends: [{cluster: be}]\n---\n" API          \
        "kind: WasmPlugin\nmetadata: {name: w}\nspec:\n"

static const unsigned char unknown_wasm[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x09, 0x02, 0x60, 0x01, 0x7f, 0x01, 0x7f,
    0x60, 0x00, 0x00, 0x02, 0x18, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x10, 0x70, 0x72, 0x6f, 0x78, 0x79,
    0x5f, 0x66, 0x72, 0x6f, 0x62, 0x6e, 0x69, 0x63, 0x61, 0x74, 0x65, 0x00, 0x00, 0x03, 0x03, 0x02,
    0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x2d, 0x03, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72,
    0x79, 0x02, 0x00, 0x17, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x61, 0x62, 0x69, 0x5f, 0x76, 0x65,
    0x72, 0x73, 0x69, 0x6f, 0x6e, 0x5f, 0x30, 0x5f, 0x32, 0x5f, 0x31, 0x00, 0x01, 0x06, 0x6d, 0x61,
    0x6c, 0x6c, 0x6f, 0x63, 0x00, 0x02, 0x0a, 0x09, 0x02, 0x02, 0x00, 0x0b, 0x04, 0x00, 0x41, 0x00,
    0x0b,
};

/* Loads yaml (with @M@ replaced by mods) as t.yaml; NULL on error. */
static struct config *load(const char *yaml, char *err, size_t errlen)
{
    char buf[16384];
    size_t o = 0;
    for (const char *p = yaml; *p && o < sizeof(buf) - PATH_MAX - 64;) {
        if (strncmp(p, "@M@", 3) == 0) {
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", mods);
            p += 3;
        } else {
            buf[o++] = *p++;
        }
    }
    buf[o] = 0;
    return load_yaml(buf, o, err, errlen);
}

/* Expects the load to fail at the marked line with msg in the error. */
#define BAD(yaml, msg)                                                                         \
    do {                                                                                       \
        char err_[1024] = "";                                                                  \
        CHECK(marker_line(yaml) > 0, "no #< marker");                                          \
        struct config *c_ = load((yaml), err_, sizeof(err_));                                  \
        check_load_err(__LINE__, c_, err_, (yaml), (msg));                                     \
    } while (0)

static void test_good(void)
{
    char err[1024] = "";
    struct config *cfg = load(BASE "  module: @M@/add_header.wasm\n  config: \"hi there\"\n"
                                   "  targets: [web, raw]\n  failurePolicy: open\n  order: -3\n"
                                   "  fuel: 1000000\n---\n" API
                                   "kind: WasmPlugin\nmetadata: {name: w2}\nspec:\n"
                                   "  module: @M@/deny_header.wasm\n  targets: [web]\n"
                                   "  routes: [api]\n",
                              err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    if (cfg == NULL)
        return;
    CHECK(cfg->nwasm == 2);
    const struct cfg_wasm *w = &cfg->wasm[0];
    CHECK(strcmp(w->name, "w") == 0);
    CHECK(w->config && strcmp(w->config, "hi there") == 0 && w->config_len == 8);
    CHECK(w->nlisteners == 2 && strcmp(w->listeners[1], "raw") == 0);
    CHECK(w->failure == CFG_FAIL_OPEN && w->order == -3 && w->fuel == 1000000);
    CHECK(w->nbytes > 100 && w->bytes && memcmp(w->bytes, "\0asm", 4) == 0);
    unsigned char md[32];
    char hex[65];
    SHA256(w->bytes, w->nbytes, md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    CHECK(strcmp(hex, w->sha256) == 0);
    const struct cfg_wasm *w2 = &cfg->wasm[1];
    CHECK(w2->failure == CFG_FAIL_CLOSED && w2->order == 0 && w2->fuel == 50000000);
    CHECK(w2->config == NULL && w2->nroutes == 1 && strcmp(w2->routes[0], "api") == 0);
    char *json = config_to_json(cfg);
    CHECK(json && strstr(json, "\"wasmPlugins\":[{\"name\":\"w\"") &&
              strstr(json, "\"order\":-3") && strstr(json, hex),
          "%s", json ? json : "(null)");
    free(json);

    /* sha256 given: matches (any case), or fails at its line */
    char yaml[4096];
    for (int i = 0; i < 64; i++)
        hex[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
    snprintf(yaml, sizeof(yaml), BASE "  module: @M@/add_header.wasm\n  sha256: \"%s\"\n"
             "  targets: [web]\n", hex);
    struct config *c2 = load(yaml, err, sizeof(err));
    CHECK(c2 != NULL, "%s", err);
    config_free(c2);
    hex[0] = hex[0] == '0' ? '1' : '0';
    snprintf(yaml, sizeof(yaml), BASE "  module: @M@/add_header.wasm\n  sha256: \"%s\" #<\n"
             "  targets: [web]\n", hex);
    BAD(yaml, "sha256: module '");
    config_free(cfg);
}

/* Relative module paths are relative to the config file's directory. */
static void test_relative(void)
{
    char dir[] = "/tmp/strand-wasmcfg-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        CHECK(0, "mkdtemp");
        return;
    }
    char path[PATH_MAX + 64], mod[PATH_MAX + 64], sub[PATH_MAX + 64];
    snprintf(sub, sizeof(sub), "%s/filters", dir);
    mkdir(sub, 0700);
    snprintf(mod, sizeof(mod), "%s/filters/tcp.wasm", dir);
    char src[PATH_MAX + 64];
    snprintf(src, sizeof(src), "%s/tcp_bytes.wasm", mods);
    FILE *in = fopen(src, "rb"), *out = fopen(mod, "wb");
    if (in && out) {
        char b[65536];
        size_t n;
        while ((n = fread(b, 1, sizeof(b), in)) > 0)
            fwrite(b, 1, n, out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    snprintf(path, sizeof(path), "%s/strand.yaml", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(API "kind: Listener\nmetadata: {name: raw}\nspec: {address: 127.0.0.1:10001, "
                  "protocol: tcp}\n---\n" API "kind: WasmPlugin\nmetadata: {name: t}\nspec:\n"
                  "  module: filters/tcp.wasm\n  targets: [raw]\n",
              f);
        fclose(f);
    }
    const char *paths[] = {path};
    struct config *cfg = NULL;
    char err[1024] = "";
    CHECK(config_load_files(paths, 1, &cfg, err, sizeof(err)) == 0, "%s", err);
    if (cfg) {
        CHECK(cfg->nwasm == 1 && strcmp(cfg->wasm[0].module, "filters/tcp.wasm") == 0 &&
              strcmp(cfg->wasm[0].path, mod) == 0, "%s", cfg->wasm[0].path);
        config_free(cfg);
    }
    /* a broken module and one with an unknown import */
    f = fopen(mod, "wb");
    if (f) {
        fputs("\0asm garbage", f);
        fclose(f);
    }
    cfg = NULL;
    CHECK(config_load_files(paths, 1, &cfg, err, sizeof(err)) != 0 &&
              strstr(err, "strand.yaml:10: module '") && strstr(err, "invalid module"),
          "%s", err);
    f = fopen(mod, "wb");
    if (f) {
        fwrite(unknown_wasm, 1, sizeof(unknown_wasm), f);
        fclose(f);
    }
    CHECK(config_load_files(paths, 1, &cfg, err, sizeof(err)) != 0 &&
              strstr(err, "strand.yaml:10: ") && strstr(err, "unknown import env.proxy_frobnicate"),
          "%s", err);
    unlink(mod);
    CHECK(config_load_files(paths, 1, &cfg, err, sizeof(err)) != 0 &&
              strstr(err, "strand.yaml:10: module: cannot open"),
          "%s", err);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

static void test_errors(void)
{
    BAD(BASE "  module: @M@/nope.wasm #<\n  targets: [web]\n", "module: cannot open '");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web, nope] #<\n", "nope");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [pg] #<\n",
        "target 'pg' is a postgres listener");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web]\n  routes: [nope] #<\n",
        "unknown Route 'nope'");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web]\n  routes: [other] #<\n",
        "Route 'other' is not attached to any target of WasmPlugin 'w'");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web, raw]\n  routes: [api] #<\n",
        "routes: only when every target is an http listener");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web]\n  routes: [api, api] #<\n",
        "listed twice");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web]\n  failurePolicy: maybe #<\n",
        "failurePolicy: expected closed or open");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web]\n  fuel: 5 #<\n", "fuel");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web]\n  order: x1 #<\n",
        "order: expected an integer");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web]\n  sha256: abc #<\n",
        "sha256: expected 64 hexadecimal digits");
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web]\n  color: red #<\n", "color");
    {
        char err[1024] = "";
        struct config *c = load(BASE "  targets: [web]\n", err, sizeof(err));
        CHECK(c == NULL && strstr(err, "WasmPlugin spec: missing required key 'module'"), "%s",
              err);
        config_free(c);
    }
    BAD(BASE "  module: @M@/add_header.wasm\n  targets: [web]\n---\n" API
             "kind: WasmPlugin\nmetadata: {name: w} #<\nspec:\n"
             "  module: @M@/add_header.wasm\n  targets: [web]\n",
        "duplicate WasmPlugin 'w'");
    /* a route defined in a later document is found */
    char err[1024] = "";
    struct config *cfg =
        load(API "kind: Listener\nmetadata: {name: web}\nspec: {address: 127.0.0.1:10000}\n---\n"
             API "kind: WasmPlugin\nmetadata: {name: w}\nspec:\n  module: "
                 "@M@/count_requests.wasm\n  targets: [web]\n  routes: [late]\n---\n" API
                 "kind: Cluster\nmetadata: {name: be}\nspec:\n  endpoints: [{address: "
                 "127.0.0.1:8080}]\n---\n" API "kind: Route\nmetadata: {name: late}\nspec:\n"
                 "  parents: [web]\n  rules:\n  - backends: [{cluster: be}]\n",
             err, sizeof(err));
    CHECK(cfg != NULL, "%s", err);
    config_free(cfg);
}

/* The WasmPlugin example of docs/config.md (fenced `yml`) loads with its
 * module paths pointed at the build directory. */
static void test_docs_example(void)
{
    FILE *f = fopen("docs/config.md", "r");
    CHECK(f != NULL, "docs/config.md (run from the repository root)");
    if (f == NULL)
        return;
    char *text = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&text, &cap, '\0', f);
    fclose(f);
    const char *sec = n > 0 ? strstr(text, "## WasmPlugin\n") : NULL;
    const char *b = sec ? strstr(sec, "```yml\n") : NULL;
    const char *e = b ? strstr(b + 7, "```") : NULL;
    CHECK(e != NULL, "docs/config.md has a WasmPlugin ```yml block");
    if (e != NULL) {
        char yaml[8192];
        size_t o = 0;
        for (const char *p = b + 7; p < e && o < sizeof(yaml) - 64;) {
            if (strncmp(p, "examples/wasm/", 14) == 0) {
                memcpy(yaml + o, "@M@/", 4);
                o += 4;
                p += 14;
            } else {
                yaml[o++] = *p++;
            }
        }
        yaml[o] = 0;
        char err[1024] = "";
        struct config *cfg = load(yaml, err, sizeof(err));
        CHECK(cfg != NULL && cfg->nwasm == 2, "%s", err);
        config_free(cfg);
    }
    free(text);
}

int main(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return 1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(mods, sizeof(mods), "%s/examples/wasm", exe);
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof(probe), "%s/add_header.wasm", mods);
    if (access(probe, R_OK) != 0) {
        printf("FAIL missing %s: build the wasm_examples target (needs clang for wasm32-wasi)\n",
               probe);
        return 1;
    }
    test_good();
    test_relative();
    test_errors();
    test_docs_example();
    return check_report();
}
