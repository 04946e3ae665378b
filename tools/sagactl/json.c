/* json.c - JSON for sagactl: escaped output, and a tiny extractor for the flat
 * objects the services answer queries with. Not a general parser: sagactl only
 * needs to read a few known keys and to pass whole replies on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

void ctl_json_str(ctl_buf *b, const char *s)
{
    if (s == NULL) {
        ctl_buf_puts(b, "null");
        return;
    }
    ctl_buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        switch (*p) {
        case '"':
            ctl_buf_add(b, "\\\"", 2);
            break;
        case '\\':
            ctl_buf_add(b, "\\\\", 2);
            break;
        case '\n':
            ctl_buf_add(b, "\\n", 2);
            break;
        case '\r':
            ctl_buf_add(b, "\\r", 2);
            break;
        case '\t':
            ctl_buf_add(b, "\\t", 2);
            break;
        default:
            /* Other control characters have no short escape; bytes >= 0x80
             * are passed through as the UTF-8 they are meant to be. */
            if (*p < 0x20 || *p == 0x7f)
                ctl_buf_printf(b, "\\u%04x", (unsigned)*p);
            else
                ctl_buf_add(b, (const char *)p, 1);
        }
    }
    ctl_buf_add(b, "\"", 1);
}

void ctl_json_key(ctl_buf *b, int first, const char *key)
{
    if (!first)
        ctl_buf_add(b, ",", 1);
    ctl_json_str(b, key);
    ctl_buf_add(b, ":", 1);
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Returns the end of the string starting at the quote p, past its closing
 * quote, or NULL if it is not terminated. */
static const char *skip_string(const char *p)
{
    for (p++; *p != '\0'; p++) {
        if (*p == '\\') {
            if (p[1] == '\0')
                return NULL;
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* Returns the end of the JSON value starting at p, or NULL if it is malformed
 * or truncated. Nesting is tracked only by depth: enough to find the end. */
static const char *skip_value(const char *p)
{
    int depth = 0;
    p = skip_ws(p);
    do {
        if (*p == '\0')
            return NULL;
        if (*p == '"') {
            p = skip_string(p);
            if (p == NULL)
                return NULL;
            continue;
        }
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (depth == 0)
                return p; /* end of the enclosing container */
            depth--;
        } else if (depth == 0 &&
                   (*p == ',' || *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) {
            return p;
        }
        p++;
    } while (depth > 0 || (*p != ',' && *p != '}' && *p != ']' && *p != '\0' && *p != ' ' &&
                           *p != '\n' && *p != '\t' && *p != '\r'));
    return p;
}

void ctl_json_raw_object(ctl_buf *b, const char *text)
{
    const char *p = text != NULL ? skip_ws(text) : NULL;
    const char *end = p != NULL && *p == '{' ? skip_value(p) : NULL;
    if (end != NULL && *skip_ws(end) == '\0')
        ctl_buf_add(b, p, (size_t)(end - p));
    else
        ctl_json_str(b, text);
}

/* Finds the value of "key" as a member name (preceded by '{' or ','), so that
 * the same text inside a string value does not match. */
static const char *find_value(const char *json, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = json; p != NULL && *p != '\0'; p++) {
        p = strchr(p, '"');
        if (p == NULL)
            return NULL;
        if (strncmp(p + 1, key, klen) == 0 && p[1 + klen] == '"') {
            const char *before = p;
            while (before > json && (before[-1] == ' ' || before[-1] == '\n' ||
                                     before[-1] == '\t' || before[-1] == '\r'))
                before--;
            const char *after = skip_ws(p + klen + 2);
            if (before > json && (before[-1] == '{' || before[-1] == ',') && *after == ':')
                return skip_ws(after + 1);
        }
        /* Not our key: jump over this whole string so its content is never
         * mistaken for markup. */
        p = skip_string(p);
        if (p == NULL)
            return NULL;
        p--;
    }
    return NULL;
}

int ctl_json_get_str(const char *json, const char *key, char *out, size_t outlen)
{
    const char *p = json != NULL ? find_value(json, key) : NULL;
    size_t n = 0;
    if (p == NULL || *p != '"' || outlen == 0)
        return -1;
    for (p++; *p != '"'; p++) {
        char c = *p;
        if (c == '\0')
            return -1;
        if (c == '\\') {
            p++;
            switch (*p) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u': {
                /* Only ASCII escapes are decoded; anything wider becomes '?'
                 * since sagactl only shows these values. */
                char hex[5] = {0};
                for (int i = 0; i < 4; i++) {
                    if (p[1 + i] == '\0')
                        return -1;
                    hex[i] = p[1 + i];
                }
                long v = strtol(hex, NULL, 16);
                c = v > 0 && v < 0x80 ? (char)v : '?';
                p += 4;
                break;
            }
            case '\0':
                return -1;
            default:
                c = *p; /* \" \\ \/ */
            }
        }
        if (n + 1 < outlen)
            out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

int ctl_json_get_ll(const char *json, const char *key, long long *out)
{
    const char *p = json != NULL ? find_value(json, key) : NULL;
    char num[32];
    size_t n = 0;
    if (p == NULL)
        return -1;
    while ((*p == '-' || (*p >= '0' && *p <= '9')) && n + 1 < sizeof(num))
        num[n++] = *p++;
    num[n] = '\0';
    return ctl_parse_ll(num, -9223372036854775807LL - 1, 9223372036854775807LL, out);
}

int ctl_json_get_bool(const char *json, const char *key, int *out)
{
    const char *p = json != NULL ? find_value(json, key) : NULL;
    if (p == NULL)
        return -1;
    if (strncmp(p, "true", 4) == 0) {
        *out = 1;
        return 0;
    }
    if (strncmp(p, "false", 5) == 0) {
        *out = 0;
        return 0;
    }
    return -1;
}

int ctl_json_get_raw(const char *json, const char *key, const char **value, size_t *len)
{
    const char *p = json != NULL ? find_value(json, key) : NULL;
    const char *end = p != NULL ? skip_value(p) : NULL;
    if (end == NULL || end == p)
        return -1;
    *value = p;
    *len = (size_t)(end - p);
    return 0;
}

int ctl_json_next(const char *json, const char **cursor, ctl_json_member *m)
{
    const char *p;
    if (json == NULL)
        return -1;
    if (*cursor == NULL) {
        p = skip_ws(json);
        if (*p != '{')
            return -1;
        p = skip_ws(p + 1);
        if (*p == '}')
            return 0;
    } else {
        p = skip_ws(*cursor);
        if (*p == '}')
            return 0;
        if (*p != ',')
            return -1;
        p = skip_ws(p + 1);
    }
    if (*p != '"')
        return -1;
    const char *kend = skip_string(p);
    if (kend == NULL)
        return -1;
    const char *colon = skip_ws(kend);
    if (*colon != ':')
        return -1;
    const char *v = skip_ws(colon + 1);
    const char *vend = skip_value(v);
    /* skip_value stops at a closing bracket without moving: an empty value. */
    if (vend == NULL || vend == v)
        return -1;
    m->key = p + 1;
    m->key_len = (size_t)(kend - p) - 2;
    m->value = v;
    m->value_len = (size_t)(vend - v);
    *cursor = vend;
    return 1;
}

int ctl_json_key_is(const ctl_json_member *m, const char *key)
{
    return strlen(key) == m->key_len && strncmp(m->key, key, m->key_len) == 0;
}

int ctl_json_value_is(const ctl_json_member *m, const char *text)
{
    return strlen(text) == m->value_len && strncmp(m->value, text, m->value_len) == 0;
}

static int skipped(const ctl_json_member *m, const char *const *skip)
{
    for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
        if (ctl_json_key_is(m, skip[i]))
            return 1;
    return 0;
}

void ctl_json_add_pair(ctl_buf *b, const ctl_json_member *m)
{
    const char *v = m->value;
    size_t n = m->value_len;
    ctl_buf_add(b, m->key, m->key_len);
    ctl_buf_add(b, "=", 1);
    /* Strings lose their quotes when they need none, for reading ease. */
    if (*v == '"' && n >= 2 && memchr(v + 1, ' ', n - 2) == NULL &&
        memchr(v + 1, '\\', n - 2) == NULL)
        ctl_buf_add(b, v + 1, n - 2);
    else
        ctl_buf_add(b, v, n);
}

void ctl_json_flatten(ctl_buf *b, const char *json, const char *const *skip)
{
    const char *cursor = NULL;
    ctl_json_member m;
    int first = 1;
    if (json == NULL || *skip_ws(json) != '{') {
        ctl_buf_puts(b, json != NULL ? json : "");
        return;
    }
    /* A malformed tail ends the line: what was readable is shown. */
    while (ctl_json_next(json, &cursor, &m) == 1) {
        /* Empty strings say nothing to a reader; they only widen the line. */
        if (ctl_json_value_is(&m, "\"\"") || skipped(&m, skip))
            continue;
        if (!first)
            ctl_buf_add(b, " ", 1);
        ctl_json_add_pair(b, &m);
        first = 0;
    }
}
