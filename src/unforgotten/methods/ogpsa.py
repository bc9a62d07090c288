"""OGPSA: project every update onto the orthogonal complement of a low-rank reference-gradient subspace."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import torch

from ..bounds import bounded
from ..errors import ConfigError
from .base import Method

SEED_OFFSET = 104729  # default reference-subsample seed = train.seed + this (differs from other streams)
RTOL = 1e-6  # singular values below RTOL * the largest are numerical zeros: no direction is kept for them
_CHUNK = 1 << 20  # columns per float64 chunk when forming Gram matrices / basis vectors


# --------------------------------------------------------------------------- the math, on plain tensors


def per_sample_gradients(
    sample_losses: Sequence[Callable[[], torch.Tensor | None]], params: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Stack per-sample gradients, per tensor: ``{name: G_W}`` with ``G_W`` of shape ``(n, numel(W))``, float32.

    ``sample_losses`` holds one closure per sample returning that sample's loss (or None to skip
    the sample, e.g. when it has no label token left). Each sample gets its own
    ``torch.autograd.grad`` call, so rows are true per-sample gradients and no ``.grad`` is touched.
    Tensors a sample's loss does not reach get a zero row. The matrices are allocated once (on each
    tensor's device), so the peak is n x (trainable parameters) x 4 bytes.
    """
    names = list(params)
    tensors = [params[n] for n in names]
    if not names:
        raise ValueError("per_sample_gradients: no parameters")
    out = {n: torch.zeros(len(sample_losses), t.numel(), dtype=torch.float32, device=t.device) for n, t in params.items()}
    row = 0
    for loss_fn in sample_losses:
        loss = loss_fn()
        if loss is None:
            continue
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        for n, g in zip(names, grads):
            if g is not None:
                out[n][row].copy_(g.detach().reshape(-1))
        row += 1
    if row == 0:
        raise ValueError("per_sample_gradients: no samples")
    return {n: G[:row] for n, G in out.items()}


def _gram64(G: torch.Tensor) -> torch.Tensor:
    """``G @ G.T`` in float64, in column chunks (no float64 copy of a wide ``G``)."""
    n, d = G.shape
    out = torch.zeros(n, n, dtype=torch.float64, device=G.device)
    for s in range(0, d, _CHUNK):
        c = G[:, s : s + _CHUNK].double()
        out += c @ c.T
    return out


def subspace_basis(G: torch.Tensor, rank: int, rtol: float = RTOL) -> torch.Tensor:
    """Orthonormal basis ``U`` (``d x r``, float32) of the top-``rank`` right singular vectors of ``G`` (``n x d``).

    These span the best rank-``rank`` approximation of the rows of ``G`` (Eckart-Young): the
    directions holding most of the reference gradients' energy. ``r = min(rank, numerical rank of
    G)``: directions whose singular value is below ``rtol`` times the largest are numerical noise
    and are not kept (an all-zero ``G``, e.g. LoRA's A matrices while B = 0, gives ``r = 0``: there
    is nothing to protect, and projecting out arbitrary directions would be wrong). So with
    ``n <= rank`` the basis spans every row of ``G`` exactly.

    Computed through the ``n x n`` Gram matrix in float64 (``G G^T = W S^2 W^T``, ``V = G^T W S^-1``),
    which gives the same vectors as ``torch.linalg.svd(G)`` without a float64 copy of ``G``, then
    re-orthonormalized by QR in float32.
    """
    if G.dim() != 2:
        raise ValueError(f"subspace_basis: G must be 2-D (samples x dims), got shape {tuple(G.shape)}")
    if rank < 1:
        raise ValueError(f"subspace_basis: rank must be >= 1, got {rank}")
    n, d = G.shape
    empty = torch.zeros(d, 0, dtype=torch.float32, device=G.device)
    if n == 0 or d == 0:
        return empty
    evals, evecs = torch.linalg.eigh(_gram64(G))  # ascending
    evals, evecs = evals.flip(0), evecs.flip(1)
    sig = evals.clamp_min(0).sqrt()
    if not sig[0] > 0:
        return empty
    r = min(rank, int((sig > rtol * sig[0]).sum()))
    coef = evecs[:, :r] / sig[:r]  # (n, r) float64
    V = torch.empty(d, r, dtype=torch.float32, device=G.device)
    for s in range(0, d, _CHUNK):
        V[s : s + _CHUNK] = (G[:, s : s + _CHUNK].double().T @ coef).float()
    Q, R = torch.linalg.qr(V)
    signs = torch.sign(torch.diagonal(R))
    signs[signs == 0] = 1
    return (Q * signs).contiguous()


def project_out(g: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """``g - U (U^T g)``: the component of flat ``g`` orthogonal to the span of orthonormal ``U`` (``d x r``).

    The closest vector to ``g`` (in L2) with ``U^T g' = 0``: to first order it leaves every loss
    whose gradient lies in span(U) unchanged. Idempotent; ``r = 0`` returns ``g`` unchanged.
    """
    if U.shape[1] == 0:
        return g
    gf = g.reshape(-1).float()
    return (gf - U @ (U.T @ gf)).to(g.dtype).view_as(g)


def refresh_due(step: int, refresh_every: int, last_refresh: int | None) -> bool:
    """Whether the bases must be (re)computed at the start of optimizer step ``step`` (steps done so far).

    Always when there are none yet; then at every multiple of ``refresh_every`` optimizer steps
    (never when it is 0), once per step. Counting optimizer steps, not micro-batches, keeps the
    schedule independent of gradient accumulation.
    """
    if last_refresh is None:
        return True
    return refresh_every > 0 and step % refresh_every == 0 and step != last_refresh


# --------------------------------------------------------------------------- the method


@dataclass
class OGPSA(Method):
    """Orthogonal gradient projection: remove from each update its component in a low-rank subspace of reference gradients.

    Paper: Sun, Zhang, Wang, Zhu, Su & Zhong, 2026, "Safety Alignment as Continual Learning:
    Mitigating the Alignment Tax via Orthogonal Gradient Projection" (OGPSA), arXiv:2602.07892;
    code: github.com/SunGL001/OGPSA (LLaMA-Factory stages sft_pg / dpo_pg).

    What we compute:
      * a reference set: ``n_ref`` records, a seeded random subset (same subset at every refresh)
        of ``reference`` (a data source loaded with ``load_records``) or, when ``reference`` is
        None, of the safety buffer (``ctx.safety_data``);
      * per trainable tensor W, the matrix G_W (n_ref x numel(W)) of per-sample gradients of each
        reference sample's mean NLL over its response tokens, at the current weights: one
        forward/backward per sample (batch of one, no padding), in eval mode (no dropout, no RNG
        use), with ``torch.autograd.grad`` so ``.grad`` is untouched (as EWC's Fisher pass);
      * U_W = the top-``rank`` right singular vectors of G_W (d x k, orthonormal, float32, on the
        training device), dropping numerically-zero directions (singular value < 1e-6 x the
        largest): LoRA's A matrices have zero gradients while B = 0, so they get an empty basis
        until a refresh after B has moved;
      * every optimizer step, in ``before_step`` (the full, accumulated, reduced, unclipped
        gradient): g_W <- g_W - U_W (U_W^T g_W) for every trainable tensor, written back into
        ``.grad``; clipping and the optimizer then see the projected gradient: the steepest
        descent direction that leaves the reference losses unchanged to first order along the
        protected directions (for every reference sample exactly when n_ref <= rank).
        The projection is linear and applied once per step, so it is independent of gradient
        accumulation. As in the paper's runs, the optimizer (AdamW here) then preconditions the
        projected gradient, so orthogonality holds exactly for the gradient, and for the weight
        change only up to Adam's per-coordinate scaling;
      * bases are computed at the start of the first step (the starting weights) and recomputed
        at the start of every ``refresh_every``-th optimizer step at the then-current weights.
    Logged each step (``train_log.jsonl``): ``ogpsa_removed_frac`` = ||g - Pg|| / ||g|| over all
    trainable tensors (the fraction of the gradient norm the projection removed; its square is
    the energy fraction), ``ogpsa_grad_norm`` (before projection), ``ogpsa_basis_dim`` (sum of
    per-tensor ranks), ``ogpsa_refreshed`` and ``ogpsa_last_refresh``.

    Two uses:
      (1) The paper's: protect general capability while ALIGNING. Reference = capability data,
          in the align step: ``align.train.methods: [ogpsa]`` and
          ``align.train.method_args.ogpsa.reference: starter:general_helpful``. The align step has
          no safety buffer, so ``reference`` must be set there; the method loads it itself.
      (2) Protect safety while fine-tuning on user data (reference = the safety buffer, the
          default, or e.g. ``starter:safety_refusals``): the user's updates may not move the
          safety losses to first order, as in safety-subspace projections (SPF-style).

    Hyperparameters:
      rank = 8: k, directions kept per tensor. Our choice: the paper's k could not be retrieved
        from our sources; the authors' released code keeps 1 direction per reference dataset (the
        normalized mean reference gradient of each tensor, 1 or 2 datasets), so 8 per-sample SVD
        directions is a strictly larger protected subspace that still contains, approximately, the
        mean direction (the top singular vector of agreeing gradients). Rank per tensor is at
        most min(k, n_ref, numel(W)).
      n_ref = 32: reference samples. Our choice: the released scripts use 200 samples for the
        mean gradient (--base_num_samples 200), but per-sample SVD costs n_ref forward/backward
        passes per refresh and a transient n_ref x (trainable params) float32 matrix (313 MB at
        32 for SmolLM2-135M's default LoRA), so we keep it small; raise it for a better estimate.
      refresh_every = 30: optimizer steps between recomputations of the bases, at multiples of 30
        (0 = never, bases from the starting weights only). From the released SFT script
        (--base_num_steps 30, recomputed when global_step % 30 == 0; the DPO script uses 5).
      reference = None: the safety buffer (``data.safety``), for use (2); any data source name
        for use (1) (``starter:general_helpful`` for capability data).
      seed = None: the reference subsample's seed, train.seed + 104729; any int pins it.

    Deviations: (a) the subspace is the top-k SVD of *per-sample* gradients (the paper's
    "low-rank subspace from gradients on a small reference set"), where the released code uses
    the mean gradient of each reference dataset; (b) reference gradients in eval mode (the code
    uses train mode; identical without dropout, and it keeps the run's RNG untouched, so resume
    and accumulation stay exact); (c) projection once per optimizer step on the accumulated
    gradient instead of per-backward tensor hooks (equal, the projection is linear).

    Memory: bases are numel(trainable) x k x 4 bytes (LoRA r=8 on all 7 projections of
    SmolLM2-135M: 2,442,240 params x 8 x 4 = 78.2 MB; full fine-tuning: 135M x 8 x 4 = 4.3 GB).
    Resume: the bases, the step of the last refresh and the counters are in ``state_dict``, so a
    resumed run projects with exactly the bases computed at the right weights.
    """

    name: ClassVar[str] = "ogpsa"
    shardable: ClassVar[bool] = False  # see Method.shardable
    needs_safety_data: ClassVar[bool] = False  # only when reference is None (checked in setup)

    rank: int = bounded(8, ge=1)
    n_ref: int = bounded(32, ge=1)
    refresh_every: int = bounded(30, ge=0)
    reference: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reference is not None and (not isinstance(self.reference, str) or not self.reference.strip()):
            raise ConfigError(f"ogpsa.reference must be a data source name or null (got {self.reference!r})")
        self.bases: dict[str, torch.Tensor] | None = None
        self.last_refresh: int | None = None
        self.refreshes = 0
        self._samples: list = []
        self._device: torch.device | None = None
        self._refreshed_now = False
        self._last: dict[str, float] = {}

    # setup -----------------------------------------------------------------------

    def reference_records(self, ctx) -> list:
        """The ``n_ref`` reference records: a seeded random subset of ``reference`` or of the safety buffer."""
        from ..errors import UserInputError

        seed = self.seed if self.seed is not None else ctx.config.seed + SEED_OFFSET
        if self.reference is not None:
            from ..data.readers import load_records

            return load_records(self.reference, require_response=True, limit=self.n_ref, seed=seed)
        if not ctx.safety_data:
            raise UserInputError(
                "ogpsa: no reference data: set train.method_args.ogpsa.reference (e.g. starter:general_helpful) "
                "or data.safety (the safety buffer is the default reference)"
            )
        records = list(ctx.safety_data)
        random.Random(seed).shuffle(records)  # the same subsampling as load_records(limit=...)
        return records[: self.n_ref]

    def uses_safety_data(self) -> bool:
        return self.reference is None  # the safety buffer is the default reference set

    carries: ClassVar[str] = (
        "its subspace, grown: the reference set of every later stage adds n_ref samples of each past "
        "task, so the protected directions cover safety and the tasks already learned"
    )

    def carry_state(self) -> dict[str, Any] | None:
        from .base import past_task_sample

        past = list(getattr(self, "_past_tasks", []))
        return {"past_tasks": past + past_task_sample(self._stage_records, self.n_ref, seed=len(past))}

    def load_carry(self, state: dict[str, Any] | None) -> None:
        self._past_tasks = list((state or {}).get("past_tasks", []))

    def setup(self, ctx) -> None:
        from ..errors import UserInputError

        self._stage_records = list(ctx.user_data)
        reference = self.reference_records(ctx) + list(getattr(self, "_past_tasks", []))
        samples = [e for e in ctx.encode(reference) if e.n_label_tokens > 0]
        if not samples:
            raise UserInputError("ogpsa: no reference sample left after encoding (all too long or without a response)")
        self._samples = samples
        self._device = ctx.device
        # The bases themselves are computed at the start of the first step (same weights as here), so a
        # resumed run, whose bases come from the checkpoint, does not pay for a useless computation.

    def compute_bases(self, ctx) -> dict[str, torch.Tensor]:
        """Per-tensor bases at the current weights (eval mode; the model's mode is restored)."""
        from ..data.tokenize import collate
        from ..train.context import forward_with_labels

        model = ctx.unwrapped_model()
        params = ctx.trainable()
        pad = ctx.tokenizer.pad_token_id

        def sample_loss(enc):
            def fn():
                out = forward_with_labels(model, ctx.to_device(collate([enc], pad)))
                return out.loss_sum / out.n_tokens if out.n_tokens else None

            return fn

        was_training = model.training
        model.eval()
        mine = ctx.local_share(self._samples)  # each process its block of the reference set; rows joined below
        try:
            if mine:
                G = per_sample_gradients([sample_loss(e) for e in mine], params)
            else:
                G = {n: torch.zeros(0, p.numel(), device=p.device) for n, p in params.items()}
        finally:
            model.train(was_training)
        G = {n: ctx.cat_across(g) for n, g in G.items()}
        bases = {}
        for n in list(G):
            bases[n] = subspace_basis(G.pop(n), self.rank).to(params[n].device)  # free each G_W as we go
        return bases

    def refresh(self, ctx) -> None:
        self.bases = self.compute_bases(ctx)
        self.last_refresh = ctx.step
        self.refreshes += 1
        self._refreshed_now = True

    # per step ---------------------------------------------------------------------

    def start_step(self, ctx) -> None:
        self._refreshed_now = False
        if refresh_due(ctx.step, self.refresh_every, self.last_refresh if self.bases is not None else None):
            self.refresh(ctx)

    def before_step(self, ctx) -> None:
        if self.bases is None:  # before_step without start_step (direct use): bases at the current weights
            self.refresh(ctx)
        total = removed = 0.0
        with torch.no_grad():
            for name, p in ctx.trainable().items():
                if p.grad is None:
                    continue
                g = p.grad
                total += float(g.double().pow(2).sum())
                U = self.bases.get(name)
                if U is None or U.shape[1] == 0:
                    continue
                if U.device != g.device:
                    U = self.bases[name] = U.to(g.device)
                new = project_out(g, U)
                removed += float((g.double() - new.double()).pow(2).sum())
                g.copy_(new)
        self._last = {
            "ogpsa_removed_frac": math.sqrt(removed / total) if total > 0 else 0.0,
            "ogpsa_grad_norm": math.sqrt(total),
        }

    def log_fields(self, ctx) -> dict[str, Any]:
        return {
            **self._last,
            "ogpsa_basis_dim": sum(int(U.shape[1]) for U in (self.bases or {}).values()),
            "ogpsa_refreshed": self._refreshed_now,
            "ogpsa_last_refresh": self.last_refresh,
        }

    def basis_bytes(self) -> int:
        return sum(U.numel() * U.element_size() for U in (self.bases or {}).values())

    # resume ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.bases is None:
            return {}
        return {
            "bases": {n: U.detach().cpu() for n, U in self.bases.items()},
            "last_refresh": self.last_refresh,
            "refreshes": self.refreshes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        dev = self._device
        self.bases = {n: (U.to(dev) if dev is not None else U) for n, U in state["bases"].items()}
        self.last_refresh = int(state["last_refresh"])
        self.refreshes = int(state.get("refreshes", 0))


