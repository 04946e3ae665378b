/* query.c - Asking the running services: one order's state across all five
 * (saga.q.<svc>.order, JSON), a service's runtime counters (saga.ctl.<svc>.stats),
 * and the readiness checks deploy/fleet waits on (ping, ready). */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "saga/wire.h"

#define REPLY_MAX (64 * 1024) /* cap on a service's JSON answer */

json_t *ctl_reply_json(natsMsg *m)
{
    int len = natsMsg_GetDataLength(m);
    size_t n = len > 0 ? (size_t)len : 0;
    return ctl_json_reply(natsMsg_GetData(m), n > REPLY_MAX ? REPLY_MAX : n);
}

int ctl_service_stats(ctl_conn *c, const char *svc, int64_t timeout_ms, json_t **json)
{
    char subject[128];
    natsMsg *reply = NULL;
    snprintf(subject, sizeof(subject), SAGA_SUBJ_CTL_FMT, svc, "stats");
    if (ctl_request(c, subject, "", 0, timeout_ms, &reply) != NATS_OK)
        return -1;
    *json = ctl_reply_json(reply);
    natsMsg_Destroy(reply);
    return *json != NULL ? 0 : -1;
}

static const char get_help[] =
    "usage: sagactl get ORDER_ID [--json] [--wait SECONDS] [--url URL]\n\n"
    "Shows one order's state, asking every participant that serves\n"
    "saga.q.<name>.order (found on saga.discover) at once: the saga's five, then\n"
    "any other; one that does not answer within 1 s shows as \"unavailable\".\n"
    "--wait polls until the order is CONFIRMED or CANCELLED (exit 1 if it is still\n"
    "pending when the time runs out). Exit 1 for an unknown order, 3 when the\n"
    "order service does not answer. --json prints\n"
    "{\"order_id\":..,\"state\":..,\"reason\":..,\"services\":{\"order\":{..},..}}.\n";

static int view_final(const ctl_order_view *v)
{
    return strcmp(v->state, "CONFIRMED") == 0 || strcmp(v->state, "CANCELLED") == 0;
}

int ctl_order_view_load(ctl_conn *c, const char *order_id, ctl_order_view *v)
{
    if (ctl_fleet_ask(&v->fleet, c, SAGA_SUBJ_QUERY_FMT, "order", order_id) != 0)
        return -1;
    snprintf(v->state, sizeof(v->state), "UNKNOWN");
    v->reason[0] = '\0';
    v->found = -1;
    int row = ctl_fleet_row(&v->fleet, "order");
    json_t *order = row >= 0 ? v->fleet.replies[row] : NULL;
    if (order != NULL) {
        json_t *found = json_object_get(order, "found");
        const char *state = json_string_value(json_object_get(order, "state"));
        const char *reason = json_string_value(json_object_get(order, "reason"));
        v->found = json_is_boolean(found) ? json_is_true(found) : 1;
        snprintf(v->state, sizeof(v->state), "%s", state != NULL ? state : "UNKNOWN");
        for (char *p = v->state; *p != '\0'; p++)
            *p = (char)toupper((unsigned char)*p);
        snprintf(v->reason, sizeof(v->reason), "%s", reason != NULL ? reason : "");
    }
    return 0;
}

json_t *ctl_order_view_json(const ctl_order_view *v, const char *order_id)
{
    const ctl_fleet *f = &v->fleet;
    json_t *services = json_object();
    for (size_t i = 0; i < f->n; i++)
        json_object_set_new(services, f->names[i],
                            f->replies[i] != NULL ? json_incref(f->replies[i])
                                                  : json_string("unavailable"));
    return json_pack("{s:o, s:o, s:o, s:o}", "order_id", ctl_json_text(order_id), "state",
                     ctl_json_text(v->state), "reason",
                     ctl_json_text(v->reason[0] ? v->reason : NULL), "services", services);
}

static int view_print(const ctl_order_view *v, const char *order_id, int json)
{
    static const char *const skip[] = {"service", "order_id", NULL};
    const ctl_fleet *f = &v->fleet;
    if (json)
        return ctl_print_json("get", ctl_order_view_json(v, order_id));
    ctl_buf b;
    ctl_buf_init(&b);
    ctl_buf_printf(&b, "order %s: %s", order_id, v->state);
    if (v->reason[0])
        ctl_buf_printf(&b, " (%s)", v->reason);
    ctl_buf_puts(&b, "\n");
    for (size_t i = 0; i < f->n; i++) {
        ctl_buf_printf(&b, "  %-13s ", f->names[i]);
        if (f->replies[i] != NULL)
            ctl_json_flatten(&b, f->replies[i], skip);
        else
            ctl_buf_puts(&b, "unavailable");
        ctl_buf_puts(&b, "\n");
    }
    int rc = ctl_print("get", &b);
    ctl_buf_cleanup(&b);
    return rc;
}

int ctl_cmd_get(const char *url, int argc, char **argv)
{
    int json = 0, rc, waiting;
    long long wait_s = -1;
    ctl_order_view v;
    ctl_conn c = {0};

    memset(&v, 0, sizeof(v));
    rc = ctl_parse_opts("get", get_help, argc, argv, &url, &json, &wait_s);
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    waiting = wait_s >= 0;
    if (wait_s < 0)
        wait_s = 0;
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
    rc = ctl_fleet_discover(&v.fleet, &c, "get");
    if (rc != CTL_EXIT_OK)
        goto out;
    int64_t deadline = ctl_now_ms() + wait_s * 1000;
    for (;;) {
        if (ctl_order_view_load(&c, id, &v) != 0) {
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
    rc = view_print(&v, id, json);
    if (rc != CTL_EXIT_OK) {
        goto out;
    } else if (v.found < 0) {
        ctl_err("get", "the order service does not answer (saga.q.order.order)");
        rc = CTL_EXIT_UNREACHABLE;
    } else if (waiting && !view_final(&v)) {
        ctl_err("get", "order %s is still %s after %lld s", id, v.state, wait_s);
        rc = CTL_EXIT_FAIL;
    } else {
        rc = CTL_EXIT_OK;
    }
out:
    ctl_fleet_cleanup(&v.fleet);
    ctl_disconnect(&c);
    return rc;
}

static const char ping_help[] =
    "usage: sagactl ping [--wait SECONDS] [--url URL]\n\n"
    "Exits 0 when the NATS server answers and JetStream is enabled; with --wait,\n"
    "keeps trying for that long (exit 3 if it never answers).\n";

int ctl_cmd_ping(const char *url, int argc, char **argv)
{
    int json = 0;
    long long wait_s = 0;
    ctl_conn c = {0};
    int rc = ctl_parse_opts("ping", ping_help, argc, argv, &url, &json, &wait_s);
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    if (optind < argc) {
        ctl_err("ping", "unexpected argument '%s'", argv[optind]);
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
    int json = 0;
    long long wait_s = 0;
    ctl_conn c = {0};
    json_t *stats = NULL;
    int rc = ctl_parse_opts("ready", ready_help, argc, argv, &url, &json, &wait_s);
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    if (argc - optind != 1 || !saga_valid_producer(argv[optind])) {
        ctl_err("ready", "want one SERVICE name, e.g. payment (see sagactl ready --help)");
        return CTL_EXIT_USAGE;
    }
    const char *svc = argv[optind];
    int64_t deadline = ctl_now_ms() + wait_s * 1000;
    rc = ctl_connect(&c, "ready", url, wait_s * 1000, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    for (;;) {
        if (ctl_service_stats(&c, svc, CTL_QUERY_TIMEOUT_MS, &stats) == 0) {
            json_t *pid = json_object_get(stats, "pid");
            if (json_is_integer(pid))
                printf("%s: ready (pid %lld)\n", svc, (long long)json_integer_value(pid));
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
    json_decref(stats);
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
    int json = 0;
    long long wait_s = 0;
    ctl_conn c = {0};
    json_t *stats = NULL;
    int rc = ctl_parse_opts("svcstats", svcstats_help, argc, argv, &url, &json, &wait_s);
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    if (argc - optind != 1 || !saga_valid_producer(argv[optind])) {
        ctl_err("svcstats", "want one SERVICE name, e.g. payment (see sagactl svcstats --help)");
        return CTL_EXIT_USAGE;
    }
    const char *svc = argv[optind];
    rc = ctl_connect(&c, "svcstats", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (ctl_service_stats(&c, svc, CTL_QUERY_TIMEOUT_MS, &stats) != 0) {
        ctl_err("svcstats", "%s does not answer on saga.ctl.%s.stats", svc, svc);
        rc = CTL_EXIT_UNREACHABLE;
    } else if (json) {
        rc = ctl_print_json("svcstats", json_incref(stats));
    } else {
        static const char *const skip[] = {"service", NULL};
        ctl_buf b;
        ctl_buf_init(&b);
        ctl_buf_printf(&b, "%s: ", svc);
        ctl_json_flatten(&b, stats, skip);
        ctl_buf_puts(&b, "\n");
        rc = ctl_print("svcstats", &b);
        ctl_buf_cleanup(&b);
    }
    json_decref(stats);
    ctl_disconnect(&c);
    return rc;
}
