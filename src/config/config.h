/* config.h - the typed configuration a set of YAML resource files turns into.
 *
 * The loader (config.c, yaml.c) reads Kubernetes-shaped documents
 * (apiVersion/kind/metadata/spec), validates them and fills these plain
 * structs. Nothing here knows about sockets or the event loop: the proxy
 * builds its runtime objects (router, clusters, listeners) from a
 * `struct config` and keeps the config alive as long as any worker uses it.
 *
 * All strings and arrays are owned by the config and freed by config_free().
 * Every object carries the file and line it came from so later stages (route
 * compilation, for example) can report errors as file:line: reason. */
#ifndef STRAND_CONFIG_H
#define STRAND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Listener protocols. TCP and HTTP listeners terminate TLS when spec.tls is
 * set; a TLS passthrough listener (`protocol: tls`) never does: it reads the
 * ClientHello, routes on its SNI/ALPN (tls.sni, tls.alpn) and then proxies
 * the connection like tcp, bytes untouched. */
enum cfg_proto {
    CFG_PROTO_TCP = 0,
    CFG_PROTO_HTTP = 1,
    CFG_PROTO_TLS_PASSTHROUGH = 2,
    CFG_PROTO_POSTGRES = 3, /* PostgreSQL v3: statements routed and checked one by one */
    CFG_PROTO_MYSQL = 4,    /* MySQL/MariaDB client/server protocol, likewise */
};
/* Whether a listener protocol carries SQL (the db.* and sql.* attributes). */
#define CFG_PROTO_IS_DB(p) ((p) == CFG_PROTO_POSTGRES || (p) == CFG_PROTO_MYSQL)

enum cfg_lb { CFG_LB_ROUND_ROBIN = 0, CFG_LB_LEAST_REQUEST = 1, CFG_LB_HASH = 2 };

enum cfg_match_op {
    CFG_MATCH_EXACT = 0,
    CFG_MATCH_PREFIX,
    CFG_MATCH_SUFFIX,
    CFG_MATCH_REGEX,
    CFG_MATCH_PRESENT,
    CFG_MATCH_ABSENT,
    CFG_MATCH_IN,
};

/* Retry triggers, a bit set in cfg_retry.on. */
#define CFG_RETRY_CONNECT_FAILURE 0x1u
#define CFG_RETRY_5XX 0x2u
#define CFG_RETRY_RESET 0x4u
#define CFG_RETRY_GATEWAY_ERROR 0x8u /* 502, 503, 504 only */
#define CFG_RETRY_UNAVAILABLE 0x10u  /* gRPC status UNAVAILABLE (14) */

struct cfg_where {
    const char *file; /* points into config->files[], not separately owned */
    int line;
};

/* One condition of a match: all conditions of a rule must hold. */
struct cfg_cond {
    char *attr;            /* attribute name, e.g. "path", "header.x-user" */
    enum cfg_match_op op;
    char *value;           /* exact/prefix/suffix/regex operand, else NULL */
    char **values;         /* operands of `in` */
    size_t nvalues;
    bool invert;           /* the condition holds when the test fails */
    bool ignore_case;      /* exact/prefix/suffix/in compare ASCII case-insensitively */
    struct cfg_where where;
};

struct cfg_header {
    char *name;  /* lower-cased on load */
    char *value;
};

struct cfg_header_ops {
    struct cfg_header *set;    /* replace or add */
    size_t nset;
    struct cfg_header *add;    /* append, keeping existing */
    size_t nadd;
    char **remove;             /* lower-cased names */
    size_t nremove;
};

struct cfg_backend {
    char *cluster;     /* name of a cfg_cluster; validated on load */
    uint32_t weight;   /* default 1; 0 means never picked */
};

struct cfg_retry {
    uint32_t attempts;           /* extra attempts after the first; 0 = no retry */
    uint32_t on;                 /* CFG_RETRY_* bits */
    uint64_t per_try_timeout_ms; /* 0 = use the rule timeout */
    /* Retry budget: retries in flight may be at most budget_percent of active
     * requests (of the cluster), but min_retry_concurrency are always allowed. */
    uint32_t budget_percent;        /* default 20 */
    uint32_t min_retry_concurrency; /* default 3 */
};

struct cfg_direct {
    int status;  /* 0 = no direct response */
    char *body;  /* may be NULL */
    char *content_type; /* default text/plain */
};

struct cfg_rule {
    char *name;                  /* optional, default "<route>/<index>" */
    struct cfg_cond *conds;
    size_t nconds;
    struct cfg_backend *backends;
    size_t nbackends;
    uint64_t timeout_ms;         /* 0 = listener's request timeout */
    struct cfg_retry retry;
    struct cfg_header_ops request_headers;
    struct cfg_header_ops response_headers;
    char *rewrite_prefix;        /* replace the matched `path` prefix with this */
    struct cfg_direct direct;
    char *hash_attr;             /* overrides cluster hash attribute for this rule, or NULL */
    struct cfg_where where;
};

struct cfg_route {
    char *name;
    char **listeners;            /* listener names it attaches to (spec.parents) */
    size_t nlisteners;
    char **hostnames;            /* optional; sugar for an `authority` condition */
    size_t nhostnames;
    struct cfg_rule *rules;
    size_t nrules;
    struct cfg_where where;
};

struct cfg_endpoint {
    char *address;               /* as written, "host:port" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t weight;             /* default 1 */
};

struct cfg_outlier {
    uint32_t consecutive_5xx;          /* 0 disables; default 5 */
    uint32_t consecutive_failures;     /* connect failures/resets; default 5 */
    uint64_t base_ejection_ms;         /* default 30000; doubles each re-ejection */
    uint32_t max_ejection_percent;     /* default 50 */
};

/* One server certificate of a TLS-terminating listener. The files are only
 * named here: the proxy reads and checks them when it builds the listener. */
struct cfg_tls_cert {
    char *cert_file;                   /* PEM certificate chain, leaf first */
    char *key_file;                    /* PEM private key */
    char **sni;                        /* server names it serves, lower-cased; exact
                                        * or "*.suffix"; unique within the listener */
    size_t nsni;                       /* 0 = the default certificate (at most one) */
    struct cfg_where where;
};

/* spec.tls of a Listener (tcp or http): TLS is terminated, then the
 * listener's protocol runs over it. */
struct cfg_listener_tls {
    bool enabled;                      /* spec.tls present; everything else is unset when not */
    struct cfg_tls_cert *certs;        /* >= 1 (at most 100); the default, served when no
                                        * sni matches, is the first without sni, else
                                        * the first */
    size_t ncerts;
    char **alpn;                       /* protocols offered, in order of preference; http
                                        * listeners: "h2" and/or "http/1.1", default
                                        * ["h2", "http/1.1"]; tcp listeners: any protocol ids,
                                        * default none. Empty = no ALPN */
    size_t nalpn;
    char *client_ca_file;              /* mTLS: verify client certificates against this
                                        * bundle; NULL = do not ask for one */
    bool require_client_cert;          /* default false (a certificate is verified when
                                        * sent); true requires client_ca_file */
    char *min_version;                 /* "1.2" (default) or "1.3" */
};

/* spec.tls of a Cluster: connections to its endpoints use TLS. */
struct cfg_cluster_tls {
    bool enabled;                      /* spec.tls present; everything else is unset when not */
    char *ca_file;                     /* CA bundle to verify the upstream; required when
                                        * verify, refused without it */
    bool verify;                       /* default true */
    char *sni;                         /* server name to send and verify, lower-cased DNS
                                        * name or IP literal; NULL = none (then the
                                        * certificate is verified against the endpoint IP) */
    char **alpn;                       /* protocols offered; default ["http/1.1"], or
                                        * ["h2"] for protocol http2; empty =
                                        * no ALPN */
    size_t nalpn;
    char *cert_file, *key_file;        /* client certificate for mTLS to the upstream: both
                                        * or neither (NULL) */
};

/* spec.replicaCheck of a Cluster with auth: the proxy checks each endpoint
 * of a read-replica cluster itself (login with auth, then `query`) and
 * sends reads elsewhere while one fails, is not replicating or lags more
 * than max_lag_ms (see src/proxy/db_check.h). */
struct cfg_replica_check {
    bool enabled;                      /* spec.replicaCheck present */
    uint64_t interval_ms;              /* between checks of an endpoint; default 1000 */
    uint64_t max_lag_ms;               /* more lag than this is out; default 5000 */
    uint64_t timeout_ms;               /* connect + login + query; default 2000 */
    char *query;                       /* first column of the first row = lag in seconds
                                        * (NULL = not replicating); NULL = the protocol's
                                        * default */
};

/* How HTTP requests travel to a cluster's endpoints (tcp routes ignore it):
 * HTTP/1.1 connections carrying one request at a time, or HTTP/2
 * connections each shared by many requests as streams. Either way the
 * client may speak HTTP/1.1 or HTTP/2: the proxy translates. */
enum cfg_upstream_proto { CFG_UPSTREAM_HTTP1 = 0, CFG_UPSTREAM_HTTP2 = 1 };

struct cfg_cluster {
    char *name;
    struct cfg_endpoint *endpoints;
    size_t nendpoints;
    enum cfg_lb lb;
    char *hash_attr;                   /* for CFG_LB_HASH, e.g. "header.x-user" */
    uint32_t max_connections;          /* default 1024 */
    uint32_t max_pending;              /* requests waiting for a connection; default 1024 */
    uint32_t max_requests;             /* active requests; default 4096 */
    uint64_t connect_timeout_ms;       /* default 2000 */
    uint64_t idle_timeout_ms;          /* pooled upstream connection; default 60000 */
    struct cfg_outlier outlier;
    struct cfg_where where;
    struct cfg_cluster_tls tls;        /* upstream TLS; tls.enabled false = plaintext */
    enum cfg_upstream_proto protocol;  /* spec.protocol: http1 (default) or http2 */
    /* spec.auth: credentials the proxy uses for database connections it
     * opens itself (read replicas of a postgres session), instead of the
     * client's pass-through authentication. NULL when absent. */
    char *auth_user;
    char *auth_password;
    struct cfg_replica_check replica_check; /* only with auth */
};

/* One client the proxy itself authenticates (Listener spec.auth.users). */
struct cfg_db_user {
    char *user;
    char *password;                    /* plaintext, or NULL ... */
    char *scram_secret;                /* ... PostgreSQL's SCRAM-SHA-256 verifier text */
    char *native_hash;                 /* ... MySQL's mysql_native_password hash ("*HEX40") */
    struct cfg_where where;
};

struct cfg_listener {
    char *name;
    char *address;                     /* as written */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum cfg_proto proto;              /* default http */
    uint64_t idle_timeout_ms;          /* default 300000 (tcp and tls passthrough: 3600000) */
    uint64_t request_timeout_ms;       /* default 15000; http only */
    uint64_t header_timeout_ms;        /* time to receive request headers; default 10000 */
    uint32_t max_header_bytes;         /* default 65536 -> 431 when exceeded */
    uint32_t max_headers;              /* default 100 -> 431 when exceeded */
    bool xff;                          /* append x-forwarded-for/forwarded; default true */
    bool via;                          /* add via; default true */
    bool request_id;                   /* add x-request-id when absent; default true */
    struct cfg_where where;
    struct cfg_listener_tls tls;       /* TLS termination (tcp/http only); tls.enabled
                                        * false = plaintext (always for passthrough) */
    /* spec.auth (postgres, mysql): the proxy authenticates clients itself
     * (SCRAM-SHA-256; mysql_native_password) against these users and logs into servers with the
     * routed cluster's auth; none = clients authenticate to the server. */
    struct cfg_db_user *auth_users;
    size_t nauth_users;
};

struct cfg_access_log {
    char *path;                        /* NULL = off; "stdout" or a file path */
};

/* AuthorizationPolicy. For each message on a target listener (an HTTP
 * request; on tcp and tls passthrough listeners the connection), after the
 * listener's TLS handshake and before the route's backend is contacted:
 * if any DENY policy of the listener matches, the message is refused;
 * otherwise, if the listener has at least one ALLOW policy and none
 * matches, it is refused; otherwise it proceeds. docs/config.md says how
 * each protocol refuses. */
enum cfg_authz_action { CFG_AUTHZ_ALLOW = 0, CFG_AUTHZ_DENY = 1 };

/* One entry of spec.rules: matches when all its conditions hold. */
struct cfg_authz_rule {
    struct cfg_cond *conds;            /* all must hold; same condition syntax and checks
                                        * as Route rules, with attributes every target
                                        * listener offers */
    size_t nconds;                     /* >= 1 (at most 100) */
    struct cfg_where where;
};

struct cfg_authz {
    char *name;                        /* unique among AuthorizationPolicies */
    char **listeners;                  /* spec.targets: listener names it applies to (>= 1,
                                        * at most 100, each once; protocols may mix) */
    size_t nlisteners;
    enum cfg_authz_action action;      /* required, no default */
    struct cfg_authz_rule *rules;      /* the policy matches a message when any rule
                                        * matches */
    size_t nrules;                     /* >= 1 (at most 100) */
    struct cfg_where where;
};

/* RateLimit. For each message on a target listener (an HTTP request or
 * gRPC call, a database statement, a tcp connection) that an
 * AuthorizationPolicy let through, every rule whose conditions hold takes
 * one token from its bucket; when a bucket is empty the message is refused
 * in its protocol's words (HTTP 429, gRPC RESOURCE_EXHAUSTED, PostgreSQL
 * SQLSTATE 53400, MySQL ERR 1226, a closed tcp connection). Buckets are
 * shared by every worker. docs/config.md has the details. */
struct cfg_ratelimit_rule {
    struct cfg_cond *conds;            /* all must hold; none = every message */
    size_t nconds;
    char *key;                         /* attribute whose value picks a bucket
                                        * (one per value), or NULL: one bucket */
    uint32_t requests;                 /* tokens per `per` (>= 1) */
    uint64_t per_ms;                   /* default 1000 */
    uint32_t burst;                    /* bucket size; default = requests */
    uint32_t max_keys;                 /* keyed buckets kept; default 10000 */
    struct cfg_where where;
};

struct cfg_ratelimit {
    char *name;                        /* unique among RateLimits */
    char **listeners;                  /* spec.targets (>= 1, at most 100) */
    size_t nlisteners;
    struct cfg_ratelimit_rule *rules;  /* each rule is a separate limit */
    size_t nrules;                     /* >= 1 (at most 100) */
    struct cfg_where where;
};

/* WasmPlugin: a proxy-wasm filter (src/wasm/pw_host.h) on listeners. On an
 * http listener it runs as an HTTP filter on every request (or only on
 * requests matched by one of `routes`), on a tcp listener as a stream
 * filter on every connection. Several plugins on one listener run by
 * `order` (lower first; equal orders in load order). The module file is
 * read, checked (decoded, validated, every import known, a proxy-wasm ABI
 * marker) and hashed at load; the config keeps those exact bytes, so what
 * runs is what was checked, even if the file changes before the proxy
 * builds its generation (a reload reads it again). docs/config.md. */
enum cfg_failure_policy { CFG_FAIL_CLOSED = 0, CFG_FAIL_OPEN = 1 };

struct cfg_wasm {
    char *name;                        /* unique among WasmPlugins */
    char *module;                      /* spec.module as written */
    char *path;                        /* resolved: relative to the config file's directory */
    uint8_t *bytes;                    /* the module as read and checked at load */
    size_t nbytes;
    char sha256[65];                   /* lower-case hex of bytes (computed; matches
                                        * spec.sha256 when given) */
    char *config;                      /* spec.config, the plugin configuration bytes
                                        * (NULL = none, length config_len) */
    size_t config_len;
    char **listeners;                  /* spec.targets: http and/or tcp listeners (>= 1) */
    size_t nlisteners;
    char **routes;                     /* spec.routes: Route names (http targets only);
                                        * none = every request */
    size_t nroutes;
    int *route_lines;                  /* line of each routes entry (checked once every
                                        * Route is loaded) */
    enum cfg_failure_policy failure;   /* default closed: a trap answers 500 (HTTP) or
                                        * closes the connection (tcp); open: it passes */
    uint64_t fuel;                     /* per-callback budget; default 50000000 */
    int32_t order;                     /* default 0; lower runs first */
    struct cfg_where where;
};

struct config {
    uint32_t workers;                  /* 0 on load means "number of cores" */
    char *admin_address;               /* default "127.0.0.1:9901"; NULL if disabled */
    struct sockaddr_storage admin_addr;
    socklen_t admin_addrlen;
    uint64_t drain_timeout_ms;         /* graceful shutdown/reload; default 15000 */
    uint32_t buffer_bytes;             /* per connection per direction; default 32768 */
    struct cfg_access_log access_log;

    struct cfg_listener *listeners;
    size_t nlisteners;
    struct cfg_cluster *clusters;
    size_t nclusters;
    struct cfg_route *routes;
    size_t nroutes;

    char **files;                      /* names of the files loaded */
    size_t nfiles;

    struct cfg_authz *authz;           /* AuthorizationPolicies, in load order (at most
                                        * 10000) */
    size_t nauthz;

    struct cfg_ratelimit *ratelimits;  /* RateLimits, in load order (at most 10000) */
    size_t nratelimits;

    struct cfg_wasm *wasm;             /* WasmPlugins, in load order (at most 1000) */
    size_t nwasm;
};

/* Load and validate every file in paths (each may hold several YAML
 * documents). On success returns 0 and *out owns a new config (caller frees
 * with config_free). On failure returns -1, *out is untouched and err holds
 * "file:line: reason" (NUL-terminated, truncated to errlen). */
int config_load_files(const char *const *paths, size_t npaths, struct config **out,
                      char *err, size_t errlen);

/* Same as config_load_files for one in-memory buffer; `name` is used as the
 * file name in errors. Used by tests and the fuzzer. */
int config_load_buffer(const char *name, const char *data, size_t len, struct config **out,
                       char *err, size_t errlen);

/* Frees everything the config owns. NULL is allowed. */
void config_free(struct config *cfg);

/* The config as JSON (for the admin /config endpoint); caller frees. */
char *config_to_json(const struct config *cfg);

/* Lookups by name; return a pointer into cfg or NULL. */
const struct cfg_cluster *config_cluster(const struct config *cfg, const char *name);
const struct cfg_listener *config_listener(const struct config *cfg, const char *name);

/* Parse "host:port" or "[v6]:port" into a sockaddr (numeric hosts and
 * "localhost" only: a proxy's config must not block on DNS). 0 or -1. */
int config_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* Parse a duration like "250ms", "5s", "2m", "1h" into milliseconds. 0 or -1. */
int config_parse_duration(const char *s, uint64_t *ms);

#endif
