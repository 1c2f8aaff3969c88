// The training kernels' tier switch, kept for older callers: lt_isa() decides (cpu.c).
#include "train_simd.h"

void ltt_set_portable(int on) { lt_set_simd_enabled(on ? 0 : 1); }

int ltt_simd_active(void) { return lt_isa() >= LT_ISA_AVX512; }
