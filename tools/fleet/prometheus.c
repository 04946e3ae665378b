/* prometheus.c - A Prometheus server in the fleet: its configuration and storage below
 * the home directory, and the file of targets (file-based service discovery) that the
 * fleet rewrites whenever its processes' metrics addresses may have changed.
 *
 * Prometheus watches the targets file and applies a new version within seconds, with
 * no restart: the fleet only has to replace the file whole (write, then rename). */
#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#define PROMETHEUS_EXE "/usr/bin/prometheus"
#define READY_TEXT "Server is ready to receive web requests"
#define WEB_ARG "--web.listen-address="
#define SCRAPE_INTERVAL "1s" /* short: a drill lasts seconds, and graphs should show it */
#define JOB "saga"

enum { PATH_CAP = 4096 };

static void set_err(char *err, size_t errlen, const char *what, const char *path)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
}

/* HOME/name/leaf into buf; -1 if it does not fit. */
static int path_of(const fleet *f, const char *name, const char *leaf, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s%s%s", fleet_home(f), name, leaf[0] ? "/" : "", leaf);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Replaces path with text whole: a reader sees the old file or the new one. */
static int replace_file(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[PATH_CAP + 8];
    FILE *fp;
    int ok;

    snprintf(tmp, sizeof tmp, "%s.new", path);
    fp = fopen(tmp, "w");
    if (fp == NULL) {
        set_err(err, errlen, "cannot write", tmp);
        return -1;
    }
    ok = fputs(text, fp) >= 0;
    ok &= fclose(fp) == 0;
    if (!ok || rename(tmp, path) != 0) {
        set_err(err, errlen, "cannot write", path);
        return -1;
    }
    return 0;
}

/* The configuration: every target of the targets file is scraped every second by the
 * job "saga"; each carries the label process (the fleet's name for it), next to the
 * metrics' own service label. */
static int write_config(const fleet *f, const char *name, char *err, size_t errlen)
{
    char path[PATH_CAP], targets[PATH_CAP], text[2 * PATH_CAP];

    if (path_of(f, name, "prometheus.yml", path, sizeof path) != 0 ||
        path_of(f, name, "targets.json", targets, sizeof targets) != 0 ||
        strpbrk(targets, "'\n") != NULL) {
        snprintf(err, errlen, "%s: the home directory's path is too long or holds ' or a newline",
                 name);
        return -1;
    }
    snprintf(text, sizeof text,
             "# Written by saga-fleet at each up: scrapes every process of the fleet in\n"
             "# %s. The targets file is rewritten by the fleet (file-based discovery).\n"
             "global:\n"
             "  scrape_interval: " SCRAPE_INTERVAL "\n"
             "  scrape_timeout: " SCRAPE_INTERVAL "\n"
             "  evaluation_interval: " SCRAPE_INTERVAL "\n"
             "scrape_configs:\n"
             "  - job_name: " JOB "\n"
             "    file_sd_configs:\n"
             "      - files: ['%s']\n"
             "        refresh_interval: 5s\n",
             fleet_home(f), targets);
    if (replace_file(path, text, err, errlen) != 0)
        return -1;
    /* Until the fleet knows its processes' addresses: no targets. */
    return access(targets, F_OK) == 0 ? 0 : replace_file(targets, "[]\n", err, errlen);
}

int fleet_add_prometheus(fleet *f, const char *name, const char *exe, const char *host, int port,
                         char *err, size_t errlen)
{
    char dir[PATH_CAP], config[PATH_CAP + 32], storage[PATH_CAP + 32], web[320];
    const char *args[8];
    int n = 0;

    if (exe == NULL)
        exe = PROMETHEUS_EXE;
    if (host == NULL)
        host = "127.0.0.1";
    if (port == 0)
        port = fleet_free_port();
    if (port <= 0) {
        snprintf(err, errlen, "%s: no free port", name);
        return -1;
    }
    if (path_of(f, name, "", dir, sizeof dir) != 0 || (mkdir(dir, 0755) != 0 && errno != EEXIST)) {
        set_err(err, errlen, "cannot create", dir);
        return -1;
    }
    if (write_config(f, name, err, errlen) != 0)
        return -1;
    snprintf(config, sizeof config, "--config.file=%s/prometheus.yml", dir);
    snprintf(storage, sizeof storage, "--storage.tsdb.path=%s/data", dir);
    snprintf(web, sizeof web, WEB_ARG "%s:%d", host, port);
    args[n++] = config;
    args[n++] = storage;
    args[n++] = web;
    args[n] = NULL;
    if (fleet_add_proc(f, name, exe, args, NULL, err, errlen) != 0)
        return -1;
    return fleet_set_ready_text(f, name, READY_TEXT, err, errlen);
}

int fleet_prometheus_targets(fleet *f, const char *name, const fleet_target *t, int n, char *err,
                             size_t errlen)
{
    char path[PATH_CAP];
    json_t *groups = json_array();
    char *text;
    int rc = -1;

    for (int i = 0; i < n; i++)
        json_array_append_new(groups, json_pack("{s:[s], s:{s:s}}", "targets", t[i].addr, "labels",
                                                "process", t[i].name));
    text = json_dumps(groups, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL || path_of(f, name, "targets.json", path, sizeof path) != 0)
        snprintf(err, errlen, "%s: out of memory, or the home's path is too long", name);
    else
        rc = replace_file(path, text, err, errlen);
    free(text);
    json_decref(groups);
    return rc;
}

const char *fleet_prometheus_url(const fleet *f, const char *name, char *buf, size_t cap)
{
    const char *addr = fleet_arg(f, name, WEB_ARG);

    if (addr == NULL)
        return NULL;
    snprintf(buf, cap, "http://%s", addr);
    return buf;
}
