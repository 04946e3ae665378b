/* rescale.c - the hand-over of a running fleet; see rescale.h and docs/scaling.md. */
#include "rescale.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "instances.h"
#include "saga/wire.h"

enum { NAME_CAP = 64, DIR_CAP = 4096 };

/* The names and data directories of one side of a rescale: n instances of svc. */
typedef struct side {
    int n;
    char name[SAGA_PARTITIONS][NAME_CAP];
    char dir[SAGA_PARTITIONS][DIR_CAP];
} side;

int fleet_instances_running(fleet *f, const char *svc)
{
    int n = fleet_instances_count(f, svc);
    fleet_status st;

    if (n > 0)
        return n;
    return fleet_get_status(f, svc, &st) == 0 && !fleet_is_broker(f, svc);
}

/* n instances of svc, their data directories in parent. */
static void side_init(side *s, const char *svc, int n, const char *parent)
{
    s->n = n;
    for (int k = 1; k <= n; k++) {
        fleet_instance_name(s->name[k - 1], NAME_CAP, svc, k, n);
        snprintf(s->dir[k - 1], DIR_CAP, "%s/%s", parent, s->name[k - 1]);
    }
}

/* The directory the instances' data directories are in: that of the first one's, which
 * must be named after it as the fleet names them (SAGA_HOME/data/NAME). */
static int data_parent(const fleet *f, const char *first, char *parent, size_t cap, char *err,
                       size_t errlen)
{
    const char *dir = fleet_get_env(f, first, "SAGA_DATA_DIR");
    const char *slash = dir != NULL ? strrchr(dir, '/') : NULL;

    if (slash == NULL || strcmp(slash + 1, first) != 0 || (size_t)(slash - dir) >= cap) {
        snprintf(err, errlen, "%s: its SAGA_DATA_DIR (%s) is not .../%s: cannot place the new "
                 "instances' data beside it", first, dir != NULL ? dir : "unset", first);
        return -1;
    }
    snprintf(parent, cap, "%.*s", (int)(slash - dir), dir);
    return 0;
}

/* Moves every partition whose owner changes from side a to side b. */
static int move_all(const side *a, const side *b, fleet_rescale_report *rep, char *err,
                    size_t errlen)
{
    char why[512];

    for (int k = 1; k <= a->n; k++) {
        for (int j = 1; j <= b->n; j++) {
            uint32_t set = fleet_instances_moved(a->n, k, b->n, j);
            fleet_move *mv = &rep->moves[rep->nmoves];
            if (set == 0)
                continue;
            if (saga_store_move_partitions(a->dir[k - 1], b->dir[j - 1], set, &mv->rep, why,
                                           sizeof why) != 0) {
                snprintf(err, errlen, "moving partitions from %s to %s: %s", a->name[k - 1],
                         b->name[j - 1], why);
                return -1;
            }
            snprintf(mv->from, sizeof mv->from, "%s", a->name[k - 1]);
            snprintf(mv->to, sizeof mv->to, "%s", b->name[j - 1]);
            mv->partitions = set;
            rep->nmoves++;
        }
    }
    return 0;
}

/* Defines side b's processes like template (each with its own SAGA_INSTANCE and data
 * directory), then forgets side a's that b does not name. */
static int define_all(fleet *f, const side *a, const side *b, const char *template, char *err,
                      size_t errlen)
{
    for (int j = 1; j <= b->n; j++) {
        char inst[48], dir[DIR_CAP + 16];
        fleet_status st;
        snprintf(inst, sizeof inst, "SAGA_INSTANCE=%d/%d", j, b->n);
        snprintf(dir, sizeof dir, "SAGA_DATA_DIR=%s", b->dir[j - 1]);
        const char *env[] = {b->n > 1 ? inst : "SAGA_INSTANCE", dir, NULL};
        int rc = fleet_get_status(f, b->name[j - 1], &st) == 0
                     ? fleet_set_env(f, b->name[j - 1], env[0], err, errlen)
                     : fleet_add_like(f, b->name[j - 1], template, env, err, errlen);
        if (rc != 0)
            return -1;
    }
    for (int k = 1; k <= a->n; k++) {
        int kept = 0;
        for (int j = 1; j <= b->n; j++)
            kept |= strcmp(a->name[k - 1], b->name[j - 1]) == 0;
        if (!kept && fleet_remove(f, a->name[k - 1]) != 0) {
            snprintf(err, errlen, "cannot forget %s", a->name[k - 1]);
            return -1;
        }
    }
    return 0;
}

/* Starts side b, all before waiting for any. */
static int start_all(fleet *f, const side *b, int ready_ms, char *err, size_t errlen)
{
    int64_t deadline = fleet_now_ms() + ready_ms;

    for (int j = 0; j < b->n; j++)
        if (fleet_start(f, b->name[j], err, errlen) != 0)
            return -1;
    for (int j = 0; j < b->n; j++) {
        int64_t left = deadline - fleet_now_ms();
        if (fleet_wait_ready(f, b->name[j], left > 0 ? (int)left : 0, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int fleet_rescale(fleet *f, const char *svc, int m, int stop_ms, int ready_ms,
                  fleet_rescale_report *rep, char *err, size_t errlen)
{
    static side a, b; /* 128 KB of paths: not on the stack */
    char parent[DIR_CAP];
    const char *names[SAGA_PARTITIONS];
    int n = fleet_instances_running(f, svc);

    memset(rep, 0, sizeof *rep);
    rep->from = n;
    rep->to = m;
    if (n == 0) {
        snprintf(err, errlen, "no service '%s' in the fleet", svc);
        return -1;
    }
    if (m < 1 || m > SAGA_PARTITIONS) {
        snprintf(err, errlen, "%s: instances from 1 to %d, not %d", svc, SAGA_PARTITIONS, m);
        return -1;
    }
    if (m == n) {
        snprintf(err, errlen, "%s already runs %d instance%s", svc, n, n > 1 ? "s" : "");
        return -1;
    }
    if (n == 1 || m == 1) {
        snprintf(err, errlen, "%s: a hand-over from or to the only instance is not built yet", svc);
        return -1;
    }
    side_init(&a, svc, n, "");
    if (data_parent(f, a.name[0], parent, sizeof parent, err, errlen) != 0)
        return -1;
    side_init(&a, svc, n, parent);
    side_init(&b, svc, m, parent);
    for (int k = 0; k < n; k++)
        names[k] = a.name[k];

    int64_t t0 = fleet_now_ms();
    /* SIGTERM: each finishes its batch, acknowledges it and publishes its outbox. */
    rep->unclean = fleet_stop_names(f, names, n, stop_ms);
    if (rep->unclean < 0) {
        snprintf(err, errlen, "cannot stop the instances of %s", svc);
        return -1;
    }
    if (move_all(&a, &b, rep, err, errlen) != 0 ||
        define_all(f, &a, &b, a.name[0], err, errlen) != 0 ||
        start_all(f, &b, ready_ms, err, errlen) != 0)
        return -1;
    rep->pause_ms = fleet_now_ms() - t0;
    return 0;
}
