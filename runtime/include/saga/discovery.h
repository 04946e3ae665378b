/* discovery.h - What a participant says about itself when asked on saga.discover.
 *
 * Every participant built on this runtime answers a request on
 * SAGA_SUBJ_DISCOVER (core NATS, no queue group: every instance answers)
 * with one JSON object: its name, version, instance, the event types it
 * consumes and emits, its gates, whether it may veto, and the subjects it
 * serves. Tools list the fleet from these answers instead of naming the
 * services in code (docs/protocol.md gives the exact JSON). */
#ifndef SAGA_DISCOVERY_H
#define SAGA_DISCOVERY_H

#include "saga/service.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Declares the event types this participant emits, a NULL-terminated list
 * ({"fraud.vetoed", "fraud.cleared", NULL}), so that a discovery answer
 * lists them before the first such event exists. Call before
 * saga_service_run(); SAGA_EVALIDATE if a type is not "<name>.<event>" with
 * this service's own name, SAGA_ETOOBIG past SAGA_DISCOVERY_MAX_EMITS in
 * all. A participant that declares "<name>.vetoed" is listed as one that
 * vetoes. */
#define SAGA_DISCOVERY_MAX_EMITS 16
saga_status saga_service_emits(saga_service *svc, const char *const types[]);

#ifdef __cplusplus
}
#endif
#endif
