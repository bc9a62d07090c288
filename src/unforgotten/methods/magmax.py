"""MagMax: merge the alignment and user task vectors by maximum magnitude, after fine-tuning."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..bounds import bounded
from ..errors import UserInputError
from ..models import is_peft
from .base import Method

if TYPE_CHECKING:  # pragma: no cover
    from ..train.context import TrainContext


# --------------------------------------------------------------------------- pure functions


def max_magnitude(*deltas: torch.Tensor) -> torch.Tensor:
    """Elementwise, the entry of largest absolute value among same-shaped tensors.

    Ties (equal ``|x|``) go to the LATER tensor, as in the reference ``merge_max_abs``
    (``torch.where(cur.abs() >= best.abs(), cur, best)``). For MagMax here the order is
    ``(delta_align, delta_user)``, so a tie with opposite signs takes the user's entry.
    """
    if not deltas:
        raise ValueError("max_magnitude needs at least one tensor")
    best = deltas[0]
    for cur in deltas[1:]:
        if cur.shape != best.shape:
            raise ValueError(f"shape mismatch: {tuple(cur.shape)} vs {tuple(best.shape)}")
        best = torch.where(cur.abs() >= best.abs(), cur, best)
    return best


def magmax_merge(base: torch.Tensor, aligned: torch.Tensor, user: torch.Tensor, lam: float) -> torch.Tensor:
    """``base + lam * max_magnitude(aligned - base, user - base)`` (in float32, cast back to base's dtype)."""
    b = base.float()
    merged = b + lam * max_magnitude(aligned.float() - b, user.float() - b)
    return merged.to(base.dtype)


def merge_state_dicts(
    base: dict[str, torch.Tensor], aligned: dict[str, torch.Tensor], user: dict[str, torch.Tensor], lam: float
) -> dict[str, torch.Tensor]:
    """MagMax per parameter, matched BY NAME. Every name of ``user`` must be in ``base`` and
    ``aligned`` with the same shape; anything else is an error naming the parameters."""
    _check_names(base, aligned, user)
    return {n: magmax_merge(base[n], aligned[n], user[n], lam) for n in user}


def _check_names(base: dict[str, torch.Tensor], aligned: dict[str, torch.Tensor], user: dict[str, torch.Tensor]) -> None:
    for label, other in (("pre-alignment base", base), ("aligned", aligned)):
        missing = [n for n in user if n not in other]
        if missing:
            raise UserInputError(
                f"magmax: {len(missing)} parameter(s) of the fine-tuned model are not in the {label} weights, "
                f"e.g. {missing[:5]}; the models must share an architecture"
            )
        bad = [f"{n}: {tuple(other[n].shape)} vs {tuple(user[n].shape)}" for n in user if other[n].shape != user[n].shape]
        if bad:
            raise UserInputError(f"magmax: shape mismatch between the {label} and fine-tuned weights: {bad[:5]}")


# --------------------------------------------------------------------------- the method


@dataclass
class MagMax(Method):
    """MagMax: after fine-tuning, merge the alignment and user task vectors by maximum magnitude.

    Paper: Daniel Marczak, Bartłomiej Twardowski, Tomasz Trzciński, Sebastian Cygert (2024).
    "MagMax: Leveraging Model Merging for Seamless Continual Learning". ECCV 2024,
    arXiv:2407.06322. Reference code: github.com/danielm1405/magmax (``merge_max_abs``).

    Continual learning by sequential fine-tuning + merging: task 1 is the provider's alignment
    (``W_aligned``, fine-tuned from the pre-alignment ``W_base``), task 2 the user's fine-tune
    (``W_user``, fine-tuned from ``W_aligned``: with LoRA, ``W_aligned`` + the merged adapter).
    Task vectors are taken against the pre-trained base, as in the paper's sequential setting:
    ``d_align = W_aligned - W_base``, ``d_user = W_user - W_base``. Per parameter, elementwise, the
    merged vector keeps the entry of largest magnitude; the result is
    ``W_base + lam * maxmag(d_align, d_user)``. Every floating-point parameter is merged, including
    those the fine-tune did not touch (with LoRA, e.g. embeddings and norms: there
    ``d_user == d_align``, so the merge gives ``W_base + lam * d_align``).
    Parameters are matched by name (never by order); a missing name or a shape mismatch is an
    error.

    Hyperparameters:
        lam: 0.5 -- the paper's scaling coefficient for MagMax (the released
            ``merge_splitted.py`` evaluates ``merge_max_abs`` with ``scaling_coef = 0.5``, one
            fixed value for all its benchmarks, not tuned per task).

    Ties (``|d_align| == |d_user|``) take the user's entry, as the reference's ``>=``.
    Output: the merged plain transformers model replaces ``ctx.model`` (saved as ``model/``, not
    an adapter) and ``magmax.json`` records the share of entries taken from the user vector.
    Needs the pre-alignment base (``base_source``). With full fine-tuning, setup() keeps a frozen
    copy of the aligned weights (one model of memory). Put ``magmax`` LAST among composed methods:
    after it the model is no longer a LoRA model (SafeLoRA, for one, must run before it).
    """

    name = "magmax"
    shardable: ClassVar[bool] = False  # see Method.shardable
    replaces_model = True

    lam: float = bounded(0.5, gt=0)

    def setup(self, ctx: "TrainContext") -> None:
        if not ctx.base_source:
            raise UserInputError("method 'magmax' needs the pre-alignment base model (base_source / model.source)")
        if not is_peft(ctx.unwrapped_model()):
            ctx.snapshot_reference()  # full fine-tuning: keep W_aligned

    def finalize(self, ctx: "TrainContext") -> None:
        model = ctx.unwrapped_model()
        # clone: with LoRA these tensors are the base layers, which merge_and_unload changes in place
        aligned = {n: t.detach().clone() for n, t in ctx.aligned_state_dict().items()}
        plain = model.merge_and_unload() if is_peft(model) else model
        base = ctx.base_state_dict()
        targets = _float_tensors(plain)
        user = {n: t.detach() for n, t in targets.items()}
        _check_names(base, aligned, user)
        if all(torch.equal(base[n], aligned[n].to(base[n].device)) for n in user):  # base loads on the CPU
            warnings.warn(
                "magmax: the aligned weights equal the pre-alignment base (no alignment task vector); "
                "the merge reduces to base + lam * (W_user - base)", stacklevel=2,
            )
        n_total = n_user = 0
        with torch.no_grad():
            for n, t in targets.items():
                b = base[n].to(t.device)
                da, du = aligned[n].to(t.device).float() - b.float(), t.float() - b.float()
                pick = max_magnitude(da, du)
                n_user += int(((du.abs() >= da.abs()) & (du != da)).sum())
                n_total += t.numel()
                t.copy_((b.float() + self.lam * pick).to(t.dtype))
        ctx.model = plain
        if not ctx.is_main:
            return
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        (ctx.output_dir / "magmax.json").write_text(json.dumps({
            "lam": self.lam, "parameters": len(targets), "entries": n_total,
            "from_user_vector": n_user / n_total if n_total else 0.0,
            "note": "from_user_vector = share of entries where the user's task vector won and differs from the alignment's",
        }, indent=2))

    def state_dict(self) -> dict[str, Any]:
        return {}


def _float_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's floating-point state by name, each tensor once (tied weights under their first name)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for n, t in model.state_dict(keep_vars=True).items():
        if not torch.is_floating_point(t):
            continue
        key = id(t)
        if key in seen:
            continue
        seen.add(key)
        out[n] = t.data if isinstance(t, torch.nn.Parameter) else t
    return out
