/* map.c - A chained hash map from order ids to values, doubling when full. */
#include "map.h"

#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 1024

struct bench_map_entry {
    bench_map_entry *next;
    void *val;
    uint64_t hash;
    char key[]; /* NUL-terminated copy */
};

/* FNV-1a: order ids are ULIDs, already well spread; this only needs to be cheap. */
static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

int bench_map_init(bench_map *m)
{
    m->buckets = calloc(INITIAL_BUCKETS, sizeof(*m->buckets));
    m->nbuckets = INITIAL_BUCKETS;
    m->n = 0;
    return m->buckets != NULL ? 0 : -1;
}

void bench_map_cleanup(bench_map *m, void (*free_val)(void *))
{
    for (size_t i = 0; m->buckets != NULL && i < m->nbuckets; i++) {
        bench_map_entry *e = m->buckets[i];
        while (e != NULL) {
            bench_map_entry *next = e->next;
            if (free_val != NULL)
                free_val(e->val);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->n = 0;
}

/* Doubles the table; on allocation failure the map stays as it was (only slower). */
static void grow(bench_map *m)
{
    size_t nb = m->nbuckets * 2;
    bench_map_entry **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        bench_map_entry *e = m->buckets[i];
        while (e != NULL) {
            bench_map_entry *next = e->next;
            size_t j = (size_t)(e->hash & (nb - 1));
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

static bench_map_entry **find(const bench_map *m, const char *key, uint64_t h)
{
    bench_map_entry **p = &m->buckets[h & (m->nbuckets - 1)];
    while (*p != NULL && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
        p = &(*p)->next;
    return p;
}

int bench_map_put(bench_map *m, const char *key, void *val, void **old)
{
    uint64_t h = hash_str(key);
    bench_map_entry **p = find(m, key, h);
    if (old != NULL)
        *old = NULL;
    if (*p != NULL) {
        if (old != NULL)
            *old = (*p)->val;
        (*p)->val = val;
        return 0;
    }
    size_t klen = strlen(key);
    bench_map_entry *e = malloc(sizeof(*e) + klen + 1);
    if (e == NULL)
        return -1;
    e->next = NULL;
    e->val = val;
    e->hash = h;
    memcpy(e->key, key, klen + 1);
    *p = e;
    if (++m->n > m->nbuckets)
        grow(m);
    return 0;
}

void *bench_map_get(const bench_map *m, const char *key)
{
    bench_map_entry **p = find(m, key, hash_str(key));
    return *p != NULL ? (*p)->val : NULL;
}

void *bench_map_take(bench_map *m, const char *key)
{
    bench_map_entry **p = find(m, key, hash_str(key));
    bench_map_entry *e = *p;
    if (e == NULL)
        return NULL;
    void *val = e->val;
    *p = e->next;
    free(e);
    m->n--;
    return val;
}
