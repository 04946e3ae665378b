/* crash.h - Named crash points, so tests can kill a service at an exact step. */
#ifndef SAGA_CRASH_H
#define SAGA_CRASH_H

#include "store.h"

/* Known points. */
#define SAGA_CRASH_IN_HANDLER "in_handler"
#define SAGA_CRASH_AFTER_COMMIT "after_commit"
#define SAGA_CRASH_AFTER_PUBLISH "after_publish"
#define SAGA_CRASH_AFTER_ACK "after_ack" /* the batch's acks sent */

typedef struct saga__crash {
    char point[32]; /* empty: never crash */
    long nth;       /* crash on the nth time the point is reached */
    long seen;
} saga__crash;

/* Parses "point" or "point:n". Returns -1 for an unknown point or a bad n. */
int saga__crash_init(saga__crash *c, const char *spec);
/* Kills the process with SIGKILL (no cleanup, like a power cut of the
 * process) when spec names this point and it is reached the nth time.
 * Writes first, on stderr, "event=crash point=P committed=C durable=D":
 * st's commits, and how many of them were on the disk, so that a test can
 * take away what a machine crash at this point could undo (st may be NULL). */
void saga__crash_point(saga__crash *c, const char *point, const saga__store *st);

#endif
