#include "langtune_kernels.h"
float lt_dot_f32(const float *a, const float *b, size_t n) {
    float s = 0.f;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
