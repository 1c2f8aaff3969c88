#ifndef LANGTUNE_KERNELS_H
#define LANGTUNE_KERNELS_H
#include <stddef.h>
#include <stdint.h>
float lt_dot_f32(const float *a, const float *b, size_t n);
#endif
