/* faults.c - Fault plans: parsing, repeatable coin flips, JSON view. */
#include "faults.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void saga__faults_init(saga__faults *f)
{
    memset(f, 0, sizeof(*f));
    f->seed = 1;
    f->reorder_delay_ms = 500;
}

#define BUSINESS_KEY_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_"

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
        /* A business fault: a rate the service's rules consult by name. The
         * name is written unescaped into the plan's JSON view, so it is
         * limited to what the services use: [a-z0-9_]. */
        double rate;
        if (strlen(k) >= SAGA__FAULT_KEY_MAX || strspn(k, BUSINESS_KEY_CHARS) != strlen(k) ||
            parse_rate(v, &rate) != 0)
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
            snprintf(err, errlen, "\"%s\": want key=value", tok);
            return -1;
        }
        *eq = '\0';
        if (set_one(&next, tok, eq + 1) != 0) {
            snprintf(err, errlen,
                     "bad fault %s=%s (rates are 0..1; crash is in_handler|after_commit|"
                     "after_publish[:n] or none)",
                     tok, eq + 1);
            return -1;
        }
    }
    *f = next;
    return 0;
}

void saga__faults_json(const saga__faults *f, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "{\"seed\":%llu,\"error_rate\":%g,\"delay_ms\":%lld,\"dup_rate\":%g,"
                     "\"reorder_rate\":%g,\"reorder_delay_ms\":%lld,\"crash\":\"%s\"",
                     (unsigned long long)f->seed, f->error_rate, (long long)f->delay_ms,
                     f->dup_rate, f->reorder_rate, (long long)f->reorder_delay_ms, f->crash.point);
    for (int i = 0; i < f->nbusiness && n > 0 && (size_t)n < cap; i++)
        n += snprintf(buf + n, cap - (size_t)n, ",\"%s\":%g", f->business[i].key,
                      f->business[i].rate);
    if (n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "}");
}

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int saga__faults_roll(const saga__faults *f, const char *key, const char *id, uint64_t salt,
                      double rate)
{
    if (rate <= 0.0)
        return 0;
    if (rate >= 1.0)
        return 1;
    uint64_t h = 14695981039346656037ULL;
    h = fnv(h, &f->seed, sizeof(f->seed));
    h = fnv(h, key, strlen(key));
    h = fnv(h, id, strlen(id));
    h = fnv(h, &salt, sizeof(salt));
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
