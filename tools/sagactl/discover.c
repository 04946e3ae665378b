/* discover.c - Who is in the fleet: every participant's answer on saga.discover.
 *
 * The fleet is whoever answers, so a participant that joins (in C or any
 * other language) shows up in every command that lists services, with no
 * change to sagactl. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "saga/config.h"
#include "saga/wire.h"

#define DISCOVER_QUIET_MS 150 /* after the first answer, how long to wait for more */
#define DISCOVER_MAX 256

/* The saga's five participants, in the saga's order: listed first, and shown
 * by fleet-wide commands even when one does not answer (it is then down, not
 * absent). Every other participant is whoever answers discovery. */
static const char *const saga_five[] = {"order", "payment", "inventory", "shipping",
                                        "notification"};
#define NFIVE ((int)(sizeof(saga_five) / sizeof(saga_five[0])))

/* The saga's five first, in the saga's order; any other participant after them, by name. */
static int rank(const char *name)
{
    for (int i = 0; i < NFIVE; i++)
        if (strcmp(saga_five[i], name) == 0)
            return i;
    return 100;
}

static int by_rank(const void *a, const void *b)
{
    const ctl_participant *x = a, *y = b;
    int d = rank(x->name) - rank(y->name);
    if (d != 0)
        return d;
    d = strcmp(x->name, y->name);
    return d != 0 ? d : strcmp(x->instance, y->instance);
}

static int has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i,
                       v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

/* Keeps an answer only if it carries a valid name: a stray reply is ignored. */
static int parse_answer(const char *text, size_t len, ctl_participant *p)
{
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    const char *name = NULL, *instance = "";
    if (j == NULL)
        return -1;
    if (json_unpack(j, "{s:s, s?s}", "name", &name, "instance", &instance) != 0 ||
        !saga_valid_producer(name)) {
        json_decref(j);
        return -1;
    }
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->instance, sizeof(p->instance), "%s", instance);
    p->json = j;
    return 0;
}

int ctl_discover(ctl_conn *c, int64_t timeout_ms, ctl_participant **out, size_t *n)
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    ctl_participant *v = NULL;
    size_t count = 0;
    int rc = -1;

    *out = NULL;
    *n = 0;
    v = calloc(DISCOVER_MAX, sizeof(*v));
    if (v == NULL || natsInbox_Create(&inbox) != NATS_OK ||
        natsConnection_SubscribeSync(&sub, c->nc, (const char *)inbox) != NATS_OK ||
        natsConnection_PublishRequestString(c->nc, SAGA_SUBJ_DISCOVER, (const char *)inbox, "") !=
            NATS_OK ||
        natsConnection_Flush(c->nc) != NATS_OK)
        goto out;
    /* Every participant answers once; the first answer comes within the
     * timeout or nobody is there, the rest follow within a quiet period. */
    int64_t deadline = ctl_now_ms() + timeout_ms;
    while (count < DISCOVER_MAX) {
        natsMsg *m = NULL;
        if (ctl_next_msg(sub, deadline, &m) != NATS_OK)
            break;
        if (!natsMsg_IsNoResponders(m) &&
            parse_answer(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &v[count]) == 0) {
            count++;
            int64_t quiet = ctl_now_ms() + DISCOVER_QUIET_MS;
            if (quiet < deadline)
                deadline = quiet;
        }
        natsMsg_Destroy(m);
    }
    qsort(v, count, sizeof(*v), by_rank);
    *out = v;
    *n = count;
    v = NULL;
    rc = 0;
out:
    ctl_inbox_close(sub, inbox);
    free(v);
    return rc;
}

void ctl_participants_free(ctl_participant *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        json_decref(v[i].json);
    free(v);
}

int ctl_participant_serves(const ctl_participant *p, const char *subject)
{
    return has_string(json_object_get(p->json, "endpoints"), subject);
}

/* ---- ctl_fleet ------------------------------------------------------------- */

int ctl_fleet_discover(ctl_fleet *f, ctl_conn *c, const char *cmd)
{
    memset(f, 0, sizeof(*f));
    if (ctl_discover(c, CTL_QUERY_TIMEOUT_MS, &f->p, &f->np) != 0) {
        ctl_err(cmd, "cannot send the discovery request: connection to %s lost", c->url);
        return CTL_EXIT_UNREACHABLE;
    }
    if (f->np == 0) {
        ctl_err(cmd, "no participant answered on %s: is the fleet up? (deploy/fleet status)",
                SAGA_SUBJ_DISCOVER);
        return CTL_EXIT_UNREACHABLE;
    }
    return CTL_EXIT_OK;
}

static void release_rows(ctl_fleet *f)
{
    for (size_t i = 0; i < f->n; i++)
        json_decref(f->replies[i]);
    free(f->replies);
    free((void *)f->names);
    f->replies = NULL;
    f->names = NULL;
    f->n = 0;
}

void ctl_fleet_cleanup(ctl_fleet *f)
{
    release_rows(f);
    ctl_participants_free(f->p, f->np);
    memset(f, 0, sizeof(*f));
}

int ctl_fleet_row(const ctl_fleet *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return (int)i;
    return -1;
}

int ctl_fleet_knows(const ctl_fleet *f, const char *name)
{
    if (rank(name) < NFIVE)
        return 1;
    for (size_t i = 0; i < f->np; i++)
        if (strcmp(f->p[i].name, name) == 0)
            return 1;
    return 0;
}

int ctl_fleet_unknown(const ctl_fleet *f, const char *cmd, const char *name)
{
    ctl_buf b;
    ctl_buf_init(&b);
    for (size_t i = 0; i < f->np; i++)
        if (i == 0 || strcmp(f->p[i].name, f->p[i - 1].name) != 0)
            ctl_buf_printf(&b, "%s%s", i ? ", " : "", f->p[i].name);
    ctl_err(cmd, "unknown participant '%s': want one of those that answered on %s: %s", name,
            SAGA_SUBJ_DISCOVER, ctl_buf_str(&b));
    ctl_buf_cleanup(&b);
    return CTL_EXIT_USAGE;
}

/* 1 when some instance of name serves subject. */
static int name_serves(const ctl_fleet *f, const char *name, const char *subject)
{
    for (size_t i = 0; i < f->np; i++)
        if (strcmp(f->p[i].name, name) == 0 && ctl_participant_serves(&f->p[i], subject))
            return 1;
    return 0;
}

/* Sets the rows: the five, then every other name (once) that serves the
 * subject. served[i] says whether row i is to be asked. */
static int make_rows(ctl_fleet *f, const char *fmt, const char *what, char *served)
{
    char subject[160];
    size_t cap = (size_t)NFIVE + f->np;
    f->names = calloc(cap, sizeof(*f->names));
    f->replies = calloc(cap, sizeof(*f->replies));
    if (f->names == NULL || f->replies == NULL)
        return -1;
    for (int i = 0; i < NFIVE; i++)
        f->names[f->n++] = saga_five[i];
    for (size_t i = 0; i < f->np; i++) {
        snprintf(subject, sizeof(subject), fmt, f->p[i].name, what);
        if (ctl_fleet_row(f, f->p[i].name) < 0 && name_serves(f, f->p[i].name, subject))
            f->names[f->n++] = f->p[i].name;
    }
    for (size_t i = 0; i < f->n; i++) {
        snprintf(subject, sizeof(subject), fmt, f->names[i], what);
        served[i] = (char)name_serves(f, f->names[i], subject);
    }
    return 0;
}

/* The partitions participant p owns when it is one of several instances of
 * its service (its discovery answer names a member, SAGA_INSTANCE or
 * SAGA_PARTITIONS); 0 for the only instance. */
static uint32_t instance_partitions(const ctl_participant *p)
{
    const char *member = json_string_value(json_object_get(p->json, "member"));
    json_t *v;
    size_t k;
    uint32_t set = 0;
    if (member == NULL || member[0] == '\0')
        return 0;
    json_array_foreach(json_object_get(p->json, "partitions"), k, v)
    {
        json_int_t q = json_integer_value(v);
        if (q >= 0 && q < SAGA_PARTITIONS)
            set |= 1u << q;
    }
    return set;
}

int ctl_fleet_instances(const ctl_fleet *f, const char *svc, uint32_t *sets, size_t cap, size_t *n,
                        char *err, size_t errlen)
{
    uint32_t owned = 0;
    *n = 0;
    for (size_t i = 0; i < f->np; i++) {
        if (strcmp(f->p[i].name, svc) != 0)
            continue;
        uint32_t set = instance_partitions(&f->p[i]);
        if (*n == cap || (owned & (set != 0 ? set : SAGA_PARTITION_SET_ALL)) != 0) {
            snprintf(err, errlen, "instances of %s answered with overlapping partitions", svc);
            return -1;
        }
        owned |= set != 0 ? set : SAGA_PARTITION_SET_ALL;
        sets[(*n)++] = set;
    }
    if (*n == 0) {
        snprintf(err, errlen, "%s did not answer on %s", svc, SAGA_SUBJ_DISCOVER);
        return -1;
    }
    if (owned != SAGA_PARTITION_SET_ALL) {
        char missing[64];
        saga_partition_set_format(SAGA_PARTITION_SET_ALL & ~owned, missing, sizeof(missing));
        snprintf(err, errlen, "no instance of %s answered for partitions %s (down?)", svc, missing);
        return -1;
    }
    return 0;
}

/* Adds the counters of add to those of into: a service of several instances
 * counts what all of them did. Identities and times are not counts. */
static void sum_counters(json_t *into, json_t *add)
{
    const char *key;
    json_t *v;
    if (into == NULL || add == NULL)
        return;
    json_object_foreach(add, key, v)
    {
        json_t *have = json_object_get(into, key);
        if (json_is_integer(v) && json_is_integer(have) && strcmp(key, "pid") != 0 &&
            strstr(key, "_ms") == NULL)
            json_object_set_new(into, key,
                                json_integer(json_integer_value(have) + json_integer_value(v)));
    }
}

/* Sends row i's request: once to name, or, when name runs as instances, to
 * the instance that owns the payload's partition (an order query) or to
 * every instance on its first partition (control: stats, faults). Returns the
 * requests sent, -1 on failure. */
static int ask_row(ctl_fleet *f, ctl_conn *c, size_t i, const char *fmt, const char *what,
                   const char *payload, const char *reply_to)
{
    char subject[160], routed[200];
    int ctl = strcmp(fmt, SAGA_SUBJ_CTL_FMT) == 0, sent = 0;
    snprintf(subject, sizeof(subject), fmt, f->names[i], what);
    for (size_t j = 0; j < f->np; j++) {
        uint32_t set = instance_partitions(&f->p[j]);
        if (set == 0 || strcmp(f->p[j].name, f->names[i]) != 0)
            continue;
        if (!ctl) {
            saga_routed_subject(subject, payload, routed, sizeof(routed));
            return natsConnection_PublishRequestString(c->nc, routed, reply_to, payload) == NATS_OK
                       ? 1
                       : -1;
        }
        snprintf(routed, sizeof(routed), SAGA_SUBJ_ROUTED_FMT, subject,
                 (unsigned)__builtin_ctz(set));
        if (natsConnection_PublishRequestString(c->nc, routed, reply_to, payload) != NATS_OK)
            return -1;
        sent++;
    }
    if (sent > 0)
        return sent;
    return natsConnection_PublishRequestString(c->nc, subject, reply_to, payload) == NATS_OK ? 1
                                                                                             : -1;
}

int ctl_fleet_ask(ctl_fleet *f, ctl_conn *c, const char *fmt, const char *what, const char *payload)
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    char wildcard[256], reply_to[256];
    char served[NFIVE + DISCOVER_MAX];
    size_t asked = 0, answered = 0;
    int rc = -1;

    release_rows(f);
    if (make_rows(f, fmt, what, served) != 0)
        goto out;
    /* All are asked at once on one inbox, so a dead participant costs one
     * timeout for the whole command, not one each. */
    if (natsInbox_Create(&inbox) != NATS_OK)
        goto out;
    snprintf(wildcard, sizeof(wildcard), "%s.*", (const char *)inbox);
    if (natsConnection_SubscribeSync(&sub, c->nc, wildcard) != NATS_OK)
        goto out;
    for (size_t i = 0; i < f->n; i++) {
        if (!served[i])
            continue;
        snprintf(reply_to, sizeof(reply_to), "%s.%zu", (const char *)inbox, i);
        int sent = ask_row(f, c, i, fmt, what, payload, reply_to);
        if (sent < 0)
            goto out;
        asked += (size_t)sent;
    }
    natsConnection_Flush(c->nc);
    int64_t deadline = ctl_now_ms() + CTL_QUERY_TIMEOUT_MS;
    while (answered < asked) {
        natsMsg *m = NULL;
        natsStatus s = ctl_next_msg(sub, deadline, &m);
        if (s == NATS_NO_RESPONDERS) {
            /* cnats swallows the server's "no responders" answer of a
             * participant gone since discovery: its row stays NULL. */
            natsMsg_Destroy(m);
            answered++;
            continue;
        }
        if (s != NATS_OK)
            break;
        const char *dot = strrchr(natsMsg_GetSubject(m), '.');
        long long i = -1;
        if (dot != NULL && ctl_parse_ll(dot + 1, 0, (long long)f->n - 1, &i) == 0) {
            json_t *r = natsMsg_IsNoResponders(m) ? NULL : ctl_reply_json(m);
            answered++;
            if (f->replies[i] == NULL)
                f->replies[i] = r;
            else
                sum_counters(f->replies[i], r);
            if (f->replies[i] != r)
                json_decref(r);
        }
        natsMsg_Destroy(m);
    }
    rc = 0;
out:
    ctl_inbox_close(sub, inbox);
    if (rc != 0)
        release_rows(f);
    return rc;
}

static void print_list(json_t *arr, const char *none)
{
    size_t i;
    json_t *s;
    if (json_array_size(arr) == 0)
        fputs(none, stdout);
    json_array_foreach(arr, i, s) printf("%s%s", i ? "," : "", json_string_value(s));
}

static const char participants_help[] =
    "usage: sagactl participants [--json] [--url URL]\n\n"
    "Lists every participant that answers on " SAGA_SUBJ_DISCOVER " (each instance\n"
    "once): name, instance, the event types it consumes and emits, its gates,\n"
    "whether it may veto. A participant that joins shows up here without any change\n"
    "to sagactl. --json prints the answers as an array. Exit 1 if nobody answers.\n";

int ctl_cmd_participants(const char *url, int argc, char **argv)
{
    int json = 0, rc;
    ctl_conn c;
    ctl_participant *v = NULL;
    size_t n = 0;
    rc = ctl_parse_opts("participants", participants_help, argc, argv, &url, &json, NULL);
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    if (optind < argc) {
        ctl_err("participants", "unexpected argument '%s'", argv[optind]);
        return CTL_EXIT_USAGE;
    }
    rc = ctl_connect(&c, "participants", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (ctl_discover(&c, CTL_QUERY_TIMEOUT_MS, &v, &n) != 0) {
        ctl_err("participants", "discovery request failed");
        rc = CTL_EXIT_UNREACHABLE;
        goto out;
    }
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append(arr, v[i].json);
        char *text = json_dumps(arr, JSON_COMPACT);
        printf("%s\n", text != NULL ? text : "[]");
        free(text);
        json_decref(arr);
    } else {
        for (size_t i = 0; i < n; i++) {
            json_t *j = v[i].json;
            printf("%-13s %-24s consumes ", v[i].name, v[i].instance);
            print_list(json_object_get(j, "subscriptions"), "-");
            printf("  emits ");
            print_list(json_object_get(j, "emits"), "-");
            if (json_array_size(json_object_get(j, "gates")) > 0) {
                printf("  gated by ");
                print_list(json_object_get(j, "gates"), "");
            }
            if (json_is_true(json_object_get(j, "vetoes")))
                printf("  vetoes");
            printf("\n");
        }
    }
    rc = n > 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    if (n == 0 && !json)
        ctl_err("participants", "no participant answered on %s", SAGA_SUBJ_DISCOVER);
out:
    ctl_participants_free(v, n);
    ctl_disconnect(&c);
    return rc;
}
