/* app.c - The shared main() of service executables: settings, signals, run, clean exit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "saga/app.h"

/* The one service of this process, for the signal handler: a signal handler
 * has no other way to reach it. Set before the handler is installed. */
static saga_service *volatile running;

static void on_signal(int sig)
{
    (void)sig;
    if (running != NULL)
        saga_service_stop(running);
}

static void usage(const char *name, const char *summary, const saga_app_setting *settings)
{
    printf("usage: saga-%s [--help] [--version]\n\n%s\n\n", name, summary);
    printf("Runs until SIGTERM or SIGINT, then finishes its batch, flushes its outbox and exits "
           "0.\n\n");
    if (settings != NULL && settings[0].env != NULL) {
        printf("Service settings (environment):\n");
        for (const saga_app_setting *s = settings; s->env != NULL; s++) {
            if (s->ival != NULL)
                printf("  %-28s %s (default %lld, %lld..%lld)\n", s->env, s->help, s->def, s->min,
                       s->max);
            else
                printf("  %-28s %s (default \"%s\")\n", s->env, s->help, s->sdef ? s->sdef : "");
        }
        printf("\n");
    }
    printf("Runtime settings:\n");
    saga__config_describe(stdout);
}

static int read_settings(const char *name, const saga_app_setting *settings)
{
    for (const saga_app_setting *s = settings; s != NULL && s->env != NULL; s++) {
        const char *v = getenv(s->env);
        if (s->sval != NULL) {
            *s->sval = v != NULL && *v != '\0' ? v : s->sdef;
            continue;
        }
        *s->ival = s->def;
        if (v == NULL || *v == '\0')
            continue;
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || x < s->min || x > s->max) {
            fprintf(stderr, "saga-%s: %s=\"%s\": want an integer in %lld..%lld\n", name, s->env, v,
                    s->min, s->max);
            return -1;
        }
        *s->ival = x;
    }
    return 0;
}

int saga_app_main(const char *name, const char *summary, const saga_app_setting *settings, int argc,
                  char **argv, saga_app_setup_fn setup, void *udata)
{
    saga_config cfg;
    saga_service *svc = NULL;
    char err[512], dir[512];
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(name, summary, settings);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("saga-%s 0.1.0\n", name);
            return 0;
        }
        fprintf(stderr, "saga-%s: unknown argument \"%s\" (try --help)\n", name, argv[i]);
        return 2;
    }
    if (saga_config_init(&cfg, name, err, sizeof(err)) != SAGA_OK) {
        fprintf(stderr, "saga-%s: %s\n", name, err);
        return 2;
    }
    if (read_settings(name, settings) != 0)
        return 2;
    if (cfg.data_dir == NULL) {
        snprintf(dir, sizeof(dir), "./var/data/%s", name);
        cfg.data_dir = dir;
    }
    cfg.log = saga_log_stderr;
    if (saga_service_create(&svc, &cfg, err, sizeof(err)) != SAGA_OK) {
        fprintf(stderr, "saga-%s: cannot start: %s\n", name, err);
        return 1;
    }
    saga_status st = setup != NULL ? setup(svc, &cfg, udata) : SAGA_OK;
    if (st != SAGA_OK) {
        fprintf(stderr, "saga-%s: setup: %s: %s\n", name, saga_strerror(st),
                saga_service_last_error(svc));
        goto out;
    }
    running = svc;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    st = saga_service_run(svc);
    running = NULL;
    if (st != SAGA_OK)
        fprintf(stderr, "saga-%s: %s: %s\n", name, saga_strerror(st), saga_service_last_error(svc));
    else
        rc = 0;
out:
    saga_service_destroy(svc);
    saga_library_cleanup();
    return rc;
}
