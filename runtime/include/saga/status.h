/* status.h - The one status type of the saga runtime and its text.
 *
 * Every public function returns a saga_status. SAGA_OK is zero; everything
 * else is an error whose text saga_strerror() gives. Where a status wraps a
 * cnats or LMDB failure, the detail (their code and text) is kept in the
 * service's last-error buffer, see saga_service_last_error(). */
#ifndef SAGA_STATUS_H
#define SAGA_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X-macro: name, text. The order fixes the numeric values. */
#define SAGA_STATUS_MAP(XX)                                                                        \
    XX(OK, "success")                                                                              \
    XX(EINVAL, "invalid argument")                                                                 \
    XX(ENOMEM, "out of memory")                                                                    \
    XX(EDECODE, "message does not decode")                                                         \
    XX(EVALIDATE, "message fails validation")                                                      \
    XX(ETOOBIG, "value exceeds its size cap")                                                      \
    XX(ENOTFOUND, "not found")                                                                     \
    XX(EEXIST, "already exists")                                                                   \
    XX(ESTORE, "local store (LMDB) error")                                                         \
    XX(EMAPFULL, "local store map is full")                                                        \
    XX(ENATS, "NATS error")                                                                        \
    XX(ETIMEOUT, "timed out")                                                                      \
    XX(ERETRY, "transient failure, retry later")                                                   \
    XX(EREJECT, "permanent failure, dead-letter the message")                                      \
    XX(EUNKNOWN, "unknown event type")                                                             \
    XX(PARKED, "event parked until its predecessor arrives")                                       \
    XX(ESTOPPED, "service is stopping")                                                            \
    XX(EIO, "input/output error")

typedef enum saga_status {
#define XX(name, text) SAGA_##name,
    SAGA_STATUS_MAP(XX)
#undef XX
        SAGA_STATUS_COUNT
} saga_status;

/* Returns a static, never-NULL string for any value, known or not. */
const char *saga_strerror(saga_status st);

/* Returns the symbolic name ("EINVAL"), static, never NULL. */
const char *saga_status_name(saga_status st);

#ifdef __cplusplus
}
#endif
#endif
