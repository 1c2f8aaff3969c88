"""Llama 2 and Mistral SentencePiece tokenizers, in every form their tokenizer.json takes and as a GGUF
vocabulary, against transformers on Mistral's real SentencePiece models (PyPI's mistral-common, fetched
by scripts/fetch-models.sh): v1 is Mistral 7B v0.1's (Llama 2's form and size, 32,000 pieces), v3 has
32,768 pieces with control tokens such as [INST].

transformers 5 turns each model into a tokenizer.json (Metaspace, prepend_scheme "first"); the test
rewrites that file into the form Llama 2 and Mistral were published in on the Hub (a `Prepend "▁"`
normalizer) and into the older Metaspace form (`add_prefix_space`, words split). Each file is loaded
by transformers under three tokenizer_config.json settings: `LlamaTokenizer` (transformers 5 then
builds the text handling itself and ignores the file's), the same with `legacy: true`, and
`PreTrainedTokenizerFast` (the file decides). `langtune tokenize` must give the same ids and
`langtune tokenize --decode` the same text in every case. The settings and forms give different ids
on these texts (asserted), so a LangTune that ignored either would fail."""
import json
import os
import shutil

import pytest

import interop_support as S

if S.skip_reason():
    pytest.skip(S.skip_reason(), allow_module_level=True)

from transformers import AutoTokenizer  # noqa: E402

MODELS = ["v1", "v3"]
TEXTS = [
    "Hello world",
    " Hello",
    "  two leading spaces, then  two   three    four",
    "Türkiye'nin başkenti neresidir? İSTANBUL mu, Ankara mı?",
    "中国的首都是哪里？北京是中国的首都。",
    "<s>Hi</s> there",
    "[INST] Merhaba, nasılsın? [/INST] İyiyim.</s>[INST] 你好 [/INST]",
    "tabs\tand\nnew lines\n\n end ",
    "emoji 🤗🎉, ‘quotes’, ½ ² ﬁ e\u0301 é ▁literal▁",
    "x" * 30 + " 3.14159 1234567",
    "",
]
FORMS = ["transformers", "hub_prepend", "metaspace_split"]  # "transformers": as transformers 5 saves it


def mistral_model(version):
    path = os.path.join(S.langtune_home(), "tokenizers", "mistral", f"tokenizer.model.{version}")
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent (scripts/fetch-models.sh)")
    return path


def rewrite(j, form):
    """tokenizer.json `j` (transformers 5's Metaspace form) in `form`."""
    j = json.loads(json.dumps(j))
    if form == "hub_prepend":
        # As Llama-2-7b-hf's and Mistral-7B-v0.1's tokenizer.json on the Hub.
        j["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
        j["pre_tokenizer"] = None
    elif form == "metaspace_split":
        # Files written before `prepend_scheme`: add_prefix_space (always) and split (the default).
        j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True}
    return j


CONFIGS = {
    "llama": {"tokenizer_class": "LlamaTokenizer"},
    "llama_legacy": {"tokenizer_class": "LlamaTokenizer", "legacy": True},
    "fast": {"tokenizer_class": "PreTrainedTokenizerFast"},
}


@pytest.fixture(scope="module", params=MODELS)
def folders(request, tmp_path_factory):
    """(version, {(form, config): folder}) for one SentencePiece model."""
    model = mistral_model(request.param)
    root = tmp_path_factory.mktemp(f"mistral-{request.param}")
    src = root / "spm"
    src.mkdir()
    shutil.copy(model, src / "tokenizer.model")
    common = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False}
    (src / "tokenizer_config.json").write_text(json.dumps(dict(common, tokenizer_class="LlamaTokenizer")))
    tok = AutoTokenizer.from_pretrained(str(src))
    base = root / "saved"
    tok.save_pretrained(str(base))
    j = json.loads((base / "tokenizer.json").read_text())
    assert j["pre_tokenizer"]["type"] == "Metaspace", j["pre_tokenizer"]
    # The saved file adds BOS through its post-processor, so the "fast" setting adds it too.
    assert "<s>" in json.dumps(j["post_processor"]), j["post_processor"]
    out = {}
    for form in FORMS:
        for name, cfg in CONFIGS.items():
            d = root / f"{form}-{name}"
            d.mkdir()
            (d / "tokenizer.json").write_text(json.dumps(rewrite(j, form), ensure_ascii=False))
            (d / "tokenizer_config.json").write_text(json.dumps(dict(common, **cfg)))
            out[(form, name)] = str(d)
    return request.param, out


def langtune_ids(folder, text):
    return json.loads(S.langtune("tokenize", "--tokenizer", os.path.join(folder, "tokenizer.json"), "--json", "--", text))["ids"]


def langtune_text(tokenizer_file, ids, skip=False):
    args = ["tokenize", "--tokenizer", tokenizer_file, "--decode", "--json"] + (["--skip-special-tokens"] if skip else [])
    return json.loads(S.langtune(*args, "--", " ".join(map(str, ids))))["text"]


def test_ids_and_text_match_transformers_in_every_form(folders):
    version, folder = folders
    ids = {}
    failures = []
    for (form, name), d in folder.items():
        theirs = AutoTokenizer.from_pretrained(d)
        mismatches = []
        for text in TEXTS:
            expected = theirs(text)["input_ids"]
            ids[(form, name, text)] = expected
            ours = langtune_ids(d, text)
            if ours != expected:
                mismatches.append(f"{text!r}: langtune {ours} transformers {expected}")
            for skip in (False, True):
                want = theirs.decode(expected, skip_special_tokens=skip)
                got = langtune_text(os.path.join(d, "tokenizer.json"), expected, skip)
                if got != want:
                    mismatches.append(f"decode{' skip' if skip else ''} {expected}: langtune {got!r} transformers {want!r}")
        print(f"{version} {form} + {name}: {len(TEXTS)} texts, {len(mismatches)} mismatches")
        if mismatches:
            failures.append(f"{version} {form} + {name}:\n" + "\n".join(mismatches))
    assert not failures, "\n".join(failures)

    def differing(a, b):
        return sum(ids[a + (t,)] != ids[b + (t,)] for t in TEXTS)
    # The settings and the forms change the ids, so reading any of them wrongly would have failed above.
    checks = {
        "LlamaTokenizer, legacy vs not": differing(("transformers", "llama_legacy"), ("transformers", "llama")),
        "file decides, Prepend vs Metaspace first": differing(("hub_prepend", "fast"), ("transformers", "fast")),
        "file decides, Metaspace split vs not": differing(("metaspace_split", "fast"), ("transformers", "fast")),
        "Prepend file, LlamaTokenizer vs file": differing(("hub_prepend", "llama"), ("hub_prepend", "fast")),
    }
    print(f"{version}: texts whose ids differ: {checks}")
    assert all(checks.values()), checks


def write_vocabulary_gguf(version, path):
    """Mistral's SentencePiece model as llama.cpp's converter stores it: tokens, scores, types; no merges."""
    import gguf
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=mistral_model(version))
    n = sp.get_piece_size()
    tokens, scores, types = [], [], []
    for i in range(n):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        types.append(gguf.TokenType.UNKNOWN if sp.is_unknown(i) else gguf.TokenType.CONTROL if sp.is_control(i)
                     else gguf.TokenType.BYTE if sp.is_byte(i) else gguf.TokenType.NORMAL)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(4096)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_vocabulary_matches_transformers(folders, tmp_path):
    """The same model as a llama.cpp GGUF vocabulary, read by transformers' GGUF loader and by LangTune."""
    version, _ = folders
    path = tmp_path / f"mistral-{version}-vocab.gguf"
    write_vocabulary_gguf(version, path)
    theirs = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
    mismatches = []
    for text in TEXTS:
        expected = theirs(text)["input_ids"]
        ours = json.loads(S.langtune("tokenize", "--tokenizer", path, "--json", "--", text))["ids"]
        if ours != expected:
            mismatches.append(f"{text!r}: langtune {ours} transformers {expected}")
        want = theirs.decode(expected, skip_special_tokens=True)
        got = langtune_text(str(path), expected, skip=True)
        if got != want:
            mismatches.append(f"decode {expected}: langtune {got!r} transformers {want!r}")
    print(f"{version} gguf: {len(TEXTS)} texts, {len(mismatches)} mismatches")
    assert not mismatches, "\n".join(mismatches)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny random Llama with Mistral 7B v0.1's tokenizer, as a Hugging Face folder, and its tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    root = tmp_path_factory.mktemp("tiny-mistral-tokenizer")
    spm_dir = root / "spm"
    spm_dir.mkdir()
    shutil.copy(mistral_model("v1"), spm_dir / "tokenizer.model")
    (spm_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False}))
    tok = AutoTokenizer.from_pretrained(str(spm_dir))
    torch.manual_seed(7)
    config = LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    folder = root / "tiny"
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder, tok, model


PROMPTS = ["Merhaba, nasılsın?", "北京是", "The capital of France is", "x"]


def test_generated_text_matches_transformers(tiny_folder):
    """LangTune's greedy ids and text on the tiny folder equal transformers' `generate` and
    `decode(skip_special_tokens=True)`, including the leading space the tokenizer's decoder drops
    from an answer that starts with `▁`."""
    import torch
    folder, tok, model = tiny_folder
    led_with_space = 0
    for p in PROMPTS:
        inputs = tok(p, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
        new = out[0, inputs["input_ids"].shape[1]:].tolist()
        want = tok.decode(new, skip_special_tokens=True)
        ours = json.loads(S.langtune("generate", "--model", folder, "--prompt", p, "--max-tokens", 8, "--json"))
        print(f"{p!r}: transformers {new} {want!r}; langtune {ours['ids']} {ours['text']!r}")
        assert ours["prompt_ids"] == inputs["input_ids"][0].tolist()
        assert ours["ids"] == new
        assert ours["text"] == want
        led_with_space += tok.convert_ids_to_tokens(new[0]).startswith("▁")
    # At least one answer begins with `▁`, so the dropped space was checked.
    assert led_with_space >= 1


def test_hf_folder_exports_to_gguf(tiny_folder, tmp_path):
    """`langtune merge --format gguf` of the folder (zero adapter) writes a SentencePiece vocabulary
    (scores made from the merges' order): transformers' GGUF loader and LangTune give the folder's ids
    on every text, and LangTune's greedy ids from the GGUF equal those from the folder."""
    folder, tok, _ = tiny_folder
    zero = tmp_path / "zero"
    S.langtune("adapter-init", "--model", folder, "--output", zero, "--rank", 2)
    out = tmp_path / "tiny.gguf"
    S.langtune("merge", "--model", folder, "--adapter", zero, "--output", out, "--format", "gguf", "--dtype", "f32")
    theirs = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=out.name)
    mismatches = []
    for text in TEXTS:
        want = tok(text)["input_ids"]
        got_t = theirs(text)["input_ids"]
        got_l = json.loads(S.langtune("tokenize", "--model", out, "--json", "--", text))["ids"]
        if not (want == got_t == got_l):
            mismatches.append(f"{text!r}: folder {want} transformers-gguf {got_t} langtune-gguf {got_l}")
    print(f"gguf export: {len(TEXTS)} texts, {len(mismatches)} mismatches")
    assert not mismatches, "\n".join(mismatches)
    for p in PROMPTS:
        a = json.loads(S.langtune("generate", "--model", folder, "--prompt", p, "--max-tokens", 8, "--json"))
        b = json.loads(S.langtune("generate", "--model", out, "--prompt", p, "--max-tokens", 8, "--json"))
        assert (b["prompt_ids"], b["ids"], b["text"]) == (a["prompt_ids"], a["ids"], a["text"]), p


def test_llamacpp_reads_exported_gguf(tiny_folder, tmp_path):
    """llama.cpp (`llama-tokenize`, scripts/build-llama-bench.sh llama-tokenize; skipped without it) on the
    GGUF LangTune exports from the folder gives the folder's transformers ids, on the texts where
    llama.cpp's own rule for `▁` agrees with transformers' (it puts one before every text segment,
    even one starting with a space or following a special token)."""
    tool = S.llama_tokenize()
    folder, tok, _ = tiny_folder
    zero = tmp_path / "zero"
    S.langtune("adapter-init", "--model", folder, "--output", zero, "--rank", 2)
    exported = tmp_path / "exported.gguf"
    S.langtune("merge", "--model", folder, "--adapter", zero, "--output", exported, "--format", "gguf")
    texts = [t for t in TEXTS if t and not t[0].isspace() and "<s>" not in t and "</s>" not in t]
    mismatches = []
    for text in texts:
        want, got = tok(text)["input_ids"], S.llama_tokenize_ids(tool, exported, text)
        if want != got:
            mismatches.append(f"{text!r}: transformers {want} llama.cpp {got}")
    print(f"llama.cpp: {len(texts)} texts, {len(mismatches)} mismatches")
    assert not mismatches, "\n".join(mismatches)


def test_gguf_exports_to_hf_folder(tiny_folder, tmp_path):
    """The way back: the tiny model's GGUF (SentencePiece vocabulary) merged to a Hugging Face folder
    (zero adapter) writes a Metaspace "first" tokenizer.json with merges in score order; transformers
    loads the folder with the original folder's ids on every text, its decoded text, and its greedy answers."""
    import torch
    from transformers import AutoModelForCausalLM
    folder, tok, model = tiny_folder
    zero = tmp_path / "zero"
    S.langtune("adapter-init", "--model", folder, "--output", zero, "--rank", 2)
    gguf_path = tmp_path / "tiny.gguf"
    S.langtune("merge", "--model", folder, "--adapter", zero, "--output", gguf_path, "--format", "gguf", "--dtype", "f32")
    back = tmp_path / "back"
    S.langtune("merge", "--model", gguf_path, "--adapter", zero, "--output", back, "--format", "hf", "--dtype", "f32")
    j = json.loads((back / "tokenizer.json").read_text())
    assert j["pre_tokenizer"]["type"] == "Metaspace" and j["model"]["byte_fallback"], j["pre_tokenizer"]
    theirs = AutoTokenizer.from_pretrained(str(back))
    mismatches = []
    for text in TEXTS:
        want, got = tok(text)["input_ids"], theirs(text)["input_ids"]
        if want != got:
            mismatches.append(f"{text!r}: folder {want} exported back {got}")
        elif theirs.decode(got, skip_special_tokens=True) != tok.decode(want, skip_special_tokens=True):
            mismatches.append(f"decode {want}: {theirs.decode(got, skip_special_tokens=True)!r}")
    print(f"gguf -> hf: {len(TEXTS)} texts, {len(mismatches)} mismatches")
    assert not mismatches, "\n".join(mismatches)
    loaded = AutoModelForCausalLM.from_pretrained(str(back), dtype=torch.float32).eval()
    for p in PROMPTS:
        inputs = tok(p, return_tensors="pt")
        with torch.no_grad():
            a = model.generate(**inputs, max_new_tokens=8, do_sample=False)
            b = loaded.generate(**inputs, max_new_tokens=8, do_sample=False)
        assert a.tolist() == b.tolist(), p
