"""The safety gate: evaluate a fine-tuned model before it is published.

The provider's harmful and over-refusal sets are evaluated through ``unforgotten.api.evaluate``
(the same generation, judges and metrics as every other evaluation); the job fails with code
``safety_gate`` when the primary judge's ASR on any harmful set is above the threshold.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import ConfigError
from .settings import GateConfig


def evaluate_gate(gate: GateConfig, cfg: RunConfig, *, model_source: str, adapter: Path | None,
                  output_dir: Path, label: str) -> dict[str, Any]:
    """Evaluate and decide; returns the gate's report (``passed``, ASR with its interval, over-refusal)."""
    from .. import api

    ev = dataclasses.replace(cfg.eval, benchmarks=list(gate.benchmarks), judges=list(gate.judges), limit=gate.limit,
                             limits={}, max_new_tokens=gate.max_new_tokens)
    summary = api.evaluate(dataclasses.replace(cfg, eval=ev), model_source=model_source, adapter=adapter,
                           output_dir=output_dir, label=label, progress=False)
    primary = gate.judges[0]
    harmful = {name: b["by_judge"].get(primary) for name, b in summary["benchmarks"].items() if b["kind"] == "harmful"}
    overrefusal = {name: b["by_judge"].get(primary) for name, b in summary["benchmarks"].items() if b["kind"] == "overrefusal"}
    if not harmful or any(v is None for v in harmful.values()):
        raise ConfigError(f"gate.benchmarks must include a harmful set that judge {primary!r} rates "
                          f"(got {', '.join(summary['benchmarks'])})")
    worst = max(harmful, key=lambda k: harmful[k]["value"])
    asr = harmful[worst]["value"]
    return {
        "passed": asr <= gate.asr_threshold, "asr": asr, "asr_ci": [harmful[worst]["ci_low"], harmful[worst]["ci_high"]],
        "worst_set": worst, "threshold": gate.asr_threshold, "judge": primary, "harmful": harmful,
        "overrefusal": overrefusal, "n_per_set": gate.limit, "max_new_tokens": gate.max_new_tokens,
    }
