/* util.c - Small helpers of sagactl: clocks, number parsing, error messages,
 * growable text buffers and money formatting. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

int64_t ctl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ctl_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    /* A signal cuts the nap short; the callers re-check their deadline anyway. */
    nanosleep(&ts, NULL);
}

int ctl_parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    /* strtoll would skip leading blanks; a whole number has none. */
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

void ctl_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sagactl%s%s: ", cmd != NULL ? " " : "", cmd != NULL ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int ctl_bad_option(const char *cmd, char **argv, int optind_now, int optopt_now, int ret)
{
    /* getopt_long leaves the offending word at optind - 1 for long options;
     * for a short one only optopt says which letter it was. */
    const char *word = optind_now > 0 ? argv[optind_now - 1] : NULL;
    char shortopt[3] = {'-', (char)optopt_now, '\0'};
    if (optopt_now != 0 && (word == NULL || strncmp(word, "--", 2) != 0))
        word = shortopt;
    if (word == NULL)
        word = "?";
    if (ret == ':')
        ctl_err(cmd, "option '%s' needs a value (see sagactl %s --help)", word, cmd);
    else
        ctl_err(cmd, "bad option '%s' (see sagactl %s --help)", word, cmd);
    return CTL_EXIT_USAGE;
}

/* ---- ctl_buf --------------------------------------------------------------------- */

void ctl_buf_init(ctl_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void ctl_buf_cleanup(ctl_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void ctl_buf_reset(ctl_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static int grow(ctl_buf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void ctl_buf_add(ctl_buf *b, const char *data, size_t len)
{
    if (grow(b, len) != 0)
        return;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void ctl_buf_puts(ctl_buf *b, const char *s)
{
    ctl_buf_add(b, s, strlen(s));
}

void ctl_buf_printf(ctl_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    /* Most pieces are short: format once into a stack buffer, and only when
     * that is too small a second time into the grown buffer. */
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        ctl_buf_add(b, small, (size_t)n);
        return;
    }
    if (grow(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *ctl_buf_str(const ctl_buf *b)
{
    return b->data != NULL ? b->data : "";
}

int ctl_buf_ok(const ctl_buf *b)
{
    return !b->oom;
}

void ctl_money(int64_t cents, char *out, size_t outlen)
{
    /* Work on the magnitude as unsigned so INT64_MIN does not overflow. */
    uint64_t mag = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    snprintf(out, outlen, "%s%llu.%02llu", cents < 0 ? "-" : "", (unsigned long long)(mag / 100),
             (unsigned long long)(mag % 100));
}
