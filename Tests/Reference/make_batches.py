#!/usr/bin/env python3
"""Writes a batch file in the `langtune train --export-batches` format (see train_common.py) from a
SQuAD-style file, for testing peft_train.py / peft_grads.py / eval_loss.py before (or independently of)
LangTune's exporter. It is NOT LangTune's prompt format: use LangTune's own export for acceptance runs.

Example: ChatML via the GGUF's chat template, one user message "{context}\\n\\n{question}",
add_generation_prompt=True, then the completion "{answer}<|im_end|>\\n"; labels = ids on the completion,
-100 on the prompt. Contexts too long for --seq-len are cut to a window around the answer.
Examples: the first --count questions of the file (file order), shuffled with --seed, --batch-size per
micro-batch, --grad-accum micro-batches per step; lr: linear warm-up then cosine to 0.

usage: make_batches.py OUT.jsonl [--data tquad/train-v0.1.json] [--count 2000] [--steps 100]
       [--batch-size 4] [--grad-accum 1] [--seq-len 512] [--rank 16] [--alpha 32] [--targets ...] [--lr 2e-4]
       [--warmup 10] [--seed 0] [--examples-only]   (--examples-only: one {"ids","labels"} per line, for eval_loss.py)
"""
import argparse
import json
import math
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import gguf_field, shared_data, smollm2_gguf, smollm2_reference_tokenizer  # noqa: E402
from train_common import ALL_TARGETS, IGNORE, normalize_target  # noqa: E402


def squad_items(path, count):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    out = []
    for art in doc["data"]:
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                if not qa.get("answers"):
                    continue
                ans = qa["answers"][0]
                out.append((para["context"], qa["question"], ans["text"], int(ans.get("answer_start", 0))))
                if len(out) >= count:
                    return out
    return out


def encode_example(tok, template, eos_text, context, question, answer, start, seq_len):
    from transformers.utils.chat_template_utils import render_jinja_template
    completion = tok.encode(answer + eos_text + "\n", add_special_tokens=False).ids
    width = len(context)
    while True:
        if width >= len(context):
            ctx = context
        else:
            lo = max(0, min(start - width // 2, len(context) - width))
            ctx = context[lo:lo + width]
        msgs = [{"role": "user", "content": ctx + "\n\n" + question}]
        prompt = render_jinja_template(conversations=[msgs], chat_template=template, add_generation_prompt=True,
                                       eos_token=eos_text)[0][0]
        pids = tok.encode(prompt, add_special_tokens=False).ids
        if len(pids) + len(completion) <= seq_len or width < 16:
            break
        width = int(width * 0.85)
    ids = (pids + completion)[:seq_len]
    labels = ([IGNORE] * len(pids) + completion)[:seq_len]
    return {"ids": ids, "labels": labels}


def lr_at(step, lr, warmup, steps):
    if step < warmup:
        return lr * (step + 1) / warmup
    span = max(1, steps - warmup)
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / span))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--model", default=smollm2_gguf())
    ap.add_argument("--data", default=os.path.join(shared_data(), "tquad", "train-v0.1.json"))
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=None, help="drop examples longer than this (after cutting)")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--targets", default=",".join(ALL_TARGETS))
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--examples-only", action="store_true")
    a = ap.parse_args()

    from gguf import GGUFReader
    tok, _ = smollm2_reference_tokenizer(a.model)
    reader = GGUFReader(a.model)
    template = gguf_field(reader, "tokenizer.chat_template")
    tokens = gguf_field(reader, "tokenizer.ggml.tokens")
    eos_text = tokens[gguf_field(reader, "tokenizer.ggml.eos_token_id")]

    items = squad_items(a.data, a.count)
    examples = [encode_example(tok, template, eos_text, *it, a.seq_len) for it in items]
    if a.max_tokens:
        examples = [e for e in examples if len(e["ids"]) <= a.max_tokens]
    with open(a.out, "w", encoding="utf-8") as f:
        if a.examples_only:
            for e in examples:
                f.write(json.dumps(e) + "\n")
            print(json.dumps({"examples": len(examples)}))
            return
        rng = random.Random(a.seed)
        order = []
        per_step = a.batch_size * a.grad_accum
        header = {"header": True, "model": os.path.abspath(a.model), "rank": a.rank, "alpha": a.alpha,
                  "dropout": a.dropout, "targets": [normalize_target(t) for t in a.targets.split(",")],
                  "lr": a.lr, "schedule": "cosine", "warmup": a.warmup, "weight_decay": a.weight_decay,
                  "betas": [0.9, 0.999], "eps": 1e-8, "max_grad_norm": a.max_grad_norm, "seed": a.seed,
                  "steps": a.steps}
        f.write(json.dumps(header) + "\n")
        for s in range(a.steps):
            while len(order) < per_step:  # a new shuffled epoch whenever the current one runs out
                perm = list(range(len(examples)))
                rng.shuffle(perm)
                order += perm
            take, order = order[:per_step], order[per_step:]
            mbs = [{"examples": [examples[i] for i in take[m * a.batch_size:(m + 1) * a.batch_size]]}
                   for m in range(a.grad_accum)]
            f.write(json.dumps({"step": s, "lr": lr_at(s, a.lr, a.warmup, a.steps), "micro_batches": mbs}) + "\n")
    lens = [len(e["ids"]) for e in examples]
    print(json.dumps({"examples": len(examples), "mean_len": sum(lens) / max(1, len(lens)), "max_len": max(lens)}))


if __name__ == "__main__":
    main()
