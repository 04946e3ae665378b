/* conn.c - The NATS connection of sagactl and saga-gateway: connect (one server
 * or a cluster's list), request/reply, and the reply inboxes of commands that
 * ask several participants at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fleet.h"
#include "saga/client.h"

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
                "%s: the server refused: %s (not allowed to this identity, see "
                "SAGA_NATS_CREDS and docs/security.md)\n",
                ctl_program(), text);
    else
        fprintf(stderr, "%s: NATS: %s\n", ctl_program(), natsStatus_GetText(err));
}

const char *ctl_home(void)
{
    const char *home = getenv("SAGA_HOME");
    return home != NULL && home[0] != '\0' ? home : SAGACTL_FLEET_HOME;
}

const char *ctl_default_url(void)
{
    static char urls[4096];
    const char *url = getenv("SAGA_NATS_URL");
    if (url != NULL && url[0] != '\0')
        return url;
    url = fleet_home_urls(ctl_home(), urls, sizeof urls);
    return url != NULL ? url : CTL_DEFAULT_URL;
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
    s = natsOptions_SetName(o, ctl_program());
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
