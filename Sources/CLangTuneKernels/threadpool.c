// A small pool of worker threads for LangTune's parallel loops. Decoding one token runs ~250 short
// parallel products (tens of microseconds each); waking parked threads for each one cost more than
// the products themselves on a 2-core machine, so workers spin briefly after a short job before they
// park (llama.cpp's approach). One job runs at a time; a call made while the pool is busy (from inside
// a task, or from another thread) gets -1 and runs its work another way.
//
// A job is published by resetting `claim` to (generation << 32): workers claim parts with a CAS that
// also checks the generation, so a worker that wakes late can never take a part of a later job; the
// caller returns only when every part of its job is done, after closing the job (index 2^32-1).
#include "langtune_kernels.h"

#if defined(__linux__) || defined(__APPLE__)
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

#define MAX_WORKERS 255
#define SPIN_NS 200000        // how long idle workers keep spinning after a short job
#define SHORT_JOB_NS 2000000  // jobs longer than this are not followed by spinning

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cond = PTHREAD_COND_INITIALIZER;
static _Thread_local int in_task = 0;

static _Atomic uint64_t claim = 0;       // generation << 32 | next part
static _Atomic uint32_t generation = 0;  // bumped per job; workers wait on it
static _Atomic int64_t done = 0;         // parts finished in the current job
static _Atomic int64_t spin_until = 0;   // monotonic ns before which idle workers spin
static _Atomic int sleepers = 0;
static _Atomic int64_t job_parts = 0;
static lt_parallel_fn job_fn = NULL;
static void *job_ctx = NULL;
static int started = 0;  // workers running (guarded by run_lock)

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// Claims and runs parts of generation `gen` until none is left.
static void run_parts(uint32_t gen) {
    for (;;) {
        uint64_t c = atomic_load_explicit(&claim, memory_order_acquire);
        for (;;) {
            if ((uint32_t)(c >> 32) != gen || (int64_t)(uint32_t)c >= atomic_load_explicit(&job_parts, memory_order_relaxed)) return;
            if (atomic_compare_exchange_weak_explicit(&claim, &c, c + 1, memory_order_acq_rel, memory_order_acquire)) break;
        }
        in_task = 1;
        job_fn(job_ctx, (int64_t)(uint32_t)c);
        in_task = 0;
        atomic_fetch_add_explicit(&done, 1, memory_order_release);
    }
}

static void *worker(void *arg) {
    (void)arg;
    uint32_t seen = atomic_load(&generation);
    for (;;) {
        uint32_t g = atomic_load_explicit(&generation, memory_order_acquire);
        if (g == seen) {
            if (now_ns() < atomic_load_explicit(&spin_until, memory_order_relaxed)) {
                for (int i = 0; i < 64 && atomic_load_explicit(&generation, memory_order_relaxed) == seen; i++) cpu_relax();
                continue;
            }
            pthread_mutex_lock(&sleep_lock);
            atomic_fetch_add(&sleepers, 1);
            while (atomic_load(&generation) == seen) pthread_cond_wait(&sleep_cond, &sleep_lock);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&sleep_lock);
            continue;
        }
        seen = g;
        run_parts(g);
    }
    return NULL;
}

int lt_pool_run(int threads, int64_t parts, lt_parallel_fn fn, void *ctx) {
    if (parts <= 0) return 0;
    if (in_task || threads < 2 || parts >= 0xFFFFFFFF) return -1;
    if (pthread_mutex_trylock(&run_lock) != 0) return -1;
    const int want = threads - 1 < MAX_WORKERS ? threads - 1 : MAX_WORKERS;
    while (started < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int rc = pthread_create(&t, &attr, worker, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        started++;
    }
    const int64_t t0 = now_ns();
    atomic_store_explicit(&job_parts, parts, memory_order_relaxed);
    job_fn = fn;
    job_ctx = ctx;
    atomic_store_explicit(&done, 0, memory_order_relaxed);
    const uint32_t gen = atomic_load(&generation) + 1;
    atomic_store_explicit(&claim, (uint64_t)gen << 32, memory_order_release);
    atomic_store_explicit(&generation, gen, memory_order_release);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&sleep_cond);
        pthread_mutex_unlock(&sleep_lock);
    }
    run_parts(gen);
    while (atomic_load_explicit(&done, memory_order_acquire) < parts) cpu_relax();
    // Close the job before its parameters change: a worker holding a stale view of `claim` (the last
    // index of this job) could otherwise compare it with the next job's part count and claim a part twice.
    atomic_store_explicit(&claim, ((uint64_t)gen << 32) | 0xFFFFFFFFu, memory_order_release);
    const int64_t t1 = now_ns();
    atomic_store_explicit(&spin_until, t1 - t0 < SHORT_JOB_NS ? t1 + SPIN_NS : 0, memory_order_relaxed);
    pthread_mutex_unlock(&run_lock);
    return 0;
}
#else
int lt_pool_run(int threads, int64_t parts, lt_parallel_fn fn, void *ctx) {
    (void)threads; (void)parts; (void)fn; (void)ctx;
    return -1;
}
#endif
