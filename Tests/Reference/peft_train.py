#!/usr/bin/env python3
"""PyTorch + PEFT LoRA training on a LangTune batch file: the loss-curve and speed reference for
`langtune train`.

usage: peft_train.py BATCHES.jsonl OUT.json [--dtype float32|bf16-autocast] [--init-adapter DIR]
       [--save-adapter DIR] [--threads 2] [--steps N] [--model PATH] [--one-by-one]

Model: transformers' GGUF loader (every tensor dequantized to float32; Q/K in HF layout) from the header's
"model" (or --model; an HF folder also works). LoRA: LoraConfig(r, lora_alpha, lora_dropout, target_modules,
bias="none", task_type="CAUSAL_LM") from the header; --init-adapter copies A/B from a PEFT folder (all LoRA
tensors must be there). Optimizer: torch.optim.AdamW over the LoRA parameters with the header's
betas/eps/weight_decay; each step sets the param-group lr to the step line's "lr". torch.manual_seed(header
seed) before PEFT's init (matters only without --init-adapter, or with dropout > 0).

Per step: for each micro-batch (right-padded to its longest example with an attention mask, or one example
at a time with --one-by-one), loss_sum = sum of per-token cross-entropy (HF shift: logits[t-1] vs
labels[t], float32 log-softmax), backward(loss_sum / N) where N = counted label tokens of the whole step;
then grad_norm = clip_grad_norm_(max_grad_norm) (the total norm before clipping; no clipping when
max_grad_norm <= 0), optimizer.step(), zero_grad. --dtype bf16-autocast runs forward under
torch.autocast("cpu", bfloat16); weights, grads and optimizer state stay float32.

OUT.json: {"steps": [{"step", "lr", "loss", "grad_norm", "tokens" (input tokens, unpadded),
"label_tokens" (N), "seconds"}], "tokens_per_second", "seconds_per_step", "peak_rss_bytes",
"rss_after_load_bytes", "load_seconds", "dtype", "batching", "header", "torch", "peft", "transformers",
"threads", "trainable_parameters", "init_adapter_sha256"?}. tokens_per_second and seconds_per_step are over
all steps but the first (warm-up) when there are at least 2; peak_rss_bytes is the process's
getrusage maxrss (model loading included)."""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_common as tc  # noqa: E402


def build(header, model_path, init_adapter, dtype_mode):
    import torch
    from peft import get_peft_model
    model = tc.load_model(model_path)
    for p in model.parameters():
        p.requires_grad_(False)
    torch.manual_seed(int(header["seed"]))
    cfg = tc.lora_config(header["rank"], header["alpha"], header["dropout"], header["targets"],
                         use_rslora=bool(header.get("use_rslora", False)))
    model = get_peft_model(model, cfg)
    if init_adapter:
        tc.load_adapter_weights(model, init_adapter, expect=(header["rank"], header["alpha"], header["targets"]))
    model.train()
    return model


def train(model, header, steps, autocast_bf16, one_by_one, log=True):
    import torch
    params = [p for _, p in tc.lora_params(model)]
    b1, b2 = header["betas"]
    opt = torch.optim.AdamW(params, lr=float(header["lr"]), betas=(float(b1), float(b2)), eps=float(header["eps"]),
                            weight_decay=float(header["weight_decay"]))
    max_norm = float(header["max_grad_norm"] or 0)
    records = []
    for st in steps:
        t0 = time.perf_counter()
        n_count = sum(tc.counted_tokens(e) for mb in st["micro_batches"] for e in mb["examples"])
        n_input = sum(len(e["ids"]) for mb in st["micro_batches"] for e in mb["examples"])
        if n_count == 0:
            raise SystemExit(f"step {st['step']}: no label tokens")
        total = 0.0
        groups = ([[e] for mb in st["micro_batches"] for e in mb["examples"]] if one_by_one
                  else [mb["examples"] for mb in st["micro_batches"]])
        for exs in groups:
            ids, labels, mask = tc.pad_micro_batch(exs)
            loss_sum, _ = tc.summed_loss(model, ids, labels, mask, autocast_bf16)
            (loss_sum / n_count).backward()
            total += float(loss_sum.detach())
        if max_norm > 0:
            gn = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        else:
            gn = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))
        for g in opt.param_groups:
            g["lr"] = float(st["lr"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        rec = {"step": st["step"], "lr": float(st["lr"]), "loss": total / n_count, "grad_norm": gn,
               "tokens": n_input, "label_tokens": n_count, "seconds": dt}
        records.append(rec)
        if log:
            print(json.dumps(rec), flush=True)
    return records


def summarize(records):
    timed = records[1:] if len(records) >= 2 else records
    secs = sum(r["seconds"] for r in timed)
    toks = sum(r["tokens"] for r in timed)
    return {"tokens_per_second": toks / secs if secs > 0 else None,
            "seconds_per_step": secs / len(timed) if timed else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("batches")
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=["float32", "bf16-autocast"], default="float32")
    ap.add_argument("--init-adapter")
    ap.add_argument("--save-adapter")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="use only the first N steps of the file")
    ap.add_argument("--model", default=None, help="override the header's model path")
    ap.add_argument("--one-by-one", action="store_true", help="one example per forward instead of padding")
    a = ap.parse_args()

    import torch
    torch.set_num_threads(a.threads)
    try:
        header, steps = tc.read_batches(a.batches, a.steps)
    except tc.BatchFileError as e:
        raise SystemExit(str(e))
    t0 = time.perf_counter()
    model = build(header, a.model or header["model"], a.init_adapter, a.dtype)
    load_s = time.perf_counter() - t0
    rss_load = tc.current_rss_bytes()
    n_train = sum(p.numel() for _, p in tc.lora_params(model))
    print(f"loaded in {load_s:.1f}s, {n_train} trainable parameters, {len(steps)} steps, dtype {a.dtype}",
          file=sys.stderr, flush=True)
    records = train(model, header, steps, a.dtype == "bf16-autocast", a.one_by_one)
    out = {"steps": records, **summarize(records), "peak_rss_bytes": tc.peak_rss_bytes(),
           "rss_after_load_bytes": rss_load, "load_seconds": load_s, "dtype": a.dtype,
           "batching": "one-by-one" if a.one_by_one else "padded", "header": header, **tc.versions(),
           "threads": torch.get_num_threads(), "trainable_parameters": n_train}
    if a.init_adapter:
        out["init_adapter_sha256"] = tc.sha256_file(tc.adapter_file(a.init_adapter))
    if a.save_adapter:
        model.save_pretrained(a.save_adapter)
        out["saved_adapter"] = os.path.abspath(a.save_adapter)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: out[k] for k in ("tokens_per_second", "seconds_per_step", "peak_rss_bytes")}))


if __name__ == "__main__":
    main()
