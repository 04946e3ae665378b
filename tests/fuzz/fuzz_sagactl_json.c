/* fuzz_sagactl_json.c - sagactl's readers of service replies (tools/sagactl/json.c)
 * on any text. The input is "key\njson": the extractors look the key up (and
 * a few keys the services answer with), the member walk and the flattening
 * read the whole object. Every pointer they return must lie inside the text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define INPUT_MAX 8192
#define MEMBERS_MAX 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *json, size_t len, const char *p, size_t n)
{
    if (p < json || p + n > json + len)
        abort(); /* a reader pointed outside the reply */
}

static void extract(const char *json, size_t len, const char *key)
{
    char small[8], big[256];
    long long ll;
    int b;
    const char *raw;
    size_t rawlen;
    if (ctl_json_get_str(json, key, small, sizeof(small)) == 0 && strlen(small) >= sizeof(small))
        abort();
    if (ctl_json_get_str(json, key, big, sizeof(big)) == 0 && strlen(big) >= sizeof(big))
        abort();
    ctl_json_get_ll(json, key, &ll);
    ctl_json_get_bool(json, key, &b);
    if (ctl_json_get_raw(json, key, &raw, &rawlen) == 0)
        inside(json, len, raw, rawlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"status", "order_id", "found", "total_cents",
                                       "state",  "messages", "stock"};
    static const char *const skip[] = {"order_id", "found", NULL};
    char *text;
    if (size > INPUT_MAX)
        return 0;
    /* Replies are copied up to their first NUL (ctl_reply_copy), so the
     * readers only ever see a C string of the exact size. */
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *nl = strchr(text, '\n');
    const char *key = "status", *json = text;
    if (nl != NULL) {
        *nl = '\0';
        key = text;
        json = nl + 1;
    }
    size_t len = strlen(json);

    extract(json, len, key);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        extract(json, len, keys[i]);

    ctl_buf b;
    ctl_buf_init(&b);
    const char *cursor = NULL;
    ctl_json_member m;
    for (int i = 0; i < MEMBERS_MAX && ctl_json_next(json, &cursor, &m) == 1; i++) {
        inside(json, len, m.key, m.key_len);
        inside(json, len, m.value, m.value_len);
        ctl_json_key_is(&m, key);
        ctl_json_value_is(&m, "true");
        ctl_json_add_pair(&b, &m);
    }
    ctl_buf_reset(&b);
    ctl_json_flatten(&b, json, skip);
    ctl_buf_reset(&b);
    ctl_json_raw_object(&b, json);
    ctl_json_str(&b, json);
    ctl_buf_cleanup(&b);
    free(text);
    return 0;
}
