#!/usr/bin/env python3
"""NF4 + double-quantization reference values from bitsandbytes itself (Tests/Fixtures/nf4.json).

bitsandbytes 0.50 quantizes to NF4 on the CPU with its default backend (blocks of 64, absmax,
bucketize against the code book's midpoints); `compress_statistics=True` subtracts the mean absmax
and codes the result in blocks of 256 with `create_dynamic_map()`. The expected values follow the
default backend exactly (see the port below); where bitsandbytes' CPU C kernel differs (it codes
the absmax values with an approximate binary search that picks the farther of two neighbouring
levels for 0-0.8% of the absmax values of these tensors) the fixture records how often, so the tests can bound it.
The fixture holds:
- the NF4 code book and the 8-bit dynamic map, as bitsandbytes builds them;
- seeded random tensors (stored as base64 float32) of several shapes, incl. lengths that are not
  a multiple of 64 or of 2, and a tensor with an all-zero block, with bnb's packed codes, absmax,
  nested codes/absmax/offset and dequantized values (sha256 of the bytes + samples);
- SmolLM2-135M-Instruct's `model.layers.0.self_attn.q_proj.weight` and `mlp.down_proj.weight`
  (dequantized from the Q4_1 GGUF with gguf-py, in Hugging Face's row order) with the same.

Usage: python Tests/Reference/nf4_reference.py ~/.cache/langtune/models/SmolLM2-135M-Instruct.Q4_1.gguf Tests/Fixtures/nf4.json
"""
import base64
import hashlib
import json
import sys

import numpy as np
import torch
import bitsandbytes as bnb
import bitsandbytes.functional as F


def sha(t):
    return hashlib.sha256(t.detach().contiguous().cpu().numpy().tobytes()).hexdigest()


# bitsandbytes' default (device-independent) backend, backends/default/ops.py of 0.50.2:
# quantize_4bit (registered "default"; the CPU has no C kernel for it, so this IS what bnb runs),
# quantize_blockwise and _dequantize_blockwise_compute (ported below line by line), and
# _dequantize_4bit_compute (imported). The double-quantization offset is absmax.mean(); torch's
# float32 summation order is not reproducible outside torch, so the port takes the mean in
# float64 and rounds it to float32 once (LangTune does the same); bnb's own offset is compared
# separately and differs by at most 1 ulp.
from bitsandbytes.backends.default.ops import _dequantize_4bit_compute


def default_quantize_blockwise(A, code, blocksize):
    A_flat = A.reshape(-1).float()
    n = A_flat.numel()
    rem = n % blocksize
    full = n - rem
    blocks = full // blocksize
    A_com = A_flat[:full].reshape(blocks, blocksize)
    absmax = A_com.abs().max(dim=-1)[0]
    scaled = torch.clamp(A_com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = A_flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(A_flat[full:] / am, -1, 1)])
    bounds = (code[:-1] + code[1:]) / 2
    q = torch.bucketize(scaled, bounds, out_int32=True).to(torch.uint8)
    return q.reshape(A.shape), absmax


def default_dequantize_blockwise(A_flat, absmax, code, blocksize):
    n = A_flat.numel()
    out = code[A_flat.to(torch.int64)]
    rem = n % blocksize
    if rem == 0:
        return (out.reshape(-1, blocksize) * absmax.view(-1, 1)).reshape(n)
    full = n - rem
    blocks = full // blocksize
    return torch.cat([(out[:full].reshape(blocks, blocksize) * absmax[:blocks].view(-1, 1)).reshape(full),
                      out[full:] * absmax[blocks]])


def record(name, w, store_input):
    w = w.float().contiguous()
    nf4 = F.get_4bit_type('nf4', device='cpu').float()
    dynamic = F.create_dynamic_map().float()
    packed, absmax = torch.ops.bitsandbytes.quantize_4bit(w, 64, 'nf4', torch.uint8)
    offset = torch.tensor(np.float32(absmax.double().mean().item()))
    codes, nested = default_quantize_blockwise(absmax - offset, dynamic, 256)
    absmax_deq = default_dequantize_blockwise(codes, nested, dynamic, 256) + offset
    deq = _dequantize_4bit_compute(packed.reshape(-1), absmax_deq, nf4, 64, w.shape, torch.float32)
    deq_plain = _dequantize_4bit_compute(packed.reshape(-1), absmax, nf4, 64, w.shape, torch.float32)

    # bitsandbytes' public API on this CPU (its C kernel codes the absmax values).
    q_bnb, s_bnb = F.quantize_4bit(w, blocksize=64, quant_type='nf4', compress_statistics=True)
    assert torch.equal(q_bnb.reshape(-1), packed.reshape(-1)), 'NF4 codes differ from bitsandbytes'
    agree = (s_bnb.absmax == codes).float().mean().item()
    off_by_one = ((s_bnb.absmax.int() - codes.int()).abs() <= 1).all().item()

    flat = deq.reshape(-1)
    idx = np.random.RandomState(0).randint(0, flat.numel(), size=64).tolist()
    out = {
        'name': name,
        'shape': list(w.shape),
        'packed_sha256': sha(packed),
        'packed_plain_sha256': sha(packed),
        'absmax_plain_sha256': sha(absmax),
        'absmax_plain_head': absmax[:8].tolist(),
        'absmax_codes_sha256': sha(codes),
        'absmax_codes_head': codes[:16].tolist(),
        'nested_absmax': nested.tolist()[:64],
        'nested_absmax_sha256': sha(nested),
        'offset': float(offset),
        'absmax_dequantized_sha256': sha(absmax_deq),
        'dequantized_sha256': sha(deq),
        'dequantized_plain_sha256': sha(deq_plain),
        'sample_index': idx,
        'sample_values': [float(flat[i]) for i in idx],
        'mean_abs_error': float((deq - w).abs().mean()),
        'mean_abs_error_plain': float((deq_plain - w).abs().mean()),
        'bnb_cpu_offset': float(s_bnb.offset),
        'bnb_cpu_absmax_code_agreement': agree,
        'bnb_cpu_absmax_codes_within_one': bool(off_by_one),
        'bnb_cpu_mean_abs_error': float((F.dequantize_4bit(q_bnb, s_bnb).float().reshape(-1) - w.reshape(-1)).abs().mean())
        if w.shape[-1] % 64 == 0 else None,
    }
    if store_input:
        out['input_b64'] = base64.b64encode(w.numpy().astype('<f4').tobytes()).decode()
    return out


def main(gguf_path, out_path):
    torch.manual_seed(1234)
    tensors = []
    shapes = [(64, 128), (3, 100), (1, 65), (8, 1000), (40, 96)]
    for i, shape in enumerate(shapes):
        w = torch.randn(*shape) * (0.02 if i % 2 == 0 else 1.5)
        if i == 3:
            w[0, :64] = 0  # an all-zero block
            w[1, 5] = 40.0  # an outlier
        tensors.append(record(f'random{i}', w, True))

    from gguf import GGUFReader
    from gguf.quants import dequantize
    reader = GGUFReader(gguf_path)
    byname = {t.name: t for t in reader.tensors}
    for gname, hname, permute in [('blk.0.attn_q.weight', 'model.layers.0.self_attn.q_proj.weight', True),
                                  ('blk.0.ffn_down.weight', 'model.layers.0.mlp.down_proj.weight', False)]:
        t = byname[gname]
        w = torch.from_numpy(np.array(dequantize(t.data, t.tensor_type), dtype=np.float32))
        w = w.reshape(list(reversed([int(x) for x in t.shape])))
        if permute:  # undo llama.cpp's Q permutation (9 heads of 64)
            n_head = 9
            w = w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
        rec = record(hname, w, False)
        rec['input_sha256'] = sha(w)
        tensors.append(rec)

    code = F.get_4bit_type('nf4', device='cpu').float().tolist()
    dynamic = F.create_dynamic_map().float().tolist()
    with open(out_path, 'w') as f:
        json.dump({'bitsandbytes': bnb.__version__, 'nf4_code': code, 'dynamic_map': dynamic, 'tensors': tensors}, f, indent=0)
        f.write('\n')
    print('wrote', out_path, [t['name'] for t in tensors])


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
