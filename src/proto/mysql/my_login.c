/* my_login.c - the proxy's own login to a MySQL/MariaDB server, as a
 * client: the greeting is answered with a HandshakeResponse41 carrying a
 * mysql_native_password scramble of the configured password, an
 * AuthSwitchRequest to mysql_native_password with a fresh scramble, then
 * the server's OK or ERR. Pure: the caller moves the bytes (read replica
 * connections, terminated sessions' server connections, replica checks). */
#include "proto/mysql/my.h"

#include <string.h>

#define NATIVE "mysql_native_password"
#define NATIVE_LEN 21

enum { LG_GREETING, LG_AUTH, LG_DONE };

/* The HandshakeResponse41 for greeting p[0..len). */
static int answer_greeting(struct my_login *lg, const struct my_pkt *pkt, const uint8_t *p,
                           size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    struct my_handshake hs;
    int e = my_parse_handshake(p, len, &hs);
    if (e < 0) return e;
    if (hs.scramble_len != 20) return MY_E_UNSUPPORTED;
    const char *db = lg->database ? lg->database : "";
    const char *pw = lg->password ? lg->password : "";
    uint64_t want = lg->want | MY_CLIENT_PROTOCOL_41 | MY_CLIENT_SECURE_CONNECTION |
                    MY_CLIENT_PLUGIN_AUTH;
    if (db[0]) want |= MY_CLIENT_CONNECT_WITH_DB;
    lg->server_caps = hs.caps;
    lg->caps = want & hs.caps;
    lg->connection_id = hs.connection_id;
    uint8_t scr[20];
    int sn = my_scramble_native(scr, hs.scramble, pw, strlen(pw));
    if (sn < 0) return MY_E_SPACE;
    struct my_hs_response hr;
    memset(&hr, 0, sizeof(hr));
    hr.caps = want;
    hr.max_packet = 1u << 24;
    hr.charset = lg->charset ? lg->charset : hs.charset;
    hr.user = (my_str){lg->user, strlen(lg->user)};
    hr.auth_response = (my_str){(const char *)scr, (size_t)sn};
    hr.database = (my_str){db, strlen(db)};
    hr.auth_plugin = (my_str){NATIVE, NATIVE_LEN};
    int n = my_build_hs_response(out, cap, (uint8_t)(pkt->seq + 1), &hr);
    if (n < 0) return n;
    *outlen = (size_t)n;
    lg->state = LG_AUTH;
    return MY_R_MORE;
}

/* The answer to an AuthSwitchRequest to mysql_native_password. */
static int answer_switch(struct my_login *lg, const struct my_pkt *pkt, const uint8_t *p,
                         size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    struct my_auth_pkt ap;
    if (my_parse_auth_packet(p, len, &ap) != 0) return MY_E_MALFORMED;
    if (ap.kind != MY_AUTH_SWITCH || ap.plugin.len != NATIVE_LEN ||
        memcmp(ap.plugin.p, NATIVE, NATIVE_LEN) != 0 || ap.data.len < 20)
        return MY_E_UNSUPPORTED;
    const char *pw = lg->password ? lg->password : "";
    uint8_t scr[20];
    int sn = my_scramble_native(scr, (const uint8_t *)ap.data.p, pw, strlen(pw));
    if (sn < 0) return MY_E_SPACE;
    if (cap < MY_HDR_LEN + (size_t)sn) return MY_E_SPACE;
    my_pkt_put_header(out, (uint32_t)sn, (uint8_t)(pkt->seq + 1));
    memcpy(out + MY_HDR_LEN, scr, (size_t)sn);
    *outlen = MY_HDR_LEN + (size_t)sn;
    return MY_R_MORE;
}

/* Borrows the strings: they must outlive the login. */
void my_login_init(struct my_login *lg, const char *user, const char *password,
                   const char *database, uint64_t want, uint8_t charset)
{
    memset(lg, 0, sizeof(*lg));
    lg->user = user;
    lg->password = password;
    lg->database = database;
    lg->want = want;
    lg->charset = charset;
}

/* Borrows pkt and p; writes into the caller's out. */
int my_login_feed(struct my_login *lg, const struct my_pkt *pkt, const uint8_t *p, size_t len,
                  uint8_t *out, size_t cap, size_t *outlen)
{
    *outlen = 0;
    if (lg->state == LG_DONE) return MY_E_UNEXPECTED;
    if (len == 0) return MY_E_MALFORMED;
    if (p[0] == 0xff) return MY_E_DENIED;
    if (lg->state == LG_GREETING)
        return answer_greeting(lg, pkt, p, len, out, cap, outlen);
    if (p[0] == 0x00) {
        struct my_ok ok;
        if (my_parse_ok(p, len, len, lg->caps, &ok) != 0) return MY_E_MALFORMED;
        lg->status = ok.status;
        lg->state = LG_DONE;
        return MY_R_DONE;
    }
    if (p[0] == 0xfe) return answer_switch(lg, pkt, p, len, out, cap, outlen);
    return MY_E_UNSUPPORTED; /* AuthMoreData: caching_sha2 and other plugins */
}
