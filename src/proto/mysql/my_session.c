/* my_session.c - one connection followed from both directions.
 *
 * Glue over my_resp: the greeting and the auth exchange are "responses" to
 * pseudo-commands, every client command starts a new my_resp. The one
 * subtle part is sequence ids: a command of more than 16 MiB takes several
 * client packets (0, 1, 2, ...), and the server's answer continues from
 * there, not from 1. */
#include "proto/mysql/my.h"

#include <string.h>

void my_session_init(struct my_session *s)
{
    memset(s, 0, sizeof(*s));
    s->phase = MY_PH_GREETING;
    my_resp_init(&s->resp, MY_CMD_GREETING, 0, 0);
}

int my_session_server(struct my_session *s, const struct my_pkt *pkt, const uint8_t *payload,
                      size_t avail)
{
    int rc;
    switch (s->phase) {
    case MY_PH_GREETING:
        rc = my_resp_feed(&s->resp, pkt, payload, avail);
        if (rc == MY_R_DONE) {
            if (s->resp.kind == MY_RK_HANDSHAKE) {
                s->server_caps = s->resp.hs.caps;
                s->phase = MY_PH_HS_RESPONSE;
            } else {
                s->phase = MY_PH_CLOSED;
            }
        }
        return rc;
    case MY_PH_AUTH:
    case MY_PH_RESPONSE:
        if (s->in_msg) return MY_E_UNEXPECTED;
        rc = my_resp_feed(&s->resp, pkt, payload, avail);
        if (rc == MY_R_DONE) {
            if (s->phase == MY_PH_AUTH) {
                s->authed = !s->resp.error;
                s->phase = s->authed ? MY_PH_COMMAND : MY_PH_CLOSED;
            } else {
                s->phase = MY_PH_COMMAND;
            }
        }
        return rc;
    default:
        return MY_E_UNEXPECTED;
    }
}

int my_session_client(struct my_session *s, const struct my_pkt *pkt, const uint8_t *payload,
                      size_t avail, uint32_t *need)
{
    size_t len = pkt->len;
    if (avail > len) avail = len;
    *need = 0;
    switch (s->phase) {
    case MY_PH_HS_RESPONSE: {
        if (pkt->seq != s->resp.seq) return MY_E_SEQ;
        if (len >= 65536) return MY_E_MALFORMED; /* no sane handshake response is that big */
        if (avail < len) {
            *need = (uint32_t)len;
            return MY_INCOMPLETE;
        }
        int e = my_parse_hs_response(payload, len, s->server_caps, &s->hsr);
        if (e < 0) return e;
        s->client_caps = s->hsr.caps;
        s->caps = s->server_caps & s->client_caps;
        if (s->hsr.ssl_request) {
            if (s->tls || !(s->server_caps & MY_CLIENT_SSL)) return MY_E_UNEXPECTED;
            s->tls = 1;
            s->resp.seq++;
            return MY_R_CLIENT;
        }
        my_resp_init(&s->resp, MY_CMD_AUTH, s->caps, (uint8_t)(pkt->seq + 1));
        s->phase = MY_PH_AUTH;
        return MY_R_MORE;
    }
    case MY_PH_AUTH:
        return my_resp_client(&s->resp, pkt, payload, avail);
    case MY_PH_COMMAND: {
        if (pkt->seq != 0) return MY_E_SEQ;
        if (len == 0) return MY_E_MALFORMED;
        size_t want = len < MY_RESP_PEEK ? len : MY_RESP_PEEK;
        if (avail < want) {
            *need = (uint32_t)want;
            return MY_INCOMPLETE;
        }
        int e = my_parse_command(payload, avail, s->caps, &s->last);
        if (e == MY_E_MALFORMED && avail == len) return e;
        s->last.cmd = payload[0];
        s->cmd = payload[0];
        s->commands++;
        my_resp_init(&s->resp, s->cmd, s->caps, 1);
        s->in_msg = len == MY_MAX_PAYLOAD;
        if (s->cmd == MY_COM_QUIT) {
            s->phase = MY_PH_CLOSED;
            return MY_R_DONE;
        }
        if (my_resp_done(&s->resp) && !s->in_msg) return MY_R_DONE; /* no response */
        s->phase = MY_PH_RESPONSE;
        return MY_R_MORE;
    }
    case MY_PH_RESPONSE:
        if (s->in_msg) {
            /* The rest of a > 16 MiB command: the answer's ids move on. */
            if (pkt->seq != s->resp.seq) return MY_E_SEQ;
            s->resp.seq++;
            s->in_msg = len == MY_MAX_PAYLOAD;
            if (!s->in_msg && my_resp_done(&s->resp)) {
                s->phase = MY_PH_COMMAND;
                return MY_R_DONE;
            }
            return MY_R_MORE;
        }
        return my_resp_client(&s->resp, pkt, payload, avail);
    default:
        return MY_E_UNEXPECTED;
    }
}
