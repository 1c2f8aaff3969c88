#!/usr/bin/env python3
"""Baseline for `langtune bench tokenize`: Hugging Face `tokenizers` encoding the
same texts, one at a time, single-threaded (RAYON_NUM_THREADS=1), without
special tokens.

usage: hf_tokenizers_encode.py (--tokenizer-json PATH | --gguf PATH) --texts TEXTS.json --repeats N
TEXTS.json is a JSON array of strings. Prints one JSON line: {"megabytes_per_second", "tokens", "version"}.
For a GGUF the tokenizer is built from its vocabulary the way Tests/Reference does
(SmolLM2's real configuration: individual digits + byte-level).
"""
import argparse
import json
import os
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Reference"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer-json")
    ap.add_argument("--gguf")
    ap.add_argument("--texts", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    import tokenizers
    if a.tokenizer_json:
        tok = tokenizers.Tokenizer.from_file(a.tokenizer_json)
    else:
        from common import smollm2_reference_tokenizer
        tok = smollm2_reference_tokenizer(a.gguf)[0]
    texts = json.load(open(a.texts, encoding="utf-8"))
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    best, ntok = float("inf"), 0
    for _ in range(max(a.repeats, 1)):
        t0 = time.perf_counter()
        ntok = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"megabytes_per_second": nbytes / best / 1e6, "tokens": ntok}))
    print(f"tokenizers {tokenizers.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
