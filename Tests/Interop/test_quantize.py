"""`langtune quantize`: transformers with bitsandbytes loads our NF4 folder; bitsandbytes'
dequantization of what it loaded, put into float32 linears, gives LangTune's logits on the same
NF4 base (`--quantize nf4`), so codes, scales and layout are bitsandbytes'. (bitsandbytes' own CPU
4-bit layer forward differs from x·dequantize(W)ᵀ by ~0.45%, so its raw forward is not compared.)
And the other way: a folder transformers + bitsandbytes quantized and saved loads in LangTune."""
import importlib.util
import json
import os

import pytest
import torch

import interop_support as S
from test_interop import PROMPTS, TOL, assert_logits_match, last_logits

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None,
                                reason="bitsandbytes is not installed (pip install -r Tests/Interop/requirements.txt)")


def dequantize_linears(model):
    """Replaces every bitsandbytes 4-bit linear by a float32 one holding bitsandbytes' dequantization."""
    import bitsandbytes.functional as F
    from torch import nn
    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, mod in list(parent.named_children()):
                if type(getattr(mod, "weight", None)).__name__ == "Params4bit":
                    lin = nn.Linear(mod.in_features, mod.out_features, bias=False)
                    lin.weight.data = F.dequantize_4bit(mod.weight.data, mod.weight.quant_state).float()
                    setattr(parent, name, lin)


@pytest.mark.parametrize("double_quant", [True, False])
def test_transformers_loads_nf4_folder(smollm2, tmp_path, double_quant):
    from transformers import AutoModelForCausalLM
    out = str(tmp_path / "nf4")
    S.langtune("quantize", "--model", smollm2, "--output", out, *([] if double_quant else ["--no-double-quant"]))
    model = AutoModelForCausalLM.from_pretrained(out, device_map="cpu").eval()
    w = model.model.layers[3].mlp.down_proj.weight
    assert type(w).__name__ == "Params4bit"
    assert w.quant_state.quant_type == "nf4" and w.quant_state.blocksize == 64
    assert bool(w.quant_state.nested) == double_quant
    assert model.model.embed_tokens.weight.dtype == torch.float32
    if not double_quant:
        return  # LangTune's --quantize nf4 is double-quantized; the plain folder is checked by loading it
    dequantize_linears(model)
    for text in PROMPTS:
        got = json.loads(S.langtune("score", "--model", smollm2, "--quantize", "nf4", "--json", "--top", "20", "--", text))
        assert_logits_match(got, last_logits(model, got["ids"]), TOL, f"nf4 folder: {text!r}")


@pytest.mark.parametrize("double_quant", [True, False])
def test_langtune_reads_transformers_nf4_folder(smollm2, tmp_path, double_quant):
    """transformers + bitsandbytes quantize the float model and save it; LangTune loads that folder
    (`--model DIR`) and gives the logits of bitsandbytes' own dequantization of it."""
    import shutil
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    flt, saved = str(tmp_path / "float"), str(tmp_path / "bnb")
    S.langtune("merge", "--model", smollm2, "--output", flt, "--format", "hf")  # the GGUF as a float32 HF folder
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=double_quant,
                             bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(flt, quantization_config=cfg, device_map="cpu").eval()
    model.save_pretrained(saved)
    for name in ("tokenizer.json", "tokenizer_config.json"):  # model.save_pretrained writes no tokenizer
        shutil.copy(os.path.join(flt, name), os.path.join(saved, name))
    dequantize_linears(model)
    for text in PROMPTS:
        got = json.loads(S.langtune("score", "--model", saved, "--json", "--top", "20", "--", text))
        assert_logits_match(got, last_logits(model, got["ids"]), TOL, f"bitsandbytes folder, double_quant={double_quant}: {text!r}")
