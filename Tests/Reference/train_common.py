"""Shared pieces of the LoRA training references (peft_train.py, peft_grads.py, eval_loss.py,
make_batches.py, Benchmarks/pytorch_train_bench.py).

Batch file contract (written by `langtune train ... --export-batches FILE.jsonl --steps N`, or by
make_batches.py for testing), JSON Lines:
  line 1: {"header": true, "model": path, "rank", "alpha", "dropout", "targets": [...], "lr", "schedule",
           "warmup", "weight_decay", "betas": [b1, b2], "eps", "max_grad_norm", "seed", "steps"}
  then one line per optimizer step:
          {"step": s, "lr": lr_at_step, "micro_batches": [{"examples": [{"ids": [...], "labels": [...]}]}]}
  labels: HF convention, labels[i] is the token at position i (normally ids[i]) or -100 (no loss); the
  model shifts: position t-1's logits predict labels[t], so labels[0] never counts.
  Step loss = sum over the step's micro-batches of the per-token cross-entropy / number of counted label
  tokens of the whole step."""
import hashlib
import json
import math
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

IGNORE = -100
ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
HEADER_KEYS = ["model", "rank", "alpha", "dropout", "targets", "lr", "schedule", "warmup", "weight_decay",
               "betas", "eps", "max_grad_norm", "seed", "steps"]


class BatchFileError(Exception):
    pass


def normalize_target(t: str) -> str:
    t = t.strip().lower()
    if t in ALL_TARGETS:
        return t
    if t + "_proj" in ALL_TARGETS:
        return t + "_proj"
    raise BatchFileError(f"unknown LoRA target {t!r} (expected one of {ALL_TARGETS} or their short names)")


def _check_example(ex, where):
    if not isinstance(ex, dict) or "ids" not in ex or "labels" not in ex:
        raise BatchFileError(f"{where}: an example needs 'ids' and 'labels'")
    ids, labels = ex["ids"], ex["labels"]
    if len(ids) != len(labels) or not ids:
        raise BatchFileError(f"{where}: ids ({len(ids)}) and labels ({len(labels)}) must be non-empty, same length")
    bad = [i for i, (a, b) in enumerate(zip(ids, labels)) if b != IGNORE and b != a]
    return len(bad)


def read_batches(path, max_steps=None):
    """(header dict, [step dicts]) from a batch file; validates the contract."""
    header, steps = None, []
    mismatched = 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise BatchFileError(f"{path}:{n}: not JSON ({e})")
            if header is None:
                if not obj.get("header"):
                    raise BatchFileError(f"{path}:{n}: the first line must be the header ({{\"header\": true, ...}})")
                missing = [k for k in HEADER_KEYS if k not in obj]
                if missing:
                    raise BatchFileError(f"{path}:{n}: header lacks {missing}")
                obj["targets"] = [normalize_target(t) for t in obj["targets"]]
                header = obj
                continue
            if max_steps is not None and len(steps) >= max_steps:
                break
            for k in ("step", "lr", "micro_batches"):
                if k not in obj:
                    raise BatchFileError(f"{path}:{n}: step line lacks {k!r}")
            if not obj["micro_batches"]:
                raise BatchFileError(f"{path}:{n}: step {obj['step']} has no micro-batches")
            for m, mb in enumerate(obj["micro_batches"]):
                if not mb.get("examples"):
                    raise BatchFileError(f"{path}:{n}: micro-batch {m} has no examples")
                for e, ex in enumerate(mb["examples"]):
                    mismatched += _check_example(ex, f"{path}:{n}: micro-batch {m} example {e}")
            steps.append(obj)
    if header is None:
        raise BatchFileError(f"{path}: empty")
    if mismatched:
        # The contract says labels[i] is the token at position i; a file that stores the next token
        # instead (pre-shifted labels) would train a different objective. Say so loudly.
        print(f"warning: {path}: {mismatched} label(s) differ from ids at the same position; "
              "the contract expects HF (unshifted) labels", file=sys.stderr)
    return header, steps


def counted_tokens(ex):
    """Label tokens that contribute to the loss (labels[1:] != -100)."""
    return sum(1 for x in ex["labels"][1:] if x != IGNORE)


def load_model(model_path, dtype=None):
    """transformers' model from a GGUF file (dequantized to float32) or an HF folder."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM
    transformers.utils.logging.disable_progress_bar()
    dtype = dtype or torch.float32
    if os.path.isdir(model_path):
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    elif os.path.isfile(model_path):
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(model_path)),
                                                     gguf_file=os.path.basename(model_path), dtype=dtype)
    else:
        raise SystemExit(f"{model_path}: no such model file or folder")
    return model


def lora_config(rank, alpha, dropout, targets, use_rslora=False):
    from peft import LoraConfig
    return LoraConfig(r=int(rank), lora_alpha=alpha, lora_dropout=float(dropout), target_modules=list(targets),
                      bias="none", task_type="CAUSAL_LM", use_rslora=use_rslora)


def adapter_file(folder):
    p = os.path.join(folder, "adapter_model.safetensors")
    if not os.path.isfile(p):
        raise SystemExit(f"{folder}: no adapter_model.safetensors")
    return p


def load_adapter_weights(peft_model, folder, expect=None):
    """Copies A/B from a PEFT folder into peft_model; every LoRA tensor must be present, with the
    right shape, and nothing else. `expect` (rank, alpha, targets) is checked against adapter_config.json."""
    import torch
    from safetensors.torch import load_file
    cfg_path = os.path.join(folder, "adapter_config.json")
    if expect is not None and os.path.isfile(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
        r, alpha, targets = expect
        if int(cfg.get("r", r)) != int(r) or float(cfg.get("lora_alpha", alpha)) != float(alpha):
            raise SystemExit(f"{cfg_path}: r/alpha {cfg.get('r')}/{cfg.get('lora_alpha')} != header {r}/{alpha}")
        got = sorted(normalize_target(t) for t in cfg.get("target_modules", targets))
        if got != sorted(targets):
            raise SystemExit(f"{cfg_path}: target_modules {got} != header {sorted(targets)}")
    sd = load_file(adapter_file(folder))
    params = {}
    for name, p in peft_model.named_parameters():
        if "lora_" in name:
            params[name.replace(".default.weight", ".weight")] = p
    missing = sorted(set(params) - set(sd))
    extra = sorted(set(sd) - set(params))
    if missing or extra:
        raise SystemExit(f"{folder}: adapter tensors do not match the model: missing {missing[:4]} "
                         f"({len(missing)}), unexpected {extra[:4]} ({len(extra)})")
    with torch.no_grad():
        for k, p in params.items():
            t = sd[k]
            if tuple(t.shape) != tuple(p.shape):
                raise SystemExit(f"{folder}: {k} has shape {tuple(t.shape)}, expected {tuple(p.shape)}")
            p.copy_(t.to(p.dtype))
    return len(params)


def lora_params(peft_model):
    """[(PEFT file name, parameter)] of the trainable LoRA tensors, in model order."""
    return [(n.replace(".default.weight", ".weight"), p) for n, p in peft_model.named_parameters()
            if p.requires_grad]


def pad_micro_batch(examples, pad_id=0):
    """Right-pads to the longest example: (ids, labels, attention_mask) LongTensors. Pad positions are
    masked and carry no loss; with causal attention the real positions never see them, so the result
    equals running the examples one by one up to float rounding."""
    import torch
    n = max(len(e["ids"]) for e in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, e in enumerate(examples):
        k = len(e["ids"])
        ids[i, :k] = torch.tensor(e["ids"], dtype=torch.long)
        labels[i, :k] = torch.tensor(e["labels"], dtype=torch.long)
        mask[i, :k] = 1
    return ids, labels, mask


def summed_loss(model, ids, labels, mask, autocast_bf16=False):
    """Sum of the per-token cross-entropy over counted labels (float32 log-softmax; float64 for a float64
    model), and the count."""
    import contextlib
    import torch
    import torch.nn.functional as F
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast_bf16 else contextlib.nullcontext()
    with ctx:
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    logits = logits[:, :-1]
    if logits.dtype != torch.float64:  # a float64 run keeps its log-softmax in float64
        logits = logits.float()
    target = labels[:, 1:]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE,
                           reduction="sum")
    return loss, int((target != IGNORE).sum())


def peak_rss_bytes():
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def current_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensors_sha256(tensors):
    """sha256 over the tensors in name order: for each, name UTF-8, a 0 byte, then the little-endian
    float32 bytes. Independent of how the safetensors file was laid out."""
    import numpy as np
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode("utf-8") + b"\0")
        h.update(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
    return h.hexdigest()


def versions():
    import peft
    import torch
    import transformers
    return {"torch": torch.__version__, "peft": peft.__version__, "transformers": transformers.__version__}
