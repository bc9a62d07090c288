"""GR-SAP's filters: every keep/drop decision as a plain function (lists / tensors in, kept
indices out), tested on crafted inputs, plus the two model-facing scorers they take numbers from
(perplexity, embeddings). ``grsap.py`` runs them in order on the synthesized candidates.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F

from ..data.tokenize import Encoded, collate

if TYPE_CHECKING:  # pragma: no cover
    from ..data.schema import Record
    from ..eval.judges.base import Verdict


def parse_request(text: str, extraction: str) -> str | None:
    """The request in one extraction output, or None when there is none.

    ``prefill``: the text up to the first ``"`` (the paper's parsing); no closing quote means
    the request was not finished within the token budget, so there is none. ``instruct``: the
    whole text, with one pair of surrounding quotes removed. Empty results are None.
    """
    if extraction == "prefill":
        end = text.find('"')
        if end < 0:
            return None
        req = text[:end].strip()
    else:
        req = text.strip()
        if len(req) >= 2 and req[0] == req[-1] and req[0] in "\"'":
            req = req[1:-1].strip()
    return req or None


def percentile_keep(values: Sequence[float], low: float, high: float) -> tuple[list[int], float, float]:
    """Indices of the values inside ``[P_low, P_high]`` and the two cutoffs.

    Percentiles (0-100) are linearly interpolated over the finite values, as ``numpy.percentile``
    computes them (the paper's filter); both bounds are inclusive. Non-finite values (a request
    with no token to score) are dropped. ``low=0, high=100`` keeps every finite value.
    """
    finite = [i for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return [], float("nan"), float("nan")
    t = torch.tensor([values[i] for i in finite], dtype=torch.float64)
    lo = float(torch.quantile(t, low / 100.0)) if low > 0 else float(t.min())
    hi = float(torch.quantile(t, high / 100.0)) if high < 100 else float(t.max())
    return [i for i in finite if lo <= values[i] <= hi], lo, hi


def dedup_keep_first(
    embeddings: torch.Tensor, threshold: float, keys: Sequence[str] | None = None, center: bool = True
) -> list[int]:
    """Indices kept by greedy near-duplicate removal: ``i`` is dropped iff an earlier *kept* item
    has cosine similarity ``>= threshold`` with it (the paper's keep-first rule).

    ``center`` subtracts the mean embedding first: mean-pooled LM hidden states share a large
    common component (anisotropy), which makes raw cosines of unrelated texts close to 1.
    ``keys`` (e.g. normalised texts) mark exact duplicates regardless of the embeddings (after
    centering, two identical texts among few items need not have similarity 1).
    """
    n = embeddings.shape[0]
    if n == 0:
        return []
    e = embeddings.double()
    if center:
        e = e - e.mean(0, keepdim=True)
    e = F.normalize(e, dim=1, eps=1e-12)
    sim = e @ e.T
    kept: list[int] = []
    seen: dict[str, int] = {}
    for i in range(n):
        if keys is not None and keys[i] in seen:
            continue
        if kept and bool((sim[i, kept] >= threshold).any()):
            continue
        kept.append(i)
        if keys is not None:
            seen[keys[i]] = i
    return kept


def normalize_text(text: str) -> str:
    """Exact-duplicate key: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def judge_split(verdicts: Sequence["Verdict"]) -> tuple[list[int], list[int]]:
    """``(safe, unsafe)`` indices. Safe = the judge decided *not harmful*; harmful and undecided
    verdicts are unsafe (the paper keeps only WildGuard's explicit "harmful response: no")."""
    safe = [i for i, v in enumerate(verdicts) if v.harmful is False]
    unsafe = [i for i, v in enumerate(verdicts) if v.harmful is not False]
    return safe, unsafe


def select_hard_easy(
    hard: Sequence[int], easy: Sequence[int], n_target: int, hard_fraction: float, rng: random.Random
) -> tuple[list[int], list[int]]:
    """Draw ``n_target`` items, ``int(n_target * hard_fraction)`` of them hard (the paper's
    ``num_hard = min(len(hard), int(num_align * hard_ratio))``), the rest easy.

    When one pool is short the other fills in (the paper would fail there), so the result has
    ``min(n_target, len(hard) + len(easy))`` items. Each pool is sampled without replacement by
    ``rng``; the returned lists are sorted.
    """
    n_hard = min(len(hard), int(n_target * hard_fraction))
    n_easy = min(len(easy), n_target - n_hard)
    n_hard = min(len(hard), n_target - n_easy)
    return sorted(rng.sample(list(hard), n_hard)), sorted(rng.sample(list(easy), n_easy))


def synthetic_count(n_user: int, mix_ratio: float, n_synthetic: int | None = None) -> int:
    """How many synthetic pairs to mix in: ``n_synthetic`` if set, else ``mix_ratio * n_user``
    rounded half up (``round()`` would round 2.5 to 2)."""
    if n_synthetic is not None:
        return n_synthetic
    return int(math.floor(mix_ratio * n_user + 0.5))


def mix_synthetic(user_data: list["Record"], synthetic: list["Record"], seed: int) -> list["Record"]:
    """``user_data + synthetic`` shuffled by ``random.Random(seed)``; synthetic records are
    shallow copies marked ``synthetic=True``, user records get ``synthetic=False`` if unset.
    Nothing is modified, dropped or duplicated."""
    mixed: list[Record] = [r if "synthetic" in r else {**r, "synthetic": False} for r in user_data]
    mixed += [{**r, "synthetic": True} for r in synthetic]
    random.Random(seed).shuffle(mixed)
    return mixed


# --------------------------------------------------------------------------- model-facing scorers


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def mean_nll(model, samples: Sequence[Encoded], pad_id: int, batch_size: int) -> list[float]:
    """Per sample, the mean next-token NLL over its label tokens (NaN if it has none).

    ``exp`` of it is the perplexity. Uses the loop's own forward (logits only at label positions).
    """
    from ..train.context import forward_with_labels

    out: list[float] = [float("nan")] * len(samples)
    scorable = [j for j, e in enumerate(samples) if any(t != -100 for t in e.labels[1:])]
    device = _device(model)
    for s in range(0, len(scorable), batch_size):
        idx = scorable[s : s + batch_size]
        batch = {k: v.to(device) for k, v in collate([samples[j] for j in idx], pad_id).items()}
        res = forward_with_labels(model, batch)
        nll = F.cross_entropy(res.logits.float(), res.targets, reduction="none")
        # rows of res.logits are the label positions in row-major order: split by per-row counts
        for j, part in zip(idx, nll.split(res.label_mask.sum(1).tolist())):
            out[j] = float(part.double().mean())
    return out


@torch.no_grad()
def mean_pooled_embeddings(model, id_lists: Sequence[list[int]], pad_id: int, batch_size: int) -> torch.Tensor:
    """(n, H) fp32: each text's last hidden state averaged over its tokens (padding masked)."""
    device = _device(model)
    rows: list[torch.Tensor] = []
    for s in range(0, len(id_lists), batch_size):
        chunk = id_lists[s : s + batch_size]
        width = max(len(x) for x in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, x in enumerate(chunk):
            ids[r, : len(x)] = torch.tensor(x)
            mask[r, : len(x)] = 1
        ids, mask = ids.to(device), mask.to(device)
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False, logits_to_keep=1)
        h = out.hidden_states[-1].float()
        m = mask.unsqueeze(-1).float()
        rows.append(((h * m).sum(1) / m.sum(1).clamp_min(1)).cpu())
    return torch.cat(rows) if rows else torch.zeros(0, 0)
