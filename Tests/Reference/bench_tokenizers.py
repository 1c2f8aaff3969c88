#!/usr/bin/env python3
"""HF tokenizers encode throughput, single thread, for the SmolLM2 reference tokenizer and Llama 3's
tokenizer.json. Input: every line of corpus rule v1 plus every context of tquad/train-v0.1.json, each
encoded separately (add_special_tokens=False). Prints JSON: MB/s = UTF-8 bytes / best-of-N seconds."""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(__file__))
from common import corpus_lines_v1, llama3_tokenizer_json, shared_data, smollm2_reference_tokenizer


def main(repeats=3):
    from tokenizers import Tokenizer
    import tokenizers
    lines = corpus_lines_v1()
    with open(os.path.join(shared_data(), "tquad", "train-v0.1.json"), encoding="utf-8") as f:
        doc = json.load(f)
    lines += [p["context"] for a in doc["data"] for p in a["paragraphs"]]
    nbytes = sum(len(s.encode("utf-8")) for s in lines)
    toks = {"smollm2": smollm2_reference_tokenizer()[0], "llama3": Tokenizer.from_file(llama3_tokenizer_json())}
    result = {"tokenizers": tokenizers.__version__, "lines": len(lines), "bytes": nbytes, "threads": 1}
    for name, tok in toks.items():
        best, ntok = float("inf"), 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            ntok = sum(len(tok.encode(s, add_special_tokens=False).ids) for s in lines)
            best = min(best, time.perf_counter() - t0)
        result[name] = {"seconds": round(best, 4), "tokens": ntok, "mb_per_second": round(nbytes / best / 1e6, 3),
                        "tokens_per_second": round(ntok / best)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
