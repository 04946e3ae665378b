/* client.h - How a NATS client of a saga fleet proves who it is and checks the
 * server: a user and password from a credentials file, and TLS with a CA of the
 * fleet's own. The services take these from SAGA_NATS_CREDS, SAGA_NATS_CA,
 * SAGA_NATS_CERT and SAGA_NATS_KEY (config.h); sagactl and saga-bench use the
 * same function, so every client reads the same files the same way.
 * docs/security.md says which identity may do what.
 *
 * Not included by saga.h: it names cnats' types. */
#ifndef SAGA_CLIENT_H
#define SAGA_CLIENT_H

#include <stddef.h>

#include <nats/nats.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SAGA_CREDS_FIELD_MAX 255 /* longest user or password */

/* Reads a credentials file: one line "USER:PASSWORD" (a trailing newline is
 * allowed). The file must be a regular file that only its owner may read or
 * write (mode 0600 or 0400): a password others can read is no secret. Copies
 * the fields into user and password (each SAGA_CREDS_FIELD_MAX + 1 bytes).
 * Returns 0, or -1 with the reason in err. */
int saga_client_read_creds(const char *path, char *user, char *password, char *err, size_t errlen);

/* Applies to opts what is set of: creds (a credentials file, as above), ca (the
 * PEM CA the server's certificate must chain to), cert and key (a PEM client
 * certificate and its key, for a server that verifies clients; both or
 * neither). NULL or "" skips a setting. A CA makes the client verify the
 * server whenever the connection is TLS: a tls:// URL, or a server that
 * requires TLS (cnats then switches to TLS by itself). Returns NATS_OK, or a
 * status with the reason (the file and what is wrong with it) in err. */
natsStatus saga_client_secure(natsOptions *opts, const char *creds, const char *ca,
                              const char *cert, const char *key, char *err, size_t errlen);

/* A sentence for a connect that failed with s: for an authorization
 * violation, that the credentials were missing or refused and which setting
 * gives them; for a TLS failure, that the server could not be verified;
 * otherwise natsStatus_GetText(s) and cnats' last error. Into buf; returns
 * buf. */
const char *saga_client_connect_error(natsStatus s, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
