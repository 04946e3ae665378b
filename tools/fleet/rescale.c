/* rescale.c - the hand-over of a running fleet; see rescale.h and docs/scaling.md. */
#include "rescale.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "instances.h"
#include "saga/event.h"
#include "saga/wire.h"

enum { NAME_CAP = 64, DIR_CAP = 4096, PATTERNS_MAX = 64 };

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
        /* Through a local: GCC sees s->name and s->dir as one object. parent is a data
         * directory's parent, shorter than DIR_CAP less a name. */
        char dir[DIR_CAP];
        if (snprintf(dir, sizeof dir, "%s/%s", parent, s->name[k - 1]) >= (int)sizeof dir)
            dir[0] = '\0';
        memcpy(s->dir[k - 1], dir, sizeof dir);
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
        snprintf(err, errlen,
                 "%s: its SAGA_DATA_DIR (%s) is not .../%s: cannot place the new "
                 "instances' data beside it",
                 first, dir != NULL ? dir : "unset", first);
        return -1;
    }
    snprintf(parent, cap, "%.*s", (int)(slash - dir), dir);
    return 0;
}

/* Moves every partition whose owner changes from side a to side b; flags as
 * saga_store_move_partitions takes them. */
static int move_all(const side *a, const side *b, unsigned flags, fleet_rescale_report *rep,
                    char *err, size_t errlen)
{
    char why[512];

    for (int k = 1; k <= a->n; k++) {
        for (int j = 1; j <= b->n; j++) {
            uint32_t set = fleet_instances_moved(a->n, k, b->n, j);
            fleet_move *mv = &rep->moves[rep->nmoves];
            if (set == 0)
                continue;
            if (saga_store_move_partitions(a->dir[k - 1], b->dir[j - 1], set, flags, &mv->rep, why,
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

/* ---- consumers: one per event type, or one per type and partition --------------- */

/* Whether ci is one of svc's durable consumers: the only instance's of a pattern
 * (*partition -1, filter evt.*.PATTERN) or an instance's of a pattern and partition
 * (filter evt.P.PATTERN), named as the runtime names them. The pattern goes into
 * pattern. */
static int consumer_of(const jsConsumerInfo *ci, const char *svc, char *pattern, size_t cap,
                       int *partition)
{
    const char *filter = ci->Config != NULL ? ci->Config->FilterSubject : NULL;
    const char *dot = filter != NULL ? strchr(filter, '.') : NULL;
    const char *rest = dot != NULL ? strchr(dot + 1, '.') : NULL;
    char want[256], name[256];

    if (rest == NULL || ci->Name == NULL || strlen(rest + 1) >= cap)
        return 0;
    snprintf(pattern, cap, "%s", rest + 1);
    for (int p = -1; p < SAGA_PARTITIONS; p++) {
        if (p < 0)
            snprintf(want, sizeof want, SAGA_SUBJ_EVENTS_OF_FMT, pattern);
        else
            snprintf(want, sizeof want, SAGA_SUBJ_EVENT_FMT, (unsigned)p, pattern);
        if (strcmp(want, filter) == 0 &&
            saga_consumer_name(svc, pattern, p, name, sizeof name) == SAGA_OK &&
            strcmp(name, ci->Name) == 0) {
            *partition = p;
            return 1;
        }
    }
    return 0;
}

/* The stream sequence up to which consumer ci has had every event it filters
 * acknowledged: its acknowledgement floor, or last (the stream's last sequence, read
 * before ci) when nothing is pending, so that a type seldom seen does not hold the
 * floor far back. */
static uint64_t done_up_to(const jsConsumerInfo *ci, uint64_t last)
{
    return ci->NumPending == 0 && ci->NumAckPending == 0 ? last : ci->AckFloor.Stream;
}

/* One pattern of svc: its consumers now, and where the new ones start. */
typedef struct group {
    char pattern[128];
    const jsConsumerInfo *type; /* the only instance's, NULL when none */
    int parts;                  /* partition consumers */
    uint64_t done;              /* the least done_up_to of the partition consumers */
} group;

/* (Re)creates durable consumer name (filter filter) like like, delivering from stream
 * sequence start. A consumer of that name is deleted first: a repeat of a regroup
 * that failed half way starts it where it should. */
static natsStatus add_at(jsCtx *js, const jsConsumerConfig *like, const char *name,
                         const char *filter, uint64_t start, jsErrCode *jerr)
{
    jsConsumerConfig cc;
    char deliver[256];

    if (snprintf(deliver, sizeof deliver, SAGA_SUBJ_DELIVER_FMT, name) >= (int)sizeof deliver)
        return NATS_INVALID_ARG;
    js_DeleteConsumer(js, SAGA_STREAM_EVENTS, name, NULL, NULL);
    jsConsumerConfig_Init(&cc);
    cc.Durable = name;
    cc.DeliverSubject = deliver;
    cc.FilterSubject = filter;
    cc.DeliverPolicy = js_DeliverByStartSequence;
    cc.OptStartSeq = start;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = like->AckWait;
    cc.MaxDeliver = like->MaxDeliver;
    cc.MaxAckPending = like->MaxAckPending;
    return js_AddConsumer(NULL, js, SAGA_STREAM_EVENTS, &cc, NULL, jerr);
}

/* The only instance's consumer of g becomes one per partition, each starting after
 * its acknowledgement floor: what was done but not acknowledged comes again and the
 * inbox (copied to every instance) drops it. */
static natsStatus split(jsCtx *js, const char *svc, const group *g, uint64_t last, jsErrCode *jerr)
{
    char name[256], filter[256];
    uint64_t start = done_up_to(g->type, last) + 1;
    natsStatus s = NATS_OK;

    for (int p = 0; p < SAGA_PARTITIONS && s == NATS_OK; p++) {
        saga_consumer_name(svc, g->pattern, p, name, sizeof name);
        if (snprintf(filter, sizeof filter, SAGA_SUBJ_EVENT_FMT, (unsigned)p, g->pattern) >=
            (int)sizeof filter)
            return NATS_INVALID_ARG;
        s = add_at(js, g->type->Config, name, filter, start, jerr);
    }
    return s == NATS_OK ? js_DeleteConsumer(js, SAGA_STREAM_EVENTS, g->type->Name, NULL, jerr) : s;
}

/* The partition consumers of g become the only instance's one, starting after the
 * least of their floors (kept when it exists: a repeat after it was made). */
static natsStatus join(jsCtx *js, const char *svc, const group *g, const jsConsumerConfig *like,
                       jsErrCode *jerr)
{
    char name[256], filter[256];
    natsStatus s = NATS_OK;

    if (g->type == NULL) {
        saga_consumer_name(svc, g->pattern, -1, name, sizeof name);
        if (snprintf(filter, sizeof filter, SAGA_SUBJ_EVENTS_OF_FMT, g->pattern) >=
            (int)sizeof filter)
            return NATS_INVALID_ARG;
        s = add_at(js, like, name, filter, g->done + 1, jerr);
    }
    for (int p = 0; p < SAGA_PARTITIONS && s == NATS_OK; p++) {
        saga_consumer_name(svc, g->pattern, p, name, sizeof name);
        s = js_DeleteConsumer(js, SAGA_STREAM_EVENTS, name, NULL, jerr);
        if (s == NATS_NOT_FOUND)
            s = NATS_OK;
    }
    return s;
}

/* svc's consumers grouped by pattern, from list. Returns how many groups. */
static int group_consumers(const jsConsumerInfoList *list, const char *svc, uint64_t last, group *g,
                           const jsConsumerConfig **like)
{
    int ng = 0;

    for (int i = 0; i < list->Count; i++) {
        const jsConsumerInfo *ci = list->List[i];
        char pattern[128];
        int p, k = 0;
        if (!consumer_of(ci, svc, pattern, sizeof pattern, &p))
            continue;
        while (k < ng && strcmp(g[k].pattern, pattern) != 0)
            k++;
        if (k == ng) {
            if (ng == PATTERNS_MAX)
                continue;
            memset(&g[ng], 0, sizeof g[ng]);
            snprintf(g[ng].pattern, sizeof g[ng].pattern, "%s", pattern);
            g[ng].done = UINT64_MAX;
            like[ng++] = ci->Config;
        }
        if (p < 0) {
            g[k].type = ci;
        } else {
            uint64_t d = done_up_to(ci, last);
            g[k].parts++;
            g[k].done = d < g[k].done ? d : g[k].done;
        }
    }
    return ng;
}

/* Changes svc's consumers to one per type and partition (to_partitions) or to one
 * per type, each pattern once; *made counts the patterns changed. svc is stopped. */
static int regroup(fleet *f, const char *svc, int to_partitions, int *made, char *err,
                   size_t errlen)
{
    static group g[PATTERNS_MAX];
    const jsConsumerConfig *like[PATTERNS_MAX];
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsConsumerInfoList *list = NULL;
    jsErrCode jerr = 0;
    natsStatus s;

    if (fleet_jetstream(f, &nc, &js) != 0) {
        snprintf(err, errlen, "no broker answers: the consumers of %s cannot change", svc);
        return -1;
    }
    /* The stream's last sequence before the consumers are read: each consumer with
     * nothing pending then has done everything up to it. */
    s = js_GetStreamInfo(&si, js, SAGA_STREAM_EVENTS, NULL, &jerr);
    if (s == NATS_OK)
        s = js_Consumers(&list, js, SAGA_STREAM_EVENTS, NULL, &jerr);
    if (s == NATS_OK) {
        uint64_t last = si->State.LastSeq;
        int ng = group_consumers(list, svc, last, g, like);
        for (int k = 0; k < ng && s == NATS_OK; k++) {
            int change = to_partitions ? g[k].type != NULL : g[k].parts > 0;
            if (change)
                s = to_partitions ? split(js, svc, &g[k], last, &jerr)
                                  : join(js, svc, &g[k], like[k], &jerr);
            *made += change && s == NATS_OK;
        }
    }
    if (s != NATS_OK)
        snprintf(err, errlen, "changing the consumers of %s: %s (jetstream error %d)", svc,
                 natsStatus_GetText(s), (int)jerr);
    jsConsumerInfoList_Destroy(list);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return s == NATS_OK ? 0 : -1;
}

/* ---- the procedure ------------------------------------------------------------- */

/* Renames data directory from to to (payment <-> payment-1 between one instance and
 * several); done already when only to exists. */
static int rename_data(const char *from, const char *to, char *err, size_t errlen)
{
    int has_from = access(from, F_OK) == 0, has_to = access(to, F_OK) == 0;

    if (!has_from && has_to)
        return 0;
    if (has_to || rename(from, to) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", from, to,
                 has_to ? "it exists (data of an earlier run?): move it away first"
                        : strerror(errno));
        return -1;
    }
    return 0;
}

/* The file of svc's hand-over plan in the fleet's home into buf; NULL for a service
 * whose global state the fleet does not know how to re-split (all but inventory, whose
 * stock it re-splits with inv_handover.h). */
static const char *plan_path(fleet *f, const char *svc, char *buf, size_t cap)
{
    if (strcmp(svc, "inventory") != 0)
        return NULL;
    snprintf(buf, cap, "%s/handover-%s.json", fleet_home(f), svc);
    return buf;
}

int fleet_rescale_pending(fleet *f, const char *svc, int *to)
{
    char path[DIR_CAP];
    return plan_path(f, svc, path, sizeof path) != NULL ? inv_handover_pending(path, to) : 0;
}

/* Inventory's stock plan from side a's stores to side b's (b->dir as they are while
 * the stores change), before any store changes; or the one an unfinished hand-over
 * left. */
static int stock_plan(const side *a, const side *b, const char *plan, fleet_rescale_report *rep,
                      char *err, size_t errlen)
{
    const char *from[SAGA_PARTITIONS], *to[SAGA_PARTITIONS];
    uint32_t sets[SAGA_PARTITIONS] = {0};

    for (int k = 0; k < a->n; k++)
        from[k] = a->dir[k];
    for (int j = 0; j < b->n; j++) {
        to[j] = b->dir[j];
        for (int p = 0; p < SAGA_PARTITIONS; p++)
            sets[j] |= p % b->n == j ? 1u << p : 0;
    }
    rep->has_stock = 1;
    return inv_handover_plan(plan, from, a->n, to, sets, b->n, &rep->stock, err, errlen);
}

/* Fault injection for the operator's drills: saga-fleet kills itself (SIGKILL) when
 * SAGA_FLEET_CRASH_AT names point, as a crash or a power cut there would. */
static void crash_point(const char *point)
{
    const char *at = getenv("SAGA_FLEET_CRASH_AT");

    if (at == NULL || strcmp(at, point) != 0)
        return;
    fflush(stdout);
    fprintf(stderr, "saga-fleet: crash at %s (SAGA_FLEET_CRASH_AT)\n", point);
    raise(SIGKILL);
}

/* The records' part of the hand-over: with a stock plan, the plan first, then the
 * moves, then the stock set on every store as planned; else the moves. */
static int records_move(const side *a, const side *b, const char *plan, fleet_rescale_report *rep,
                        char *err, size_t errlen)
{
    int resumed;

    if (plan == NULL)
        return move_all(a, b, 0, rep, err, errlen);
    if (stock_plan(a, b, plan, rep, err, errlen) != 0)
        return -1;
    resumed = rep->stock.resumed;
    if (move_all(a, b, SAGA_MOVE_KEEP_GLOBAL, rep, err, errlen) != 0)
        return -1;
    crash_point("after_moves"); /* the records moved, the stock not yet re-split */
    if (inv_handover_apply(plan, -1, &rep->stock, err, errlen) != 0)
        return -1;
    rep->stock.resumed = resumed;
    return 0;
}

/* The store part of the hand-over: each moving partition to its new owner, and
 * between one instance and several the first instance's directory renamed (the
 * only instance's store gives and then becomes the first instance's; the first
 * instance's receives everything and becomes the only instance's). */
static int stores_move(side *a, side *b, const char *plan, fleet_rescale_report *rep, char *err,
                       size_t errlen)
{
    char first[DIR_CAP], why[512];
    /* While the stores change, the first new instance's store is the first old one's
     * when either side is the only instance; it is renamed after. */
    int renamed = a->n == 1 || b->n == 1;

    snprintf(first, sizeof first, "%s", b->dir[0]);
    if (renamed)
        snprintf(b->dir[0], DIR_CAP, "%s", a->dir[0]);
    int rc = records_move(a, b, plan, rep, err, errlen);
    snprintf(b->dir[0], DIR_CAP, "%s", first);
    if (rc != 0)
        return -1;
    if (b->n == 1 && saga_store_make_only(a->dir[0], why, sizeof why) != 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    return renamed ? rename_data(a->dir[0], b->dir[0], err, errlen) : 0;
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

/* Fills sides a (the n instances svc runs) and b (m) and starts *rep, after checking
 * the counts. */
static int sides(fleet *f, const char *svc, int n, int m, side *a, side *b,
                 fleet_rescale_report *rep, char *err, size_t errlen)
{
    char parent[DIR_CAP];

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
    side_init(a, svc, n, "");
    if (data_parent(f, a->name[0], parent, sizeof parent, err, errlen) != 0)
        return -1;
    side_init(a, svc, n, parent);
    side_init(b, svc, m, parent);
    return 0;
}

int fleet_rescale(fleet *f, const char *svc, int m, int stop_ms, int ready_ms,
                  fleet_rescale_report *rep, char *err, size_t errlen)
{
    static side a, b; /* 128 KB of paths: not on the stack */
    char planbuf[DIR_CAP];
    const char *names[SAGA_PARTITIONS];
    const char *plan = plan_path(f, svc, planbuf, sizeof planbuf);
    int n = fleet_instances_running(f, svc);

    if (sides(f, svc, n, m, &a, &b, rep, err, errlen) != 0)
        return -1;
    for (int k = 0; k < n; k++)
        names[k] = a.name[k];

    int64_t t0 = fleet_now_ms();
    /* SIGTERM: each finishes its batch, acknowledges it and publishes its outbox. */
    rep->unclean = fleet_stop_names(f, names, n, stop_ms);
    if (rep->unclean < 0) {
        snprintf(err, errlen, "cannot stop the instances of %s", svc);
        return -1;
    }
    if (stores_move(&a, &b, plan, rep, err, errlen) != 0) {
        /* Refused before any store changed (a service with global state the fleet
         * cannot re-split, stock that does not add up): as it was. A stock plan this
         * run wrote goes first: the instances change their stock from now on. */
        if (rep->nmoves == 0 && !rep->stock.resumed &&
            (plan == NULL || unlink(plan) == 0 || errno == ENOENT) &&
            start_all(f, &a, ready_ms, err + strlen(err), 0) == 0)
            snprintf(err + strlen(err), errlen - strlen(err), " (nothing moved: %s restarted)",
                     svc);
        return -1;
    }
    if (((n == 1 || m == 1) && regroup(f, svc, m > 1, &rep->consumers, err, errlen) != 0) ||
        define_all(f, &a, &b, a.name[0], err, errlen) != 0 ||
        start_all(f, &b, ready_ms, err, errlen) != 0)
        return -1;
    rep->pause_ms = fleet_now_ms() - t0;
    return 0;
}

int fleet_rescale_finish(fleet *f, const char *svc, fleet_rescale_report *rep, char *err,
                         size_t errlen)
{
    static side a, b;
    char planbuf[DIR_CAP];
    const char *plan = plan_path(f, svc, planbuf, sizeof planbuf);
    int n = fleet_instances_running(f, svc), m = 0;

    if (fleet_rescale_pending(f, svc, &m) != 1) {
        snprintf(err, errlen, "%s: no readable hand-over plan to finish", svc);
        return -1;
    }
    if (sides(f, svc, n, m, &a, &b, rep, err, errlen) != 0)
        return -1;
    if (n == 1 || m == 1) {
        snprintf(err, errlen,
                 "%s: the unfinished hand-over (plan %s) changes its consumers too, which "
                 "needs the broker: finish it with deploy/fleet scale %s %d while the others run",
                 svc, plan, svc, m);
        return -1;
    }
    return stores_move(&a, &b, plan, rep, err, errlen) == 0 &&
                   define_all(f, &a, &b, a.name[0], err, errlen) == 0
               ? 0
               : -1;
}
