/* util.c - Small helpers of sagactl: clocks, number parsing, error messages,
 * growable text buffers and money formatting. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
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

/* The name messages start with: the executable links these helpers once. */
static const char *program = "sagactl";
/* Per thread, so that each of saga-gateway's request threads hears only its own. */
static _Thread_local ctl_buf *captured;

void ctl_set_program(const char *name)
{
    program = name;
}

const char *ctl_program(void)
{
    return program;
}

void ctl_err_capture(ctl_buf *b)
{
    captured = b;
}

void ctl_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    if (captured != NULL) {
        /* The last message is the one that explains the outcome (a retry's
         * notice comes before the final failure). */
        char text[1024];
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        ctl_buf_reset(captured);
        ctl_buf_puts(captured, text);
        return;
    }
    fprintf(stderr, "%s%s%s: ", program, cmd != NULL ? " " : "", cmd != NULL ? cmd : "");
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
    const char *sep = cmd != NULL ? " " : "", *what = cmd != NULL ? cmd : "";
    if (ret == ':')
        ctl_err(cmd, "option '%s' needs a value (see %s%s%s --help)", word, program, sep, what);
    else
        ctl_err(cmd, "bad option '%s' (see %s%s%s --help)", word, program, sep, what);
    return CTL_EXIT_USAGE;
}

int ctl_parse_options(const char *cmd, const char *help, int argc, char **argv,
                      const ctl_option *opts, size_t n)
{
    /* getopt_long's table: opts[i] answers OPT_BASE + i, beyond every character
     * it returns itself ('h', ':', '?'). */
    enum { OPT_BASE = 256 };
    struct option table[CTL_OPTIONS_MAX + 2];
    int opt;
    if (n > CTL_OPTIONS_MAX) {
        ctl_err(cmd, "more than %d options: raise CTL_OPTIONS_MAX", CTL_OPTIONS_MAX);
        return CTL_EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++)
        table[i] =
            (struct option){opts[i].name, opts[i].text != NULL ? required_argument : no_argument,
                            NULL, OPT_BASE + (int)i};
    table[n] = (struct option){"help", no_argument, NULL, 'h'};
    table[n + 1] = (struct option){NULL, 0, NULL, 0};
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", table, NULL)) != -1) {
        if (opt == 'h') {
            fputs(help, stdout);
            return -1;
        }
        if (opt < OPT_BASE)
            return ctl_bad_option(cmd, argv, optind, optopt, opt);
        const ctl_option *o = &opts[opt - OPT_BASE];
        if (o->text != NULL)
            *o->text = optarg;
        else
            *o->flag = 1;
    }
    return CTL_EXIT_OK;
}

int ctl_parse_opts(const char *cmd, const char *help, int argc, char **argv, const char **url,
                   int *json, long long *wait_s)
{
    ctl_option opts[3] = {{"url", url, NULL}};
    const char *wait = NULL;
    size_t n = 1;
    if (json != NULL)
        opts[n++] = (ctl_option){"json", NULL, json};
    if (wait_s != NULL)
        opts[n++] = (ctl_option){"wait", &wait, NULL};
    int rc = ctl_parse_options(cmd, help, argc, argv, opts, n);
    if (rc != CTL_EXIT_OK || wait == NULL)
        return rc;
    if (ctl_parse_ll(wait, 0, 86400, wait_s) != 0) {
        ctl_err(cmd, "bad --wait '%s': want seconds, 0..86400", wait);
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

int ctl_print(const char *cmd, const ctl_buf *b)
{
    if (!ctl_buf_ok(b)) {
        ctl_err(cmd, "out of memory");
        return CTL_EXIT_FAIL;
    }
    fputs(ctl_buf_str(b), stdout);
    return CTL_EXIT_OK;
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
