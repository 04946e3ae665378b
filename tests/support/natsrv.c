/* natsrv.c - a real nats-server with JetStream on a free port in a temp directory, for
 * tests: a fleet of one broker (tools/fleet), tied to the test. */
#include "natsrv.h"

#include <stdio.h>
#include <stdlib.h>

#include "fleet.h"

enum {
    READY_TIMEOUT_MS = 20000, /* Generous: a loaded CI machine may start slowly. */
    STOP_TIMEOUT_MS = 10000,  /* SIGTERM grace before SIGKILL. */
    STORE_MB = 2048,          /* JetStream file store of one test. */
    ERR_CAP = 4096 + 256,
};

static const char BROKER[] = "nats";

struct tsrv {
    fleet *f;
    char url[64];
};

/* Prints why the server failed and the end of its log, which holds the real reason. */
static void report(const tsrv *s, const char *err)
{
    char tail[4096];

    fleet_log_tail(s->f, BROKER, tail, sizeof tail);
    fprintf(stderr, "natsrv: %s; end of its log:\n%s\n", err, tail);
}

static int launch(tsrv *s)
{
    char err[ERR_CAP];

    if (fleet_start_ready(s->f, BROKER, READY_TIMEOUT_MS, err, sizeof err) != 0) {
        report(s, err);
        fleet_stop(s->f, BROKER, STOP_TIMEOUT_MS);
        return -1;
    }
    fleet_url(s->f, BROKER, s->url, sizeof s->url);
    return 0;
}

int tsrv_start(tsrv **out)
{
    fleet_opts o = {.temp_prefix = "saga-test", .flags = FLEET_TIED};
    fleet_broker_opts b = {.max_file_mb = STORE_MB};
    char err[ERR_CAP];
    tsrv *s = NULL;

    if (out == NULL)
        return -1;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto fail;
    if (fleet_create(&s->f, &o, err, sizeof err) != 0 ||
        fleet_add_broker(s->f, BROKER, &b, err, sizeof err) != 0) {
        fprintf(stderr, "natsrv: %s\n", err);
        goto fail;
    }
    if (launch(s) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    tsrv_destroy(s);
    return -1;
}

int tsrv_restart_max_payload(tsrv *s, long long bytes)
{
    fleet_broker_opts b = {.max_file_mb = STORE_MB, .max_payload = bytes};
    char err[ERR_CAP];

    if (s == NULL || tsrv_stop(s) < 0)
        return -1;
    b.port = tsrv_port(s); /* clients reconnect where the server was */
    if (fleet_add_broker(s->f, BROKER, &b, err, sizeof err) != 0) {
        fprintf(stderr, "natsrv: %s\n", err);
        return -1;
    }
    return launch(s);
}

int tsrv_stop(tsrv *s)
{
    return s != NULL ? fleet_stop(s->f, BROKER, STOP_TIMEOUT_MS) : -1;
}

int tsrv_kill(tsrv *s)
{
    return s != NULL ? fleet_kill(s->f, BROKER) : -1;
}

int tsrv_restart(tsrv *s)
{
    if (s == NULL || tsrv_stop(s) < 0)
        return -1;
    return launch(s);
}

void tsrv_destroy(tsrv *s)
{
    if (s == NULL)
        return;
    fleet_destroy(s->f, 0);
    free(s);
}

const char *tsrv_url(const tsrv *s)
{
    return s->url;
}

int tsrv_port(const tsrv *s)
{
    fleet_status st;

    return fleet_get_status(s->f, BROKER, &st) == 0 ? st.port : -1;
}

const char *tsrv_dir(const tsrv *s)
{
    return fleet_home(s->f);
}

pid_t tsrv_pid(const tsrv *s)
{
    fleet_status st;

    return fleet_get_status(s->f, BROKER, &st) == 0 && st.alive ? st.pid : -1;
}

fleet *tsrv_fleet(tsrv *s)
{
    return s->f;
}
