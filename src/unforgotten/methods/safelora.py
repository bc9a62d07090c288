"""Safe LoRA: project low-similarity LoRA updates onto the alignment subspace, after fine-tuning."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..bounds import bounded, one_of
from ..errors import ConfigError, UserInputError
from ..models import is_peft
from .base import Method

if TYPE_CHECKING:  # pragma: no cover
    from ..train.context import TrainContext

SELECT_MODES = ("threshold", "number")


# --------------------------------------------------------------------------- pure functions


def alignment_projector(v: torch.Tensor, exact: bool = False) -> torch.Tensor:
    """The (out x out) matrix that maps a layer update onto the alignment direction ``V``.

    ``exact=False`` (the paper's, and its code's, choice): ``C = V V^T / ||V||_F``. It is symmetric
    positive semi-definite with eigenvalues ``s_i^2 / ||V||_F`` (``s_i`` the singular values of V),
    so it is NOT idempotent in general: it is a projector only when V has rank one and unit
    Frobenius norm. The paper uses it as a cheap stand-in for the exact projector.

    ``exact=True``: the orthogonal projector onto V's column space, ``U_r U_r^T`` from the SVD
    (``r`` = numerical rank); this equals ``V (V^T V)^{-1} V^T`` when V has full column rank.
    Idempotent and symmetric. Note that for a full-row-rank V (a square, full-rank alignment
    update, the usual case for real models) it is the identity.

    ``V = 0`` gives the zero matrix (there is no alignment direction to keep).
    """
    v = v.float()
    if exact:
        u = _column_basis(v)
        return u @ u.T
    norm = torch.linalg.matrix_norm(v)  # Frobenius
    if norm == 0:
        return torch.zeros(v.shape[0], v.shape[0], dtype=v.dtype, device=v.device)
    return (v @ v.T) / norm


def project_lora_b(v: torch.Tensor, b: torch.Tensor, exact: bool = False) -> torch.Tensor:
    """``C @ B`` for the projector of :func:`alignment_projector`, without forming the out x out C.

    ``V (V^T B) / ||V||_F`` (paper) or ``U_r (U_r^T B)`` (exact). Setting ``lora_B <- C lora_B``
    turns the LoRA update ``B A`` into ``C B A`` and keeps the adapter a LoRA adapter.
    """
    v, b32 = v.float(), b.float()
    if exact:
        u = _column_basis(v)
        return u @ (u.T @ b32)
    norm = torch.linalg.matrix_norm(v)
    if norm == 0:
        return torch.zeros_like(b32)
    return v @ (v.T @ b32) / norm


def cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    """Cosine similarity of the two tensors flattened (0.0 when either is zero)."""
    x, y = x.reshape(-1).double(), y.reshape(-1).double()
    nx, ny = x.norm(), y.norm()
    if nx == 0 or ny == 0:
        return 0.0
    return float((x @ y) / (nx * ny))


def update_similarity(projected_b: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> float:
    """The paper's layer score: cosine between the projected update ``(C B) A`` and the update ``B A``.

    LoRA's scaling factor multiplies both and cancels. For the paper's C the score lies in
    ``[0, 1]`` (C is positive semi-definite).
    """
    return cosine(projected_b.float() @ a.float(), b.float() @ a.float())


def select_layers(similarities: dict[str, float], select: str, threshold: float, num_proj_layers: int) -> set[str]:
    """Which layers to project.

    ``"threshold"``: every layer whose similarity is at or below ``threshold`` (``<=``, as the
    reference code). ``"number"``: the ``num_proj_layers`` layers with the lowest similarity (ties
    broken by the dict's order, i.e. the model's module order).
    """
    if select == "threshold":
        return {n for n, s in similarities.items() if s <= threshold}
    if select == "number":
        order = sorted(similarities, key=lambda n: similarities[n])  # stable: model order on ties
        return set(order[:num_proj_layers])
    raise ValueError(f"unknown select mode {select!r}")


def _column_basis(v: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis (columns) of V's column space, numerical rank as ``matrix_rank``'s default."""
    if v.numel() == 0:
        return v.new_zeros(v.shape[0], 0)
    u, s, _ = torch.linalg.svd(v, full_matrices=False)
    if s.numel() == 0 or s[0] == 0:
        return v.new_zeros(v.shape[0], 0)
    tol = s[0] * max(v.shape) * torch.finfo(v.dtype).eps
    return u[:, s > tol]


# --------------------------------------------------------------------------- LoRA plumbing


@dataclass
class LayerScore:
    name: str  # the adapted weight's plain HF name, e.g. model.layers.0.self_attn.q_proj.weight
    similarity: float
    projected_b: torch.Tensor  # C @ lora_B, computed from copies; applied only if selected
    alignment_norm: float
    update_norm: float


def lora_layers(model, adapter: str) -> dict[str, Any]:
    """The LoRA-adapted modules of a peft model by the plain HF name of the weight they adapt."""
    from peft.tuners.lora import LoraLayer

    out: dict[str, Any] = {}
    for name, mod in model.get_base_model().named_modules():
        if not isinstance(mod, LoraLayer) or adapter not in getattr(mod, "lora_A", {}):
            continue
        if adapter in getattr(mod, "lora_variant", {}):
            raise ConfigError(f"safelora supports plain LoRA only; {name} uses a LoRA variant (e.g. DoRA)")
        if mod.lora_A[adapter].weight.ndim != 2:
            raise ConfigError(f"safelora supports linear LoRA layers only; {name} is not one")
        out[f"{name}.weight"] = mod
    return out


def alignment_matrix(
    name: str, aligned: dict[str, torch.Tensor], base: dict[str, torch.Tensor], fan_in_fan_out: bool
) -> torch.Tensor:
    """``V = W_aligned - W_base`` for one weight, matched by NAME, as (out, in)."""
    for label, sd in (("aligned", aligned), ("pre-alignment base", base)):
        if name not in sd:
            raise UserInputError(f"safelora: {name} is not in the {label} weights; the models must share an architecture")
    if aligned[name].shape != base[name].shape:
        raise UserInputError(
            f"safelora: {name} has shape {tuple(aligned[name].shape)} in the aligned model but "
            f"{tuple(base[name].shape)} in the pre-alignment base"
        )
    v = aligned[name].float() - base[name].to(aligned[name].device).float()
    return v.T if fan_in_fan_out else v


def score_layers(layers: dict[str, Any], adapter: str, aligned: dict[str, torch.Tensor], base: dict[str, torch.Tensor],
                 exact: bool = False) -> list[LayerScore]:
    """Score every LoRA layer from copies of its weights; mutates nothing."""
    scores = []
    with torch.no_grad():
        for name, mod in layers.items():
            a = mod.lora_A[adapter].weight.detach().float().clone()
            b = mod.lora_B[adapter].weight.detach().float().clone()
            v = alignment_matrix(name, aligned, base, bool(getattr(mod, "fan_in_fan_out", False)))
            if v.shape != (b.shape[0], a.shape[1]):
                raise UserInputError(f"safelora: {name}: alignment matrix {tuple(v.shape)} does not match the LoRA update "
                                     f"{(b.shape[0], a.shape[1])}")
            v = v.to(b.device)
            pb = project_lora_b(v, b, exact)
            update_norm = float(torch.linalg.matrix_norm(b @ a)) * abs(float(mod.scaling[adapter]))
            scores.append(LayerScore(name, update_similarity(pb, b, a), pb, float(torch.linalg.matrix_norm(v)), update_norm))
    return scores


def apply_projection(layers: dict[str, Any], adapter: str, scores: list[LayerScore], chosen: set[str]) -> None:
    """``lora_B <- C lora_B`` for the chosen layers (the second pass; scores were computed first)."""
    with torch.no_grad():
        for s in scores:
            if s.name in chosen:
                w = layers[s.name].lora_B[adapter].weight
                w.copy_(s.projected_b.to(device=w.device, dtype=w.dtype))


# --------------------------------------------------------------------------- the method


@dataclass
class SafeLoRA(Method):
    """Safe LoRA: project the LoRA updates least aligned with the safety direction onto it, post hoc.

    Paper: Chia-Yi Hsu, Yu-Lin Tsai, Chih-Hsun Lin, Pin-Yu Chen, Chia-Mu Yu, Chun-Ying Huang
    (2024). "Safe LoRA: the Silver Lining of Reducing Safety Risks when Finetuning Large Language
    Models". NeurIPS 2024, arXiv:2405.16833. Reference code: github.com/IBM/SafeLoRA (also in peft
    as ``peft.utils.safelora``).

    After fine-tuning, per LoRA-adapted weight: the alignment matrix ``V = W_aligned - W_base``
    (the pre-alignment base vs the aligned model, matched by name), the projection
    ``C = V V^T / ||V||_F`` (the paper's formula; see :func:`alignment_projector`), the LoRA update
    ``dW = B A * scaling`` and its score ``cos(vec(C dW), vec(dW))``. Layers scoring at or below
    ``threshold`` get ``B <- C B`` (so the update becomes ``C dW`` and the adapter stays a LoRA
    adapter, saved as ``adapter/``). All layers are scored first, from copies, and only then is
    anything changed; ``safelora.json`` in the output directory lists every layer's similarity and
    whether it was projected.

    Hyperparameters:
        threshold: 0.5 -- the cosine threshold tau; the reference code's default
            (``SafeLoRAConfig.threshold = 0.5``, also peft's).
        select: "threshold" -- project every layer with similarity <= threshold. The paper's
            other variant, "number", projects the ``num_proj_layers`` lowest-similarity layers
            (the reference code's default mode; we default to the threshold form, which the
            paper presents as the method's definition).
        num_proj_layers: 10 -- layers projected in "number" mode (the reference default).
        exact_projection: False -- use the paper's ``C = V V^T/||V||_F``. True uses the exact
            orthogonal projector ``V (V^T V)^{-1} V^T`` (``U_r U_r^T`` via SVD), which the paper
            names as what C approximates; for a full-rank square V it is the identity, i.e. a
            no-op, so it is mostly of use for low-rank alignment updates (e.g. a LoRA-aligned model).

    Deviations from the reference code, on purpose: parameters are matched by name, not by their
    order in ``named_parameters()``; scoring never mutates the model (the reference overwrites
    LoRA weights during its first pass, so "number" mode's second pass scores already-projected
    weights); the similarity is not rounded to 5 decimals. A layer whose ``V`` is zero gets
    ``C = 0`` (its update is removed if selected). LoRA only: full fine-tuning is a ConfigError
    (at setup), and ``safelora`` must come before ``magmax`` when composed. The optional LoRA bias
    (``lora_bias=True``) is left as is.
    """

    name = "safelora"
    shardable: ClassVar[bool] = False  # see Method.shardable

    threshold: float = bounded(0.5, ge=-1, le=1)
    select: str = one_of("threshold", SELECT_MODES)
    num_proj_layers: int = bounded(10, ge=0)
    exact_projection: bool = False

    def setup(self, ctx: "TrainContext") -> None:
        model = ctx.unwrapped_model()
        if not is_peft(model):
            raise ConfigError(
                "method 'safelora' works only with LoRA fine-tuning (it projects the LoRA update); "
                "it cannot be used with full fine-tuning (model.full_finetune)"
            )
        if not ctx.base_source:
            raise UserInputError("method 'safelora' needs the pre-alignment base model (base_source / model.source)")
        # fail now, not after training: names/shapes must match and alignment must have changed something
        layers = lora_layers(model, _adapter(model))
        if not layers:
            raise ConfigError("method 'safelora': the model has no linear LoRA layers")
        aligned, base = ctx.aligned_state_dict(), ctx.base_state_dict()
        norms = [float(alignment_matrix(n, aligned, base, bool(getattr(m, "fan_in_fan_out", False))).abs().max())
                 for n, m in layers.items()]
        if max(norms) == 0:
            raise UserInputError(
                "method 'safelora': the aligned weights equal the pre-alignment base at every LoRA layer, so there "
                "is no alignment direction to project on; base_source must be the model BEFORE safety alignment"
            )

    def finalize(self, ctx: "TrainContext") -> None:
        model = ctx.unwrapped_model()
        if not is_peft(model):
            raise ConfigError("method 'safelora' needs a LoRA model at finalize; list it before 'magmax' in train.methods")
        adapter = _adapter(model)
        layers = lora_layers(model, adapter)
        scores = score_layers(layers, adapter, ctx.aligned_state_dict(), ctx.base_state_dict(), self.exact_projection)
        chosen = select_layers({s.name: s.similarity for s in scores}, self.select, self.threshold, self.num_proj_layers)
        apply_projection(layers, adapter, scores, chosen)
        report = {
            "select": self.select, "threshold": self.threshold, "num_proj_layers": self.num_proj_layers,
            "exact_projection": self.exact_projection, "layers_total": len(scores), "layers_projected": len(chosen),
            "layers": [
                {"name": s.name, "similarity": s.similarity, "projected": s.name in chosen,
                 "alignment_norm": s.alignment_norm, "update_norm": s.update_norm}
                for s in scores
            ],
        }
        if not ctx.is_main:
            return
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        (ctx.output_dir / "safelora.json").write_text(json.dumps(report, indent=2))

    def state_dict(self) -> dict[str, Any]:
        return {}


def _adapter(model) -> str:
    active = model.active_adapter
    if isinstance(active, (list, tuple)):
        if len(active) != 1:
            raise ConfigError(f"safelora: expected one active LoRA adapter, got {list(active)}")
        active = active[0]
    return active
