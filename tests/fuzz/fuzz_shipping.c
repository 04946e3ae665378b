/* fuzz_shipping.c - The shipping service's event and command handlers on fuzzed input
 * (see service_harness.h). */
#define main shipping_main
#include "shipping/shipping.c"
#undef main

#define FUZZ_SERVICE "shipping"
#define FUZZ_SETTINGS settings
#include "service_harness.h"
