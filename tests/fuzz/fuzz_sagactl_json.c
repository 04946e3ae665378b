/* fuzz_sagactl_json.c - sagactl's JSON helpers over jansson (tools/sagactl/json.c)
 * on any reply. The input is "key\njson": the reply is read as a participant's
 * answer (ctl_json_reply), the key and a few keys the participants answer with
 * are looked up and shown as key=value, the whole reply is flattened for
 * people, and written back as --json writes it, which must read back as the
 * same value: what sagactl prints is always JSON, whatever the fleet sent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define INPUT_MAX 8192

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
        if (back == NULL || !json_equal(back, reply))
            abort();
        json_decref(back);
    }
out:
    ctl_buf_cleanup(&b);
    json_decref(reply);
    free(k);
    return 0;
}
