#!/usr/bin/env python3
"""SmolLM2-135M-Instruct reference logits: Tests/Fixtures/model/smollm2.json.

The model is transformers' own GGUF loader: AutoModelForCausalLM.from_pretrained(dir, gguf_file=...,
torch_dtype=float32), i.e. every tensor dequantized to float32 (Q4_1 / Q8_0 weights, un-permuted Q/K).
Prompts are tokenized with the SmolLM2 reference tokenizer (common.smollm2_reference_tokenizer);
chat prompts are one user message rendered with the GGUF's chat template, add_generation_prompt=True.
File: {"model", "gguf_sha256", "versions", "eos_ids", "n_new", "cases": [{"name", "kind": "chat"|"text",
"messages" (chat only), "rendered", "prompt_ids", "last_top10", "prompt_argmax", "greedy_ids",
"greedy_top2_gap", "mean_logprob"}]}; see model_common.record for the field definitions."""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES, gguf_field, smollm2_gguf, smollm2_reference_tokenizer
from model_common import greedy_full_recompute, record

CHAT = [
    ("en_capital", "What is the capital of France?"),
    ("en_math", "What is 12 times 7?"),
    ("tr_capital", "Türkiye'nin başkenti neresidir?"),
    ("tr_istanbul", "İstanbul hangi iki kıtada yer alır?"),
    ("zh_capital", "中国的首都是哪里？"),
    ("zh_greeting", "你好，请介绍一下你自己。"),
]
TEXT = [
    ("text_en", "The quick brown fox jumps over the lazy dog. The capital of France is"),
    ("text_tr", "İstanbul, Türkiye'nin en kalabalık şehridir ve"),
]


def main():
    import torch
    import transformers
    from transformers import AutoModelForCausalLM
    from transformers.utils.chat_template_utils import render_jinja_template
    from gguf import GGUFReader

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    path = smollm2_gguf()
    reader = GGUFReader(path)
    template = gguf_field(reader, "tokenizer.chat_template")
    tokens = gguf_field(reader, "tokenizer.ggml.tokens")
    bos = tokens[gguf_field(reader, "tokenizer.ggml.bos_token_id")]
    eos_id = gguf_field(reader, "tokenizer.ggml.eos_token_id")
    tok, _ = smollm2_reference_tokenizer(path)

    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                                 dtype=torch.float32)
    model.eval()
    assert model.lm_head.weight.dtype == torch.float32

    cases = []
    for name, text in CHAT:
        msgs = [{"role": "user", "content": text}]
        rendered = render_jinja_template(conversations=[msgs], chat_template=template, add_generation_prompt=True,
                                         bos_token=bos, eos_token=tokens[eos_id])[0][0]
        ids = tok.encode(rendered, add_special_tokens=False).ids
        rec = {"name": name, "kind": "chat", "messages": msgs, "rendered": rendered}
        rec.update(record(model, ids, {eos_id}))
        cases.append(rec)
        print(name, len(ids), "->", repr(tok.decode(rec["greedy_ids"])), flush=True)
    for name, text in TEXT:
        ids = tok.encode(text, add_special_tokens=False).ids
        rec = {"name": name, "kind": "text", "rendered": text}
        rec.update(record(model, ids, {eos_id}))
        cases.append(rec)
        print(name, len(ids), "->", repr(tok.decode(rec["greedy_ids"])), flush=True)

    # Cross-check: the KV-cache greedy path equals full recomputation for the first 8 tokens.
    for c in cases[:2]:
        ref = greedy_full_recompute(model, c["prompt_ids"], 8, {eos_id})
        assert ref == c["greedy_ids"][:len(ref)], (c["name"], ref, c["greedy_ids"])

    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    cfg = model.config
    doc = {
        "model": os.path.basename(path), "gguf_sha256": sha,
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
        "loader": "AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., dtype=torch.float32)",
        "config": {k: getattr(cfg, k, None) for k in ["vocab_size", "hidden_size", "intermediate_size",
                   "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "rms_norm_eps",
                   "max_position_embeddings", "tie_word_embeddings"]} | {"rope_theta": getattr(cfg, "rope_theta", None) or (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta")},
        "eos_ids": [eos_id], "n_new": 32, "cases": cases,
    }
    out = os.path.join(FIXTURES, "model", "smollm2.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("->", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
