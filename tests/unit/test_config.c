/* test_config.c - saga_config_init: defaults, SAGA_* overrides, rejection of bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config_internal.h"
#include "saga/service.h"

/* Every variable the runtime documents; the table must cover them all. */
static const char *const documented[] = {
    "SAGA_NATS_URL",     "SAGA_DATA_DIR",           "SAGA_BATCH_MAX",
    "SAGA_ACK_WAIT_MS",  "SAGA_MAX_DELIVER",        "SAGA_RETRY_BASE_MS",
    "SAGA_RETRY_MAX_MS", "SAGA_RETENTION_MS",       "SAGA_PARK_TIMEOUT_MS",
    "SAGA_SYNC",         "SAGA_COMMIT_PER_MESSAGE", "SAGA_CRASH_AT",
    "SAGA_LOG_LEVEL",    "SAGA_MAP_SIZE",           "SAGA_EVENTS_MAX_AGE_MS",
    "SAGA_REPLICAS",     "SAGA_SHARED_FLUSH",       "SAGA_MAX_ACK_PENDING",
};

#define NDOC (sizeof(documented) / sizeof(documented[0]))

static int clear_env(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < NDOC; i++)
        unsetenv(documented[i]);
    for (i = 0; i < saga__config_nsettings; i++)
        if (saga__config_settings[i].env != NULL)
            unsetenv(saga__config_settings[i].env);
    return 0;
}

static const saga__setting *find(const char *env)
{
    size_t i;
    for (i = 0; i < saga__config_nsettings; i++) {
        if (saga__config_settings[i].env != NULL && strcmp(saga__config_settings[i].env, env) == 0)
            return &saga__config_settings[i];
    }
    return NULL;
}

static void value_of(const saga__setting *s, const saga_config *cfg, char *buf, size_t len)
{
    int n = saga__config_value(s, cfg, buf, len);
    assert_true(n >= 0 && (size_t)n < len);
}

/* Asserts that every setting of a equals that of b except the one named skip. */
static void assert_same_except(const saga_config *a, const saga_config *b, const char *skip)
{
    size_t i;
    for (i = 0; i < saga__config_nsettings; i++) {
        const saga__setting *s = &saga__config_settings[i];
        char va[256], vb[256];
        if (skip != NULL && s->env != NULL && strcmp(s->env, skip) == 0)
            continue;
        value_of(s, a, va, sizeof(va));
        value_of(s, b, vb, sizeof(vb));
        if (strcmp(va, vb) != 0)
            fail_msg("%s changed: %s vs %s", s->key, va, vb);
    }
}

static void defaults(void **state)
{
    saga_config cfg;
    char err[256] = "stale";
    (void)state;

    assert_int_equal(saga_config_init(&cfg, "payment", err, sizeof(err)), SAGA_OK);
    assert_string_equal(err, "");
    assert_string_equal(cfg.name, "payment");
    assert_string_equal(cfg.nats_url, SAGA_DEFAULT_NATS_URL);
    assert_null(cfg.data_dir); /* the executable must choose */
    assert_string_equal(cfg.stream, SAGA_DEFAULT_STREAM);
    assert_string_equal(cfg.dlq_stream, SAGA_DEFAULT_DLQ_STREAM);
    assert_int_equal(cfg.batch_max, SAGA_DEFAULT_BATCH_MAX);
    assert_int_equal(cfg.ack_wait_ms, SAGA_DEFAULT_ACK_WAIT_MS);
    assert_int_equal(cfg.max_ack_pending, SAGA_DEFAULT_MAX_ACK_PENDING);
    assert_int_equal(cfg.max_deliver, SAGA_DEFAULT_MAX_DELIVER);
    assert_int_equal(cfg.retry_base_ms, SAGA_DEFAULT_RETRY_BASE_MS);
    assert_int_equal(cfg.retry_max_ms, SAGA_DEFAULT_RETRY_MAX_MS);
    assert_int_equal(cfg.retention_ms, SAGA_DEFAULT_RETENTION_MS);
    assert_int_equal(cfg.dup_window_ms, SAGA_DEFAULT_DUP_WINDOW_MS);
    assert_int_equal(cfg.park_timeout_ms, SAGA_DEFAULT_PARK_TIMEOUT_MS);
    assert_int_equal(cfg.publish_wait_ms, SAGA_DEFAULT_PUBLISH_WAIT_MS);
    assert_int_equal(cfg.replicas, 1); /* a single server unless told otherwise */
    assert_int_equal(cfg.sync, 1);     /* durable by default */
    assert_int_equal(cfg.commit_per_message, 0);
    assert_int_equal(cfg.map_size, SAGA_DEFAULT_MAP_SIZE);
    assert_null(cfg.crash_at);
    assert_null(cfg.log);
    assert_null(cfg.log_udata);
    assert_int_equal(cfg.log_level, SAGA_LOG_INFO);
    /* The retention must outlast the broker's duplicate window. */
    assert_true(cfg.retention_ms > cfg.dup_window_ms);
}

static void table_covers_every_variable(void **state)
{
    size_t i, j;
    (void)state;
    for (i = 0; i < NDOC; i++) {
        if (find(documented[i]) == NULL)
            fail_msg("%s is not in the settings table", documented[i]);
    }
    for (i = 0; i < saga__config_nsettings; i++) {
        const saga__setting *s = &saga__config_settings[i];
        assert_true(s->env == NULL || strncmp(s->env, "SAGA_", 5) == 0);
        assert_non_null(s->key);
        assert_true(s->help != NULL && s->help[0] != '\0');
        assert_true(s->min <= s->max);
        for (j = 0; j < i; j++) {
            assert_string_not_equal(s->key, saga__config_settings[j].key);
            if (s->env != NULL && saga__config_settings[j].env != NULL)
                assert_string_not_equal(s->env, saga__config_settings[j].env);
        }
    }
}

static void each_override_applies(void **state)
{
    saga_config cfg;
    char err[256];
    (void)state;

    setenv("SAGA_NATS_URL", "nats://10.0.0.1:4223", 1);
    setenv("SAGA_DATA_DIR", "/var/lib/saga/payment", 1);
    setenv("SAGA_BATCH_MAX", "17", 1);
    setenv("SAGA_ACK_WAIT_MS", "1500", 1);
    setenv("SAGA_MAX_DELIVER", "9", 1);
    setenv("SAGA_RETRY_BASE_MS", "5", 1);
    setenv("SAGA_RETRY_MAX_MS", "60000", 1);
    setenv("SAGA_RETENTION_MS", "5000000000", 1); /* past 32 bits */
    setenv("SAGA_PARK_TIMEOUT_MS", "1234", 1);
    setenv("SAGA_SYNC", "0", 1);
    setenv("SAGA_COMMIT_PER_MESSAGE", "1", 1);
    setenv("SAGA_CRASH_AT", "after_commit:3", 1);
    setenv("SAGA_LOG_LEVEL", "debug", 1);
    setenv("SAGA_MAP_SIZE", "128M", 1);
    setenv("SAGA_REPLICAS", "3", 1);
    setenv("SAGA_MAX_ACK_PENDING", "900", 1);

    assert_int_equal(saga_config_init(&cfg, "payment", err, sizeof(err)), SAGA_OK);
    assert_string_equal(err, "");
    assert_string_equal(cfg.nats_url, "nats://10.0.0.1:4223");
    assert_string_equal(cfg.data_dir, "/var/lib/saga/payment");
    assert_int_equal(cfg.batch_max, 17);
    assert_int_equal(cfg.ack_wait_ms, 1500);
    assert_int_equal(cfg.max_deliver, 9);
    assert_int_equal(cfg.retry_base_ms, 5);
    assert_int_equal(cfg.retry_max_ms, 60000);
    assert_int_equal(cfg.retention_ms, INT64_C(5000000000));
    assert_int_equal(cfg.park_timeout_ms, 1234);
    assert_int_equal(cfg.sync, 0);
    assert_int_equal(cfg.commit_per_message, 1);
    assert_string_equal(cfg.crash_at, "after_commit:3");
    assert_int_equal(cfg.log_level, SAGA_LOG_DEBUG);
    assert_int_equal(cfg.map_size, (size_t)128 << 20);
    assert_int_equal(cfg.replicas, 3);
    assert_int_equal(cfg.max_ack_pending, 900);
    /* Settings without a variable keep their defaults. */
    assert_string_equal(cfg.stream, SAGA_DEFAULT_STREAM);
}

/* The budget of unacknowledged deliveries is shared by an instance's consumers, and
 * the default keeps a fleet's connection under nats-server 2.9's 4,096 remembered
 * reply subjects, whatever its consumers' number. */
static void ack_pending_shared(void **state)
{
    (void)state;
    assert_true(SAGA_DEFAULT_MAX_ACK_PENDING < 4096);
    assert_int_equal(saga_ack_pending_share(3584, 3), 1194);
    assert_int_equal(saga_ack_pending_share(3584, 1), 3584);
    assert_int_equal(saga_ack_pending_share(10, 40), 1); /* never none */
    assert_int_equal(saga_ack_pending_share(10, 0), 10);
    for (int n = 1; n <= 16 * 8; n++)
        assert_true((long long)saga_ack_pending_share(SAGA_DEFAULT_MAX_ACK_PENDING, n) * n <=
                    SAGA_DEFAULT_MAX_ACK_PENDING);
}

static void alternative_spellings(void **state)
{
    static const struct {
        const char *env, *value, *want;
    } cases[] = {
        {"SAGA_SYNC", "false", "0"},
        {"SAGA_SYNC", "OFF", "0"},
        {"SAGA_SYNC", "no", "0"},
        {"SAGA_SYNC", "true", "1"},
        {"SAGA_SYNC", "Yes", "1"},
        {"SAGA_SYNC", "on", "1"},
        {"SAGA_LOG_LEVEL", "WARN", "warn"},
        {"SAGA_LOG_LEVEL", "error", "error"},
        {"SAGA_MAP_SIZE", "1048576", "1048576"},
        {"SAGA_MAP_SIZE", "1024k", "1048576"},
        {"SAGA_MAP_SIZE", "2G", "2147483648"},
        {"SAGA_MAP_SIZE", "1T", "1099511627776"},
        {"SAGA_BATCH_MAX", "+8", "8"},
        {"SAGA_BATCH_MAX", "010", "10"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        saga_config cfg;
        char err[256], got[64];
        setenv(cases[i].env, cases[i].value, 1);
        if (saga_config_init(&cfg, "order", err, sizeof(err)) != SAGA_OK)
            fail_msg("%s=%s refused: %s", cases[i].env, cases[i].value, err);
        value_of(find(cases[i].env), &cfg, got, sizeof(got));
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s=%s gave %s, want %s", cases[i].env, cases[i].value, got, cases[i].want);
        unsetenv(cases[i].env);
    }
}

static void empty_value_counts_as_unset(void **state)
{
    saga_config cfg, def;
    size_t i;
    (void)state;

    assert_int_equal(saga_config_init(&def, "order", NULL, 0), SAGA_OK);
    for (i = 0; i < saga__config_nsettings; i++)
        if (saga__config_settings[i].env != NULL)
            setenv(saga__config_settings[i].env, "", 1);
    assert_int_equal(saga_config_init(&cfg, "order", NULL, 0), SAGA_OK);
    assert_same_except(&cfg, &def, NULL);
}

/* Sets env=value, expects SAGA_EINVAL naming both, and every setting at its default. */
static void expect_rejected(const char *env, const char *value, const saga_config *def)
{
    saga_config cfg;
    char err[512] = "";
    saga_status st;

    setenv(env, value, 1);
    st = saga_config_init(&cfg, "order", err, sizeof(err));
    unsetenv(env);
    if (st != SAGA_EINVAL)
        fail_msg("%s=\"%s\" accepted (%s)", env, value, saga_status_name(st));
    if (strstr(err, env) == NULL || strstr(err, value) == NULL)
        fail_msg("%s=\"%s\": errbuf \"%s\" does not name both", env, value, err);
    assert_same_except(&cfg, def, NULL);
    /* Everything else is still initialised. */
    assert_string_equal(cfg.name, "order");
}

static void malformed_values_rejected(void **state)
{
    static const char *const not_numbers[] = {
        "abc", "12x", " 12", "12 ", "1.5", "0x10", "1e3", "--1", "99999999999999999999999", "-"};
    static const char *const not_bools[] = {"2", "-1", "maybe", "tru", "1 "};
    static const char *const not_levels[] = {"loud", "3", "info ", "infos"};
    static const char *const not_sizes[] = {"-1", "1Q", "1MB", "64 M", "M", "99999999999T"};
    saga_config def;
    size_t i, j;
    (void)state;

    assert_int_equal(saga_config_init(&def, "order", NULL, 0), SAGA_OK);
    for (i = 0; i < saga__config_nsettings; i++) {
        const saga__setting *s = &saga__config_settings[i];
        if (s->env == NULL)
            continue;
        switch (s->type) {
        case SAGA__SETTING_INT:
        case SAGA__SETTING_INT64:
            for (j = 0; j < sizeof(not_numbers) / sizeof(not_numbers[0]); j++)
                expect_rejected(s->env, not_numbers[j], &def);
            break;
        case SAGA__SETTING_BOOL:
            for (j = 0; j < sizeof(not_bools) / sizeof(not_bools[0]); j++)
                expect_rejected(s->env, not_bools[j], &def);
            break;
        case SAGA__SETTING_LOGLEVEL:
            for (j = 0; j < sizeof(not_levels) / sizeof(not_levels[0]); j++)
                expect_rejected(s->env, not_levels[j], &def);
            break;
        case SAGA__SETTING_SIZE:
            for (j = 0; j < sizeof(not_sizes) / sizeof(not_sizes[0]); j++)
                expect_rejected(s->env, not_sizes[j], &def);
            break;
        case SAGA__SETTING_STRING:
            break;
        }
    }
}

static void bounds_enforced(void **state)
{
    saga_config def;
    size_t i;
    (void)state;

    assert_int_equal(saga_config_init(&def, "order", NULL, 0), SAGA_OK);
    for (i = 0; i < saga__config_nsettings; i++) {
        const saga__setting *s = &saga__config_settings[i];
        char v[64], got[64], err[256];
        saga_config cfg;
        const long long edge[2] = {s->min, s->max};
        int k;

        if (s->env == NULL || (s->type != SAGA__SETTING_INT && s->type != SAGA__SETTING_INT64 &&
                               s->type != SAGA__SETTING_SIZE))
            continue;
        for (k = 0; k < 2; k++) {
            /* The bound itself is accepted... */
            snprintf(v, sizeof(v), "%lld", edge[k]);
            setenv(s->env, v, 1);
            if (saga_config_init(&cfg, "order", err, sizeof(err)) != SAGA_OK)
                fail_msg("%s=%s refused: %s", s->env, v, err);
            value_of(s, &cfg, got, sizeof(got));
            assert_string_equal(got, v);
            assert_same_except(&cfg, &def, s->env);
            unsetenv(s->env);
            /* ...one step outside is not. */
            snprintf(v, sizeof(v), "%lld", k == 0 ? edge[k] - 1 : edge[k] + 1);
            expect_rejected(s->env, v, &def);
        }
    }
}

static void string_lengths_enforced(void **state)
{
    saga_config def, cfg;
    char *long_value;
    size_t i;
    (void)state;

    assert_int_equal(saga_config_init(&def, "order", NULL, 0), SAGA_OK);
    for (i = 0; i < saga__config_nsettings; i++) {
        const saga__setting *s = &saga__config_settings[i];
        const char *got;
        char err[512];
        if (s->env == NULL || s->type != SAGA__SETTING_STRING)
            continue;
        long_value = malloc((size_t)s->max + 2);
        assert_non_null(long_value);
        memset(long_value, 'x', (size_t)s->max + 1);
        /* A list of gates or vetoers is bounded too; its entries are names (checked by
         * gate_names_validated), so the filler is one name and separators. */
        if (strcmp(s->env, "SAGA_GATES") == 0 || strcmp(s->env, "SAGA_VETOERS") == 0)
            memset(long_value + 1, ',', (size_t)s->max);
        /* The metrics address is bounded by its longest valid form. */
        if (strcmp(s->env, "SAGA_METRICS_ADDR") == 0)
            memcpy(long_value, "255.255.255.255:65535", (size_t)s->max);
        /* So are the partition settings: "16/16", and "0,0,...,0". */
        if (strcmp(s->env, "SAGA_INSTANCE") == 0)
            memcpy(long_value, "16/16", (size_t)s->max);
        if (strcmp(s->env, "SAGA_PARTITIONS") == 0)
            for (long long k = 0; k < s->max; k++)
                long_value[k] = k % 2 ? ',' : '0';
        long_value[s->max] = '\0';
        setenv(s->env, long_value, 1);
        assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_OK);
        memcpy(&got, (const char *)&cfg + s->offset, sizeof(got));
        assert_string_equal(got, long_value);
        long_value[s->max] = 'x';
        long_value[s->max + 1] = '\0';
        setenv(s->env, long_value, 1);
        assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_EINVAL);
        assert_non_null(strstr(err, s->env));
        assert_same_except(&cfg, &def, NULL);
        unsetenv(s->env);
        free(long_value);
    }
}

/* All mistakes are reported at once; the good settings still apply. */
static void several_bad_values(void **state)
{
    saga_config cfg;
    char err[512];
    (void)state;

    setenv("SAGA_BATCH_MAX", "0", 1);
    setenv("SAGA_SYNC", "perhaps", 1);
    setenv("SAGA_MAX_DELIVER", "3", 1);
    assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_EINVAL);
    assert_non_null(strstr(err, "SAGA_BATCH_MAX"));
    assert_non_null(strstr(err, "SAGA_SYNC"));
    assert_null(strstr(err, "SAGA_MAX_DELIVER"));
    assert_int_equal(cfg.batch_max, SAGA_DEFAULT_BATCH_MAX);
    assert_int_equal(cfg.sync, 1);
    assert_int_equal(cfg.max_deliver, 3);

    /* A tiny or absent errbuf is not written past. */
    err[0] = 'Q';
    err[1] = 'Q';
    assert_int_equal(saga_config_init(&cfg, "order", err, 1), SAGA_EINVAL);
    assert_int_equal(err[0], '\0');
    assert_int_equal(err[1], 'Q');
    assert_int_equal(saga_config_init(&cfg, "order", NULL, 0), SAGA_EINVAL);
}

static void service_name_validated(void **state)
{
    /* A name is the part of an event type before the dot: "kyc-check" could
     * emit no event and "pay.ment" would never match its own vetoes. */
    static const char *const bad[] = {"",         "Payment",   "pay ment",
                                      "pay.ment", "kyc-check", "a_name_that_is_longer_than_32_chx"};
    saga_config cfg;
    char err[256];
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(saga_config_init(&cfg, bad[i], err, sizeof(err)), SAGA_EINVAL);
        assert_non_null(strstr(err, "service name"));
    }
    assert_int_equal(saga_config_init(&cfg, NULL, err, sizeof(err)), SAGA_EINVAL);
    assert_int_equal(saga_config_init(NULL, "order", err, sizeof(err)), SAGA_EINVAL);
    assert_int_equal(saga_config_init(&cfg, "fraud_screen_2", err, sizeof(err)), SAGA_OK);
    assert_int_equal(saga_config_init(&cfg, "a_name_that_is_exactly_32_chars_", err, sizeof(err)),
                     SAGA_OK);
    assert_int_equal(saga_config_init(&cfg, "fraud-screen", err, sizeof(err)), SAGA_EINVAL);
    assert_non_null(strstr(err, "[a-z0-9_]{1,32}"));
}

static void valid_config(saga_config *cfg);

/* SAGA_GATES names participants: each entry is checked when it is
 * configured, and the message names the bad entry, on both paths. */
/* A bad SAGA_METRICS_ADDR is refused with the same words from the
 * environment and from code; a good one, port 0 included, is taken. */
static void metrics_addr_validated(void **state)
{
    static const char *const bad[] = {"localhost:9464", "127.0.0.1", "127.0.0.1:70000",
                                      "127.0.0.1:x", ":9464"};
    saga_config cfg;
    char err[512], code_err[512];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("SAGA_METRICS_ADDR", bad[i], 1);
        assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_EINVAL);
        assert_non_null(strstr(err, "SAGA_METRICS_ADDR"));
        assert_null(cfg.metrics_addr); /* keeps its default: no server */
        unsetenv("SAGA_METRICS_ADDR");
        valid_config(&cfg);
        cfg.metrics_addr = bad[i];
        assert_int_equal(saga__config_check(&cfg, code_err, sizeof(code_err)), SAGA_EINVAL);
        assert_string_equal(code_err, err);
    }
    setenv("SAGA_METRICS_ADDR", "127.0.0.1:0", 1);
    assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_OK);
    assert_string_equal(cfg.metrics_addr, "127.0.0.1:0");
    unsetenv("SAGA_METRICS_ADDR");
}

static void partitions_validated(void **state)
{
    static const char *const bad_instance[] = {"0/2", "3/2", "1/17", "1/0", "1/x", "1/ 2", "1-2"};
    static const char *const bad_list[] = {"16", "0-16", "7-3", "1,", ",1", "a", "1;2", "-1"};
    saga_config cfg;
    char err[512], code_err[512], text[64];
    uint32_t set;
    (void)state;
    for (size_t i = 0; i < sizeof(bad_instance) / sizeof(bad_instance[0]); i++) {
        setenv("SAGA_INSTANCE", bad_instance[i], 1);
        assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_EINVAL);
        assert_non_null(strstr(err, "SAGA_INSTANCE"));
        assert_null(cfg.instance);
        unsetenv("SAGA_INSTANCE");
        valid_config(&cfg);
        cfg.instance = bad_instance[i];
        assert_int_equal(saga__config_check(&cfg, code_err, sizeof(code_err)), SAGA_EINVAL);
        assert_string_equal(code_err, err);
    }
    for (size_t i = 0; i < sizeof(bad_list) / sizeof(bad_list[0]); i++) {
        setenv("SAGA_PARTITIONS", bad_list[i], 1);
        assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_EINVAL);
        assert_non_null(strstr(err, "SAGA_PARTITIONS"));
        unsetenv("SAGA_PARTITIONS");
    }
    /* Both at once is refused: which would win? */
    assert_int_equal(saga_partition_set("1/2", "0-7", &set, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not both"));
    assert_int_equal(saga_partition_set(NULL, "", &set, err, sizeof(err)), 0);
    assert_int_equal(set, SAGA_PARTITION_SET_ALL);
    assert_int_equal(saga_partition_set("2/3", NULL, &set, err, sizeof(err)), 0);
    assert_int_equal(set, (1u << 1) | (1u << 4) | (1u << 7) | (1u << 10) | (1u << 13));
    saga_partition_set_format(set, text, sizeof(text));
    assert_string_equal(text, "1,4,7,10,13");
    assert_int_equal(saga_partition_set(NULL, "0-7,12,15", &set, err, sizeof(err)), 0);
    assert_int_equal(set, 0xffu | (1u << 12) | (1u << 15));
    saga_partition_set_format(set, text, sizeof(text));
    assert_string_equal(text, "0-7,12,15");
    saga_partition_set_format(SAGA_PARTITION_SET_ALL, text, sizeof(text));
    assert_string_equal(text, "0-15");
    saga_partition_set_format(0, text, sizeof(text));
    assert_string_equal(text, "-");
    /* Routed subjects name their partition last. */
    assert_int_equal(saga_subject_partition("saga.cmd.order.place.7"), 7);
    assert_int_equal(saga_subject_partition("saga.q.payment.order.15"), 15);
    assert_int_equal(saga_subject_partition("saga.cmd.order.place"), -1);
    assert_int_equal(saga_subject_partition("saga.cmd.order.place.16"), -1);
    assert_int_equal(saga_subject_partition("saga.cmd.order.place.07"), -1);
    assert_int_equal(saga_subject_partition("saga.cmd.order.place.1x"), -1);
}

static void gate_names_validated(void **state)
{
    static const char *const bad[] = {"kyc-check", "fraud,kyc-check", "fraud.x", "Fraud",
                                      "a_name_that_is_longer_than_32_chx"};
    saga_config cfg;
    char err[512];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("SAGA_GATES", bad[i], 1);
        assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_EINVAL);
        assert_non_null(strstr(err, "SAGA_GATES"));
        const char *entry = strrchr(bad[i], ',') != NULL ? strrchr(bad[i], ',') + 1 : bad[i];
        char quoted[80];
        snprintf(quoted, sizeof(quoted), "\"%s\"", entry);
        if (strstr(err, quoted) == NULL)
            fail_msg("\"%s\": the message does not name %s: %s", bad[i], quoted, err);
        assert_null(cfg.gates); /* keeps its default */
        unsetenv("SAGA_GATES");

        /* Set in code: saga_service_create refuses it with the same words. */
        valid_config(&cfg);
        cfg.gates = bad[i];
        char code_err[512];
        assert_int_equal(saga__config_check(&cfg, code_err, sizeof(code_err)), SAGA_EINVAL);
        assert_string_equal(code_err, err);
        saga_service *svc = NULL;
        assert_int_equal(saga_service_create(&svc, &cfg, code_err, sizeof(code_err)), SAGA_EINVAL);
        assert_null(svc);
        assert_string_equal(code_err, err);
    }
    setenv("SAGA_GATES", "fraud", 1);
    assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_OK);
    setenv("SAGA_GATES", "fraud, kyc_check", 1);
    assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_OK);
    assert_string_equal(cfg.gates, "fraud, kyc_check");
    setenv("SAGA_GATES", "a,b,c,d,e", 1);
    assert_int_equal(saga_config_init(&cfg, "order", err, sizeof(err)), SAGA_EINVAL);
    assert_non_null(strstr(err, "more than 4"));
}

static void describe_lists_every_setting(void **state)
{
    char *text = NULL;
    size_t len = 0, i;
    FILE *f;
    (void)state;

    f = open_memstream(&text, &len);
    assert_non_null(f);
    saga__config_describe(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(text);
    for (i = 0; i < saga__config_nsettings; i++) {
        const saga__setting *s = &saga__config_settings[i];
        if (s->env == NULL)
            continue;
        if (strstr(text, s->env) == NULL || strstr(text, s->help) == NULL)
            fail_msg("--help text lacks %s", s->env);
    }
    /* Defaults and bounds come from the same table. */
    assert_non_null(strstr(text, "default " SAGA_DEFAULT_NATS_URL));
    assert_non_null(strstr(text, "1..65536"));
    assert_non_null(strstr(text, "default 1024"));
    free(text);
}

/* Sets the numeric field of row s in cfg to v, as code would. */
static void set_field(const saga__setting *s, saga_config *cfg, long long v)
{
    char *field = (char *)cfg + s->offset;
    int i = (int)v;
    int64_t i64 = v;
    size_t z = (size_t)v;
    switch (s->type) {
    case SAGA__SETTING_INT:
    case SAGA__SETTING_BOOL:
        memcpy(field, &i, sizeof(i));
        break;
    case SAGA__SETTING_INT64:
        memcpy(field, &i64, sizeof(i64));
        break;
    case SAGA__SETTING_SIZE:
        memcpy(field, &z, sizeof(z));
        break;
    default:
        fail_msg("%s is not numeric", s->key);
    }
}

/* A valid config as an executable builds it: defaults and a data_dir. */
static void valid_config(saga_config *cfg)
{
    char err[256];
    assert_int_equal(saga_config_init(cfg, "order", err, sizeof(err)), SAGA_OK);
    cfg->data_dir = "/tmp/saga-test-config";
    assert_int_equal(saga__config_check(cfg, err, sizeof(err)), SAGA_OK);
}

/* A value one past a bound is refused with the same message whether it came
 * from the environment or was set in code (saga_service_create checks the
 * latter): SAGA_BATCH_MAX=65537 was refused while batch_max = 65537 in code
 * passed up to 100000. */
static void code_and_environment_share_bounds(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < saga__config_nsettings; i++) {
        const saga__setting *s = &saga__config_settings[i];
        if (s->env == NULL || (s->type != SAGA__SETTING_INT && s->type != SAGA__SETTING_INT64 &&
                               s->type != SAGA__SETTING_SIZE))
            continue;
        for (int k = 0; k < 2; k++) {
            long long v = k == 0 ? s->min - 1 : s->max + 1;
            char text[32], env_err[512] = "", code_err[512] = "";
            saga_config cfg;
            snprintf(text, sizeof(text), "%lld", v);
            setenv(s->env, text, 1);
            assert_int_equal(saga_config_init(&cfg, "order", env_err, sizeof(env_err)),
                             SAGA_EINVAL);
            unsetenv(s->env);
            if (v < 0 && s->type == SAGA__SETTING_SIZE)
                continue; /* a size_t cannot hold it in code */
            valid_config(&cfg);
            set_field(s, &cfg, v);
            assert_int_equal(saga__config_check(&cfg, code_err, sizeof(code_err)), SAGA_EINVAL);
            /* The same message; the code path may add a rule between
             * fields that the new value also breaks. */
            if (strncmp(code_err, env_err, strlen(env_err)) != 0)
                fail_msg("code: \"%s\"; environment: \"%s\"", code_err, env_err);
            assert_non_null(strstr(code_err, s->env));
            assert_non_null(strstr(code_err, s->key));
        }
    }
    /* The case that disagreed before, spelled out. */
    saga_config cfg;
    char err[256];
    valid_config(&cfg);
    cfg.batch_max = 65537;
    assert_int_equal(saga__config_check(&cfg, err, sizeof(err)), SAGA_EINVAL);
    assert_string_equal(err, "batch_max=\"65537\" (SAGA_BATCH_MAX): out of range 1..65536");
    saga_service *svc = NULL;
    err[0] = '\0';
    assert_int_equal(saga_service_create(&svc, &cfg, err, sizeof(err)), SAGA_EINVAL);
    assert_null(svc);
    assert_string_equal(err, "batch_max=\"65537\" (SAGA_BATCH_MAX): out of range 1..65536");
}

/* Fields with no variable have rows too, and their bounds hold. */
static void code_only_fields_bounded(void **state)
{
    static const char *const keys[] = {"dup_window_ms", "publish_wait_ms"};
    (void)state;
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        const saga__setting *s = NULL;
        for (size_t i = 0; i < saga__config_nsettings; i++)
            if (strcmp(saga__config_settings[i].key, keys[k]) == 0)
                s = &saga__config_settings[i];
        assert_non_null(s);
        assert_null(s->env);
        saga_config cfg;
        char err[512];
        valid_config(&cfg);
        set_field(s, &cfg, s->min - 1);
        assert_int_equal(saga__config_check(&cfg, err, sizeof(err)), SAGA_EINVAL);
        assert_non_null(strstr(err, s->key));
        valid_config(&cfg);
        set_field(s, &cfg, s->max + 1);
        assert_int_equal(saga__config_check(&cfg, err, sizeof(err)), SAGA_EINVAL);
    }
}

/* The rules between fields, and every violation named at once. */
static void cross_field_rules(void **state)
{
    saga_config cfg;
    char err[512];
    (void)state;

    valid_config(&cfg);
    cfg.retry_base_ms = cfg.retry_max_ms + 1;
    assert_int_equal(saga__config_check(&cfg, err, sizeof(err)), SAGA_EINVAL);
    assert_non_null(strstr(err, "retry_base_ms"));

    valid_config(&cfg);
    cfg.retention_ms = cfg.dup_window_ms;
    cfg.data_dir = NULL;
    cfg.max_ack_pending = 0;
    assert_int_equal(saga__config_check(&cfg, err, sizeof(err)), SAGA_EINVAL);
    assert_non_null(strstr(err, "retention_ms"));
    assert_non_null(strstr(err, "data_dir is required (SAGA_DATA_DIR)"));
    assert_non_null(strstr(err, "max_ack_pending"));

    valid_config(&cfg);
    cfg.name = "Not A Name";
    assert_int_equal(saga__config_check(&cfg, err, sizeof(err)), SAGA_EINVAL);
    assert_non_null(strstr(err, "service name"));
}

/* SAGA_NATS_URL may list the nodes of a cluster: one parser splits it for
 * the runtime, the launcher, sagactl and the benchmark alike. */
static void server_lists_are_split(void **state)
{
    char buf[256];
    const char *v[4];
    (void)state;
    assert_int_equal(saga_config_servers("nats://a:1", buf, sizeof(buf), v, 4), 1);
    assert_string_equal(v[0], "nats://a:1");
    assert_int_equal(
        saga_config_servers(" nats://a:1 ,nats://b:2,, nats://c:3", buf, sizeof(buf), v, 4), 3);
    assert_string_equal(v[0], "nats://a:1");
    assert_string_equal(v[1], "nats://b:2");
    assert_string_equal(v[2], "nats://c:3");
    assert_int_equal(saga_config_servers("a,b,c,d,e", buf, sizeof(buf), v, 2), 2);
    assert_int_equal(saga_config_servers(" , ", buf, sizeof(buf), v, 4), -1);
    assert_int_equal(saga_config_servers("nats://a:1", buf, 5, v, 4), -1);
    assert_int_equal(saga_config_servers(NULL, buf, sizeof(buf), v, 4), -1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, clear_env, clear_env)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_lists_are_split),
        T(defaults),
        T(table_covers_every_variable),
        T(each_override_applies),
        T(ack_pending_shared),
        T(alternative_spellings),
        T(empty_value_counts_as_unset),
        T(malformed_values_rejected),
        T(bounds_enforced),
        T(string_lengths_enforced),
        T(several_bad_values),
        T(service_name_validated),
        T(gate_names_validated),
        T(metrics_addr_validated),
        T(partitions_validated),
        T(describe_lists_every_setting),
        T(code_and_environment_share_bounds),
        T(code_only_fields_bounded),
        T(cross_field_rules),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
