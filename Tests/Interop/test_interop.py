"""LangTune's adapters and exported models against the Python ecosystem:
PEFT loads LangTune's adapters, LangTune loads PEFT's, transformers and gguf-py read the merged
models, and the logits agree. Run: python -m pytest Tests/Interop (see conftest.py)."""
import copy
import json
import os

import pytest

import interop_support as S

if S.skip_reason():
    pytest.skip(S.skip_reason(), allow_module_level=True)

import torch  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPTS = [
    "The quick brown fox jumps over the lazy dog. 12345 + 678 = ",
    "Türkiye'nin başkenti neresidir? İSTANBUL mu, Ankara mı?",
    "<|im_start|>user\n中国的首都是哪里？<|im_end|>\n<|im_start|>assistant\n",
]
# float32 on both sides, different kernels and summation orders: 1e-3 of the largest logit.
TOL = 1e-3


@pytest.fixture(scope="session")
def tiny_base(tiny_llama3):
    return AutoModelForCausalLM.from_pretrained(tiny_llama3, dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def smollm2_base(smollm2):
    d, f = os.path.split(smollm2)
    return AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()


@torch.no_grad()
def last_logits(model, ids):
    return model(torch.tensor([ids])).logits[0, -1].float()


def assert_logits_match(result, ref, tol=TOL, label=""):
    """`langtune score --json` top logits against a reference logit vector."""
    scale = float(ref.abs().max())
    worst = max(abs(logit - float(ref[int(i)])) for i, logit in result["last_top"]) / scale
    assert worst <= tol, f"{label}: relative error {worst:.2e} > {tol:.0e}"
    assert int(result["last_top"][0][0]) == int(ref.argmax()), f"{label}: argmax differs"
    return worst


def compare_adapter(model_path, adapter_dir, peft_model, tmp_path, label, tol=TOL):
    """LangTune base+adapter (via --adapter when `score` has it, and always via `merge`)
    against PEFT's logits, on every prompt."""
    merged = str(tmp_path / f"merged-{label}")
    S.langtune("merge", "--model", model_path, "--adapter", adapter_dir, "--output", merged, "--format", "hf")
    errors = []
    for text in PROMPTS:
        got = S.score(merged, text)
        ref = last_logits(peft_model, got["ids"])
        errors.append(assert_logits_match(got, ref, tol, f"{label} merged: {text!r}"))
        if S.score_has_adapter():
            direct = S.score(model_path, text, adapter=adapter_dir)
            assert direct["ids"] == got["ids"]
            errors.append(assert_logits_match(direct, ref, tol, f"{label} --adapter: {text!r}"))
    print(f"{label}: max relative error {max(errors):.2e}")


def adapter_init(model_path, out, rank, targets, seed, extra=()):
    S.langtune("adapter-init", "--model", model_path, "--output", out, "--rank", rank,
               "--targets", ",".join(targets), "--seed", seed, "--random-b", *extra)
    return out


@pytest.mark.parametrize("source", ["tiny_llama3", "smollm2"])
def test_peft_loads_langtune_adapter(source, request, tmp_path):
    if source == "tiny_llama3":
        model_path, base = request.getfixturevalue("tiny_llama3"), request.getfixturevalue("tiny_base")
        rank, targets, extra = 4, ALL_TARGETS, ["--b-amplitude", "0.2"]
    else:
        model_path, base = request.getfixturevalue("smollm2"), request.getfixturevalue("smollm2_base")
        rank, targets, extra = 2, ["q_proj", "v_proj", "down_proj"], ["--rslora"]
    adapter = adapter_init(model_path, str(tmp_path / "adapter"), rank, targets, 7, extra)
    cfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
    assert cfg["target_modules"] == sorted(targets)
    peft_model = PeftModel.from_pretrained(copy.deepcopy(base), adapter).eval()
    # Every LangTune matrix landed in PEFT's modules, B nonzero.
    state = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    loaded = {k: v for k, v in peft_model.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(state)
    for k, v in state.items():
        assert torch.equal(loaded[k.replace(".weight", ".default.weight")], v), k
    assert any(float(v.abs().max()) > 0 for k, v in state.items() if "lora_B" in k)
    # The adapter changes the model, so agreement below is not vacuous.
    ids = S.score(model_path, PROMPTS[0])["ids"]
    assert float((last_logits(peft_model, ids) - last_logits(base, ids)).abs().max()) > 1e-2
    compare_adapter(model_path, adapter, peft_model, tmp_path, source)


def make_peft_adapter(base, out, variant):
    """A PEFT adapter (seeded, B nonzero) in one of the shapes PEFT can save."""
    kwargs = dict(r=4, lora_alpha=8, target_modules=ALL_TARGETS, task_type="CAUSAL_LM", lora_dropout=0.0)
    if variant == "rslora":
        kwargs["use_rslora"] = True
    elif variant == "patterns":
        kwargs.update(rank_pattern={"v_proj": 2, "model.layers.1.mlp.down_proj": 8}, alpha_pattern={"o_proj": 3})
    elif variant == "layers":
        kwargs.update(target_modules=["q_proj", "up_proj"], layers_to_transform=[1])
    torch.manual_seed(1234)
    model = get_peft_model(copy.deepcopy(base), LoraConfig(**kwargs))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.uniform_(-0.2, 0.2)
            if variant == "bf16" and "lora_" in name:
                p.copy_(p.bfloat16().float())  # values bf16 can hold, so both sides use the same numbers
    model.save_pretrained(out)
    if variant == "bf16":
        path = os.path.join(out, "adapter_model.safetensors")
        save_file({k: v.bfloat16() for k, v in load_file(path).items()}, path, metadata={"format": "pt"})
    return model.eval()


@pytest.mark.parametrize("variant", ["plain", "rslora", "patterns", "layers", "bf16"])
def test_langtune_loads_peft_adapter(variant, tiny_llama3, tiny_base, tmp_path):
    out = str(tmp_path / "peft_adapter")
    peft_model = make_peft_adapter(tiny_base, out, variant)
    ids = S.score(tiny_llama3, PROMPTS[1])["ids"]
    assert float((last_logits(peft_model, ids) - last_logits(tiny_base, ids)).abs().max()) > 1e-2
    compare_adapter(tiny_llama3, out, peft_model, tmp_path, f"peft-{variant}")


@pytest.mark.parametrize("source", ["tiny_llama3", "smollm2"])
def test_transformers_loads_merged_hf_folder(source, request, tmp_path):
    model_path = request.getfixturevalue(source)
    targets = ALL_TARGETS if source == "tiny_llama3" else ["q_proj", "o_proj", "up_proj"]
    adapter = adapter_init(model_path, str(tmp_path / "adapter"), 2, targets, 3)
    merged = str(tmp_path / "merged")
    S.langtune("merge", "--model", model_path, "--adapter", adapter, "--output", merged)
    for name in ["config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]:
        assert os.path.exists(os.path.join(merged, name)), name
    tok = AutoTokenizer.from_pretrained(merged)
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    if source == "smollm2":
        # tokenizer.json built from the GGUF vocabulary: same ids as transformers' own GGUF tokenizer.
        d, f = os.path.split(model_path)
        ref_tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    texts = PROMPTS + ["  leading spaces\tand\ttabs\n\n\nnew lines", "x" * 40 + " 3.14159 ½ ²", "emoji 🤗🎉 and ‘quotes’"]
    for text in texts:
        ids = tok(text)["input_ids"]
        assert ids == S.tokenize(merged, text), text
        assert ids == S.tokenize(model_path, text), text  # LangTune on the source model
        assert tok.decode(ids) == text, text
        if source == "smollm2" and not any(c.isdigit() for c in text):
            # transformers' GGUF tokenizer conversion knows no `smollm` pre-tokenizer (it does not
            # split digits one by one, unlike SmolLM2's real tokenizer.json), so compare digit-free text.
            assert ref_tok(text)["input_ids"] == ids, text
    if source == "smollm2":
        # HF tokenizers on the exported tokenizer.json, against the committed SmolLM2 reference ids
        # (Tests/Reference/tokenizer_fixtures.py) for every hard case.
        from tokenizers import Tokenizer
        raw = Tokenizer.from_file(os.path.join(merged, "tokenizer.json"))
        fixtures = os.path.join(S.REPO, "Tests", "Fixtures", "tokenizer")
        hard = json.load(open(os.path.join(fixtures, "hard_cases.json"), encoding="utf-8"))
        rows = [json.loads(line) for line in open(os.path.join(fixtures, "smollm2_ids.jsonl"), encoding="utf-8")]
        rows = [r for r in rows if r["src"] == "hard"]
        assert len(rows) >= len(hard)
        for r in rows:
            assert raw.encode(hard[r["i"]], add_special_tokens=r["add_special_tokens"]).ids == r["ids"], hard[r["i"]]
    specials = {"tiny_llama3": ("<|begin_of_text|>", "<|eot_id|>"), "smollm2": ("<|im_start|>", "<|im_end|>")}
    assert (tok.bos_token, tok.eos_token) == specials[source]
    for text in PROMPTS:
        got = S.score(merged, text)
        assert_logits_match(got, last_logits(model, got["ids"]), TOL, f"{source} merged hf: {text!r}")


def test_merged_gguf_reads_back(smollm2, smollm2_base, tmp_path):
    from gguf import GGUFReader, GGMLQuantizationType
    adapter = adapter_init(smollm2, str(tmp_path / "adapter"), 2, ["q_proj", "k_proj", "v_proj"], 5)
    out = str(tmp_path / "merged.gguf")
    S.langtune("merge", "--model", smollm2, "--adapter", adapter, "--output", out, "--format", "gguf")
    reader = GGUFReader(out)
    fields = reader.fields

    def value(key):
        return fields[key].contents()

    assert value("general.architecture") == "llama"
    assert value("general.alignment") == 32
    assert value("llama.block_count") == 30
    assert value("llama.embedding_length") == 576
    assert value("llama.attention.head_count_kv") == 3
    assert value("tokenizer.ggml.model") == "gpt2"
    assert value("tokenizer.ggml.pre") == "smollm"
    assert len(fields["tokenizer.ggml.tokens"].data) == 49152
    assert value("tokenizer.ggml.eos_token_id") == 2
    assert value("tokenizer.chat_template").startswith("{% for message in messages %}")
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert len(types) == 1 + 30 * 9 + 1  # token_embd, 9 per layer, output_norm; tied: no output
    assert "output.weight" not in types
    assert types["token_embd.weight"] == GGMLQuantizationType.F16
    assert types["blk.0.attn_q.weight"] == GGMLQuantizationType.F16
    assert types["blk.29.ffn_down.weight"] == GGMLQuantizationType.F16
    assert types["blk.0.attn_norm.weight"] == GGMLQuantizationType.F32
    assert types["output_norm.weight"] == GGMLQuantizationType.F32

    # transformers reads the same f16 weights (dequantized, q/k un-permuted): float32 agreement.
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="merged.gguf", dtype=torch.float32).eval()
    # Against base + adapter in float32 (PEFT), the f16 storage of every weight costs up to ~1e-2.
    peft_model = PeftModel.from_pretrained(copy.deepcopy(smollm2_base), adapter).eval()
    for text in PROMPTS:
        got = S.score(out, text)
        assert_logits_match(got, last_logits(model, got["ids"]), TOL, f"merged gguf: {text!r}")
        assert_logits_match(got, last_logits(peft_model, got["ids"]), 1e-2, f"merged gguf vs PEFT: {text!r}")
