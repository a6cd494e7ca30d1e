/* pw_shared.c - proxy-wasm shared data: one process-wide key/value store
 * that every VM of every plugin and worker sees (proxy_get_shared_data /
 * proxy_set_shared_data), guarded by one mutex.
 *
 * Each key carries a compare-and-swap token: a set with a non-zero cas
 * succeeds only when it equals the key's current token (a key not yet set
 * accepts any), and every successful set gives the key a fresh token from
 * a process-wide counter that skips 0. Bounded: at most PW_SHARED_MAX_KEYS
 * keys and PW_SHARED_MAX_BYTES of keys and values together; beyond, a set
 * of a new key (or a larger value) fails with INTERNAL_FAILURE. */
#include "wasm/pw_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PW_SHARED_MAX_KEYS 100000u
#define PW_SHARED_MAX_BYTES (64u * 1024 * 1024)
#define NBUCKETS 1024u

struct entry {
    struct entry *next;
    char *key;
    size_t key_len;
    uint8_t *value;
    size_t len;
    uint32_t cas;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *buckets[NBUCKETS];
static size_t nkeys, nbytes;
static uint32_t last_cas;

static uint32_t hash(const char *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)k[i]) * 16777619u;
    return h;
}

/* Under lock. */
static struct entry *find(const char *key, size_t len)
{
    for (struct entry *e = buckets[hash(key, len) % NBUCKETS]; e; e = e->next)
        if (e->key_len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

/* Under lock: the next cas token, never 0. */
static uint32_t next_cas(void)
{
    if (++last_cas == 0)
        last_cas = 1;
    return last_cas;
}

/* Borrows key; *value is the caller's. */
int pw_shared_get(const char *key, size_t key_len, uint8_t **value, size_t *len, uint32_t *cas)
{
    *value = NULL;
    *len = 0;
    *cas = 0;
    int st = PW_OK;
    pthread_mutex_lock(&lock);
    struct entry *e = find(key, key_len);
    if (e == NULL) {
        st = PW_NOT_FOUND;
    } else {
        if (e->len > 0) {
            if ((*value = malloc(e->len)) == NULL)
                st = PW_INTERNAL_FAILURE;
            else
                memcpy(*value, e->value, e->len);
        }
        if (st == PW_OK) {
            *len = e->len;
            *cas = e->cas;
        }
    }
    pthread_mutex_unlock(&lock);
    return st;
}

/* Borrows key and value. */
int pw_shared_set(const char *key, size_t key_len, const uint8_t *value, size_t len, uint32_t cas)
{
    int st = PW_OK;
    uint8_t *copy = NULL;
    if (len > 0 && (copy = malloc(len)) == NULL)
        return PW_INTERNAL_FAILURE;
    if (len > 0)
        memcpy(copy, value, len);
    pthread_mutex_lock(&lock);
    struct entry *e = find(key, key_len);
    if (e != NULL) {
        if (cas != 0 && cas != e->cas) {
            st = PW_CAS_MISMATCH;
        } else if (len > e->len && nbytes + (len - e->len) > PW_SHARED_MAX_BYTES) {
            st = PW_INTERNAL_FAILURE;
        } else {
            nbytes = nbytes - e->len + len;
            free(e->value);
            e->value = copy;
            e->len = len;
            e->cas = next_cas();
            copy = NULL;
        }
    } else if (nkeys >= PW_SHARED_MAX_KEYS || nbytes + key_len + len > PW_SHARED_MAX_BYTES ||
               (e = calloc(1, sizeof(*e))) == NULL || (e->key = malloc(key_len + 1)) == NULL) {
        free(e);
        st = PW_INTERNAL_FAILURE;
    } else {
        memcpy(e->key, key, key_len);
        e->key[key_len] = 0;
        e->key_len = key_len;
        e->value = copy;
        e->len = len;
        e->cas = next_cas();
        copy = NULL;
        struct entry **b = &buckets[hash(key, key_len) % NBUCKETS];
        e->next = *b;
        *b = e;
        nkeys++;
        nbytes += key_len + len;
    }
    pthread_mutex_unlock(&lock);
    free(copy);
    return st;
}

/* Frees every key (pw_host_cleanup, at process exit). */
void pw_shared_cleanup(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < NBUCKETS; i++)
        while (buckets[i] != NULL) {
            struct entry *e = buckets[i];
            buckets[i] = e->next;
            free(e->key);
            free(e->value);
            free(e);
        }
    nkeys = nbytes = 0;
    pthread_mutex_unlock(&lock);
}
