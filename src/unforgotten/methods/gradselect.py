"""Gradient-based sample selection: drop the user samples with the largest gradient at the aligned weights.

Before training, every user sample is scored by the L2 norm of its loss gradient with respect to
the trainable parameters, at the starting (aligned) weights; the top ``drop_fraction`` of scores
are dropped and training runs on the rest. The selection, every score and (when the records are
marked by poisoning) how many poison samples the filter caught go to ``gradselect.json``.

Per-sample gradient norms are computed exactly, from one batched forward/backward per
``score_batch_size`` samples, with the per-sample-gradient-norm identity for linear layers
(:func:`linear_grad_sq_norms`): a linear layer's weight gradient for sample b is
``G_b = sum_t g_bt a_bt^T`` (a = the layer's inputs, g = the gradients at its outputs), and since
samples do not interact in a forward pass (eval mode, right padding, causal attention), the
backward of the *sum* of per-sample losses delivers every sample's own ``g_b``. Parameters that
are not the weight or bias of a linear layer (full fine-tuning's embeddings and norms) fall back
to one forward/backward per sample (:func:`grad_norms_loop`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import torch
import torch.nn.functional as F

from ..bounds import Bounds, bounded, check_number, one_of
from ..errors import UserInputError
from .base import Method

if TYPE_CHECKING:  # pragma: no cover
    from ..data.schema import Record
    from ..data.tokenize import Encoded
    from ..train.context import TrainContext

SCORERS = ("auto", "hooks", "loop")
# what each scorer that can end up used does (reported in gradselect.json)
SCORER_DOC = {
    "hooks": "batched per-sample norms from linear-layer hooks; LM head at own label positions, no pad mask",
    "hooks-plain": "batched per-sample norms from linear-layer hooks through the training loop's forward",
    "loop": "one forward/backward per sample with torch.autograd.grad",
}


# --------------------------------------------------------------------------- selection (pure)


def n_to_drop(n: int, q: float) -> int:
    """How many of ``n`` samples a drop fraction ``q`` removes: ``floor(q*n + 1/2)`` (round half
    up, as the poisoning's ``round(n*p)``), at most ``n - 1`` so that one sample is always kept."""
    _check_fraction(q)
    if n <= 0:
        return 0
    return min(math.floor(q * n + 0.5), n - 1)


def select_by_score(scores: Sequence[float] | torch.Tensor, q: float) -> tuple[list[int], list[int]]:
    """Split indices into ``(keep, drop)``: ``drop`` = the ``n_to_drop(n, q)`` highest scores.

    Ranking is by score descending, ties broken by index (the lower index ranks higher, so it is
    dropped first); a NaN score ranks above everything (a sample whose gradient is not finite is
    the first to go). Both lists are returned in ascending index order. ``q`` must be in [0, 1).
    """
    vals = [float(s) for s in (scores.tolist() if isinstance(scores, torch.Tensor) else scores)]
    k = n_to_drop(len(vals), q)
    key = [math.inf if math.isnan(v) else v for v in vals]
    order = sorted(range(len(vals)), key=lambda i: (-key[i], i))
    drop = sorted(order[:k])
    dropped = set(drop)
    keep = [i for i in range(len(vals)) if i not in dropped]
    return keep, drop


DROP_FRACTION = Bounds(ge=0, lt=1)


def _check_fraction(q: Any) -> float:
    return check_number("gradselect.drop_fraction", q, float, DROP_FRACTION)


def poison_stats(is_poison: Sequence[bool | None], dropped: Sequence[bool]) -> dict[str, Any] | None:
    """How well the dropped set matches the poison marks (``None`` = the record carries no mark).

    Returns None when no record is marked. ``recall`` (= the catch rate) is caught / poison,
    ``precision`` caught / dropped (every dropped record counts; None when nothing was dropped),
    and ``base_rate`` the poison share of the marked records: the precision a random drop of the
    same size would have on average.
    """
    if len(is_poison) != len(dropped):
        raise ValueError("poison_stats: is_poison and dropped differ in length")
    marked = [(bool(p), bool(d)) for p, d in zip(is_poison, dropped) if p is not None]
    if not marked:
        return None
    n_poison = sum(p for p, _ in marked)
    n_dropped = sum(bool(d) for d in dropped)
    caught = sum(1 for p, d in marked if p and d)
    return {
        "n_marked": len(marked),
        "n_unmarked": len(is_poison) - len(marked),
        "n_poison": n_poison,
        "n_dropped": n_dropped,
        "caught": caught,
        "missed": n_poison - caught,
        "false_drops": n_dropped - caught,
        "recall": caught / n_poison if n_poison else None,
        "precision": caught / n_dropped if n_dropped else None,
        "base_rate": n_poison / len(marked),
    }


# --------------------------------------------------------------------------- per-sample gradient norms (pure)


def linear_grad_sq_norms(a: torch.Tensor, g: torch.Tensor, mode: str = "auto") -> torch.Tensor:
    """Per-sample squared Frobenius norms of a linear layer's weight gradient, ``||g_b^T a_b||^2``.

    ``a`` (B, T, d_in) are the layer's inputs and ``g`` (B, T, d_out) the loss gradients at its
    outputs, per sample b and position t. "explicit" forms ``G_b = g_b^T a_b`` (B x d_out x d_in);
    "ghost" uses ``||G_b||^2 = sum_{s,t} (a_bs . a_bt)(g_bs . g_bt)`` (B x T x T), never forming
    G_b. Both are exact; "auto" picks the one with fewer multiply-adds (explicit costs
    ``T d_in d_out``, ghost ``T^2 (d_in + d_out)``).
    """
    if a.dim() != 3 or g.dim() != 3 or a.shape[:2] != g.shape[:2]:
        raise ValueError(f"linear_grad_sq_norms: need (B, T, d) inputs and output grads, got {tuple(a.shape)}, {tuple(g.shape)}")
    if mode == "auto":
        t, d_in, d_out = a.shape[1], a.shape[2], g.shape[2]
        mode = "explicit" if d_in * d_out <= t * (d_in + d_out) else "ghost"
    a, g = a.float(), g.float()
    if mode == "explicit":
        return torch.bmm(g.transpose(1, 2), a).pow(2).sum((1, 2))
    if mode == "ghost":
        return (torch.bmm(a, a.transpose(1, 2)) * torch.bmm(g, g.transpose(1, 2))).sum((1, 2))
    raise ValueError(f"linear_grad_sq_norms: mode must be auto, explicit or ghost, got {mode!r}")


def per_sample_token_mean_nll(logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """Each sample's mean NLL over its own label tokens: ``(n_rows,)``.

    ``logits`` (N, V) and ``targets`` (N,) are the label tokens of a batch, ``rows`` (N,) the
    sample each belongs to. A sample without label tokens gets 0.
    """
    ce = F.cross_entropy(logits.float(), targets, reduction="none")
    sums = torch.zeros(n_rows, dtype=ce.dtype, device=ce.device).index_add(0, rows, ce)
    counts = torch.bincount(rows, minlength=n_rows).to(ce.dtype)
    return sums / counts.clamp(min=1)


def _batch_losses(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-sample token-mean NLL of a collated batch, through the loop's own forward."""
    from ..train.context import forward_with_labels

    out = forward_with_labels(model, batch)
    rows = out.label_mask.nonzero()[:, 0]  # logits come row by row, in the label mask's order
    return per_sample_token_mean_nll(out.logits, out.targets, rows, batch["input_ids"].shape[0])


def _scoring_losses(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-sample token-mean NLL, computed for scoring with two shortcuts over the loop's forward.

    1. The LM head runs at each row's own label positions only (the loop's forward keeps the
       union over the batch, so every row pays for every other row's positions: at a 49k
       vocabulary that dominated the cost).
    2. No padding mask: with right padding and causal attention no real position ever sees a pad,
       and positions are 0..T-1 either way, so real positions are unchanged; pad positions feed
       no loss, so their gradients are exactly 0. This keeps SDPA on its causal fast path.
    The caller checks it against :func:`_batch_losses` once (some architectures scale or cap
    logits after the head, which this would miss).
    """
    from ..data.tokenize import IGNORE
    from ..models import is_peft

    base = model.get_base_model() if is_peft(model) else model
    decoder, head = base.get_decoder(), base.get_output_embeddings()
    if decoder is None or head is None:
        raise HooksUnsupported("the model exposes no decoder / output head")
    hidden = decoder(input_ids=batch["input_ids"], use_cache=False).last_hidden_state
    shift = batch["labels"][:, 1:]
    mask = shift != IGNORE
    logits = head(hidden[:, :-1][mask])
    rows = mask.nonzero()[:, 0]
    return per_sample_token_mean_nll(logits, shift[mask], rows, batch["input_ids"].shape[0])


class HooksUnsupported(RuntimeError):
    """The trainable parameters are not all linear-layer weights/biases reached through hooks."""


def hookable_linears(model: torch.nn.Module, params: dict[str, torch.Tensor]) -> dict[str, torch.nn.Linear]:
    """The ``nn.Linear`` modules owning the trainable parameters, or :class:`HooksUnsupported`.

    Every trainable tensor must be the weight or bias of exactly one ``nn.Linear`` (LoRA's
    ``lora_A`` / ``lora_B`` are; full fine-tuning's embeddings, norms and tied heads are not).
    """
    owner: dict[int, str] = {}
    found: dict[str, torch.nn.Linear] = {}
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        mine = [p for p in (mod.weight, mod.bias) if p is not None and p.requires_grad]
        for p in mine:
            if id(p) in owner:
                raise HooksUnsupported(f"{name} shares a trainable tensor with {owner[id(p)]}")
            owner[id(p)] = name
        if mine:
            found[name] = mod
    missing = [n for n, p in params.items() if id(p) not in owner]
    if missing:
        raise HooksUnsupported(f"{len(missing)} trainable tensors are not linear-layer weights (e.g. {missing[0]})")
    return found


def grad_norms_hooks(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], params: dict[str, torch.Tensor], verify: bool = False,
    fast: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-sample gradient norms (and losses) of a batch from one forward and one backward.

    Forward hooks keep each trainable linear layer's input a, a hook on its output receives g
    during the backward of ``sum_b loss_b``, and the layer's per-sample squared norms are added
    up right there (so no per-layer tensors pile up; padding positions are zeroed in the smaller
    of a and g). A layer called several times contributes ``[g_1; g_2]^T [a_1; a_2]``: its
    calls are joined along the token axis. ``verify`` checks that the per-sample gradients add up to the batch
    gradient autograd computed, which catches any use of a trainable tensor outside its layer's
    call (the hooks would miss it): raises :class:`HooksUnsupported` on a mismatch. ``fast``
    uses :func:`_scoring_losses` (verified against the loop's forward when ``verify``), else
    the loop's own forward.
    """
    layers = hookable_linears(model, params)
    mask = batch.get("attention_mask")
    bsz, seq = batch["input_ids"].shape
    sq = torch.zeros(bsz, dtype=torch.float32, device=batch["input_ids"].device)
    calls: dict[str, list] = {n: [] for n in layers}  # per layer: [a, g or None] per call
    sums: dict[int, torch.Tensor] = {}  # id(param) -> sum over samples of per-sample grads (verify)
    handles = []

    def finish(name: str, mod: torch.nn.Linear) -> None:
        nonlocal sq
        items = calls[name]
        a = torch.cat([x[0] for x in items], 1) if len(items) > 1 else items[0][0]
        g = torch.cat([x[1] for x in items], 1) if len(items) > 1 else items[0][1]
        if mod.weight.requires_grad:
            sq = sq + linear_grad_sq_norms(a, g)
            if verify:
                sums[id(mod.weight)] = g.flatten(0, 1).float().T @ a.flatten(0, 1).float()
        if mod.bias is not None and mod.bias.requires_grad:
            gb = g.float().sum(1)
            sq = sq + gb.pow(2).sum(1)
            if verify:
                sums[id(mod.bias)] = gb.sum(0)
        calls[name] = []

    def on_forward(name: str):
        def hook(mod, inputs, output):
            a = inputs[0].detach()
            if a.shape[:2] != (bsz, seq) or a.dim() != 3 or output.shape[:-1] != a.shape[:-1]:
                # e.g. the LM head at label positions only, or DoRA's weight-norm call on an identity
                raise HooksUnsupported(f"{name}: called on a {tuple(a.shape)} input, not (batch, sequence, features)")
            entry = [a, None]
            calls[name].append(entry)

            def on_grad(g):
                g = g.detach()
                if mask is not None:
                    # padding adds nothing (its g is 0 anyway): zero the smaller of a, g there
                    m = mask[:, :, None].to(g.dtype)
                    if entry[0].shape[-1] <= g.shape[-1]:
                        entry[0] = entry[0] * m
                    else:
                        g = g * m
                entry[1] = g
                if all(e[1] is not None for e in calls[name]):
                    finish(name, mod)

            if output.requires_grad:
                output.register_hook(on_grad)

        return hook

    for name, mod in layers.items():
        handles.append(mod.register_forward_hook(on_forward(name)))
    try:
        losses = _scoring_losses(model, batch) if fast else _batch_losses(model, batch)
        tensors = list(params.values())
        grads = torch.autograd.grad(losses.sum(), tensors, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    if any(calls.values()):  # a layer's output never received a gradient: it does not reach the loss
        for name, items in calls.items():
            if items and all(e[1] is None for e in items):
                calls[name] = []
        if any(calls.values()):
            raise HooksUnsupported("some layer outputs got gradients for only part of their calls")
    if verify and fast:
        with torch.no_grad():
            ref = _batch_losses(model, batch)
        if not torch.allclose(losses.detach(), ref, rtol=1e-4, atol=1e-5):
            raise HooksUnsupported("the scoring forward's losses differ from the training forward's")
    if verify:
        for (n, p), gr in zip(params.items(), grads):
            want = torch.zeros_like(p, dtype=torch.float32) if gr is None else gr.float()
            got = sums.get(id(p), torch.zeros_like(want))
            if not torch.allclose(got, want, rtol=1e-3, atol=1e-6 * (1 + float(want.abs().max()))):
                raise HooksUnsupported(f"per-sample gradients of {n} do not add up to its batch gradient")
    return sq.sqrt(), losses.detach()


def grad_norms_loop(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], params: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The naive reference: one forward/backward per sample (no padding), ``torch.autograd.grad``."""
    tensors = list(params.values())
    norms, losses = [], []
    lengths = batch["attention_mask"].sum(1).tolist() if "attention_mask" in batch else None
    for b in range(batch["input_ids"].shape[0]):
        n = int(lengths[b]) if lengths is not None else batch["input_ids"].shape[1]
        one = {k: v[b : b + 1, :n] for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")}
        loss = _batch_losses(model, one)[0]
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        norms.append(torch.sqrt(sum((g.float().pow(2).sum() for g in grads if g is not None), torch.zeros(()))))
        losses.append(loss.detach())
    return torch.stack(norms), torch.stack(losses)


# --------------------------------------------------------------------------- the method


@dataclass
class GradSelect(Method):
    """Gradient-based sample selection: drop the user samples with the largest gradient norm at the aligned weights.

    Paper: Thong Bach, Dung Nguyen, Thao Minh Le, Truyen Tran (2026). "Continual Safety Alignment
    via Gradient-Based Sample Selection". arXiv:2604.17215 (ACL 2026 Findings). Its finding:
    high-gradient samples cause most of the safety drift (they pull the model back toward its
    pretrained distribution), moderate-gradient ones carry the task; filtering out the
    high-gradient samples preserves alignment without curated safety data. The paper's text was
    not accessible to us (only its abstract and summaries), so the details below are ours where
    marked.

    What we compute (``prepare_data``, once, before training):
      * score_i = || d loss_i / d theta ||_2 at the starting (aligned) weights, over the trainable
        parameters only (the LoRA adapter by default; every parameter in full fine-tuning), where
        loss_i is sample i's mean NLL over its response tokens (the loss training uses), in eval
        mode (no dropout), on the sample as training sees it (truncated to ``train.max_length``).
        With LoRA, B = 0 at the start, so the gradient lives in B: grad_B = G A^T, a fixed random
        projection (LoRA's A init) of the full gradient G of each adapted weight, whose norm tracks
        ||G||; the seeded adapter init makes it reproducible.
      * The round(q n) highest-scoring samples (q = drop_fraction, n = samples scored; round half
        up, at most n - 1) are dropped; ties are broken by position (earlier first), so the
        selection is deterministic. Training runs on the rest in their original order.
      * ``gradselect.json`` in the output dir: every sample's position, id, score, loss, dropped
        flag and ``is_poison`` mark; the threshold (lowest dropped score), counts, the scorer used
        and its speed, and, when records carry ``is_poison`` (the poisoning manifest marks them),
        caught / total poison (recall = the catch rate), precision of the dropped set and the
        base rate a random drop would reach. The catch rate is also printed.

    Per-sample gradients (exact; ``scorer``): one forward/backward per batch of
    ``score_batch_size`` length-sorted samples, with the per-sample-norm identity for linear
    layers: hooks on each trainable ``nn.Linear`` keep its input a and receive its output gradient
    g during the backward of sum_b loss_b (samples do not interact in the forward), and
    ||G_b||^2 comes from g_b^T a_b or its T x T "ghost" form, whichever is cheaper. LoRA's lora_A /
    lora_B are linear layers, so this covers the default. The first batch is checked (per-sample
    gradients must add up to autograd's batch gradient, the scoring forward's losses must equal
    the training forward's); a model that fails (DoRA, a weight used outside its layer's call)
    falls back to the naive loop, one forward/backward per sample with ``torch.autograd.grad``,
    which is also what full fine-tuning uses (embeddings, norms and the tied head are not linear
    layers). The scoring forward runs the LM head only at each row's own label positions and
    without the padding mask (right padding + causal attention: real positions are unchanged and
    pads get zero gradient). torch.func ``vmap(grad(functional_call(...)))`` was tried on the HF
    Llama + peft model: it fails in transformers' mask creation (data-dependent control flow),
    runs only without the attention mask, and then SDPA goes through vmap's per-sample fallback.
    Measured (``benchmarks/gradselect_scoring.py``, 1 CPU thread, LoRA r=8 on all linear layers,
    max |difference| to the loop <= 2e-6): tiny model, 128 samples: hooks 4.8x the loop's speed at
    batch 8 (2.5x at 4, 7x at 16), vmap 2.7x. SmolLM2-135M shapes (4 of its 30 layers, 64 samples
    of 48-256 tokens): hooks 1.03x at batch 4, 0.88x at batch 8 (vmap 0.24x on 2 layers): at
    that size one sample already keeps the CPU's matrix units busy, so batching saves only
    per-call overhead, and padding costs about as much; either way a scoring pass costs about
    one epoch of training (one forward/backward per sample).

    Hyperparameters:
      drop_fraction = 0.1: q, the share of samples dropped. Our choice: the paper reports
        robustness across selection ratios but its value was not accessible to us; 0.1 removes a
        tail the size of a typical poisoning ratio while keeping 90% of the task data. Must be in
        [0, 1); 0 drops nothing (a scoring-only run that still writes gradselect.json).
      score_batch_size = None: samples per scoring forward/backward; None = ``train.batch_size``
        (our choice: the same activation memory as a training micro-batch, which the run is
        already sized for; on CPU larger batches buy little, see above). Scores do not depend
        on it beyond float rounding.
      scorer = "auto": "hooks" (batched, linear layers only; an error if the model fails the
        check), "loop" (one sample at a time, any parameters) or "auto" (hooks, else the loop).

    Composition: it filters the records it is given, so list it before ``safeinstr`` in
    ``train.methods`` to select among user samples only. Resume: the scores are recomputed from
    the starting weights (deterministic), and the loop's data fingerprint covers the selection.
    Deviations: the paper's exact scoring details (which parameters, which loss normalization)
    are not known to us; we score the trainable parameters with the training loss.
    """

    name: ClassVar[str] = "gradselect"

    drop_fraction: float = bounded(0.1, ge=DROP_FRACTION.ge, lt=DROP_FRACTION.lt)
    score_batch_size: int | None = bounded(None, ge=1)
    scorer: str = one_of("auto", SCORERS)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.report: dict[str, Any] = {}

    # ------------------------------------------------------------------ scoring

    def score(self, ctx: "TrainContext", samples: list["Encoded"], progress: bool = True) -> dict[str, Any]:
        """Gradient norms and losses of ``samples`` at the current weights, in their order."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from ..data.tokenize import collate
        from ..progress import progress_bar

        model = ctx.unwrapped_model()
        params = ctx.trainable()
        if not params:
            raise UserInputError("gradselect: the model has no trainable parameters to score gradients on")
        # scorers in order of preference; the first batch is checked, a failing one gives way to the next
        ladder = {"auto": ["hooks", "hooks-plain", "loop"], "hooks": ["hooks", "hooks-plain"], "loop": ["loop"]}[self.scorer]
        notes: list[str] = []
        verified = False
        if ladder[0] != "loop":
            try:
                hookable_linears(model, params)
            except HooksUnsupported as e:  # structural: neither hooks variant can work
                if self.scorer == "hooks":
                    raise UserInputError(f"gradselect: scorer 'hooks' cannot score this model: {e}") from e
                notes.append(f"hooks: {e}")
                ladder = ["loop"]

        def run(mode: str, batch):
            if mode == "loop":
                return grad_norms_loop(model, batch, params)
            return grad_norms_hooks(model, batch, params, verify=not verified, fast=(mode == "hooks"))

        # length-sorted batches (less padding); deterministic
        order = sorted(range(len(samples)), key=lambda i: (len(samples[i].input_ids), i))
        bs = self.score_batch_size or ctx.config.batch_size
        chunks = ctx.local_share([order[i : i + bs] for i in range(0, len(order), bs)])  # joined below
        norms = torch.full((len(samples),), float("nan"))
        losses = torch.full((len(samples),), float("nan"))
        pad = ctx.tokenizer.pad_token_id
        was_training = model.training
        model.eval()
        t0 = time.perf_counter()
        bar = progress_bar(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[how]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), disable=not progress,
        )
        try:
            with bar, torch.enable_grad():
                task = bar.add_task("gradselect: scoring samples", total=len(samples), how=ladder[0])
                for idx in chunks:
                    batch = ctx.to_device(collate([samples[i] for i in idx], pad))
                    while True:
                        try:
                            nb, lb = run(ladder[0], batch)
                            verified = True
                            break
                        except HooksUnsupported as e:
                            notes.append(f"{ladder[0]}: {e}")
                            ladder.pop(0)
                            verified = False  # the next scorer is checked on this batch
                            if not ladder:
                                raise UserInputError(f"gradselect: scorer {self.scorer!r} cannot score this model: {e}") from e
                            bar.update(task, how=ladder[0])
                    norms[idx] = nb.detach().cpu().float()
                    losses[idx] = lb.detach().cpu().float()
                    bar.update(task, advance=len(idx))
        finally:
            model.train(was_training)
        seconds = time.perf_counter() - t0
        if ctx.num_processes > 1:  # every process scored its block of batches: join the scores
            mine = torch.tensor([i for idx in chunks for i in idx], dtype=torch.long)
            rows = ctx.cat_across(torch.stack([mine.float(), norms[mine], losses[mine]], 1))
            norms[rows[:, 0].long()], losses[rows[:, 0].long()] = rows[:, 1], rows[:, 2]
        return {"norms": norms, "losses": losses, "scorer": ladder[0], "scorer_notes": notes, "seconds": seconds}

    def prepare_data(self, ctx: "TrainContext", user_data: list["Record"], safety_data: list["Record"] | None) -> list["Record"]:
        from rich.console import Console

        records = list(user_data)
        samples = ctx.encode(records)
        if not samples:
            return records  # nothing trainable: the loop reports it
        scored = self.score(ctx, samples, progress=ctx.progress)
        keep, drop = select_by_score(scored["norms"], self.drop_fraction)
        dropped_pos = {samples[i].index for i in drop}
        score_at = {s.index: (float(scored["norms"][i]), float(scored["losses"][i])) for i, s in enumerate(samples)}
        rows = []
        for pos, r in enumerate(records):
            s = score_at.get(pos)
            row = {"position": pos, "id": r.get("id"), "score": _num(s[0]) if s else None,
                   "loss": _num(s[1]) if s else None, "dropped": pos in dropped_pos}
            if "is_poison" in r:
                row["is_poison"] = r["is_poison"]
            rows.append(row)
        kept_scores = [float(scored["norms"][i]) for i in keep]
        finite_drops = [float(scored["norms"][i]) for i in drop if math.isfinite(float(scored["norms"][i]))]
        stats = poison_stats([r.get("is_poison") if "is_poison" in r else None for r in records],
                             [pos in dropped_pos for pos in range(len(records))])
        self.report = {
            "method": "gradselect",
            "drop_fraction": self.drop_fraction,
            "rounding": "n_dropped = min(floor(drop_fraction * n_scored + 0.5), n_scored - 1); ties by position",
            "n_records": len(records),
            "n_scored": len(samples),
            "n_unscored": len(records) - len(samples),
            "n_dropped": len(drop),
            "n_kept": len(records) - len(drop),
            "threshold": min(finite_drops) if finite_drops else None,
            "max_kept_score": _num(max(kept_scores)) if kept_scores else None,
            "scorer": scored["scorer"],
            "scorer_doc": SCORER_DOC[scored["scorer"]],
            "scorer_notes": scored["scorer_notes"],
            "score_batch_size": self.score_batch_size or ctx.config.batch_size,
            "scoring_seconds": round(scored["seconds"], 3),
            "samples_per_second": round(len(samples) / scored["seconds"], 3) if scored["seconds"] > 0 else None,
            "trainable_tensors": len(ctx.trainable()),
            "poison": stats,
            "samples": rows,
        }
        if not ctx.is_main:
            return [r for pos, r in enumerate(records) if pos not in dropped_pos]
        out = ctx.output_dir / "gradselect.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.report, indent=2))
        console = Console(stderr=True)
        msg = (f"gradselect: dropped {len(drop)}/{len(samples)} samples with the largest gradient norm "
               f"(q={self.drop_fraction}, threshold {_fmt(self.report['threshold'])}, {scored['scorer']} scorer, "
               f"{scored['seconds']:.1f}s)")
        console.print(msg)
        if stats is not None:
            rec = "n/a" if stats["recall"] is None else f"{stats['recall']:.1%}"
            prec = "n/a" if stats["precision"] is None else f"{stats['precision']:.1%}"
            console.print(f"gradselect: caught {stats['caught']}/{stats['n_poison']} poison samples "
                          f"(catch rate {rec}, precision {prec}, base rate {stats['base_rate']:.1%})")
        return [r for pos, r in enumerate(records) if pos not in dropped_pos]


def _fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.4g}"


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


