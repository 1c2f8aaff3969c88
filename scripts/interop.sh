#!/usr/bin/env bash
# The Python interop suite (Tests/Interop): Hugging Face PEFT, transformers,
# tokenizers and gguf-py open what LangTune writes, and LangTune opens theirs;
# the official openai client talks to `langtune serve`.
# Installs its packages into .venv-interop (pinned in Tests/Interop/requirements.txt;
# torch is the CPU build) and runs pytest against the release `langtune`.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-interop
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    if command -v apt-get >/dev/null; then
      sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
      $sudo apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$venv"
    else
      echo "interop: python3 -m venv is not available" >&2; exit 1
    fi
  fi
fi
if ! "$venv/bin/python" -c "import torch, transformers, peft, gguf, pytest, openai" 2>/dev/null; then
  echo "interop: installing Tests/Interop/requirements.txt into $venv (torch CPU, transformers, peft, gguf, openai …)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r Tests/Interop/requirements.txt
fi
export LANGTUNE_BIN="${LANGTUNE_BIN:-$PWD/.build/release/langtune}"
exec "$venv/bin/python" -m pytest Tests/Interop -q -p no:cacheprovider "$@"
