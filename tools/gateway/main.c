/* main.c - saga-gateway's entry point: options, the HTTP server (libmicrohttpd,
 * one thread per connection, so that a live event stream may wait), request
 * bodies, and a clean stop on SIGTERM or SIGINT. */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define CONNECT_WAIT_MS 10000 /* NATS may still be starting with the fleet */
#define CONNECTION_LIMIT 64   /* each console holds one for its event stream */

static const char usage_text[] =
    "usage: saga-gateway [--listen ADDR:PORT] [--url URL]\n"
    "       saga-gateway --help | --version\n\n"
    "The fleet's HTTP front door and web console. Serves the order API\n"
    "  POST /orders                 place an order (JSON body; Idempotency-Key header)\n"
    "  GET  /orders/ID              its state and every participant's view\n"
    "  POST /orders/ID/cancel       cancel it\n"
    "and the console at / (fleet health, live orders, timelines, fault plans,\n"
    "dead letters, stock), all from this binary. It talks to the fleet over NATS\n"
    "as sagactl does. docs/operating.md describes every route.\n\n"
    "Options:\n"
    "  --listen ADDR:PORT  where to listen (default $SAGA_GATEWAY_ADDR or " DEFAULT_LISTEN ";\n"
    "                      port 0 picks a free one); an IPv4 address. Logged with\n"
    "                      event=ready url=...\n"
    "  --url URL           NATS server(s) (default $SAGA_NATS_URL, else the brokers of\n"
    "                      the fleet in $SAGA_HOME, else " CTL_DEFAULT_URL ")\n"
    "  --help, --version\n\n"
    "Stops cleanly on SIGTERM or SIGINT. Exit status: 0 after a clean stop, 2 on\n"
    "bad arguments, 3 when NATS cannot be reached or the address cannot be bound.\n";

/* One request's body as it arrives in pieces; freed when the request ends. */
typedef struct request {
    ctl_buf body;
    int too_big;
} request;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    request *r = *con_cls;
    (void)version;
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        ctl_buf_init(&r->body);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (r->body.len + *upload_size > GW_BODY_MAX)
            r->too_big = 1;
        else
            ctl_buf_add(&r->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_big || !ctl_buf_ok(&r->body))
        return gw_route(cls, conn, "TOO_BIG", url, "", 0);
    return gw_route(cls, conn, method, url, ctl_buf_str(&r->body), r->body.len);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    request *r = *con_cls;
    (void)cls;
    (void)conn;
    (void)code;
    if (r != NULL) {
        ctl_buf_cleanup(&r->body);
        free(r);
        *con_cls = NULL;
    }
}

/* "A.B.C.D:PORT" into sa. 0, or -1 when it is not one. */
static int parse_listen(const char *text, struct sockaddr_in *sa)
{
    char host[64];
    long long port;
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
        return -1;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1 || ctl_parse_ll(colon + 1, 0, 65535, &port))
        return -1;
    sa->sin_port = htons((uint16_t)port);
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = ctl_default_url(), *listen = getenv("SAGA_GATEWAY_ADDR");
    int version = 0;
    const ctl_option opts[] = {
        {"listen", &listen, NULL}, {"url", &url, NULL}, {"version", NULL, &version}};
    struct sockaddr_in sa;
    struct MHD_Daemon *d = NULL;
    gw_server s;
    sigset_t stop;
    int sig = 0, rc;

    ctl_set_program("saga-gateway");
    memset(&s, 0, sizeof(s));
    if (listen == NULL || *listen == '\0')
        listen = DEFAULT_LISTEN;
    rc = ctl_parse_options(NULL, usage_text, argc, argv, opts, sizeof(opts) / sizeof(opts[0]));
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    if (version) {
        printf("saga-gateway " CTL_VERSION "\n");
        return CTL_EXIT_OK;
    }
    if (optind < argc) {
        ctl_err(NULL, "unexpected argument '%s' (see saga-gateway --help)", argv[optind]);
        return CTL_EXIT_USAGE;
    }
    if (parse_listen(listen, &sa) != 0) {
        ctl_err(NULL, "bad --listen '%s': want IPV4:PORT, e.g. " DEFAULT_LISTEN, listen);
        return CTL_EXIT_USAGE;
    }
    /* Every thread started from here on (cnats', libmicrohttpd's) inherits the
     * mask, so the signals reach sigwait below and nothing else. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = ctl_connect(&s.conn, NULL, url, CONNECT_WAIT_MS, 1);
    if (rc != CTL_EXIT_OK)
        goto out;
    rc = CTL_EXIT_UNREACHABLE;
    if (gw_feed_create(&s.feed, &s.conn) != 0)
        goto out;
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (d == NULL) {
        ctl_err(NULL, "cannot listen on %s (in use, or not an address of this host)", listen);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char addr[INET_ADDRSTRLEN] = "127.0.0.1";
    inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof(addr));
    fprintf(stderr, "event=ready service=gateway url=http://%s:%u/ nats=%s\n", addr,
            info != NULL ? (unsigned)info->port : 0u, url);
    sigwait(&stop, &sig);
    fprintf(stderr, "event=stopping service=gateway signal=%d\n", sig);
    rc = CTL_EXIT_OK;
out:
    /* Live streams wait on the feed: wake them first, so that the daemon's
     * connection threads can end and MHD_stop_daemon return. */
    if (s.feed != NULL)
        gw_feed_close(s.feed);
    if (d != NULL)
        MHD_stop_daemon(d);
    gw_feed_destroy(s.feed);
    ctl_disconnect(&s.conn);
    nats_CloseAndWait(CTL_CLOSE_WAIT_MS);
    if (rc == CTL_EXIT_OK)
        fprintf(stderr, "event=stopped service=gateway\n");
    return rc;
}
