#!/usr/bin/env python3
"""Baseline for `langtune bench generate`: llama.cpp (llama-cpp-python) on the
same GGUF, the same prompt token ids and the same thread count.

usage: llamacpp_generate.py MODEL.gguf IDS.json GEN_TOKENS THREADS REPEATS
Prints one JSON line: {"prompt_tokens_per_second", "generate_tokens_per_second", "version"}.
Generation is greedy and ignores EOS, like LangTune's side of the benchmark.
"""
import json
import sys
import time

import numpy as np
from llama_cpp import Llama, __version__


def main():
    model, ids_file, gen, threads, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    ids = json.load(open(ids_file))
    n_ctx = len(ids) + gen + 8
    # n_batch = n_ctx: llama-cpp-python keeps one logits row per batch slot, indexed by position.
    llm = Llama(model_path=model, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                n_batch=n_ctx, n_ubatch=max(512, len(ids)), logits_all=False, verbose=False)
    best_pp = best_tg = 0.0
    for _ in range(max(repeats, 1)):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        best_pp = max(best_pp, len(ids) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for _ in range(gen):
            tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            llm.eval([tok])
        best_tg = max(best_tg, gen / (time.perf_counter() - t0))
    print(json.dumps({"prompt_tokens_per_second": best_pp, "generate_tokens_per_second": best_tg}))
    print(f"llama-cpp-python {__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
