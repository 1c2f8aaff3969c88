#!/usr/bin/env python3
"""GGUF fixtures (Tests/Fixtures/gguf/).

dequant.json: {"gguf": version, "seed", "entries": [{"type", "ggml_type", "n", "hex", "values"}]}
  For F16 and BF16: 64 elements of random finite bit patterns (incl. subnormals, +-0).
  For every block type: 2 blocks of random bytes whose float16 scale fields (d, dmin / m) are
  overwritten with finite random values in [-0.5, 0.5] (offsets from ggml-common.h: see SCALE_FIELDS).
  values = gguf.quants.dequantize(bytes) as float32; every JSON number is the exact float32 value.
tiny_gguf.json: {"base64": the whole file, "alignment": 32, "metadata": {key: {"type": n, "value": v,
  ["elem_type": n for arrays], ["value_str": decimal string for 64-bit ints]}}, "tensors": [{"name",
  "ne" (GGUF order, innermost first), "shape" (row-major, outermost first), "ggml_type", "file_offset" (absolute byte offset of the data in the file), "values"}]}
  Nested arrays: "value" is a list of {"elem_type", "value"} objects, one per inner array."""
import base64
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES

import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V
from gguf.quants import dequantize, quantize

OUT = os.path.join(FIXTURES, "gguf")
SEED = 20241126

# Byte offsets of the float16 scale fields inside one block (ggml-common.h):
#  Q4_0 {d; qs[16]}          Q4_1 {d; m; qs[16]}         Q5_0 {d; qh[4]; qs[16]}
#  Q5_1 {d; m; qh[4]; qs[16]} Q8_0 {d; qs[32]}
#  Q2_K {scales[16]; qs[64]; d; dmin}   Q3_K {hmask[32]; qs[64]; scales[12]; d}
#  Q4_K {d; dmin; scales[12]; qs[128]}  Q5_K {d; dmin; scales[12]; qh[32]; qs[128]}
#  Q6_K {ql[128]; qh[64]; scales[16] (int8); d}
SCALE_FIELDS = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}


def f32list(a):
    a = np.asarray(a, dtype=np.float32).reshape(-1)
    assert np.all(np.isfinite(a))
    return [float(x) for x in a]


def dequant_entries(rng):
    entries = []
    # F16: random finite bit patterns + a few specials.
    bits = rng.integers(0, 1 << 16, size=64, dtype=np.uint32).astype(np.uint16)
    bits[(bits & 0x7C00) == 0x7C00] &= 0xBFFF  # clear one exponent bit: no inf/nan
    bits[:6] = [0x0000, 0x8000, 0x0001, 0x83FF, 0x3C00, 0x7BFF]  # +0, -0, min subnormal, -subnormal, 1, max
    raw = bits.astype("<u2").tobytes()
    entries.append(("F16", Q.F16, raw))
    bits = rng.integers(0, 1 << 16, size=64, dtype=np.uint32).astype(np.uint16)
    bits[(bits & 0x7F80) == 0x7F80] &= 0xBFFF
    bits[:5] = [0x0000, 0x8000, 0x0001, 0x3F80, 0xC2F7]  # +0, -0, subnormal, 1, -123.5
    entries.append(("BF16", Q.BF16, bits.astype("<u2").tobytes()))
    for name in ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]:
        qt = Q[name]
        block_size, type_size = gguf.GGML_QUANT_SIZES[qt]
        blocks = rng.integers(0, 256, size=(2, type_size), dtype=np.uint16).astype(np.uint8)
        for b in range(2):
            for off in SCALE_FIELDS[qt]:
                v = np.float16(rng.uniform(-0.5, 0.5))
                blocks[b, off:off + 2] = np.frombuffer(v.astype("<f2").tobytes(), dtype=np.uint8)
        entries.append((name, qt, blocks.tobytes()))
    out = []
    for name, qt, raw in entries:
        data = np.frombuffer(raw, dtype=np.uint8).copy()
        vals = dequantize(data, qt).astype(np.float32).reshape(-1)
        block_size, type_size = gguf.GGML_QUANT_SIZES[qt]
        assert vals.size == len(raw) // type_size * block_size
        out.append({"type": name, "ggml_type": int(qt), "n": int(vals.size), "hex": raw.hex(),
                    "values": f32list(vals)})
    return out


def tiny_gguf(rng):
    meta = {}

    def put(key, val, vtype, sub=None, record=None):
        w.add_key_value(key, val, vtype, sub)
        rec = {"type": int(vtype), "value": record if record is not None else val}
        if sub is not None:
            rec["elem_type"] = int(sub)
        if vtype in (V.UINT64, V.INT64):
            rec["value_str"] = str(val)
        meta[key] = rec

    path = os.path.join(tempfile.mkdtemp(), "tiny.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    meta["general.architecture"] = {"type": int(V.STRING), "value": "llama"}
    put("general.name", "tiny test model", V.STRING)
    put("tiny.u8", 250, V.UINT8)
    put("tiny.i8", -120, V.INT8)
    put("tiny.u16", 65000, V.UINT16)
    put("tiny.i16", -32000, V.INT16)
    put("tiny.u32", 4000000000, V.UINT32)
    put("tiny.i32", -2000000000, V.INT32)
    put("tiny.u64", 18446744073709551615, V.UINT64)
    put("tiny.i64", -9223372036854775808, V.INT64)
    f32 = float(np.float32(3.14159))
    put("tiny.f32", f32, V.FLOAT32)
    put("tiny.f64", 2.718281828459045, V.FLOAT64)
    put("tiny.bool_true", True, V.BOOL)
    put("tiny.bool_false", False, V.BOOL)
    put("tiny.string", "Türkçe İı 中文，🙂 \"quoted\"\n", V.STRING)
    put("tiny.empty_string", "", V.STRING)
    put("tiny.array_i32", [1, -2, 3, 2147483647], V.ARRAY, V.INT32)
    put("tiny.array_u8", [0, 1, 255], V.ARRAY, V.UINT8)
    put("tiny.array_f32", [0.5, -1.25, 1e-3], V.ARRAY, V.FLOAT32,
        record=[float(np.float32(x)) for x in [0.5, -1.25, 1e-3]])
    put("tiny.array_str", ["a", "İstanbul", "中国", ""], V.ARRAY, V.STRING)
    put("tiny.array_bool", [True, False, True], V.ARRAY, V.BOOL)
    nested = [[1, 2, 3], [4], [5, 6]]  # gguf-py packs inner int lists as INT32
    put("tiny.array_nested", nested, V.ARRAY, V.ARRAY,
        record=[{"elem_type": int(V.INT32), "value": x} for x in nested])
    put("llama.block_count", 1, V.UINT32)
    put("llama.embedding_length", 32, V.UINT32)

    t_f32 = rng.standard_normal((4, 8)).astype(np.float32)
    t_f16 = rng.standard_normal((2, 32)).astype(np.float16)
    t_q8src = rng.standard_normal((2, 32)).astype(np.float32)
    t_q8 = quantize(t_q8src, Q.Q8_0)  # uint8 [2, 34]
    w.add_tensor("a.f32", t_f32)
    w.add_tensor("b.f16", t_f16)
    w.add_tensor("c.q8_0", t_q8, raw_dtype=Q.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    blob = open(path, "rb").read()

    # Read back with gguf's own reader: the fixture states what the reader sees.
    r = gguf.GGUFReader(path)
    tensors = []
    for t in r.tensors:
        vals = dequantize(np.asarray(t.data).reshape(-1).view(np.uint8) if t.tensor_type not in (Q.F32, Q.F16)
                          else np.asarray(t.data).reshape(-1).view(np.uint8), t.tensor_type)
        ne = [int(x) for x in t.shape]
        tensors.append({"name": t.name, "ne": ne, "shape": ne[::-1], "ggml_type": int(t.tensor_type),
                        "file_offset": int(t.data_offset), "values": f32list(vals)})
    exp = {"a.f32": t_f32, "b.f16": t_f16.astype(np.float32), "c.q8_0": dequantize(t_q8, Q.Q8_0)}
    for t in tensors:
        assert np.array_equal(np.array(t["values"], dtype=np.float32), exp[t["name"]].reshape(-1)), t["name"]
    for key, rec in meta.items():
        assert key in r.fields, key
        assert int(r.fields[key].types[0]) == rec["type"], key
    return {"gguf": gguf.__version__ if hasattr(gguf, "__version__") else None, "alignment": 32,
            "size": len(blob), "base64": base64.b64encode(blob).decode("ascii"),
            "metadata": meta, "tensors": tensors}


def main():
    from importlib.metadata import version
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    doc = {"gguf": version("gguf"), "seed": SEED, "entries": dequant_entries(rng)}
    with open(os.path.join(OUT, "dequant.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    tiny = tiny_gguf(np.random.default_rng(SEED + 1))
    tiny["gguf"] = version("gguf")
    with open(os.path.join(OUT, "tiny_gguf.json"), "w", encoding="utf-8") as f:
        json.dump(tiny, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"dequant: {len(doc['entries'])} types; tiny gguf {tiny['size']} bytes, {len(tiny['tensors'])} tensors")


if __name__ == "__main__":
    main()
