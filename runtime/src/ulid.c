/* ulid.c - Event ids: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32).
 *
 * Ids sort by creation time, which the inbox relies on to prune from the
 * front, and are monotonic within a process: in the same millisecond the
 * random part is incremented instead of drawn again (the ULID spec's
 * monotonic mode). */
#include "saga/event.h"

#include "random.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define TIME_CHARS 10 /* 50 bits, the top 2 always zero */
#define TIME_MAX ((UINT64_C(1) << 48) - 1)

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* The one piece of static state in the runtime. Monotonicity is a property
 * of the process, not of a handle: two services, or a service and its
 * tools, in one process must never hand out ids that collide or sort out of
 * creation order, so the last id issued has to be shared by all callers. It
 * is guarded by a mutex because cnats callback threads may make ids too. */
static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int valid;        /* 0: draw afresh (first id, or a forked child's first) */
    uint64_t ms;      /* time part of the last id */
    uint16_t rand_hi; /* random part of the last id: 16 + 64 bits */
    uint64_t rand_lo;
} last;

/* A forked child must not continue its parent's sequence. Checking getpid()
 * per id costs a system call per event; a fork handler costs nothing. */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_in_child(void)
{
    last.valid = 0;
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_in_child);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t saga__splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

void saga__random_bytes(uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = getrandom(buf + got, len - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno != EINTR) {
            break;
        }
    }
    if (got < len) {
        /* Without kernel randomness (seccomp, an ancient kernel) the ids must
         * still differ between processes started in the same millisecond:
         * mix the clock's nanoseconds, the pid and the address of a stack
         * variable. Weaker, but getrandom has not failed this way on any
         * kernel we run on. */
        struct timespec ts;
        uint64_t seed;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ ((uint64_t)getpid() << 16) ^
               (uint64_t)(uintptr_t)&seed;
        for (; got < len; got++)
            buf[got] ^= (uint8_t)saga__splitmix64(&seed);
    }
}

/* Returns 5 bits of the 130-bit number (2 zero bits, then hi, then lo) whose
 * lowest bit is at shift. */
static unsigned five_bits(uint64_t hi, uint64_t lo, unsigned shift)
{
    uint64_t v;
    if (shift >= 64)
        v = hi >> (shift - 64);
    else if (shift + 5 <= 64)
        v = lo >> shift;
    else
        v = (lo >> shift) | (hi << (64 - shift));
    return (unsigned)(v & 31);
}

void saga_ulid_new(char out[SAGA_ID_LEN + 1])
{
    uint64_t ms = (uint64_t)now_ms() & TIME_MAX;
    uint64_t hi, lo;
    int i;

    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&gen_lock);
    if (last.valid && ms <= last.ms) {
        /* Same millisecond, or the clock stepped back: keep the last time and
         * increment the 80-bit random part, so the id still sorts after the
         * previous one. */
        ms = last.ms;
        last.rand_lo++;
        if (last.rand_lo == 0) {
            last.rand_hi++;
            if (last.rand_hi == 0) {
                /* 2^80 ids in one millisecond cannot happen in practice, but
                 * moving to the next millisecond keeps the order if it does. */
                ms = (ms + 1) & TIME_MAX;
            }
        }
    } else {
        uint8_t r[10];
        saga__random_bytes(r, sizeof(r));
        last.rand_hi = (uint16_t)((unsigned)r[0] << 8 | r[1]);
        memcpy(&last.rand_lo, r + 2, sizeof(last.rand_lo));
        last.valid = 1;
    }
    last.ms = ms;
    hi = ms << 16 | last.rand_hi;
    lo = last.rand_lo;
    pthread_mutex_unlock(&gen_lock);

    for (i = 0; i < SAGA_ID_LEN; i++)
        out[i] = alphabet[five_bits(hi, lo, (unsigned)(125 - 5 * i))];
    out[SAGA_ID_LEN] = '\0';
}

/* Returns the value of a Crockford base32 digit (upper case only, as we
 * write them), or -1. */
static int digit_value(char c)
{
    const char *p;
    if (c == '\0')
        return -1;
    p = strchr(alphabet, c);
    return p != NULL ? (int)(p - alphabet) : -1;
}

int saga_valid_ulid(const char *s)
{
    int i;
    if (s == NULL)
        return 0;
    /* The first digit carries only the top 3 of 130 bits: above '7' the
     * value would not fit in 128 bits. */
    if (s[0] < '0' || s[0] > '7')
        return 0;
    for (i = 1; i < SAGA_ID_LEN; i++) {
        if (digit_value(s[i]) < 0)
            return 0;
    }
    return s[SAGA_ID_LEN] == '\0';
}

int64_t saga_ulid_time_ms(const char *id)
{
    uint64_t ms = 0;
    int i;
    if (!saga_valid_ulid(id))
        return -1;
    for (i = 0; i < TIME_CHARS; i++)
        ms = ms << 5 | (uint64_t)digit_value(id[i]);
    return (int64_t)ms;
}
