/* map.c - A string-keyed hash map for sagactl's stream reads (orders, SKUs,
 * event ids). Open addressing over an index into an insertion-ordered entry
 * array, so that reports list orders in the order the stream first named them. */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define INITIAL_SLOTS 1024 /* a power of two */

/* One allocation per entry: the value first (malloc's alignment), then the
 * key. Audits of large streams hold millions of entries. */
typedef struct entry {
    void *block;
    uint64_t hash;
} entry;

struct ctl_map {
    size_t value_size; /* rounded up to keep the key after it aligned */
    entry *entries;    /* insertion order */
    size_t count, cap;
    uint32_t *slots; /* 0: empty, else entry index + 1 */
    size_t nslots;   /* power of two, kept at most half full */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

int ctl_map_create(ctl_map **out, size_t value_size)
{
    ctl_map *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -1;
    m->value_size = value_size > 0 ? (value_size + 7) & ~(size_t)7 : 8;
    m->nslots = INITIAL_SLOTS;
    m->slots = calloc(m->nslots, sizeof(*m->slots));
    if (m->slots == NULL) {
        free(m);
        return -1;
    }
    *out = m;
    return 0;
}

void ctl_map_destroy(ctl_map *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->count; i++)
        free(m->entries[i].block);
    free(m->entries);
    free(m->slots);
    free(m);
}

static const char *entry_key(const ctl_map *m, const entry *e)
{
    return (const char *)e->block + m->value_size;
}

static size_t find_slot(const ctl_map *m, const char *key, uint64_t h)
{
    size_t mask = m->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t s = m->slots[i];
        if (s == 0)
            return i;
        const entry *e = &m->entries[s - 1];
        if (e->hash == h && strcmp(entry_key(m, e), key) == 0)
            return i;
    }
}

static int rehash(ctl_map *m)
{
    size_t n = m->nslots * 2;
    uint32_t *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < m->count; i++) {
        size_t j = (size_t)m->entries[i].hash & (n - 1);
        while (slots[j] != 0)
            j = (j + 1) & (n - 1);
        slots[j] = (uint32_t)(i + 1);
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    return 0;
}

void *ctl_map_get(const ctl_map *m, const char *key)
{
    uint32_t s = m->slots[find_slot(m, key, fnv1a(key))];
    return s != 0 ? m->entries[s - 1].block : NULL;
}

void *ctl_map_upsert(ctl_map *m, const char *key, int *created)
{
    uint64_t h = fnv1a(key);
    size_t i = find_slot(m, key, h);
    if (created != NULL)
        *created = 0;
    if (m->slots[i] != 0)
        return m->entries[m->slots[i] - 1].block;
    if (m->count >= UINT32_MAX - 1)
        return NULL;
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        entry *e = realloc(m->entries, cap * sizeof(*e));
        if (e == NULL)
            return NULL;
        m->entries = e;
        m->cap = cap;
    }
    size_t klen = strlen(key);
    char *block = malloc(m->value_size + klen + 1);
    if (block == NULL)
        return NULL;
    memset(block, 0, m->value_size);
    memcpy(block + m->value_size, key, klen + 1);
    m->entries[m->count] = (entry){block, h};
    m->slots[i] = (uint32_t)(m->count + 1);
    m->count++;
    /* Growing after the insert keeps find_slot's index valid above; a failed
     * grow only makes the table fuller, lookups still terminate while it has
     * an empty slot, so stop inserting before that. */
    if (m->count * 2 > m->nslots && rehash(m) != 0 && m->count + 1 >= m->nslots)
        return NULL;
    if (created != NULL)
        *created = 1;
    return block;
}

size_t ctl_map_count(const ctl_map *m)
{
    return m->count;
}

void *ctl_map_at(const ctl_map *m, size_t i, const char **key)
{
    if (i >= m->count)
        return NULL;
    if (key != NULL)
        *key = entry_key(m, &m->entries[i]);
    return m->entries[i].block;
}
