#!/usr/bin/env python3
"""Validation loss of the base model and of base + LoRA adapter, to cross-check `langtune train`'s
validation numbers.

usage: eval_loss.py MODEL EXAMPLES.jsonl [--adapter DIR] [--batch-size 4] [--threads 2] [--limit N] [--out OUT.json]

MODEL: a GGUF file (transformers' loader, dequantized to float32) or an HF folder.
EXAMPLES.jsonl: one {"ids": [...], "labels": [...]} per line (the micro-batch example format; labels -100 =
no loss, HF unshifted convention), or a batch file (header + step lines: every example of every step).
--adapter: a PEFT folder (its own adapter_config.json is used); the base numbers are computed with the
adapter disabled on the same model object.
Prints (and writes to --out) {"examples", "label_tokens", "base": {"mean_token_loss", "mean_example_loss"},
"adapted": {...}?, "adapter_sha256"?, versions}. mean_token_loss = sum of per-token cross-entropy over all
counted labels / their number (the loss of one big step); mean_example_loss = mean over examples of each
example's own mean. Examples are right-padded in groups of --batch-size, in file order, float32."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_common as tc  # noqa: E402


def read_examples(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj.get("header"):
                continue
            exs = [e for mb in obj["micro_batches"] for e in mb["examples"]] if "micro_batches" in obj else [obj]
            for e in exs:
                if len(e.get("ids", [])) != len(e.get("labels", [])) or not e["ids"]:
                    raise SystemExit(f"{path}:{n}: an example needs non-empty 'ids' and 'labels' of equal length")
                out.append(e)
    if not out:
        raise SystemExit(f"{path}: no examples")
    return out


def evaluate(model, examples, batch_size):
    import torch
    import torch.nn.functional as F
    tot, n, per_example = 0.0, 0, []
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            group = examples[i:i + batch_size]
            ids, labels, mask = tc.pad_micro_batch(group)
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
            target = labels[:, 1:]
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=tc.IGNORE,
                                 reduction="none").reshape(target.shape).double()
            counted = target != tc.IGNORE
            for r in range(len(group)):
                k = int(counted[r].sum())
                s = float(ce[r][counted[r]].sum())
                tot += s
                n += k
                if k:
                    per_example.append(s / k)
    return {"mean_token_loss": tot / n if n else None,
            "mean_example_loss": sum(per_example) / len(per_example) if per_example else None}, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("examples")
    ap.add_argument("--adapter")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="only the first N examples")
    ap.add_argument("--out")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    examples = read_examples(a.examples)[:a.limit]
    model = tc.load_model(a.model).eval()
    out = {"model": os.path.basename(a.model), "examples": len(examples)}
    if a.adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, a.adapter).eval()
        out["adapter_sha256"] = tc.sha256_file(tc.adapter_file(a.adapter))
        with model.disable_adapter():
            out["base"], n = evaluate(model, examples, a.batch_size)
        out["adapted"], _ = evaluate(model, examples, a.batch_size)
    else:
        out["base"], n = evaluate(model, examples, a.batch_size)
    out["label_tokens"] = n
    out.update(tc.versions())
    out["threads"] = torch.get_num_threads()
    line = json.dumps(out)
    print(line)
    if a.out:
        with open(a.out, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
