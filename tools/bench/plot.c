/* plot.c - saga-bench --plot: the figures as SVG charts, drawn here as plain text
 * (polylines, axes, a legend), so that the benchmark needs no plotting package.
 *
 * Two charts, each with the ceiling beside the runtime's modes: sagas completed
 * per second over the measured window, and the distribution of saga latency (a
 * CDF on a logarithmic time axis). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"

#define W 820
#define H 440
#define LEFT 70
#define RIGHT 200 /* room for the legend */
#define TOP 56
#define BOTTOM 56
#define PW (W - LEFT - RIGHT)
#define PH (H - TOP - BOTTOM)

/* One colour per series, in the order of the names: the ceiling (first when measured)
 * grey, the modes in distinct hues. */
static const char *const COLOURS[] = {"#7f7f7f", "#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
#define NCOLOURS (sizeof(COLOURS) / sizeof(COLOURS[0]))

typedef struct axis {
    double lo, hi;
    int log; /* logarithmic (base 10) */
} axis;

static double pos(const axis *a, double v, double len)
{
    if (a->log) {
        v = v > a->lo ? v : a->lo;
        return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) * len;
    }
    return (v - a->lo) / (a->hi - a->lo) * len;
}

static double px(const axis *x, double v)
{
    return LEFT + pos(x, v, PW);
}

static double py(const axis *y, double v)
{
    return TOP + PH - pos(y, v, PH);
}

/* A step of 1, 2 or 5 times a power of ten giving about five ticks over span. */
static double nice_step(double span)
{
    double raw = span / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/* text with XML's special characters escaped. */
static void put_text(FILE *fp, const char *text)
{
    for (; *text != '\0'; text++) {
        if (*text == '&')
            fputs("&amp;", fp);
        else if (*text == '<')
            fputs("&lt;", fp);
        else if (*text == '>')
            fputs("&gt;", fp);
        else
            fputc(*text, fp);
    }
}

static void header(FILE *fp, const char *title, const char *subtitle)
{
    fprintf(fp,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"22\" font-size=\"16\" font-weight=\"bold\">%s</text>\n"
            "<text x=\"%d\" y=\"40\" fill=\"#555\">",
            W, H, W, H, LEFT, title, LEFT);
    put_text(fp, subtitle);
    fputs("</text>\n", fp);
}

static void tick(FILE *fp, int vertical, double at, double v)
{
    if (vertical)
        fprintf(fp,
                "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e5e5e5\"/>\n"
                "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                at, TOP, at, TOP + PH, at, TOP + PH + 16, v);
    else
        fprintf(fp,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                LEFT, at, LEFT + PW, at, LEFT - 6, at + 4, v);
}

/* Grid, tick labels and axis titles. */
static void axes(FILE *fp, const axis *x, const axis *y, const char *xtitle, const char *ytitle)
{
    /* No point to scale to (a run without samples): a frame without ticks, not a
     * tick loop over an infinite range. */
    int ticks = isfinite(x->lo) && isfinite(x->hi) && isfinite(y->lo) && isfinite(y->hi);
    if (ticks && x->log) {
        for (double d = pow(10, floor(log10(x->lo))); d <= x->hi * 1.0001; d *= 10)
            for (int m = 1; m <= 5; m += m == 1 ? 1 : 3)
                if (d * m >= x->lo * 0.9999 && d * m <= x->hi * 1.0001)
                    tick(fp, 1, px(x, d * m), d * m);
    } else if (ticks) {
        double s = nice_step(x->hi - x->lo);
        for (double v = ceil(x->lo / s) * s; v <= x->hi + s / 1000; v += s)
            tick(fp, 1, px(x, v), v);
    }
    double s = ticks ? nice_step(y->hi - y->lo) : 0;
    for (double v = ceil(y->lo / s) * s; ticks && v <= y->hi + s / 1000; v += s)
        tick(fp, 0, py(y, v), v);
    fprintf(fp,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n"
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n"
            "<text transform=\"translate(18 %d) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
            LEFT, TOP, PW, PH, LEFT + PW / 2, H - 14, xtitle, TOP + PH / 2, ytitle);
}

static void legend(FILE *fp, int i, const char *name, const char *note)
{
    int y = TOP + 10 + i * 34;
    fprintf(fp,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>\n"
            "<text x=\"%d\" y=\"%d\">%s</text>\n"
            "<text x=\"%d\" y=\"%d\" fill=\"#555\" font-size=\"11\">%s</text>\n",
            W - RIGHT + 14, y, W - RIGHT + 38, y, COLOURS[i % NCOLOURS], W - RIGHT + 44, y + 4,
            name, W - RIGHT + 44, y + 18, note);
}

/* What a chart plots of a phase: npoints points, point i at (*x, *y), and the note
 * beside its name in the legend. */
typedef struct chart {
    size_t (*npoints)(const bench_phase *p);
    void (*point)(const bench_phase *p, size_t i, double *x, double *y);
    void (*note)(const bench_phase *p, char *buf, size_t cap);
} chart;

/* The smallest and largest x and y among the points of the selected phases (lo
 * INFINITY and hi -INFINITY when there are none). */
static void extent(const chart *c, const bench_phase *const *sel, size_t nnames, axis *x, axis *y)
{
    *x = (axis){INFINITY, -INFINITY, 0};
    *y = *x;
    for (size_t k = 0; k < nnames; k++) {
        for (size_t i = 0; sel[k] != NULL && i < c->npoints(sel[k]); i++) {
            double vx, vy;
            c->point(sel[k], i, &vx, &vy);
            x->lo = fmin(x->lo, vx);
            x->hi = fmax(x->hi, vx);
            y->lo = fmin(y->lo, vy);
            y->hi = fmax(y->hi, vy);
        }
    }
}

/* One polyline per selected phase, in the colour of its place k among the names,
 * with its legend entry; then the end of the chart. */
static void series(FILE *fp, const chart *c, const axis *x, const axis *y,
                   const bench_phase *const *sel, const char *const *names, size_t nnames)
{
    for (size_t k = 0; k < nnames; k++) {
        char note[64];
        if (sel[k] == NULL)
            continue;
        fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                COLOURS[k % NCOLOURS]);
        for (size_t i = 0; i < c->npoints(sel[k]); i++) {
            double vx, vy;
            c->point(sel[k], i, &vx, &vy);
            fprintf(fp, "%.1f,%.1f ", px(x, vx), py(y, vy));
        }
        fprintf(fp, "\"/>\n");
        c->note(sel[k], note, sizeof(note));
        legend(fp, (int)k, names[k], note);
    }
    fprintf(fp, "</svg>\n");
}

/* The first successful phase of kind named name, or NULL. */
static const bench_phase *first_run(const bench_phase *ph, size_t n, const char *name,
                                    const char *kind)
{
    for (size_t i = 0; i < n; i++)
        if (ph[i].ok && strcmp(ph[i].name, name) == 0 && strcmp(ph[i].kind, kind) == 0)
            return &ph[i];
    return NULL;
}

/* Seconds plotted of p: the last second is partial (the window ends in it), so it is
 * left out when there are others. */
static size_t seconds_of(const bench_phase *p)
{
    return p->load.nper_s > 1 ? p->load.nper_s - 1 : p->load.nper_s;
}

/* Throughput: sagas completed in each second, plotted at its middle. */
static void per_second(const bench_phase *p, size_t s, double *x, double *y)
{
    *x = (double)s + 0.5;
    *y = p->load.per_s[s];
}

static void overall_rate(const bench_phase *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.0f sagas/s overall", p->load.sagas_per_s);
}

static void throughput(FILE *fp, const bench_phase *const *sel, const char *const *names,
                       size_t nnames, const char *machine)
{
    static const chart c = {seconds_of, per_second, overall_rate};
    axis x, y;
    extent(&c, sel, nnames, &x, &y);
    /* Whole seconds from 0, room above the highest rate, and at least 1 on each. */
    x = (axis){0, fmax(1, x.hi + 0.5), 0};
    y = (axis){0, fmax(1, y.hi * 1.1), 0};
    header(fp, "Throughput over time: sagas completed per second", machine);
    axes(fp, &x, &y, "seconds since the first measured order", "sagas/s");
    series(fp, &c, &x, &y, sel, names, nnames);
}

/* Latency: the CDF's points, the share of sagas at most so long. */
static size_t cdf_points(const bench_phase *p)
{
    (void)p;
    return BENCH_CDF_POINTS;
}

static void cdf_point(const bench_phase *p, size_t i, double *x, double *y)
{
    *x = p->load.cdf_ms[i];
    *y = 100.0 * (double)i / (BENCH_CDF_POINTS - 1);
}

static void percentiles(const bench_phase *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "p50 %.*f ms, p99 %.*f ms", p->load.p50_ms < 10 ? 1 : 0, p->load.p50_ms,
             p->load.p99_ms < 10 ? 1 : 0, p->load.p99_ms);
}

static void latency(FILE *fp, const bench_phase *const *sel, const char *const *names,
                    size_t nnames, const char *machine)
{
    static const chart c = {cdf_points, cdf_point, percentiles};
    axis x, y;
    extent(&c, sel, nnames, &x, &y);
    /* Whole powers of ten at both ends, and never below 0.1 ms. */
    x.lo = pow(10, floor(log10(fmax(x.lo, 0.1))));
    x.hi = pow(10, ceil(log10(fmax(x.hi, x.lo * 10))));
    x.log = 1;
    y = (axis){0, 100, 0};
    header(fp, "Latency distribution: place to order.confirmed (CDF)", machine);
    axes(fp, &x, &y, "latency, ms (logarithmic)", "% of sagas at most this long");
    series(fp, &c, &x, &y, sel, names, nnames);
}

/* Writes dir/file with draw; -1 with errno set when it cannot be written. */
static int write_chart(const char *dir, const char *file,
                       void (*draw)(FILE *, const bench_phase *const *, const char *const *, size_t,
                                    const char *),
                       const bench_phase *const *sel, const char *const *names, size_t nnames,
                       const char *machine)
{
    char path[BENCH_PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *fp = fopen(path, "w");
    if (fp == NULL)
        return -1;
    draw(fp, sel, names, nnames, machine);
    int bad = ferror(fp);
    if (fclose(fp) != 0 || bad)
        return -1;
    return 0;
}

int bench_plot(const char *dir, const bench_phase *ph, size_t n, const char *const *names,
               size_t nnames, const char *kind, const char *machine)
{
    const bench_phase *sel[8] = {0};
    if (nnames > sizeof(sel) / sizeof(sel[0])) {
        errno = EINVAL;
        return -1;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -1;
    size_t found = 0;
    for (size_t k = 0; k < nnames; k++) {
        sel[k] = first_run(ph, n, names[k], kind);
        found += sel[k] != NULL;
    }
    if (found == 0) {
        errno = ENOENT; /* no phase to draw: an empty chart has no axes to scale */
        return -1;
    }
    if (write_chart(dir, "throughput.svg", throughput, sel, names, nnames, machine) != 0 ||
        write_chart(dir, "latency.svg", latency, sel, names, nnames, machine) != 0)
        return -1;
    return 0;
}
