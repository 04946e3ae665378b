/* secure.h - the fleet's identities, their permissions and its TLS material, all kept
 * under the home directory (private to the fleet launcher; fleet.h has the API):
 *
 *   auth/NAME.creds    one identity: "NAME:PASSWORD", mode 0600. operator (sagactl),
 *                      client (order-placing clients) and one per participant
 *   tls/ca.pem         the fleet's own CA (tls/ca-key.pem, 0600, signs the others)
 *   tls/server.pem     the brokers' certificate (127.0.0.1, localhost, the brokers'
 *                      hosts), also shown on cluster routes
 *   tls/client.pem     the certificate every client shows (tls/client-key.pem, 0600)
 *
 * The existence of auth/ and tls/ is what turns authentication and TLS on. */
#ifndef SAGA_FLEET_SECURE_H
#define SAGA_FLEET_SECURE_H

#include <stddef.h>
#include <stdio.h>

#include <nats/nats.h>

/* Writes a sentence into err (errlen bytes; nothing when err is NULL): fleet.c's. */
void fleet__set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* FLEET_AUTH | FLEET_TLS as the home has them. */
int fleet__sec_flags(const char *home);

/* Turns on what flags ask for that is not on yet: auth/ with the operator and client
 * identities; tls/ with a CA and certificates (openssl; hosts: the brokers' listen
 * addresses, NULL-terminated). Returns 0 or -1 with err set. */
int fleet__sec_enable(const char *home, int flags, const char *const *hosts, char *err,
                      size_t errlen);

/* Creates identity name's credentials unless they exist; *created says whether they
 * were new (the brokers must then load them). Returns 0 or -1 with err set. */
int fleet__sec_identity(const char *home, const char *name, int *created, char *err, size_t errlen);

/* The identity a process named proc runs as: its name without an instance suffix
 * ("payment-2" runs as "payment"). Into buf (cap >= 33). */
const char *fleet__sec_identity_of(const char *proc, char *buf, size_t cap);

/* Writes the authorization block (every identity of auth/ with its permissions) and
 * the tls block into a broker's configuration; cluster: also the routes' tls block,
 * to be written inside the cluster block. 0 or -1. */
int fleet__sec_write_conf(FILE *fp, const char *home);
int fleet__sec_write_cluster_tls(FILE *fp, const char *home);

/* "KEY=VALUE" settings a process of identity needs (credentials, CA, client
 * certificate), malloc'ed, into out (at most max, NULL-terminated); returns how many. */
int fleet__sec_env(const char *home, const char *identity, char **out, int max);

/* Applies identity's credentials (NULL: none) and the TLS material to opts. */
natsStatus fleet__sec_client(const char *home, const char *identity, natsOptions *opts);

#endif /* SAGA_FLEET_SECURE_H */
