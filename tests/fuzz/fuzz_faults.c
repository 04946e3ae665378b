/* fuzz_faults.c - Fault plans as sent on saga.ctl.<service>.faults: applying
 * any text must leave a plan that is either unchanged (rejected) or valid,
 * and that renders as JSON within its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "faults.h"

#define SPEC_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether s is one flat JSON object of "key":value members, values being
 * numbers or strings without escapes: the form saga__faults_json writes and
 * sagactl reads. */
static int flat_json(const char *s)
{
    if (*s++ != '{')
        return 0;
    for (int first = 1;; first = 0) {
        if (*s == '}')
            return !first ? s[1] == '\0' : 0;
        if (!first && *s++ != ',')
            return 0;
        if (*s++ != '"')
            return 0;
        for (; *s != '"'; s++)
            if (*s == '\0' || *s == '\\' || (unsigned char)*s < 0x20)
                return 0;
        s++;
        if (*s++ != ':')
            return 0;
        if (*s == '"') {
            for (s++; *s != '"'; s++)
                if (*s == '\0' || *s == '\\' || (unsigned char)*s < 0x20)
                    return 0;
            s++;
        } else {
            const char *v = s;
            while (strchr("0123456789+-.eEinfa", *s) != NULL && *s != '\0')
                s++;
            if (s == v)
                return 0;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    saga__faults f, before;
    char spec[SPEC_MAX + 1], err[256];
    if (size > SPEC_MAX)
        return 0;
    /* A plan is text: the runtime copies the message up to its first NUL. */
    memcpy(spec, data, size);
    spec[size] = '\0';
    saga__faults_init(&f);
    /* A plan on top of one that already has settings, as at run time. */
    if (saga__faults_apply(&f, "seed=7 error_rate=0.5 decline_rate=0.25", err, sizeof(err)) != 0)
        abort();
    memcpy(&before, &f, sizeof(f));
    if (saga__faults_apply(&f, spec, err, sizeof(err)) != 0) {
        if (memcmp(&before, &f, sizeof(f)) != 0)
            abort(); /* a rejected plan must leave the plan as it was */
        return 0;
    }
    if (f.error_rate < 0 || f.error_rate > 1 || f.dup_rate < 0 || f.dup_rate > 1 ||
        f.reorder_rate < 0 || f.reorder_rate > 1 || f.delay_ms < 0 || f.reorder_delay_ms < 0 ||
        f.nbusiness < 0 || f.nbusiness > SAGA__FAULT_BUSINESS_MAX)
        abort();
    for (int i = 0; i < f.nbusiness; i++) {
        if (memchr(f.business[i].key, '\0', sizeof(f.business[i].key)) == NULL)
            abort();
        if (!(f.business[i].rate >= 0 && f.business[i].rate <= 1))
            abort();
        saga__faults_business(&f, f.business[i].key);
    }
    char *json = saga__faults_json(&f);
    if (json != NULL && !flat_json(json))
        abort(); /* the plan's JSON view must stay one valid object */
    free(json);
    saga__faults_roll(&f, "error", "01HF0000000000000000000000", 1, f.error_rate);
    return 0;
}
