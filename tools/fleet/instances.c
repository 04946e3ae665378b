/* instances.c - several instances of one service in a fleet; see instances.h. */
#include "instances.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saga/config.h"

/* A count of instances, 1..SAGA_PARTITIONS; -1 when s is not one. */
static int parse_count(const char *s)
{
    char *end = NULL;
    long n = strtol(s, &end, 10);
    return end == s || *end != '\0' || n < 1 || n > SAGA_PARTITIONS ? -1 : (int)n;
}

int fleet_instances_parse(fleet_instances *in, const char *spec, char *err, size_t errlen)
{
    char list[1024], *save = NULL;

    memset(in, 0, sizeof(*in));
    if (spec == NULL || strlen(spec) >= sizeof(list))
        goto bad;
    if (strchr(spec, '=') == NULL) {
        in->every = parse_count(spec);
        if (in->every > 0)
            return 0;
        goto bad;
    }
    snprintf(list, sizeof(list), "%s", spec);
    for (char *tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok || (size_t)(eq - tok) >= sizeof(in->svc[0]) ||
            in->nsvc == FLEET_INSTANCES_SVC_MAX)
            goto bad;
        *eq = '\0';
        in->n[in->nsvc] = parse_count(eq + 1);
        if (in->n[in->nsvc] < 0)
            goto bad;
        snprintf(in->svc[in->nsvc], sizeof(in->svc[0]), "%s", tok);
        in->nsvc++;
    }
    if (in->nsvc > 0)
        return 0;
bad:
    snprintf(err, errlen, "--instances wants N or SERVICE=N,... with N from 1 to %d, not '%s'",
             SAGA_PARTITIONS, spec != NULL ? spec : "");
    return -1;
}

int fleet_instances_of(const fleet_instances *in, const char *svc)
{
    for (int i = 0; i < in->nsvc; i++) {
        if (strcmp(in->svc[i], svc) == 0)
            return in->n[i];
    }
    return in->every > 0 ? in->every : 1;
}

void fleet_instance_name(char *buf, size_t cap, const char *svc, int i, int n)
{
    if (n <= 1)
        snprintf(buf, cap, "%s", svc);
    else
        snprintf(buf, cap, "%s-%d", svc, i);
}

int fleet_instance_of(const fleet *f, const char *name, const char *svc)
{
    size_t len = strlen(svc);
    const char *num = name + len + 1;

    if (strncmp(name, svc, len) != 0 || name[len] != '-' || *num < '1' || *num > '9' ||
        strspn(num, "0123456789") != strlen(num) || fleet_get_env(f, name, "SAGA_INSTANCE") == NULL)
        return 0;
    long k = strtol(num, NULL, 10); /* digits only, checked above */
    return k <= SAGA_PARTITIONS ? (int)k : 0;
}

int fleet_instances_count(const fleet *f, const char *svc)
{
    int n = 0;

    for (int i = 0; i < fleet_count(f); i++)
        n += fleet_instance_of(f, fleet_name(f, i), svc) > 0;
    return n;
}

const char *fleet_instance_partitions(const fleet *f, const char *name, char *buf, size_t cap)
{
    uint32_t set = SAGA_PARTITION_SET_ALL;
    saga_partition_set(fleet_get_env(f, name, "SAGA_INSTANCE"),
                       fleet_get_env(f, name, "SAGA_PARTITIONS"), &set, NULL, 0);
    saga_partition_set_format(set, buf, cap);
    return buf;
}

const char *fleet_instance_stats_subject(const fleet *f, const char *name, char *buf, size_t cap)
{
    const char *instance = fleet_get_env(f, name, "SAGA_INSTANCE");
    const char *list = fleet_get_env(f, name, "SAGA_PARTITIONS");
    const char *dash = strrchr(name, '-');
    uint32_t set = SAGA_PARTITION_SET_ALL;
    char ctl[256];

    if ((instance == NULL && list == NULL) || dash == NULL ||
        saga_partition_set(instance, list, &set, NULL, 0) != 0 || set == 0) {
        snprintf(buf, cap, SAGA_SUBJ_CTL_FMT, name, SAGA_CTL_STATS);
        return buf;
    }
    snprintf(ctl, sizeof(ctl), "saga.ctl.%.*s.%s", (int)(dash - name), name, SAGA_CTL_STATS);
    snprintf(buf, cap, SAGA_SUBJ_ROUTED_FMT, ctl, (unsigned)__builtin_ctz(set));
    return buf;
}

uint32_t fleet_instances_moved(int n, int k, int m, int j)
{
    uint32_t set = 0;
    for (int p = 0; k != j && n > 0 && m > 0 && p < SAGA_PARTITIONS; p++)
        if (p % n == k - 1 && p % m == j - 1)
            set |= 1u << p;
    return set;
}
