#!/usr/bin/env bash
# Every speed comparison in one command, each baseline measured in the same invocation: LoRA and QLoRA
# training (SmolLM2-135M, r16, 4x512 tokens) against PyTorch+PEFT, then prompt processing and generation
# against llama.cpp (llama-bench when scripts/build-llama-bench.sh built it, else llama-cpp-python), float32
# and --dtype bf16, then the GEMMs. Prints the ratios; text under $OUT (default bench-results/).
#
# The kernel tier is the CPU's best; LANGTUNE_ISA=avx2 (or portable, neon, avx512) measures a lower one.
# bf16 training and PyTorch's bf16 autocast run only where the CPU has bf16 units (AMX or AVX512-BF16):
# elsewhere autocast emulates bf16 and took over 10 minutes for 4 steps.
#
# Needs a release build and LANGTUNE_PYTHON pointing at a Python with torch, transformers, peft (and
# llama-cpp-python when llama-bench is absent); docs/PERFORMANCE.md says how.
set -euo pipefail
cd "$(dirname "$0")/.."
LT=.build/release/langtune
OUT=${OUT:-bench-results}
: "${LANGTUNE_PYTHON:?set LANGTUNE_PYTHON to a Python with torch, transformers, peft (and llama-cpp-python without llama-bench)}"
export LANGTUNE_PYTHON
[ -x "$LT" ] || swift build -c release --product langtune
mkdir -p "$OUT"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
backend=$("$LT" inspect default --json | "$LANGTUNE_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["backend"])')
echo "== $(date -u +%F) | $cpu | $backend" | tee "$OUT/machine.txt"
bf16_units=0
grep -qwE 'amx_bf16|avx512_bf16' /proc/cpuinfo && case "${LANGTUNE_ISA:-}" in ""|amx|avx512) bf16_units=1 ;; esac

echo "== LoRA training, float32 (PyTorch+PEFT float32 in the same run)"
"$LT" bench train --steps 3 --baseline-modes float32 | tee "$OUT/train-f32.txt"
echo "== QLoRA training (the GGUF's own 4-bit blocks as the frozen base; PyTorch's QLoRA needs a GPU)"
"$LT" bench train --method qlora --steps 3 --no-baseline | tee "$OUT/train-qlora.txt"
if [ "$bf16_units" = 1 ]; then
  echo "== LoRA training, --dtype bf16 (PyTorch+PEFT float32 and bf16 autocast in the same run)"
  "$LT" bench train --dtype bf16 --steps 3 | tee "$OUT/train-bf16.txt"
  echo "== LoRA training, --dtype bf16 --checkpoint-activations (memory)"
  "$LT" bench train --dtype bf16 --steps 3 --checkpoint-activations --baseline-modes float32,bf16_autocast | tee "$OUT/train-bf16-ckpt.txt"
fi
for dt in f32 bf16; do
  echo "== prompt and generation, --dtype $dt (llama.cpp in the same run)"
  "$LT" bench generate --dtype $dt | tee "$OUT/generate-$dt.txt"
done
echo "== GEMM"
"$LT" bench gemm | tee "$OUT/gemm.txt"
