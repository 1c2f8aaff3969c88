#!/usr/bin/env python3
"""Tiny random Llama-3-architecture model: Tests/Fixtures/model/tiny_llama3.json.

No weights are committed. They come from deterministic generator v1, which the Swift tests re-implement:
  for a tensor with HF name N (e.g. "model.layers.0.self_attn.q_proj.weight") and element count n
  (row-major, HF shape):
    seed  = FNV-1a 64 of N's UTF-8 bytes (offset 0xcbf29ce484222325, prime 0x100000001b3, wrapping)
    state = seed
    for i in 0..<n:
      state += 0x9E3779B97F4A7C15                               (uint64, wrapping)
      z = state
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9                 (uint64, wrapping)
      z = (z ^ (z >> 27)) * 0x94D049BB133111EB                 (uint64, wrapping)
      z ^= z >> 31
      u = Double(z >> 40) / 2^24                                (float64 in [0, 1))
      value[i] = Float32((2u - 1) * scale + center)             (float64 arithmetic, no FMA, one rounding to float32)
  scale/center per tensor are in "tensors" (float64, exact JSON repr).
Fixture: {"generator": "v1", "config": config.json dict, "tokenizer_config": tokenizer_config.json dict,
  "tensors": [{"name", "shape", "scale", "center", "first": first 4 values, "sum": float64 sum of the
  float32 values}], "versions", "eos_ids", "n_new", "cases": [{"name", "kind": "chat"|"text",
  "messages" (chat), "rendered", "prompt_ids", "last_top10", "prompt_argmax", "greedy_ids",
  "greedy_top2_gap", "mean_logprob"}]} (fields as in model_common.record)."""
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import chat_templates as T
from common import FIXTURES, llama3_tokenizer_json
from model_common import greedy_full_recompute, record

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192},
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-05,
    "tie_word_embeddings": False,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128009],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "initializer_range": 0.02,
    "pretraining_tp": 1,
    "use_cache": True,
    "torch_dtype": "float32",
}
TOKENIZER_CONFIG = {
    "bos_token": "<|begin_of_text|>",
    "eos_token": "<|eot_id|>",
    "chat_template": T.LLAMA3,
    # As in Meta-Llama-3-8B-Instruct's tokenizer_config.json: use tokenizer.json as is.
    "tokenizer_class": "PreTrainedTokenizerFast",
}

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def fnv1a64(name: str) -> int:
    h = 0xcbf29ce484222325
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def generate(name: str, n: int, scale: float, center: float) -> np.ndarray:
    with np.errstate(over="ignore"):
        seed = np.uint64(fnv1a64(name))
        i = np.arange(1, n + 1, dtype=np.uint64)
        state = seed + i * np.uint64(0x9E3779B97F4A7C15)
        z = state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    return ((2.0 * u - 1.0) * scale + center).astype(np.float32)


def generate_scalar(name: str, n: int, scale: float, center: float) -> list:
    """Plain-Python version of the same generator, used to check the vectorized one."""
    mask = 0xFFFFFFFFFFFFFFFF
    state = fnv1a64(name)
    out = []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        u = (z >> 40) / float(1 << 24)
        out.append(float(np.float32((2.0 * u - 1.0) * scale + center)))
    return out


def tensor_specs(cfg):
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg["head_dim"]
    q_out, kv_out = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    lin = lambda fan_in: (1.0 / math.sqrt(fan_in), 0.0)
    norm = (0.25, 1.0)
    specs = [("model.embed_tokens.weight", [v, h], (1.0, 0.0))]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        specs += [
            (p + "input_layernorm.weight", [h], norm),
            (p + "self_attn.q_proj.weight", [q_out, h], lin(h)),
            (p + "self_attn.k_proj.weight", [kv_out, h], lin(h)),
            (p + "self_attn.v_proj.weight", [kv_out, h], lin(h)),
            (p + "self_attn.o_proj.weight", [h, q_out], lin(q_out)),
            (p + "post_attention_layernorm.weight", [h], norm),
            (p + "mlp.gate_proj.weight", [inter, h], lin(h)),
            (p + "mlp.up_proj.weight", [inter, h], lin(h)),
            (p + "mlp.down_proj.weight", [h, inter], lin(inter)),
        ]
    specs += [("model.norm.weight", [h], norm), ("lm_head.weight", [v, h], (0.5, 0.0))]
    return specs


def build_folder(path):
    from safetensors.numpy import save_file
    os.makedirs(path, exist_ok=True)
    tensors, meta = {}, []
    for name, shape, (scale, center) in tensor_specs(CONFIG):
        n = int(np.prod(shape))
        w = generate(name, n, scale, center)
        assert w[:64].tolist() == generate_scalar(name, min(n, 64), scale, center)
        tensors[name] = w.reshape(shape)
        meta.append({"name": name, "shape": shape, "scale": scale, "center": center,
                     "first": [float(x) for x in w[:4]], "sum": float(np.sum(w.astype(np.float64)))})
    save_file(tensors, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump(TOKENIZER_CONFIG, f, indent=2)
    shutil.copy(llama3_tokenizer_json(), os.path.join(path, "tokenizer.json"))
    return meta


CHAT = [
    ("chat_tr", [{"role": "user", "content": "Türkiye'nin başkenti neresidir? İSTANBUL mu?"}]),
    ("chat_zh", [{"role": "system", "content": "你是一个有用的助手。"}, {"role": "user", "content": "中国的首都是哪里？"}]),
]
TEXT = [
    ("text_en", "The quick brown fox jumps over the lazy dog. 12345 + 678 = "),
    ("text_tr", "İstanbul, Türkiye'nin en kalabalık şehridir ve"),
]


def main():
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    eos = set(CONFIG["eos_token_id"])
    tmp = tempfile.mkdtemp(prefix="tiny_llama3_")
    try:
        meta = build_folder(os.path.join(tmp, "a"))
        model = AutoModelForCausalLM.from_pretrained(os.path.join(tmp, "a"), dtype=torch.float32).eval()
        tok = AutoTokenizer.from_pretrained(os.path.join(tmp, "a"))
        raw = Tokenizer.from_file(llama3_tokenizer_json())
        rp = getattr(model.config, "rope_parameters", None) or getattr(model.config, "rope_scaling", None)
        print("rope:", rp)
        assert "llama3" in json.dumps(rp), "llama3 rope scaling not applied"

        cases = []
        for name, msgs in CHAT:
            rendered = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
            if hasattr(ids, "keys"):
                ids = ids["input_ids"]
            ids = list(ids)
            assert ids == raw.encode(rendered, add_special_tokens=False).ids, name
            rec = {"name": name, "kind": "chat", "messages": msgs, "rendered": rendered}
            rec.update(record(model, ids, eos))
            cases.append(rec)
            print(name, len(ids), rec["greedy_ids"][:8], flush=True)
        for name, text in TEXT:
            ids = list(tok(text)["input_ids"])
            # This tokenizer.json's post-processor adds no BOS; start plain text with BOS explicitly,
            # as a Llama 3 base model expects.
            if ids[:1] != [CONFIG["bos_token_id"]]:
                ids = [CONFIG["bos_token_id"]] + ids
            assert ids[1:] == raw.encode(text, add_special_tokens=False).ids, name
            rec = {"name": name, "kind": "text", "rendered": text, "bos_prepended": True}
            rec.update(record(model, ids, eos))
            cases.append(rec)
            print(name, len(ids), rec["greedy_ids"][:8], flush=True)

        # Re-build in a second folder, re-load, and require identical logits.
        meta2 = build_folder(os.path.join(tmp, "b"))
        assert meta2 == meta
        model2 = AutoModelForCausalLM.from_pretrained(os.path.join(tmp, "b"), dtype=torch.float32).eval()
        with torch.no_grad():
            for c in cases:
                x = torch.tensor([c["prompt_ids"]])
                assert torch.equal(model(x).logits, model2(x).logits), c["name"]
        for c in cases:
            ref = greedy_full_recompute(model, c["prompt_ids"], 8, eos)
            assert ref == c["greedy_ids"][:len(ref)], (c["name"], ref, c["greedy_ids"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    doc = {"generator": "v1", "config": CONFIG, "tokenizer_config": TOKENIZER_CONFIG, "tensors": meta,
           "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
           "eos_ids": sorted(eos), "n_new": 32, "cases": cases}
    out = os.path.join(FIXTURES, "model", "tiny_llama3.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("->", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
