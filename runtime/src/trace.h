/* trace.h - W3C trace context inside the runtime: a handler's trace, and each emit's new span. */
#ifndef SAGA_TRACE_H
#define SAGA_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "saga/event.h"

/* Seeds a span id generator from the kernel's randomness. */
void saga__trace_seed(uint64_t *rng);

/* The trace context a handler continues: from (an event's trace, or a
 * command's traceparent header; NULL or empty allowed) when it is a valid
 * traceparent, otherwise a new trace with a random trace id. */
void saga__trace_context(saga_traceparent *ctx, const char *from, uint64_t *rng);

/* Writes the traceparent of an event emitted in ctx into out (cap at least
 * SAGA_TRACEPARENT_LEN + 1): ctx's trace id and flags, a new span id. */
void saga__trace_child(const saga_traceparent *ctx, uint64_t *rng, char *out, size_t cap);

#endif
