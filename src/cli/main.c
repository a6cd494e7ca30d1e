/* main.c - the strand command: one binary, subcommands.
 *
 *   strand proxy -c FILE [-c FILE]...    run the data plane
 *   strand validate -c FILE [-c FILE]... check configuration, print file:line: reason
 *   strand version
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/log.h"
#include "proxy/server.h"

#define STRAND_VERSION "0.1.0"
#define MAX_FILES 64

/* `strand wasm ...` (wasm_cmd.c): argv[0] is "wasm". */
int wasm_cmd_main(int argc, char **argv);

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strand <command> [options]\n"
            "\n"
            "commands:\n"
            "  proxy -c FILE [-c FILE]...     run the proxy (SIGHUP reloads, SIGTERM drains)\n"
            "  validate -c FILE [-c FILE]...  check configuration files\n"
            "  wasm spectest FILE.json | run FILE.wasm EXPORT [ARGS...]  WebAssembly runtime\n"
            "  version                        print the version\n"
            "\n"
            "options:\n"
            "  -c, --config FILE   configuration file (YAML); repeatable\n"
            "  --log-level LEVEL   debug, info, warn or error (proxy; default info)\n");
}

/* Collects -c/--config and --log-level; returns the number of files or -1. */
static int parse_args(int argc, char **argv, const char **files, int allow_log)
{
    int n = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "strand: %s needs a file\n", a);
                return -1;
            }
            if (n == MAX_FILES) {
                fprintf(stderr, "strand: at most %d config files\n", MAX_FILES);
                return -1;
            }
            files[n++] = argv[++i];
        } else if (allow_log && !strcmp(a, "--log-level") && i + 1 < argc) {
            const char *l = argv[++i];
            if (!strcmp(l, "debug"))
                log_set_level(LOG_DEBUG);
            else if (!strcmp(l, "info"))
                log_set_level(LOG_INFO);
            else if (!strcmp(l, "warn"))
                log_set_level(LOG_WARN);
            else if (!strcmp(l, "error"))
                log_set_level(LOG_ERROR);
            else {
                fprintf(stderr, "strand: unknown log level '%s'\n", l);
                return -1;
            }
        } else {
            fprintf(stderr, "strand: unknown option '%s'\n", a);
            return -1;
        }
    }
    if (n == 0) {
        fprintf(stderr, "strand: no configuration file (-c FILE)\n");
        return -1;
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    const char *files[MAX_FILES];
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("strand %s\n", STRAND_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "validate")) {
        int n = parse_args(argc, argv, files, 0);
        if (n < 0) {
            usage(stderr);
            return 2;
        }
        struct config *cfg = NULL;
        char err[1024];
        if (config_load_files(files, (size_t)n, &cfg, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        config_free(cfg);
        printf("ok\n");
        return 0;
    }
    if (!strcmp(cmd, "wasm"))
        return wasm_cmd_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "proxy")) {
        int n = parse_args(argc, argv, files, 1);
        if (n < 0) {
            usage(stderr);
            return 2;
        }
        return server_run(files, (size_t)n);
    }
    fprintf(stderr, "strand: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
