#!/usr/bin/env bash
# Issue #6's speed comparison in one command: training (LoRA r16, SmolLM2-135M, 4x512 tokens) against
# PyTorch+PEFT float32 and bf16 autocast, then generation (512-token prompt, 128 tokens) against llama.cpp,
# float32 and bf16, each baseline measured in the same invocation. Prints the ratios; JSON under $OUT
# (default bench-results/). Needs a release build and LANGTUNE_PYTHON pointing at a Python with torch,
# transformers, peft and llama-cpp-python (Benchmarks/README in docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
LT=.build/release/langtune
OUT=${OUT:-bench-results}
: "${LANGTUNE_PYTHON:?set LANGTUNE_PYTHON to a Python with torch, transformers, peft, llama-cpp-python}"
export LANGTUNE_PYTHON
[ -x "$LT" ] || swift build -c release
mkdir -p "$OUT"
echo "== training, --dtype bf16 (PyTorch+PEFT float32 and bf16 autocast in the same run)"
"$LT" bench train --dtype bf16 --steps 3 | tee "$OUT/train-bf16.txt"
echo "== training, --dtype bf16 --checkpoint-activations (memory)"
"$LT" bench train --dtype bf16 --steps 3 --checkpoint-activations --baseline-modes float32,bf16_autocast | tee "$OUT/train-bf16-ckpt.txt"
for dt in f32 bf16; do
  echo "== generation, --dtype $dt (llama.cpp in the same run)"
  "$LT" bench generate --dtype $dt | tee "$OUT/generate-$dt.txt"
done
echo "== GEMM"
"$LT" bench gemm | tee "$OUT/gemm.txt"
