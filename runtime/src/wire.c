/* wire.c - Names of the dead-letter causes, generated from SAGA_DLQ_CAUSES. */
#include <string.h>

#include "saga/wire.h"

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
