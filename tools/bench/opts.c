/* opts.c - Parses the command line of saga-bench and saga-ceiling from their
 * declarative option tables and prints --help from the same tables. */
#include "opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void set_defaults(const bench_opt *t)
{
    for (; t->name != NULL; t++) {
        if (t->type == BENCH_OPT_INT)
            *(long long *)t->dst = t->def;
        else if (t->type == BENCH_OPT_STR)
            *(const char **)t->dst = t->sdef;
        else
            *(int *)t->dst = (int)t->def;
    }
}

/* Finds "name" (or, for flags, "no-name": *negated is set). */
static const bench_opt *lookup(const bench_opt *t, const char *name, size_t len, int *negated)
{
    *negated = 0;
    for (; t->name != NULL; t++) {
        if (strlen(t->name) == len && strncmp(t->name, name, len) == 0)
            return t;
        if (t->type == BENCH_OPT_FLAG && len == strlen(t->name) + 3 &&
            strncmp(name, "no-", 3) == 0 && strncmp(name + 3, t->name, len - 3) == 0) {
            *negated = 1;
            return t;
        }
    }
    return NULL;
}

static int store_int(const bench_opt *o, const char *val, char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0') {
        snprintf(err, errlen, "--%s: \"%s\" is not an integer", o->name, val);
        return -1;
    }
    if (v < o->min || v > o->max) {
        snprintf(err, errlen, "--%s: %lld is outside %lld..%lld", o->name, v, o->min, o->max);
        return -1;
    }
    *(long long *)o->dst = v;
    return 0;
}

int bench_opts_parse(const bench_opt *table, int argc, char **argv, char *err, size_t errlen)
{
    set_defaults(table);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return BENCH_OPTS_HELP;
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\"", a);
            return BENCH_OPTS_ERROR;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        int negated;
        const bench_opt *o = lookup(table, name, len, &negated);
        if (o == NULL) {
            snprintf(err, errlen, "unknown option \"%.*s\"", (int)(len + 2), a);
            return BENCH_OPTS_ERROR;
        }
        if (o->type == BENCH_OPT_FLAG) {
            if (eq != NULL) {
                snprintf(err, errlen, "--%s takes no value", o->name);
                return BENCH_OPTS_ERROR;
            }
            *(int *)o->dst = !negated;
            continue;
        }
        const char *val = eq != NULL ? eq + 1 : NULL;
        if (val == NULL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value (%s)", o->name, o->arg);
                return BENCH_OPTS_ERROR;
            }
            val = argv[++i];
        }
        if (o->type == BENCH_OPT_INT) {
            if (store_int(o, val, err, errlen) != 0)
                return BENCH_OPTS_ERROR;
        } else {
            *(const char **)o->dst = val;
        }
    }
    return BENCH_OPTS_OK;
}

void bench_opts_help(FILE *out, const bench_opt *table, const char *usage, const char *summary)
{
    fprintf(out, "Usage: %s\n\n%s\n\nOptions:\n", usage, summary);
    for (const bench_opt *o = table; o->name != NULL; o++) {
        char left[64];
        if (o->type == BENCH_OPT_FLAG)
            snprintf(left, sizeof(left), "--[no-]%s", o->name);
        else
            snprintf(left, sizeof(left), "--%s %s", o->name, o->arg);
        fprintf(out, "  %-24s %s", left, o->help);
        if (o->type == BENCH_OPT_INT)
            fprintf(out, " (default %lld)", o->def);
        else if (o->type == BENCH_OPT_FLAG)
            fprintf(out, " (default %s)", o->def ? "on" : "off");
        else if (o->sdef != NULL)
            fprintf(out, " (default %s)", o->sdef);
        fputc('\n', out);
    }
    fprintf(out, "  %-24s %s\n", "--help, -h", "show this help and exit");
}
