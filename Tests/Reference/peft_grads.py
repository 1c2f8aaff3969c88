#!/usr/bin/env python3
"""LoRA gradient fixtures: Tests/Fixtures/train/{smollm2,gemma3}_lora_grads.json.

usage: peft_grads.py BATCHES.jsonl [--init-adapter DIR] [--out PATH] [--b-scale 0.02] [--threads 2] [--model PATH]

Takes the first step of BATCHES.jsonl (the `--export-batches` contract, see train_common.py) and its
header's LoRA settings, builds the PEFT model exactly as peft_train.py does (transformers' GGUF loader,
float32), loads the init adapter (--init-adapter: a PEFT folder, e.g. written by LangTune; without it,
"lora init v1" from lora_init_v1.py with --b-scale is generated in a temp folder), and computes in float32:
loss = sum of per-token cross-entropy over the step's micro-batches / counted label tokens, then the
gradients of the LoRA tensors (no clipping, no optimizer step). The same is recomputed in float64 (the
whole model cast to double, with norms, RoPE and the cross-entropy kept in float64: see exact_float64) to
record how far float32 itself is from exact; PyTorch's float32 cross-entropy over Gemma's 262,144-entry
vocabulary is off by up to 5e-5 per token, which moves its last layers' LoRA gradients by 5e-4.

Fixture: {"model", "gguf_sha256", "versions", "threads", "lora": {"rank", "alpha", "dropout", "targets",
"scaling"}, "init_adapter": {"source": "generated"|path, "generator": "lora init v1", "b_scale",
"a_scale": "1/sqrt(in_features)", "file_sha256", "content_sha256", "matches_generator_v1"},
"micro_batches": [{"examples": [{"ids", "labels"}]}], "label_tokens", "loss", "loss_float64",
"grad_norm" (all LoRA tensors, float32 run), "grad_norm_float64", "grads": [{"name" (PEFT file name),
"shape", "values" (row-major float32, shortest repr), "values_float64" (10 significant digits), "norm",
"rel_err_float32_vs_float64"
(||g32 - g64|| / ||g64||), "max_abs_err_float32_vs_float64"}]}.
content_sha256 = train_common.tensors_sha256 of the adapter's tensors (name order; name, 0 byte, LE float32)."""
import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_common as tc  # noqa: E402
from common import FIXTURES  # noqa: E402
import lora_init_v1  # noqa: E402

def recorded(layers):
    """(layer, target, matrix) whose full gradients go into the fixture: the first, middle and last layer
    (0, 15, 29 for SmolLM2's 30; 0, 9, 17 for Gemma 3 270M's 18: two sliding-window layers and a global one)."""
    return [(0, "q_proj", "A"), (0, "q_proj", "B"), (layers // 2, "down_proj", "A"), (layers // 2, "down_proj", "B"),
            (layers - 1, "v_proj", "A"), (layers - 1, "v_proj", "B")]


def short(x):
    import numpy as np
    return float(str(np.float32(x)))


def exact_float64(model):
    """Makes a float64 model float64 throughout: transformers' RMSNorms cast their input to float32 and
    its rotary embeddings compute angles, cos and sin in float32 whatever the model's dtype, so
    `model.double()` alone keeps float32 roundings at every norm and RoPE, the same ones the float32 run
    makes. (The larger understatement, about 100x on Gemma 3 270M's last layers, came from the loss:
    summed_loss now keeps float64 logits.) Patched per class, in the input's dtype; float32 inputs take
    the original code."""
    import torch
    patched = set()
    for mod in model.modules():
        cls = type(mod)
        if cls in patched:
            continue
        name = cls.__name__
        if name.endswith("RMSNorm"):
            gemma = name.startswith("Gemma")
            orig = cls.forward

            def norm(self, x, _orig=orig, _gemma=gemma):
                if x.dtype != torch.float64:
                    return _orig(self, x)
                eps = self.variance_epsilon if hasattr(self, "variance_epsilon") else self.eps
                y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
                w = self.weight.to(x.dtype)
                return y * (1.0 + w) if _gemma else w * y
            cls.forward = norm
            patched.add(cls)
        elif name.endswith("RotaryEmbedding"):
            orig = cls.forward

            def rotary(self, x, position_ids, layer_type=None, _orig=orig):
                if x.dtype != torch.float64:
                    return _orig(self, x, position_ids, layer_type) if layer_type is not None else _orig(self, x, position_ids)
                prefix = "" if layer_type is None else f"{layer_type}_"
                inv = getattr(self, f"{prefix}inv_freq").to(torch.float64)
                scale = getattr(self, f"{prefix}attention_scaling")
                freqs = position_ids[..., None].to(torch.float64) * inv[None, None, :]
                emb = torch.cat((freqs, freqs), dim=-1)
                return (emb.cos() * scale).to(x.dtype), (emb.sin() * scale).to(x.dtype)
            cls.forward = rotary
            patched.add(cls)
    return sorted(c.__name__ for c in patched)


def grads_for(model, micro_batches):
    import torch
    params = tc.lora_params(model)
    for _, p in params:
        p.grad = None
    n = sum(tc.counted_tokens(e) for mb in micro_batches for e in mb["examples"])
    total = 0.0
    for mb in micro_batches:
        ids, labels, mask = tc.pad_micro_batch(mb["examples"])
        loss_sum, _ = tc.summed_loss(model, ids, labels, mask)
        (loss_sum / n).backward()
        total += float(loss_sum.detach())
    grads = {name: p.grad.detach().clone() for name, p in params}
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.double()) for g in grads.values()])))
    return total / n, n, norm, grads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("batches")
    ap.add_argument("--init-adapter")
    ap.add_argument("--out", default=os.path.join(FIXTURES, "train", "smollm2_lora_grads.json"))
    ap.add_argument("--b-scale", type=float, default=0.02)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None)
    ap.add_argument("--all-tensors", action="store_true",
                    help="record every LoRA tensor, not the six of the committed fixtures (to localize a difference; "
                         "point LANGTUNE_PEFT_GRADS_FIXTURE at the file for PEFTGradientParityTests)")
    a = ap.parse_args()

    import numpy as np
    import torch
    from peft import get_peft_model
    from safetensors.numpy import load_file
    torch.set_num_threads(a.threads)
    header, steps = tc.read_batches(a.batches, max_steps=1)
    if not steps:
        raise SystemExit(f"{a.batches}: no step lines")
    mbs = steps[0]["micro_batches"]
    model_path = a.model or header["model"]
    rank, alpha, targets = int(header["rank"]), header["alpha"], header["targets"]

    base = tc.load_model(model_path)
    for p in base.parameters():
        p.requires_grad_(False)
    tmp = None
    adapter = a.init_adapter
    expected = lora_init_v1.make_tensors(base.config, rank, targets, a.b_scale)
    if not adapter:
        tmp = tempfile.mkdtemp(prefix="lora_init_v1_")
        adapter = tmp
        lora_init_v1.write_folder(adapter, expected, rank, alpha, targets, os.path.basename(model_path))
    loaded = load_file(tc.adapter_file(adapter))
    matches = (sorted(loaded) == sorted(expected)
               and all(np.array_equal(loaded[k], expected[k]) for k in expected))
    init_info = {"source": "generated" if tmp else os.path.abspath(adapter), "generator": lora_init_v1.GENERATOR,
                 "a_scale": "1/sqrt(in_features)", "b_scale": a.b_scale,
                 "file_sha256": tc.sha256_file(tc.adapter_file(adapter)),
                 "content_sha256": tc.tensors_sha256(loaded), "matches_generator_v1": bool(matches)}

    torch.manual_seed(int(header["seed"]))
    model = get_peft_model(base, tc.lora_config(rank, alpha, header["dropout"], targets))
    tc.load_adapter_weights(model, adapter, expect=(rank, alpha, targets))
    model.train()
    loss, n, norm, g32 = grads_for(model, mbs)
    print(f"float32: loss {loss:.6f} over {n} tokens, grad norm {norm:.6g}", flush=True)
    model.double()
    print(f"float64 throughout: {', '.join(exact_float64(model))} patched", flush=True)
    loss64, _, norm64, g64 = grads_for(model, mbs)
    print(f"float64: loss {loss64:.6f}, grad norm {norm64:.6g}", flush=True)
    if tmp:
        shutil.rmtree(tmp)

    recs = []
    layers = base.config.num_hidden_layers
    chosen = ([(i, t, m) for i in range(layers) for t in targets for m in "AB"] if a.all_tensors else recorded(layers))
    for layer, t, m in chosen:
        name = lora_init_v1.peft_name(layer, t, m)
        if name not in g32:
            raise SystemExit(f"{name}: not a LoRA tensor of this header (targets {targets})")
        g = g32[name].float()
        d = (g.double() - g64[name]).norm() / g64[name].norm()
        recs.append({"name": name, "shape": list(g.shape), "norm": float(g.double().norm()),
                     "rel_err_float32_vs_float64": float(d),
                     "max_abs_err_float32_vs_float64": float((g.double() - g64[name]).abs().max()),
                     "values": [short(x) for x in g.reshape(-1).tolist()],
                     "values_float64": [float(f"{x:.10g}") for x in g64[name].reshape(-1).tolist()]})
        print(f"{name}: norm {recs[-1]['norm']:.6g}, float32 rel err {float(d):.2e}")
    out = {"model": os.path.basename(model_path),
           "gguf_sha256": tc.sha256_file(model_path) if os.path.isfile(model_path) else None,
           "versions": tc.versions(), "threads": torch.get_num_threads(),
           "lora": {"rank": rank, "alpha": alpha, "dropout": header["dropout"], "targets": targets,
                    "scaling": alpha / rank},
           "init_adapter": init_info, "micro_batches": mbs, "label_tokens": n, "loss": loss, "loss_float64": loss64,
           "grad_norm": norm, "grad_norm_float64": norm64, "grads": recs}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {a.out} ({os.path.getsize(a.out)} bytes)")


if __name__ == "__main__":
    main()
