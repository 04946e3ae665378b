/* query.c - Asking the running services: one order's state across all five
 * (saga.q.<svc>.order, JSON), a service's runtime counters (saga.ctl.<svc>.stats),
 * and the readiness checks deploy/fleet waits on (ping, ready). */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define REPLY_MAX (64 * 1024) /* cap on a service's JSON answer */

char *ctl_reply_copy(natsMsg *m)
{
    int len = natsMsg_GetDataLength(m);
    size_t n = len > 0 ? (size_t)len : 0;
    if (n > REPLY_MAX)
        n = REPLY_MAX;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    if (n > 0)
        memcpy(s, natsMsg_GetData(m), n);
    s[n] = '\0';
    return s;
}

int ctl_service_stats(ctl_conn *c, const char *svc, int64_t timeout_ms, char **json)
{
    char subject[128];
    natsMsg *reply = NULL;
    snprintf(subject, sizeof(subject), "saga.ctl.%s.stats", svc);
    if (ctl_request(c, subject, "", 0, timeout_ms, &reply) != NATS_OK)
        return -1;
    *json = ctl_reply_copy(reply);
    natsMsg_Destroy(reply);
    return *json != NULL ? 0 : -1;
}

int ctl_ask_all(ctl_conn *c, const char *ns, const char *what, const char *payload,
                char *replies[CTL_NSERVICES])
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    char wildcard[256], reply_to[256], subject[128];
    int answered = 0, rc = -1;

    for (int i = 0; i < CTL_NSERVICES; i++)
        replies[i] = NULL;
    /* All five are asked at once on one inbox, so a dead service costs one
     * timeout for the whole query, not one per service. */
    if (natsInbox_Create(&inbox) != NATS_OK)
        goto out;
    snprintf(wildcard, sizeof(wildcard), "%s.*", (const char *)inbox);
    if (natsConnection_SubscribeSync(&sub, c->nc, wildcard) != NATS_OK)
        goto out;
    for (int i = 0; i < CTL_NSERVICES; i++) {
        snprintf(subject, sizeof(subject), "saga.%s.%s.%s", ns, ctl_services[i], what);
        snprintf(reply_to, sizeof(reply_to), "%s.%d", (const char *)inbox, i);
        if (natsConnection_PublishRequestString(c->nc, subject, reply_to, payload) != NATS_OK)
            goto out;
    }
    natsConnection_Flush(c->nc);
    int64_t deadline = ctl_now_ms() + CTL_QUERY_TIMEOUT_MS;
    while (answered < CTL_NSERVICES) {
        int64_t left = deadline - ctl_now_ms();
        natsMsg *m = NULL;
        if (left <= 0)
            break;
        natsStatus s = natsSubscription_NextMsg(&m, sub, left);
        if (s == NATS_NO_RESPONDERS) {
            /* cnats swallows the server's "no responders" answer of a dead
             * service and says only that: its slot stays NULL. */
            natsMsg_Destroy(m);
            answered++;
            continue;
        }
        if (s != NATS_OK)
            break;
        const char *dot = strrchr(natsMsg_GetSubject(m), '.');
        long long i = -1;
        if (dot != NULL && ctl_parse_ll(dot + 1, 0, CTL_NSERVICES - 1, &i) == 0 &&
            replies[i] == NULL) {
            answered++;
            /* The server answers a request nobody serves with an empty
             * "no responders" status: that service is down. */
            if (!natsMsg_IsNoResponders(m))
                replies[i] = ctl_reply_copy(m);
        }
        natsMsg_Destroy(m);
    }
    rc = 0;
out:
    if (sub != NULL) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    natsInbox_Destroy(inbox);
    if (rc != 0) {
        for (int i = 0; i < CTL_NSERVICES; i++) {
            free(replies[i]);
            replies[i] = NULL;
        }
    }
    return rc;
}

int ctl_query_order(ctl_conn *c, const char *order_id, char *replies[CTL_NSERVICES])
{
    return ctl_ask_all(c, "q", "order", order_id, replies);
}

static const char get_help[] =
    "usage: sagactl get ORDER_ID [--json] [--wait SECONDS] [--url URL]\n\n"
    "Shows one order's state, asking all five services (saga.q.<svc>.order) at\n"
    "once; a service that does not answer within 1 s shows as \"unavailable\".\n"
    "--wait polls until the order is CONFIRMED or CANCELLED (exit 1 if it is still\n"
    "pending when the time runs out). Exit 1 for an unknown order, 3 when the\n"
    "order service does not answer. --json prints\n"
    "{\"order_id\":..,\"state\":..,\"reason\":..,\"services\":{\"order\":{..},..}}.\n";

typedef struct order_view {
    char *replies[CTL_NSERVICES];
    char state[32];  /* PENDING, CONFIRMED, CANCELLED; UNKNOWN without the order service */
    char reason[64]; /* why it was cancelled */
    int found;       /* -1: the order service did not answer */
} order_view;

static void view_cleanup(order_view *v)
{
    for (int i = 0; i < CTL_NSERVICES; i++)
        free(v->replies[i]);
    memset(v, 0, sizeof(*v));
}

static int view_final(const order_view *v)
{
    return strcmp(v->state, "CONFIRMED") == 0 || strcmp(v->state, "CANCELLED") == 0;
}

static int view_load(ctl_conn *c, const char *order_id, order_view *v)
{
    memset(v, 0, sizeof(*v));
    if (ctl_query_order(c, order_id, v->replies) != 0)
        return -1;
    snprintf(v->state, sizeof(v->state), "UNKNOWN");
    v->found = -1;
    const char *order = v->replies[0];
    if (order != NULL) {
        int found = 0;
        v->found = ctl_json_get_bool(order, "found", &found) == 0 ? found : 1;
        if (ctl_json_get_str(order, "state", v->state, sizeof(v->state)) != 0)
            snprintf(v->state, sizeof(v->state), "UNKNOWN");
        for (char *p = v->state; *p != '\0'; p++)
            *p = (char)toupper((unsigned char)*p);
        if (ctl_json_get_str(order, "reason", v->reason, sizeof(v->reason)) != 0)
            v->reason[0] = '\0';
    }
    return 0;
}

static void view_print(const order_view *v, const char *order_id, int json)
{
    static const char *const skip[] = {"service", "order_id", NULL};
    ctl_buf b;
    ctl_buf_init(&b);
    if (json) {
        ctl_buf_puts(&b, "{");
        ctl_json_key(&b, 1, "order_id");
        ctl_json_str(&b, order_id);
        ctl_json_key(&b, 0, "state");
        ctl_json_str(&b, v->state);
        ctl_json_key(&b, 0, "reason");
        ctl_json_str(&b, v->reason[0] ? v->reason : NULL);
        ctl_json_key(&b, 0, "services");
        ctl_buf_puts(&b, "{");
        for (int i = 0; i < CTL_NSERVICES; i++) {
            ctl_json_key(&b, i == 0, ctl_services[i]);
            ctl_json_raw_object(&b, v->replies[i] != NULL ? v->replies[i] : "unavailable");
        }
        ctl_buf_puts(&b, "}}\n");
    } else {
        ctl_buf_printf(&b, "order %s: %s", order_id, v->state);
        if (v->reason[0])
            ctl_buf_printf(&b, " (%s)", v->reason);
        ctl_buf_puts(&b, "\n");
        for (int i = 0; i < CTL_NSERVICES; i++) {
            ctl_buf_printf(&b, "  %-13s ", ctl_services[i]);
            if (v->replies[i] != NULL)
                ctl_json_flatten(&b, v->replies[i], skip);
            else
                ctl_buf_puts(&b, "unavailable");
            ctl_buf_puts(&b, "\n");
        }
    }
    fputs(ctl_buf_str(&b), stdout);
    ctl_buf_cleanup(&b);
}

int ctl_cmd_get(const char *url, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"wait", required_argument, NULL, 'w'},
                                         {"url", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, rc = CTL_EXIT_USAGE, opt, waiting = 0;
    long long wait_s = 0;
    order_view v = {0};
    ctl_conn c = {0};

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'w':
            if (ctl_parse_ll(optarg, 0, 86400, &wait_s) != 0) {
                ctl_err("get", "bad --wait '%s': want seconds, 0..86400", optarg);
                return CTL_EXIT_USAGE;
            }
            waiting = 1;
            break;
        case 'U':
            url = optarg;
            break;
        case 'h':
            fputs(get_help, stdout);
            return CTL_EXIT_OK;
        default:
            return ctl_bad_option("get", argv, optind, optopt, opt);
        }
    }
    if (argc - optind != 1) {
        ctl_err("get", "want exactly one ORDER_ID (see sagactl get --help)");
        return CTL_EXIT_USAGE;
    }
    const char *id = argv[optind];
    if (!saga_valid_order_id(id)) {
        ctl_err("get", "'%s' is not an order id ([A-Za-z0-9_-]{1,64})", id);
        return CTL_EXIT_USAGE;
    }
    rc = ctl_connect(&c, "get", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    int64_t deadline = ctl_now_ms() + wait_s * 1000;
    for (;;) {
        view_cleanup(&v);
        if (view_load(&c, id, &v) != 0) {
            ctl_err("get", "cannot send the queries: connection to %s lost", url);
            rc = CTL_EXIT_UNREACHABLE;
            goto out;
        }
        if (v.found == 0) {
            ctl_err("get", "no such order: %s", id);
            rc = CTL_EXIT_FAIL;
            goto out;
        }
        /* Without --wait, one answer is the answer; with it, only a final
         * state ends the loop early (the order service may be restarting). */
        if (!waiting || view_final(&v) || ctl_now_ms() + CTL_POLL_MS > deadline)
            break;
        ctl_sleep_ms(CTL_POLL_MS);
    }
    view_print(&v, id, json);
    if (v.found < 0) {
        ctl_err("get", "the order service does not answer (saga.q.order.order)");
        rc = CTL_EXIT_UNREACHABLE;
    } else if (waiting && !view_final(&v)) {
        ctl_err("get", "order %s is still %s after %lld s", id, v.state, wait_s);
        rc = CTL_EXIT_FAIL;
    } else {
        rc = CTL_EXIT_OK;
    }
out:
    view_cleanup(&v);
    ctl_disconnect(&c);
    return rc;
}

/* Parses the options shared by svcstats, ready and ping. Returns CTL_EXIT_OK,
 * an exit code for bad options, or -1 when --help was printed (exit 0). */
static int parse_wait_opts(const char *cmd, const char *help, int argc, char **argv,
                           const char **url, int *json, long long *wait_s, int *nargs, int *first)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"wait", required_argument, NULL, 'w'},
                                         {"url", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            *json = 1;
            break;
        case 'w':
            if (ctl_parse_ll(optarg, 0, 86400, wait_s) != 0) {
                ctl_err(cmd, "bad --wait '%s': want seconds, 0..86400", optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'U':
            *url = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return -1;
        default:
            return ctl_bad_option(cmd, argv, optind, optopt, opt);
        }
    }
    *nargs = argc - optind;
    *first = optind;
    return CTL_EXIT_OK;
}

static const char ping_help[] =
    "usage: sagactl ping [--wait SECONDS] [--url URL]\n\n"
    "Exits 0 when the NATS server answers and JetStream is enabled; with --wait,\n"
    "keeps trying for that long (exit 3 if it never answers).\n";

int ctl_cmd_ping(const char *url, int argc, char **argv)
{
    int json = 0, nargs = 0, first = 0;
    long long wait_s = 0;
    ctl_conn c = {0};
    int rc = parse_wait_opts("ping", ping_help, argc, argv, &url, &json, &wait_s, &nargs, &first);
    if (rc < 0)
        return CTL_EXIT_OK;
    if (rc != CTL_EXIT_OK)
        return rc;
    if (nargs != 0) {
        ctl_err("ping", "unexpected argument '%s'", argv[first]);
        return CTL_EXIT_USAGE;
    }
    int64_t deadline = ctl_now_ms() + wait_s * 1000;
    rc = ctl_connect(&c, "ping", url, wait_s * 1000, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    /* A server that takes connections may still be recovering its JetStream
     * store; a service started then would fail to create its consumers. */
    for (;;) {
        jsAccountInfo *ai = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetAccountInfo(&ai, c.js, NULL, &jerr);
        jsAccountInfo_Destroy(ai);
        if (s == NATS_OK) {
            printf("NATS at %s: ok, JetStream enabled\n", url);
            break;
        }
        if (ctl_now_ms() + CTL_POLL_MS > deadline) {
            ctl_err("ping", "NATS at %s answers but JetStream does not: %s", url,
                    natsStatus_GetText(s));
            rc = CTL_EXIT_UNREACHABLE;
            break;
        }
        ctl_sleep_ms(CTL_POLL_MS);
    }
    ctl_disconnect(&c);
    return rc;
}

static const char ready_help[] =
    "usage: sagactl ready SERVICE [--wait SECONDS] [--url URL]\n\n"
    "Exits 0 when SERVICE answers saga.ctl.SERVICE.stats (it is connected and\n"
    "serving); with --wait, keeps asking for that long (exit 3 if it never does).\n";

int ctl_cmd_ready(const char *url, int argc, char **argv)
{
    int json = 0, nargs = 0, first = 0;
    long long wait_s = 0;
    ctl_conn c = {0};
    char *stats = NULL;
    int rc = parse_wait_opts("ready", ready_help, argc, argv, &url, &json, &wait_s, &nargs, &first);
    if (rc < 0)
        return CTL_EXIT_OK;
    if (rc != CTL_EXIT_OK)
        return rc;
    if (nargs != 1 || !saga_valid_producer(argv[first])) {
        ctl_err("ready", "want one SERVICE name, e.g. payment (see sagactl ready --help)");
        return CTL_EXIT_USAGE;
    }
    const char *svc = argv[first];
    int64_t deadline = ctl_now_ms() + wait_s * 1000;
    rc = ctl_connect(&c, "ready", url, wait_s * 1000, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    for (;;) {
        if (ctl_service_stats(&c, svc, CTL_QUERY_TIMEOUT_MS, &stats) == 0) {
            long long pid = 0;
            if (ctl_json_get_ll(stats, "pid", &pid) == 0)
                printf("%s: ready (pid %lld)\n", svc, pid);
            else
                printf("%s: ready\n", svc);
            rc = CTL_EXIT_OK;
            break;
        }
        if (ctl_now_ms() + CTL_POLL_MS > deadline) {
            ctl_err("ready", "%s does not answer on saga.ctl.%s.stats%s", svc, svc,
                    wait_s > 0 ? " in time" : "");
            rc = CTL_EXIT_UNREACHABLE;
            break;
        }
        ctl_sleep_ms(CTL_POLL_MS);
    }
    free(stats);
    ctl_disconnect(&c);
    return rc;
}

static const char svcstats_help[] =
    "usage: sagactl svcstats SERVICE [--json] [--url URL]\n\n"
    "Prints SERVICE's runtime counters (saga.ctl.SERVICE.stats): received,\n"
    "processed, duplicates, retried, dead_lettered, parked, pending, ...\n"
    "--json prints the service's own JSON object. Exit 3 if it does not answer.\n";

int ctl_cmd_svcstats(const char *url, int argc, char **argv)
{
    int json = 0, nargs = 0, first = 0;
    long long wait_s = 0;
    ctl_conn c = {0};
    char *stats = NULL;
    int rc = parse_wait_opts("svcstats", svcstats_help, argc, argv, &url, &json, &wait_s, &nargs,
                             &first);
    if (rc < 0)
        return CTL_EXIT_OK;
    if (rc != CTL_EXIT_OK)
        return rc;
    if (nargs != 1 || !saga_valid_producer(argv[first])) {
        ctl_err("svcstats", "want one SERVICE name, e.g. payment (see sagactl svcstats --help)");
        return CTL_EXIT_USAGE;
    }
    const char *svc = argv[first];
    rc = ctl_connect(&c, "svcstats", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (ctl_service_stats(&c, svc, CTL_QUERY_TIMEOUT_MS, &stats) != 0) {
        ctl_err("svcstats", "%s does not answer on saga.ctl.%s.stats", svc, svc);
        rc = CTL_EXIT_UNREACHABLE;
        goto out;
    }
    if (json) {
        ctl_buf b;
        ctl_buf_init(&b);
        ctl_json_raw_object(&b, stats);
        printf("%s\n", ctl_buf_str(&b));
        ctl_buf_cleanup(&b);
    } else {
        static const char *const skip[] = {"service", NULL};
        ctl_buf b;
        ctl_buf_init(&b);
        ctl_json_flatten(&b, stats, skip);
        printf("%s: %s\n", svc, ctl_buf_str(&b));
        ctl_buf_cleanup(&b);
    }
out:
    free(stats);
    ctl_disconnect(&c);
    return rc;
}
