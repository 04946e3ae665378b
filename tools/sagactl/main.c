/* main.c - sagactl's entry point: global options, the table of subcommands,
 * and the NATS connection every subcommand shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

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
            "  --url URL   NATS server(s) (default $SAGA_NATS_URL, else the brokers of the\n"
            "              fleet in $SAGA_HOME as deploy/fleet up started them, a\n"
            "              cluster's too, else " CTL_DEFAULT_URL ")\n"
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
    const char *url = ctl_default_url();
    int i = 1;
    int rc;

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
            nats_CloseAndWait(CTL_CLOSE_WAIT_MS);
            return rc;
        }
    }
    ctl_err(NULL, "unknown command '%s' (see sagactl --help)", argv[i]);
    return CTL_EXIT_USAGE;
}
