/* fuzz_config.c - libFuzzer target for the configuration loader.
 *
 * Feeds the input to config_load_buffer as one YAML file. On success the
 * config is rendered with config_to_json and the JSON is checked by a small
 * strict validator (the admin endpoint promises valid JSON whatever the
 * strings hold); on failure the error must have the "file:line: reason"
 * shape. Leaks are caught by LeakSanitizer on every path. */
#include "config/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Validates one JSON value at *p (advanced past it); depth-bounded. */
static int json_value(const char **p, int depth);

/* Advances *p past whitespace; borrows. */
static void json_ws(const char **p)
{
    while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r')
        (*p)++;
}

/* A JSON string at *p; control characters must be escaped. */
static int json_string(const char **p)
{
    const unsigned char *s = (const unsigned char *)*p;
    if (*s++ != '"')
        return -1;
    for (;;) {
        if (*s == '"')
            break;
        if (*s < 0x20)
            return -1; /* includes the terminating NUL */
        if (*s == '\\') {
            s++;
            if (*s == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0')
                        return -1;
                s += 5;
                continue;
            }
            if (*s == '\0' || strchr("\"\\/bfnrt", *s) == NULL)
                return -1;
        }
        s++;
    }
    *p = (const char *)s + 1;
    return 0;
}

/* Definition of the validator declared above; borrows *p. */
static int json_value(const char **p, int depth)
{
    if (depth > 32)
        return -1;
    json_ws(p);
    char c = **p;
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        (*p)++;
        json_ws(p);
        if (**p == close) {
            (*p)++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                json_ws(p);
                if (json_string(p) != 0)
                    return -1;
                json_ws(p);
                if (*(*p)++ != ':')
                    return -1;
            }
            if (json_value(p, depth + 1) != 0)
                return -1;
            json_ws(p);
            if (**p == ',') {
                (*p)++;
                continue;
            }
            if (*(*p)++ != close)
                return -1;
            return 0;
        }
    }
    if (c == '"')
        return json_string(p);
    static const char *const lit[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++)
        if (strncmp(*p, lit[i], strlen(lit[i])) == 0) {
            *p += strlen(lit[i]);
            return 0;
        }
    if (c < '0' || c > '9')
        return -1;
    while (**p >= '0' && **p <= '9')
        (*p)++;
    return 0;
}

/* Borrows data (libFuzzer owns it). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct config *cfg = NULL;
    if (config_load_buffer("fuzz.yaml", (const char *)data, size, &cfg, err, sizeof(err)) != 0) {
        /* "fuzz.yaml:<digits>: <reason>" */
        const char *p = err + strlen("fuzz.yaml:");
        if (strncmp(err, "fuzz.yaml:", 10) != 0 || *p < '0' || *p > '9')
            abort();
        while (*p >= '0' && *p <= '9')
            p++;
        if (p[0] != ':' || p[1] != ' ' || p[2] == '\0')
            abort();
        return 0;
    }
    char *json = config_to_json(cfg);
    if (json != NULL) {
        const char *p = json;
        if (json_value(&p, 0) != 0)
            abort();
        json_ws(&p);
        if (*p != '\0')
            abort();
    }
    free(json);
    config_free(cfg);
    return 0;
}
