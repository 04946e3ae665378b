/* fuzz_notification.c - The notification service's event and command handlers on fuzzed input
 * (see service_harness.h). */
#define main notification_main
#include "notification/notification.c"
#undef main

/* The mail spool goes into the temporary directory, not ./var/spool. */
static char fuzz_spool[512];
#define FUZZ_PREPARE(dir)                                                                          \
    (snprintf(fuzz_spool, sizeof(fuzz_spool), "%s/spool", dir), spool_dir = fuzz_spool)
#define FUZZ_SERVICE "notification"
#define FUZZ_SETTINGS settings
#include "service_harness.h"
