#include "langtune_kernels.h"
#include <stdatomic.h>
#include <string.h>
#include <math.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
static int detect(void) {
    int f = 0;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) f |= LT_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= LT_CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) f |= LT_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= LT_CPU_AVX512BW;
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29))) f |= LT_CPU_F16C;
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5))) f |= LT_CPU_AVX512BF16;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 22))) f |= LT_CPU_AMX_BF16;
    return f;
}
#else
static int detect(void) { return 0; }
#endif

static atomic_int features = -1;
static atomic_int simd_enabled = 1;

int lt_cpu_features(void) {
    int f = atomic_load(&features);
    if (f < 0) { f = detect(); atomic_store(&features, f); }
    return f;
}
void lt_set_simd_enabled(int enabled) { atomic_store(&simd_enabled, enabled ? 1 : 0); }
int lt_simd_enabled(void) { return atomic_load(&simd_enabled); }

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

int lt_pin_mmap_threshold(int64_t bytes) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, (int)bytes);
#else
    (void)bytes;
    return 0;
#endif
}
