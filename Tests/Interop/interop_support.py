"""Shared setup of the interop suite: which packages and files it needs, and how to run langtune."""
import importlib.util
import json
import os
import subprocess

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGES = ["torch", "transformers", "peft", "safetensors", "gguf", "accelerate", "tokenizers", "numpy"]
LANGTUNE_BIN = os.environ.get("LANGTUNE_BIN", os.path.join(REPO, ".build", "release", "langtune"))


def skip_reason():
    """Why the whole suite cannot run here, or None."""
    missing = [p for p in PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        return ("interop suite skipped: Python packages missing: " + ", ".join(missing)
                + " (pip install -r Tests/Interop/requirements.txt)")
    if not (os.path.isfile(LANGTUNE_BIN) and os.access(LANGTUNE_BIN, os.X_OK)):
        return (f"interop suite skipped: no langtune binary at {LANGTUNE_BIN} "
                "(swift build -c release, or set LANGTUNE_BIN)")
    return None


def langtune_home():
    h = os.environ.get("LANGTUNE_HOME", "")
    return h if h else os.path.expanduser("~/.cache/langtune")


def smollm2_gguf():
    return os.path.join(langtune_home(), "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def gemma3_gguf():
    return os.path.join(langtune_home(), "models", "gemma-3-270m-q4_k_m.gguf")


def llama3_tokenizer_json():
    return os.path.join(langtune_home(), "tokenizers", "llama3", "tokenizer.json")


def langtune(*args):
    """Runs langtune; returns stdout. A failure shows its stderr."""
    p = subprocess.run([LANGTUNE_BIN, *map(str, args)], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"langtune {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p.stdout


def score(model, text, adapter=None, top=20):
    """`langtune score --json`: {"ids", "mean_logprob", "last_top": [[id, logit], ...]}."""
    args = ["score", "--model", model, "--json", "--top", top]
    if adapter:
        args += ["--adapter", adapter]
    return json.loads(langtune(*args, "--", text))


def tokenize(model, text):
    return json.loads(langtune("tokenize", "--model", model, "--json", "--", text))["ids"]


def score_has_adapter():
    """Whether this langtune's `score` takes --adapter (added by the LoRA forward pass)."""
    p = subprocess.run([LANGTUNE_BIN, "score", "--help"], capture_output=True, text=True)
    return "--adapter" in p.stdout


def llama_tokenize():
    """llama.cpp's llama-tokenize (scripts/build-llama-bench.sh llama-tokenize), or a pytest skip."""
    import pytest
    path = os.environ.get("LANGTUNE_LLAMA_TOKENIZE") or os.path.join(langtune_home(), "llama.cpp", "bin", "llama-tokenize")
    if not os.access(path, os.X_OK):
        pytest.skip(f"no llama-tokenize at {path} (scripts/build-llama-bench.sh llama-tokenize, ~6 minutes)")
    return path


def llama_tokenize_ids(tool, model, text):
    """llama.cpp's ids for `text` (BOS added as the vocabulary says, special tokens parsed)."""
    p = subprocess.run([tool, "-m", str(model), "-p", text, "--ids", "--log-disable"], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"llama-tokenize failed on {model} ({p.returncode}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])
