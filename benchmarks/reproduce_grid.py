"""The reproduction grid: which cells (method, p, m, seed) run, in what order, from which alignment.

Shared by ``reproduce.py`` (runs the cells) and ``reproduce_tables.py`` (tabulates them), so that
those two import in one direction: reproduce -> reproduce_tables -> reproduce_grid.
"""

from __future__ import annotations

import dataclasses

ALL_METHODS = ["sft", "safeinstr", "ewc", "lwf", "agem", "der", "refresh", "magmax", "lisa", "safelora",
               "grsap", "gradselect", "ogpsa"]
SWEEP_METHODS = ["sft", "der", "lwf", "lisa"]
BUFFER_METHODS = ["safeinstr", "der", "lisa"]  # the m sweep: methods whose main input is the buffer
N_USER = 1000
# Method arguments the grid's 125-step runs need. Lisa's paper split (100 alignment steps, then
# 900 user steps) assumes >= 1,000 steps: in 125 steps it gave 100 alignment steps and only 25
# user steps, and SST-2 accuracy stayed at the aligned model's (72.0 vs 71.1; the excluded
# result is kept in results/<tag>/excluded/). cycle_steps=10 keeps the paper's 1:9 ratio in
# cycles of 1 alignment + 9 user steps.
METHOD_SPECS = {"lisa": "lisa:cycle_steps=10"}
# Follow-up trials of a main-table result, run after the grid. SafeLoRA's threshold 0.5
# projected all 210 layers here (median similarity 0.11) and undid the fine-tune; "number" mode
# (the reference code's default) projects only the 10 least aligned layers.
TRIAL_SPECS = ["safelora:select=number"]
PARTS = ("main", "psweep", "seeds", "msweep", "trials")  # the grid's parts, in run order
# The continual stream (issue 16): three Lisa-style tasks fine-tuned one after another, two
# orderings, the methods that carry state across stages plus SFT and GradSelect, two seeds. A
# stream cell is one (method, ordering, seed): three fine-tunes and four evaluations.
STREAM_TASKS = ("sst2", "ag_news", "gsm8k")  # lisa_style_prepared/<task>/, p = 0.05 poison premixed
STREAM_METHODS = ["sft", "der", "ewc", "gradselect", "ogpsa"]
STREAM_ORDERINGS = ((0, 1, 2), (2, 1, 0))
SPLIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class Alignment:
    """How the provider aligns: safety_tuned_llamas rows (the rest is the buffer pool), whether
    the 178 starter refusals join them, and how many copies of the 125 benign-but-sensitive
    answers stand against them (the over-refusal counterweight).

    Tried (``python benchmarks/reproduce.py --only "" --align-...``; 100 AdvBench / 100
    DirectHarm4 / 100 XSTest safe prompts, keyword judge):

    * 500 rows, no starter refusals, 1 copy: ASR 36% / 88%, over-refusal 0%: too weak (an
      earlier run of this script, before results were kept per alignment);
    * 1000 rows + starter refusals, 1 copy: ASR 0% / 0%, over-refusal 62%: too strong;
    * 1000 rows + starter refusals, 2 copies (the default): ASR 0% / 0%, over-refusal 27%;
    * 600 rows + starter refusals, 2 copies: ASR 0% / 0%, over-refusal 47%. Fewer refusals
      did not mean less over-refusal: between settings this close, run-to-run variation of
      the alignment is as large as the setting's effect.
    """

    safety_rows: int = 1000
    starter_refusals: bool = True
    sensitive_copies: int = 2

    @property
    def tag(self) -> str:
        return f"align_s{self.safety_rows}{'_starter' if self.starter_refusals else ''}_sens{self.sensitive_copies}"

    @property
    def benign(self) -> list[str]:
        return (["starter:safety_refusals"] if self.starter_refusals else []) + \
            ["starter:benign_sensitive"] * self.sensitive_copies + ["starter:general_helpful"]
@dataclasses.dataclass(frozen=True)
class Cell:
    part: str
    method: str
    p: float
    m: int
    seed: int

    @property
    def name(self) -> str:
        slug = self.method.replace("+", "_").replace(":", "-").replace(";", "-").replace("=", "")
        return f"{slug}_p{self.p:g}_m{self.m}_s{self.seed}"


def grid(parts: list[str]) -> list[Cell]:
    """Cells in priority order: what a partial run should have first comes first."""
    m = N_USER * 5 // 100  # 5% of the user data
    cells: list[Cell] = []
    if "main" in parts:  # Table 1: every method, p = 0.1, seed 0
        cells += [Cell("main", meth, 0.1, m, 0) for meth in ALL_METHODS]
    if "psweep" in parts:  # Table 2: p sweep for sft / der / lwf / lisa
        cells += [Cell("psweep", meth, p, m, 0) for p in (0.0, 0.2) for meth in SWEEP_METHODS]
    if "seeds" in parts:  # the main table's second seed
        cells += [Cell("seeds", meth, 0.1, m, 1) for meth in ALL_METHODS]
    if "msweep" in parts:  # Table 3: safety-buffer size
        cells += [Cell("msweep", meth, 0.1, mm, 0) for mm in (150, 250) for meth in BUFFER_METHODS]
    if "trials" in parts:  # follow-ups of a main-table result, at the main table's setting
        cells += [Cell("trials", spec, 0.1, m, 0) for spec in TRIAL_SPECS]
    seen, out = set(), []
    for c in cells:
        if c.name not in seen:
            seen.add(c.name)
            out.append(c)
    return out


@dataclasses.dataclass(frozen=True)
class StreamCell:
    method: str
    order: tuple[int, ...]
    seed: int
    part: str = "stream"

    @property
    def name(self) -> str:
        return f"stream_{self.method}_order-{'-'.join(map(str, self.order))}_s{self.seed}"


def stream_grid(methods: list[str] | None = None, seeds: tuple[int, ...] = (0, 1),
                orders: tuple[tuple[int, ...], ...] = STREAM_ORDERINGS) -> list[StreamCell]:
    """Seed 0 of every method and ordering first, then the second seed."""
    return [StreamCell(m, o, s) for s in seeds for o in orders for m in (methods or STREAM_METHODS)]
