/* fuzz_config.c - The SAGA_* environment table (runtime/src/config.c) on any
 * values. The input is lines: the first is the service name, each other is
 * NAME=value (any variable, known or not) or, when it has no '=', a byte
 * that picks a setting followed by its value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define INPUT_MAX 4096
#define LINES_MAX 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every value the parser accepted must lie within its setting's bounds. */
static void check_bounds(const saga_config *cfg)
{
    for (size_t i = 0; i < saga__config_nsettings; i++) {
        const saga__setting *s = &saga__config_settings[i];
        const char *field = (const char *)cfg + s->offset;
        long long v;
        switch (s->type) {
        case SAGA__SETTING_INT:
        case SAGA__SETTING_BOOL: {
            int x;
            memcpy(&x, field, sizeof(x));
            v = x;
            break;
        }
        case SAGA__SETTING_INT64: {
            int64_t x;
            memcpy(&x, field, sizeof(x));
            v = x;
            break;
        }
        case SAGA__SETTING_SIZE: {
            size_t x;
            memcpy(&x, field, sizeof(x));
            v = (long long)x;
            break;
        }
        case SAGA__SETTING_STRING: {
            const char *x;
            memcpy(&x, field, sizeof(x));
            v = x != NULL ? (long long)strlen(x) : s->min;
            break;
        }
        default:
            continue;
        }
        if (v < s->min || v > s->max)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[INPUT_MAX + 1], err[4096], value[512];
    char *pairs[LINES_MAX];
    int npairs = 0;
    saga_config cfg;
    if (size > INPUT_MAX || memchr(data, '\0', size) != NULL)
        return 0; /* the environment holds C strings */
    memcpy(text, data, size);
    text[size] = '\0';

    char *save = NULL;
    char *name = strtok_r(text, "\n", &save);
    for (char *line = strtok_r(NULL, "\n", &save); line != NULL && npairs < LINES_MAX;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        const char *env, *val;
        if (eq != NULL && eq != line) {
            *eq = '\0';
            env = line;
            val = eq + 1;
        } else {
            /* A setting of the table by the first byte; rows of fields set
             * only in code have no variable: take the next one that has. */
            size_t k = (unsigned char)line[0] % saga__config_nsettings;
            for (size_t tries = 0;
                 saga__config_settings[k].env == NULL && tries < saga__config_nsettings; tries++)
                k = (k + 1) % saga__config_nsettings;
            env = saga__config_settings[k].env;
            if (env == NULL)
                continue;
            val = line + 1;
        }
        /* putenv, not setenv: glibc keeps every string setenv ever made,
         * which over millions of inputs exhausts memory. */
        size_t el = strlen(env), vl = strlen(val);
        char *pair = malloc(el + vl + 2);
        if (pair == NULL)
            continue;
        memcpy(pair, env, el);
        pair[el] = '=';
        memcpy(pair + el + 1, val, vl + 1);
        if (putenv(pair) != 0) {
            free(pair);
            continue;
        }
        pairs[npairs++] = pair;
    }
    saga_status st = saga_config_init(&cfg, name != NULL ? name : "", err, sizeof(err));
    if (memchr(err, '\0', sizeof(err)) == NULL)
        abort();
    if (st == SAGA_OK)
        check_bounds(&cfg);
    /* A configuration dump, as --help and the stats reply show it. */
    for (size_t i = 0; i < saga__config_nsettings && st == SAGA_OK; i++)
        saga__config_value(&saga__config_settings[i], &cfg, value, sizeof(value));
    /* Every name out of the environment before any of its strings is freed. */
    for (int i = 0; i < npairs; i++) {
        size_t nl = (size_t)(strchr(pairs[i], '=') - pairs[i]);
        memcpy(text, pairs[i], nl);
        text[nl] = '\0';
        unsetenv(text);
    }
    for (int i = 0; i < npairs; i++)
        free(pairs[i]);
    return 0;
}
