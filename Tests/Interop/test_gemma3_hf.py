"""Gemma 3 in Hugging Face form, both ways, against transformers on the real 270M file:
transformers loads the folder `langtune merge --format hf` writes (tokenizer.json component by
component equal to the one transformers builds from the GGUF, same ids, same logits), and LangTune
loads the folder transformers saves from that GGUF (same ids, same logits)."""
import json
import os

import pytest

import interop_support as S

if S.skip_reason():
    pytest.skip(S.skip_reason(), allow_module_level=True)

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

TEXTS = [
    "The quick brown fox jumps over the lazy dog. 12345 + 678 = ",
    "Türkiye'nin başkenti neresidir? İSTANBUL mu, Ankara mı?",
    "<start_of_turn>user\n中国的首都是哪里？<end_of_turn>\n<start_of_turn>model\n",
    "  leading spaces\tand\ttabs\n\n\nnew lines   and    runs",
    "emoji 🤗🎉, ‘quotes’, <table><tr><td>x</td></tr></table> and ½ ² ﬁ",
    "x" * 40 + " 3.14159 e\u0301 é",
]
# float32 on both sides, different kernels and summation orders: 1e-3 of the largest logit.
TOL = 1e-3


@pytest.fixture(scope="session")
def gemma3_reference(gemma3, tmp_path_factory):
    """transformers' own Hugging Face folder of the GGUF: its GGUF tokenizer and dequantized float32
    weights, saved with save_pretrained (the GGUF-quantized model itself is not serializable)."""
    d, f = os.path.split(gemma3)
    out = str(tmp_path_factory.mktemp("gemma3") / "transformers-hf")
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    tok.save_pretrained(out)
    loaded = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    config = loaded.config
    config.quantization_config = None
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    del loaded
    return out, tok, model.eval()


@torch.no_grad()
def last_logits(model, ids):
    return model(torch.tensor([ids])).logits[0, -1].float()


def assert_logits_match(result, ref, label):
    scale = float(ref.abs().max())
    worst = max(abs(logit - float(ref[int(i)])) for i, logit in result["last_top"]) / scale
    assert worst <= TOL, f"{label}: relative error {worst:.2e} > {TOL:.0e}"
    assert int(result["last_top"][0][0]) == int(ref.argmax()), f"{label}: argmax differs"
    return worst


def test_transformers_loads_langtune_gemma3_folder(gemma3, gemma3_reference, tmp_path):
    ref_dir, ref_tok, _ = gemma3_reference
    adapter = str(tmp_path / "adapter")
    S.langtune("adapter-init", "--model", gemma3, "--output", adapter, "--rank", 2,
               "--targets", "q_proj,o_proj,up_proj", "--seed", 3, "--random-b")
    merged = str(tmp_path / "merged")
    S.langtune("merge", "--model", gemma3, "--adapter", adapter, "--output", merged, "--format", "hf")

    # tokenizer.json: every component equal to what transformers builds from the GGUF.
    ours = json.load(open(os.path.join(merged, "tokenizer.json"), encoding="utf-8"))
    ref = json.load(open(os.path.join(ref_dir, "tokenizer.json"), encoding="utf-8"))
    for key in ["normalizer", "pre_tokenizer", "post_processor", "decoder", "added_tokens"]:
        assert ours[key] == ref[key], key
    for key in ["type", "unk_token", "fuse_unk", "byte_fallback", "ignore_merges", "continuing_subword_prefix"]:
        assert ours["model"][key] == ref["model"][key], key
    assert ours["model"]["vocab"] == ref["model"]["vocab"]
    assert len(ours["model"]["merges"]) == len(ref["model"]["merges"]) == 514906
    assert ours["model"]["merges"] == ref["model"]["merges"]

    tok = AutoTokenizer.from_pretrained(merged)
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == ("<bos>", "<eos>", "<pad>", "<unk>")
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        assert ids == ref_tok(text)["input_ids"], text
        assert ids == S.tokenize(merged, text), text
        assert ids == S.tokenize(gemma3, text), text
        assert tok.decode(ids, skip_special_tokens=True) == ref_tok.decode(ids, skip_special_tokens=True), text
    # The GGUF has no template; the folder carries Gemma's published one (LangTune's built-in).
    chat = [{"role": "user", "content": "Türkiye'nin başkenti neresidir?"}]
    assert tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == \
        "<bos><start_of_turn>user\nTürkiye'nin başkenti neresidir?<end_of_turn>\n<start_of_turn>model\n"

    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    assert type(model).__name__ == "Gemma3ForCausalLM"
    assert model.config.layer_types == gemma3_reference[2].config.layer_types
    errors = []
    for text in TEXTS[:3]:
        got = S.score(merged, text)
        errors.append(assert_logits_match(got, last_logits(model, got["ids"]), f"merged hf: {text!r}"))
        direct = S.score(gemma3, text, adapter=adapter)
        assert direct["ids"] == got["ids"]
        errors.append(assert_logits_match(direct, last_logits(model, got["ids"]), f"gguf + adapter: {text!r}"))
    print(f"gemma3 merged hf: max relative error {max(errors):.2e}")


def test_langtune_loads_transformers_gemma3_folder(gemma3, gemma3_reference):
    ref_dir, ref_tok, model = gemma3_reference
    errors = []
    for text in TEXTS:
        ids = ref_tok(text)["input_ids"]
        assert S.tokenize(ref_dir, text) == ids, text
    for text in TEXTS[:3]:
        got = S.score(ref_dir, text)
        errors.append(assert_logits_match(got, last_logits(model, got["ids"]), f"transformers hf: {text!r}"))
        from_gguf = S.score(gemma3, text)
        assert from_gguf["ids"] == got["ids"]
        assert [i for i, _ in from_gguf["last_top"][:5]] == [i for i, _ in got["last_top"][:5]]
    print(f"gemma3 transformers hf: max relative error {max(errors):.2e}")
    # The folder has no chat template (the GGUF has none): it gets Gemma's, as the GGUF does, and 48
    # greedy tokens equal those from the GGUF.
    runs = [json.loads(S.langtune("generate", "--model", m, "--chat", "--json", "--max-tokens", 48,
                                  "--prompt", "Say hello.")) for m in (ref_dir, gemma3)]
    assert runs[0]["prompt_ids"] == runs[1]["prompt_ids"]
    assert runs[0]["prompt_ids"][:3] == [2, 105, 2364]  # <bos><start_of_turn>user
    assert runs[0]["ids"] == runs[1]["ids"], runs


def test_unadapted_export_has_transformers_weights_bit_for_bit(gemma3, gemma3_reference, tmp_path):
    """With a zero adapter, LangTune's export holds exactly the float32 tensors transformers makes from
    the GGUF: the same dequantized Q4_K/Q6_K values and the norms with the 1 taken off."""
    from safetensors.numpy import load_file
    ref_dir = gemma3_reference[0]
    zero = str(tmp_path / "zero")
    S.langtune("adapter-init", "--model", gemma3, "--output", zero, "--rank", 2, "--targets", "q_proj", "--seed", 1)
    out = str(tmp_path / "plain")
    S.langtune("merge", "--model", gemma3, "--adapter", zero, "--output", out, "--format", "hf", "--dtype", "f32")
    import numpy as np
    ours, ref = load_file(os.path.join(out, "model.safetensors")), load_file(os.path.join(ref_dir, "model.safetensors"))
    assert sorted(ours) == sorted(ref)
    # Byte for byte, except that merging w + 0 into the q_proj targets turns a -0.0 into +0.0: equal values there.
    differ = [k for k in ref if ours[k].dtype != ref[k].dtype or ours[k].shape != ref[k].shape
              or not (np.array_equal(ours[k], ref[k]) if ".q_proj." in k else ours[k].tobytes() == ref[k].tobytes())]
    assert differ == [], f"{len(differ)} of {len(ref)} tensors differ, e.g. {differ[:3]}"


def test_linear_rope_scaling_of_global_layers(gemma3_reference, tmp_path):
    """Gemma 3 4B and up scale the global layers' RoPE linearly (factor 8). The 270M weights with that
    config, in transformers 5's spelling (what it writes): LangTune's logits are transformers', and
    differ from the unscaled model's (the check could fail)."""
    ref_dir, ref_tok, plain = gemma3_reference
    scaled_dir = tmp_path / "scaled"
    scaled_dir.mkdir()
    for name in os.listdir(ref_dir):
        if name != "config.json":
            os.symlink(os.path.join(ref_dir, name), scaled_dir / name)
    config = json.load(open(os.path.join(ref_dir, "config.json")))
    assert config["rope_parameters"]["full_attention"]["rope_type"] == "default"
    config["rope_parameters"]["full_attention"].update({"rope_type": "linear", "factor": 8.0})
    json.dump(config, open(scaled_dir / "config.json", "w"))
    model = AutoModelForCausalLM.from_pretrained(str(scaled_dir), dtype=torch.float32).eval()
    text = " ".join(TEXTS[:2]) * 2  # ~90 tokens: far enough for the scaled angles to matter
    got = S.score(str(scaled_dir), text)
    assert len(got["ids"]) > 60
    ref = last_logits(model, got["ids"])
    worst = assert_logits_match(got, ref, "linear rope")
    unscaled = last_logits(plain, got["ids"])
    moved = float((ref - unscaled).abs().max() / ref.abs().max())
    assert moved > 20 * TOL, f"the scaling changed the logits by only {moved:.2e}"
    print(f"gemma3 linear rope x8: max relative error {worst:.2e} (the scaling moves logits by {moved:.2e})")


@pytest.fixture(scope="module")
def gemma3_multimodal(gemma3_reference, tmp_path_factory):
    """A Gemma3ForConditionalGeneration transformers builds around the 270M text model (a tiny SigLIP
    tower), saved as a folder with the reference tokenizer: (folder, model)."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, SiglipVisionConfig
    ref_dir, ref_tok, text_model = gemma3_reference
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                image_size=28, patch_size=14)
    config = Gemma3Config(text_config=text_model.config.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=4,
                          eos_token_id=[1, 106])
    model = Gemma3ForConditionalGeneration(config)
    missing, unexpected = model.model.language_model.load_state_dict(text_model.model.state_dict(), strict=True)
    assert not missing and not unexpected
    model.tie_weights()
    model = model.float().eval()
    out = tmp_path_factory.mktemp("gemma3-multimodal") / "multimodal"
    model.save_pretrained(str(out))
    for name in os.listdir(ref_dir):
        if name.startswith("tokenizer") or name.endswith(".jinja") or name == "special_tokens_map.json":
            os.symlink(os.path.join(ref_dir, name), out / name)
    return out, model


def test_langtune_loads_gemma3_conditional_generation_folder(gemma3_reference, gemma3_multimodal):
    """Gemma 3 4B and up ship as Gemma3ForConditionalGeneration (a vision tower beside the language model).
    LangTune runs the text model of the folder transformers saves: the logits are transformers' on text input."""
    _, ref_tok, _ = gemma3_reference
    out, model = gemma3_multimodal
    saved = json.load(open(out / "config.json"))
    assert saved["architectures"] == ["Gemma3ForConditionalGeneration"]
    from safetensors import safe_open
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    # transformers 5 writes the 4.x layout back (language_model.model.*, vision_tower.*); either is read.
    layouts = [p for p in ("model.language_model.", "language_model.model.") if any(k.startswith(p) for k in keys)]
    assert len(layouts) == 1, sorted({k.split(".")[0] + "." + k.split(".")[1] for k in keys})
    assert any("vision_tower." in k for k in keys) and any("multi_modal_projector." in k for k in keys)
    print(f"gemma3 conditional generation folder: tensors saved as {layouts[0]}*")
    errors = []
    for text in TEXTS[:3]:
        got = S.score(str(out), text)
        assert got["ids"] == ref_tok(text)["input_ids"]
        errors.append(assert_logits_match(got, last_logits(model, got["ids"]), f"conditional generation: {text!r}"))
    print(f"gemma3 conditional generation folder: max relative error {max(errors):.2e}")


def test_langtune_loads_peft_adapter_of_conditional_generation(gemma3_multimodal, tmp_path):
    """A PEFT LoRA made on the Gemma3ForConditionalGeneration (its language model's q/v/down projections,
    random A and B, one module's rank and alpha set by a rank_pattern keyed by its full name): its
    tensors are named under `language_model`, and LangTune applies it to the folder with PEFT's logits."""
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors import safe_open
    out, model = gemma3_multimodal
    base = copy_model(model)
    module = "model.language_model.layers.5.self_attn.q_proj"
    assert module in dict(base.named_modules()), "transformers' in-memory layout changed"
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q_proj|v_proj|down_proj)",
                     rank_pattern={module: 8}, alpha_pattern={module: 4}, init_lora_weights=False)
    torch.manual_seed(11)
    peft_model = get_peft_model(base, cfg).eval()
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(str(adapter))
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        names = list(f.keys())
    assert names and all("language_model" in n for n in names), names[:3]
    assert not any("vision" in n for n in names)
    print(f"PEFT adapter of the conditional generation model: {len(names)} tensors, e.g. {names[0]}")
    assert_adapted_logits_match(out, adapter, peft_model, model, "PEFT adapter on conditional generation")


def test_peft_loads_langtune_adapter_of_conditional_generation(gemma3_multimodal, tmp_path):
    """An adapter LangTune makes for a Gemma3ForConditionalGeneration folder is written under the
    multimodal class's module names (`model.language_model.layers.N`), with target_modules limited to
    the language model: PEFT puts LoRA on exactly the modules LangTune wrote (none in the vision tower,
    whose q/k/v projections a plain list of names would also catch), loads every tensor, and its logits
    are LangTune's."""
    import re
    import torch
    from peft import PeftModel
    from safetensors import safe_open
    out, model = gemma3_multimodal
    adapter = tmp_path / "adapter"
    S.langtune("adapter-init", "--model", out, "--output", adapter, "--rank", 4, "--targets", "q,v,down",
               "--random-b", "--seed", 3)
    cfg = json.load(open(adapter / "adapter_config.json"))
    assert isinstance(cfg["target_modules"], str), cfg["target_modules"]
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        written = {n: f.get_tensor(n) for n in f.keys()}
    assert written and all(n.startswith("base_model.model.model.language_model.layers.") for n in written), \
        sorted(written)[:3]
    peft_model = PeftModel.from_pretrained(copy_model(model), str(adapter)).eval()
    lora_modules = {n for n, m in peft_model.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A}
    wanted = {n[:-len(".lora_A.weight")] for n in written if n.endswith(".lora_A.weight")}
    assert lora_modules == wanted, (sorted(lora_modules - wanted)[:3], sorted(wanted - lora_modules)[:3])
    vision = [n for n, _ in model.named_modules() if "vision_tower" in n and re.search(r"\.(q_proj|v_proj)$", n)]
    assert vision, "the tiny vision tower has no q/v projections to leave alone"
    state = peft_model.state_dict()
    for name, tensor in written.items():
        key = name.replace(".weight", ".default.weight")
        assert torch.equal(state[key], tensor), f"PEFT did not load {name}"
    print(f"LangTune adapter of the conditional generation model: {len(written)} tensors, "
          f"target_modules {cfg['target_modules']!r}; PEFT adapts the same {len(lora_modules)} modules, "
          f"none of the vision tower's {len(vision)} q/v projections")
    assert_adapted_logits_match(out, adapter, peft_model, model, "LangTune adapter on conditional generation through PEFT")


def assert_adapted_logits_match(folder, adapter, peft_model, model, label):
    """LangTune's logits with `adapter` on `folder` against `peft_model`'s, and how far the adapter moves
    them from the plain `model`'s: it must matter, or the comparison proves nothing."""
    errors, moved = [], []
    for text in TEXTS[:2]:
        got = S.score(str(folder), text, adapter=str(adapter))
        with torch.no_grad():
            want = peft_model(input_ids=torch.tensor([got["ids"]])).logits[0, -1].float()
        errors.append(assert_logits_match(got, want, f"{label}: {text!r}"))
        plain = last_logits(model, got["ids"])
        moved.append(max(abs(logit - float(plain[int(i)])) for i, logit in got["last_top"]) / float(plain.abs().max()))
    print(f"{label}: max relative error {max(errors):.2e}; the adapter moves the logits by {min(moved):.2e} or more")
    assert min(moved) > 10 * TOL


def copy_model(model):
    import copy
    return copy.deepcopy(model)


def test_llamacpp_reads_gguf_exported_from_hf_folder(gemma3, gemma3_reference, tmp_path):
    """transformers' folder of the GGUF, merged by LangTune to GGUF (zero adapter): llama.cpp
    (`llama-tokenize`, scripts/build-llama-bench.sh llama-tokenize; skipped without it) gives the same
    ids on it as on Google's GGUF, whose vocabulary LangTune rebuilt from tokenizer.json (scores made
    from the id order; the Swift test Gemma3CLITests compares the vocabularies entry by entry)."""
    tool = S.llama_tokenize()
    folder, _, _ = gemma3_reference
    zero = tmp_path / "zero"
    S.langtune("adapter-init", "--model", folder, "--output", zero, "--rank", 2)
    exported = tmp_path / "exported.gguf"
    S.langtune("merge", "--model", folder, "--adapter", zero, "--output", exported, "--format", "gguf")
    mismatches = []
    for text in TEXTS:
        want, got = S.llama_tokenize_ids(tool, gemma3, text), S.llama_tokenize_ids(tool, exported, text)
        if want != got:
            mismatches.append(f"{text!r}: Google's GGUF {want} exported {got}")
    print(f"llama.cpp on the exported Gemma GGUF: {len(TEXTS)} texts, {len(mismatches)} mismatches")
    assert not mismatches, "\n".join(mismatches)
