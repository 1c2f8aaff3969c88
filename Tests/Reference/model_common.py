"""Logit/greedy reference records shared by model_fixtures.py and tiny_llama3.py."""
import math

import torch


@torch.no_grad()
def record(model, prompt_ids, eos_ids, n_new=32):
    """Fields: prompt_ids, last_top10 [[id, logit]] at the last prompt position, prompt_argmax
    (argmax at every prompt position), greedy_ids (n_new greedy tokens, stopping after the
    first eos id, which is included), greedy_top2_gap (top1 - top2 logit at each generated step),
    mean_logprob: mean over t = 1..n-1 of log_softmax(logits[t-1])[ids[t]], log_softmax taken in
    float64 of the float32 logits and accumulated in float64."""
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    out = model(ids, use_cache=True)
    logits = out.logits[0].float()  # [n, vocab] float32
    last = logits[-1]
    top = torch.topk(last, 10)
    rec = {
        "prompt_ids": list(prompt_ids),
        "last_top10": [[int(i), float(v)] for v, i in zip(top.values.tolist(), top.indices.tolist())],
        "prompt_argmax": [int(x) for x in logits.argmax(-1).tolist()],
    }
    lp = torch.log_softmax(logits.double(), dim=-1)
    total = 0.0
    for t in range(1, len(prompt_ids)):
        total += float(lp[t - 1, prompt_ids[t]])
    rec["mean_logprob"] = total / (len(prompt_ids) - 1) if len(prompt_ids) > 1 else None

    past = out.past_key_values
    cur = last
    greedy, gaps = [], []
    for step in range(n_new):
        t2 = torch.topk(cur, 2)
        nxt = int(t2.indices[0])
        greedy.append(nxt)
        gaps.append(float(t2.values[0] - t2.values[1]))
        if nxt in eos_ids:
            break
        o = model(torch.tensor([[nxt]], dtype=torch.long), past_key_values=past, use_cache=True)
        past = o.past_key_values
        cur = o.logits[0, -1].float()
    rec["greedy_ids"] = greedy
    rec["greedy_top2_gap"] = gaps
    return rec


@torch.no_grad()
def greedy_full_recompute(model, prompt_ids, n, eos_ids):
    """Greedy ids recomputing the whole sequence each step (no KV cache), for a cross-check."""
    ids = list(prompt_ids)
    outs = []
    for _ in range(n):
        logits = model(torch.tensor([ids], dtype=torch.long), use_cache=False).logits[0, -1]
        nxt = int(logits.argmax())
        outs.append(nxt)
        ids.append(nxt)
        if nxt in eos_ids:
            break
    return outs
