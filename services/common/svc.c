/* svc.c - Small helpers the services share (see svc.h). */
#include "svc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SVC_LOG_LINE_MAX 1024

/* ---- JSON ------------------------------------------------------------- */

/* The one reply a query gets when its JSON could not be built. */
static const char json_failed[] = "{\"error\":\"out of memory building the reply\"}";

saga_status svc_json_send(saga_ctx *ctx, json_t *obj)
{
    saga_status st = SAGA_ENOMEM;
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (text == NULL) {
        saga_ctx_reply(ctx, json_failed, sizeof(json_failed) - 1);
        goto out;
    }
    st = saga_ctx_reply(ctx, text, strlen(text));
out:
    free(text);
    json_decref(obj);
    return st;
}

saga_status svc_reply_not_order_id(saga_ctx *ctx, const char *service)
{
    return svc_json_send(
        ctx, json_pack("{s:s, s:b, s:o}", "service", service, "found", 0, "error",
                       json_sprintf("the payload must be an order id: 1 to %d characters from "
                                    "A-Z, a-z, 0-9, _ and -",
                                    SAGA_ORDER_ID_MAX)));
}

/* ---- validation ------------------------------------------------------- */

int svc_valid_ident(const char *s, size_t max)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= max || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

/* ---- queries ---------------------------------------------------------- */

int svc_query_order_id(const uint8_t *data, size_t len, char order_id[SAGA_ORDER_ID_MAX + 1])
{
    order_id[0] = '\0';
    if (data == NULL)
        return 0;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' ' ||
                       data[len - 1] == '\t'))
        len--;
    if (len == 0 || len > SAGA_ORDER_ID_MAX)
        return 0;
    memcpy(order_id, data, len);
    order_id[len] = '\0';
    if (saga_valid_order_id(order_id))
        return 1;
    order_id[0] = '\0';
    return 0;
}

/* ---- protobuf-c messages ---------------------------------------------- */

/* Packs msg into *out, which the caller frees with free(); set only on SAGA_OK. */
static saga_status pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL)
        return SAGA_ENOMEM;
    protobuf_c_message_pack(msg, buf);
    *out = buf;
    *len = n;
    return SAGA_OK;
}

saga_status svc_emit(saga_ctx *ctx, const char *type, const char *order_id,
                     const ProtobufCMessage *msg)
{
    uint8_t *buf;
    size_t len;
    saga_status st = pack(msg, &buf, &len);
    if (st != SAGA_OK)
        return st;
    st = saga_ctx_emit(ctx, type, order_id, 1, buf, len);
    free(buf);
    return st;
}

saga_status svc_reply(saga_ctx *ctx, const ProtobufCMessage *msg)
{
    uint8_t *buf;
    size_t len;
    saga_status st = pack(msg, &buf, &len);
    if (st != SAGA_OK)
        return st;
    st = saga_ctx_reply(ctx, buf, len);
    free(buf);
    return st;
}

/* ---- state records ---------------------------------------------------- */

saga_status svc_state_get(saga_ctx *ctx, const char *order_id, const char *key, void *out,
                          size_t size)
{
    return saga_ctx_get_record(ctx, order_id, key, out, size);
}

/* ---- logging ---------------------------------------------------------- */

void svc_log(const saga_config *cfg, saga_log_level level, const char *fmt, ...)
{
    char line[SVC_LOG_LINE_MAX];
    va_list ap;
    if (cfg->log == NULL || level > cfg->log_level)
        return;
    int n = snprintf(line, sizeof(line), "svc=%s ", cfg->name);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    cfg->log(cfg->log_udata, level, line);
}

saga_status svc_wire(saga_service *svc, const svc_wiring *w)
{
    saga_status st = w->emits != NULL ? saga_service_emits(svc, w->emits) : SAGA_OK;
    for (const svc_sub *s = w->subs; st == SAGA_OK && s != NULL && s->pattern != NULL; s++)
        st = saga_service_subscribe(svc, s->pattern, s->fn, NULL);
    for (const svc_cmd *c = w->cmds; st == SAGA_OK && c != NULL && c->subject != NULL; c++)
        st = saga_service_add_command(svc, c->subject, c->fn, NULL);
    if (st == SAGA_OK && w->on_timer != NULL)
        st = saga_service_on_timer(svc, w->on_timer, NULL);
    if (st == SAGA_OK && w->precommit != NULL)
        st = saga_service_on_precommit(svc, w->precommit, NULL);
    return st;
}
