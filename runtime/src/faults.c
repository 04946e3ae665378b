/* faults.c - Fault plans: parsing, repeatable coin flips, JSON view. */
#include "faults.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saga/hash.h"
#include "saga/wire.h"

/* Rates print with 15 significant digits: 0.1 reads back as 0.1, not as
 * its nearest double spelled out to 17 digits. */
#define JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

static const char *const business_keys[] = {
#define SAGA__BUSINESS_KEY(key, service) key,
    SAGA_BUSINESS_FAULTS(SAGA__BUSINESS_KEY)
#undef SAGA__BUSINESS_KEY
};

int saga__faults_known_business(const char *key)
{
    for (size_t i = 0; i < sizeof(business_keys) / sizeof(business_keys[0]); i++)
        if (strcmp(business_keys[i], key) == 0)
            return 1;
    return 0;
}

void saga__faults_init(saga__faults *f)
{
    memset(f, 0, sizeof(*f));
    f->seed = 1;
    f->reorder_delay_ms = 500;
}

static int parse_rate(const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(d >= 0.0 && d <= 1.0))
        return -1;
    *out = d;
    return 0;
}

static int parse_i64(const char *v, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < min || x > max)
        return -1;
    *out = x;
    return 0;
}

static int set_one(saga__faults *f, const char *k, const char *v)
{
    long long x;
    if (strcmp(k, "seed") == 0) {
        if (parse_i64(v, 0, INT64_MAX, &x) != 0)
            return -1;
        f->seed = (uint64_t)x;
    } else if (strcmp(k, "error_rate") == 0) {
        return parse_rate(v, &f->error_rate);
    } else if (strcmp(k, "delay_ms") == 0) {
        if (parse_i64(v, 0, 60000, &x) != 0)
            return -1;
        f->delay_ms = x;
    } else if (strcmp(k, "dup_rate") == 0) {
        return parse_rate(v, &f->dup_rate);
    } else if (strcmp(k, "reorder_rate") == 0) {
        return parse_rate(v, &f->reorder_rate);
    } else if (strcmp(k, "reorder_delay_ms") == 0) {
        if (parse_i64(v, 1, 60000, &x) != 0)
            return -1;
        f->reorder_delay_ms = x;
    } else if (strcmp(k, "crash") == 0) {
        return saga__crash_init(&f->crash, strcmp(v, "none") == 0 ? NULL : v);
    } else {
        /* A business fault: a rate the service's rules consult by name.
         * Only the names of the wire contract are taken (the caller says
         * "unknown"): anything else would sit in the plan doing nothing. */
        double rate;
        if (!saga__faults_known_business(k))
            return -2;
        if (parse_rate(v, &rate) != 0)
            return -1;
        for (int i = 0; i < f->nbusiness; i++) {
            if (strcmp(f->business[i].key, k) == 0) {
                f->business[i].rate = rate;
                return 0;
            }
        }
        if (f->nbusiness == SAGA__FAULT_BUSINESS_MAX)
            return -1;
        snprintf(f->business[f->nbusiness].key, SAGA__FAULT_KEY_MAX, "%s", k);
        f->business[f->nbusiness++].rate = rate;
    }
    return 0;
}

/* Error texts quote the caller's bytes: only printable ASCII is kept, so a
 * reply or a log line built from them stays one clean line of valid UTF-8. */
static void scrub(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

int saga__faults_apply(saga__faults *f, const char *spec, char *err, size_t errlen)
{
    saga__faults next = *f;
    char buf[1024];
    if (spec == NULL)
        return 0;
    if (strlen(spec) >= sizeof(buf)) {
        snprintf(err, errlen, "fault plan too long");
        return -1;
    }
    memcpy(buf, spec, strlen(spec) + 1);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", \t\n", &save); tok != NULL;
         tok = strtok_r(NULL, ", \t\n", &save)) {
        if (strcmp(tok, "clear") == 0) {
            saga__faults_init(&next);
            continue;
        }
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok) {
            scrub(tok);
            snprintf(err, errlen, "\"%s\": want key=value", tok);
            return -1;
        }
        *eq = '\0';
        int bad = set_one(&next, tok, eq + 1);
        if (bad == -2) {
            scrub(tok);
            snprintf(err, errlen,
                     "unknown fault \"%s\" (technical: seed, error_rate, delay_ms, dup_rate, "
                     "reorder_rate, reorder_delay_ms, crash; business: decline_rate, "
                     "stockout_rate, ship_fail_rate)",
                     tok);
            return -1;
        }
        if (bad != 0) {
            scrub(tok);
            scrub(eq + 1);
            snprintf(err, errlen,
                     "bad fault %s=%s (rates are 0..1; crash is in_handler|after_commit|"
                     "after_publish|after_ack[:n] or none)",
                     tok, eq + 1);
            return -1;
        }
    }
    *f = next;
    return 0;
}

/* The plan as a jansson object; NULL when out of memory. Every key is a
 * fixed name or one of SAGA_BUSINESS_FAULTS: nothing the caller sent. */
static json_t *plan_object(const saga__faults *f)
{
    json_t *o = json_object();
    int bad = o == NULL;
    if (bad)
        return NULL;
    bad |= json_object_set_new(o, "seed", json_integer((json_int_t)f->seed));
    bad |= json_object_set_new(o, "error_rate", json_real(f->error_rate));
    bad |= json_object_set_new(o, "delay_ms", json_integer((json_int_t)f->delay_ms));
    bad |= json_object_set_new(o, "dup_rate", json_real(f->dup_rate));
    bad |= json_object_set_new(o, "reorder_rate", json_real(f->reorder_rate));
    bad |=
        json_object_set_new(o, "reorder_delay_ms", json_integer((json_int_t)f->reorder_delay_ms));
    /* The point with the times it has still to be reached ("after_commit:2"),
     * so a plan read back says when the crash comes, and can be sent again. */
    char crash[sizeof(f->crash.point) + 24] = "";
    if (f->crash.point[0] != '\0')
        snprintf(crash, sizeof(crash), "%s:%ld", f->crash.point, f->crash.nth - f->crash.seen);
    bad |= json_object_set_new(o, "crash", json_string(crash));
    for (int i = 0; i < f->nbusiness; i++)
        bad |= json_object_set_new(o, f->business[i].key, json_real(f->business[i].rate));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *saga__faults_json(const saga__faults *f)
{
    json_t *o = plan_object(f);
    char *text = o != NULL ? json_dumps(o, JSON_FLAGS) : NULL;
    json_decref(o);
    return text;
}

char *saga__faults_reply(const saga__faults *f, const char *service, const char *error)
{
    json_t *o = json_object();
    char *text = NULL;
    int bad = o == NULL;
    if (bad)
        goto out;
    bad |= json_object_set_new(o, "ok", json_boolean(error == NULL));
    if (error != NULL) {
        /* json_string refuses invalid UTF-8: the text is scrubbed first. */
        char clean[512];
        snprintf(clean, sizeof(clean), "%s", error);
        scrub(clean);
        bad |= json_object_set_new(o, "error", json_string(clean));
    } else {
        bad |= json_object_set_new(o, "service", json_string(service));
        bad |= json_object_set_new(o, "faults", plan_object(f));
    }
    if (!bad)
        text = json_dumps(o, JSON_FLAGS);
out:
    json_decref(o);
    return text;
}

int saga__faults_roll(const saga__faults *f, const char *key, const char *id, uint64_t salt,
                      double rate)
{
    if (rate <= 0.0)
        return 0;
    if (rate >= 1.0)
        return 1;
    uint64_t h = saga_fnv1a(SAGA_FNV1A_INIT, &f->seed, sizeof(f->seed));
    h = saga_fnv1a(h, key, strlen(key));
    h = saga_fnv1a(h, id, strlen(id));
    h = saga_fnv1a(h, &salt, sizeof(salt));
    /* A final mix so that nearby inputs spread over the whole range. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (double)(h >> 11) / (double)(1ULL << 53) < rate;
}

double saga__faults_business(const saga__faults *f, const char *key)
{
    for (int i = 0; i < f->nbusiness; i++)
        if (strcmp(f->business[i].key, key) == 0)
            return f->business[i].rate;
    return 0.0;
}
