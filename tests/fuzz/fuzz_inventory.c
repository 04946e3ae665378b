/* fuzz_inventory.c - The inventory service's event and command handlers on fuzzed input
 * (see service_harness.h). */
#define main inventory_main
#include "inventory/inventory.c"
#undef main

#define FUZZ_SERVICE "inventory"
#define FUZZ_SETTINGS NULL
#include "service_harness.h"
