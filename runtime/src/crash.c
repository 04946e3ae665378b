/* crash.c - Crash points: SIGKILL the process at a named step of the loop. */
#include "crash.h"
#include "log_internal.h"

#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int saga__crash_init(saga__crash *c, const char *spec)
{
    static const char *const known[] = {SAGA_CRASH_IN_HANDLER, SAGA_CRASH_AFTER_COMMIT,
                                        SAGA_CRASH_AFTER_PUBLISH, SAGA_CRASH_AFTER_ACK};
    memset(c, 0, sizeof(*c));
    if (spec == NULL || *spec == '\0')
        return 0;
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    int ok = 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strlen(known[i]) == n && strncmp(known[i], spec, n) == 0)
            ok = 1;
    if (!ok || n >= sizeof(c->point))
        return -1;
    c->nth = 1;
    if (colon != NULL) {
        char *end;
        errno = 0;
        long v = strtol(colon + 1, &end, 10);
        if (errno != 0 || end == colon + 1 || *end != '\0' || v < 1)
            return -1;
        c->nth = v;
    }
    memcpy(c->point, spec, n);
    c->point[n] = '\0';
    return 0;
}

void saga__crash_point(saga__crash *c, const char *point, const saga__store *st)
{
    if (c->point[0] == '\0' || strcmp(c->point, point) != 0)
        return;
    if (++c->seen == c->nth) {
        saga__log_flush(); /* what was logged happened; keep it for the reader */
        if (st != NULL)
            dprintf(STDERR_FILENO, "event=crash point=%s committed=%llu durable=%llu\n", point,
                    (unsigned long long)st->committed, (unsigned long long)st->durable);
        kill(getpid(), SIGKILL);
    }
}
