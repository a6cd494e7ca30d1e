/* config_parse.c - the two value syntaxes other modules parse too:
 * socket addresses and durations.
 *
 * Addresses are numeric only ("localhost" is the one name, and it means
 * 127.0.0.1): a proxy that resolves names while loading config can hang on
 * DNS, and resolution that changes under a running proxy is a different
 * feature. Durations are one or more number+unit parts in falling unit order
 * ("1h30m", "1.5s"); a bare number is refused because "5" could mean seconds
 * or milliseconds. */
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* Parses "1".."65535" (decimal, no sign) into *port. Borrows s. */
static int parse_port(const char *s, uint16_t *port)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return -1;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned long)(s[i] - '0');
    if (v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* Borrows s; fills ss and len; *why is a static string. */
int cfg_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                   const char **why)
{
    char host[64];
    const char *port_s;
    bool v6 = false;
    uint16_t port;

    if (s == NULL || *s == '\0') {
        *why = "empty address";
        return -1;
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            *why = "expected [IPv6]:port";
            return -1;
        }
        size_t hl = (size_t)(close - s - 1);
        if (hl == 0 || hl >= sizeof(host)) {
            *why = "bad IPv6 address";
            return -1;
        }
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        port_s = close + 2;
        v6 = true;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "missing :port";
            return -1;
        }
        if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
            *why = "IPv6 addresses need brackets, e.g. [::1]:80";
            return -1;
        }
        size_t hl = (size_t)(colon - s);
        if (hl == 0) {
            *why = "missing host (use 0.0.0.0:port for every IPv4 address)";
            return -1;
        }
        if (hl >= sizeof(host)) {
            *why = "bad IPv4 address";
            return -1;
        }
        memcpy(host, s, hl);
        host[hl] = '\0';
        port_s = colon + 1;
    }
    if (parse_port(port_s, &port) != 0) {
        *why = "port must be a number from 1 to 65535";
        return -1;
    }

    memset(ss, 0, sizeof(*ss));
    if (v6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
            *why = "bad IPv6 address";
            return -1;
        }
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof(*a6);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (strcmp(host, "localhost") == 0) {
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
        *why = "host must be a numeric IPv4 address, [IPv6] or localhost (no DNS)";
        return -1;
    }
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof(*a4);
    return 0;
}

/* Borrows s; *ss and *len are written only on success. */
int config_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *why;
    struct sockaddr_storage tmp;
    socklen_t tlen;
    if (cfg_addr_parse(s, &tmp, &tlen, &why) != 0)
        return -1;
    *ss = tmp;
    *len = tlen;
    return 0;
}

/* Borrows a and b. */
bool cfg_addr_conflict(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        if (x->sin_port != y->sin_port)
            return false;
        return x->sin_addr.s_addr == y->sin_addr.s_addr || x->sin_addr.s_addr == INADDR_ANY ||
               y->sin_addr.s_addr == INADDR_ANY;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        if (x->sin6_port != y->sin6_port)
            return false;
        return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 ||
               IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr);
    }
    return false;
}

/* Borrows s; *ms is written only on success. */
int config_parse_duration(const char *s, uint64_t *ms)
{
    /* Units in the order they must appear; `ms` before `m` when matching. */
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    uint64_t total = 0;
    int last = -1;

    if (s == NULL || *s == '\0')
        return -1;
    while (*s) {
        uint64_t whole = 0, frac = 0, den = 1;
        size_t nd = 0;
        for (; *s >= '0' && *s <= '9'; s++, nd++) {
            if (nd == 12) /* 10^12 hours is nonsense; keeps math in range */
                return -1;
            whole = whole * 10 + (uint64_t)(*s - '0');
        }
        if (nd == 0)
            return -1;
        if (*s == '.') {
            s++;
            size_t nf = 0;
            for (; *s >= '0' && *s <= '9'; s++, nf++) {
                if (nf == 9)
                    return -1;
                frac = frac * 10 + (uint64_t)(*s - '0');
                den *= 10;
            }
            if (nf == 0)
                return -1;
        }
        int u;
        if (s[0] == 'm' && s[1] == 's')
            u = 3;
        else if (*s == 'h')
            u = 0;
        else if (*s == 'm')
            u = 1;
        else if (*s == 's')
            u = 2;
        else
            return -1;
        if (u <= last) /* "5s1m" or "1s1s": almost certainly a typo */
            return -1;
        last = u;
        s += strlen(units[u].name);
        /* Fractions must land on a whole millisecond: "1.5ms" is refused. */
        if ((frac * units[u].ms) % den != 0)
            return -1;
        uint64_t part = whole * units[u].ms + frac * units[u].ms / den;
        if (part > UINT64_MAX - total)
            return -1;
        total += part;
    }
    *ms = total;
    return 0;
}
