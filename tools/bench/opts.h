/* opts.h - The declarative settings table of the benchmark's executables: one
 * table per program gives each option's name, type, default, bounds and help,
 * so parsing, validation and --help share one source (as the services'
 * saga_app_setting table does). */
#ifndef BENCH_OPTS_H
#define BENCH_OPTS_H

#include <stddef.h>
#include <stdio.h>

typedef enum bench_opt_type {
    BENCH_OPT_INT,  /* --name N, checked against [min, max]; dst is long long * */
    BENCH_OPT_STR,  /* --name TEXT; dst is const char ** (points into argv) */
    BENCH_OPT_FLAG, /* --name sets 1, --no-name sets 0; dst is int * */
} bench_opt_type;

typedef struct bench_opt {
    const char *name; /* long option without the leading "--" */
    bench_opt_type type;
    long long def, min, max; /* INT default and bounds; FLAG default in def */
    const char *sdef;        /* STR default, may be NULL */
    void *dst;
    const char *arg;  /* what the value is, for --help ("N", "URL") */
    const char *help; /* one sentence */
} bench_opt;          /* a table ends with an entry whose name is NULL */

enum { BENCH_OPTS_OK = 0, BENCH_OPTS_HELP = 1, BENCH_OPTS_ERROR = -1 };

/* Stores every default, then parses argv. Returns BENCH_OPTS_OK,
 * BENCH_OPTS_HELP for --help/-h, or BENCH_OPTS_ERROR with the reason in err.
 * String values point into argv, which must outlive their use. */
int bench_opts_parse(const bench_opt *table, int argc, char **argv, char *err, size_t errlen);

/* Prints usage, the summary and one line per option with its default. */
void bench_opts_help(FILE *out, const bench_opt *table, const char *usage, const char *summary);

#endif
