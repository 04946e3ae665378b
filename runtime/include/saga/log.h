/* log.h - Structured logging for the runtime and the services built on it.
 *
 * The library never writes anywhere by itself: it hands each line to the sink
 * the executable configured (saga_config.log). Lines are key=value pairs, one
 * event per line, and carry svc=, and order= / event= where they exist. */
#ifndef SAGA_LOG_H
#define SAGA_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum saga_log_level {
    SAGA_LOG_ERROR = 0,
    SAGA_LOG_WARN = 1,
    SAGA_LOG_INFO = 2,
    SAGA_LOG_DEBUG = 3
} saga_log_level;

/* A log sink. line is NUL-terminated, without a trailing newline, and valid
 * only during the call. Called from the thread that logs (the service loop,
 * or a cnats callback thread for connection events); it must be thread-safe. */
typedef void (*saga_log_fn)(void *udata, saga_log_level level, const char *line);

/* A ready sink that writes "ts=... level=... <line>\n" to stderr with one write(2). */
void saga_log_stderr(void *udata, saga_log_level level, const char *line);

/* Parses "error|warn|info|debug"; returns -1 if s is none of them. */
int saga_log_level_parse(const char *s);

const char *saga_log_level_name(saga_log_level level);

#ifdef __cplusplus
}
#endif
#endif
