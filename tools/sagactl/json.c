/* json.c - The few JSON helpers sagactl keeps over jansson: network text as a
 * JSON string, a participant's reply as a JSON value, an object as key=value
 * for people, and the one format every --json output is written in. */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Compact, and reals as the runtime writes them (0.3, not 0.29999999999999999). */
#define CTL_JSON_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))

json_t *ctl_json_text(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    /* Not UTF-8 (a header or a field from the network): jansson would refuse
     * it, so bytes outside ASCII are shown as '?'. */
    char *copy = strdup(s);
    if (copy == NULL)
        return NULL;
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

json_t *ctl_json_reply(const char *data, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(data, len, 0, &err);
    if (json_is_object(j))
        return j;
    json_decref(j);
    /* Not one object: shown as the text it is. */
    char *text = strndup(data, len);
    j = text != NULL ? ctl_json_text(text) : NULL;
    free(text);
    return j;
}

static int add_dump(const char *data, size_t size, void *udata)
{
    ctl_buf_add(udata, data, size);
    return 0;
}

void ctl_buf_json(ctl_buf *b, const json_t *j)
{
    if (j == NULL || json_dump_callback(j, add_dump, b, CTL_JSON_FLAGS) != 0)
        b->oom = 1;
}

void ctl_json_add_pair(ctl_buf *b, const char *key, const json_t *v)
{
    const char *s = json_string_value(v);
    int plain = s != NULL && *s != '\0';
    for (const char *p = s; plain && *p != '\0'; p++)
        plain = *p != ' ' && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20;
    ctl_buf_printf(b, "%s=", key);
    /* Strings lose their quotes when they need none, for reading ease. */
    if (plain)
        ctl_buf_puts(b, s);
    else
        ctl_buf_json(b, v);
}

void ctl_json_flatten(ctl_buf *b, json_t *j, const char *const *skip)
{
    const char *key;
    json_t *v;
    int first = 1;
    if (!json_is_object(j)) {
        if (json_is_string(j))
            ctl_buf_puts(b, json_string_value(j));
        else
            ctl_buf_json(b, j);
        return;
    }
    json_object_foreach(j, key, v)
    {
        int skipped = json_is_string(v) && json_string_length(v) == 0;
        for (size_t i = 0; skip != NULL && skip[i] != NULL && !skipped; i++)
            skipped = strcmp(key, skip[i]) == 0;
        /* Empty strings say nothing to a reader; they only widen the line. */
        if (skipped)
            continue;
        if (!first)
            ctl_buf_puts(b, " ");
        ctl_json_add_pair(b, key, v);
        first = 0;
    }
}

int ctl_print_json(const char *cmd, json_t *j)
{
    ctl_buf b;
    ctl_buf_init(&b);
    ctl_buf_json(&b, j);
    ctl_buf_puts(&b, "\n");
    json_decref(j);
    int rc = ctl_print(cmd, &b);
    ctl_buf_cleanup(&b);
    return rc;
}
