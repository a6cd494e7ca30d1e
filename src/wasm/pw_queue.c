/* pw_queue.c - proxy-wasm shared queues: process-wide FIFO queues that any
 * VM of any plugin and worker may write to and read from
 * (proxy_register/resolve/enqueue/dequeue_shared_queue), guarded by one
 * mutex, as shared data is (pw_shared.c).
 *
 * A queue is named by (vm_id, name). Registering it (again) gives the same
 * id and makes the registering VM the one told of new items: enqueue calls
 * that VM's pw_ops.queue_ready from the enqueuing thread, under the lock,
 * and the embedder hands the event to the VM's own thread, which calls
 * pw_vm_queue_ready (proxy_on_queue_ready). Queues and their items outlive
 * the VMs (a reload's new VMs register the same names and find the items
 * still there, as Envoy keeps them per vm_id); a freed or recreated VM only
 * stops being notified. Everything is freed by pw_host_cleanup at exit.
 *
 * Ids are the table index + 1, so 0 is never an id and a lookup by id is
 * O(1). Bounded: PW_QUEUE_MAX queues; per queue PW_QUEUE_MAX_ITEMS items,
 * and PW_QUEUE_MAX_BYTES of items over all queues; an enqueue beyond is
 * refused (INTERNAL_FAILURE, and pw_ops.queue_full counts it). */
#include "wasm/pw_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PW_QUEUE_MAX 1024u
#define PW_QUEUE_MAX_ITEMS 10000u
#define PW_QUEUE_MAX_BYTES (64u * 1024 * 1024)

struct item {
    struct item *next;
    size_t len;
    uint8_t data[];
};

struct queue {
    char *vm_id, *name;      /* NUL-terminated copies */
    size_t vm_id_len, name_len;
    struct item *head, *tail;
    uint32_t nitems;
    struct pw_vm *owner;     /* notified of new items; NULL: nobody */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct queue *queues[PW_QUEUE_MAX];
static uint32_t nqueues;
static size_t nbytes;        /* item bytes over all queues */

/* The vm_id of vm as the filter sees it (plugin_vm_id): empty for every
 * VM today, so all plugins share one namespace of queue names. Borrows vm. */
static const char *vm_id_of(const struct pw_vm *vm, size_t *len)
{
    (void)vm;
    *len = 0;
    return "";
}

/* Under lock: the queue of id, or NULL. */
static struct queue *by_id(uint32_t id)
{
    return id >= 1 && id <= nqueues ? queues[id - 1] : NULL;
}

/* Under lock: the id of queue (vm_id, name), or 0. A linear walk: the
 * table is small and names are looked up once per VM, not per request. */
static uint32_t find(const char *vm_id, size_t vl, const char *name, size_t nl)
{
    for (uint32_t i = 0; i < nqueues; i++) {
        const struct queue *q = queues[i];
        if (q->vm_id_len == vl && q->name_len == nl && memcmp(q->vm_id, vm_id, vl) == 0 &&
            memcmp(q->name, name, nl) == 0)
            return i + 1;
    }
    return 0;
}

/* A NUL-terminated copy of s (n bytes), or NULL. Returns the caller's. */
static char *dup_bytes(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c != NULL) {
        memcpy(c, s, n);
        c[n] = 0;
    }
    return c;
}

/* Under lock: the id of a new empty queue, or 0 (table full, out of
 * memory). */
static uint32_t create(const char *vm_id, size_t vl, const char *name, size_t nl)
{
    if (nqueues >= PW_QUEUE_MAX)
        return 0;
    struct queue *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return 0;
    q->vm_id = dup_bytes(vm_id, vl);
    q->name = dup_bytes(name, nl);
    if (q->vm_id == NULL || q->name == NULL) {
        free(q->vm_id);
        free(q->name);
        free(q);
        return 0;
    }
    q->vm_id_len = vl;
    q->name_len = nl;
    queues[nqueues++] = q;
    return nqueues;
}

/* Borrows vm and name. */
int pw_queue_register(struct pw_vm *vm, const char *name, size_t len, uint32_t *id)
{
    size_t vl;
    const char *vm_id = vm_id_of(vm, &vl);
    int st = PW_OK;
    pthread_mutex_lock(&lock);
    uint32_t qid = find(vm_id, vl, name, len);
    if (qid == 0)
        qid = create(vm_id, vl, name, len);
    if (qid == 0) {
        st = PW_INTERNAL_FAILURE;
    } else {
        by_id(qid)->owner = vm;
        vm->queue_owner = true;
        *id = qid;
    }
    pthread_mutex_unlock(&lock);
    return st;
}

/* Borrows vm_id and name. */
int pw_queue_resolve(const char *vm_id, size_t vl, const char *name, size_t nl, uint32_t *id)
{
    pthread_mutex_lock(&lock);
    uint32_t qid = find(vm_id, vl, name, nl);
    pthread_mutex_unlock(&lock);
    if (qid == 0)
        return PW_NOT_FOUND;
    *id = qid;
    return PW_OK;
}

/* Borrows data; the queue keeps a copy. */
int pw_queue_enqueue(uint32_t id, const uint8_t *data, size_t len)
{
    struct item *it = malloc(sizeof(*it) + len);
    if (it == NULL)
        return PW_INTERNAL_FAILURE;
    it->next = NULL;
    it->len = len;
    if (len > 0)
        memcpy(it->data, data, len);
    int st = PW_OK;
    pthread_mutex_lock(&lock);
    struct queue *q = by_id(id);
    if (q == NULL) {
        st = PW_NOT_FOUND;
    } else if (q->nitems >= PW_QUEUE_MAX_ITEMS || len > PW_QUEUE_MAX_BYTES - nbytes) {
        st = PW_INTERNAL_FAILURE;
    } else {
        if (q->tail != NULL)
            q->tail->next = it;
        else
            q->head = it;
        q->tail = it;
        q->nitems++;
        nbytes += len;
        it = NULL;
        /* Under the lock, so the owner cannot be freed meanwhile
         * (pw_queue_detach takes it too). */
        struct pw_vm *o = q->owner;
        if (o != NULL && o->ops->queue_ready != NULL)
            o->ops->queue_ready(o->user, id);
    }
    pthread_mutex_unlock(&lock);
    free(it);
    return st;
}

/* *data is the caller's (NULL for an empty item). */
int pw_queue_dequeue(uint32_t id, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int st = PW_OK;
    struct item *it = NULL;
    pthread_mutex_lock(&lock);
    struct queue *q = by_id(id);
    if (q == NULL) {
        st = PW_NOT_FOUND;
    } else if ((it = q->head) == NULL) {
        st = PW_EMPTY;
    } else {
        q->head = it->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->nitems--;
        nbytes -= it->len;
    }
    pthread_mutex_unlock(&lock);
    if (it == NULL)
        return st;
    /* The item's bytes move out in a block of their own: the header in
     * front of them is not the caller's to free. */
    if (it->len > 0 && (*data = malloc(it->len)) == NULL) {
        free(it);
        return PW_INTERNAL_FAILURE;
    }
    if (it->len > 0)
        memcpy(*data, it->data, it->len);
    *len = it->len;
    free(it);
    return PW_OK;
}

/* Borrows vm. */
void pw_queue_detach(struct pw_vm *vm)
{
    if (!vm->queue_owner)
        return;
    pthread_mutex_lock(&lock);
    for (uint32_t i = 0; i < nqueues; i++)
        if (queues[i]->owner == vm)
            queues[i]->owner = NULL;
    pthread_mutex_unlock(&lock);
    vm->queue_owner = false;
}

/* Frees every queue and item (process exit: no VM may be alive). */
static void queues_free(void)
{
    pthread_mutex_lock(&lock);
    for (uint32_t i = 0; i < nqueues; i++) {
        struct queue *q = queues[i];
        while (q->head != NULL) {
            struct item *it = q->head;
            q->head = it->next;
            free(it);
        }
        free(q->vm_id);
        free(q->name);
        free(q);
        queues[i] = NULL;
    }
    nqueues = 0;
    nbytes = 0;
    pthread_mutex_unlock(&lock);
}

void pw_host_cleanup(void)
{
    queues_free();
    pw_shared_cleanup();
}
