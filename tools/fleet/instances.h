/* instances.h - several instances of one service in a fleet (docs/scaling.md).
 *
 * Instance i of n of a service is the process "<service>-<i>" (payment-1,
 * payment-2, ...) started with SAGA_INSTANCE=i/n, which gives it the
 * partitions p with p % n == i - 1, and with its own data directory (the
 * fleet names it after the process). One instance keeps the service's own
 * name and no SAGA_INSTANCE: it owns every partition. */
#ifndef SAGA_FLEET_INSTANCES_H
#define SAGA_FLEET_INSTANCES_H

#include <stddef.h>

#include "fleet.h"
#include "saga/wire.h"

#define FLEET_INSTANCES_SVC_MAX 16 /* services named in one --instances */

/* What `--instances` asks for: "N" (every service N instances) or
 * "payment=3,inventory=2" (the others one). */
typedef struct fleet_instances {
    int every; /* N of "N", 0 when services are named */
    int nsvc;
    char svc[FLEET_INSTANCES_SVC_MAX][64];
    int n[FLEET_INSTANCES_SVC_MAX];
} fleet_instances;

/* Parses spec into *in. Counts run from 1 to SAGA_PARTITIONS (an instance
 * owns at least one partition). Returns 0, or -1 with err set. */
int fleet_instances_parse(fleet_instances *in, const char *spec, char *err, size_t errlen);

/* How many instances of svc in asks for: 1 when it does not name svc. */
int fleet_instances_of(const fleet_instances *in, const char *svc);

/* The process name of instance i (1..n) of n of svc: svc itself when n is 1,
 * else "<svc>-<i>". */
void fleet_instance_name(char *buf, size_t cap, const char *svc, int i, int n);

/* i when process name is instance i of svc ("<svc>-<i>", started with
 * SAGA_INSTANCE), else 0. */
int fleet_instance_of(const fleet *f, const char *name, const char *svc);

/* How many instances "<svc>-<i>" the fleet holds (0: none; svc itself may be
 * there as the only instance). */
int fleet_instances_count(const fleet *f, const char *svc);

/* The partitions process name owns, as a list ("0-15", "1,3,5"), from the
 * SAGA_INSTANCE or SAGA_PARTITIONS it starts with; "0-15" without either. */
const char *fleet_instance_partitions(const fleet *f, const char *name, char *buf, size_t cap);

/* The subject that reaches process name's counters: saga.ctl.<service>.stats,
 * routed to the first partition of an instance (saga.ctl.payment.stats.1 for
 * payment-2 of 3), since every instance of a service answers the plain one. */
const char *fleet_instance_stats_subject(const fleet *f, const char *name, char *buf, size_t cap);

/* The partitions that move from instance k of n to instance j of m when a
 * service goes from n to m instances (SAGA_INSTANCE=k/n to j/m): those k owned
 * and j will own, none when k == j (the same process and data directory keeps
 * them). Each partition moves once, from its old owner to its new one. */
uint32_t fleet_instances_moved(int n, int k, int m, int j);

#endif
