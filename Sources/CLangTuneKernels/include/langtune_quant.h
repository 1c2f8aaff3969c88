#ifndef LANGTUNE_QUANT_H
#define LANGTUNE_QUANT_H

#include <stdint.h>

// NF4 and 8-bit blockwise quantization with bitsandbytes' semantics (bitsandbytes 0.50,
// backends/default/ops.py): blocks of `blocksize` consecutive values of the flattened tensor,
// scale = the block's absolute maximum, value/scale rounded to the nearest code (a value exactly
// on a midpoint takes the lower code, as torch.bucketize does).

/// The 16 NormalFloat levels, index = 4-bit code.
extern const float lt_nf4_code[16];

/// x[n] -> packed[(n+1)/2] (element 2i in the high nibble, 2i+1 in the low one; an odd tail is
/// padded with code 0's position holding the value 0 -> code 7) and absmax[ceil(n/blocksize)].
void lt_nf4_quantize(const float *x, int64_t n, int64_t blocksize, uint8_t *packed, float *absmax);

/// Blockwise 8-bit quantization against a sorted 256-entry map (bitsandbytes quantize_blockwise).
void lt_blockwise8_quantize(const float *x, int64_t n, int64_t blocksize, const float *map256,
                            uint8_t *codes, float *absmax);

/// Block scales of an NF4 tensor for blocks [b0, b1): plain absmax, or, when `absmax_codes` is not
/// NULL, double-quantized ones: map256[code] * nested_absmax[b / nested_blocksize] + offset.
void lt_nf4_block_scales(const float *absmax, const uint8_t *absmax_codes, const float *nested_absmax,
                         const float *map256, float offset, int64_t nested_blocksize,
                         int64_t b0, int64_t b1, float *scales);

/// out[i - start] = code[q_i] * scales[i / blocksize - start / blocksize] for i in [start, end);
/// `scales` hold the blocks from start/blocksize on.
void lt_nf4_dequantize(const uint8_t *packed, const float *scales, int64_t blocksize,
                       int64_t start, int64_t end, float *out);

/// XXH64 of `len` bytes (checksums of cached quantized weights).
uint64_t lt_xxh64(const void *data, int64_t len, uint64_t seed);

#endif
