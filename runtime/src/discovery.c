/* discovery.c - Answers saga.discover with what this participant is and does.
 *
 * The answer is built on a cnats thread from fields that are fixed once the
 * service runs (name, subscriptions, commands, gates, declared emits), so it
 * needs no lock. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saga/discovery.h"
#include "saga/wire.h"
#include "service_internal.h"

#ifndef SAGA_VERSION
#define SAGA_VERSION "0"
#endif

static saga_status emits_one(saga_service *svc, const char *type)
{
    size_t nl = strlen(svc->name);
    if (!saga_valid_type(type) || strncmp(type, svc->name, nl) != 0 || type[nl] != '.')
        return saga__fail(svc, SAGA_EVALIDATE, "emits: \"%s\" is not %s.<event>", type, svc->name);
    for (int i = 0; i < svc->nemits; i++)
        if (strcmp(svc->emits[i], type) == 0)
            return SAGA_OK;
    if (svc->nemits == SAGA_DISCOVERY_MAX_EMITS)
        return saga__fail(svc, SAGA_ETOOBIG, "emits: more than %d types", SAGA_DISCOVERY_MAX_EMITS);
    snprintf(svc->emits[svc->nemits++], sizeof(svc->emits[0]), "%s", type);
    return SAGA_OK;
}

saga_status saga_service_emits(saga_service *svc, const char *const types[])
{
    saga_status rv = SAGA_OK;
    for (size_t i = 0; types != NULL && types[i] != NULL && rv == SAGA_OK; i++)
        rv = emits_one(svc, types[i]);
    return rv;
}

static json_t *describe(const saga_service *svc)
{
    char host[256] = "", instance[300], vetoed[SAGA_TYPE_MAX + 1], subj[SAGA__SUBJECT_MAX];
    json_t *subs = json_array(), *emits = json_array(), *gates = json_array(),
           *endpoints = json_array();
    int vetoes = 0;

    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "unknown");
    snprintf(instance, sizeof(instance), "%s:%ld", host, (long)getpid());
    snprintf(vetoed, sizeof(vetoed), "%s.vetoed", svc->name);
    for (int i = 0; i < svc->nsubs; i++)
        json_array_append_new(subs, json_string(svc->subs[i].pattern));
    for (int i = 0; i < svc->nemits; i++) {
        json_array_append_new(emits, json_string(svc->emits[i]));
        vetoes |= strcmp(svc->emits[i], vetoed) == 0;
    }
    for (int i = 0; i < svc->ngates; i++)
        json_array_append_new(gates, json_string(svc->gates[i]));
    snprintf(subj, sizeof(subj), SAGA_SUBJ_CTL_FMT, svc->name, "stats");
    json_array_append_new(endpoints, json_string(subj));
    for (int i = 0; i < svc->ncmds; i++)
        json_array_append_new(endpoints, json_string(svc->cmds[i].subject));
    if (svc->metrics_port > 0) {
        /* A wildcard address listens everywhere: name this host instead. */
        char url[sizeof(host) + 64];
        const char *at = strcmp(svc->metrics_host, "0.0.0.0") == 0 ? host : svc->metrics_host;
        snprintf(url, sizeof(url), "http://%s:%d/metrics", at, svc->metrics_port);
        json_array_append_new(endpoints, json_string(url));
    }
    /* member: SAGA_INSTANCE or SAGA_PARTITIONS as given, "" for the only instance. */
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:b, s:o, s:s, s:o}", "name",
                     svc->name, "version", SAGA_VERSION, "instance", instance, "host", host, "pid",
                     (json_int_t)getpid(), "started_ms", (json_int_t)svc->started_ms,
                     "subscriptions", subs, "emits", emits, "gates", gates, "vetoes", vetoes,
                     "endpoints", endpoints, "member", svc->partition_spec, "partitions",
                     saga__partitions_json(svc));
}

static void on_discover(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    saga_service *svc = closure;
    (void)sub;
    const char *reply = natsMsg_GetReply(msg);
    json_t *j = reply != NULL ? describe(svc) : NULL;
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text != NULL)
        natsConnection_PublishString(nc, reply, text);
    free(text);
    json_decref(j);
    natsMsg_Destroy(msg);
}

saga_status saga__discovery_subscribe(saga_service *svc)
{
    natsStatus s =
        natsConnection_Subscribe(&svc->disc_sub, svc->tp.nc, SAGA_SUBJ_DISCOVER, on_discover, svc);
    if (s != NATS_OK)
        return saga__fail(svc, SAGA_ENATS, "subscribe %s: %s", SAGA_SUBJ_DISCOVER,
                          natsStatus_GetText(s));
    return SAGA_OK;
}
