/* test_my_auth.c - terminated MySQL authentication: mysql_native_password
 * on the server's side (the stored hash, its "*HEX40" text, the check of a
 * client's answer), the proxy's greeting pieces (scramble, AuthSwitchRequest),
 * the proxy's own login as a client (my_login_feed) checked with the same
 * server-side function, the listener's user table (my_users) and the
 * configuration of mysql listeners with auth.
 * Prints "N passed, M failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "check_config.h"
#include "config/config.h"
#include "proto/mysql/my.h"
#include "proxy/my_users.h"

/* PASSWORD('secret') as MySQL and MariaDB show it. */
#define SECRET_HASH "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"

static void seq_scramble(uint8_t s[20], uint8_t first)
{
    for (int i = 0; i < 20; i++) s[i] = (uint8_t)(first + i);
}

static void test_hash(void)
{
    uint8_t h[20], p[20];
    CHECK(my_native_hash(h, "secret", 6) == 0);
    CHECK(my_native_hash_parse(p, SECRET_HASH, strlen(SECRET_HASH)) == 0);
    CHECK(memcmp(h, p, 20) == 0, "SHA1(SHA1('secret')) is MySQL's PASSWORD('secret')");
    CHECK(my_native_hash_parse(p, "*14e65567abdb5135d0cfd9a70b3032c179a49ee7", 41) == 0 &&
              memcmp(h, p, 20) == 0,
          "lower-case hex");
    CHECK(my_native_hash_parse(p, SECRET_HASH + 1, 40) == MY_E_MALFORMED, "no '*'");
    CHECK(my_native_hash_parse(p, SECRET_HASH, 40) == MY_E_MALFORMED, "too short");
    CHECK(my_native_hash_parse(p, "*14E65567ABDB5135D0CFD9A70B3032C179A49EG7", 41) ==
              MY_E_MALFORMED,
          "not hex");
    CHECK(my_native_hash_parse(p, "", 0) == MY_E_MALFORMED);
}

static void test_verify(void)
{
    uint8_t scr[20], other[20], stored[20], ans[20];
    seq_scramble(scr, 1);
    seq_scramble(other, 2);
    my_native_hash(stored, "secret", 6);
    CHECK(my_scramble_native(ans, scr, "secret", 6) == 20);
    CHECK(my_native_verify(scr, stored, ans, 20) == 1, "the right password");
    CHECK(my_native_verify(other, stored, ans, 20) == 0, "an answer to another scramble");
    uint8_t bad[21];
    memcpy(bad, ans, 20);
    bad[20] = 0;
    CHECK(my_native_verify(scr, stored, bad, 19) == 0 && my_native_verify(scr, stored, bad, 21) == 0 &&
              my_native_verify(scr, stored, bad, 0) == 0,
          "answers of the wrong length");
    for (int i = 0; i < 20; i++) {
        memcpy(bad, ans, 20);
        bad[i] ^= 0x40;
        CHECK(my_native_verify(scr, stored, bad, 20) == 0, "byte %d changed", i);
    }
    CHECK(my_scramble_native(ans, scr, "Secret", 6) == 20 &&
              my_native_verify(scr, stored, ans, 20) == 0,
          "a wrong password");
    /* The zero response a zero-filled buffer would give must not pass. */
    uint8_t zero[20] = {0};
    CHECK(my_native_verify(scr, stored, zero, 20) == 0);
}

static void test_greeting_pieces(void)
{
    uint8_t a[20], b[20];
    CHECK(my_scramble_random(a, 20) == 0 && my_scramble_random(b, 20) == 0);
    int printable = 1;
    for (int i = 0; i < 20; i++) printable &= a[i] >= '!' && a[i] <= '~' && b[i] >= '!' && b[i] <= '~';
    CHECK(printable, "scramble bytes are printable (no NUL)");
    CHECK(memcmp(a, b, 20) != 0, "two scrambles differ");

    uint8_t out[64];
    int n = my_build_auth_switch(out, sizeof(out), 2, "mysql_native_password", a, 20);
    CHECK(n == 4 + 1 + 22 + 20 + 1, "%d", n);
    struct my_auth_pkt ap;
    CHECK(out[3] == 2 && my_parse_auth_packet(out + 4, (size_t)n - 4, &ap) == 0 &&
              ap.kind == MY_AUTH_SWITCH && ap.plugin.len == 21 && ap.data.len == 20 &&
              memcmp(ap.data.p, a, 20) == 0,
          "AuthSwitchRequest round trip");
    CHECK(my_build_auth_switch(out, 40, 2, "mysql_native_password", a, 20) == MY_E_SPACE);

    /* The proxy's greeting parses back as it was built. */
    struct my_handshake hs, back;
    memset(&hs, 0, sizeof(hs));
    hs.protocol_version = 10;
    hs.server_version = (my_str){"5.5.5-10.11.0-Strand", 20};
    hs.connection_id = 0xf0000007u;
    memcpy(hs.scramble, a, 20);
    hs.scramble_len = 20;
    hs.caps = MY_CLIENT_LONG_PASSWORD | MY_CLIENT_PROTOCOL_41 | MY_CLIENT_DEPRECATE_EOF;
    hs.charset = 45;
    hs.auth_plugin = (my_str){"mysql_native_password", 21};
    uint8_t g[160];
    n = my_build_handshake(g, sizeof(g), &hs);
    CHECK(n > 0 && my_parse_handshake(g + 4, (size_t)n - 4, &back) == 0 &&
              back.connection_id == 0xf0000007u && back.scramble_len == 20 &&
              memcmp(back.scramble, a, 20) == 0 &&
              (back.caps & MY_CLIENT_DEPRECATE_EOF) && (back.caps & MY_CLIENT_PLUGIN_AUTH) &&
              (back.caps & MY_CLIENT_MYSQL) && back.charset == 45,
          "greeting round trip");
}

/* A server greeting with scramble scr and caps. Returns its length. */
static int server_greeting(uint8_t *out, size_t cap, const uint8_t scr[20], uint64_t caps)
{
    struct my_handshake hs;
    memset(&hs, 0, sizeof(hs));
    hs.protocol_version = 10;
    hs.server_version = (my_str){"5.5.5-10.11.19-MariaDB", 22};
    hs.connection_id = 42;
    memcpy(hs.scramble, scr, 20);
    hs.scramble_len = 20;
    hs.caps = caps;
    hs.charset = 8;
    hs.status = MY_SERVER_STATUS_AUTOCOMMIT;
    hs.auth_plugin = (my_str){"mysql_native_password", 21};
    return my_build_handshake(out, cap, &hs);
}

static void test_login(void)
{
    uint8_t scr[20], scr2[20], stored[20], g[160], out[512];
    size_t n = 0;
    struct my_pkt pkt;
    seq_scramble(scr, 33);
    seq_scramble(scr2, 60);
    my_native_hash(stored, "pw", 2);
    uint64_t server = MY_CLIENT_PROTOCOL_41 | MY_CLIENT_SECURE_CONNECTION | MY_CLIENT_PLUGIN_AUTH |
                      MY_CLIENT_CONNECT_WITH_DB | MY_CLIENT_TRANSACTIONS | MY_CLIENT_DEPRECATE_EOF;
    struct my_login lg;
    my_login_init(&lg, "app", "pw", "shop", MY_CLIENT_DEPRECATE_EOF | MY_CLIENT_MULTI_RESULTS, 45);
    int gl = server_greeting(g, sizeof(g), scr, server);
    my_pkt_header(g, (size_t)gl, &pkt);
    CHECK(my_login_feed(&lg, &pkt, g + 4, pkt.len, out, sizeof(out), &n) == MY_R_MORE && n > 4);
    CHECK(lg.connection_id == 42 &&
              lg.caps == (MY_CLIENT_PROTOCOL_41 | MY_CLIENT_SECURE_CONNECTION |
                          MY_CLIENT_PLUGIN_AUTH | MY_CLIENT_CONNECT_WITH_DB |
                          MY_CLIENT_DEPRECATE_EOF),
          "negotiated: what was asked and offered");
    struct my_hs_response hr;
    CHECK(out[3] == 1 && my_parse_hs_response(out + 4, n - 4, server, &hr) == 0);
    CHECK(hr.user.len == 3 && memcmp(hr.user.p, "app", 3) == 0 && hr.database.len == 4 &&
              hr.charset == 45 && hr.auth_plugin.len == 21,
          "user, database, character set, plugin");
    CHECK(my_native_verify(scr, stored, (const uint8_t *)hr.auth_response.p,
                           hr.auth_response.len) == 1,
          "the login's answer passes the server-side check");

    /* The server switches to mysql_native_password with a new scramble. */
    uint8_t sw[64];
    int sl = my_build_auth_switch(sw, sizeof(sw), 2, "mysql_native_password", scr2, 20);
    my_pkt_header(sw, (size_t)sl, &pkt);
    CHECK(my_login_feed(&lg, &pkt, sw + 4, pkt.len, out, sizeof(out), &n) == MY_R_MORE &&
              n == 24 && out[3] == 3 && my_native_verify(scr2, stored, out + 4, 20) == 1,
          "the switch is answered with the new scramble");
    uint8_t ok[64];
    int ol = my_build_ok(ok, sizeof(ok), 4, lg.caps, 0, 0, MY_SERVER_STATUS_AUTOCOMMIT, 0, NULL, 0);
    my_pkt_header(ok, (size_t)ol, &pkt);
    CHECK(my_login_feed(&lg, &pkt, ok + 4, pkt.len, out, sizeof(out), &n) == MY_R_DONE && n == 0 &&
              lg.status == MY_SERVER_STATUS_AUTOCOMMIT,
          "OK: logged in");
    CHECK(my_login_feed(&lg, &pkt, ok + 4, pkt.len, out, sizeof(out), &n) == MY_E_UNEXPECTED,
          "nothing after the end");

    /* Refusals. */
    uint8_t e[128];
    int el = my_build_err(e, sizeof(e), 2, MY_CLIENT_PROTOCOL_41, 1045, "28000", "denied", 6);
    my_pkt_header(e, (size_t)el, &pkt);
    my_login_init(&lg, "app", NULL, NULL, 0, 0);
    CHECK(my_login_feed(&lg, &pkt, e + 4, pkt.len, out, sizeof(out), &n) == MY_E_DENIED,
          "an ERR greeting");
    my_pkt_header(g, (size_t)gl, &pkt);
    CHECK(my_login_feed(&lg, &pkt, g + 4, pkt.len, out, sizeof(out), &n) == MY_R_MORE &&
              !(lg.caps & MY_CLIENT_CONNECT_WITH_DB),
          "no database: no CONNECT_WITH_DB, a NULL password answers empty");
    CHECK(my_parse_hs_response(out + 4, n - 4, server, &hr) == 0 && hr.auth_response.len == 0);
    my_pkt_header(e, (size_t)el, &pkt);
    CHECK(my_login_feed(&lg, &pkt, e + 4, pkt.len, out, sizeof(out), &n) == MY_E_DENIED,
          "an ERR to the login");
    static const uint8_t more[] = {0x01, 0x04};
    pkt.len = 2;
    CHECK(my_login_feed(&lg, &pkt, more, 2, out, sizeof(out), &n) == MY_E_UNSUPPORTED,
          "caching_sha2 full authentication");
    sl = my_build_auth_switch(sw, sizeof(sw), 2, "caching_sha2_password", scr2, 20);
    my_pkt_header(sw, (size_t)sl, &pkt);
    CHECK(my_login_feed(&lg, &pkt, sw + 4, pkt.len, out, sizeof(out), &n) == MY_E_UNSUPPORTED,
          "a switch to another plugin");
    my_login_init(&lg, "app", NULL, NULL, 0, 0);
    my_pkt_header(g, (size_t)gl, &pkt);
    CHECK(my_login_feed(&lg, &pkt, g + 4, pkt.len, out, 40, &n) == MY_E_SPACE, "no room");
}

#define API "apiVersion: strand.dev/v1alpha1\n"
#define MY_L API "kind: Listener\nmetadata: {name: my}\nspec:\n  address: 127.0.0.1:13306\n" \
             "  protocol: mysql\n"
#define CLUSTER(auth) "---\n" API "kind: Cluster\nmetadata: {name: c}\n" \
                      "spec: {endpoints: [{address: 127.0.0.1:3306}]" auth "}\n"
#define ROUTE "---\n" API "kind: Route\nmetadata: {name: r}\nspec:\n  parents: [my]\n" \
              "  rules:\n  - backends: [{cluster: c}]\n"

static struct config *load(const char *yaml, char *err, size_t errlen)
{
    return load_yaml(yaml, strlen(yaml), err, errlen);
}

static void expect_err(const char *yaml, const char *where, const char *what)
{
    char err[512];
    struct config *cfg = load(yaml, err, sizeof(err));
    CHECK(!cfg && strncmp(err, where, strlen(where)) == 0 && strstr(err, what), "got '%s'",
          cfg ? "loaded" : err);
    config_free(cfg);
}

static void test_users(void)
{
    char err[512];
    struct config *cfg = load(MY_L "  auth:\n    users:\n    - {user: app, password: secret}\n"
                                   "    - {user: ops, nativePasswordHash: \"" SECRET_HASH "\"}\n"
                                   CLUSTER(", auth: {user: s, password: p}") ROUTE,
                              err, sizeof(err));
    CHECK(cfg != NULL, "a mysql listener with auth loads: %s", err);
    if (!cfg)
        return;
    const struct cfg_listener *l = config_listener(cfg, "my");
    struct my_users *u = my_users_build(l, err, sizeof(err));
    CHECK(u != NULL, "my_users_build: %s", err);
    uint8_t scr[20], ans[20];
    seq_scramble(scr, 40);
    my_scramble_native(ans, scr, "secret", 6);
    CHECK(my_users_check(u, "app", scr, ans, 20) == 1, "a password user");
    CHECK(my_users_check(u, "ops", scr, ans, 20) == 1, "a pasted hash user");
    CHECK(my_users_check(u, "nobody", scr, ans, 20) == 0, "an unknown user");
    CHECK(my_users_check(u, "app", scr, ans, 19) == 0, "a short answer");
    my_scramble_native(ans, scr, "wrong", 5);
    CHECK(my_users_check(u, "app", scr, ans, 20) == 0, "a wrong password");
    my_users_free(u);
    char *json = config_to_json(cfg);
    CHECK(json && strstr(json, "\"credential\":\"nativePasswordHash\"") && !strstr(json, "14E655") &&
              !strstr(json, "secret"),
          "admin view: users without secrets");
    free(json);
    config_free(cfg);

    expect_err(MY_L "  auth: {users: [{user: a, scramSecret: x}]}\n", "t.yaml:7: ",
               "scramSecret is for postgres listeners");
    expect_err(MY_L "  auth: {users: [{user: a, nativePasswordHash: \"*00\"}]}\n", "t.yaml:7: ",
               "nativePasswordHash: expected '*' and 40 hex digits");
    expect_err(MY_L "  auth: {users: [{user: a, password: \"\"}]}\n", "t.yaml:7: ",
               "empty password");
    expect_err(MY_L "  auth: {users: [{user: a}]}\n", "t.yaml:7: ",
               "give exactly one of password or nativePasswordHash");
    expect_err(API "kind: Listener\nmetadata: {name: pg}\nspec:\n  address: 127.0.0.1:15432\n"
                   "  protocol: postgres\n  auth: {users: [{user: a, nativePasswordHash: x}]}\n",
               "t.yaml:7: ", "nativePasswordHash is for mysql listeners");
    expect_err(MY_L "  auth: {users: [{user: a, password: b}]}\n" CLUSTER("") ROUTE,
               "t.yaml:20: ", "cluster 'c' has no auth, but listener 'my' authenticates");
}

int main(void)
{
    test_hash();
    test_verify();
    test_greeting_pieces();
    test_login();
    test_users();
    return check_report();
}
