/* fuzz_sagactl_json.c - sagactl's JSON helpers over jansson (tools/sagactl/json.c)
 * on any reply. The input is "key\njson": the reply is read as a participant's
 * answer (ctl_json_reply), the key and a few keys the participants answer with
 * are looked up and shown as key=value, the whole reply is flattened for
 * people, and written back as --json writes it, which must read back as the
 * same value: what sagactl prints is always JSON, whatever the fleet sent. */
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define INPUT_MAX 8192

/* json_equal, except that reals need only agree to the 15 significant
 * digits sagactl prints them with (JSON_REAL_PRECISION(15): 0.1 reads as
 * 0.1, not as 0.10000000000000001). */
static int same(const json_t *a, const json_t *b)
{
    if (json_is_real(a) && json_is_real(b)) {
        double x = json_real_value(a), y = json_real_value(b);
        double scale = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
        return x == y || fabs(x - y) <= scale * 1e-14;
    }
    if (json_is_array(a) && json_is_array(b)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a) && json_is_object(b)) {
        const char *key;
        json_t *v;
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, key, v)
        {
            if (!same(v, json_object_get(b, key)))
                return 0;
        }
        return 1;
    }
    return json_equal(a, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"status", "order_id", "found", "total_cents",
                                       "state",  "faults",   "stock"};
    static const char *const skip[] = {"order_id", "found", NULL};
    const char *text = (const char *)data, *key = "status", *json = text;
    size_t keylen = strlen(key), len = size;
    if (size > INPUT_MAX)
        return 0;
    const char *nl = memchr(text, '\n', size);
    if (nl != NULL) {
        key = text;
        keylen = (size_t)(nl - text);
        json = nl + 1;
        len = size - keylen - 1;
    }
    char *k = strndup(key, keylen);
    json_t *reply = ctl_json_reply(json, len);
    ctl_buf b;
    ctl_buf_init(&b);
    if (k == NULL || reply == NULL)
        goto out;
    if (!json_is_object(reply) && !json_is_string(reply))
        abort(); /* a reply is an object or shown as text */
    for (size_t i = 0; i <= sizeof(keys) / sizeof(keys[0]); i++) {
        const char *name = i == 0 ? k : keys[i - 1];
        json_t *v = json_object_get(reply, name);
        if (v != NULL)
            ctl_json_add_pair(&b, name, v);
    }
    ctl_json_flatten(&b, reply, skip);

    /* What --json prints reads back as the same value. */
    ctl_buf_reset(&b);
    ctl_buf_json(&b, reply);
    if (ctl_buf_ok(&b)) {
        json_error_t err;
        json_t *back = json_loadb(ctl_buf_str(&b), b.len, JSON_DECODE_ANY, &err);
        if (back == NULL || !same(back, reply))
            abort();
        json_decref(back);
    }
out:
    ctl_buf_cleanup(&b);
    json_decref(reply);
    free(k);
    return 0;
}
