/* secure.c - the fleet's identities, the permissions the brokers enforce for each, and
 * its TLS material (secure.h). Passwords come from /dev/urandom and certificates from
 * the openssl command: no cryptography of our own. */
#define _GNU_SOURCE /* asprintf */
#include "secure.h"

#include "fleet.h"
#include "saga/client.h"
#include "saga/wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    SEC_PATH_CAP = 4096,
    PASSWORD_BYTES = 24, /* 192 random bits, written as 48 hex digits */
    MAX_IDENTITIES = 256,
    OPENSSL_WAIT_MS = 60000,
    CERT_DAYS = 825,
};

#define OPERATOR "operator"
#define CLIENT "client"

/* home/rel (rel formatted with one string argument, or none). */
static int sec_path(char *buf, size_t cap, const char *home, const char *rel, const char *arg)
{
    char tail[SEC_PATH_CAP];
    int n = snprintf(tail, sizeof tail, rel, arg != NULL ? arg : "");
    if (n < 0 || (size_t)n >= sizeof tail)
        return -1;
    /* Joined by hand: gcc 12 cannot see that a checked snprintf of both fits. */
    size_t hl = strlen(home), tl = (size_t)n;
    if (hl + 1 + tl >= cap)
        return -1;
    memcpy(buf, home, hl);
    buf[hl] = '/';
    memcpy(buf + hl + 1, tail, tl + 1);
    return 0;
}

static int is_dir(const char *home, const char *rel)
{
    char path[SEC_PATH_CAP];
    struct stat st;
    return sec_path(path, sizeof path, home, rel, NULL) == 0 && stat(path, &st) == 0 &&
           S_ISDIR(st.st_mode);
}

int fleet__sec_flags(const char *home)
{
    return (is_dir(home, "auth") ? FLEET_AUTH : 0) | (is_dir(home, "tls") ? FLEET_TLS : 0);
}

static int make_dir(const char *home, const char *rel)
{
    char path[SEC_PATH_CAP];
    if (sec_path(path, sizeof path, home, rel, NULL) != 0)
        return -1;
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* ---- identities ---------------------------------------------------------------- */

static int valid_identity(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return 0;
    return 1;
}

const char *fleet__sec_identity_of(const char *proc, char *buf, size_t cap)
{
    size_t n = strlen(proc);
    const char *dash = strrchr(proc, '-');
    /* "payment-2": an instance of payment. Other dashes (a --with PATH's file name)
     * become underscores, since a participant's name has none. */
    if (dash != NULL && dash[1] != '\0' && strspn(dash + 1, "0123456789") == strlen(dash + 1))
        n = (size_t)(dash - proc);
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = proc[i] == '-' ? '_' : proc[i];
    buf[n] = '\0';
    return buf;
}

int fleet__sec_identity(const char *home, const char *name, int *created, char *err, size_t errlen)
{
    char path[SEC_PATH_CAP], line[64 + 2 * PASSWORD_BYTES + 2];
    unsigned char rnd[PASSWORD_BYTES];
    int fd, rfd, n;
    ssize_t got;

    *created = 0;
    if (!valid_identity(name)) {
        fleet__set_err(err, errlen, "'%s' is no identity name ([a-z0-9_]{1,32})", name);
        return -1;
    }
    if (sec_path(path, sizeof path, home, "auth/%s.creds", name) != 0)
        return -1;
    if (access(path, F_OK) == 0)
        return 0;
    rfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    got = rfd >= 0 ? read(rfd, rnd, sizeof rnd) : -1;
    if (rfd >= 0)
        close(rfd);
    if (got != (ssize_t)sizeof rnd) {
        fleet__set_err(err, errlen, "cannot read /dev/urandom: %s", strerror(errno));
        return -1;
    }
    n = snprintf(line, sizeof line, "%s:", name);
    for (size_t i = 0; i < sizeof rnd; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%02x", rnd[i]);
    line[n++] = '\n';
    memset(rnd, 0, sizeof rnd);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, (size_t)n) != n || close(fd) != 0) {
        fleet__set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            unlink(path);
        return -1;
    }
    memset(line, 0, sizeof line);
    *created = 1;
    return 0;
}

/* ---- permissions --------------------------------------------------------------- */

/* The publish and subscribe rights of one identity. A participant P (every service and
 * extension) may publish its own event types on every partition, its dead letters and
 * the JetStream API calls the runtime makes (create the streams if missing, read their
 * and its consumers' state, create or update durable consumers), answer the requests
 * it receives and acknowledge the messages delivered to it (allow_responses: each
 * delivery's reply subject is its acknowledgement's), and subscribe to its replies, its
 * consumers' deliveries, its commands, queries and control subjects, and discovery.
 * Deleting or purging streams and consumers, replaying dead letters, changing fault
 * plans and setting stock are the operator's.
 *
 * Acknowledgements are not granted as subjects ("$JS.ACK.SAGA_EVENTS.>"): the broker
 * (nats-server 2.9) keeps, per connection with allow_responses, every reply subject it
 * delivered until the client publishes to it or two minutes pass, and beyond 4,096 of
 * them it walks them all at every delivery. An acknowledgement allowed by a subject
 * never uses its entry, so the walk grew with two minutes of deliveries and the
 * authenticated fleet stalled under load (docs/security.md). Allowed as a response, an
 * acknowledgement uses its entry, and only a participant the message was delivered to
 * may acknowledge it. */
static void write_list(FILE *fp, const char *what, const char *const *subjects, const char *p)
{
    fprintf(fp, "        %s: [", what);
    for (int i = 0; subjects[i] != NULL; i++) {
        fprintf(fp, "%s\"", i > 0 ? ", " : "");
        fprintf(fp, subjects[i], p);
        fprintf(fp, "\"");
    }
    fprintf(fp, "]\n");
}

static const char *const PARTICIPANT_PUB[] = {"evt.*.%s.>",
                                              "dlq.%s",
                                              "$JS.API.STREAM.CREATE." SAGA_STREAM_EVENTS,
                                              "$JS.API.STREAM.CREATE." SAGA_STREAM_DLQ,
                                              "$JS.API.STREAM.INFO." SAGA_STREAM_EVENTS,
                                              "$JS.API.STREAM.INFO." SAGA_STREAM_DLQ,
                                              "$JS.API.CONSUMER.DURABLE.CREATE." SAGA_STREAM_EVENTS
                                              ".*",
                                              "$JS.API.CONSUMER.INFO." SAGA_STREAM_EVENTS ".*",
                                              NULL};
static const char *const PARTICIPANT_SUB[] = {"_INBOX.>",    "_saga.dlv.>",   "saga.cmd.%s.>",
                                              "saga.q.%s.>", "saga.ctl.%s.>", SAGA_SUBJ_DISCOVER,
                                              NULL};
static const char *const CLIENT_PUB[] = {SAGA_SUBJ_ORDER_PLACE, SAGA_SUBJ_ORDER_CANCEL,
                                         SAGA_SUBJ_STOCK_GET, "saga.q.>", NULL};
static const char *const CLIENT_SUB[] = {"_INBOX.>", NULL};
static const char *const ALL[] = {">", NULL};

static void write_user(FILE *fp, const char *user, const char *password)
{
    const char *const *pub = PARTICIPANT_PUB, *const *sub = PARTICIPANT_SUB;
    int responses = 1;
    if (strcmp(user, OPERATOR) == 0) {
        pub = sub = ALL;
        responses = 0;
    } else if (strcmp(user, CLIENT) == 0) {
        pub = CLIENT_PUB;
        sub = CLIENT_SUB;
        responses = 0;
    }
    fprintf(fp, "    {user: \"%s\", password: \"%s\", permissions: {\n", user, password);
    write_list(fp, "publish", pub, user);
    write_list(fp, "subscribe", sub, user);
    if (responses)
        fprintf(fp, "        allow_responses: true\n");
    fprintf(fp, "    }}\n");
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int creds_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 6 && strcmp(d->d_name + n - 6, ".creds") == 0;
}

static int write_auth(FILE *fp, const char *home)
{
    char dir[SEC_PATH_CAP], path[SEC_PATH_CAP * 2];
    struct dirent **names = NULL;
    int n, rc = 0;

    if (sec_path(dir, sizeof dir, home, "auth", NULL) != 0)
        return -1;
    n = scandir(dir, &names, creds_file, by_name);
    if (n < 0)
        return -1;
    fprintf(fp, "# Every client authenticates; each identity may publish and subscribe only\n"
                "# where docs/security.md says (SAGA_HOME/auth/NAME.creds hold the passwords).\n"
                "authorization {\n  timeout: 2\n  users = [\n");
    for (int i = 0; i < n && i < MAX_IDENTITIES; i++) {
        char user[SAGA_CREDS_FIELD_MAX + 1], password[SAGA_CREDS_FIELD_MAX + 1], why[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (saga_client_read_creds(path, user, password, why, sizeof why) != 0 ||
            !valid_identity(user) || strspn(password, "0123456789abcdef") != strlen(password))
            rc = -1; /* a broken file must not leave the fleet open: no config at all */
        else
            write_user(fp, user, password);
        memset(password, 0, sizeof password);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    fprintf(fp, "  ]\n}\n");
    return rc;
}

/* ---- TLS ----------------------------------------------------------------------- */

static void write_tls_files(FILE *fp, const char *home, const char *indent)
{
    fprintf(fp,
            "%stls {\n"
            "%s  cert_file: \"%s/tls/server.pem\"\n"
            "%s  key_file: \"%s/tls/server-key.pem\"\n"
            "%s  ca_file: \"%s/tls/ca.pem\"\n"
            "%s  verify: true\n"
            "%s  timeout: 2\n"
            "%s}\n",
            indent, indent, home, indent, home, indent, home, indent, indent, indent);
}

int fleet__sec_write_conf(FILE *fp, const char *home)
{
    int flags = fleet__sec_flags(home);
    if ((flags & FLEET_AUTH) && write_auth(fp, home) != 0)
        return -1;
    if (flags & FLEET_TLS) {
        fprintf(fp, "# TLS only, with the fleet's CA; clients show a certificate of it too.\n");
        write_tls_files(fp, home, "");
    }
    return ferror(fp) ? -1 : 0;
}

int fleet__sec_write_cluster_tls(FILE *fp, const char *home)
{
    if (fleet__sec_flags(home) & FLEET_TLS)
        write_tls_files(fp, home, "  ");
    return ferror(fp) ? -1 : 0;
}

/* The openssl command, from PATH (fleet_spawn wants a path). */
static int find_openssl(char *buf, size_t cap)
{
    const char *path = getenv("PATH");
    if (path == NULL || path[0] == '\0')
        path = "/usr/bin:/bin";
    while (*path != '\0') {
        size_t n = strcspn(path, ":");
        int w = snprintf(buf, cap, "%.*s/openssl", (int)n, path);
        if (n > 0 && w > 0 && (size_t)w < cap && access(buf, X_OK) == 0)
            return 0;
        path += n + (path[n] == ':');
    }
    return -1;
}

/* Runs openssl with args (NULL-terminated), its output into tls/openssl.log. */
static int run_openssl(const char *home, const char *const *args, char *err, size_t errlen)
{
    char exe[SEC_PATH_CAP], log[SEC_PATH_CAP];
    const char *argv[24];
    int n = 0, status = 0;
    pid_t pid;

    if (find_openssl(exe, sizeof exe) != 0) {
        fleet__set_err(err, errlen,
                       "--tls needs the openssl command (Debian package openssl; "
                       "deploy/setup installs it)");
        return -1;
    }
    argv[n++] = exe;
    for (int i = 0; args[i] != NULL && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    sec_path(log, sizeof log, home, "tls/openssl.log", NULL);
    pid = fleet_spawn(argv, NULL, log, 0);
    if (pid < 0 || fleet_pid_wait(pid, OPENSSL_WAIT_MS, &status) != 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        if (pid > 0 && status == 0)
            fleet_pid_kill(pid);
        fleet__set_err(err, errlen, "openssl %s failed: see %s", args[0], log);
        return -1;
    }
    return 0;
}

/* A key and a certificate signed by the CA: tls/NAME.pem and tls/NAME-key.pem. */
static int issue(const char *home, const char *name, const char *cn, const char *ext, char *err,
                 size_t errlen)
{
    char key[SEC_PATH_CAP], csr[SEC_PATH_CAP], crt[SEC_PATH_CAP], ca[SEC_PATH_CAP],
        cakey[SEC_PATH_CAP], extf[SEC_PATH_CAP], subj[128], days[16];
    FILE *fp;
    int rc;

    sec_path(key, sizeof key, home, "tls/%s-key.pem", name);
    sec_path(csr, sizeof csr, home, "tls/%s.csr", name);
    sec_path(crt, sizeof crt, home, "tls/%s.pem", name);
    sec_path(extf, sizeof extf, home, "tls/%s.ext", name);
    sec_path(ca, sizeof ca, home, "tls/ca.pem", NULL);
    sec_path(cakey, sizeof cakey, home, "tls/ca-key.pem", NULL);
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    snprintf(days, sizeof days, "%d", CERT_DAYS);
    fp = fopen(extf, "w");
    if (fp == NULL || fputs(ext, fp) == EOF || fclose(fp) != 0) {
        fleet__set_err(err, errlen, "cannot write %s: %s", extf, strerror(errno));
        return -1;
    }
    const char *req[] = {"req",    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                         "-nodes", "-keyout", key,  "-out",     csr,
                         "-subj",  subj,      NULL};
    const char *sign[] = {
        "x509",  "-req", "-in",      csr,  "-CA",  ca,  "-CAkey", cakey, "-CAcreateserial",
        "-days", days,   "-extfile", extf, "-out", crt, NULL};
    rc = run_openssl(home, req, err, errlen);
    if (rc == 0)
        rc = run_openssl(home, sign, err, errlen);
    if (rc == 0)
        rc = chmod(key, 0600);
    unlink(csr);
    unlink(extf);
    return rc;
}

static int make_tls(const char *home, const char *const *hosts, char *err, size_t errlen)
{
    char key[SEC_PATH_CAP], ca[SEC_PATH_CAP], days[16], san[1024];
    int n;

    if (make_dir(home, "tls") != 0) {
        fleet__set_err(err, errlen, "cannot create %s/tls: %s", home, strerror(errno));
        return -1;
    }
    sec_path(key, sizeof key, home, "tls/ca-key.pem", NULL);
    sec_path(ca, sizeof ca, home, "tls/ca.pem", NULL);
    snprintf(days, sizeof days, "%d", 10 * CERT_DAYS);
    const char *req[] = {"req",
                         "-x509",
                         "-newkey",
                         "ec",
                         "-pkeyopt",
                         "ec_paramgen_curve:prime256v1",
                         "-nodes",
                         "-keyout",
                         key,
                         "-out",
                         ca,
                         "-days",
                         days,
                         "-subj",
                         "/CN=saga fleet CA",
                         "-addext",
                         "basicConstraints=critical,CA:TRUE",
                         "-addext",
                         "keyUsage=critical,keyCertSign,cRLSign",
                         NULL};
    if (run_openssl(home, req, err, errlen) != 0 || chmod(key, 0600) != 0)
        return -1;
    /* The brokers' certificate serves clients and, on a cluster, the routes both
     * ways, so it is good for either end of a connection. */
    n = snprintf(san, sizeof san, "subjectAltName=IP:127.0.0.1,DNS:localhost");
    for (int i = 0; hosts != NULL && hosts[i] != NULL; i++)
        if (strcmp(hosts[i], "127.0.0.1") != 0 && n > 0 && (size_t)n < sizeof san)
            n += snprintf(san + n, sizeof san - (size_t)n, ",%s:%s",
                          strspn(hosts[i], "0123456789.") == strlen(hosts[i]) ? "IP" : "DNS",
                          hosts[i]);
    if (n < 0 || (size_t)n + 128 >= sizeof san) {
        fleet__set_err(err, errlen, "too many broker hosts for one certificate");
        return -1;
    }
    snprintf(san + n, sizeof san - (size_t)n,
             "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n");
    if (issue(home, "server", "saga nats", san, err, errlen) != 0)
        return -1;
    return issue(home, "client", "saga client",
                 "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n", err, errlen);
}

int fleet__sec_enable(const char *home, int flags, const char *const *hosts, char *err,
                      size_t errlen)
{
    int have = fleet__sec_flags(home), created;

    if ((flags & FLEET_TLS) && !(have & FLEET_TLS) && make_tls(home, hosts, err, errlen) != 0) {
        /* Half-made material would turn TLS on with files missing. */
        char dir[SEC_PATH_CAP];
        if (sec_path(dir, sizeof dir, home, "tls", NULL) == 0)
            fleet_rmrf(dir);
        return -1;
    }
    if (!(flags & FLEET_AUTH) || (have & FLEET_AUTH))
        return 0;
    if (make_dir(home, "auth") != 0) {
        fleet__set_err(err, errlen, "cannot create %s/auth: %s", home, strerror(errno));
        return -1;
    }
    if (fleet__sec_identity(home, OPERATOR, &created, err, errlen) != 0 ||
        fleet__sec_identity(home, CLIENT, &created, err, errlen) != 0)
        return -1;
    return 0;
}

/* ---- clients ------------------------------------------------------------------- */

int fleet__sec_env(const char *home, const char *identity, char **out, int max)
{
    int flags = fleet__sec_flags(home), n = 0;
    char path[SEC_PATH_CAP];

    if ((flags & FLEET_AUTH) && identity != NULL && n < max &&
        sec_path(path, sizeof path, home, "auth/%s.creds", identity) == 0 &&
        asprintf(&out[n], "SAGA_NATS_CREDS=%s", path) > 0)
        n++;
    if (flags & FLEET_TLS) {
        static const char *const files[][2] = {{"SAGA_NATS_CA", "tls/ca.pem"},
                                               {"SAGA_NATS_CERT", "tls/client.pem"},
                                               {"SAGA_NATS_KEY", "tls/client-key.pem"}};
        for (size_t i = 0; i < 3 && n < max; i++)
            if (sec_path(path, sizeof path, home, files[i][1], NULL) == 0 &&
                asprintf(&out[n], "%s=%s", files[i][0], path) > 0)
                n++;
    }
    out[n < max ? n : max - 1] = NULL;
    return n;
}

/* What a client needs to reach a fleet as identity: SAGA_NATS_CREDS, SAGA_NATS_CA,
 * SAGA_NATS_CERT and SAGA_NATS_KEY from env (when env is set), each else the home's
 * file when the home has one. */
static natsStatus sec_client(const char *home, const char *identity, int env, natsOptions *opts,
                             char *err, size_t errlen)
{
    static const char *const VARS[] = {"SAGA_NATS_CREDS", "SAGA_NATS_CA", "SAGA_NATS_CERT",
                                       "SAGA_NATS_KEY"};
    static const char *const FILES[] = {"auth/%s.creds", "tls/ca.pem", "tls/client.pem",
                                        "tls/client-key.pem"};
    char path[4][SEC_PATH_CAP];
    const char *use[4];
    int flags = home != NULL ? fleet__sec_flags(home) : 0;

    for (int i = 0; i < 4; i++) {
        const char *v = env ? getenv(VARS[i]) : NULL;
        int on = i == 0 ? (flags & FLEET_AUTH) && identity != NULL : (flags & FLEET_TLS) != 0;
        use[i] = NULL;
        if (v != NULL && v[0] != '\0')
            use[i] = v;
        else if (on && sec_path(path[i], sizeof path[i], home, FILES[i], identity) == 0 &&
                 access(path[i], R_OK) == 0)
            use[i] = path[i];
    }
    return saga_client_secure(opts, use[0], use[1], use[2], use[3], err, errlen);
}

natsStatus fleet__sec_client(const char *home, const char *identity, natsOptions *opts)
{
    return sec_client(home, identity, 0, opts, NULL, 0);
}

natsStatus fleet_client_env(natsOptions *opts, const char *home, const char *identity, char *err,
                            size_t errlen)
{
    return sec_client(home, identity, 1, opts, err, errlen);
}
