/* main.c - sagactl's entry point: global options, the table of subcommands,
 * and the NATS connection every subcommand shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fleet.h"
#include "saga/client.h"

/* CMake passes deploy/fleet's default home. */
#ifndef SAGACTL_FLEET_HOME
#define SAGACTL_FLEET_HOME "var"
#endif

typedef int (*cmd_fn)(const char *url, int argc, char **argv);

/* One table for dispatch and for the overview in --help. */
static const struct {
    const char *name;
    cmd_fn fn;
    const char *summary;
} commands[] = {
    {"place", ctl_cmd_place, "place an order (saga.cmd.order.place)"},
    {"cancel", ctl_cmd_cancel, "cancel an order (saga.cmd.order.cancel)"},
    {"get", ctl_cmd_get, "show one order's state across the participants"},
    {"trace", ctl_cmd_trace, "show one order's event timeline, compensations marked"},
    {"watch", ctl_cmd_watch, "print every event live until Ctrl-C"},
    {"stats", ctl_cmd_stats, "count orders by state; each participant's counters"},
    {"stock", ctl_cmd_stock, "set or read the stock of a SKU"},
    {"audit", ctl_cmd_audit, "check every invariant of the saga over the whole stream"},
    {"inject", ctl_cmd_inject, "change or clear a participant's fault plan at run time"},
    {"faults", ctl_cmd_faults, "show the fault plans of the participants"},
    {"dlq", ctl_cmd_dlq, "list, show, replay and purge dead letters (stream SAGA_DLQ)"},
    {"ping", ctl_cmd_ping, "exit 0 when NATS answers"},
    {"ready", ctl_cmd_ready, "exit 0 when a service answers its control subject"},
    {"svcstats", ctl_cmd_svcstats, "one service's runtime counters"},
    {"participants", ctl_cmd_participants, "list every participant that answers discovery"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sagactl [--url URL] COMMAND [ARGS...]\n"
               "       sagactl --help | --version | COMMAND --help\n\n"
               "Operator client of a saga fleet (NATS JetStream). Commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nGlobal options (also accepted after COMMAND):\n"
            "  --url URL   NATS server (default $SAGA_NATS_URL or " CTL_DEFAULT_URL ")\n"
            "  --help      show this help\n"
            "  --version   show the version\n\n"
            "Credentials: sagactl connects as the operator of the fleet in $SAGA_HOME\n"
            "(default " SAGACTL_FLEET_HOME "): $SAGA_HOME/auth/operator.creds and, for a\n"
            "TLS fleet, $SAGA_HOME/tls/{ca,client,client-key}.pem. SAGA_NATS_CREDS,\n"
            "SAGA_NATS_CA, SAGA_NATS_CERT and SAGA_NATS_KEY override each (docs/security.md).\n\n"
            "Exit status: 0 success; 1 refused, not found, violation or timeout;\n"
            "2 bad arguments; 3 NATS or a needed service does not answer.\n");
}

int main(int argc, char **argv)
{
    const char *url = getenv("SAGA_NATS_URL");
    int i = 1;
    int rc;

    if (url == NULL || *url == '\0')
        url = CTL_DEFAULT_URL;
    /* Global options come before the command; everything after it belongs to
     * the command, which accepts --url as well. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return CTL_EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("sagactl " CTL_VERSION "\n");
            return CTL_EXIT_OK;
        }
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) {
            url = argv[++i];
        } else if (strncmp(argv[i], "--url=", 6) == 0) {
            url = argv[i] + 6;
        } else {
            ctl_err(NULL, "bad option '%s' (see sagactl --help)", argv[i]);
            return CTL_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
        if (strcmp(argv[i], commands[k].name) == 0) {
            rc = commands[k].fn(url, argc - i, argv + i);
            /* Frees cnats' process-wide threads and memory, so leak checkers
             * see a clean exit. */
            nats_Close();
            return rc;
        }
    }
    ctl_err(NULL, "unknown command '%s' (see sagactl --help)", argv[i]);
    return CTL_EXIT_USAGE;
}

/* Reports asynchronous errors (a slow consumer in watch, mostly) that cnats
 * would otherwise drop silently. Runs on a cnats thread. */
static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    const char *text = NULL;
    (void)sub;
    (void)closure;
    /* A permissions violation names the subject: say whose rights were short. */
    if (err == NATS_NOT_PERMITTED && natsConnection_GetLastError(nc, &text) != NATS_OK &&
        text != NULL)
        fprintf(stderr,
                "sagactl: the server refused: %s (not allowed to this identity, see "
                "SAGA_NATS_CREDS and docs/security.md)\n",
                text);
    else
        fprintf(stderr, "sagactl: NATS: %s\n", natsStatus_GetText(err));
}

/* Where the fleet's files are: SAGA_HOME, else the repository's var/ as deploy/fleet
 * has it. */
static const char *ctl_home(void)
{
    const char *home = getenv("SAGA_HOME");
    return home != NULL && home[0] != '\0' ? home : SAGACTL_FLEET_HOME;
}

int ctl_connect(ctl_conn *c, const char *cmd, const char *url, int64_t wait_ms, int reconnect)
{
    natsOptions *o = NULL;
    natsStatus s;
    int64_t deadline = ctl_now_ms() + (wait_ms > 0 ? wait_ms : 0);
    int rc = CTL_EXIT_UNREACHABLE;

    char why[512];

    memset(c, 0, sizeof(*c));
    c->url = url;
    s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = fleet_set_servers(o, url); /* one server, or a cluster's nodes */
    if (s != NATS_OK) {
        ctl_err(cmd, "bad NATS URL '%s': %s", url, natsStatus_GetText(s));
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    /* The operator's identity of the fleet in SAGA_HOME, unless SAGA_NATS_CREDS and
     * the other settings say otherwise. */
    s = fleet_client_env(o, ctl_home(), "operator", why, sizeof why);
    if (s != NATS_OK) {
        ctl_err(cmd, "%s", why);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    s = natsOptions_SetName(o, "sagactl");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, CTL_CONNECT_TIMEOUT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, NULL);
    if (s == NATS_OK && reconnect) {
        s = natsOptions_SetMaxReconnect(o, -1);
        if (s == NATS_OK)
            s = natsOptions_SetReconnectWait(o, 250);
    } else if (s == NATS_OK) {
        s = natsOptions_SetAllowReconnect(o, false);
    }
    if (s != NATS_OK) {
        ctl_err(cmd, "bad NATS URL '%s': %s", url, natsStatus_GetText(s));
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    for (;;) {
        s = natsConnection_Connect(&c->nc, o);
        if (s == NATS_OK || ctl_now_ms() + CTL_POLL_MS > deadline)
            break;
        ctl_sleep_ms(CTL_POLL_MS);
    }
    if (s != NATS_OK) {
        ctl_err(cmd, "cannot reach NATS at %s: %s", url,
                saga_client_connect_error(s, why, sizeof why));
        goto out;
    }
    s = natsConnection_JetStream(&c->js, c->nc, NULL);
    if (s != NATS_OK) {
        ctl_err(cmd, "NATS at %s: no JetStream context: %s", url, natsStatus_GetText(s));
        natsConnection_Destroy(c->nc);
        c->nc = NULL;
        goto out;
    }
    rc = CTL_EXIT_OK;
out:
    natsOptions_Destroy(o);
    return rc;
}

void ctl_disconnect(ctl_conn *c)
{
    jsCtx_Destroy(c->js);
    if (c->nc != NULL) {
        natsConnection_Close(c->nc);
        natsConnection_Destroy(c->nc);
    }
    c->js = NULL;
    c->nc = NULL;
}

natsStatus ctl_request(ctl_conn *c, const char *subject, const void *data, size_t len,
                       int64_t timeout_ms, natsMsg **reply)
{
    /* The server's default max_payload; requests are tiny, this only
     * guards the int conversion cnats wants. */
    if (len > 1024 * 1024)
        return NATS_MAX_PAYLOAD;
    return natsConnection_Request(reply, c->nc, subject, data, (int)len, timeout_ms);
}

void ctl_inbox_close(natsSubscription *sub, natsInbox *inbox)
{
    if (sub != NULL) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    natsInbox_Destroy(inbox);
}

natsStatus ctl_next_msg(natsSubscription *sub, int64_t deadline, natsMsg **m)
{
    int64_t left = deadline - ctl_now_ms();
    *m = NULL;
    return left > 0 ? natsSubscription_NextMsg(m, sub, left) : NATS_TIMEOUT;
}
