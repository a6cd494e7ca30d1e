/* config_wasm.c - the WasmPlugin kind.
 *
 *   spec:
 *     module: examples/wasm/add_header.wasm   # relative to this file's directory
 *     sha256: "<64 hex digits>"              # optional; must match the file
 *     config: "value"                        # optional plugin configuration bytes
 *     targets: [web]                         # http and/or tcp listeners
 *     routes: [api]                          # optional, http targets only
 *     failurePolicy: closed                  # closed (default) | open
 *     fuel: 50000000                         # optional per-callback budget
 *     order: 0                               # optional, lower runs first
 *
 * Loaded in pass 2 (after every Listener). The module file is read here,
 * hashed, and checked as the proxy-wasm host will load it (pw_plugin_new:
 * decode, validate, every import one the host provides, an ABI marker), so
 * a broken module rejects the config with the runtime's message at the
 * line of `module`. The config keeps the checked bytes (struct cfg_wasm in
 * config.h says why). Routes are checked by cfg_check_wasm once every
 * Route of every file is loaded. */
#include "config/config_internal.h"
#include "wasm/pw_host.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_MAX_WASM 1000u
#define CFG_MAX_WASM_BYTES (64u * 1024 * 1024)

/* Appends a zeroed WasmPlugin named by a copy of name->str, unique among
 * WasmPlugins. Owned by cl->cfg; NULL after an error. Borrows name. */
static struct cfg_wasm *wasm_new(struct cload *cl, int line, const struct ynode *name)
{
    struct config *cfg = cl->cfg;
    if (cfg->nwasm == CFG_MAX_WASM) {
        cl_fail(cl, name->line, "more than %u WasmPlugins", CFG_MAX_WASM);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nwasm; i++)
        if (strcmp(cfg->wasm[i].name, name->str) == 0) {
            cl_fail(cl, name->line, "duplicate WasmPlugin '%s' (first defined at %s:%d)",
                    name->str, cfg->wasm[i].where.file, cfg->wasm[i].where.line);
            return NULL;
        }
    struct cfg_wasm *arr = cfg_grow(cfg->wasm, cfg->nwasm, &cl->cap_wasm, sizeof(*arr));
    if (arr == NULL) {
        cl_fail(cl, name->line, "out of memory");
        return NULL;
    }
    cfg->wasm = arr;
    struct cfg_wasm *w = &arr[cfg->nwasm++];
    w->where.file = cl->file;
    w->where.line = line;
    w->fuel = PW_DEFAULT_FUEL;
    if ((w->name = strdup(name->str)) == NULL) {
        cl_fail(cl, name->line, "out of memory");
        return NULL;
    }
    return w;
}

/* spec.module resolved against the directory of the file being loaded
 * (absolute paths as they are); a new string the caller owns, or NULL. */
static char *resolve(const char *file, const char *path)
{
    const char *slash = strrchr(file, '/');
    char *out;
    if (path[0] == '/' || slash == NULL)
        return strdup(path);
    if (asprintf(&out, "%.*s/%s", (int)(slash - file), file, path) < 0)
        return NULL;
    return out;
}

/* Reads all of path into w->bytes. Errors at line. */
static int read_module(struct cload *cl, int line, struct cfg_wasm *w)
{
    /* O_NONBLOCK: opening a FIFO must not hang the loader (it is refused below). */
    int fd = open(w->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0)
        return cl_fail(cl, line, "module: cannot open '%s': %s", w->path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cl_fail(cl, line, "module: '%s' is not a regular file", w->path);
    }
    if ((uint64_t)st.st_size > CFG_MAX_WASM_BYTES) {
        close(fd);
        return cl_fail(cl, line, "module: '%s' is larger than %u bytes", w->path,
                       CFG_MAX_WASM_BYTES);
    }
    size_t cap = (size_t)st.st_size + 1, used = 0;
    if ((w->bytes = malloc(cap)) == NULL) {
        close(fd);
        return cl_fail(cl, line, "out of memory");
    }
    for (;;) {
        ssize_t r = read(fd, w->bytes + used, cap - used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return cl_fail(cl, line, "module: cannot read '%s': %s", w->path, strerror(e));
        }
        if (r == 0)
            break;
        used += (size_t)r;
        if (used == cap) { /* the file grew while we read it */
            close(fd);
            return cl_fail(cl, line, "module: '%s' changed while being read", w->path);
        }
    }
    close(fd);
    w->nbytes = used;
    return 0;
}

/* spec.module: read, check with the proxy-wasm host's own loader, hash. */
static int load_module(struct cload *cl, struct cfg_wasm *w, const struct ynode *n)
{
    const char *s;
    if (cl_scalar(cl, n, "module", &s) != 0)
        return -1;
    if ((w->module = strdup(s)) == NULL || (w->path = resolve(cl->file, s)) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    if (read_module(cl, n->line, w) != 0)
        return -1;
    struct pw_plugin *p = NULL;
    char err[400];
    if (pw_plugin_new(w->name, w->bytes, w->nbytes, NULL, 0, &p, err, sizeof(err)) != 0)
        return cl_fail(cl, n->line, "module '%s': %s", w->path, err);
    pw_plugin_free(p);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(w->bytes, w->nbytes, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(w->sha256 + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* spec.sha256 against the computed hash. Borrows n. */
static int check_sha256(struct cload *cl, const struct cfg_wasm *w, const struct ynode *n)
{
    const char *s;
    if (cl_scalar(cl, n, "sha256", &s) != 0)
        return -1;
    bool hex = strlen(s) == 64;
    for (size_t i = 0; hex && i < 64; i++)
        hex = strchr("0123456789abcdefABCDEF", s[i]) != NULL;
    if (!hex)
        return cl_fail(cl, n->line, "sha256: expected 64 hexadecimal digits");
    if (strcasecmp(s, w->sha256) != 0)
        return cl_fail(cl, n->line, "sha256: module '%s' has sha256 %s, not %s", w->path,
                       w->sha256, s);
    return 0;
}

/* Targets must be http or tcp listeners. */
static int check_targets(struct cload *cl, const struct cfg_wasm *w, const struct ynode *n)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        const struct cfg_listener *l = cl_listener(cl, w->listeners[i]);
        if (l != NULL && l->proto != CFG_PROTO_HTTP && l->proto != CFG_PROTO_TCP)
            return cl_fail(cl, n->items[i]->line,
                           "target '%s' is a %s listener; WasmPlugins run on http (HTTP "
                           "filters) and tcp (stream filters) listeners",
                           l->name, cfg_proto_name(l->proto));
    }
    return 0;
}

/* spec.routes: names only here (checked by cfg_check_wasm). */
static int load_routes(struct cload *cl, struct cfg_wasm *w, const struct ynode *n,
                       unsigned protos)
{
    if (cl_seq(cl, n, "routes", true, CFG_MAX_LIST) != 0)
        return -1;
    if (protos != CFG_PROTO_BIT(CFG_PROTO_HTTP))
        return cl_fail(cl, n->line,
                       "routes: only when every target is an http listener (a tcp "
                       "listener's stream filter sees connections, not routed requests)");
    if ((w->routes = calloc(n->n, sizeof(*w->routes))) == NULL ||
        (w->route_lines = calloc(n->n, sizeof(*w->route_lines))) == NULL)
        return cl_fail(cl, n->line, "out of memory");
    for (size_t i = 0; i < n->n; i++) {
        const char *s;
        if (cl_scalar(cl, n->items[i], "route", &s) != 0)
            return -1;
        for (size_t j = 0; j < w->nroutes; j++)
            if (strcmp(w->routes[j], s) == 0)
                return cl_fail(cl, n->items[i]->line, "route '%s' listed twice", s);
        if ((w->routes[w->nroutes] = strdup(s)) == NULL)
            return cl_fail(cl, n->items[i]->line, "out of memory");
        w->route_lines[w->nroutes++] = n->items[i]->line;
    }
    return 0;
}

/* Borrows the nodes; the WasmPlugin it adds is owned by cl->cfg. */
int cfg_load_wasm(struct cload *cl, int line, const struct ynode *name, const struct ynode *spec)
{
    static const char *const keys[] = {"module", "sha256", "config", "targets", "routes",
                                       "failurePolicy", "fuel", "order", NULL};
    static const char *const what = "WasmPlugin spec";
    const struct ynode *n;
    unsigned protos = 0;
    const char *s;

    if (cl_map(cl, spec, what, keys) != 0)
        return -1;
    struct cfg_wasm *w = wasm_new(cl, line, name);
    if (w == NULL)
        return -1;
    if ((n = cl_need(cl, spec, "targets", what)) == NULL ||
        cfg_load_targets(cl, n, &w->listeners, &w->nlisteners, &protos) != 0 ||
        check_targets(cl, w, n) != 0)
        return -1;
    if ((n = ytree_get(spec, "routes")) && load_routes(cl, w, n, protos) != 0)
        return -1;
    if ((n = cl_need(cl, spec, "module", what)) == NULL || load_module(cl, w, n) != 0)
        return -1;
    if ((n = ytree_get(spec, "sha256")) && check_sha256(cl, w, n) != 0)
        return -1;
    if ((n = ytree_get(spec, "config"))) {
        if (cl_strdup(cl, n, "config", &w->config) != 0)
            return -1;
        w->config_len = strlen(w->config);
    }
    if ((n = ytree_get(spec, "failurePolicy"))) {
        if (cl_scalar(cl, n, "failurePolicy", &s) != 0)
            return -1;
        if (strcmp(s, "closed") == 0)
            w->failure = CFG_FAIL_CLOSED;
        else if (strcmp(s, "open") == 0)
            w->failure = CFG_FAIL_OPEN;
        else
            return cl_fail(cl, n->line, "failurePolicy: expected closed or open, got '%.80s'", s);
    }
    uint32_t fuel;
    if ((n = ytree_get(spec, "fuel"))) {
        if (cl_u32(cl, n, "fuel", 10000, 4000000000u, &fuel) != 0)
            return -1;
        w->fuel = fuel;
    }
    if ((n = ytree_get(spec, "order"))) {
        if (cl_scalar(cl, n, "order", &s) != 0)
            return -1;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (*end != '\0' || errno != 0 || v < -1000000 || v > 1000000 || !(s[0] == '-' ||
            (s[0] >= '0' && s[0] <= '9')))
            return cl_fail(cl, n->line, "order: expected an integer in [-1000000, 1000000], "
                           "got '%.80s'", s);
        w->order = (int32_t)v;
    }
    return 0;
}

/* Every Route a WasmPlugin names exists and is attached to one of its
 * targets. Runs after pass 2. */
int cfg_check_wasm(struct cload *cl)
{
    const struct config *cfg = cl->cfg;
    for (size_t i = 0; i < cfg->nwasm; i++) {
        const struct cfg_wasm *w = &cfg->wasm[i];
        for (size_t j = 0; j < w->nroutes; j++) {
            const struct cfg_route *r = NULL;
            for (size_t k = 0; k < cfg->nroutes && !r; k++)
                if (strcmp(cfg->routes[k].name, w->routes[j]) == 0)
                    r = &cfg->routes[k];
            cl->file = w->where.file;
            if (r == NULL)
                return cl_fail(cl, w->route_lines[j], "unknown Route '%s'", w->routes[j]);
            bool attached = false;
            for (size_t a = 0; a < r->nlisteners && !attached; a++)
                for (size_t b = 0; b < w->nlisteners && !attached; b++)
                    attached = strcmp(r->listeners[a], w->listeners[b]) == 0;
            if (!attached)
                return cl_fail(cl, w->route_lines[j],
                               "Route '%s' is not attached to any target of WasmPlugin '%s'",
                               w->routes[j], w->name);
        }
    }
    return 0;
}
