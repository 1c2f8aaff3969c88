"""Shared helpers for the reference scripts: paths, corpus rule v1, the SmolLM2 reference tokenizer."""
import hashlib
import json
import os

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(REPO, "Tests", "Fixtures")


def langtune_home() -> str:
    h = os.environ.get("LANGTUNE_HOME", "")
    return h if h else os.path.expanduser("~/.cache/langtune")


def shared_data() -> str:
    d = os.environ.get("SHARED_DATA", "")
    return d if d else os.path.join(REPO, "..", "shared", "data")


def smollm2_gguf() -> str:
    return os.path.join(langtune_home(), "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def gemma3_gguf() -> str:
    return os.path.join(langtune_home(), "models", "gemma-3-270m-q4_k_m.gguf")


def gemma3_reference_tokenizer():
    """Gemma 3's tokenizer as transformers builds it from the GGUF (there is no tokenizer.json to compare with)."""
    from transformers import AutoTokenizer
    path = gemma3_gguf()
    return AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))


def llama3_tokenizer_json() -> str:
    return os.path.join(langtune_home(), "tokenizers", "llama3", "tokenizer.json")


def write_fixture(path, doc):
    """Writes a JSON fixture as the model fixtures are laid out (indent 1, UTF-8, final newline)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("->", path, os.path.getsize(path), "bytes")


def sha16(s: str) -> str:
    """First 16 hex chars of sha256 of the UTF-8 bytes."""
    return hashlib.sha256(s.encode("utf-8")).hexdigest()[:16]


# Corpus rule v1. The Swift tests re-derive exactly these strings, so any change here
# must bump the version and the Swift side together.
#   Files, in this order: tquad/dev-v0.1.json, cmrc2018/cmrc2018_trial.json.
#   Walk data[] -> paragraphs[] in file order. For each paragraph emit
#     (a) the context's first 200 Unicode code points (context[:200]), then
#     (b) for each qa in qas[] in order: the question, then the text of answers[0]
#         if answers is non-empty.
#   Stop after 1100 strings per file (2200 total). Strings are exactly as decoded
#   from JSON: no stripping, no normalization.
#   The global index i runs over the concatenation: 0..1099 tquad, 1100..2199 cmrc.
CORPUS_FILES = ["tquad/dev-v0.1.json", "cmrc2018/cmrc2018_trial.json"]
CORPUS_PER_FILE = 1100


def corpus_lines_v1(data_dir=None):
    data_dir = data_dir or shared_data()
    lines = []
    for rel in CORPUS_FILES:
        with open(os.path.join(data_dir, rel), encoding="utf-8") as f:
            doc = json.load(f)
        out = []

        def emit(s):
            if len(out) < CORPUS_PER_FILE:
                out.append(s)

        for article in doc["data"]:
            for para in article["paragraphs"]:
                emit(para["context"][:200])
                for qa in para["qas"]:
                    emit(qa["question"])
                    if qa.get("answers"):
                        emit(qa["answers"][0]["text"])
                if len(out) >= CORPUS_PER_FILE:
                    break
            if len(out) >= CORPUS_PER_FILE:
                break
        if len(out) < CORPUS_PER_FILE:
            raise SystemExit(f"{rel}: only {len(out)} strings, rule v1 needs {CORPUS_PER_FILE}")
        lines.extend(out)
    return lines


def load_hard_cases():
    with open(os.path.join(FIXTURES, "tokenizer", "hard_cases.json"), encoding="utf-8") as f:
        return json.load(f)


def gguf_field(reader, key):
    """Decoded value of a GGUF metadata key (scalars, strings, arrays of either)."""
    from gguf import GGUFValueType
    field = reader.fields[key]
    t = field.types[0]
    if t == GGUFValueType.ARRAY:
        et = field.types[1] if len(field.types) > 1 else None
        if et == GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if t == GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    return field.parts[field.data[0]].tolist()[0]


def smollm2_reference_tokenizer(gguf_path=None):
    """The SmolLM2 tokenizer built from the GGUF's vocab and merges with the configuration of
    SmolLM2's real HF tokenizer.json (= llama.cpp pre-type "smollm"):
      normalizer: none
      pre_tokenizer: Sequence[Digits(individual_digits=True),
                              ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)]
      model: BPE(vocab=tokenizer.ggml.tokens, merges=tokenizer.ggml.merges), no unk, no byte fallback
      decoder: ByteLevel
      added tokens: every token with tokenizer.ggml.token_type == 3 (control), special, not normalized
      post_processor: none (no BOS is added; add_special_tokens=True changes nothing)
    Returns (tokenizer, info dict)."""
    from gguf import GGUFReader
    from tokenizers import Tokenizer, AddedToken, models, pre_tokenizers, decoders

    reader = GGUFReader(gguf_path or smollm2_gguf())
    tokens = gguf_field(reader, "tokenizer.ggml.tokens")
    types = gguf_field(reader, "tokenizer.ggml.token_type")
    merges = gguf_field(reader, "tokenizer.ggml.merges")
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens), "duplicate token strings"
    merge_pairs = [tuple(m.split(" ", 1)) for m in merges]
    bpe = models.BPE(vocab=vocab, merges=merge_pairs, dropout=None, unk_token=None,
                     fuse_unk=False, byte_fallback=False)
    tok = Tokenizer(bpe)
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    control = [tokens[i] for i, t in enumerate(types) if t == 3]
    tok.add_special_tokens([AddedToken(c, special=True, normalized=False) for c in control])
    info = {
        "pre": gguf_field(reader, "tokenizer.ggml.pre"),
        "model": gguf_field(reader, "tokenizer.ggml.model"),
        "n_tokens": len(tokens),
        "n_merges": len(merges),
        "control_tokens": {c: vocab[c] for c in control},
        "token_type_counts": {str(t): types.count(t) for t in sorted(set(types))},
    }
    for k in ["bos_token_id", "eos_token_id", "padding_token_id", "unknown_token_id", "add_bos_token"]:
        key = "tokenizer.ggml." + k
        if key in reader.fields:
            info[k] = gguf_field(reader, key)
    return tok, info
