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
#include "saga/wire.h"

#define DISCOVER_QUIET_MS 150 /* after the first answer, how long to wait for more */
#define DISCOVER_MAX 256

/* The saga's five first, in the saga's order; any other participant after them, by name. */
static int rank(const char *name)
{
    static const char *const first[] = {"order", "payment", "inventory", "shipping",
                                        "notification"};
    for (int i = 0; i < (int)(sizeof(first) / sizeof(first[0])); i++)
        if (strcmp(first[i], name) == 0)
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
        int64_t left = deadline - ctl_now_ms();
        natsMsg *m = NULL;
        if (left <= 0)
            break;
        if (natsSubscription_NextMsg(&m, sub, left) != NATS_OK)
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
    if (sub != NULL) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    natsInbox_Destroy(inbox);
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
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"url", required_argument, NULL, 'u'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, o, rc;
    ctl_conn c;
    ctl_participant *v = NULL;
    size_t n = 0;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'j':
            json = 1;
            break;
        case 'u':
            url = optarg;
            break;
        case 'h':
            fputs(participants_help, stdout);
            return CTL_EXIT_OK;
        default:
            fputs(participants_help, stderr);
            return CTL_EXIT_USAGE;
        }
    }
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
