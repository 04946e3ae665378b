/* trace.c - W3C trace context: reading a traceparent, and a new span for every emitted event.
 *
 * The ids come from SplitMix64 whose state the caller seeds once (the runtime
 * from the kernel, per service):
 * they need to be unique within a trace, not unpredictable, and drawing one
 * per event from getrandom(2) would cost a system call each. */
#include "saga/event.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "random.h"

/* Copies the n characters at s to dst (NUL-terminated) if they are lower-case
 * hex digits, and not all '0' unless zero_ok. Returns 1 if so, else 0. */
static int hex_field(const char *s, size_t n, char *dst, int zero_ok)
{
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
        nonzero |= c != '0';
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return nonzero || zero_ok;
}

int saga_traceparent_parse(const char *s, saga_traceparent *out)
{
    char version[3];
    size_t len = s != NULL ? strlen(s) : 0;
    if (len < SAGA_TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return 0;
    if (!hex_field(s, 2, version, 1) || strcmp(version, "ff") == 0)
        return 0;
    /* Version 00 is exactly 55 characters; a later version may append
     * fields after a '-', which a version-00 reader ignores. */
    if (strcmp(version, "00") == 0 ? len != SAGA_TRACEPARENT_LEN
                                   : len > SAGA_TRACEPARENT_LEN && s[55] != '-')
        return 0;
    return hex_field(s + 3, 32, out->trace_id, 0) && hex_field(s + 36, 16, out->span_id, 0) &&
           hex_field(s + 53, 2, out->flags, 1);
}

/* A random 64-bit id, never zero (the recommendation forbids all-zero ids). */
static uint64_t draw(uint64_t *rng)
{
    uint64_t v;
    do
        v = saga__splitmix64(rng);
    while (v == 0);
    return v;
}

void saga_traceparent_continue(saga_traceparent *ctx, const char *from, uint64_t *rng)
{
    if (saga_traceparent_parse(from, ctx))
        return;
    /* Nothing to continue: the handler starts a trace, sampled. */
    snprintf(ctx->trace_id, sizeof(ctx->trace_id), "%016" PRIx64 "%016" PRIx64, draw(rng),
             draw(rng));
    snprintf(ctx->span_id, sizeof(ctx->span_id), "%016" PRIx64, draw(rng));
    memcpy(ctx->flags, "01", 3);
}

void saga_traceparent_child(const saga_traceparent *ctx, uint64_t *rng, char *out, size_t cap)
{
    snprintf(out, cap, "00-%s-%016" PRIx64 "-%s", ctx->trace_id, draw(rng), ctx->flags);
}
