#!/usr/bin/env python3
"""Writes Tests/Fixtures/tokenizer/hard_cases.json: hand-written strings that stress
byte-level BPE tokenizers (Turkish casing, CJK punctuation, emoji ZWJ sequences, code,
digit runs, whitespace runs, contractions, combining marks, special-token text).
The list is the source of truth; this script only exists so the escapes are exact."""
import json
import os
import sys

CASES = [
    # --- Turkish ---
    "İstanbul",
    "İSTANBUL'da",
    "istanbul'da yaşıyorum",
    "Iğdır ılık ırmak",
    "ŞEKER şeker Şeker",
    "Çok güzel, çiçekçi!",
    "Öğretmenler günü kutlu olsun.",
    "ÜNİVERSİTE üniversite",
    "Ankara'nın, Türkiye'nin başkentidir.",
    "Atatürk'ün 1923'te ilan ettiği Cumhuriyet",
    "kitap-lar-ımız-dan",
    "I ı İ i",
    "ğĞşŞçÇöÖüÜıIİi",
    "Türkiye'nin başkenti neresidir?",
    "TBMM'de 600 milletvekili var.",
    # --- Chinese + full-width punctuation ---
    "中国的首都是哪里？",
    "你好，世界！",
    "他说：「我明天来。」",
    "《红楼梦》是中国古典小说。",
    "（注意）：请勿吸烟、饮食。",
    "第一、第二、第三。",
    "北京是中华人民共和国的首都，也是全国的政治、文化中心。",
    "这是什么？！",
    "“引号”和‘单引号’",
    "……——～",
    # --- mixed Chinese + Latin + digits ---
    "iPhone15发布于2023年9月12日",
    "我用Python3.11写了一个API，速度提升了35%。",
    "GPT-4在MMLU上得分86.4分",
    "2024年第3季度GDP增长4.6%",
    "COVID-19疫情期间，WHO发布了指南。",
    # --- emoji ---
    "😀",
    "Hello 👋 world 🌍!",
    "👨‍👩‍👧‍👦",
    "👩🏽‍💻 coding",
    "🏳️‍🌈🏴‍☠️",
    "🇹🇷🇨🇳🇺🇸",
    "❤️‍🔥 ok ✅",
    "👍🏻👍🏼👍🏽👍🏾👍🏿",
    # --- code ---
    "def f(x):\n    return x ** 2\n",
    "for i in range(10):\n\tprint(i, end='')\n",
    "{\"name\": \"LangTune\", \"layers\": 30, \"tied\": true, \"eps\": 1e-05}",
    "let x: [Int] = [1, 2, 3].map { $0 * 2 }",
    "func greet(_ name: String) -> String {\n    return \"Hi, \\(name)!\"\n}",
    "if (a && b || !c) { x += 1; } // comment",
    "#include <stdio.h>\nint main(void){return 0;}",
    "SELECT * FROM users WHERE id = 42;",
    "<div class=\"a\">x &amp; y</div>",
    "C:\\Program Files\\app\\bin",
    "https://example.com/path?q=1&r=two#frag",
    "x_1, x__2, __init__, CamelCaseName, snake_case_name",
    # --- digits ---
    "1",
    "12",
    "123",
    "1234",
    "12345678901234567890",
    "3.14159",
    "1,000,000",
    "-42 +7 0.001 1e10",
    "2024-11-26T16:18:00Z",
    "٣٤٥ and १२३",
    "１２３ full-width digits",
    "v1.2.3-rc4",
    "Sayfa  72  paragraf",
    "yıl\r\n2008: başladı",
    "a\n\n123 b   4567",
    "x 1 y  2 z   3",
    # --- whitespace ---
    " ",
    "  ",
    "a  b   c    d",
    "\t",
    "a\tb\t\tc",
    "\n",
    "\n\n\n",
    "  \n ",
    "trailing spaces   ",
    "   leading spaces",
    "line1\r\nline2\r\n",
    "a \n\n b \t\n c",
    "\u00a0non-breaking\u00a0space",
    "\u3000ideographic space",
    "end with newline\n",
    # --- contractions ---
    "I'm",
    "DON'T",
    "they'LL",
    "We've, you're, he'd, it's, I'M, SHE'S",
    "can't won't shouldn't",
    "rock 'n' roll",
    "'s 't 're 've 'm 'll 'd",
    # --- combining marks / normalization ---
    "e\u0301",
    "\u00e9",
    "caf\u00e9 vs cafe\u0301",
    "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "\ud55c\uae00",
    "A\u030a vs \u00c5 vs \u212b",
    "\u0130 vs I\u0307",
    "n\u0303o\u0308",
    "ﬁ ligature ﬀ",
    "Z\u0351\u0364\u033c\u0347a\u0308\u0323l\u0352g\u0337o",
    # --- rare scripts ---
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "Привет, мир!",
    "Γειά σου Κόσμε",
    "שלום עולם",
    "こんにちは、世界。カタカナ",
    "안녕하세요 세계",
    "ᚠᛇᚻ᛫ᛒᛦᚦ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙",
    # --- special-token text ---
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>",
    "before <|eot_id|> after",
    "text<|endoftext|>more text",
    "<|endoftext|>",
    "<|im_end|><|im_end|>",
    "< |im_start| > not special",
    "<|reserved_special_token_5|> mid",
    # --- edge ---
    "",
    "a",
    "A",
    "x" * 500,
    "Supercalifragilisticexpialidocious" * 15,
    "ab" * 250,
    "!!!???...,,,;;;",
    "\u200b\u200c\u200d\ufeff",
    "\x00\x01\x7f",
    "\ufffd replacement",
]

def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "Fixtures", "tokenizer", "hard_cases.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(CASES, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(CASES)} hard cases -> {out}")

if __name__ == "__main__":
    main()
