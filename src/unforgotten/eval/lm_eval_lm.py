"""lm-eval's ``HFLM`` with log-likelihoods that share work between requests.

Multiple-choice tasks ask for ``log p(continuation | context)`` of every choice of every
question, and TruthfulQA's contexts all begin with the same six-shot QA prompt (~110 tokens of
the ~140 each request runs). lm-eval's ``HFLM`` runs every request from its first token (its own
TODO: "lump together requests with the same context"). This subclass, for causal models:

* computes the longest token prefix every request shares **once** and keeps its key/value cache;
* runs each distinct context's tail (a TruthfulQA question) once on that cache, then all of its
  continuations (the choices) as one batch on the context's cache, so a choice costs only its
  own tokens (~10 instead of ~140);
* scores each distinct ``(context, continuation)`` once (MC1's choices are a subset of MC2's);
* takes the log-softmax only at the continuation's positions.

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
        """Per distinct context: its tail (after the shared prefix) runs once; then its
        continuations run as one batch on that context's cache."""
        from tqdm import tqdm

        model, device = self.model, self.device
        bs = int(batch_size) if str(batch_size).isdigit() else 16
        prefix_cache = None
        if p > 0:
            prefix = torch.tensor([list(keys[0][0][:p])], device=device)
            prefix_cache = model(input_ids=prefix, use_cache=True).past_key_values
        by_context: dict[tuple[int, ...], list[int]] = {}
        for i, (c, _) in enumerate(keys):
            by_context.setdefault(c, []).append(i)
        results: list[tuple[float, bool] | None] = [None] * len(keys)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for context, idx in tqdm(by_context.items(), disable=disable_tqdm or self.rank != 0,
                                 desc="loglikelihood (shared prefix, per context)"):
            tail = torch.tensor([list(context[p:])], device=device)
            out = model(input_ids=tail, past_key_values=copy.deepcopy(prefix_cache), use_cache=True)
            first = out.logits[0, -1].float()  # predicts every continuation's first token
            for start in range(0, len(idx), bs):
                chunk = idx[start:start + bs]
                conts = [list(keys[i][1]) for i in chunk]
                width = max(len(k) for k in conts) - 1
                logits = None
                if width > 0:  # the continuations minus their last token, right-padded
                    ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                    for j, k in enumerate(conts):
                        ids[j, : len(k) - 1] = torch.tensor(k[:-1])
                    cache = copy.deepcopy(out.past_key_values)
                    cache.batch_repeat_interleave(len(chunk))
                    logits = model(input_ids=ids.to(device), past_key_values=cache, use_cache=True).logits
                for j, (i, k) in enumerate(zip(chunk, conts)):
                    rows = [first] + ([logits[j, t].float() for t in range(len(k) - 1)] if len(k) > 1 else [])
                    sel = torch.stack(rows)
                    target = torch.tensor(k, device=sel.device)
                    logp = F.log_softmax(sel, dim=-1)
                    results[i] = (float(logp.gather(1, target[:, None]).sum()), bool((sel.argmax(-1) == target).all()))
        return results  # type: ignore[return-value]
