/* fuzz_fraud.c - The fraud service's event and command handlers on fuzzed input
 * (see service_harness.h). */
#define main fraud_main
#include "fraud/fraud.c"
#undef main

#define FUZZ_SERVICE "fraud"
#define FUZZ_SETTINGS settings
#include "service_harness.h"
