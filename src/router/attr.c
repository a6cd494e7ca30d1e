/* attr.c - attribute name interning and the inline attr_set source. */
#include "router/attr.h"

#include <string.h>

/* Well-known names; index = enum attr_id. Families end with a dot. */
static const struct {
    const char *name;
    size_t len;
} known[ATTR_ID_COUNT] = {
#define K(s) {s, sizeof(s) - 1}
    [ATTR_UNKNOWN] = K("?"),
    [ATTR_METHOD] = K("method"),
    [ATTR_PATH] = K("path"),
    [ATTR_AUTHORITY] = K("authority"),
    [ATTR_SCHEME] = K("scheme"),
    [ATTR_PROTOCOL] = K("protocol"),
    [ATTR_SOURCE_ADDRESS] = K("source.address"),
    [ATTR_DESTINATION_PORT] = K("destination.port"),
    [ATTR_HEADER] = K("header."),
    [ATTR_QUERY] = K("query."),
    [ATTR_SQL_VERB] = K("sql.verb"),
    [ATTR_SQL_TABLES] = K("sql.tables"),
    [ATTR_KAFKA_TOPIC] = K("kafka.topic"),
#undef K
};

static int is_family(int id) { return id == ATTR_HEADER || id == ATTR_QUERY; }

int attr_key_init(struct attr_key *key, const char *name, size_t len)
{
    memset(key, 0, sizeof(*key));
    if (len == 0)
        return -1;
    key->name = name;
    key->len = len;
    /* A linear scan over a dozen names: this runs when tables are built,
     * never per message. */
    for (int id = 1; id < ATTR_ID_COUNT; id++) {
        size_t kl = known[id].len;
        if (is_family(id)) {
            if (len >= kl && memcmp(name, known[id].name, kl) == 0) {
                if (len == kl)
                    return -1;
                key->id = id;
                key->sub = name + kl;
                key->sublen = len - kl;
                return 0;
            }
        } else if (len == kl && memcmp(name, known[id].name, kl) == 0) {
            key->id = id;
            return 0;
        }
    }
    key->id = ATTR_UNKNOWN;
    return 0;
}

void attr_name_normalize(char *name, size_t len)
{
    size_t kl = known[ATTR_HEADER].len;
    if (len <= kl || memcmp(name, known[ATTR_HEADER].name, kl) != 0)
        return;
    for (size_t i = kl; i < len; i++)
        if (name[i] >= 'A' && name[i] <= 'Z')
            name[i] = (char)(name[i] + 32);
}

const char *attr_id_name(int id)
{
    if (id == ATTR_HEADER)
        return "header";
    if (id == ATTR_QUERY)
        return "query";
    if (id <= ATTR_UNKNOWN || id >= ATTR_ID_COUNT)
        return "?";
    return known[id].name;
}

void attr_set_init(struct attr_set *s)
{
    s->n = 0;
    s->used = 0;
}

int attr_set_addn(struct attr_set *s, const char *name, size_t nlen, const char *value,
                  size_t vlen)
{
    struct attr_key k;
    if (s->n >= ATTR_SET_MAX || attr_key_init(&k, name, nlen) < 0)
        return -1;
    /* Reuse the stored name of an earlier pair with the same name: list
     * attributes then cost only their values. */
    int same = -1;
    size_t need = vlen;
    char tmp[256];
    if (nlen > sizeof(tmp))
        return -1;
    memcpy(tmp, name, nlen);
    attr_name_normalize(tmp, nlen);
    for (int i = 0; i < s->n; i++)
        if (s->e[i].nlen == nlen && memcmp(s->buf + s->e[i].noff, tmp, nlen) == 0) {
            same = i;
            break;
        }
    if (same < 0)
        need += nlen;
    if (need > (size_t)ATTR_SET_BYTES - s->used)
        return -1;
    uint16_t noff;
    if (same >= 0) {
        noff = s->e[same].noff;
    } else {
        noff = s->used;
        memcpy(s->buf + s->used, tmp, nlen);
        s->used = (uint16_t)(s->used + nlen);
    }
    if (vlen)
        memcpy(s->buf + s->used, value, vlen);
    s->e[s->n].id = (uint16_t)k.id;
    s->e[s->n].noff = noff;
    s->e[s->n].nlen = (uint16_t)nlen;
    s->e[s->n].voff = s->used;
    s->e[s->n].vlen = (uint16_t)vlen;
    s->used = (uint16_t)(s->used + vlen);
    s->n++;
    return 0;
}

int attr_set_add(struct attr_set *s, const char *name, const char *value)
{
    return attr_set_addn(s, name, strlen(name), value, strlen(value));
}

/* The getter: ids first (cheap reject), then the full normalized name. */
static int attr_set_get(void *ctx, const struct attr_key *key, attr_val *out, int max)
{
    const struct attr_set *s = ctx;
    int n = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->e[i].id != key->id || s->e[i].nlen != key->len ||
            memcmp(s->buf + s->e[i].noff, key->name, key->len) != 0)
            continue;
        if (n < max) {
            out[n].p = s->buf + s->e[i].voff;
            out[n].len = s->e[i].vlen;
        }
        n++;
    }
    return n;
}

struct attr_src attr_set_src(const struct attr_set *s)
{
    struct attr_src src = {attr_set_get, (void *)s};
    return src;
}
