/* service.c - Creating, configuring, running and stopping a saga service. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service_internal.h"
#include "random.h"

#define NATS_CLOSE_WAIT_MS 5000 /* cnats' threads ending at exit */

int64_t saga__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

saga_status saga__fail(saga_service *svc, saga_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(svc->err, sizeof(svc->err), fmt, ap);
    va_end(ap);
    return st;
}

const char *saga_service_last_error(const saga_service *svc)
{
    return svc ? svc->err : "";
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    if (src == NULL)
        src = "";
    size_t n = strlen(src);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* saga.ctl.<name>.faults: an empty request reads the plan; "k=v ..." changes
 * it; "clear" empties it. Runs on the service thread like any command, so
 * the plan needs no lock. */
static saga_status faults_cmd(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                              void *udata)
{
    saga_service *svc = udata;
    char spec[1024], err[256];
    char *out = NULL;
    saga_status st;
    (void)subject;
    if (len >= sizeof(spec)) {
        out = saga__faults_reply(&svc->faults, svc->name, "fault plan too long");
        goto reply;
    }
    memcpy(spec, data, len);
    spec[len] = '\0';
    if (saga__faults_apply(&svc->faults, spec, err, sizeof(err)) != 0) {
        out = saga__faults_reply(&svc->faults, svc->name, err);
        goto reply;
    }
    if (len > 0)
        SAGA__LOG(&svc->log, SAGA_LOG_INFO, "event=faults_set plan=\"%s\"", spec);
    out = saga__faults_reply(&svc->faults, svc->name, NULL);
reply:
    /* Out of memory: an empty reply, which the caller reads as no answer. */
    st = saga_ctx_reply(ctx, out != NULL ? out : "", out != NULL ? strlen(out) : 0);
    free(out);
    return st;
}

/* "<gate>.cleared": remember the clearance; handling it retries parked steps. */
static saga_status gate_cleared(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    char key[64];
    int64_t now = saga_ctx_now_ms(ctx);
    (void)udata;
    snprintf(key, sizeof(key), SAGA__GATE_KEY "%.*s", (int)strcspn(ev->type, "."), ev->type);
    return saga_ctx_put(ctx, ev->order_id, key, &now, sizeof(now));
}

/* Parses a list of participants ("fraud,kyc": SAGA_GATES, SAGA_VETOERS) into
 * names[*n], at most SAGA__MAX_GATES; what names the setting in errors. */
static int parse_participants(char names[][SAGA_PRODUCER_MAX + 1], int *n, const char *list,
                              const char *what, char *errbuf, size_t errlen)
{
    const char *p = list ? list : "";
    while (*p != '\0') {
        size_t len = strcspn(p, ", ");
        if (len > 0) {
            char name[SAGA_PRODUCER_MAX + 1];
            if (len > SAGA_PRODUCER_MAX || *n == SAGA__MAX_GATES)
                goto bad;
            memcpy(name, p, len);
            name[len] = '\0';
            if (!saga_valid_producer(name))
                goto bad;
            memcpy(names[(*n)++], name, len + 1);
        }
        p += len;
        p += strspn(p, ", ");
    }
    return 0;
bad:
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "%s \"%s\": want up to %d participant names", what, list,
                 SAGA__MAX_GATES);
    return -1;
}

int saga__service_accepts_veto(const saga_service *svc, const char *producer)
{
    for (int i = 0; i < svc->ngates; i++)
        if (strcmp(svc->gates[i], producer) == 0)
            return 1;
    for (int i = 0; i < svc->nvetoers; i++)
        if (strcmp(svc->vetoers[i], producer) == 0)
            return 1;
    return 0;
}

saga_status saga_service_create(saga_service **out, const saga_config *cfg, char *errbuf,
                                size_t errlen)
{
    saga_service *svc;
    saga_status rv = saga__config_check(cfg, errbuf, errlen);
    if (rv != SAGA_OK)
        return rv;
    svc = calloc(1, sizeof(*svc));
    if (svc == NULL)
        return SAGA_ENOMEM;
    svc->cfg = *cfg;
    saga__random_bytes((uint8_t *)&svc->span_rng, sizeof(svc->span_rng));
    if (copy_str(svc->name, sizeof(svc->name), cfg->name) != 0 ||
        copy_str(svc->nats_url, sizeof(svc->nats_url), cfg->nats_url) != 0 ||
        copy_str(svc->data_dir, sizeof(svc->data_dir), cfg->data_dir) != 0 ||
        copy_str(svc->stream, sizeof(svc->stream), cfg->stream) != 0 ||
        copy_str(svc->dlq_stream, sizeof(svc->dlq_stream), cfg->dlq_stream) != 0 ||
        copy_str(svc->crash_spec, sizeof(svc->crash_spec), cfg->crash_at) != 0 ||
        copy_str(svc->metrics_addr, sizeof(svc->metrics_addr), cfg->metrics_addr) != 0 ||
        copy_str(svc->nats_creds, sizeof(svc->nats_creds), cfg->nats_creds) != 0 ||
        copy_str(svc->nats_ca, sizeof(svc->nats_ca), cfg->nats_ca) != 0 ||
        copy_str(svc->nats_cert, sizeof(svc->nats_cert), cfg->nats_cert) != 0 ||
        copy_str(svc->nats_key, sizeof(svc->nats_key), cfg->nats_key) != 0) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "a configuration string is too long");
        rv = SAGA_EINVAL;
        goto fail_free;
    }
    svc->cfg.name = svc->name;
    svc->cfg.nats_url = svc->nats_url;
    svc->cfg.data_dir = svc->data_dir;
    svc->cfg.stream = svc->stream;
    svc->cfg.dlq_stream = svc->dlq_stream;
    svc->cfg.crash_at = svc->crash_spec;
    svc->cfg.metrics_addr = svc->metrics_addr;
    svc->cfg.nats_creds = svc->nats_creds;
    svc->cfg.nats_ca = svc->nats_ca;
    svc->cfg.nats_cert = svc->nats_cert;
    svc->cfg.nats_key = svc->nats_key;
    saga__metrics_init(&svc->mx);
    saga__metrics_init(&svc->mx_pub);
    saga__faults_init(&svc->faults);
    if (copy_str(svc->faults_spec, sizeof(svc->faults_spec), cfg->faults) != 0 ||
        saga__faults_apply(&svc->faults, svc->faults_spec, errbuf, errlen) != 0) {
        rv = SAGA_EINVAL;
        goto fail_free;
    }
    svc->cfg.faults = svc->faults_spec;
    if (parse_participants(svc->gates, &svc->ngates, cfg->gates, "SAGA_GATES", errbuf, errlen) !=
            0 ||
        parse_participants(svc->vetoers, &svc->nvetoers, cfg->vetoers, "SAGA_VETOERS", errbuf,
                           errlen) != 0) {
        rv = SAGA_EINVAL;
        goto fail_free;
    }
    svc->cfg.gates = NULL; /* parsed; the borrowed string is not kept */
    /* Checked by saga__config_check above. */
    saga_partition_set(cfg->instance, cfg->partitions, &svc->partitions, NULL, 0);
    svc->instanced = (cfg->instance != NULL && cfg->instance[0] != '\0') ||
                     (cfg->partitions != NULL && cfg->partitions[0] != '\0');
    if (svc->instanced)
        snprintf(svc->partition_spec, sizeof(svc->partition_spec), "%s",
                 cfg->instance != NULL && cfg->instance[0] != '\0' ? cfg->instance
                                                                   : cfg->partitions);
    svc->cfg.instance = svc->cfg.partitions = NULL; /* parsed, as the gates */
    svc->cfg.vetoers = NULL;
    if (svc->crash_spec[0] != '\0' && saga__crash_init(&svc->faults.crash, svc->crash_spec) != 0) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen,
                     "unknown crash point \"%s\" (in_handler, after_commit, "
                     "after_publish, after_ack, optionally :N)",
                     svc->crash_spec);
        rv = SAGA_EINVAL;
        goto fail_free;
    }
    svc->log.fn = cfg->log;
    svc->log.udata = cfg->log_udata;
    svc->log.level = cfg->log_level;
    svc->log.service = svc->name;
    if (saga__queue_init(&svc->q) != 0) {
        rv = SAGA_ENOMEM;
        goto fail_free;
    }
    pthread_mutex_init(&svc->stats_mu, NULL);
    saga__outlist_init(&svc->out);
    rv = saga__store_open(&svc->store, svc->data_dir, cfg->map_size,
                          !cfg->sync          ? SAGA__SYNC_NONE
                          : cfg->shared_flush ? SAGA__SYNC_SHARED
                                              : SAGA__SYNC_FULL);
    if (rv != SAGA_OK) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "%s", svc->store.err);
        goto fail_queue;
    }
    rv = saga__stats_load(&svc->store, &svc->stats, &svc->stats_since_ms, saga__now_ms());
    if (rv != SAGA_OK) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "load counters: %s", svc->store.err);
        goto fail_store;
    }
    rv = saga__partitions_check_store(svc);
    if (rv != SAGA_OK) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "%s", svc->err);
        goto fail_store;
    }
    svc->next_timer_ms = 0;
    char subject[SAGA__SUBJECT_MAX];
    snprintf(subject, sizeof(subject), SAGA_SUBJ_CTL_FMT, svc->name, SAGA_CTL_FAULTS);
    saga_service_add_command(svc, subject, faults_cmd, svc);
    *out = svc;
    return SAGA_OK;

fail_store:
    saga__store_close(&svc->store);
fail_queue:
    pthread_mutex_destroy(&svc->stats_mu);
    saga__queue_cleanup(&svc->q);
fail_free:
    free(svc);
    return rv;
}

saga_status saga_service_subscribe(saga_service *svc, const char *pattern, saga_event_fn fn,
                                   void *udata)
{
    const char *dot = pattern ? strchr(pattern, '.') : NULL;
    if (fn == NULL || dot == NULL || strchr(dot + 1, '.') != NULL || dot == pattern ||
        dot[1] == '\0' || strlen(pattern) > SAGA_TYPE_MAX)
        return saga__fail(svc, SAGA_EINVAL,
                          "bad pattern \"%s\": want producer.event, either may be *",
                          pattern ? pattern : "");
    for (const char *p = pattern; *p != '\0'; p++)
        if (!(*p == '.' || *p == '_' || *p == '*' || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9')))
            return saga__fail(svc, SAGA_EINVAL, "bad pattern \"%s\"", pattern);
    if (svc->nsubs == SAGA__MAX_SUBS)
        return saga__fail(svc, SAGA_EINVAL, "too many subscriptions (max %d)", SAGA__MAX_SUBS);
    saga__sub *s = &svc->subs[svc->nsubs];
    memset(s, 0, sizeof(*s));
    s->svc = svc;
    s->fn = fn;
    s->udata = udata;
    snprintf(s->pattern, sizeof(s->pattern), "%s", pattern);
    /* The longest name it gets, an instance's consumer of partition NN, must fit. */
    char consumer[SAGA__NAME_MAX];
    if (saga_consumer_name(svc->name, pattern, SAGA_PARTITIONS - 1, consumer, sizeof(consumer)) !=
        SAGA_OK)
        return saga__fail(svc, SAGA_EINVAL, "pattern \"%s\" makes too long a consumer name",
                          pattern);
    svc->nsubs++;
    return SAGA_OK;
}

saga_status saga_service_on_timer(saga_service *svc, saga_timer_fn fn, void *udata)
{
    svc->timer_fn = fn;
    svc->timer_udata = udata;
    return SAGA_OK;
}

saga_status saga_service_on_park_expired(saga_service *svc, saga_event_fn fn, void *udata)
{
    svc->expired_fn = fn;
    svc->expired_udata = udata;
    return SAGA_OK;
}

saga_status saga_service_on_precommit(saga_service *svc, saga_precommit_fn fn, void *udata)
{
    svc->precommit_fn = fn;
    svc->precommit_udata = udata;
    return SAGA_OK;
}

saga_status saga_service_add_command(saga_service *svc, const char *subject, saga_command_fn fn,
                                     void *udata)
{
    if (fn == NULL || subject == NULL || subject[0] == '\0' ||
        strlen(subject) >= SAGA__SUBJECT_MAX || strchr(subject, ' ') != NULL)
        return saga__fail(svc, SAGA_EINVAL, "bad command subject");
    if (svc->ncmds == SAGA__MAX_CMDS)
        return saga__fail(svc, SAGA_EINVAL, "too many commands (max %d)", SAGA__MAX_CMDS);
    saga__cmd *c = &svc->cmds[svc->ncmds++];
    memset(c, 0, sizeof(*c));
    c->svc = svc;
    c->fn = fn;
    c->udata = udata;
    snprintf(c->subject, sizeof(c->subject), "%s", subject);
    return SAGA_OK;
}

saga_status saga_service_run(saga_service *svc)
{
    saga_status rv = SAGA_OK;
    svc->started_ms = saga__now_ms();
    for (int i = 0; i < svc->ngates && rv == SAGA_OK; i++) {
        char pattern[SAGA_TYPE_MAX + 1];
        snprintf(pattern, sizeof(pattern), "%s.cleared", svc->gates[i]);
        rv = saga_service_subscribe(svc, pattern, gate_cleared, NULL);
    }
    /* Before connecting, so discovery can name the port from its first answer. */
    if (rv == SAGA_OK)
        rv = saga__metrics_start(svc);
    if (rv == SAGA_OK)
        rv = saga__transport_connect(svc);
    if (rv == SAGA_OK)
        rv = saga__transport_ensure_streams(svc);
    if (rv == SAGA_OK)
        rv = saga__loop_run(svc);
    saga__transport_close(svc);
    saga__metrics_stop(svc);
    SAGA__LOG(&svc->log, SAGA_LOG_INFO, "event=stopped status=%s", saga_status_name(rv));
    return rv;
}

void saga_service_stop(saga_service *svc)
{
    atomic_store(&svc->stop, 1);
}

void saga_service_destroy(saga_service *svc)
{
    if (svc == NULL)
        return;
    saga__store_close(&svc->store);
    saga__outlist_cleanup(&svc->out);
    saga__queue_cleanup(&svc->q);
    pthread_mutex_destroy(&svc->stats_mu);
    free(svc->sent);
    free(svc->cons);
    free(svc);
}

void saga_service_stats(const saga_service *svc, saga_stats *out)
{
    saga_service *s = (saga_service *)svc; /* the mutex is not part of the logical state */
    pthread_mutex_lock(&s->stats_mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->stats_mu);
    out->pending = saga__queue_len(&s->q) + (uint64_t)atomic_load(&s->inflight);
    int64_t since = atomic_load(&s->tp.pub_failing_since);
    int64_t now = saga__now_ms();
    out->publish_stalled_ms = since > 0 && now > since ? (uint64_t)(now - since) : 0;
}

void saga_library_cleanup(void)
{
    /* nats_Close alone returns at once and lets cnats' threads free their memory
     * while the process exits: a leak checker then sees half-freed objects. */
    nats_CloseAndWait(NATS_CLOSE_WAIT_MS);
}
