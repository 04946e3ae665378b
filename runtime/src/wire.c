/* wire.c - Names of the wire contract that are computed: durable consumer
 * names, and the dead-letter causes generated from SAGA_DLQ_CAUSES. */
#include <stdio.h>
#include <string.h>

#include "saga/wire.h"

saga_status saga_durable_name(char *out, size_t cap, const char *participant, const char *pattern)
{
    int n = snprintf(out, cap, "%s_", participant);
    if (n < 0 || (size_t)n >= cap)
        goto too_long;
    for (const char *p = pattern; *p != '\0'; p++) {
        const char *part = *p == '*' ? "any" : *p == '.' ? "_" : NULL;
        size_t len = part != NULL ? strlen(part) : 1;
        if ((size_t)n + len >= cap)
            goto too_long;
        memcpy(out + n, part != NULL ? part : p, len);
        n += (int)len;
    }
    out[n] = '\0';
    return SAGA_OK;
too_long:
    if (cap > 0)
        out[0] = '\0';
    return SAGA_ETOOBIG;
}

static const struct {
    const char *name;
    int deliberate;
} causes[] = {
#define XX(e, name, deliberate) {name, deliberate},
    SAGA_DLQ_CAUSES(XX)
#undef XX
};

_Static_assert(sizeof(causes) / sizeof(causes[0]) == SAGA_DLQ_CAUSE_COUNT, "one name per cause");

static int in_range(saga_dlq_cause c)
{
    long long v = (long long)c;
    return v >= 0 && v < (long long)SAGA_DLQ_CAUSE_COUNT;
}

const char *saga_dlq_cause_name(saga_dlq_cause c)
{
    return in_range(c) ? causes[c].name : "unknown";
}

saga_dlq_cause saga_dlq_cause_parse(const char *name)
{
    for (int i = 0; name != NULL && i < (int)SAGA_DLQ_CAUSE_COUNT; i++)
        if (strcmp(causes[i].name, name) == 0)
            return (saga_dlq_cause)i;
    return SAGA_DLQ_CAUSE_COUNT;
}

int saga_dlq_cause_deliberate(saga_dlq_cause c)
{
    return in_range(c) ? causes[c].deliberate : 0;
}
