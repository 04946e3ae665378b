/* faults.h - Fault plans: deliberate, repeatable failures injected at run time.
 *
 * A plan is a list of key=value settings, given at start (SAGA_FAULTS) or
 * sent at run time on saga.ctl.<service>.faults. Technical faults act in the
 * runtime; business faults (the keys of SAGA_BUSINESS_FAULTS in wire.h; any
 * other key is refused) are chances the service's rules consult with
 * saga_ctx_chance(). Every random choice is a hash of the seed,
 * the key and the event id, so a run can be repeated and a redelivered
 * event gets the same decision. */
#ifndef SAGA_FAULTS_H
#define SAGA_FAULTS_H

#include <stddef.h>
#include <stdint.h>

#include "crash.h"

#define SAGA__FAULT_BUSINESS_MAX 8
#define SAGA__FAULT_KEY_MAX 32

typedef struct saga__faults {
    uint64_t seed;
    double error_rate;   /* handler fails transiently (never on the last allowed delivery) */
    int64_t delay_ms;    /* handler takes this much longer */
    double dup_rate;     /* an emitted event is published twice, under two message ids */
    double reorder_rate; /* a first delivery is held back and redelivered later */
    int64_t reorder_delay_ms;
    saga__crash crash; /* crash point, as SAGA_CRASH_AT */
    int nbusiness;
    struct {
        char key[SAGA__FAULT_KEY_MAX];
        double rate;
    } business[SAGA__FAULT_BUSINESS_MAX];
} saga__faults;

/* An empty plan (nothing injected). */
void saga__faults_init(saga__faults *f);

/* Applies "k=v k=v" (commas or spaces between settings) on top of f; "clear"
 * empties the plan first. On error f is unchanged and err names the bad
 * setting. Returns 0 or -1. */
int saga__faults_apply(saga__faults *f, const char *spec, char *err, size_t errlen);

/* The plan as one JSON object, written with jansson. The caller frees the
 * text with free(); NULL when out of memory. */
char *saga__faults_json(const saga__faults *f);

/* The reply of saga.ctl.<service>.faults: {"ok":true,"service":..,"faults":{..}},
 * or {"ok":false,"error":..} when error is not NULL (its bytes outside
 * printable ASCII become '?'). Freed by the caller with free(); NULL when out
 * of memory. */
char *saga__faults_reply(const saga__faults *f, const char *service, const char *error);

/* 1 when key is one of the business faults of SAGA_BUSINESS_FAULTS (wire.h). */
int saga__faults_known_business(const char *key);

/* A repeatable coin: 1 with probability rate, decided by (seed, key, id, salt). */
int saga__faults_roll(const saga__faults *f, const char *key, const char *id, uint64_t salt,
                      double rate);

/* The rate of a business fault, 0 when the plan has none. */
double saga__faults_business(const saga__faults *f, const char *key);

#endif
