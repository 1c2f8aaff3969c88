#!/usr/bin/env python3
"""Token-id fixtures for the SmolLM2 and Llama 3 tokenizers.

Inputs: Tests/Fixtures/tokenizer/hard_cases.json, corpus rule v1 (see common.py) over
$SHARED_DATA, $LANGTUNE_HOME/tokenizers/llama3/tokenizer.json and the SmolLM2 GGUF.
Outputs (Tests/Fixtures/tokenizer/):
  smollm2_ids.jsonl, llama3_ids.jsonl: one object per line
     {"src": "hard"|"corpus", "i": int, "sha": 16 hex, "add_special_tokens": bool, "ids": [int]}
     first every hard case then every corpus line with add_special_tokens=false, then the
     first 10 hard cases and first 10 corpus lines again with add_special_tokens=true.
  corpus_v1.json: {"rule", "files", "per_file", "count", "sha": [16 hex per line]}
  smollm2_tokenizer_info.json: the reference config used + where transformers' GGUF tokenizer differs.
The corpus text itself is never written (only sha256 prefixes)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import (FIXTURES, corpus_lines_v1, load_hard_cases, sha16, smollm2_gguf,
                    llama3_tokenizer_json, smollm2_reference_tokenizer)

OUT = os.path.join(FIXTURES, "tokenizer")


def records(encode, hard, corpus):
    rows = []
    for special in (False, True):
        for src, items in (("hard", hard), ("corpus", corpus)):
            n = len(items) if not special else 10
            for i, s in enumerate(items[:n]):
                rows.append({"src": src, "i": i, "sha": sha16(s), "add_special_tokens": special,
                             "ids": encode(s, special)})
    return rows


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    print(f"{len(rows)} rows -> {path} ({os.path.getsize(path)} bytes)")


def transformers_gguf_tokenizer():
    from transformers import AutoTokenizer
    path = smollm2_gguf()
    return AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))


def main():
    hard = load_hard_cases()
    corpus = corpus_lines_v1()
    # Corpus index: global over both files.
    with open(os.path.join(OUT, "corpus_v1.json"), "w", encoding="utf-8") as f:
        json.dump({"rule": "v1", "files": ["tquad/dev-v0.1.json", "cmrc2018/cmrc2018_trial.json"],
                   "per_file": 1100, "count": len(corpus), "sha": [sha16(s) for s in corpus]}, f, indent=0)
        f.write("\n")

    from tokenizers import Tokenizer
    llama = Tokenizer.from_file(llama3_tokenizer_json())
    write_jsonl(os.path.join(OUT, "llama3_ids.jsonl"),
                records(lambda s, sp: llama.encode(s, add_special_tokens=sp).ids, hard, corpus))

    smol, info = smollm2_reference_tokenizer()
    smol_rows = records(lambda s, sp: smol.encode(s, add_special_tokens=sp).ids, hard, corpus)
    write_jsonl(os.path.join(OUT, "smollm2_ids.jsonl"), smol_rows)

    # Round trip: decoding must give the input back for every line (byte-level BPE is lossless).
    bad_rt = [(r["src"], r["i"]) for r, s in zip(smol_rows, hard + corpus)
              if smol.decode(r["ids"], skip_special_tokens=False) != s]
    # Compare with transformers' own GGUF tokenizer.
    diffs = []
    try:
        hf = transformers_gguf_tokenizer()
        for r, s in zip(smol_rows, hard + corpus):
            other = hf.encode(s, add_special_tokens=False)
            if other != r["ids"]:
                diffs.append({"src": r["src"], "i": r["i"], "sha": r["sha"], "reference": r["ids"],
                              "transformers_gguf": other})
        hf_backend = json.loads(hf.backend_tokenizer.to_str())
        hf_cfg = {k: hf_backend.get(k) for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder")}
        hf_cfg["model_flags"] = {k: v for k, v in hf_backend["model"].items() if k not in ("vocab", "merges")}
    except Exception as e:  # recorded, not fatal: the reference above does not depend on it
        hf_cfg = {"error": repr(e)}
    ref_backend = json.loads(smol.to_str())
    ref_cfg = {k: ref_backend.get(k) for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder")}
    ref_cfg["model_flags"] = {k: v for k, v in ref_backend["model"].items() if k not in ("vocab", "merges")}
    ref_cfg["added_tokens"] = ref_backend["added_tokens"]
    info.update({"reference_config": ref_cfg, "transformers_gguf_config": hf_cfg,
                 "round_trip_failures": bad_rt,
                 "n_lines_compared": len(hard) + len(corpus),
                 "transformers_gguf_differs": diffs[:40], "n_differs": len(diffs)})
    with open(os.path.join(OUT, "smollm2_tokenizer_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"round-trip failures: {len(bad_rt)}; lines where transformers' GGUF tokenizer differs: {len(diffs)}")


if __name__ == "__main__":
    main()
