#!/usr/bin/env bash
# Runs LangTune's whole test suite on a fresh machine: installs what the tests
# need (oneDNN, Open MPI, the real model files), runs `swift test` in release
# mode (the model-parity tests run real forward passes; debug builds are ~20x slower),
# then the Python interop suite (PEFT, transformers, gguf-py read our files).
# LANGTUNE_SKIP_INTEROP=1 skips the Python part.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIP_BUILD=1 ./scripts/setup.sh
swift build -c release --build-tests -Xswiftc -enable-testing
swift test -c release --skip-build -Xswiftc -enable-testing
./scripts/test-kernels.sh
if [ "${LANGTUNE_SKIP_INTEROP:-0}" != 1 ]; then
  ./scripts/interop.sh
fi
