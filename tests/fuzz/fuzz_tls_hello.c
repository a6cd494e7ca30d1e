/* fuzz_tls_hello.c - libFuzzer target for the TLS layer's pure parsers.
 *
 * Every input goes to both parsers: tls_peek_client_hello (seeds are
 * ClientHellos captured from OpenSSL, some split into many records) and
 * tls_spiffe_id_from_der (seeds are DER certificates with and without
 * SPIFFE URI SANs); the one that does not recognise the input rejects it
 * within a few bytes. Beyond "no crash, no sanitizer report", it checks:
 *   - results are 1, 0 or -1 and outputs are NUL-terminated in their bounds;
 *   - a complete hello yields a lowercase printable SNI and a comma list
 *     without empty entries;
 *   - a prefix never disagrees with the whole: once a prefix is complete or
 *     malformed, the whole input gives the same answer, and a whole input
 *     that is malformed or complete has no prefix that is the other;
 *   - tiny output buffers never overflow (the canaries survive);
 *   - an ID from the DER passes tls_spiffe_id_check.
 * A broken invariant aborts. */
#include "tls/tls.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* Checks a result and its outputs (borrowed buffers of the given sizes). */
static void check_outputs(int r, const char *sni, size_t snilen, const char *alpn, size_t alpnlen)
{
    ASSERT(r == 1 || r == 0 || r == -1);
    ASSERT(memchr(sni, '\0', snilen) != NULL);
    ASSERT(memchr(alpn, '\0', alpnlen) != NULL);
    if (r != 1)
        return;
    for (const char *p = sni; *p; p++)
        ASSERT(*p > 0x20 && *p < 0x7f && !(*p >= 'A' && *p <= 'Z'));
    size_t n = strlen(alpn);
    ASSERT(n == 0 || (alpn[0] != ',' && alpn[n - 1] != ','));
    ASSERT(strstr(alpn, ",,") == NULL);
}

/* data is libFuzzer's, borrowed. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char sni[256], alpn[256];
    int whole = tls_peek_client_hello(data, size, sni, sizeof sni, alpn, sizeof alpn);
    check_outputs(whole, sni, sizeof sni, alpn, sizeof alpn);
    char sni_whole[256], alpn_whole[256];
    memcpy(sni_whole, sni, sizeof sni);
    memcpy(alpn_whole, alpn, sizeof alpn);

    /* A prefix chosen by the input itself. */
    size_t cut = size ? (size_t)data[size - 1] * size / 256 : 0;
    int part = tls_peek_client_hello(data, cut, sni, sizeof sni, alpn, sizeof alpn);
    check_outputs(part, sni, sizeof sni, alpn, sizeof alpn);
    if (part != 0)
        ASSERT(part == whole);
    if (part == 1)
        ASSERT(strcmp(sni, sni_whole) == 0 && strcmp(alpn, alpn_whole) == 0);

    /* Small outputs with canaries behind them: only a name that does not
     * fit may change the answer; ALPN is cut instead. */
    char small[8 + 4], small_alpn[5 + 4];
    memset(small, 0x5a, sizeof small);
    memset(small_alpn, 0x5a, sizeof small_alpn);
    int r = tls_peek_client_hello(data, size, small, 8, small_alpn, 5);
    check_outputs(r, small, 8, small_alpn, 5);
    for (size_t i = 8; i < sizeof small; i++)
        ASSERT(small[i] == 0x5a);
    for (size_t i = 5; i < sizeof small_alpn; i++)
        ASSERT(small_alpn[i] == 0x5a);
    ASSERT(r == (whole == 1 && strlen(sni_whole) >= 8 ? -1 : whole));
    ASSERT(tls_peek_client_hello(data, size, NULL, 0, NULL, 0) == whole);

    char id[TLS_SPIFFE_ID_MAX + 1];
    if (tls_spiffe_id_from_der(data, size, id, sizeof id) == 0) {
        ASSERT(strlen(id) <= TLS_SPIFFE_ID_MAX);
        ASSERT(tls_spiffe_id_check(id, strlen(id)) == 0);
        char tiny[16];
        ASSERT(tls_spiffe_id_from_der(data, size, tiny, sizeof tiny) == (strlen(id) < sizeof tiny ? 0 : -1));
    }
    tls_spiffe_id_check((const char *)data, size);
    return 0;
}
