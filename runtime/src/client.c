/* client.c - Credentials and TLS for every NATS client of the fleet (saga/client.h). */
#define _GNU_SOURCE /* strcasestr */
#include "saga/client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* err may be NULL: then nothing is written (snprintf with size 0). */
#define set_err(err, errlen, ...) snprintf((err), (err) != NULL ? (errlen) : 0, __VA_ARGS__)

int saga_client_read_creds(const char *path, char *user, char *password, char *err, size_t errlen)
{
    /* "USER:PASSWORD\n" and one byte more, to see a file that is too long. */
    char buf[2 * (SAGA_CREDS_FIELD_MAX + 1) + 2];
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        set_err(err, errlen, "credentials file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        set_err(err, errlen,
                "credentials file %s: must be a regular file only its owner may read "
                "(chmod 600)",
                path);
        close(fd);
        return -1;
    }
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0 || (size_t)n == sizeof buf - 1) {
        set_err(err, errlen, "credentials file %s: %s", path, n < 0 ? strerror(errno) : "too long");
        return -1;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    char *colon = strchr(buf, ':');
    size_t ulen = colon != NULL ? (size_t)(colon - buf) : 0;
    size_t plen = colon != NULL ? strlen(colon + 1) : 0;
    if (colon == NULL || ulen == 0 || plen == 0 || ulen > SAGA_CREDS_FIELD_MAX ||
        plen > SAGA_CREDS_FIELD_MAX || strpbrk(buf, "\n\r") != NULL) {
        set_err(err, errlen, "credentials file %s: want one line USER:PASSWORD", path);
        return -1;
    }
    memcpy(user, buf, ulen);
    user[ulen] = '\0';
    memcpy(password, colon + 1, plen + 1);
    memset(buf, 0, sizeof buf);
    return 0;
}

static int given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

natsStatus saga_client_secure(natsOptions *opts, const char *creds, const char *ca,
                              const char *cert, const char *key, char *err, size_t errlen)
{
    natsStatus s = NATS_OK;

    if (given(creds)) {
        char user[SAGA_CREDS_FIELD_MAX + 1], password[SAGA_CREDS_FIELD_MAX + 1];
        if (saga_client_read_creds(creds, user, password, err, errlen) != 0)
            return NATS_INVALID_ARG;
        s = natsOptions_SetUserInfo(opts, user, password);
        memset(password, 0, sizeof password);
        if (s != NATS_OK) {
            set_err(err, errlen, "credentials %s: %s", creds, natsStatus_GetText(s));
            return s;
        }
    }
    if (given(ca)) {
        s = natsOptions_LoadCATrustedCertificates(opts, ca);
        if (s != NATS_OK) {
            set_err(err, errlen, "CA file %s (SAGA_NATS_CA): %s", ca, natsStatus_GetText(s));
            return s;
        }
    }
    if (given(cert) != given(key)) {
        set_err(err, errlen, "a client certificate needs both SAGA_NATS_CERT and SAGA_NATS_KEY");
        return NATS_INVALID_ARG;
    }
    if (given(cert)) {
        s = natsOptions_LoadCertificatesChain(opts, cert, key);
        if (s != NATS_OK)
            set_err(err, errlen, "client certificate %s with key %s: %s", cert, key,
                    natsStatus_GetText(s));
    }
    return s;
}

const char *saga_client_connect_error(natsStatus s, char *buf, size_t cap)
{
    const char *last = nats_GetLastError(NULL);
    if (last == NULL)
        last = "";
    if (s == NATS_NOT_PERMITTED || strcasestr(last, "authorization") != NULL)
        snprintf(buf, cap,
                 "the server refused the credentials (authorization violation): give this "
                 "client's identity with SAGA_NATS_CREDS (a fleet's are in SAGA_HOME/auth/)");
    else if (s == NATS_SSL_ERROR || s == NATS_SECURE_CONNECTION_REQUIRED ||
             s == NATS_SECURE_CONNECTION_WANTED)
        snprintf(buf, cap,
                 "TLS failed (%s%s%s): the server's certificate must chain to SAGA_NATS_CA "
                 "(a fleet's CA is SAGA_HOME/tls/ca.pem), and tls:// URLs need a TLS server",
                 natsStatus_GetText(s), last[0] != '\0' ? ": " : "", last);
    else
        snprintf(buf, cap, "%s%s%s", natsStatus_GetText(s), last[0] != '\0' ? ": " : "", last);
    return buf;
}
