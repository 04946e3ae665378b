/* test_layering.c - Dependencies run one way: services -> compensations -> runtime.
 *
 * The compensations undo the services' steps, so it is tempting to reach into
 * a service's private headers; that made a cycle once (compensations included
 * services/<name>/<name>_state.h while the services included
 * compensations.h). These tests read the sources and fail on any include of
 * a file that lives under services/, and on a build line that hands the
 * compensations an include directory there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_MAX_LEN 1024

static int is_source(const char *name)
{
    size_t n = strlen(name);
    return n > 2 && name[n - 2] == '.' && (name[n - 1] == 'c' || name[n - 1] == 'h');
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* 1 if a file named name (as written in an #include) exists under
 * services/ or under any services/<dir>/, where an include path could find it. */
static int found_under_services(const char *name)
{
    char path[PATH_MAX_LEN];
    struct dirent *e;
    int found = 0;
    snprintf(path, sizeof(path), "%s/services/%s", SAGA_SOURCE_DIR, name);
    if (exists(path))
        return 1;
    snprintf(path, sizeof(path), "%s/services", SAGA_SOURCE_DIR);
    DIR *d = opendir(path);
    assert_non_null(d);
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/services/%s/%s", SAGA_SOURCE_DIR, e->d_name, name);
        found = exists(path);
    }
    closedir(d);
    return found;
}

/* Copies the target of an #include line ("x.h" or <x.h>) into out; 0 if the
 * line is not an include. */
static int include_target(const char *line, char *out, size_t cap)
{
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '#')
        return 0;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "include", 7) != 0)
        return 0;
    p += 7;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '"' && *p != '<')
        return 0;
    char close = *p == '"' ? '"' : '>';
    const char *end = strchr(p + 1, close);
    if (end == NULL || (size_t)(end - p - 1) >= cap)
        return 0;
    memcpy(out, p + 1, (size_t)(end - p - 1));
    out[end - p - 1] = '\0';
    return 1;
}

static void test_compensations_include_nothing_under_services(void **state)
{
    char dir[PATH_MAX_LEN], path[PATH_MAX_LEN + 256], line[4096], target[512];
    struct dirent *e;
    int files = 0, includes = 0;
    (void)state;
    snprintf(dir, sizeof(dir), "%s/compensations", SAGA_SOURCE_DIR);
    DIR *d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (!is_source(e->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        files++;
        while (fgets(line, sizeof(line), fp) != NULL) {
            if (!include_target(line, target, sizeof(target)))
                continue;
            includes++;
            if (strstr(target, "services/") != NULL || found_under_services(target))
                fail_msg("compensations/%s includes %s, a file under services/", e->d_name, target);
        }
        fclose(fp);
    }
    closedir(d);
    /* The scan itself must have seen the compensations, or it proves nothing. */
    assert_true(files >= 4);
    assert_true(includes >= files);
}

static void test_compensations_build_sees_no_services_dir(void **state)
{
    char path[PATH_MAX_LEN], line[4096];
    (void)state;
    snprintf(path, sizeof(path), "%s/compensations/CMakeLists.txt", SAGA_SOURCE_DIR);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        const char *p = line;
        while (*p == ' ')
            p++;
        if (*p == '#')
            continue; /* comments may name the services */
        if (strstr(p, "services") != NULL || strstr(p, "saga_svc") != NULL)
            fail_msg("compensations/CMakeLists.txt reaches into services: %s", line);
    }
    fclose(fp);
}

/* The check itself: an include of a service's private header is caught. */
static void test_checker_catches_a_service_header(void **state)
{
    char target[512];
    (void)state;
    assert_true(include_target("#include \"svc.h\"\n", target, sizeof(target)));
    assert_true(found_under_services(target));
    assert_true(include_target("# include <payment/payment.c>", target, sizeof(target)));
    assert_true(found_under_services(target));
    assert_true(include_target("#include \"saga/saga.h\"", target, sizeof(target)));
    assert_false(found_under_services(target));
    assert_false(include_target("/* #include is how */", target, sizeof(target)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compensations_include_nothing_under_services),
        cmocka_unit_test(test_compensations_build_sees_no_services_dir),
        cmocka_unit_test(test_checker_catches_a_service_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
