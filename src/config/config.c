/* config.c - loading a set of files into one validated `struct config`.
 *
 * A load is three passes over every document of every file:
 *   0. parse all files into YAML trees (syntax errors stop here);
 *   1. Proxy, Listener and Cluster documents, in order;
 *   2. Route, HTTPRoute, AuthorizationPolicy, RateLimit and WasmPlugin
 *      documents, which may then
 *      name any listener or cluster from any file and are checked against
 *      them immediately, at the line of the offending reference.
 * The config is built in place and freed whole on the first error, so no
 * error path needs its own cleanup beyond what it was holding itself. */
#include "config/config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STRAND_API "strand.dev/v1alpha1"

enum doc_kind { DOC_PROXY, DOC_LISTENER, DOC_CLUSTER, DOC_ROUTE, DOC_HTTPROUTE, DOC_AUTHZ,
               DOC_RATELIMIT, DOC_WASM };

/* A document's validated header; nodes borrowed from the tree. */
struct doc_head {
    enum doc_kind kind;
    const struct ynode *name;
    const struct ynode *spec; /* NULL when absent */
};

/* Checks labels/annotations: a mapping of strings (kept only for
 * compatibility with Kubernetes-shaped files; ignored). Borrows. */
static int check_string_map(struct cload *cl, const struct ynode *n, const char *what)
{
    if (n->kind != YNODE_MAP)
        return cl_fail(cl, n->line, "%s: expected a mapping, got %s", what, ytree_describe(n));
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *v = n->items[2 * i + 1];
        if (v->kind != YNODE_SCALAR)
            return cl_fail(cl, v->line, "%s: values must be strings, got %s", what,
                           ytree_describe(v));
    }
    return 0;
}

/* Validates apiVersion/kind/metadata of one document root. Borrows all. */
static int doc_header(struct cload *cl, const struct ynode *root, struct doc_head *h)
{
    static const char *const top[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const meta_keys[] = {"name", "labels", "annotations", NULL};
    static const char *const kmeta_keys[] = {"name", "namespace", "labels", "annotations", NULL};
    const struct ynode *n;
    const char *kind, *api;

    if (cl_map(cl, root, "document", top) != 0)
        return -1;
    if ((n = cl_need(cl, root, "kind", "document")) == NULL || cl_scalar(cl, n, "kind", &kind))
        return -1;
    if (strcmp(kind, "Proxy") == 0)
        h->kind = DOC_PROXY;
    else if (strcmp(kind, "Listener") == 0)
        h->kind = DOC_LISTENER;
    else if (strcmp(kind, "Cluster") == 0)
        h->kind = DOC_CLUSTER;
    else if (strcmp(kind, "Route") == 0)
        h->kind = DOC_ROUTE;
    else if (strcmp(kind, "HTTPRoute") == 0)
        h->kind = DOC_HTTPROUTE;
    else if (strcmp(kind, "AuthorizationPolicy") == 0)
        h->kind = DOC_AUTHZ;
    else if (strcmp(kind, "RateLimit") == 0)
        h->kind = DOC_RATELIMIT;
    else if (strcmp(kind, "WasmPlugin") == 0)
        h->kind = DOC_WASM;
    else
        return cl_fail(cl, n->line,
                       "unknown kind '%s' (use Proxy, Listener, Cluster, Route, HTTPRoute, "
                       "AuthorizationPolicy, RateLimit or WasmPlugin)",
                       kind);

    if ((n = cl_need(cl, root, "apiVersion", "document")) == NULL ||
        cl_scalar(cl, n, "apiVersion", &api))
        return -1;
    if (h->kind == DOC_HTTPROUTE) {
        if (strcmp(api, "gateway.networking.k8s.io/v1") != 0 &&
            strcmp(api, "gateway.networking.k8s.io/v1beta1") != 0)
            return cl_fail(cl, n->line,
                           "apiVersion of HTTPRoute must be gateway.networking.k8s.io/v1, "
                           "got '%s'",
                           api);
    } else if (strcmp(api, STRAND_API) != 0) {
        return cl_fail(cl, n->line, "apiVersion of %s must be " STRAND_API ", got '%s'", kind,
                       api);
    }

    const struct ynode *meta = cl_need(cl, root, "metadata", "document");
    if (meta == NULL ||
        cl_map(cl, meta, "metadata", h->kind == DOC_HTTPROUTE ? kmeta_keys : meta_keys) != 0)
        return -1;
    if ((n = ytree_get(meta, "labels")) != NULL && check_string_map(cl, n, "labels") != 0)
        return -1;
    if ((n = ytree_get(meta, "annotations")) != NULL &&
        check_string_map(cl, n, "annotations") != 0)
        return -1;
    if ((n = ytree_get(meta, "namespace")) != NULL) {
        const char *ns;
        if (cl_scalar(cl, n, "metadata.namespace", &ns) != 0)
            return -1;
    }
    if ((h->name = cl_need(cl, meta, "name", "metadata")) == NULL)
        return -1;
    char *tmp;
    if (cl_name(cl, h->name, "metadata.name", &tmp) != 0)
        return -1;
    free(tmp);

    h->spec = ytree_get(root, "spec");
    if (h->spec == NULL && h->kind != DOC_PROXY)
        return cl_fail(cl, root->line, "%s '%s': missing required key 'spec'", kind,
                       h->name->str);
    return 0;
}

/* Pass 1 (routes == false) or pass 2 (routes == true) over one document.
 * Borrows everything. */
static int load_doc(struct cload *cl, const struct ynode *root, bool routes)
{
    struct doc_head h;
    if (root == NULL || ytree_is_null(root))
        return 0; /* an empty document, e.g. after a trailing `---` */
    if (!routes) {
        /* Headers are checked in pass 1 so errors come out in file order. */
        if (doc_header(cl, root, &h) != 0)
            return -1;
        switch (h.kind) {
        case DOC_PROXY:
            return cfg_load_proxy(cl, root->line, h.spec);
        case DOC_LISTENER:
            return cfg_load_listener(cl, root->line, h.name, h.spec);
        case DOC_CLUSTER:
            return cfg_load_cluster(cl, root->line, h.name, h.spec);
        default:
            return 0;
        }
    }
    if (doc_header(cl, root, &h) != 0)
        return -1;
    if (h.kind == DOC_ROUTE)
        return cfg_load_route(cl, root->line, h.name, h.spec);
    if (h.kind == DOC_HTTPROUTE)
        return cfg_load_httproute(cl, root->line, h.name, h.spec);
    if (h.kind == DOC_AUTHZ)
        return cfg_load_authz(cl, root->line, h.name, h.spec);
    if (h.kind == DOC_RATELIMIT)
        return cfg_load_ratelimit(cl, root->line, h.name, h.spec);
    if (h.kind == DOC_WASM)
        return cfg_load_wasm(cl, root->line, h.name, h.spec);
    return 0;
}

/* A listener that authenticates clients itself (spec.auth) logs into
 * servers with the cluster's credentials, so every cluster its routes can
 * pick must have `auth`. */
static int check_terminated(struct cload *cl)
{
    const struct config *cfg = cl->cfg;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct cfg_route *r = &cfg->routes[i];
        const struct cfg_listener *term = NULL;
        for (size_t j = 0; j < r->nlisteners && !term; j++) {
            const struct cfg_listener *l = config_listener(cfg, r->listeners[j]);
            if (l && l->nauth_users)
                term = l;
        }
        for (size_t j = 0; term && j < r->nrules; j++)
            for (size_t b = 0; b < r->rules[j].nbackends; b++) {
                const struct cfg_cluster *c = config_cluster(cfg, r->rules[j].backends[b].cluster);
                if (c && !c->auth_user) {
                    cl->file = r->where.file;
                    return cl_fail(cl, r->rules[j].where.line,
                                   "cluster '%s' has no auth, but listener '%s' authenticates "
                                   "clients itself (spec.auth) and logs into servers with the "
                                   "cluster's credentials",
                                   c->name, term->name);
                }
            }
    }
    return 0;
}

/* The admin listener and the proxy listeners must be bindable together. */
static int check_admin(struct cload *cl)
{
    const struct config *cfg = cl->cfg;
    if (cfg->admin_address == NULL)
        return 0;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        if (cfg_addr_conflict(&l->addr, &cfg->admin_addr)) {
            cl->file = l->where.file;
            return cl_fail(cl, cl->listener_addr_lines[i],
                           "Listener '%s': address %s conflicts with the admin address %s",
                           l->name, l->address, cfg->admin_address);
        }
    }
    return 0;
}

/* qsort order of the listener index; borrows both elements. */
static int listener_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct cfg_listener *const *)a)->name,
                  (*(const struct cfg_listener *const *)b)->name);
}

/* Borrows both elements. */
static int cluster_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct cfg_cluster *const *)a)->name,
                  (*(const struct cfg_cluster *const *)b)->name);
}

/* Builds cl's sorted name indexes once every Listener and Cluster is
 * loaded, so resolving the references of many routes stays O(log n). */
static int build_indexes(struct cload *cl)
{
    const struct config *cfg = cl->cfg;
    cl->listener_index = calloc(cfg->nlisteners + 1, sizeof(*cl->listener_index));
    cl->cluster_index = calloc(cfg->nclusters + 1, sizeof(*cl->cluster_index));
    if (cl->listener_index == NULL || cl->cluster_index == NULL)
        return cl_fail(cl, 0, "out of memory");
    for (size_t i = 0; i < cfg->nlisteners; i++)
        cl->listener_index[i] = &cfg->listeners[i];
    for (size_t i = 0; i < cfg->nclusters; i++)
        cl->cluster_index[i] = &cfg->clusters[i];
    qsort(cl->listener_index, cfg->nlisteners, sizeof(*cl->listener_index), listener_cmp);
    qsort(cl->cluster_index, cfg->nclusters, sizeof(*cl->cluster_index), cluster_cmp);
    return 0;
}

/* bsearch orders: the key is the name itself; borrows both. */
static int listener_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct cfg_listener *const *)elem)->name);
}

static int cluster_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct cfg_cluster *const *)elem)->name);
}

/* Pointer into cl->cfg or NULL; borrows both. */
const struct cfg_listener *cl_listener(const struct cload *cl, const char *name)
{
    const struct cfg_listener *const *hit = bsearch(
        name, cl->listener_index, cl->cfg->nlisteners, sizeof(*hit), listener_key_cmp);
    return hit != NULL ? *hit : NULL;
}

/* Pointer into cl->cfg or NULL; borrows both. */
const struct cfg_cluster *cl_cluster(const struct cload *cl, const char *name)
{
    const struct cfg_cluster *const *hit =
        bsearch(name, cl->cluster_index, cl->cfg->nclusters, sizeof(*hit), cluster_key_cmp);
    return hit != NULL ? *hit : NULL;
}

/* Loads n in-memory sources. names/datas/lens are borrowed; on success *out
 * receives a config the caller owns. */
static int load_sources(const char *const *names, const char *const *datas, const size_t *lens,
                        size_t n, struct config **out, char *err, size_t errlen)
{
    struct cload cl = {.err = err, .errlen = errlen, .file = "config"};
    struct ystream *streams = NULL;
    size_t budget = CFG_MAX_NODES;
    int rc = -1;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    cl.cfg = calloc(1, sizeof(*cl.cfg));
    if (cl.cfg == NULL)
        return cl_fail(&cl, 0, "out of memory");
    struct config *cfg = cl.cfg;
    cfg->drain_timeout_ms = 15000;
    cfg->buffer_bytes = 32768;
    if (n == 0) {
        cl_fail(&cl, 0, "no configuration files given");
        goto out;
    }
    cfg->files = calloc(n, sizeof(*cfg->files));
    streams = calloc(n, sizeof(*streams));
    if (cfg->files == NULL || streams == NULL) {
        cl_fail(&cl, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++, cfg->nfiles++)
        if ((cfg->files[i] = strdup(names[i])) == NULL) {
            cl_fail(&cl, 0, "out of memory");
            goto out;
        }
    cfg->admin_address = strdup("127.0.0.1:9901");
    if (cfg->admin_address == NULL ||
        config_parse_address(cfg->admin_address, &cfg->admin_addr, &cfg->admin_addrlen) != 0) {
        cl_fail(&cl, 0, "out of memory");
        goto out;
    }

    for (size_t i = 0; i < n; i++)
        if (ytree_parse(cfg->files[i], datas[i], lens[i], &budget, &streams[i], err, errlen))
            goto out;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            cl.file = cfg->files[i];
            for (size_t d = 0; d < streams[i].ndocs; d++)
                if (load_doc(&cl, streams[i].docs[d].root, pass == 1) != 0)
                    goto out;
        }
        if (pass == 0 && (check_admin(&cl) != 0 || build_indexes(&cl) != 0))
            goto out;
    }
    if (check_terminated(&cl) != 0 || cfg_check_wasm(&cl) != 0)
        goto out;
    rc = 0;
out:
    for (size_t i = 0; streams != NULL && i < n; i++)
        ytree_free(&streams[i]);
    free(streams);
    free(cl.listener_addr_lines);
    free(cl.listener_index);
    free(cl.cluster_index);
    if (rc == 0)
        *out = cfg;
    else
        config_free(cfg);
    return rc;
}

/* Borrows name and data; *out is owned by the caller on success. */
int config_load_buffer(const char *name, const char *data, size_t len, struct config **out,
                       char *err, size_t errlen)
{
    if (len > CFG_MAX_FILE_BYTES) {
        if (errlen > 0)
            snprintf(err, errlen, "%s:0: larger than %u bytes", name, CFG_MAX_FILE_BYTES);
        return -1;
    }
    if (data == NULL)
        data = ""; /* libyaml asserts on a NULL input */
    return load_sources(&name, &data, &len, 1, out, err, errlen);
}

/* Reads all of path into a new buffer (*data, owned by the caller) of at
 * most CFG_MAX_FILE_BYTES; on failure writes "path:0: reason". */
static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errlen > 0)
            snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            if (errlen > 0)
                snprintf(err, errlen, "%s:0: out of memory", path);
            break;
        }
        if (used == cap) {
            if (cap > CFG_MAX_FILE_BYTES) {
                if (errlen > 0)
                    snprintf(err, errlen, "%s:0: larger than %u bytes", path,
                             CFG_MAX_FILE_BYTES);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + used, cap - used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            if (errlen > 0)
                snprintf(err, errlen, "%s:0: cannot read: %s", path, strerror(errno));
            break;
        }
        if (r == 0) {
            if (used > CFG_MAX_FILE_BYTES) {
                if (errlen > 0)
                    snprintf(err, errlen, "%s:0: larger than %u bytes", path,
                             CFG_MAX_FILE_BYTES);
                break;
            }
            close(fd);
            *data = buf;
            *len = used;
            return 0;
        }
        used += (size_t)r;
    }
    free(buf);
    close(fd);
    return -1;
}

/* Borrows paths; *out is owned by the caller on success. */
int config_load_files(const char *const *paths, size_t npaths, struct config **out, char *err,
                      size_t errlen)
{
    char **datas = calloc(npaths ? npaths : 1, sizeof(*datas));
    size_t *lens = calloc(npaths ? npaths : 1, sizeof(*lens));
    int rc = -1;
    if (datas == NULL || lens == NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "config:0: out of memory");
        goto out;
    }
    for (size_t i = 0; i < npaths; i++)
        if (read_file(paths[i], &datas[i], &lens[i], err, errlen) != 0)
            goto out;
    rc = load_sources(paths, (const char *const *)datas, lens, npaths, out, err, errlen);
out:
    for (size_t i = 0; datas != NULL && i < npaths; i++)
        free(datas[i]);
    free(datas);
    free(lens);
    return rc;
}

/* Frees a string array and its strings; takes ownership of v. */
static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Frees the header lists of ops (not ops); takes ownership of its members. */
static void free_header_ops(struct cfg_header_ops *ops)
{
    for (size_t i = 0; i < ops->nset; i++) {
        free(ops->set[i].name);
        free(ops->set[i].value);
    }
    for (size_t i = 0; i < ops->nadd; i++) {
        free(ops->add[i].name);
        free(ops->add[i].value);
    }
    free(ops->set);
    free(ops->add);
    free_strv(ops->remove, ops->nremove);
}

/* Takes ownership of conds and what they own. */
void cfg_conds_free(struct cfg_cond *conds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(conds[i].attr);
        free(conds[i].value);
        free_strv(conds[i].values, conds[i].nvalues);
    }
    free(conds);
}

/* Frees what rule owns; the rule itself is its route's. */
void cfg_rule_free(struct cfg_rule *rule)
{
    free(rule->name);
    cfg_conds_free(rule->conds, rule->nconds);
    for (size_t i = 0; i < rule->nbackends; i++)
        free(rule->backends[i].cluster);
    free(rule->backends);
    free_header_ops(&rule->request_headers);
    free_header_ops(&rule->response_headers);
    free(rule->rewrite_prefix);
    free(rule->direct.body);
    free(rule->direct.content_type);
    free(rule->hash_attr);
}

/* Takes ownership of cfg and frees it whole (NULL allowed). */
void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        free(cfg->listeners[i].name);
        free(cfg->listeners[i].address);
        cfg_listener_tls_free(&cfg->listeners[i].tls);
        for (size_t j = 0; j < cfg->listeners[i].nauth_users; j++) {
            free(cfg->listeners[i].auth_users[j].user);
            free(cfg->listeners[i].auth_users[j].password);
            free(cfg->listeners[i].auth_users[j].scram_secret);
            free(cfg->listeners[i].auth_users[j].native_hash);
        }
        free(cfg->listeners[i].auth_users);
    }
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->nclusters; i++) {
        struct cfg_cluster *c = &cfg->clusters[i];
        free(c->name);
        for (size_t j = 0; j < c->nendpoints; j++)
            free(c->endpoints[j].address);
        free(c->endpoints);
        free(c->hash_attr);
        free(c->auth_user);
        free(c->auth_password);
        free(c->replica_check.query);
        cfg_cluster_tls_free(&c->tls);
    }
    free(cfg->clusters);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        struct cfg_route *r = &cfg->routes[i];
        free(r->name);
        free_strv(r->listeners, r->nlisteners);
        free_strv(r->hostnames, r->nhostnames);
        for (size_t j = 0; j < r->nrules; j++)
            cfg_rule_free(&r->rules[j]);
        free(r->rules);
    }
    free(cfg->routes);
    for (size_t i = 0; i < cfg->nauthz; i++) {
        struct cfg_authz *a = &cfg->authz[i];
        free(a->name);
        free_strv(a->listeners, a->nlisteners);
        for (size_t j = 0; j < a->nrules; j++)
            cfg_conds_free(a->rules[j].conds, a->rules[j].nconds);
        free(a->rules);
    }
    free(cfg->authz);
    for (size_t i = 0; i < cfg->nratelimits; i++) {
        struct cfg_ratelimit *rl = &cfg->ratelimits[i];
        free(rl->name);
        free_strv(rl->listeners, rl->nlisteners);
        for (size_t j = 0; j < rl->nrules; j++) {
            cfg_conds_free(rl->rules[j].conds, rl->rules[j].nconds);
            free(rl->rules[j].key);
        }
        free(rl->rules);
    }
    free(cfg->ratelimits);
    for (size_t i = 0; i < cfg->nwasm; i++) {
        struct cfg_wasm *w = &cfg->wasm[i];
        free(w->name);
        free(w->module);
        free(w->path);
        free(w->bytes);
        free(w->config);
        free_strv(w->listeners, w->nlisteners);
        free_strv(w->routes, w->nroutes);
        free(w->route_lines);
    }
    free(cfg->wasm);
    free(cfg->admin_address);
    free(cfg->access_log.path);
    free_strv(cfg->files, cfg->nfiles);
    free(cfg);
}

/* Pointer into cfg or NULL; borrows both arguments. */
const struct cfg_cluster *config_cluster(const struct config *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && i < cfg->nclusters; i++)
        if (strcmp(cfg->clusters[i].name, name) == 0)
            return &cfg->clusters[i];
    return NULL;
}

/* Pointer into cfg or NULL; borrows both arguments. */
const struct cfg_listener *config_listener(const struct config *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && i < cfg->nlisteners; i++)
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    return NULL;
}
