#!/usr/bin/env python3
"""Reference values for LangTune's Q&A metrics (Tests/Fixtures/eval_metrics.json).

The metrics are computed here by the reference implementations themselves:
- exact match and token F1 for English and Turkish: the official SQuAD v1.1 evaluation
  script's `normalize_answer`, `f1_score`, `exact_match_score` (reproduced verbatim below from
  https://rajpurkar.github.io/SQuAD-explorer/ evaluate-v1.1.py), with Turkish lower-casing
  (İ -> i, I -> ı) applied first for Turkish;
- exact match and F1 for Chinese: the CMRC 2018 evaluation script (cmrc2018_evaluate.py,
  https://github.com/ymcui/cmrc2018, `mixed_segmentation`, `remove_punctuation`, `find_lcs`,
  `calc_f1_score`, `calc_em_score`, reproduced verbatim). One documented deviation: the script
  calls `nltk.word_tokenize(text)`, which needs NLTK's punkt data (not on PyPI, so not installable
  here); we call `nltk.word_tokenize(text, preserve_line=True)`, the same word tokenizer without
  the sentence splitter. Answers are short, so the splitter rarely has anything to split;
- chrF and BLEU: sacrebleu's `CHRF()` and `BLEU()` (13a tokenizer; `zh` for Chinese), corpus_score;
- ROUGE-L: rouge-score's `RougeScorer(['rougeL'])`, `score_multi`, with LangTune's documented
  tokens (SQuAD-normalized words; CMRC mixed segmentation for Chinese) as its tokenizer, because
  rouge-score's default tokenizer deletes every non-ASCII letter.

The test cases are synthetic (seeded), built from word lists written for this script, plus hand-
written hard cases; no dataset text is copied.

Usage: python Tests/Reference/eval_metrics.py Tests/Fixtures/eval_metrics.json
"""
import json
import random
import re
import string
import sys
from collections import Counter

import nltk
import sacrebleu
from rouge_score import rouge_scorer


# ---- SQuAD v1.1 (official evaluate-v1.1.py) ----
def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return (normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


# ---- CMRC 2018 (official cmrc2018_evaluate.py) ----
def mixed_segmentation(in_str, rm_punc=False):
    in_str = str(in_str).lower().strip()
    segs_out = []
    temp_str = ""
    sp_char = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=',
               '，', '。', '：', '？', '！', '“', '”', '；', '’', '《', '》', '……', '·', '、',
               '「', '」', '（', '）', '－', '～', '『', '』']
    for char in in_str:
        if rm_punc and char in sp_char:
            continue
        if re.search(r'[\u4e00-\u9fa5]', char) or char in sp_char:
            if temp_str != "":
                ss = nltk.word_tokenize(temp_str, preserve_line=True)  # see the module note
                segs_out.extend(ss)
                temp_str = ""
            segs_out.append(char)
        else:
            temp_str += char

    # handling last part
    if temp_str != "":
        ss = nltk.word_tokenize(temp_str, preserve_line=True)
        segs_out.extend(ss)

    return segs_out


def remove_punctuation(in_str):
    in_str = str(in_str).lower().strip()
    sp_char = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=',
               '，', '。', '：', '？', '！', '“', '”', '；', '’', '《', '》', '……', '·', '、',
               '「', '」', '（', '）', '－', '～', '『', '』']
    out_segs = []
    for char in in_str:
        if char in sp_char:
            continue
        else:
            out_segs.append(char)
    return ''.join(out_segs)


def find_lcs(s1, s2):
    m = [[0 for i in range(len(s2) + 1)] for j in range(len(s1) + 1)]
    mmax = 0
    p = 0
    for i in range(len(s1)):
        for j in range(len(s2)):
            if s1[i] == s2[j]:
                m[i + 1][j + 1] = m[i][j] + 1
                if m[i + 1][j + 1] > mmax:
                    mmax = m[i + 1][j + 1]
                    p = i + 1
    return s1[p - mmax:p], mmax


def calc_f1_score(answers, prediction):
    f1_scores = []
    for ans in answers:
        ans_segs = mixed_segmentation(ans, rm_punc=True)
        prediction_segs = mixed_segmentation(prediction, rm_punc=True)
        lcs, lcs_len = find_lcs(ans_segs, prediction_segs)
        if lcs_len == 0:
            f1_scores.append(0)
            continue
        precision = 1.0 * lcs_len / len(prediction_segs)
        recall = 1.0 * lcs_len / len(ans_segs)
        f1 = (2 * precision * recall) / (precision + recall)
        f1_scores.append(f1)
    return max(f1_scores)


def calc_em_score(answers, prediction):
    em = 0
    for ans in answers:
        ans_ = remove_punctuation(ans)
        prediction_ = remove_punctuation(prediction)
        if ans_ == prediction_:
            em = 1
            break
    return em


# ---- LangTune's language-aware choices, built on the above ----
def turkish_lower(s):
    return s.replace('İ', 'i').replace('I', 'ı')


def answer_tokens(s, lang):
    if lang == 'zh':
        return mixed_segmentation(s, rm_punc=True)
    if lang == 'tr':
        s = turkish_lower(s)
    return normalize_answer(s).split()


class Tok:
    def __init__(self, lang):
        self.lang = lang

    def tokenize(self, text):
        return answer_tokens(text, self.lang)


def em_f1(pred, refs, lang):
    if lang == 'zh':
        return 100.0 * calc_em_score(refs, pred), 100.0 * calc_f1_score(refs, pred)
    if lang == 'tr':
        pred, refs = turkish_lower(pred), [turkish_lower(r) for r in refs]
    return (100.0 * metric_max_over_ground_truths(exact_match_score, pred, refs),
            100.0 * metric_max_over_ground_truths(f1_score, pred, refs))


def rouge_l(pred, refs, lang):
    scorer = rouge_scorer.RougeScorer(['rougeL'], tokenizer=Tok(lang))
    return 100.0 * scorer.score_multi(refs, pred)['rougeL'].fmeasure


def corpus(preds, refss, lang):
    n = max(len(r) for r in refss)
    streams = [[r[k] if k < len(r) else None for r in refss] for k in range(n)]
    chrf = sacrebleu.metrics.CHRF().corpus_score(preds, streams).score
    bleu = sacrebleu.metrics.BLEU(tokenize='zh' if lang == 'zh' else '13a').corpus_score(preds, streams).score
    return chrf, bleu


# ---- cases ----
WORDS = {
    'en': ['the', 'a', 'an', 'Ottoman', 'Empire', 'river', 'city', 'in', '1453', 'of', 'King', 'Henry', 'VIII',
           "don't", 'U.S.', 'state-of-the-art', 'New', 'York', 'blue', 'whale', '3.14', '1,000', 'e-mail', 'can\'t'],
    'tr': ['İstanbul', 'Ankara', "Türkiye'nin", 'başkenti', 'ISPARTA', 'ılık', 'IĞDIR', 'şehir', 'Osmanlı',
           'İmparatorluğu', 'yılında', '1453', 'kuruldu', 'Fatih', 'Sultan', 'Mehmet', 'çay', 'göl', 'Işık',
           'Ilgaz', 'dağı', 'the', 'a', 'Boğaziçi', 'Üniversitesi', "Atatürk'ün", 'İzmir', 'öğretmen', 'kırk'],
    'zh': ['北京', '上海', '长江', '中华人民共和国', '1949年', '毛泽东', '清朝', '皇帝', '的', '是', '在', 'IBM',
           'iPhone', '3.5', '公里', '《红楼梦》', '曹雪芹', '一九八四', '大学', '“', '”', '，', '。', '：', '——',
           '……', '·', '、', 'C++', 'New York', '（', '）', '年', '月', '日', '约', '%', '世纪'],
}
PUNCT = {
    'en': ['.', ',', '!', '?', '"', "'", '(', ')', ':', ';', '-', '—', '«', '»', '“', '”', '…'],
    'tr': ['.', ',', '!', '?', '"', "'", '(', ')', ':', ';', '-', '—', '«', '»', '’'],
    'zh': ['，', '。', '！', '？', '“', '”', '、', '（', '）', '-', ':', '.', ',', '《', '》', '…', '——'],
}
SPACES = [' ', ' ', ' ', '  ', '\u00a0', '\t', '\u3000', '\n']

HARD = [
    ('en', 'The Ottoman Empire', ['Ottoman Empire']),
    ('en', 'an apple a day', ['apple day']),
    ('en', '', ['something']),
    ('en', '...', ['dots']),
    ('en', '«the» end', ['end']),
    ('en', 'Dr. Smith, Jr.', ['Smith']),
    ('tr', 'İSTANBUL', ['istanbul']),
    ('tr', 'ISPARTA', ['ısparta']),
    ('tr', 'Isparta', ['Isparta', 'ISPARTA']),
    ('tr', "Türkiye'nin başkenti Ankara'dır.", ['Ankara']),
    ('tr', 'The capital is Ankara', ['Ankara']),
    ('tr', '1453 yılında', ['1453']),
    ('zh', '北京', ['北京']),
    ('zh', '北京。', ['北京']),
    ('zh', '中华人民共和国成立于1949年', ['1949年']),
    ('zh', 'The answer is Beijing', ['北京']),
    ('zh', '', ['北京']),
    ('zh', '《红楼梦》的作者是曹雪芹', ['曹雪芹', '清代曹雪芹']),
    ('zh', 'IBM公司', ['ibm']),
    ('zh', "he said: \"it's 3.5km\" ...", ['3.5公里']),
    ('zh', '约 1,000 公里——很远……', ['1000公里']),
    ('zh', '北京\u3000上海', ['北京 上海']),
    # Han characters mixed with Latin words, digits and punctuation (issue 13): the CMRC 2018
    # script segments each Han character and hands the other runs to NLTK's word tokenizer.
    ('zh', 'NBA球员', ['NBA球员']),
    ('zh', 'nba球员', ['NBA球员']),
    ('zh', '他是一名NBA球员。', ['NBA球员']),
    ('zh', '2015年', ['2015年']),
    ('zh', '2015年8月', ['2015年']),
    ('zh', '2015', ['2015年']),
    ('zh', 'iPhone 6', ['iPhone 6']),
    ('zh', 'iPhone6', ['iPhone 6']),
    ('zh', '苹果iPhone 6手机', ['iPhone 6']),
    ('zh', 'U.S.军队', ['U.S.军队']),
    ('zh', '美国U.S.军队', ['U.S.军队']),
    ('zh', 'US军队', ['U.S.军队']),
    ('zh', '第3.5代iPhone 6s Plus', ['iPhone 6s Plus', '3.5代']),
    # Turkish suffixes after an apostrophe: SQuAD's rules keep them in the word, so
    # "Broncos'u" against "Broncos" scores 0 (docs/EVALUATION.md says so; the rules stay).
    ('tr', "Broncos'u", ['Broncos']),
    ('tr', 'Broncos', ["Broncos'u"]),
    ('tr', "Denver Broncos'un", ['Denver Broncos']),
    ('tr', "İstanbul'da", ['İstanbul']),
    ('tr', 'Atatürk’ün', ['Atatürk']),
]


def random_text(rng, lang, lo, hi):
    parts = []
    for _ in range(rng.randint(lo, hi)):
        parts.append(rng.choice(WORDS[lang]))
        if rng.random() < 0.2:
            parts.append(rng.choice(PUNCT[lang]))
    sep = '' if lang == 'zh' and rng.random() < 0.7 else None
    out = ''
    for p in parts:
        if out:
            out += sep if sep is not None else rng.choice(SPACES)
        out += p
    return out


def perturb(rng, lang, ref):
    r = rng.random()
    if r < 0.15:
        return ref
    if r < 0.3:
        return ref.upper() if rng.random() < 0.5 else ref.lower()
    if r < 0.45:
        return rng.choice(PUNCT[lang]) + ref + rng.choice(PUNCT[lang])
    if r < 0.6:
        sep = '' if lang == 'zh' else ' '
        return random_text(rng, lang, 1, 3) + sep + ref + sep + random_text(rng, lang, 0, 2)
    if r < 0.75:
        return ref[: max(0, len(ref) - rng.randint(0, 4))]
    if r < 0.85:
        return ('The answer is ' if lang != 'zh' else '答案是') + ref
    return random_text(rng, lang, 1, 8)


def main(out_path):
    rng = random.Random(20261126)
    cases = []
    for i, (lang, pred, refs) in enumerate(HARD):
        cases.append({'id': f'hard-{i}', 'language': lang, 'prediction': pred, 'references': refs})
    for lang in ['en', 'tr', 'zh']:
        for i in range(120):
            refs = [random_text(rng, lang, 1, 5) for _ in range(rng.randint(1, 3))]
            pred = perturb(rng, lang, rng.choice(refs))
            cases.append({'id': f'{lang}-{i}', 'language': lang, 'prediction': pred, 'references': refs})
    for c in cases:
        c['exact_match'], c['f1'] = em_f1(c['prediction'], c['references'], c['language'])
        c['rouge_l'] = rouge_l(c['prediction'], c['references'], c['language'])
        c['tokens'] = [answer_tokens(c['prediction'], c['language'])] + \
                      [answer_tokens(r, c['language']) for r in c['references']]
    corpora = []
    for lang in ['en', 'tr', 'zh']:
        subset = [c for c in cases if c['language'] == lang]
        for name, sel in [('all', subset), ('first20', subset[:20]), ('one', subset[-1:])]:
            chrf, bleu = corpus([c['prediction'] for c in sel], [c['references'] for c in sel], lang)
            corpora.append({'language': lang, 'name': name, 'ids': [c['id'] for c in sel], 'chrf': chrf, 'bleu': bleu})
    # The tokenizers on their own, so a mismatch is easy to locate.
    tok_cases = []
    for c in cases:
        for s in [c['prediction']] + c['references']:
            tok_cases.append({'text': s, '13a': sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()(s.rstrip()),
                              'zh': sacrebleu.tokenizers.tokenizer_zh.TokenizerZh()(s.rstrip()),
                              'nltk': nltk.word_tokenize(s.lower(), preserve_line=True)})
    meta = {'sacrebleu': sacrebleu.__version__, 'nltk': nltk.__version__, 'rouge_score': '0.1.2'}
    with open(out_path, 'w', encoding='utf-8') as f:
        json.dump({'meta': meta, 'cases': cases, 'corpora': corpora, 'tokenizers': tok_cases}, f,
                  ensure_ascii=False, indent=0)
        f.write('\n')
    print(f'wrote {len(cases)} cases, {len(corpora)} corpora to {out_path}')


if __name__ == '__main__':
    main(sys.argv[1])
