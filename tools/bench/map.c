/* map.c - bench_map over uthash: one allocation per key, holding the copy of
 * the key and the table's handle. */
#include "map.h"

#include <stdlib.h>
#include <string.h>

/* A failed allocation in uthash leaves the entry out and calls this hook
 * instead of exiting; bench_map_put() then frees the entry and fails. */
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(e) (add_failed = 1)
#include <uthash.h>

struct bench_map_entry {
    UT_hash_handle hh;
    void *val;
    char key[]; /* NUL-terminated copy */
};

int bench_map_init(bench_map *m)
{
    m->head = NULL;
    return 0;
}

void bench_map_cleanup(bench_map *m, void (*free_val)(void *))
{
    bench_map_entry *e, *tmp;
    HASH_ITER(hh, m->head, e, tmp)
    {
        HASH_DEL(m->head, e);
        if (free_val != NULL)
            free_val(e->val);
        free(e);
    }
}

static bench_map_entry *find(const bench_map *m, const char *key)
{
    bench_map_entry *e = NULL;
    HASH_FIND_STR(m->head, key, e);
    return e;
}

int bench_map_put(bench_map *m, const char *key, void *val, void **old)
{
    bench_map_entry *e = find(m, key);
    int add_failed = 0;
    if (old != NULL)
        *old = e != NULL ? e->val : NULL;
    if (e != NULL) {
        e->val = val;
        return 0;
    }
    size_t klen = strlen(key);
    e = malloc(sizeof(*e) + klen + 1);
    if (e == NULL)
        return -1;
    e->val = val;
    memcpy(e->key, key, klen + 1);
    HASH_ADD_KEYPTR(hh, m->head, e->key, klen, e);
    if (add_failed) {
        free(e);
        return -1;
    }
    return 0;
}

void *bench_map_get(const bench_map *m, const char *key)
{
    bench_map_entry *e = find(m, key);
    return e != NULL ? e->val : NULL;
}

void *bench_map_take(bench_map *m, const char *key)
{
    bench_map_entry *e = find(m, key);
    if (e == NULL)
        return NULL;
    void *val = e->val;
    HASH_DEL(m->head, e);
    free(e);
    return val;
}
