"""Train/eval disjointness: exact, n-gram and near-duplicate overlap between prompt sets.

A training set "overlaps" an evaluation set when an evaluation prompt is
  * an exact match of a training prompt after normalization (case, punctuation, spacing),
  * shares a word n-gram (default 8 words) with a training prompt: a copied clause inside a
    longer template, which exact matching misses, or
  * is a near duplicate: the Jaccard similarity of the two prompts' word sets is at least
    ``near_threshold`` (default 0.7; "How do I kill a Python process?" and "How can I kill a
    Python process?" score 0.71, a paraphrase with the same content words scores higher).
Each count is the number of evaluation prompts hit, so it reads as "how many test items a
model could have seen". The most similar pairs are kept so a reader can judge them.

A template every prompt of the evaluation set shares (the Alpaca preamble, "Classify the
sentiment of this review ...") would make every pair share 8-grams and most of their words, so
it is removed first: word n-grams found in at least half of the evaluation prompts are
boilerplate, and the words they cover are dropped from both sides before comparing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

NGRAM = 8
NEAR_THRESHOLD = 0.7


def normalize(text: str) -> str:
    return re.sub(r"\W+", " ", text.casefold()).strip()


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def boilerplate(prompts: list[str], n: int = NGRAM, share: float = 0.5) -> set[tuple[str, ...]]:
    """Word n-grams that at least ``share`` of the (normalized) prompts contain: a template."""
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    for p in prompts:
        for g in ngrams(p.split(), n):
            counts[g] += 1
    need = max(2, share * len(prompts))
    return {g for g, c in counts.items() if c >= need}


def strip(norm: str, template: set[tuple[str, ...]], n: int = NGRAM) -> str:
    """``norm`` without the words covered by a template n-gram."""
    words = norm.split()
    if not template:
        return norm
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if tuple(words[i:i + n]) in template:
            covered[i:i + n] = [True] * n
    return " ".join(w for w, c in zip(words, covered) if not c)


@dataclass
class Overlap:
    """How one evaluation set overlaps one training set (counts are evaluation prompts)."""

    eval_prompts: int
    exact: int = 0
    ngram: int = 0
    near: int = 0
    max_jaccard: float = 0.0
    total: int = 0  # prompts hit by any of the three criteria, each counted once
    top: list[tuple[float, str, str]] = field(default_factory=list)  # (similarity, train, eval), best first

    def as_dict(self) -> dict:
        return {"eval_prompts": self.eval_prompts, "exact": self.exact, f"ngram{NGRAM}": self.ngram,
                "near": self.near, "any": self.total, "max_jaccard": round(self.max_jaccard, 3),
                "most_similar": [{"jaccard": round(s, 3), "train": t, "eval": e} for s, t, e in self.top]}


def overlap(train: Iterable[str], evals: Iterable[str], *, n: int = NGRAM,
            near_threshold: float = NEAR_THRESHOLD, keep_top: int = 3) -> Overlap:
    """Compare every evaluation prompt with every training prompt (an inverted index over
    words keeps it to the pairs that share at least one word)."""
    evals = list(dict.fromkeys(evals))
    eval_norm = [normalize(e) for e in evals]
    template = boilerplate(eval_norm, n)
    eval_norm = [strip(e, template, n) for e in eval_norm]
    train_text = list(dict.fromkeys(train))
    train_norm = [strip(normalize(t), template, n) for t in train_text]
    train_words = [set(t.split()) for t in train_norm]
    train_exact = set(train_norm)
    train_grams: set[tuple[str, ...]] = set()
    index: dict[str, list[int]] = defaultdict(list)
    for i, norm in enumerate(train_norm):
        train_grams |= ngrams(norm.split(), n)
        for w in train_words[i]:
            index[w].append(i)
    result = Overlap(eval_prompts=len(evals))
    scored: list[tuple[float, str, str]] = []
    for e, norm in zip(evals, eval_norm):
        words = set(norm.split())
        hit_exact = bool(norm) and norm in train_exact  # a prompt that is all template matches nothing
        hit_ngram = bool(ngrams(norm.split(), n) & train_grams)
        shared: dict[int, int] = defaultdict(int)
        for w in words:
            for i in index.get(w, ()):
                shared[i] += 1
        best, best_i = 0.0, -1
        for i, k in shared.items():
            sim = k / (len(words) + len(train_words[i]) - k)
            if sim > best:
                best, best_i = sim, i
        hit_near = best >= near_threshold
        result.exact += hit_exact
        result.ngram += hit_ngram
        result.near += hit_near
        result.total += hit_exact or hit_ngram or hit_near
        result.max_jaccard = max(result.max_jaccard, best)
        if best_i >= 0:
            scored.append((best, train_text[best_i], e))
    result.top = sorted(scored, reverse=True)[:keep_top]
    return result
