/* log.c - Log levels, the ready-made stderr sink and the runtime's line formatter. */
#include "log_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* One stderr line at most, newline included. PIPE_BUF (4096 on Linux) is the
 * largest write a pipe keeps whole, so lines from several threads or from the
 * processes of a fleet sharing one pipe never interleave. */
#define STDERR_LINE_MAX 4096

#define TRUNCATED_MARK "..."

/* Lines held back on a thread that asked for it (the service thread, during
 * a batch): written together with one write(2) when the batch is done or the
 * buffer is full. A line per handled event is one system call less per
 * event; PIPE_BUF still bounds every write, so lines stay whole. */
static _Thread_local struct {
    int on;
    size_t n;
    char buf[STDERR_LINE_MAX];
} held;

static void write_stderr(const char *buf, size_t n)
{
    ssize_t w;
    /* A single write(2) keeps the lines whole; retried only if a signal came
     * before anything was written. A logger has nowhere to report its own
     * failure, so a short or failed write is dropped. */
    do {
        w = write(STDERR_FILENO, buf, n);
    } while (w < 0 && errno == EINTR);
}

void saga__log_flush(void)
{
    if (held.n > 0)
        write_stderr(held.buf, held.n);
    held.n = 0;
}

void saga__log_hold(int on)
{
    if (!on)
        saga__log_flush();
    held.on = on;
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

#define NLEVELS ((int)(sizeof(level_names) / sizeof(level_names[0])))

const char *saga_log_level_name(saga_log_level level)
{
    int i = (int)level;
    return i >= 0 && i < NLEVELS ? level_names[i] : "unknown";
}

int saga_log_level_parse(const char *s)
{
    int i;
    if (s == NULL)
        return -1;
    /* Case-insensitive: SAGA_LOG_LEVEL=DEBUG is what people type. */
    for (i = 0; i < NLEVELS; i++) {
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    }
    return -1;
}

/* Replaces the last bytes of a full buffer of len bytes (NUL not counted) by a
 * mark, so a reader sees that the line was cut. */
static void mark_truncated(char *buf, size_t len)
{
    size_t mark = sizeof(TRUNCATED_MARK) - 1;
    if (len >= mark)
        memcpy(buf + len - mark, TRUNCATED_MARK, mark);
}

void saga_log_stderr(void *udata, saga_log_level level, const char *line)
{
    char buf[STDERR_LINE_MAX];
    struct timespec now;
    struct tm tm;
    size_t n = 0;
    int m;

    (void)udata;
    if (line == NULL)
        line = "";
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
        now.tv_sec = 0;
        now.tv_nsec = 0;
    }
    if (gmtime_r(&now.tv_sec, &tm) != NULL)
        n = strftime(buf, sizeof(buf), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0)
        n = (size_t)snprintf(buf, sizeof(buf), "ts=?");
    m = snprintf(buf + n, sizeof(buf) - n, ".%03ldZ level=%s ", (long)(now.tv_nsec / 1000000),
                 saga_log_level_name(level));
    if (m > 0)
        n += (size_t)m;

    /* Copy the line, keeping one byte for the newline. Control characters
     * become spaces: one event per line must hold even if a value that came
     * from the network carries a newline. */
    for (; *line != '\0' && n < sizeof(buf) - 1; line++) {
        unsigned char c = (unsigned char)*line;
        buf[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (*line != '\0')
        mark_truncated(buf, n);
    buf[n++] = '\n';

    if (!held.on) {
        write_stderr(buf, n);
        return;
    }
    if (held.n + n > sizeof(held.buf))
        saga__log_flush();
    memcpy(held.buf + held.n, buf, n);
    held.n += n;
}

void saga__log(const saga__logger *lg, saga_log_level lvl, const char *fmt, ...)
{
    char line[SAGA__LOG_LINE_MAX];
    size_t n = 0;
    va_list ap;
    int m;

    if (!SAGA__LOG_ENABLED(lg, lvl))
        return;
    line[0] = '\0';
    if (lg->service != NULL) {
        m = snprintf(line, sizeof(line), "svc=%s ", lg->service);
        if (m > 0)
            n = (size_t)m < sizeof(line) ? (size_t)m : sizeof(line) - 1;
    }
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        line[n] = '\0'; /* an encoding error: keep at least the prefix */
    else if ((size_t)m >= sizeof(line) - n)
        mark_truncated(line, sizeof(line) - 1);
    lg->fn(lg->udata, lvl, line);
}
