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

/* Bounds that also size the service's copies of the strings (service_internal.h). */
#define SAGA__NATS_URL_MAX 1024
#define SAGA__DATA_DIR_MAX 3900 /* leaves room under PATH_MAX for LMDB's file names */
#define SAGA__STREAM_MAX 63
#define SAGA__CRASH_AT_MAX 128
#define SAGA__GATES_MAX 200
#define SAGA__MAX_GATES 4 /* participants named in SAGA_GATES */
#define SAGA__FAULTS_MAX 1000
#define SAGA__PATH_MAX 3900         /* a credentials, CA, certificate or key file */
#define SAGA__METRICS_ADDR_MAX 21   /* "255.255.255.255:65535" */
#define SAGA__PARTITION_SPEC_MAX 64 /* SAGA_INSTANCE, SAGA_PARTITIONS */

/* Flags of a setting. */
#define SAGA__SETTING_REQUIRED 1u /* a string that must be set (non-NULL, non-empty) */

typedef struct saga__setting {
    const char *env; /* environment variable, e.g. "SAGA_BATCH_MAX"; NULL: set in code only */
    const char *key; /* the saga_config field it sets, e.g. "batch_max" */
    saga__setting_type type; /* checked at compile time against the field's C type */
    size_t offset;           /* offsetof(saga_config, <key>) */
    long long min, max;      /* inclusive bounds; for strings, bounds on the length */
    const char *help;        /* one sentence for --help */
    unsigned flags;          /* SAGA__SETTING_* */
} saga__setting;

/* Every field of saga_config that has bounds, in the order --help lists
 * them; the rows with an env are read from the environment. */
extern const saga__setting saga__config_settings[];
extern const size_t saga__config_nsettings;

/* Checks cfg as saga_service_create() takes it: the service name, every
 * row's bounds (the same test and message as a bad environment value gets),
 * required strings, and the rules between fields (retry_base_ms <=
 * retry_max_ms; retention_ms and events_max_age_ms beyond dup_window_ms).
 * Every violation is named in errbuf, "; "-separated. SAGA_OK or
 * SAGA_EINVAL. */
saga_status saga__config_check(const saga_config *cfg, char *errbuf, size_t errlen);

/* Splits "ipv4:port" (SAGA_METRICS_ADDR) into host (a dotted quad, copied
 * into host) and port (0..65535; 0: any free port). 0 on success, -1 if addr
 * is not of that form. The one parser of the setting: the configuration
 * checks with it, the metrics server listens with it. */
int saga__config_parse_addr(const char *addr, char *host, size_t hostcap, int *port);

/* Writes one block per setting to f: variable, type, bounds, default, help.
 * For an executable's --help; the library itself never calls it. */
void saga__config_describe(FILE *f);

/* Formats the current value of setting s in cfg into buf (always
 * NUL-terminated when len > 0; "-" for an unset string). Returns the length
 * snprintf would have written. Beware that SAGA_NATS_URL may hold
 * credentials before putting it in a log. */
int saga__config_value(const saga__setting *s, const saga_config *cfg, char *buf, size_t len);

#endif
