/* wasm.h - Strand's WebAssembly runtime: the whole public API.
 *
 * Load a module from bytes (decoded and fully validated once, then each
 * function is translated into pre-decoded internal code), instantiate it with
 * imports (host functions as C callbacks, host or exported memories, tables
 * and globals), call exports with typed values, and read or write linear
 * memory. Every instance carries limits: memory pages, call depth and fuel
 * (an execution budget spent per loop iteration and per call).
 *
 * Errors are values: functions return WASM_OK (0) or a negative enum
 * wasm_status and, when given a struct wasm_error, fill it with a message
 * (decode errors name the byte offset). A trap never crashes or corrupts the
 * host; the instance stays usable afterwards.
 *
 * Not thread-safe per object: a module may be instantiated from several
 * threads at once (it is immutable after load), but an instance, and the
 * objects it imports, belong to one thread at a time. */
#ifndef STRAND_WASM_H
#define STRAND_WASM_H

#include <stddef.h>
#include <stdint.h>

enum wasm_status {
    WASM_OK = 0,
    WASM_ERR_MALFORMED = -1,     /* the bytes are not a WebAssembly binary */
    WASM_ERR_INVALID = -2,       /* decoded, but fails validation */
    WASM_ERR_LINK = -3,          /* imports missing or of the wrong type */
    WASM_ERR_NOMEM = -4,         /* allocation failed or a limit was exceeded */
    WASM_ERR_ARG = -5,           /* bad argument: unknown export, wrong arity/type */
    WASM_TRAP_UNREACHABLE = -10,
    WASM_TRAP_MEMORY = -11,      /* out of bounds memory access */
    WASM_TRAP_TABLE = -12,       /* out of bounds table access / undefined element */
    WASM_TRAP_DIV_ZERO = -13,    /* integer divide by zero */
    WASM_TRAP_OVERFLOW = -14,    /* integer overflow */
    WASM_TRAP_CONVERSION = -15,  /* invalid conversion to integer */
    WASM_TRAP_STACK = -16,       /* call stack exhausted */
    WASM_TRAP_SIGNATURE = -17,   /* indirect call type mismatch */
    WASM_TRAP_NULL = -18,        /* uninitialized element / null function */
    WASM_TRAP_FUEL = -19,        /* out of fuel */
    WASM_TRAP_HOST = -20,        /* a host function reported an error */
};

/* Value types, with their binary encodings. */
enum wasm_type {
    WASM_I32 = 0x7f,
    WASM_I64 = 0x7e,
    WASM_F32 = 0x7d,
    WASM_F64 = 0x7c,
    WASM_V128 = 0x7b,
    WASM_FUNCREF = 0x70,
    WASM_EXTERNREF = 0x6f,
};

enum wasm_extern_kind { WASM_EXTERN_FUNC = 0, WASM_EXTERN_TABLE, WASM_EXTERN_MEMORY, WASM_EXTERN_GLOBAL };

struct wasm_module;   /* decoded, validated and compiled code; immutable */
struct wasm_instance; /* a module's state: memory, tables, globals, functions */
struct wasm_func;     /* a function: wasm (owned by its instance) or host */
struct wasm_memory;   /* a linear memory */
struct wasm_table;    /* a table of references */
struct wasm_global;   /* a global variable */

/* A typed value. f32/f64 are also reachable as raw bits (u32/u64) so NaN
 * payloads survive. A null reference is NULL; an externref is any host
 * pointer the host chooses (NULL meaning null). A v128 is its 16 bytes in
 * memory order (lane 0 first, each lane little-endian). */
struct wasm_val {
    enum wasm_type type;
    union {
        int32_t i32;
        int64_t i64;
        uint32_t u32;
        uint64_t u64;
        float f32;
        double f64;
        struct wasm_func *func;
        void *ref;
        uint8_t v128[16];
    } of;
};

struct wasm_error {
    enum wasm_status code;
    size_t offset; /* byte offset of a decode/validation error, else 0 */
    char msg[256];
};

/* Per-instance limits; a zero field takes the default. */
struct wasm_limits {
    uint32_t max_pages;      /* cap on every memory of the instance (default 65536) */
    uint32_t max_call_depth; /* nested calls before "call stack exhausted" (default 10000) */
    uint32_t stack_slots;    /* 64-bit value-stack slots (default 1M, lazily committed) */
    uint64_t fuel;           /* budget per call from the host; 0: unlimited. A
                              * wasm_call made by a host function while the
                              * instance runs (e.g. to its allocator) is nested:
                              * it spends the running call's budget, never
                              * refills it */
};

/* A host function: args and results have the types given at creation;
 * caller is the instance whose code made the call (NULL when called from
 * the host directly). Return NULL on success or a static trap message. */
typedef const char *(*wasm_host_fn)(void *user, struct wasm_instance *caller,
                                    const struct wasm_val *args, struct wasm_val *results);

/* One import or export. */
struct wasm_extern {
    enum wasm_extern_kind kind;
    union {
        struct wasm_func *func;
        struct wasm_table *table;
        struct wasm_memory *memory;
        struct wasm_global *global;
    } of;
};

/* --- modules --- */

/* Copies nothing from bytes after return; the module is the caller's, freed
 * with wasm_module_free. On failure *out is NULL and err says why. */
int wasm_module_load(const uint8_t *bytes, size_t len, struct wasm_module **out,
                     struct wasm_error *err);
/* Frees m; no instance of m may still be alive. */
void wasm_module_free(struct wasm_module *m);
/* Borrows m. */
size_t wasm_module_import_count(const struct wasm_module *m);
/* Names point into m and live as long as m; they are NUL-terminated but
 * may contain NUL, hence the lengths (any out pointer may be NULL). */
int wasm_module_import(const struct wasm_module *m, size_t i, const char **module,
                       size_t *module_len, const char **name, size_t *name_len,
                       enum wasm_extern_kind *kind);
/* For a function import i: its param and result counts, and up to cap types
 * (params then results) into types. WASM_ERR_ARG for other kinds. */
int wasm_module_import_functype(const struct wasm_module *m, size_t i, size_t *np, size_t *nr,
                                enum wasm_type *types, size_t cap);
/* Borrows m. */
size_t wasm_module_export_count(const struct wasm_module *m);
/* name points into m and lives as long as m (NUL-terminated, may hold NUL). */
int wasm_module_export(const struct wasm_module *m, size_t i, const char **name,
                       size_t *name_len, enum wasm_extern_kind *kind);

/* --- instances --- */

/* imports[i] satisfies import i of m (n must equal wasm_module_import_count);
 * the instance borrows them, so they must outlive it. The instance is the
 * caller's, freed with wasm_instance_free; it borrows m. Runs the start
 * function. A trap during instantiation fails it (the partially initialized
 * imported tables/memories keep what was written, as the spec says). */
int wasm_instantiate(const struct wasm_module *m, const struct wasm_extern *imports, size_t n,
                     const struct wasm_limits *limits, struct wasm_instance **out,
                     struct wasm_error *err);
/* Frees inst and what it owns; other instances may not still import from it. */
void wasm_instance_free(struct wasm_instance *inst);
/* The export named name (len bytes) into *out (borrowed from inst).
 * WASM_ERR_ARG if absent. */
int wasm_instance_export(struct wasm_instance *inst, const char *name, size_t len,
                         struct wasm_extern *out);
/* Shortcut for an exported function; NULL if absent. Borrowed from inst. */
struct wasm_func *wasm_instance_func(struct wasm_instance *inst, const char *name);
/* Memory 0 of inst, or NULL. Borrowed from inst. */
struct wasm_memory *wasm_instance_memory(struct wasm_instance *inst);
/* Sets the fuel budget given to each later call from the host (0: unlimited);
 * borrows inst. */
void wasm_instance_set_fuel(struct wasm_instance *inst, uint64_t fuel);
/* Fuel left at the end of the last call (UINT64_MAX when unlimited); borrows inst. */
uint64_t wasm_instance_fuel_left(const struct wasm_instance *inst);
/* A pointer for the host (e.g. its context, read back in host functions
 * through caller); inst only borrows it. */
void wasm_instance_set_user(struct wasm_instance *inst, void *user);
/* The pointer given to wasm_instance_set_user, still the host's. */
void *wasm_instance_user(const struct wasm_instance *inst);

/* --- functions --- */

/* Calls f with nargs args (types must match); writes its results into
 * results (room for wasm_func_result_count(f)). Traps come back as a
 * WASM_TRAP_* code with err->msg; inst stays usable. inst gives the limits
 * and value stack (NULL: f's own instance; needed for host functions). */
int wasm_call(struct wasm_instance *inst, struct wasm_func *f, const struct wasm_val *args,
              size_t nargs, struct wasm_val *results, struct wasm_error *err);
/* f's signature; these borrow f. */
size_t wasm_func_param_count(const struct wasm_func *f);
size_t wasm_func_result_count(const struct wasm_func *f);
enum wasm_type wasm_func_param_type(const struct wasm_func *f, size_t i);
enum wasm_type wasm_func_result_type(const struct wasm_func *f, size_t i);
/* A host function; the type arrays are copied; user is borrowed. Caller
 * frees it with wasm_func_free after every instance importing it. */
struct wasm_func *wasm_func_new_host(const enum wasm_type *params, size_t np,
                                     const enum wasm_type *results, size_t nr, wasm_host_fn fn,
                                     void *user);
/* Frees a host function (wasm functions belong to their instance: no-op). */
void wasm_func_free(struct wasm_func *f);

/* --- memories, tables, globals made by the host --- */

/* A new zeroed memory of min pages (max: UINT32_MAX for none); caller frees. */
struct wasm_memory *wasm_memory_new(uint32_t min, uint32_t max);
/* Frees a host-made memory (instance-owned ones: no-op). */
void wasm_memory_free(struct wasm_memory *mem);
/* The memory's bytes, valid until it grows. Borrowed. */
uint8_t *wasm_memory_data(struct wasm_memory *mem);
/* Size in bytes; borrows mem. */
size_t wasm_memory_size(const struct wasm_memory *mem);
/* Grows by delta pages within its maximum; returns the old page count or -1.
 * Borrows mem; earlier wasm_memory_data pointers become invalid. */
int64_t wasm_memory_grow(struct wasm_memory *mem, uint32_t delta);
/* Copies len bytes at addr into dst / from src: WASM_TRAP_MEMORY if out of
 * bounds. Borrows mem and the buffer. */
int wasm_memory_read(const struct wasm_memory *mem, uint64_t addr, void *dst, size_t len);
int wasm_memory_write(struct wasm_memory *mem, uint64_t addr, const void *src, size_t len);

/* A new table of min null entries (max: UINT32_MAX for none); caller frees. */
struct wasm_table *wasm_table_new(enum wasm_type elem, uint32_t min, uint32_t max);
/* Frees a host-made table (instance-owned ones: no-op). */
void wasm_table_free(struct wasm_table *t);
/* Entries in t; borrows t. */
uint32_t wasm_table_size(const struct wasm_table *t);

/* A new global holding v (mutable_ != 0: mutable); caller frees. */
struct wasm_global *wasm_global_new(struct wasm_val v, int mutable_);
/* Frees a host-made global (instance-owned ones: no-op). */
void wasm_global_free(struct wasm_global *g);
/* g's value; borrows g. */
struct wasm_val wasm_global_get(const struct wasm_global *g);
/* Sets g (borrowed); WASM_ERR_ARG for an immutable global or a type mismatch. */
int wasm_global_set(struct wasm_global *g, struct wasm_val v);

/* A static description of a status code ("out of fuel", ...); not to be freed. */
const char *wasm_status_str(int code);

#endif
