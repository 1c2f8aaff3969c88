// Run-time choice between the AVX-512 and portable kernel bodies.
#include <stdatomic.h>

#include "train_simd.h"

static atomic_int ltt_portable_forced = 0;

void ltt_set_portable(int on) { atomic_store(&ltt_portable_forced, on ? 1 : 0); }

int ltt_simd_active(void) {
    if (atomic_load_explicit(&ltt_portable_forced, memory_order_relaxed)) return 0;
#if LTT_HAVE_X86
    // The compiler runtime's feature check includes the OS's XSAVE support
    // for the zmm registers.
    static atomic_int cached = -1;
    int c = atomic_load_explicit(&cached, memory_order_relaxed);
    if (c < 0) {
        __builtin_cpu_init();
        c = (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("fma"))
                ? 1
                : 0;
        atomic_store_explicit(&cached, c, memory_order_relaxed);
    }
    return c;
#else
    return 0;
#endif
}
