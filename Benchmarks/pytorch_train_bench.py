#!/usr/bin/env python3
"""Baseline for `langtune bench train`: PyTorch + PEFT LoRA training speed on CPU.

usage: pytorch_train_bench.py [--model GGUF|HF_DIR] [--steps 5] [--seq-len 512] [--batch-size 4] [--threads 2]
       [--rank 16] [--alpha 2*rank] [--modes float32,bf16_autocast,qlora] [--seed 0]

Setup (the same as LangTune's side of the benchmark): the model loaded with transformers (a GGUF is
dequantized to float32), PEFT LoRA rank --rank, alpha --alpha, dropout 0, all seven targets
(q,k,v,o,gate,up,down), AdamW lr 1e-4, clipping at 1.0. Data: one batch of --batch-size sequences of
--seq-len random token ids (torch.Generator seeded with --seed, uniform over the vocabulary), every
position labelled (labels = ids, HF shift: batch*(seq_len-1) loss tokens), reused every step.
One warm-up step, then --steps timed steps (forward, backward, clip, AdamW step, zero_grad).
Each mode runs in its own subprocess, so peak RSS (getrusage maxrss, model loading included) is per mode:
  float32        everything float32
  bf16_autocast  forward under torch.autocast("cpu", dtype=torch.bfloat16); weights, grads, AdamW float32
  qlora          only if bitsandbytes imports: base linear layers as bitsandbytes NF4 (double quantization,
                 compute dtype float32) loaded from a float32 copy of the model that a separate
                 subprocess writes to a temp folder first; LoRA on top as above
Prints one JSON line: {"float32": {"tokens_per_second", "peak_rss_bytes", "seconds_per_step",
"first_step_seconds", "final_loss"}, "bf16_autocast": {...}, "qlora": {...}?, "config": {...},
"versions": {...}}; tokens_per_second = batch*seq_len*steps / timed seconds. A mode that fails reports
{"error": message} instead."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Reference")
sys.path.insert(0, REF)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def default_model():
    home = os.environ.get("LANGTUNE_HOME") or os.path.expanduser("~/.cache/langtune")
    return os.path.join(home, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def bnb_available():
    try:
        import bitsandbytes  # noqa: F401
        return True, bitsandbytes.__version__
    except Exception as e:  # any import failure means: no QLoRA baseline
        return False, f"{type(e).__name__}: {e}"


def worker(a):
    import resource
    import torch
    import train_common as tc
    from peft import get_peft_model
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.worker == "qlora":
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.float32)
        model = AutoModelForCausalLM.from_pretrained(a.qlora_dir, quantization_config=q, dtype=torch.float32,
                                                     device_map="cpu")
    else:
        model = tc.load_model(a.model)
    for p in model.parameters():
        p.requires_grad_(False)
    model = get_peft_model(model, tc.lora_config(a.rank, a.alpha, 0.0, TARGETS))
    model.train()
    params = [p for _, p in tc.lora_params(model)]
    opt = torch.optim.AdamW(params, lr=1e-4)
    g = torch.Generator().manual_seed(a.seed)
    vocab = model.get_input_embeddings().weight.shape[0]
    ids = torch.randint(0, vocab, (a.batch_size, a.seq_len), generator=g)
    mask = torch.ones_like(ids)
    n_tok = a.batch_size * (a.seq_len - 1)
    autocast = a.worker == "bf16_autocast"

    def step():
        loss_sum, _ = tc.summed_loss(model, ids, ids, mask, autocast)
        loss = loss_sum / n_tok
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    loss = None
    for _ in range(a.steps):
        loss = step()
    secs = time.perf_counter() - t0
    out = {"tokens_per_second": a.batch_size * a.seq_len * a.steps / secs, "seconds_per_step": secs / a.steps,
           "peak_rss_bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
           "first_step_seconds": first, "final_loss": loss, "threads": torch.get_num_threads()}
    if a.worker == "qlora":
        import bitsandbytes
        out["bitsandbytes"] = bitsandbytes.__version__
        out["compute_dtype"] = "float32"
        out["nf4_linear_layers"] = sum(1 for mod in model.modules() if isinstance(mod, bitsandbytes.nn.Linear4bit))
    print("RESULT " + json.dumps(out), flush=True)


def prepare_qlora(a):
    """Writes the float32 model as an HF folder (the 4-bit loader quantizes from it)."""
    import train_common as tc
    import torch
    model = tc.load_model(a.model, torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:
        # transformers refuses to serialize a model it loaded from GGUF; the weights are plain float32
        # tensors by now, so drop the GGUF marker and save them as an ordinary checkpoint.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    model.save_pretrained(a.qlora_dir)


def run_child(extra, a):
    cmd = [sys.executable, os.path.abspath(__file__), "--model", a.model, "--steps", str(a.steps),
           "--seq-len", str(a.seq_len), "--batch-size", str(a.batch_size), "--threads", str(a.threads),
           "--rank", str(a.rank), "--alpha", str(a.alpha), "--seed", str(a.seed)] + extra
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {p.returncode}: " + " | ".join(tail)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=None, help="default 2 * rank")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", default="float32,bf16_autocast,qlora")
    ap.add_argument("--worker", choices=["float32", "bf16_autocast", "qlora", "prepare_qlora"], help=argparse.SUPPRESS)
    ap.add_argument("--qlora-dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.alpha is None:
        a.alpha = 2.0 * a.rank
    if a.worker == "prepare_qlora":
        return prepare_qlora(a)
    if a.worker:
        return worker(a)

    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    result = {}
    for m in modes:
        if m in ("float32", "bf16_autocast"):
            result[m] = run_child(["--worker", m], a)
        elif m == "qlora":
            ok, info = bnb_available()
            if not ok:
                print(f"qlora skipped: bitsandbytes does not import ({info})", file=sys.stderr)
                continue
            with tempfile.TemporaryDirectory(prefix="qlora_f32_") as d:
                prep = run_child(["--worker", "prepare_qlora", "--qlora-dir", d], a)
                if not os.path.isfile(os.path.join(d, "config.json")):
                    result[m] = {"error": "could not write the float32 copy: " + json.dumps(prep)}
                    continue
                result[m] = run_child(["--worker", "qlora", "--qlora-dir", d], a)
        else:
            raise SystemExit(f"unknown mode {m!r} (float32, bf16_autocast, qlora)")
    import peft
    import torch
    import transformers
    result["config"] = {"model": os.path.basename(a.model), "steps": a.steps, "seq_len": a.seq_len,
                        "batch_size": a.batch_size, "threads": a.threads, "rank": a.rank, "alpha": a.alpha,
                        "targets": TARGETS, "seed": a.seed, "warmup_steps": 1}
    result["versions"] = {"torch": torch.__version__, "peft": peft.__version__,
                          "transformers": transformers.__version__}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
