"""lm-eval's ``HFLM`` with log-likelihoods that share work between requests.

Multiple-choice tasks ask for ``log p(continuation | context)`` of every choice of every
question, and TruthfulQA's contexts all begin with the same six-shot QA prompt (~110 tokens of
the ~140 each request runs). lm-eval's ``HFLM`` runs every request from its first token (its own
TODO: "lump together requests with the same context"). This subclass, for causal models:

* computes the longest token prefix every request shares **once**, keeps its key/value cache, and
  runs each request only from there (so a TruthfulQA request costs ~30 tokens instead of ~140);
* scores each distinct ``(context, continuation)`` once (MC1's choices are a subset of MC2's);
* takes the log-softmax only at the continuation's positions.

Requests are batched across questions (``batch_size`` at a time, similar lengths together). A
variant that ran each question once and then its choices on that question's cache processed
fewer tokens but made twice the forward calls, and measured no better on the 2-core CPU (~1.7x
HFLM's speed over the first questions of one run, against 2.0x for this one over a whole run,
both under heavy shared load; docs/results.md): at
135M parameters a CPU forward of a few hundred tokens costs not much more than one of a few dozen.

The numbers are HFLM's up to float rounding (``tests/test_eval_general.py`` compares the two):
same tokenization (HFLM's ``loglikelihood`` encodes and calls this), same sum of token
log-probabilities, same greedy flag. Requests that HFLM would truncate on the left (longer than
the model's window), non-causal models and rolling log-likelihoods go to HFLM's own code.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM


def common_prefix_length(seqs: list[list[int]]) -> int:
    if not seqs:
        return 0
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for i in range(n):
        t = first[i]
        if any(s[i] != t for s in seqs):
            return i
    return n


class SharedPrefixHFLM(HFLM):
    def _loglikelihood_tokens(self, requests: list[tuple[tuple[str, str], list[int], list[int]]],
                              disable_tqdm: bool = False, override_bs: int | None = None) -> list[tuple[float, bool]]:
        too_long = any(len(c) + len(k) > self.max_length + 1 for _, c, k in requests)
        if self.backend != "causal" or too_long or any(not c or not k for _, c, k in requests):
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        unique: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
        for _, c, k in requests:
            unique.setdefault((tuple(c), tuple(k)), len(unique))
        keys = list(unique)
        # the shared prefix stays strictly inside every context: each request runs >= 1 token
        p = min(common_prefix_length([list(c) for c, _ in keys]), min(len(c) for c, _ in keys) - 1)
        answers = self._score(keys, p, override_bs or self.batch_size, disable_tqdm)
        out = []
        for (request, c, k) in requests:
            answer = answers[unique[(tuple(c), tuple(k))]]
            if request is not None:
                self.cache_hook.add_partial("loglikelihood", request, answer)
            out.append(answer)
        return out

    @torch.no_grad()
    def _score(self, keys: list[tuple[tuple[int, ...], tuple[int, ...]]], p: int, batch_size: Any,
               disable_tqdm: bool) -> list[tuple[float, bool]]:
        from tqdm import tqdm

        model, device = self.model, self.device
        bs = int(batch_size) if str(batch_size).isdigit() else 16
        prefix_cache = None
        if p > 0:
            prefix = torch.tensor([list(keys[0][0][:p])], device=device)
            prefix_cache = model(input_ids=prefix, use_cache=True).past_key_values
        # rest of each request after the shared prefix: context tail + continuation minus its last token
        rows = [(list(c[p:]) + list(k))[:-1] for c, k in keys]
        order = sorted(range(len(keys)), key=lambda i: -len(rows[i]))  # similar lengths batch together
        results: list[tuple[float, bool] | None] = [None] * len(keys)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in tqdm(range(0, len(order), bs), disable=disable_tqdm or self.rank != 0, desc="loglikelihood (shared prefix)"):
            idx = order[start:start + bs]
            width = max(len(rows[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            for j, i in enumerate(idx):  # right padding: a causal model never looks at the pads
                ids[j, : len(rows[i])] = torch.tensor(rows[i])
            cache = None
            if prefix_cache is not None:
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(idx))
            logits = model(input_ids=ids.to(device), past_key_values=cache, use_cache=cache is not None).logits
            for j, i in enumerate(idx):
                cont = list(keys[i][1])
                end = len(rows[i])  # logits[end - 1] predicts the last continuation token
                sel = logits[j, end - len(cont): end].float()
                logp = F.log_softmax(sel, dim=-1)
                target = torch.tensor(cont, device=logp.device)
                total = float(logp.gather(1, target[:, None]).sum())
                greedy = bool((sel.argmax(-1) == target).all())
                results[i] = (total, greedy)
        return results  # type: ignore[return-value]
