/* utf8.h - strict UTF-8 validation, shared by the writers of JSON (access
 * log) and Prometheus text (metrics), which must never emit invalid text. */
#ifndef STRAND_UTF8_H
#define STRAND_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (n >= 1 bytes available), or 0 if
 * the bytes there are not one: overlong forms, surrogates and code points
 * above U+10FFFF are refused, as a strict JSON reader would. Borrows s. */
static inline size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xc2 || c > 0xf4)
        return 0;
    size_t len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (n < len)
        return 0;
    unsigned lo = 0x80, hi = 0xbf;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

#endif
