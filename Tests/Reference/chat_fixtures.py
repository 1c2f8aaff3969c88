#!/usr/bin/env python3
"""Chat-template fixtures: Tests/Fixtures/chat/<family>.json.

Each file: {"family", "source", "template", "bos_token", "eos_token", "transformers",
            "cases": [{"name", "messages": [{"role","content"}], "add_generation_prompt",
                       "rendered": str} | {..., "expect_error": true, "error": str}]}
Rendered with transformers' own renderer (transformers.utils.chat_template_utils.render_jinja_template:
ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, raise_exception, strftime_now, tojson)
with bos_token/eos_token passed as apply_chat_template passes them. For smollm2 the result is also
checked against apply_chat_template of transformers' GGUF tokenizer."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import chat_templates as T
from common import FIXTURES, gguf_field, smollm2_gguf

OUT = os.path.join(FIXTURES, "chat")

U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
S = lambda c: {"role": "system", "content": c}


def common_cases():
    return [
        ("user_only", [U("What is the capital of France?")], False),
        ("user_only_gen", [U("What is the capital of France?")], True),
        ("system_user_gen", [S("You are a concise assistant."), U("Name three primes.")], True),
        ("system_user", [S("You are a concise assistant."), U("Name three primes.")], False),
        ("multi_turn", [U("Hi!"), A("Hello! How can I help?"), U("Tell me a joke."), A("Why did the chicken cross the road?")], False),
        ("multi_turn_gen", [U("Hi!"), A("Hello! How can I help?"), U("Tell me a joke.")], True),
        ("system_multi_turn_gen", [S("Answer in one word."), U("Sky colour?"), A("Blue."), U("Grass colour?")], True),
        ("turkish", [U("Türkiye'nin başkenti neresidir? İSTANBUL değil mi?"), A("Hayır, başkent Ankara'dır."), U("Teşekkürler, ığüşöç!")], True),
        ("chinese", [U("中国的首都是哪里？"), A("中国的首都是北京。"), U("《红楼梦》的作者是谁？")], True),
        ("whitespace", [U("  \n  leading and trailing whitespace \n\n "), A("\n answer with spaces  \t\n"), U("\tnext\r\nline  ")], True),
        ("empty_content", [U("")], True),
        ("special_text_in_content", [U("<|im_start|>x<|im_end|> [INST] <s> <|eot_id|>")], True),
    ]


def error_cases(family):
    cases = []
    if family in ("llama2", "mistral"):
        cases.append(("non_alternating", [U("one"), U("two")], True))
        cases.append(("assistant_first", [A("I start."), U("ok")], False))
    if family == "mistral":
        cases.append(("system_not_supported", [S("sys"), U("hi")], True))
    if family == "llama2":
        cases.append(("system_then_assistant", [S("sys"), A("hi")], False))
    return cases


def render(template, messages, agp, bos, eos):
    from transformers.utils.chat_template_utils import render_jinja_template
    out, _ = render_jinja_template(conversations=[messages], chat_template=template,
                                   add_generation_prompt=agp, bos_token=bos, eos_token=eos)
    return out[0]


def build(family, source, template, bos, eos, crosscheck=None):
    import transformers
    cases = []
    for name, msgs, agp in common_cases() + error_cases(family):
        entry = {"name": name, "messages": msgs, "add_generation_prompt": agp}
        try:
            entry["rendered"] = render(template, msgs, agp, bos, eos)
            if crosscheck is not None:
                other = crosscheck(msgs, agp)
                assert other == entry["rendered"], (family, name, other, entry["rendered"])
        except Exception as e:
            if crosscheck is not None and "rendered" in entry:
                raise
            import jinja2
            if not isinstance(e, jinja2.exceptions.TemplateError):
                raise
            entry["expect_error"] = True
            entry["error"] = str(e)
        cases.append(entry)
    doc = {"family": family, "source": source, "template": template, "bos_token": bos, "eos_token": eos,
           "transformers": transformers.__version__, "cases": cases}
    path = os.path.join(OUT, f"{family}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n_err = sum(1 for c in cases if c.get("expect_error"))
    print(f"{family}: {len(cases)} cases ({n_err} errors) -> {path}")


def main():
    os.makedirs(OUT, exist_ok=True)
    from gguf import GGUFReader
    reader = GGUFReader(smollm2_gguf())
    smol_template = gguf_field(reader, "tokenizer.chat_template")
    tokens = gguf_field(reader, "tokenizer.ggml.tokens")
    smol_bos = tokens[gguf_field(reader, "tokenizer.ggml.bos_token_id")]
    smol_eos = tokens[gguf_field(reader, "tokenizer.ggml.eos_token_id")]

    crosscheck = None
    try:
        from transformers import AutoTokenizer
        p = smollm2_gguf()
        hf = AutoTokenizer.from_pretrained(os.path.dirname(p), gguf_file=os.path.basename(p))
        assert hf.chat_template == smol_template
        crosscheck = lambda m, agp: hf.apply_chat_template(m, tokenize=False, add_generation_prompt=agp)
    except Exception as e:
        print("warning: no apply_chat_template cross-check for smollm2:", e)

    build("smollm2", "SmolLM2-135M-Instruct GGUF tokenizer.chat_template", smol_template, smol_bos, smol_eos, crosscheck)
    build("llama3", "meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json", T.LLAMA3, "<|begin_of_text|>", "<|eot_id|>")
    build("llama2", "meta-llama/Llama-2-7b-chat-hf tokenizer_config.json", T.LLAMA2, "<s>", "</s>")
    build("mistral", "mistralai/Mistral-7B-Instruct-v0.2 tokenizer_config.json", T.MISTRAL, "<s>", "</s>")
    build("qwen2", "Qwen/Qwen2-7B-Instruct tokenizer_config.json", T.QWEN2, None, "<|im_end|>")


if __name__ == "__main__":
    main()
