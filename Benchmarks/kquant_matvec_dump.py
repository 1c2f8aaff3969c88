"""Dumps the Q4_K / Q6_K / Q5_0 matrices of a GGUF for Benchmarks/kquant_matvec.c: per matrix its raw
blocks and gguf-py's float32 dequantization, and a list `type rows cols raw f32` (ggml type ids).

    python Benchmarks/kquant_matvec_dump.py MODEL.gguf OUTDIR
"""
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

TYPES = {"Q4_K": 12, "Q6_K": 14, "Q5_0": 6, "Q5_K": 13}

reader = GGUFReader(sys.argv[1])
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "list.txt"), "w") as listing:
    for i, t in enumerate(reader.tensors):
        if t.tensor_type.name not in TYPES or len(t.shape) != 2:
            continue
        cols, rows = int(t.shape[0]), int(t.shape[1])  # GGUF lists the row length first
        np.ascontiguousarray(t.data).view(np.uint8).tofile(os.path.join(out, f"{i}.raw"))
        dequantize(t.data, t.tensor_type).astype(np.float32).tofile(os.path.join(out, f"{i}.f32"))
        listing.write(f"{TYPES[t.tensor_type.name]} {rows} {cols} {i}.raw {i}.f32 {t.name}\n")
