/* app.h - The main() of a service executable, so every service starts, stops and
 * answers --help the same way.
 *
 * Example:
 *
 *     static long long limit;
 *     static const saga_app_setting settings[] = {
 *         {"PAYMENT_LIMIT_CENTS", "decline orders over this total", 100000, 1, 1LL << 40,
 *          &limit, NULL, NULL},
 *         {0}};
 *
 *     static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
 *     {
 *         (void)svc;
 *         (void)cfg;
 *         (void)udata;
 *         return SAGA_OK; // subscribe, add commands and timers here
 *     }
 *
 *     int main(int argc, char **argv)
 *     {
 *         return saga_app_main("payment", "charges and refunds orders", settings, argc, argv,
 *                              setup, NULL);
 *     }
 */
#ifndef SAGA_APP_H
#define SAGA_APP_H

#include "saga/service.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One setting of the executable itself, read from the environment. An
 * integer setting has ival != NULL; a string setting has sval != NULL and
 * its default in sdef. The table ends with an entry whose env is NULL. */
typedef struct saga_app_setting {
    const char *env;
    const char *help;
    long long def, min, max;
    long long *ival;
    const char **sval;
    const char *sdef;
} saga_app_setting;

/* Called once the service exists and before it runs: subscribe, add
 * commands and timers. Return SAGA_OK or an error (printed, exit 1). */
typedef saga_status (*saga_app_setup_fn)(saga_service *svc, const saga_config *cfg, void *udata);

/* Parses --help/-h and --version; reads the runtime's and the executable's
 * settings from the environment (clear error, exit 2, on a bad value);
 * SAGA_DATA_DIR defaults to ./var/data/<name>; logs to stderr; runs until
 * SIGTERM or SIGINT, then stops gracefully. Returns the exit code. */
int saga_app_main(const char *name, const char *summary, const saga_app_setting *settings, int argc,
                  char **argv, saga_app_setup_fn setup, void *udata);

#ifdef __cplusplus
}
#endif
#endif
