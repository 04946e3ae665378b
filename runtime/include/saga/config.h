/* config.h - What a service is configured with: saga_config, its defaults and the
 * SAGA_* environment overrides. Configure first, then create the service
 * (service.h); the service copies the configuration.
 *
 * Example:
 *
 *     static saga_status configure(saga_config *cfg)
 *     {
 *         char err[256];
 *         saga_status st = saga_config_init(cfg, "payment", err, sizeof(err));
 *         if (st != SAGA_OK)
 *             return st; // err names the malformed SAGA_* variable
 *         cfg->log = saga_log_stderr;
 *         cfg->batch_max = 256; // settings made in code win over the environment
 *         return SAGA_OK;
 *     }
 */
#ifndef SAGA_CONFIG_H
#define SAGA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "saga/log.h"
#include "saga/status.h"
#include "saga/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults, each overridable in saga_config (and most by environment). */
#define SAGA_DEFAULT_NATS_URL "nats://127.0.0.1:4222"
#define SAGA_DEFAULT_STREAM "SAGA_EVENTS"
#define SAGA_DEFAULT_DLQ_STREAM "SAGA_DLQ"
#define SAGA_DEFAULT_BATCH_MAX 1024
#define SAGA_DEFAULT_ACK_WAIT_MS 30000
/* Unacknowledged deliveries one participant instance may hold, over all its
 * consumers (each gets saga_ack_pending_share of it). Below 4,096 with room to
 * spare: nats-server 2.9 walks every reply subject a connection with
 * allow_responses was delivered and has not yet answered, at each delivery,
 * once it holds more than 4,096, and a JetStream delivery's reply subject is its
 * acknowledgement (docs/security.md). */
#define SAGA_DEFAULT_MAX_ACK_PENDING 3584
#define SAGA_DEFAULT_MAX_DELIVER 5
#define SAGA_DEFAULT_RETRY_BASE_MS 200
#define SAGA_DEFAULT_RETRY_MAX_MS 10000
#define SAGA_DEFAULT_RETENTION_MS (24LL * 3600 * 1000)
#define SAGA_DEFAULT_EVENTS_MAX_AGE_MS (7LL * 24 * 3600 * 1000)
#define SAGA_DEFAULT_DUP_WINDOW_MS (2LL * 60 * 1000)
#define SAGA_DEFAULT_PARK_TIMEOUT_MS 60000
#define SAGA_DEFAULT_MAP_SIZE ((size_t)64 << 20)
#define SAGA_DEFAULT_PUBLISH_WAIT_MS 5000
#define SAGA_DEFAULT_REPLICAS 1

typedef struct saga_config {
    const char *name;       /* service name: producer of its events, consumer prefix */
    const char *nats_url;   /* SAGA_NATS_URL */
    const char *data_dir;   /* LMDB environment directory, created if missing: SAGA_DATA_DIR */
    const char *stream;     /* event stream, subjects evt.> */
    const char *dlq_stream; /* dead-letter stream, subjects dlq.> */
    int batch_max;          /* messages per group commit: SAGA_BATCH_MAX */
    int64_t ack_wait_ms;    /* redelivery of unacknowledged messages: SAGA_ACK_WAIT_MS */
    int max_ack_pending;    /* flow control, over all consumers: SAGA_MAX_ACK_PENDING */
    int max_deliver; /* deliveries before a failing message is dead-lettered: SAGA_MAX_DELIVER */
    int64_t retry_base_ms; /* first retry delay; doubles per delivery */
    int64_t retry_max_ms;  /* cap on the retry delay */
    int64_t retention_ms;  /* inbox ids and finished sagas are kept this long: SAGA_RETENTION_MS */
    int64_t dup_window_ms; /* broker duplicate window set on the streams this service creates */
    int64_t events_max_age_ms; /* age limit of the event stream, if this service creates it */
    int replicas;              /* copies of the streams it creates: SAGA_REPLICAS */
    int64_t park_timeout_ms;   /* default bound on a parked event's wait */
    int64_t publish_wait_ms;   /* bound on waiting for publish acks before retrying */
    int sync;                  /* 1: every commit is fsync'd (default); 0: MDB_NOSYNC. SAGA_SYNC */
    int shared_flush;          /* with sync, 1: one flush per commit, the meta page rides the next
                                  one, effects released after it; 0 (default): two. SAGA_SHARED_FLUSH */
    int commit_per_message;    /* 1: one commit per message instead of per batch (benchmark) */
    size_t map_size;           /* initial LMDB map size; grows on MDB_MAP_FULL */
    const char *crash_at;      /* crash point "name[:n]" for tests: SAGA_CRASH_AT */
    const char *faults;        /* fault plan "key=value,...", see docs/failures.md: SAGA_FAULTS */
    const char *gates;   /* participants whose clearance gates steps, "fraud,kyc": SAGA_GATES */
    const char *vetoers; /* participants whose "<p>.vetoed" this service accepts, besides the
                            gates: SAGA_VETOERS */
    /* Connection security (docs/security.md); NULL: none. */
    const char *nats_creds;   /* file "USER:PASSWORD", mode 0600: SAGA_NATS_CREDS */
    const char *nats_ca;      /* PEM CA that signed the server's certificate: SAGA_NATS_CA */
    const char *nats_cert;    /* PEM client certificate chain: SAGA_NATS_CERT */
    const char *nats_key;     /* PEM key of nats_cert: SAGA_NATS_KEY */
    const char *metrics_addr; /* "ipv4:port" of GET /metrics (port 0: any free one); NULL: none.
                                 SAGA_METRICS_ADDR */
    const char *instance;     /* "i/n": instance i of n owns the partitions p with p % n == i - 1;
                                 NULL: see partitions. SAGA_INSTANCE */
    const char *partitions;   /* "0-7,12": the partitions this instance owns; NULL with instance
                                 NULL: all, as the only instance. SAGA_PARTITIONS */
    saga_log_fn log;          /* NULL: no logging */
    void *log_udata;
    saga_log_level log_level; /* SAGA_LOG_LEVEL */
} saga_config;

/* Fills cfg with the defaults above, then applies the SAGA_* environment
 * overrides named there. Strings point into the environment or static
 * storage. Returns SAGA_EINVAL (and leaves the default) for a malformed
 * override, naming it in errbuf. */
saga_status saga_config_init(saga_config *cfg, const char *name, char *errbuf, size_t errlen);

/* Splits a comma-separated list of NATS server URLs (SAGA_NATS_URL: one
 * server, or the nodes of a cluster) into at most max entries of servers,
 * pointing into buf (cap bytes, a copy of urls); blanks around entries are
 * dropped. Returns the count, or -1 if urls does not fit buf or names no
 * server. The list is what natsOptions_SetServers takes: cnats 3.4.1's
 * natsOptions_SetURL takes one URL, and a list given to it fails every
 * connect. */
int saga_config_servers(const char *urls, char *buf, size_t cap, const char **servers, int max);

/* Every partition: bit p of a partition set is partition p. */
#define SAGA_PARTITION_SET_ALL ((uint32_t)((1u << SAGA_PARTITIONS) - 1))

/* The partition set of an instance (bit p: it owns partition p) from
 * instance, "i/n" with 1 <= i <= n <= SAGA_PARTITIONS (the partitions p with
 * p % n == i - 1), or list, "0-7,12" (ranges and single partitions, commas
 * between). Both NULL or empty: SAGA_PARTITION_SET_ALL. Returns 0, or -1
 * with the reason in errbuf when one is malformed, names no partition, or
 * both are given. The one parser of SAGA_INSTANCE and SAGA_PARTITIONS: the
 * runtime, the fleet launcher and the tools use it. */
int saga_partition_set(const char *instance, const char *list, uint32_t *set, char *errbuf,
                       size_t errlen);

/* Writes set as a list "0-7,12" ("-" when empty) into buf; returns what
 * snprintf returns. */
int saga_partition_set_format(uint32_t set, char *buf, size_t cap);

/* The units of qty that instance k of the n instances whose partition sets
 * are sets[0..n) holds: a share in proportion to its partitions (0 as a set:
 * the only instance, all of them), rounded down, the units left over one
 * each to the first instances. The shares add up to qty, so no unit belongs
 * to two instances: inventory's stock split (sagactl stock set) and its
 * re-split in a hand-over (saga-fleet scale inventory) both follow it. */
long long saga_partition_share(long long qty, const uint32_t *sets, size_t n, size_t k);

/* MaxAckPending of each of a participant instance's nconsumers durable consumers,
 * so that together they hold at most budget unacknowledged deliveries
 * (max_ack_pending, SAGA_MAX_ACK_PENDING): budget / nconsumers, at least 1. */
int saga_ack_pending_share(int budget, int nconsumers);

#ifdef __cplusplus
}
#endif
#endif
