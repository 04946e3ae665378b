/* status.c - Text and symbolic names of saga_status, generated from SAGA_STATUS_MAP. */
#include "saga/status.h"

/* Both tables come from the one X-macro, so a status added to the map can never
 * be missing its text or its name. */
static const char *const texts[] = {
#define XX(name, text) text,
    SAGA_STATUS_MAP(XX)
#undef XX
};

static const char *const names[] = {
#define XX(name, text) #name,
    SAGA_STATUS_MAP(XX)
#undef XX
};

_Static_assert(sizeof(texts) / sizeof(texts[0]) == SAGA_STATUS_COUNT, "one text per status");
_Static_assert(sizeof(names) / sizeof(names[0]) == SAGA_STATUS_COUNT, "one name per status");

/* The enum's underlying type may be unsigned, so the range check is done on a
 * wider signed copy: a caller may pass any int cast to saga_status. */
static int in_range(saga_status st)
{
    long long v = (long long)st;
    return v >= 0 && v < (long long)SAGA_STATUS_COUNT;
}

const char *saga_strerror(saga_status st)
{
    return in_range(st) ? texts[st] : "unknown status";
}

const char *saga_status_name(saga_status st)
{
    return in_range(st) ? names[st] : "UNKNOWN";
}
