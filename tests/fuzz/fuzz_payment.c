/* fuzz_payment.c - The payment service's event and command handlers on fuzzed input
 * (see service_harness.h). */
#define main payment_main
#include "payment/payment.c"
#undef main

#define FUZZ_SERVICE "payment"
#define FUZZ_SETTINGS settings
#include "service_harness.h"
