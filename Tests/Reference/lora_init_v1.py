#!/usr/bin/env python3
"""Deterministic LoRA init adapter ("lora init v1") for the gradient fixture and for tests of
peft_train.py, written as a PEFT folder (adapter_config.json + adapter_model.safetensors).

Every tensor comes from tiny_llama3.py's generator v1 (FNV-1a-64 of the tensor name seeds a splitmix64
stream; value = Float32((2u - 1) * scale + center), float64 arithmetic), keyed by the PEFT file name:
  A = base_model.model.model.layers.{i}.{self_attn|mlp}.{t}.lora_A.weight, shape [r, in],  scale 1/sqrt(in)
  B = base_model.model.model.layers.{i}.{self_attn|mlp}.{t}.lora_B.weight, shape [out, r], scale b_scale
  (default 0.02), center 0 for both. A non-zero B makes A's gradient carry signal.
(in, out) per target use the model's config (q: heads*head_dim x hidden; k, v: kv_heads*head_dim x hidden;
o: hidden x heads*head_dim; gate, up: inter x hidden; down: hidden x inter), in HF layout (un-permuted Q/K).

usage: lora_init_v1.py OUT_DIR --rank R --alpha A [--targets q,k,v,o,gate,up,down] [--b-scale 0.02]
       [--model GGUF] [--base-name NAME]
"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_common import ALL_TARGETS, normalize_target, tensors_sha256  # noqa: E402
from tiny_llama3 import generate  # noqa: E402

GENERATOR = "lora init v1"


def shapes(cfg):
    """(out, in) per target from an HF config dict or object (SmolLM2 / Llama keys)."""
    g = (lambda k: cfg[k]) if isinstance(cfg, dict) else (lambda k: getattr(cfg, k))
    h, inter = g("hidden_size"), g("intermediate_size")
    heads, kv = g("num_attention_heads"), g("num_key_value_heads")
    try:
        hd = g("head_dim") or h // heads
    except (KeyError, AttributeError):
        hd = h // heads
    return {"q_proj": (heads * hd, h), "k_proj": (kv * hd, h), "v_proj": (kv * hd, h), "o_proj": (h, heads * hd),
            "gate_proj": (inter, h), "up_proj": (inter, h), "down_proj": (h, inter)}


def block(t):
    return "self_attn" if t in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"


def peft_name(layer, t, m):
    return f"base_model.model.model.layers.{layer}.{block(t)}.{t}.lora_{m}.weight"


def make_tensors(cfg, rank, targets, b_scale=0.02):
    g = (lambda k: cfg[k]) if isinstance(cfg, dict) else (lambda k: getattr(cfg, k))
    sh = shapes(cfg)
    out = {}
    for layer in range(g("num_hidden_layers")):
        for t in targets:
            o, i = sh[t]
            a = peft_name(layer, t, "A")
            b = peft_name(layer, t, "B")
            out[a] = generate(a, rank * i, 1.0 / math.sqrt(i), 0.0).reshape(rank, i)
            out[b] = generate(b, o * rank, b_scale, 0.0).reshape(o, rank)
    return out


def write_folder(out_dir, tensors, rank, alpha, targets, base_name, dropout=0.0):
    from safetensors.numpy import save_file
    os.makedirs(out_dir, exist_ok=True)
    save_file(tensors, os.path.join(out_dir, "adapter_model.safetensors"), metadata={"format": "pt"})
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha, "lora_dropout": dropout,
           "target_modules": list(targets), "bias": "none", "use_rslora": False, "fan_in_fan_out": False,
           "base_model_name_or_path": base_name, "inference_mode": False}
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def model_config(model_path):
    """HF config of a GGUF file or folder (no weights loaded)."""
    from transformers import AutoConfig
    if os.path.isdir(model_path):
        return AutoConfig.from_pretrained(model_path)
    return AutoConfig.from_pretrained(os.path.dirname(os.path.abspath(model_path)),
                                      gguf_file=os.path.basename(model_path))


def main():
    from common import smollm2_gguf
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--rank", type=int, required=True)
    ap.add_argument("--alpha", type=float, required=True)
    ap.add_argument("--targets", default=",".join(ALL_TARGETS))
    ap.add_argument("--b-scale", type=float, default=0.02)
    ap.add_argument("--model", default=smollm2_gguf())
    ap.add_argument("--base-name", default=None)
    a = ap.parse_args()
    targets = [normalize_target(t) for t in a.targets.split(",")]
    cfg = model_config(a.model)
    tensors = make_tensors(cfg, a.rank, targets, a.b_scale)
    write_folder(a.out_dir, tensors, a.rank, a.alpha, targets, a.base_name or os.path.basename(a.model))
    print(json.dumps({"generator": GENERATOR, "tensors": len(tensors), "content_sha256": tensors_sha256(tensors)}))


if __name__ == "__main__":
    main()
