"""Safety buffer sampling: m alignment records replayed during fine-tuning.

Replay-style methods (SafeInstr mixing, Lisa's alignment phase, DER) need a small seeded sample
of safety data. ``exclude_ids`` keeps the buffer disjoint from a held-out evaluation set drawn
from the same file, so safety is never measured on examples the model rehearsed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from ..errors import UserInputError
from .schema import Record


def sample_buffer(
    records: Sequence[Record], m: int, *, seed: int, exclude_ids: Iterable[str] = ()
) -> list[Record]:
    """``m`` records drawn without replacement by ``random.Random(seed)``, skipping any whose
    ``id`` is in ``exclude_ids``. Deterministic for the same records, m, seed and exclusions."""
    if isinstance(m, bool) or not isinstance(m, int) or m < 0:
        raise UserInputError(f"buffer size m must be a non-negative integer, got m={m!r}")
    excluded = {str(i) for i in exclude_ids}
    pool = [r for r in records if str(r.get("id")) not in excluded] if excluded else list(records)
    if m > len(pool):
        dropped = len(records) - len(pool)
        raise UserInputError(
            f"buffer size m={m} but only {len(pool)} records are available "
            f"({len(records)} given, {dropped} excluded by id)"
        )
    return random.Random(seed).sample(pool, m)
