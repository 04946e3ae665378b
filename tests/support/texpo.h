/* texpo.h - Reading the Prometheus text exposition in tests (unit tests of the
 * renderer, integration tests of GET /metrics). */
#ifndef SAGA_TEST_TEXPO_H
#define SAGA_TEST_TEXPO_H

#include <stdlib.h>
#include <string.h>

/* The value of the series whose line starts with "series " (name and labels
 * as written); -1 when absent. */
static inline double texpo_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

#endif
