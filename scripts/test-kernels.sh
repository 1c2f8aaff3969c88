#!/usr/bin/env bash
# The C kernels' own tests (Tests/CKernels/kernel_tests.c: every public kernel against float64
# references, on every kernel tier the CPU runs), built straight from Sources/CLangTuneKernels/*.c:
#   1. natively: the tiers this CPU runs (portable, avx2, avx512, amx on x86; portable, neon on ARM64);
#   2. cross-compiled for ARM64 with Debian's aarch64-linux-gnu-gcc and run under qemu-aarch64, once on
#      qemu's default CPU (NEON with dotprod and i8mm) and once on a Cortex-A53 (plain NEON), so the
#      neon tier is tested on any build machine. Speed under qemu means nothing; correctness does.
# The cross tools (gcc-aarch64-linux-gnu, qemu-user) are installed with apt-get when missing. Without
# them the ARM64 part is skipped with a message, or fails when LANGTUNE_REQUIRE_MODELS=1 (CI).
# LANGTUNE_SKIP_ARM64=1 skips it, LANGTUNE_SKIP_ASAN=1 the native AddressSanitizer run;
# LANGTUNE_TEST_SEED=S replays a run's random inputs; CC picks the native compiler (default: clang,
# as SwiftPM builds the kernels, else cc).
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=Sources/CLangTuneKernels
TEST=Tests/CKernels/kernel_tests.c
OUT=.build/kernel-tests
mkdir -p "$OUT"
FLAGS=(-O2 -I "$SRC/include" -I "$SRC")
LIBS=(-lm -ldl -lpthread)
status=0

cc=${CC:-}
if [ -z "$cc" ]; then
  if command -v clang >/dev/null; then cc=clang; else cc=cc; fi
fi

echo "test-kernels: native build ($cc, $(uname -m))" >&2
"$cc" "${FLAGS[@]}" "$TEST" "$SRC"/*.c -o "$OUT/kernel_tests" "${LIBS[@]}"
echo "test-kernels: running natively" >&2
"$OUT/kernel_tests" || status=1

# Again under AddressSanitizer: a vector load or store past the end of a row (tails) is a bug the
# float comparisons may not see. Skipped where the compiler has no ASan runtime.
if [ "${LANGTUNE_SKIP_ASAN:-0}" != 1 ]; then
  if "$cc" -O1 -g -fno-omit-frame-pointer -fsanitize=address -I "$SRC/include" -I "$SRC" "$TEST" "$SRC"/*.c \
       -o "$OUT/kernel_tests-asan" "${LIBS[@]}" > "$OUT/asan-build.log" 2>&1; then
    echo "test-kernels: running natively under AddressSanitizer" >&2
    ASAN_OPTIONS=detect_leaks=0 "$OUT/kernel_tests-asan" > "$OUT/asan.out" 2>&1 || { grep -v '^ok ' "$OUT/asan.out"; status=1; }
    tail -n 1 "$OUT/asan.out"
  else
    echo "test-kernels: $cc cannot build with -fsanitize=address here; AddressSanitizer run skipped" >&2
  fi
fi

# ---------------------------------------------------------------- ARM64 under qemu
if [ "${LANGTUNE_SKIP_ARM64:-0}" = 1 ] || [ "$(uname -m)" = aarch64 ] || [ "$(uname -m)" = arm64 ]; then
  exit $status
fi

find_qemu() { command -v qemu-aarch64 || command -v qemu-aarch64-static || true; }
have_cross() { command -v aarch64-linux-gnu-gcc >/dev/null && [ -n "$(find_qemu)" ]; }

if ! have_cross && [ "$(uname -s)" = Linux ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "test-kernels: installing the ARM64 cross compiler and qemu (gcc-aarch64-linux-gnu, qemu-user)" >&2
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user >/dev/null; } ||
    { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user-static >/dev/null; } ||
    echo "test-kernels: apt-get could not install gcc-aarch64-linux-gnu / qemu-user" >&2
fi

if ! have_cross; then
  msg="test-kernels: no aarch64-linux-gnu-gcc or qemu-aarch64 here (Debian packages gcc-aarch64-linux-gnu and qemu-user): the neon tier was NOT tested"
  if [ "${LANGTUNE_REQUIRE_MODELS:-0}" = 1 ]; then
    echo "$msg (LANGTUNE_REQUIRE_MODELS=1: failing)" >&2
    exit 1
  fi
  echo "$msg; skipping" >&2
  exit $status
fi

qemu=$(find_qemu)
echo "test-kernels: ARM64 build (aarch64-linux-gnu-gcc), run under $(basename "$qemu")" >&2
# Static: no ARM64 loader or libraries needed at run time (dlopen of oneDNN then finds nothing, so the
# built-in GEMM runs, which is what is tested).
aarch64-linux-gnu-gcc "${FLAGS[@]}" -static "$TEST" "$SRC"/*.c -o "$OUT/kernel_tests-aarch64" "${LIBS[@]}" 2> "$OUT/aarch64-build.log" ||
  { cat "$OUT/aarch64-build.log" >&2; exit 1; }
for cpu in max cortex-a53; do
  echo "test-kernels: qemu-aarch64 -cpu $cpu" >&2
  "$qemu" -cpu "$cpu" -L /usr/aarch64-linux-gnu "$OUT/kernel_tests-aarch64" || status=1
done
exit $status
