/* proxy_wasm.c - the exports every Strand example filter needs.
 *
 * Linked into each example next to the filter's own .c file.
 *
 * Default: ABI v0.2.1, exporting proxy_abi_version_0_2_1 and the allocator
 * proxy_on_memory_allocate. Built with -DPW_ABI_0_2_0 the module instead
 * announces v0.2.0 and exports its allocator under the deprecated name
 * `malloc` only, so a host's version detection and allocator fallback can
 * be tested with the same filter source. */
#include "proxy_wasm.h"

#ifndef PW_ABI_0_2_0

/* The host copies returned buffers (header values, configuration, ...) into
 * memory it gets from here and passes the pointer to the filter, which
 * frees it with free(). Returning 0 tells the host the allocation failed. */
void *proxy_on_memory_allocate(size_t size)
{
    return malloc(size ? size : 1);
}

/* Version marker: the host looks for this export's name; never called. */
void proxy_abi_version_0_2_1(void) {}

#else

/* The same allocator under the name v0.2.0 hosts look for. The C symbol
 * cannot be `malloc` (libc's), only the export name is. */
PW_EXPORT(malloc) void *pw_legacy_malloc(size_t size);
void *pw_legacy_malloc(size_t size)
{
    return malloc(size ? size : 1);
}

/* Version marker of ABI v0.2.0; never called. */
PW_EXPORT(proxy_abi_version_0_2_0) void proxy_abi_version_0_2_0(void);
void proxy_abi_version_0_2_0(void) {}

#endif
