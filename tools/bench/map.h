/* map.h - A string-keyed map (order id -> value) for the load generator and
 * the ceiling's in-memory participants: a thin owner of keys over uthash.
 * Not thread-safe: the caller serialises access. */
#ifndef BENCH_MAP_H
#define BENCH_MAP_H

#include <stddef.h>

typedef struct bench_map_entry bench_map_entry;

typedef struct bench_map {
    bench_map_entry *head; /* uthash's table lives in its entries */
} bench_map;

/* Initialises an empty map. Returns 0 (it allocates nothing yet). */
int bench_map_init(bench_map *m);

/* Frees the map's own memory. Values are the caller's: free_val (may be NULL)
 * is called on each one still in the map. */
void bench_map_cleanup(bench_map *m, void (*free_val)(void *));

/* Adds key -> val (the key is copied). A key already present gets the new
 * value and its old one is returned through *old (if not NULL), else *old is
 * NULL. Returns 0, or -1 when out of memory (nothing changed). */
int bench_map_put(bench_map *m, const char *key, void *val, void **old);

/* Returns the value of key, or NULL. */
void *bench_map_get(const bench_map *m, const char *key);

/* Removes key and returns its value (the caller owns it), or NULL. */
void *bench_map_take(bench_map *m, const char *key);

#endif
