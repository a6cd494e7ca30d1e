/* wasm_map.c - the header maps filters read and change (wasm_filter.h).
 *
 * A plain array of copied entries: requests carry a few dozen headers at
 * most, filters look up by name, and order must be kept (repeated fields
 * stay in the order they came). Each entry is one allocation holding key
 * and value, both NUL-terminated so local responses can hand them to the
 * head writers as C strings. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/wasm_filter.h"

#define WF_MAP_MAX 1024u /* entries: a filter adding in a loop hits this, not OOM */

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

int wf_map_add(struct wf_map *m, const char *key, size_t klen, const char *value, size_t vlen,
               bool low)
{
    if (m->n == WF_MAP_MAX || klen > UINT32_MAX / 2 || vlen > UINT32_MAX / 2)
        return -1;
    if (m->n == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 16;
        struct wf_kv *e = realloc(m->e, cap * sizeof(*e));
        if (!e)
            return -1;
        m->e = e;
        m->cap = cap;
    }
    char *k = malloc(klen + vlen + 2);
    if (!k)
        return -1;
    for (size_t i = 0; i < klen; i++)
        k[i] = low ? lower(key[i]) : key[i];
    k[klen] = 0;
    char *v = k + klen + 1;
    if (vlen)
        memcpy(v, value, vlen);
    v[vlen] = 0;
    m->e[m->n++] = (struct wf_kv){k, (uint32_t)klen, v, (uint32_t)vlen};
    return 0;
}

/* Borrows m, key. */
const struct wf_kv *wf_map_get(const struct wf_map *m, const char *key, size_t klen)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (m->e[i].key_len == klen && strncasecmp(m->e[i].key, key, klen) == 0)
            return &m->e[i];
    return NULL;
}

uint32_t wf_map_remove(struct wf_map *m, const char *key, size_t klen)
{
    uint32_t out = 0, gone = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->e[i].key_len == klen && strncasecmp(m->e[i].key, key, klen) == 0) {
            free(m->e[i].key);
            gone++;
            continue;
        }
        m->e[out++] = m->e[i];
    }
    m->n = out;
    return gone;
}

void wf_map_clear(struct wf_map *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        free(m->e[i].key);
    m->n = 0;
}
