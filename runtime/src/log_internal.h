/* log_internal.h - The runtime's level-checked logging macro and the logger it uses.
 *
 * The runtime logs through a saga__logger built from saga_config (sink, its
 * udata, level, service name). SAGA__LOG checks the level before anything is
 * formatted, so a debug line on a hot path costs one comparison when debug
 * logging is off (Redis serverLog, curl infof). */
#ifndef SAGA_LOG_INTERNAL_H
#define SAGA_LOG_INTERNAL_H

#include "saga/log.h"

/* Longest line handed to a sink, including "svc=<service> " and the NUL;
 * longer lines are truncated, never split. */
#define SAGA__LOG_LINE_MAX 2048

typedef struct saga__logger {
    saga_log_fn fn; /* NULL: logging is off */
    void *udata;
    saga_log_level level; /* lines above this level are dropped unformatted */
    const char *service;  /* prefixed as "svc=<service> "; NULL: no prefix */
} saga__logger;

/* Formats one key=value line (printf-style, without a trailing newline) into a
 * bounded stack buffer, prefixes "svc=<service> " and hands it to lg->fn on
 * the calling thread. Does nothing if lg is NULL, has no sink or lvl is above
 * lg->level. Use it through SAGA__LOG so the arguments are not even evaluated
 * when the level is off. */
void saga__log(const saga__logger *lg, saga_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes saga_log_stderr on the calling thread hold lines back (on != 0) until
 * saga__log_flush() or a full buffer, or write each at once again (on == 0,
 * which flushes). Other sinks are not affected. */
void saga__log_hold(int on);
void saga__log_flush(void);

/* Evaluates to non-zero when a line at lvl would reach a sink. */
#define SAGA__LOG_ENABLED(lg, lvl) ((lg) != NULL && (lg)->fn != NULL && (lvl) <= (lg)->level)

/* SAGA__LOG(&svc->log, SAGA_LOG_INFO, "order=%s event=%s msg=\"processed\"", ...);
 * lg and lvl are evaluated once; the format arguments only if the line is
 * going to be written. */
#define SAGA__LOG(lg, lvl, ...)                                                                    \
    do {                                                                                           \
        const saga__logger *saga__log_lg_ = (lg);                                                  \
        saga_log_level saga__log_lvl_ = (lvl);                                                     \
        if (SAGA__LOG_ENABLED(saga__log_lg_, saga__log_lvl_))                                      \
            saga__log(saga__log_lg_, saga__log_lvl_, __VA_ARGS__);                                 \
    } while (0)

#endif
