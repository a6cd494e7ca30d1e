/* check_config.h - for the unit tests of configuration kinds: load a YAML
 * buffer as "t.yaml", and check that a bad one is refused at the line of
 * its "#<" marker, with a reason. Include after check.h (it counts into
 * the same tally). */
#ifndef STRAND_TEST_CHECK_CONFIG_H
#define STRAND_TEST_CHECK_CONFIG_H

#include <stdio.h>
#include <string.h>

#include "config/config.h"

/* Loads len bytes of yaml as t.yaml; NULL on error (err filled). Borrows
 * yaml; the caller frees the config. */
static inline struct config *load_yaml(const char *yaml, size_t len, char *err, size_t errlen)
{
    struct config *cfg = NULL;
    if (config_load_buffer("t.yaml", yaml, len, &cfg, err, errlen) != 0)
        return NULL;
    return cfg;
}

/* The 1-based line of the first occurrence of needle in text, or 0.
 * Borrows both. */
static inline int line_of(const char *text, const char *needle)
{
    const char *m = strstr(text, needle);
    if (m == NULL)
        return 0;
    int line = 1;
    for (const char *p = text; p < m; p++)
        line += *p == '\n';
    return line;
}

/* The line of yaml's first "#<" marker, or 0 when there is none. */
static inline int marker_line(const char *yaml)
{
    return line_of(yaml, "#<");
}

/* Counts one check of a load that must have failed: cfg NULL (a config is
 * freed), err starting "t.yaml:<line>: " for yaml's marker line (any line
 * when it has no marker) and holding substr. src_line names the case.
 * Takes cfg; borrows the strings. */
static inline void check_load_err(int src_line, struct config *cfg, const char *err,
                                  const char *yaml, const char *substr)
{
    char want[32] = "t.yaml:";
    int line = marker_line(yaml);
    if (line) snprintf(want, sizeof(want), "t.yaml:%d: ", line);
    if (cfg == NULL && strncmp(err, want, strlen(want)) == 0 && strstr(err, substr) != NULL) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL %s:%d: got \"%s\", want \"%s...%s\"\n", __FILE__, src_line,
           cfg ? "(loaded)" : err, want, substr);
    config_free(cfg);
}

#endif
