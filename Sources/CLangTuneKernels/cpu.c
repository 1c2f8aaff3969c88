#include "langtune_kernels.h"
#include <stdatomic.h>
#include <string.h>
#include <math.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
static int detect(void) {
    int f = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) f |= LT_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= LT_CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) f |= LT_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= LT_CPU_AVX512BW;
    if (__builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) f |= LT_CPU_AVX512DQVL;
    if (__builtin_cpu_supports("avx512vnni")) f |= LT_CPU_AVX512VNNI;
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29))) f |= LT_CPU_F16C;
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5))) f |= LT_CPU_AVX512BF16;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 22))) f |= LT_CPU_AMX_BF16;
    return f;
}
#elif defined(__aarch64__)
#if defined(__linux__)
#include <sys/auxv.h>
#endif
static int detect(void) {
    int f = LT_CPU_NEON;  // Advanced SIMD is part of every AArch64 CPU
#if defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    if (hw & (1ul << 20)) f |= LT_CPU_NEON_DOTPROD;  // HWCAP_ASIMDDP
    if (hw2 & (1ul << 13)) f |= LT_CPU_NEON_I8MM;    // HWCAP2_I8MM
#elif defined(__APPLE__)
    f |= LT_CPU_NEON_DOTPROD;  // every Apple Silicon core has it
#endif
    return f;
}
#else
static int detect(void) { return 0; }
#endif

static atomic_int features = -1;

int lt_cpu_features(void) {
    int f = atomic_load(&features);
    if (f < 0) { f = detect(); atomic_store(&features, f); }
    return f;
}

// ---------------------------------------------------------------- kernel tiers
// One tier is active per process: the best the CPU runs, or a lower one named by LANGTUNE_ISA
// (or set by tests). Kernels ask lt_isa() at each call, so a change takes effect at the next call.

int lt_isa_runs(int isa) {
    const int f = lt_cpu_features();
    switch (isa) {
    case LT_ISA_PORTABLE: return 1;
    case LT_ISA_NEON: return (f & LT_CPU_NEON) != 0;
    case LT_ISA_AVX2: {
        const int need = LT_CPU_AVX2 | LT_CPU_FMA | LT_CPU_F16C;
        return (f & need) == need;
    }
    case LT_ISA_AVX512: {
        const int need = LT_CPU_AVX2 | LT_CPU_FMA | LT_CPU_F16C | LT_CPU_AVX512F | LT_CPU_AVX512BW | LT_CPU_AVX512DQVL;
        return (f & need) == need;
    }
    case LT_ISA_AMX: return lt_isa_runs(LT_ISA_AVX512) && lt_amx_permitted();
    default: return 0;
    }
}

int lt_isa_best(void) {
    static atomic_int best = -1;
    int b = atomic_load(&best);
    if (b < 0) {
        const int order[] = {LT_ISA_AMX, LT_ISA_AVX512, LT_ISA_AVX2, LT_ISA_NEON, LT_ISA_PORTABLE};
        for (int i = 0; i < 5; i++)
            if (lt_isa_runs(order[i])) { b = order[i]; break; }
        atomic_store(&best, b);
    }
    return b;
}

static const char *const isa_names[] = {"portable", "neon", "avx2", "avx512", "amx"};

const char *lt_isa_name(int isa) { return isa >= 0 && isa <= LT_ISA_AMX ? isa_names[isa] : "unknown"; }

int lt_isa_parse(const char *name) {
    if (!name) return -1;
    for (int i = 0; i <= LT_ISA_AMX; i++)
        if (strcmp(name, isa_names[i]) == 0) return i;
    return -1;
}

static atomic_int active_isa = -1;

// LANGTUNE_ISA, read once: a name the CPU runs is taken; anything else is ignored here (the
// command line reports it, see lt_isa_env_problem).
static int initial_isa(void) {
    const int forced = lt_isa_parse(getenv("LANGTUNE_ISA"));
    return forced >= 0 && lt_isa_runs(forced) ? forced : lt_isa_best();
}

int lt_isa(void) {
    int a = atomic_load_explicit(&active_isa, memory_order_relaxed);
    if (a < 0) {
        a = initial_isa();
        int expected = -1;
        if (!atomic_compare_exchange_strong(&active_isa, &expected, a)) a = expected;
    }
    return a;
}

int lt_set_isa(int isa) {
    if (!lt_isa_runs(isa)) return -1;
    atomic_store(&active_isa, isa);
    return 0;
}

const char *lt_isa_env_problem(void) {
    const char *env = getenv("LANGTUNE_ISA");
    if (!env || !*env) return NULL;
    const int forced = lt_isa_parse(env);
    if (forced < 0) return "LANGTUNE_ISA is not one of amx, avx512, avx2, neon, portable";
    if (!lt_isa_runs(forced)) return "LANGTUNE_ISA names a tier this CPU cannot run";
    return NULL;
}

// The older switch: off = portable, on = the best tier (or the one LANGTUNE_ISA names).
void lt_set_simd_enabled(int enabled) { atomic_store(&active_isa, enabled ? initial_isa() : LT_ISA_PORTABLE); }
int lt_simd_enabled(void) { return lt_isa() != LT_ISA_PORTABLE; }

float lt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { // subnormal: normalise
            int e = -1;
            do { e++; man <<= 1; } while ((man & 0x400) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f; memcpy(&f, &bits, 4); return f;
}

uint16_t lt_f32_to_f16(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); // rounds to inf
    if (absx < 0x38800000u) { // subnormal or zero in half
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absx >> 23, m = (absx & 0x7fffff) | 0x800000;
        // value = m * 2^(e-150); in half-subnormal units of 2^-24 that is m * 2^(e-126)
        uint32_t s = 126 - e;
        uint32_t q = m >> s, rem = m & ((1u << s) - 1), half = 1u << (s - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = absx - 0x38000000u; // rebias exponent 127 -> 15
    uint32_t q = r >> 13, rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif

void lt_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

int lt_pin_mmap_threshold(int64_t bytes) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, (int)bytes);
#else
    (void)bytes;
    return 0;
#endif
}
