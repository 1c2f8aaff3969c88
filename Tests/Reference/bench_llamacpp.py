#!/usr/bin/env python3
"""llama.cpp (llama-cpp-python) speed on the SmolLM2 GGUF with 2 threads, as a yardstick for LangTune.
prompt: one 512-token prompt (TQuAD train contexts, tokenized by llama.cpp) evaluated in one batch;
generate: 128 tokens one at a time after that prompt (greedy, EOS ignored). Best of 3 runs each.
Prints JSON {"prompt_tokens_per_second", "generate_tokens_per_second", ...}.
Install: pip install llama-cpp-python (builds llama.cpp from source; ~10-20 min on 2 cores)."""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import shared_data, smollm2_gguf

N_PROMPT, N_GEN, THREADS, RUNS = 512, 128, 2, 3


def prompt_text():
    p = os.path.join(shared_data(), "tquad", "train-v0.1.json")
    if os.path.exists(p):
        with open(p, encoding="utf-8") as f:
            doc = json.load(f)
        return "\n\n".join(par["context"] for a in doc["data"][:20] for par in a["paragraphs"])
    return "The quick brown fox jumps over the lazy dog. " * 200


def main():
    import llama_cpp
    llm = llama_cpp.Llama(model_path=smollm2_gguf(), n_ctx=N_PROMPT + N_GEN + 16, n_batch=N_PROMPT,
                          n_ubatch=N_PROMPT, n_threads=THREADS, n_threads_batch=THREADS, verbose=False)
    tokens = llm.tokenize(prompt_text().encode("utf-8"), add_bos=False, special=False)[:N_PROMPT]
    assert len(tokens) == N_PROMPT
    pp, tg = [], []
    for _ in range(RUNS):
        llm.reset()
        llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
        t0 = time.perf_counter()
        llm.eval(tokens)
        pp.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(N_GEN):
            nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            llm.eval([nxt])
        tg.append(time.perf_counter() - t0)
    print(json.dumps({
        "prompt_tokens_per_second": round(N_PROMPT / min(pp), 2),
        "generate_tokens_per_second": round(N_GEN / min(tg), 2),
        "prompt_tokens": N_PROMPT, "generate_tokens": N_GEN, "threads": THREADS, "runs": RUNS,
        "llama_cpp_python": llama_cpp.__version__, "model": os.path.basename(smollm2_gguf()),
    }))


if __name__ == "__main__":
    main()
