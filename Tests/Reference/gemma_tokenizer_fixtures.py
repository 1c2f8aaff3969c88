#!/usr/bin/env python3
"""Token-id fixtures for Gemma 3's SentencePiece-style tokenizer (from the GGUF).

Reference: transformers' GGUF tokenizer (`AutoTokenizer.from_pretrained(dir, gguf_file=...)`), the
only reference the file allows (it carries no tokenizer.model / tokenizer.json). It rebuilds the
merges from the vocabulary in file order and respells the runs of spaces as `▁▁`.
Inputs: Tests/Fixtures/tokenizer/hard_cases.json, corpus rule v1 over $SHARED_DATA, the extra
cases below, $LANGTUNE_HOME/models/gemma-3-270m-q4_k_m.gguf.
Outputs (Tests/Fixtures/tokenizer/):
  gemma3_extra_cases.json: the extra strings (Gemma-specific: spaces, tabs, newlines, byte fallback,
     special-token text, `▁` itself, literal `<0x41>`, unpaired surrogate-free oddities).
  gemma3_ids.jsonl: rows as in tokenizer_fixtures.py ({"src": "hard"|"corpus"|"extra", "i", "sha",
     "add_special_tokens", "ids"}), plus "decoded_sha" when decode(ids) is not the input (a `▁` or
     `<0xXX>` written in the text decodes differently), so the Swift side checks decoding too."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import FIXTURES, corpus_lines_v1, gemma3_reference_tokenizer, load_hard_cases, sha16

OUT = os.path.join(FIXTURES, "tokenizer")

EXTRA = [
    "Hello world",
    " leading space",
    "trailing space ",
    "  two  spaces   three    four",
    " " * 31 + "x" + " " * 40 + "y",
    "\t\tindented\n\n\nparagraph\r\n",
    "a\n \n\tb",
    "Merhaba dünya! İstanbul'da ılık bir gün; ŞEHİR, çiçek, ğ.",
    "Türkiye'nin başkenti Ankara'dır.",
    "北京是中华人民共和国的首都。",
    "NBA球员 2015年 iPhone 6 U.S.军队",
    "混合 mixed テキスト 텍스트 текст نص",
    "😀👍🏽👨‍👩‍👧‍👦🇹🇷 emoji",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ᚠᛇᚻ ꙮ 𓀀",
    "▁already▁meta▁spaced",
    "literal <0x41> and <0xE4> tokens",
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text<eos><pad><unk><mask>[multimodal]",
    "<start_of_image> <unused0> </div>",
    "e\u0301 vs \u00e9, Å vs A\u030a",
    "\u0000\u0001\u007f\u0085\u00a0\u2028\u3000 controls",
    "\ufeffBOM and zero\u200bwidth\u200djoiner",
    "x" * 300,
    "ab" * 200 + " " + "ç" * 100,
]


def main():
    hard = load_hard_cases()
    corpus = corpus_lines_v1()
    with open(os.path.join(OUT, "gemma3_extra_cases.json"), "w", encoding="utf-8") as f:
        json.dump(EXTRA, f, ensure_ascii=True, indent=0)
        f.write("\n")
    tok = gemma3_reference_tokenizer()
    rows = []
    undecodable = 0
    for special in (False, True):
        for src, items in (("hard", hard), ("corpus", corpus), ("extra", EXTRA)):
            n = len(items) if not special else 10
            for i, s in enumerate(items[:n]):
                ids = tok.encode(s, add_special_tokens=special)
                row = {"src": src, "i": i, "sha": sha16(s), "add_special_tokens": special, "ids": ids}
                back = tok.decode(ids, skip_special_tokens=False)
                expected = (tok.bos_token if special else "") + s
                if back != expected:
                    row["decoded_sha"] = sha16(back)
                    undecodable += 1
                rows.append(row)
    path = os.path.join(OUT, "gemma3_ids.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    print(f"{len(rows)} rows -> {path} ({os.path.getsize(path)} bytes); {undecodable} do not decode to their input")


if __name__ == "__main__":
    main()
