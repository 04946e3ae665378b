/* config.c - saga_config defaults and the SAGA_* environment overrides, read in one place.
 *
 * Every default is a named constant from service.h; every override is one
 * row of the table below, which also drives --help (saga__config_describe). */
#include "config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KIB (1LL << 10)
#define MIB (1LL << 20)
#define TIB (1LL << 40)
#define SECOND_MS 1000LL
#define HOUR_MS (3600 * SECOND_MS)
#define DAY_MS (24 * HOUR_MS)

#define GATES_WHAT "gates (SAGA_GATES)"
#define VETOERS_WHAT "vetoers (SAGA_VETOERS)"

/* FIELD(f, T) is offsetof(saga_config, f), and fails to compile (an array
 * of negative size) unless the field's type is T, so a row can never write
 * an int64 into an int. */
// clang-format off
#define FIELD(f, T)                                                            \
    (offsetof(saga_config, f) +                                                \
     0 * sizeof(char[_Generic(((saga_config *)0)->f, T: 1, default: -1)]))
// clang-format on

#define S_STRING(f) #f, SAGA__SETTING_STRING, FIELD(f, const char *)
#define S_INT(f) #f, SAGA__SETTING_INT, FIELD(f, int)
#define S_INT64(f) #f, SAGA__SETTING_INT64, FIELD(f, int64_t)
#define S_BOOL(f) #f, SAGA__SETTING_BOOL, FIELD(f, int), 0, 1
#define S_SIZE(f) #f, SAGA__SETTING_SIZE, FIELD(f, size_t)
#define S_LOGLEVEL(f) #f, SAGA__SETTING_LOGLEVEL, FIELD(f, saga_log_level), 0, SAGA_LOG_DEBUG

const saga__setting saga__config_settings[] = {
    {"SAGA_NATS_URL", S_STRING(nats_url), 1, SAGA__NATS_URL_MAX,
     "NATS server URL; several may be given, separated by commas.", SAGA__SETTING_REQUIRED},
    {"SAGA_DATA_DIR", S_STRING(data_dir), 1, SAGA__DATA_DIR_MAX,
     "Directory of the service's LMDB environment, created if missing. No default: the "
     "executable must set it or this variable.",
     SAGA__SETTING_REQUIRED},
    {NULL, S_STRING(stream), 1, SAGA__STREAM_MAX, "JetStream stream of the events.",
     SAGA__SETTING_REQUIRED},
    {NULL, S_STRING(dlq_stream), 1, SAGA__STREAM_MAX, "JetStream stream of dead letters.",
     SAGA__SETTING_REQUIRED},
    {"SAGA_BATCH_MAX", S_INT(batch_max), 1, 65536,
     "Messages per group commit: one LMDB commit (one fsync) per fetched batch.", 0},
    {"SAGA_ACK_WAIT_MS", S_INT64(ack_wait_ms), 100, DAY_MS,
     "Time before JetStream redelivers a message that was not acknowledged.", 0},
    {"SAGA_MAX_ACK_PENDING", S_INT(max_ack_pending), 1, 1000000,
     "Unacknowledged messages the broker lets the service have, over all its durable "
     "consumers, each of which gets an equal share (flow control). Above 4096, an "
     "authenticated nats-server 2.9 slows down while the service catches up on a backlog.",
     0},
    {"SAGA_MAX_DELIVER", S_INT(max_deliver), 1, 1000,
     "Deliveries of a failing message before it is dead-lettered.", 0},
    {"SAGA_RETRY_BASE_MS", S_INT64(retry_base_ms), 1, HOUR_MS,
     "First retry delay after a transient failure; doubles with each delivery.", 0},
    {"SAGA_RETRY_MAX_MS", S_INT64(retry_max_ms), 1, DAY_MS, "Cap on the retry delay.", 0},
    {"SAGA_RETENTION_MS", S_INT64(retention_ms), 1, 366 * DAY_MS,
     "How long processed event ids and finished sagas are kept; keep it longer than the "
     "broker's duplicate window and the redelivery span.",
     0},
    {NULL, S_INT64(dup_window_ms), SECOND_MS, DAY_MS,
     "Broker duplicate window set on the streams this service creates.", 0},
    {"SAGA_EVENTS_MAX_AGE_MS", S_INT64(events_max_age_ms), SAGA_DEFAULT_DUP_WINDOW_MS,
     3660 * DAY_MS,
     "How long the broker keeps events (MaxAge of the event stream, set when a service "
     "creates it; an existing stream keeps its own), at least the 2-minute duplicate window: "
     "longer than any outage a consumer must survive and the history sagactl trace and audit "
     "should see. The broker's memory grows with what it keeps.",
     0},
    {"SAGA_REPLICAS", S_INT(replicas), 1, 5,
     "Copies a JetStream cluster keeps of the event and dead-letter streams, set when a "
     "service creates them (an existing stream keeps its own): 3 on a 3-node cluster, "
     "so that losing one node loses nothing; 1 on a single server.",
     0},
    {"SAGA_PARK_TIMEOUT_MS", S_INT64(park_timeout_ms), 1, 30 * DAY_MS,
     "Default bound on how long a parked event waits for its predecessor.", 0},
    {NULL, S_INT64(publish_wait_ms), 1, HOUR_MS,
     "Bound on waiting for publish acks before the batch's publishes are retried.", 0},
    {"SAGA_SYNC", S_BOOL(sync),
     "1: every commit is fsync'd (durable); 0: MDB_NOSYNC, faster but a machine crash may "
     "lose the last commits.",
     0},
    {"SAGA_SHARED_FLUSH", S_BOOL(shared_flush),
     "With SAGA_SYNC=1: 1 flushes the disk once per commit (MDB_NOMETASYNC) instead of twice; "
     "a commit's meta page reaches the disk with the next commit's flush (or a sync when the "
     "service is idle), and only then are its events published and its messages "
     "acknowledged; pays where a flush is slow (more than ~1 ms). 0 (default): two flushes per "
     "commit, published at once.",
     0},
    {"SAGA_COMMIT_PER_MESSAGE", S_BOOL(commit_per_message),
     "1: one LMDB commit per message instead of per batch (for benchmarks).", 0},
    {"SAGA_CRASH_AT", S_STRING(crash_at), 1, SAGA__CRASH_AT_MAX,
     "Test fault: the crash point \"name[:n]\" at which the process aborts.", 0},
    {"SAGA_GATES", S_STRING(gates), 1, SAGA__GATES_MAX,
     "Participants whose clearance gates this service's steps, e.g. \"fraud\".", 0},
    {"SAGA_VETOERS", S_STRING(vetoers), 1, SAGA__GATES_MAX,
     "Participants whose vetoes (\"<p>.vetoed\") this service accepts, e.g. \"fraud\"; the "
     "participants of SAGA_GATES are accepted too. Any other veto is dead-lettered as forbidden.",
     0},
    {"SAGA_NATS_CREDS", S_STRING(nats_creds), 1, SAGA__PATH_MAX,
     "File holding the NATS user and password as one line \"USER:PASSWORD\", readable by its "
     "owner only (deploy/fleet writes one per identity under SAGA_HOME/auth/); unset: no "
     "authentication.",
     0},
    {"SAGA_NATS_CA", S_STRING(nats_ca), 1, SAGA__PATH_MAX,
     "PEM file of the CA the server's certificate must chain to, checked whenever the "
     "connection is TLS (a tls:// URL, or a server that requires TLS).",
     0},
    {"SAGA_NATS_CERT", S_STRING(nats_cert), 1, SAGA__PATH_MAX,
     "PEM client certificate (chain), for a server that verifies clients.", 0},
    {"SAGA_NATS_KEY", S_STRING(nats_key), 1, SAGA__PATH_MAX, "PEM private key of SAGA_NATS_CERT.",
     0},
    {"SAGA_FAULTS", S_STRING(faults), 1, SAGA__FAULTS_MAX,
     "Fault plan at start, e.g. \"error_rate=0.1,seed=7\" (see docs/failures.md).", 0},
    {"SAGA_METRICS_ADDR", S_STRING(metrics_addr), 1, SAGA__METRICS_ADDR_MAX,
     "Serve Prometheus metrics on GET /metrics at this \"ipv4:port\" (port 0: any free port, "
     "logged as event=metrics_listening); unset: no HTTP server.",
     0},
    {"SAGA_INSTANCE", S_STRING(instance), 3, 5,
     "\"i/n\": this process is instance i of n of its service and owns the partitions p "
     "with p % n == i - 1 (docs/scaling.md); its durable consumers are per partition. Unset "
     "(and no SAGA_PARTITIONS): the only instance, one consumer per event type.",
     0},
    {"SAGA_PARTITIONS", S_STRING(partitions), 1, SAGA__PARTITION_SPEC_MAX - 1,
     "The partitions this instance owns, e.g. \"0-7,12\" (0..15), instead of SAGA_INSTANCE.", 0},
    {"SAGA_LOG_LEVEL", S_LOGLEVEL(log_level), "Log level: error, warn, info or debug.", 0},
    {"SAGA_MAP_SIZE", S_SIZE(map_size), MIB, TIB,
     "Initial LMDB map size in bytes (suffix K, M, G or T); it grows when full.", 0},
};

const size_t saga__config_nsettings =
    sizeof(saga__config_settings) / sizeof(saga__config_settings[0]);

/* Appends to errbuf, so that every bad variable is named, not only the first. */
static void append_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    size_t used;
    if (errbuf == NULL || errlen == 0)
        return;
    used = strnlen(errbuf, errlen);
    if (used >= errlen - 1)
        return;
    if (used > 0) {
        snprintf(errbuf + used, errlen - used, "; ");
        used = strnlen(errbuf, errlen);
    }
    va_start(ap, fmt);
    vsnprintf(errbuf + used, errlen - used, fmt, ap);
    va_end(ap);
}

/* Whether v is within s's bounds; if not, names the setting (its field and,
 * if it has one, its variable) in errbuf. The environment and
 * saga__config_check() both come here, so a value is refused the same way
 * however it was set. shown is v as the user wrote it (for strings, the
 * string itself). */
static int within_bounds(const saga__setting *s, long long v, const char *shown, char *errbuf,
                         size_t errlen)
{
    if (v >= s->min && v <= s->max)
        return 1;
    append_err(errbuf, errlen, "%s=\"%.64s\"%s%s%s: %s %lld..%lld", s->key, shown,
               s->env != NULL ? " (" : "", s->env != NULL ? s->env : "", s->env != NULL ? ")" : "",
               s->type == SAGA__SETTING_STRING ? "length must be" : "out of range", s->min, s->max);
    return 0;
}

/* Strict decimal: optional sign, digits, nothing else (no blanks, no
 * suffix, no octal), and no overflow. */
static int parse_ll(const char *s, long long *out)
{
    char *end;
    long long v;
    if (s[0] == '\0' || !(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Bytes, with an optional K/M/G/T suffix in powers of 1024. */
static int parse_size(const char *s, long long *out)
{
    char *end;
    long long v, mult = 1;
    if (!(s[0] >= '0' && s[0] <= '9'))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    if (*end != '\0') {
        switch (*end) {
        case 'k':
        case 'K':
            mult = KIB;
            break;
        case 'm':
        case 'M':
            mult = MIB;
            break;
        case 'g':
        case 'G':
            mult = KIB * MIB;
            break;
        case 't':
        case 'T':
            mult = TIB;
            break;
        default:
            return -1;
        }
        if (end[1] != '\0')
            return -1;
    }
    if (v > LLONG_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

static int parse_bool(const char *s, long long *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    size_t i;
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Parses value for setting s and stores it in cfg; on failure cfg keeps its
 * current value and errbuf names the variable and the value. */
static saga_status apply(const saga__setting *s, const char *value, saga_config *cfg, char *errbuf,
                         size_t errlen)
{
    char *field = (char *)cfg + s->offset;
    long long v = 0;
    int rc;

    switch (s->type) {
    case SAGA__SETTING_STRING: {
        size_t n = strnlen(value, (size_t)s->max + 1);
        if (!within_bounds(s, (long long)n, value, errbuf, errlen))
            return SAGA_EINVAL;
        /* The environment outlives the config, so pointing into it is safe
         * (service.h promises it) as long as the caller does not setenv() the
         * same variable again. */
        memcpy(field, &value, sizeof(value));
        return SAGA_OK;
    }
    case SAGA__SETTING_LOGLEVEL: {
        saga_log_level lvl;
        rc = saga_log_level_parse(value);
        if (rc < 0) {
            append_err(errbuf, errlen, "%s=\"%.64s\": not one of error|warn|info|debug", s->env,
                       value);
            return SAGA_EINVAL;
        }
        lvl = (saga_log_level)rc;
        memcpy(field, &lvl, sizeof(lvl));
        return SAGA_OK;
    }
    case SAGA__SETTING_BOOL:
        rc = parse_bool(value, &v);
        if (rc != 0) {
            append_err(errbuf, errlen,
                       "%s=\"%.64s\": not a boolean (1/0, true/false, yes/no, on/off)", s->env,
                       value);
            return SAGA_EINVAL;
        }
        break;
    case SAGA__SETTING_SIZE:
        rc = parse_size(value, &v);
        if (rc != 0) {
            append_err(errbuf, errlen, "%s=\"%.64s\": not a size in bytes (suffix K, M, G, T)",
                       s->env, value);
            return SAGA_EINVAL;
        }
        break;
    case SAGA__SETTING_INT:
    case SAGA__SETTING_INT64:
        rc = parse_ll(value, &v);
        if (rc != 0) {
            append_err(errbuf, errlen, "%s=\"%.64s\": not a decimal integer", s->env, value);
            return SAGA_EINVAL;
        }
        break;
    }

    char shown[32];
    snprintf(shown, sizeof(shown), "%lld", v);
    if (!within_bounds(s, v, shown, errbuf, errlen))
        return SAGA_EINVAL;
    /* In range, so the narrowing below cannot change the value. */
    switch (s->type) {
    case SAGA__SETTING_INT:
    case SAGA__SETTING_BOOL: {
        int i = (int)v;
        memcpy(field, &i, sizeof(i));
        break;
    }
    case SAGA__SETTING_INT64: {
        int64_t i = (int64_t)v;
        memcpy(field, &i, sizeof(i));
        break;
    }
    case SAGA__SETTING_SIZE: {
        size_t z = (size_t)v;
        memcpy(field, &z, sizeof(z));
        break;
    }
    case SAGA__SETTING_STRING:
    case SAGA__SETTING_LOGLEVEL:
        break;
    }
    return SAGA_OK;
}

static int valid_name(const char *name, char *errbuf, size_t errlen)
{
    if (saga_valid_producer(name))
        return 1;
    append_err(errbuf, errlen, "bad service name \"%.64s\": must match [a-z0-9_]{1,32}",
               name != NULL ? name : "(null)");
    return 0;
}

/* Each entry of SAGA_GATES or SAGA_VETOERS ("fraud,kyc") is a participant's
 * name: its clearance arrives as "<name>.cleared", its veto as
 * "<name>.vetoed", so a name an event type cannot start with would be
 * accepted here and refused only at start. what names the setting ("gates
 * (SAGA_GATES)"). Names the first bad entry. */
static int valid_participants(const char *list, const char *what, char *errbuf, size_t errlen)
{
    const char *p = list != NULL ? list : "";
    int n = 0;
    while (*p != '\0') {
        size_t len = strcspn(p, ", ");
        if (len > 0) {
            char name[SAGA_PRODUCER_MAX + 1];
            if (++n > SAGA__MAX_GATES) {
                append_err(errbuf, errlen, "%s: more than %d participants", what, SAGA__MAX_GATES);
                return 0;
            }
            snprintf(name, sizeof(name), "%.*s", (int)len, p);
            if (len > SAGA_PRODUCER_MAX || !saga_valid_producer(name)) {
                append_err(errbuf, errlen,
                           "%s: bad participant name \"%.*s\": must match [a-z0-9_]{1,32}", what,
                           (int)(len > 64 ? 64 : len), p);
                return 0;
            }
        }
        p += len;
        p += strspn(p, ", ");
    }
    return 1;
}

int saga__config_parse_addr(const char *addr, char *host, size_t hostcap, int *port)
{
    const char *colon = addr != NULL ? strrchr(addr, ':') : NULL;
    struct in_addr ip;
    long long p;
    size_t hl;
    if (colon == NULL)
        return -1;
    hl = (size_t)(colon - addr);
    if (hl == 0 || hl >= hostcap || parse_ll(colon + 1, &p) != 0 || colon[1] == '+' ||
        colon[1] == '-' || p < 0 || p > 65535)
        return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, host, &ip) != 1)
        return -1;
    *port = (int)p;
    return 0;
}

/* SAGA_METRICS_ADDR: unset, or "ipv4:port". */
static int valid_metrics_addr(const char *addr, char *errbuf, size_t errlen)
{
    char host[SAGA__METRICS_ADDR_MAX + 1];
    int port;
    if (addr == NULL || addr[0] == '\0' ||
        saga__config_parse_addr(addr, host, sizeof(host), &port) == 0)
        return 1;
    append_err(errbuf, errlen,
               "metrics_addr (SAGA_METRICS_ADDR) \"%.64s\": want ipv4:port, e.g. 127.0.0.1:9464",
               addr);
    return 0;
}

/* Parses "i/n" into one partition set. */
static int parse_instance(const char *spec, uint32_t *set, char *errbuf, size_t errlen)
{
    unsigned i = 0, n = 0;
    char tail;
    const char *slash = strchr(spec, '/');
    if (sscanf(spec, "%u/%u%c", &i, &n, &tail) != 2 || spec[0] < '1' || spec[0] > '9' ||
        slash == NULL || slash[1] < '1' || slash[1] > '9' || i < 1 || n < i ||
        n > SAGA_PARTITIONS) {
        append_err(errbuf, errlen,
                   "instance (SAGA_INSTANCE) \"%.64s\": want i/n with 1 <= i <= n <= %d", spec,
                   SAGA_PARTITIONS);
        return -1;
    }
    *set = 0;
    for (unsigned p = i - 1; p < SAGA_PARTITIONS; p += n)
        *set |= 1u << p;
    return 0;
}

/* Parses "0-7,12" into one partition set. */
static int parse_list(const char *spec, uint32_t *set, char *errbuf, size_t errlen)
{
    const char *p = spec;
    *set = 0;
    while (*p != '\0') {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (end == p || *p < '0' || *p > '9')
            goto bad;
        if (*end == '-') {
            p = end + 1;
            hi = strtol(p, &end, 10);
            if (end == p || *p < '0' || *p > '9')
                goto bad;
        }
        if (lo > hi || hi >= SAGA_PARTITIONS)
            goto bad;
        for (long q = lo; q <= hi; q++)
            *set |= 1u << q;
        p = end;
        if (*p == ',' && p[1] != '\0')
            p++;
        else if (*p != '\0')
            goto bad;
    }
    if (*set != 0)
        return 0;
bad:
    append_err(errbuf, errlen,
               "partitions (SAGA_PARTITIONS) \"%.64s\": want partitions 0..%d and ranges, "
               "e.g. 0-7,12",
               spec, SAGA_PARTITIONS - 1);
    return -1;
}

int saga_partition_set(const char *instance, const char *list, uint32_t *set, char *errbuf,
                       size_t errlen)
{
    int has_i = instance != NULL && instance[0] != '\0', has_l = list != NULL && list[0] != '\0';
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    *set = SAGA_PARTITION_SET_ALL;
    if (has_i && has_l) {
        append_err(errbuf, errlen, "give SAGA_INSTANCE or SAGA_PARTITIONS, not both");
        return -1;
    }
    if (has_i)
        return parse_instance(instance, set, errbuf, errlen);
    return has_l ? parse_list(list, set, errbuf, errlen) : 0;
}

int saga_partition_set_format(uint32_t set, char *buf, size_t cap)
{
    size_t used = 0;
    int total = 0;
    if (cap > 0)
        buf[0] = '\0';
    for (unsigned p = 0; p < SAGA_PARTITIONS; p++) {
        if (!(set & (1u << p)) || (p > 0 && (set & (1u << (p - 1)))))
            continue; /* only the first partition of each run starts a range */
        unsigned q = p;
        while (q + 1 < SAGA_PARTITIONS && (set & (1u << (q + 1))))
            q++;
        int w = q == p ? snprintf(buf + used, cap - used, "%s%u", total ? "," : "", p)
                       : snprintf(buf + used, cap - used, "%s%u-%u", total ? "," : "", p, q);
        total += w;
        used = (size_t)total < cap ? (size_t)total : cap - 1;
    }
    return total > 0 ? total : snprintf(buf, cap, "-");
}

/* SAGA_INSTANCE and SAGA_PARTITIONS: each well formed, not both. */
static int valid_partitions(const saga_config *cfg, char *errbuf, size_t errlen)
{
    uint32_t set;
    char err[256];
    if (saga_partition_set(cfg->instance, cfg->partitions, &set, err, sizeof(err)) == 0)
        return 1;
    append_err(errbuf, errlen, "%s", err);
    return 0;
}

static void set_defaults(saga_config *cfg, const char *name)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->name = name;
    cfg->nats_url = SAGA_DEFAULT_NATS_URL;
    /* No default directory: a per-service path such as ./var/data/<name>
     * would need storage that the config, a plain struct of borrowed
     * pointers, does not own. NULL means "set it" (or SAGA_DATA_DIR), and
     * saga_service_create refuses to start without it. */
    cfg->data_dir = NULL;
    cfg->stream = SAGA_DEFAULT_STREAM;
    cfg->dlq_stream = SAGA_DEFAULT_DLQ_STREAM;
    cfg->batch_max = SAGA_DEFAULT_BATCH_MAX;
    cfg->ack_wait_ms = SAGA_DEFAULT_ACK_WAIT_MS;
    cfg->max_ack_pending = SAGA_DEFAULT_MAX_ACK_PENDING;
    cfg->max_deliver = SAGA_DEFAULT_MAX_DELIVER;
    cfg->retry_base_ms = SAGA_DEFAULT_RETRY_BASE_MS;
    cfg->retry_max_ms = SAGA_DEFAULT_RETRY_MAX_MS;
    cfg->retention_ms = SAGA_DEFAULT_RETENTION_MS;
    cfg->dup_window_ms = SAGA_DEFAULT_DUP_WINDOW_MS;
    cfg->events_max_age_ms = SAGA_DEFAULT_EVENTS_MAX_AGE_MS;
    cfg->replicas = SAGA_DEFAULT_REPLICAS;
    cfg->park_timeout_ms = SAGA_DEFAULT_PARK_TIMEOUT_MS;
    cfg->publish_wait_ms = SAGA_DEFAULT_PUBLISH_WAIT_MS;
    cfg->sync = 1;         /* durable unless the user asks otherwise */
    cfg->shared_flush = 0; /* docs/performance.md: on this machine's disk it did not pay */
    cfg->commit_per_message = 0;
    cfg->map_size = SAGA_DEFAULT_MAP_SIZE;
    cfg->crash_at = NULL;
    cfg->metrics_addr = NULL; /* no HTTP server unless asked for */
    cfg->log = NULL;          /* the library never logs unless the executable gives a sink */
    cfg->log_udata = NULL;
    cfg->log_level = SAGA_LOG_INFO;
}

saga_status saga_config_init(saga_config *cfg, const char *name, char *errbuf, size_t errlen)
{
    saga_status rv = SAGA_OK;
    size_t i;

    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (cfg == NULL) {
        append_err(errbuf, errlen, "cfg is NULL");
        rv = SAGA_EINVAL;
        goto out;
    }
    set_defaults(cfg, name);
    if (!valid_name(name, errbuf, errlen)) {
        rv = SAGA_EINVAL;
        goto out;
    }
    /* Every bad variable is reported and keeps its default; the others still
     * apply, so the caller sees all mistakes at once. An empty value counts
     * as unset, as shells and compose files produce them for "not given". */
    for (i = 0; i < saga__config_nsettings; i++) {
        const saga__setting *s = &saga__config_settings[i];
        const char *value = s->env != NULL ? getenv(s->env) : NULL;
        if (value == NULL || value[0] == '\0')
            continue;
        if (apply(s, value, cfg, errbuf, errlen) != SAGA_OK)
            rv = SAGA_EINVAL;
    }
    if (!valid_participants(cfg->gates, GATES_WHAT, errbuf, errlen)) {
        cfg->gates = NULL; /* a bad value keeps its default, as above */
        rv = SAGA_EINVAL;
    }
    if (!valid_participants(cfg->vetoers, VETOERS_WHAT, errbuf, errlen)) {
        cfg->vetoers = NULL;
        rv = SAGA_EINVAL;
    }
    if (!valid_metrics_addr(cfg->metrics_addr, errbuf, errlen)) {
        cfg->metrics_addr = NULL;
        rv = SAGA_EINVAL;
    }
    if (!valid_partitions(cfg, errbuf, errlen)) {
        cfg->instance = cfg->partitions = NULL;
        rv = SAGA_EINVAL;
    }
out:
    return rv;
}

/* Checks the field of row s in cfg against the row's bounds. */
static int check_field(const saga__setting *s, const saga_config *cfg, char *errbuf, size_t errlen)
{
    const char *field = (const char *)cfg + s->offset;
    char shown[32];
    long long v;
    switch (s->type) {
    case SAGA__SETTING_STRING: {
        const char *str;
        memcpy(&str, field, sizeof(str));
        if (str == NULL || str[0] == '\0') {
            if (!(s->flags & SAGA__SETTING_REQUIRED))
                return 1;
            append_err(errbuf, errlen, "%s is required%s%s%s", s->key, s->env != NULL ? " (" : "",
                       s->env != NULL ? s->env : "", s->env != NULL ? ")" : "");
            return 0;
        }
        return within_bounds(s, (long long)strnlen(str, (size_t)s->max + 1), str, errbuf, errlen);
    }
    case SAGA__SETTING_INT:
    case SAGA__SETTING_BOOL: {
        int i;
        memcpy(&i, field, sizeof(i));
        v = i;
        break;
    }
    case SAGA__SETTING_INT64: {
        int64_t i;
        memcpy(&i, field, sizeof(i));
        v = i;
        break;
    }
    case SAGA__SETTING_SIZE: {
        size_t z;
        memcpy(&z, field, sizeof(z));
        v = z > (size_t)LLONG_MAX ? LLONG_MAX : (long long)z;
        break;
    }
    case SAGA__SETTING_LOGLEVEL: {
        saga_log_level l;
        memcpy(&l, field, sizeof(l));
        v = (long long)l;
        break;
    }
    default:
        return 0;
    }
    snprintf(shown, sizeof(shown), "%lld", v);
    return within_bounds(s, v, shown, errbuf, errlen);
}

saga_status saga__config_check(const saga_config *cfg, char *errbuf, size_t errlen)
{
    saga_status rv = SAGA_OK;
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (cfg == NULL) {
        append_err(errbuf, errlen, "cfg is NULL");
        return SAGA_EINVAL;
    }
    if (!valid_name(cfg->name, errbuf, errlen))
        rv = SAGA_EINVAL;
    if (!valid_participants(cfg->gates, GATES_WHAT, errbuf, errlen))
        rv = SAGA_EINVAL;
    if (!valid_participants(cfg->vetoers, VETOERS_WHAT, errbuf, errlen))
        rv = SAGA_EINVAL;
    if (!valid_metrics_addr(cfg->metrics_addr, errbuf, errlen))
        rv = SAGA_EINVAL;
    if (!valid_partitions(cfg, errbuf, errlen))
        rv = SAGA_EINVAL;
    for (size_t i = 0; i < saga__config_nsettings; i++)
        if (!check_field(&saga__config_settings[i], cfg, errbuf, errlen))
            rv = SAGA_EINVAL;
    /* The rules between fields, which no single row can state. */
    if (cfg->retry_base_ms > cfg->retry_max_ms) {
        append_err(errbuf, errlen, "retry_base_ms=%lld exceeds retry_max_ms=%lld",
                   (long long)cfg->retry_base_ms, (long long)cfg->retry_max_ms);
        rv = SAGA_EINVAL;
    }
    /* An id pruned from the inbox while the broker still drops its copies
     * is fine; one pruned before is a duplicate the inbox no longer sees. */
    if (cfg->retention_ms <= cfg->dup_window_ms) {
        append_err(errbuf, errlen,
                   "retention_ms=%lld must exceed the broker's duplicate window "
                   "dup_window_ms=%lld",
                   (long long)cfg->retention_ms, (long long)cfg->dup_window_ms);
        rv = SAGA_EINVAL;
    }
    if (cfg->events_max_age_ms < cfg->dup_window_ms) {
        append_err(errbuf, errlen,
                   "events_max_age_ms=%lld must be at least the broker's duplicate window "
                   "dup_window_ms=%lld",
                   (long long)cfg->events_max_age_ms, (long long)cfg->dup_window_ms);
        rv = SAGA_EINVAL;
    }
    return rv;
}

int saga__config_value(const saga__setting *s, const saga_config *cfg, char *buf, size_t len)
{
    const char *field = (const char *)cfg + s->offset;
    switch (s->type) {
    case SAGA__SETTING_STRING: {
        const char *v;
        memcpy(&v, field, sizeof(v));
        return snprintf(buf, len, "%s", v != NULL ? v : "-");
    }
    case SAGA__SETTING_INT:
    case SAGA__SETTING_BOOL: {
        int v;
        memcpy(&v, field, sizeof(v));
        return snprintf(buf, len, "%d", v);
    }
    case SAGA__SETTING_INT64: {
        int64_t v;
        memcpy(&v, field, sizeof(v));
        return snprintf(buf, len, "%lld", (long long)v);
    }
    case SAGA__SETTING_SIZE: {
        size_t v;
        memcpy(&v, field, sizeof(v));
        return snprintf(buf, len, "%zu", v);
    }
    case SAGA__SETTING_LOGLEVEL: {
        saga_log_level v;
        memcpy(&v, field, sizeof(v));
        return snprintf(buf, len, "%s", saga_log_level_name(v));
    }
    }
    return snprintf(buf, len, "?");
}

static const char *type_name(saga__setting_type t)
{
    switch (t) {
    case SAGA__SETTING_STRING:
        return "string";
    case SAGA__SETTING_INT:
    case SAGA__SETTING_INT64:
        return "integer";
    case SAGA__SETTING_BOOL:
        return "bool";
    case SAGA__SETTING_SIZE:
        return "size";
    case SAGA__SETTING_LOGLEVEL:
        return "level";
    }
    return "?";
}

void saga__config_describe(FILE *f)
{
    saga_config defaults;
    size_t i;

    set_defaults(&defaults, NULL);
    fprintf(f, "Environment (an empty value counts as unset):\n");
    for (i = 0; i < saga__config_nsettings; i++) {
        const saga__setting *s = &saga__config_settings[i];
        char def[128], bounds[64];
        if (s->env == NULL)
            continue; /* set in code only: saga_config in saga/service.h */
        saga__config_value(s, &defaults, def, sizeof(def));
        if (s->type == SAGA__SETTING_STRING && strcmp(def, "-") == 0)
            snprintf(def, sizeof(def), "none");
        switch (s->type) {
        case SAGA__SETTING_STRING:
            snprintf(bounds, sizeof(bounds), "length %lld..%lld", s->min, s->max);
            break;
        case SAGA__SETTING_BOOL:
            snprintf(bounds, sizeof(bounds), "0|1");
            break;
        case SAGA__SETTING_LOGLEVEL:
            snprintf(bounds, sizeof(bounds), "error|warn|info|debug");
            break;
        case SAGA__SETTING_INT:
        case SAGA__SETTING_INT64:
        case SAGA__SETTING_SIZE:
            snprintf(bounds, sizeof(bounds), "%lld..%lld", s->min, s->max);
            break;
        }
        fprintf(f, "  %-24s %-7s %-28s default %s\n      %s\n", s->env, type_name(s->type), bounds,
                def, s->help);
    }
}

int saga_config_servers(const char *urls, char *buf, size_t cap, const char **servers, int max)
{
    char *save = NULL;
    int n = 0;
    if (urls == NULL || buf == NULL || cap == 0 || strlen(urls) >= cap)
        return -1;
    memcpy(buf, urls, strlen(urls) + 1);
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        tok += strspn(tok, " \t");
        tok[strcspn(tok, " \t")] = '\0';
        if (tok[0] != '\0' && n < max)
            servers[n++] = tok;
    }
    return n > 0 ? n : -1;
}

/* An instance's partitions: 0 stands for the only instance (all of them). */
static int partitions_of(uint32_t set)
{
    return __builtin_popcount(set != 0 ? set : SAGA_PARTITION_SET_ALL);
}

long long saga_partition_share(long long qty, const uint32_t *sets, size_t n, size_t k)
{
    long long owned = 0, given = 0;
    for (size_t i = 0; i < n; i++)
        owned += partitions_of(sets[i]);
    if (owned == 0 || k >= n)
        return 0;
    /* In proportion to the partitions, rounded down; the units left over
     * (fewer than n) go one each to the first instances. */
    for (size_t i = 0; i < n; i++)
        given += qty * partitions_of(sets[i]) / owned;
    return qty * partitions_of(sets[k]) / owned + ((long long)k < qty - given);
}

int saga_ack_pending_share(int budget, int nconsumers)
{
    int share = nconsumers > 0 ? budget / nconsumers : budget;
    return share > 0 ? share : 1;
}
