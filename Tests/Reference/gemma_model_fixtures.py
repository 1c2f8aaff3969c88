#!/usr/bin/env python3
"""Gemma 3 270M reference logits: Tests/Fixtures/model/gemma3.json.

The model is transformers' own GGUF loader: AutoModelForCausalLM.from_pretrained(dir, gguf_file=...,
dtype=float32): every tensor dequantized to float32 (Q8_0 / Q5_0 / Q4_K / Q6_K), norm weights
minus the 1 llama.cpp's converter added. Tokenizer: transformers' GGUF tokenizer (as
gemma_tokenizer_fixtures.py). The GGUF carries no chat template; chat prompts are rendered with
Gemma 3's published template (Tests/Fixtures/chat/gemma3_template.jinja, the one LangTune falls
back to), one user message, add_generation_prompt=True.
Cases: chat prompts (en/tr/zh), plain texts with BOS, a ~700-token text past the 512-token
sliding window, and `window_cases`: the same model with sliding_window = 8, so that the local
layers' windowing is visible on short prompts.
File: {"model", "gguf_sha256", "versions", "eos_ids", "n_new", "template_sha256", "cases": [...],
"window_cases": [...], "conversation": {"messages", "rendered"}}; record fields as model_common.record."""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES, gemma3_gguf, gemma3_reference_tokenizer, write_fixture
from model_common import greedy_full_recompute, record
from model_fixtures import CHAT, TEXT

# The SmolLM2 fixture's prompts, so the two models can be compared prompt by prompt.
SENTENCES = [
    "The river runs through the old town, past the market and the stone bridge.",
    "İstanbul'un tarihi yarımadasında camiler, çarşılar ve saraylar yan yana durur.",
    "北京是中国的首都，也是一座有三千多年历史的城市。",
    "Every morning the baker opens the shop at six and sells fresh bread to the neighbours.",
]
WINDOW_TEXT = ("window_8", " ".join(SENTENCES[:2]) + " The bridge was built in")


def long_text():
    words = []
    for i in range(40):
        words.append(SENTENCES[i % len(SENTENCES)])
    return " ".join(words) + " In summary, the town is known for"


def main():
    import torch
    import transformers
    from transformers import AutoModelForCausalLM
    from transformers.utils.chat_template_utils import render_jinja_template

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    path = gemma3_gguf()
    template_path = os.path.join(FIXTURES, "chat", "gemma3_template.jinja")
    with open(template_path, encoding="utf-8") as f:
        template = f.read()
    tok = gemma3_reference_tokenizer()
    eos_ids = {tok.convert_tokens_to_ids("<eos>"), tok.convert_tokens_to_ids("<end_of_turn>")}

    def load(**overrides):
        m = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                                 dtype=torch.float32, **overrides)
        m.eval()
        assert m.lm_head.weight.dtype == torch.float32
        return m

    model = load()
    cfg = model.config
    print(type(model).__name__, "sliding_window", cfg.sliding_window, "layer_types", cfg.layer_types[:6],
          "query_pre_attn_scalar", cfg.query_pre_attn_scalar, flush=True)

    def render(msgs, gen):
        return render_jinja_template(conversations=[msgs], chat_template=template, add_generation_prompt=gen,
                                     bos_token=tok.bos_token, eos_token=tok.eos_token)[0][0]

    cases = []
    for name, text in CHAT:
        msgs = [{"role": "user", "content": text}]
        rendered = render(msgs, True)
        ids = tok.encode(rendered, add_special_tokens=False)
        rec = {"name": name, "kind": "chat", "messages": msgs, "rendered": rendered}
        rec.update(record(model, ids, eos_ids))
        cases.append(rec)
        print(name, len(ids), "->", repr(tok.decode(rec["greedy_ids"])), flush=True)
    for name, text in TEXT + [("long_text", long_text())]:
        ids = tok.encode(text, add_special_tokens=True)
        rec = {"name": name, "kind": "text", "text": text}
        rec.update(record(model, ids, eos_ids))
        cases.append(rec)
        print(name, len(ids), "->", repr(tok.decode(rec["greedy_ids"])), flush=True)
    assert len(cases[-1]["prompt_ids"]) > cfg.sliding_window, "long_text must pass the sliding window"

    for c in cases[:2]:
        ref = greedy_full_recompute(model, c["prompt_ids"], 8, eos_ids)
        assert ref == c["greedy_ids"][:len(ref)], (c["name"], ref, c["greedy_ids"])

    conversation = [{"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": "  Türkiye'nin başkenti neresidir?  "},
                    {"role": "assistant", "content": "Ankara."},
                    {"role": "user", "content": "中国的首都呢？"},
                    {"role": "assistant", "content": "北京。\n"}]
    conv = {"messages": conversation, "rendered": render(conversation, False),
            "prompt_rendered": render(conversation[:-1], True)}

    del model
    small = load(sliding_window=8)
    assert small.config.sliding_window == 8
    window_cases = []
    name, text = WINDOW_TEXT
    ids = tok.encode(text, add_special_tokens=True)
    rec = {"name": name, "kind": "text", "text": text, "sliding_window": 8}
    rec.update(record(small, ids, eos_ids))
    window_cases.append(rec)
    print(name, len(ids), "->", repr(tok.decode(rec["greedy_ids"])), flush=True)
    ref = greedy_full_recompute(small, ids, 8, eos_ids)
    assert ref == rec["greedy_ids"][:len(ref)], (name, ref, rec["greedy_ids"])

    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    doc = {
        "model": os.path.basename(path), "gguf_sha256": sha,
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
        "loader": "AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., dtype=torch.float32)",
        "template_sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(),
        "config": {k: getattr(cfg, k, None) for k in ["vocab_size", "hidden_size", "intermediate_size",
                   "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps",
                   "sliding_window", "query_pre_attn_scalar", "final_logit_softcapping", "max_position_embeddings"]},
        "eos_ids": sorted(eos_ids), "n_new": 32, "cases": cases, "window_cases": window_cases,
        "conversation": conv,
    }
    write_fixture(os.path.join(FIXTURES, "model", "gemma3.json"), doc)


if __name__ == "__main__":
    main()
