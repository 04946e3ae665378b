/* config_internal.h - The table of the SAGA_* environment settings behind saga_config_init.
 *
 * One declarative table (Redis static_configs[]) drives parsing, validation,
 * --help text and configuration dumps, so they cannot disagree. Executables
 * use saga__config_describe() in their --help. */
#ifndef SAGA_CONFIG_INTERNAL_H
#define SAGA_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include "saga/service.h"

typedef enum saga__setting_type {
    SAGA__SETTING_STRING,  /* const char *, pointing into the environment */
    SAGA__SETTING_INT,     /* int */
    SAGA__SETTING_INT64,   /* int64_t */
    SAGA__SETTING_BOOL,    /* int, 0 or 1: 0/1, true/false, yes/no, on/off */
    SAGA__SETTING_SIZE,    /* size_t, bytes with an optional K/M/G/T suffix (powers of 1024) */
    SAGA__SETTING_LOGLEVEL /* saga_log_level: error|warn|info|debug */
} saga__setting_type;

typedef struct saga__setting {
    const char *env;         /* environment variable, e.g. "SAGA_BATCH_MAX" */
    const char *key;         /* the saga_config field it sets, e.g. "batch_max" */
    saga__setting_type type; /* checked at compile time against the field's C type */
    size_t offset;           /* offsetof(saga_config, <key>) */
    long long min, max;      /* inclusive bounds; for strings, bounds on the length */
    const char *help;        /* one sentence for --help */
} saga__setting;

/* The settings, in the order --help lists them. */
extern const saga__setting saga__config_settings[];
extern const size_t saga__config_nsettings;

/* Writes one block per setting to f: variable, type, bounds, default, help.
 * For an executable's --help; the library itself never calls it. */
void saga__config_describe(FILE *f);

/* Formats the current value of setting s in cfg into buf (always
 * NUL-terminated when len > 0; "-" for an unset string). Returns the length
 * snprintf would have written. Beware that SAGA_NATS_URL may hold
 * credentials before putting it in a log. */
int saga__config_value(const saga__setting *s, const saga_config *cfg, char *buf, size_t len);

#endif
