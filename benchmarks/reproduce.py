"""Reproduce the study's experiment design at CPU scale: one grid of fine-tunes, resumable and cached.

    python benchmarks/reproduce.py --dry-run                 # the grid, in the order it runs
    python benchmarks/reproduce.py --budget-minutes 150      # run cells until the budget is spent
    python benchmarks/reproduce.py --only aligned,main       # some parts only
    python benchmarks/reproduce.py --tables                  # tables from the results so far

Protocol (docs/benchmarks.md): the embedded SmolLM2-135M-Instruct, aligned once by our align step
on safety_tuned_llamas refusals plus benign data; fine-tuned with LoRA on the Lisa-style SST-2
files (n = 1000, p in {0, 0.1, 0.2}, BeaverTails poison) with every method; evaluated on AdvBench
and DirectHarm4 (ASR, keyword + learned judges), XSTest safe prompts (over-refusal) and SST-2 dev
in the training format (accuracy). The safety buffer for methods that use one is drawn from the
safety_tuned_llamas rows that alignment did not see.

Every cell (method, p, m, seed) writes its run under ``--out`` and, when evaluated, a result file
``benchmarks/results/reproduce/cells/<cell>.json``. A cell with a result is skipped; a cell killed
mid-training resumes from its last checkpoint; evaluation reuses the generation cache. So the
grid can be stopped at any time and continued later, in the background:

    nohup python benchmarks/reproduce.py --budget-minutes 170 > reproduce.log 2>&1 &

Several workers share one grid (each claims a cell before running it), e.g. one single-threaded
worker per core (not benchmarked against one two-thread worker; the GPU-less grid ran this way):

    for w in 1 2; do OMP_NUM_THREADS=1 nohup python benchmarks/reproduce.py --budget-minutes 170 > reproduce.$w.log 2>&1 & done
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "reproduce"

# The grid (what runs) is defined in reproduce_grid.py, which reproduce_tables.py reads too.
from reproduce_grid import (  # noqa: F401  (re-exported: other benchmarks and tests read them as reproduce.X)
    ALL_METHODS, BUFFER_METHODS, METHOD_SPECS, N_USER, PARTS, SPLIT_SEED, STREAM_METHODS, STREAM_TASKS, SWEEP_METHODS,
    TRIAL_SPECS, Alignment, Cell, StreamCell, grid, stream_grid,
)


# --------------------------------------------------------------------------- data


def _norm(text: str) -> str:
    from unforgotten.data.overlap import normalize  # the overlap check's normalization, so both agree

    return normalize(text)


def prepare_data(data_dir: Path, work: Path, n_align: int) -> dict[str, str]:
    """Split safety_tuned_llamas into alignment rows and a disjoint buffer pool (written under
    ``work``, never into the project), and name every source the grid uses."""
    from unforgotten.data import load_records

    work.mkdir(parents=True, exist_ok=True)
    safety = load_records(str(data_dir / "safety_tuned_llamas/safety_only_data_Instructions.json"), require_response=True)
    order = list(range(len(safety)))
    random.Random(SPLIT_SEED).shuffle(order)
    align_rows = [safety[i] for i in order[:n_align]]
    align_prompts = {_norm(r["messages"][0]["content"]) for r in align_rows}
    # duplicates of an alignment prompt elsewhere in the file must not leak into the buffer
    pool = [safety[i] for i in order[n_align:] if _norm(safety[i]["messages"][0]["content"]) not in align_prompts]
    paths = {"align_safety": work / "safety_align.jsonl", "buffer_pool": work / "safety_buffer_pool.jsonl"}
    for key, rows in (("align_safety", align_rows), ("buffer_pool", pool)):
        text = "".join(json.dumps({"messages": r["messages"], "id": r.get("id")}) + "\n" for r in rows)
        # unchanged files are left alone, and a rewrite is atomic: a second worker started at the
        # same time never reads half a file
        if not paths[key].is_file() or paths[key].read_text() != text:
            tmp = paths[key].with_name(paths[key].name + f".{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.replace(paths[key])
    lisa = data_dir / "lisa_style_prepared/sst2"
    return {
        "align_safety": str(paths["align_safety"]),
        "buffer_pool": str(paths["buffer_pool"]),
        **{f"user_p{p:g}": str(lisa / f"train_merged_n1000_p{p:g}.json") for p in (0, 0.1, 0.2)},
    }


# Training data the package ships: checked against the same evaluation sets as the grid's.
SHIPPED_TRAINING = ["align_refusals", "align_benign", "align_dev_harmful", "align_dev_benign", "safety_refusals",
                    "benign_sensitive", "general_helpful", "harmful_compliance", "task_train"]
OVERLAP_EVALS = ["advbench", "directharm4", "xstest", "sst2-lisa", "starter-harmful", "starter-benign",
                 "starter-sentiment"]


def overlap_check(sources: dict[str, str], data_dir: Path) -> dict[str, Any]:
    """Every training prompt set against every evaluation prompt set in ../shared/data and the
    package: exact matches, shared 8-grams and near duplicates (unforgotten.data.overlap).
    ``report[train][eval]`` holds the counts and the most similar pairs; ``total_overlaps`` sums
    the evaluation prompts hit by any criterion. The align dev split counts as training data
    (hyperparameters are chosen on it), so it must be disjoint from every reported set too."""
    import csv

    from unforgotten.data import load_records
    from unforgotten.data.overlap import overlap
    from unforgotten.data.schema import prompt_text
    from unforgotten.eval.agreement import DNA_FILE
    from unforgotten.eval.benchmarks import load_benchmark

    train = {
        "align_safety": sources["align_safety"], "buffer_pool": sources["buffer_pool"],
        **{k: v for k, v in sources.items() if k.startswith("user_")},
        **{f"starter_{name}": f"starter:{name}" for name in SHIPPED_TRAINING},
    }
    eval_prompts = {e: [prompt_text(r) for r in load_benchmark(e, root=str(data_dir)).records] for e in OVERLAP_EVALS}
    # Do-Not-Answer is judge-calibration data here, not a benchmark: read its questions directly
    with open(data_dir / DNA_FILE, newline="", encoding="utf-8") as f:
        eval_prompts["do_not_answer"] = [row["question"] for row in csv.DictReader(f)]
    report: dict[str, Any] = {}
    for tname, src in train.items():
        prompts = [prompt_text(r) for r in load_records(src)]
        report[tname] = {e: overlap(prompts, ep, keep_top=1).as_dict() for e, ep in eval_prompts.items()}
    report["total_overlaps"] = sum(cell["any"] for row in report.values() if isinstance(row, dict) for cell in row.values())
    return report


def overlap_table(report: dict[str, Any]) -> str:
    """One Markdown row per training set: prompts hit (exact / 8-gram / near) and the highest
    word Jaccard similarity, per evaluation set."""
    rows = {k: v for k, v in report.items() if isinstance(v, dict)}
    evals = list(next(iter(rows.values())))
    lines = ["| training set | " + " | ".join(evals) + " |", "|---|" + "---:|" * len(evals)]
    for tname, row in rows.items():
        cells = [f"{c['exact']}/{c['ngram8']}/{c['near']} ({c['max_jaccard']:.2f})" for c in row.values()]
        lines.append(f"| {tname} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- configs


def base_config(sources: dict[str, str], data_dir: Path, out: Path, alignment: Alignment = Alignment()):
    from unforgotten.config import load_config

    return load_config(None, [
        f"output_dir={out}",
        "model.source=embedded",
        f"align.safety={sources['align_safety']}",
        f"align.benign={json.dumps(alignment.benign)}",
        f"data.user={sources['user_p0.1']}",
        "data.poison_ratio=0",  # the Lisa-style files are already mixed
        f"data.safety={sources['buffer_pool']}",
        f"data.safety_size={N_USER * 5 // 100}",
        "train.lr=1e-3", "train.epochs=1", "train.batch_size=8", "train.save_every=25",
        f"eval.data_dir={data_dir}",
        "eval.benchmarks=[advbench, directharm4, xstest, sst2-lisa]",
        "eval.judges=[keyword, learned]",
        "eval.limits={advbench: 100, directharm4: 100, xstest: 100}",
        "eval.max_new_tokens=32",
    ])


def cell_config(base, cell: Cell, sources: dict[str, str], out: Path):
    from unforgotten import api

    cfg = dataclasses.replace(
        base,
        name=cell.name,
        output_dir=str(out / "cells" / cell.name),
        data=dataclasses.replace(base.data, user=sources[f"user_p{cell.p:g}"], safety_size=cell.m, seed=cell.seed),
        train=dataclasses.replace(base.train, seed=cell.seed),
        compare=[METHOD_SPECS.get(cell.method, cell.method)],
    )
    (variant,) = api.variants(cfg)  # parses "name:key=value" method arguments like `compare` does
    return dataclasses.replace(variant, output_dir=cfg.output_dir)


# --------------------------------------------------------------------------- running


def _save(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)


def run_aligned(base, out: Path, results: Path) -> str:
    from unforgotten import api

    t0 = time.perf_counter()
    aligned = str(api.align(base, progress=False))
    result = results / "aligned.json"
    if not result.is_file():
        t1 = time.perf_counter()
        summary = api.evaluate(base, model_source=aligned, output_dir=out / "eval_aligned", label="aligned", progress=False)
        _save(result, {"label": "aligned", "align_seconds_this_call": round(t1 - t0, 1),
                       "eval_seconds": round(time.perf_counter() - t1, 1), "summary": summary})
    return aligned


def finetune_and_evaluate(cfg, aligned: str, eval_dir: Path, label: str) -> tuple[Any, dict[str, Any], float, float]:
    """Fine-tune ``cfg`` from ``aligned`` (resuming from the run's last checkpoint, if any) and
    evaluate the result; returns the training result, the summary and the train / eval seconds."""
    from unforgotten import api
    from unforgotten.train import checkpoint

    ft_dir = Path(cfg.output_dir) / "finetune"
    t0 = time.perf_counter()
    result = api.finetune(cfg, model_source=aligned, resume=checkpoint.latest(ft_dir) is not None, progress=False)
    t1 = time.perf_counter()
    adapter = result.weights_dir if result.weights_dir.name == "adapter" else None
    summary = api.evaluate(cfg, model_source=aligned if adapter else str(result.weights_dir), adapter=adapter,
                           output_dir=eval_dir, label=label, progress=False)
    return result, summary, round(t1 - t0, 1), round(time.perf_counter() - t1, 1)


def run_cell(base, cell: Cell, sources: dict[str, str], out: Path, aligned: str, results: Path) -> dict[str, Any]:
    cfg = cell_config(base, cell, sources, out)
    label = f"{cell.method} (p={cell.p:g}, m={cell.m}, seed {cell.seed})"
    result, summary, train_s, eval_s = finetune_and_evaluate(cfg, aligned, Path(cfg.output_dir) / "eval", label)
    record = {
        "cell": dataclasses.asdict(cell), "label": label,
        "train": {"steps": result.steps, "final_loss": result.final_loss, "tokens_per_s": result.tokens_per_s,
                  "seconds": train_s, "resumed_from": result.resumed_from},
        "eval_seconds": eval_s,
        "summary": summary,
    }
    _save(results / "cells" / f"{cell.name}.json", record)
    return record


# --------------------------------------------------------------------------- the stream (issue 16)


@dataclasses.dataclass(frozen=True)
class StreamSetting:
    """How big the stream part is: the full protocol by default; smaller for a CPU session."""

    n: int | None = None  # user samples per task (None: the files' 1,000)
    max_steps: int | None = None  # optimizer steps per stage (None: one epoch)
    eval_limit: int = 200  # prompts per task evaluation (GSM8K, AG News, SST-2 dev)
    general: tuple[str, ...] = ("truthfulqa_mc2", "ifeval")
    general_limit: int | None = 100
    general_max_new_tokens: int = 128

    @property
    def tag(self) -> str:
        return f"n{self.n or 'all'}_steps{self.max_steps or 'epoch'}_eval{self.eval_limit}"


def stream_config(base, setting: StreamSetting):
    """The stream's config: three Lisa-style tasks (p = 0.05 poison premixed), each evaluated in
    its own instruction format, plus the base config's safety sets and general capability."""
    from unforgotten.config import validate

    lisa = Path(base.eval.data_dir) / "lisa_style_prepared"
    users = [str(lisa / t / "train_merged_n1000_p0.05.json") for t in STREAM_TASKS]
    evals = ["sst2-lisa", "agnews-lisa", "gsm8k-lisa"]
    cfg = dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, user=users, user_eval=evals, n=setting.n),
        train=dataclasses.replace(base.train, max_steps=setting.max_steps),
        eval=dataclasses.replace(base.eval, limits={**base.eval.limits, **{e: setting.eval_limit for e in evals}},
                                 general=list(setting.general), general_limit=setting.general_limit,
                                 general_max_new_tokens=setting.general_max_new_tokens),
    )
    validate(cfg)
    return cfg


def run_stream_cell(cfg, cell: StreamCell, out: Path, aligned: str, results: Path, start: dict[str, Any]) -> dict[str, Any]:
    """One (method, ordering, seed) stream: three stages, each resumable (``stream.run_ordering``)."""
    from unforgotten import api, stream

    v = dataclasses.replace(cfg, name=cell.name, output_dir=str(out / "streams" / cell.name),
                            data=dataclasses.replace(cfg.data, seed=cell.seed, orderings=[list(cell.order)]),
                            train=dataclasses.replace(cfg.train, seed=cell.seed),
                            compare=[METHOD_SPECS.get(cell.method, cell.method)])
    (variant,) = api.variants(v)  # parses "name:key=value" method arguments like `compare` does
    v = dataclasses.replace(variant, output_dir=v.output_dir)
    t0 = time.perf_counter()
    stages = stream.run_ordering(v, list(cell.order), finetune=api.finetune, evaluate=api.evaluate, source=aligned,
                                 eval_cfg=stream.stream_eval_config(cfg),
                                 out=Path(v.output_dir), label=cell.name, resume=True, progress=False)
    summary = stream.stream_summary(stages, start, stream.task_names(cfg), list(cell.order))
    record = {"cell": dataclasses.asdict(cell), "seconds": round(time.perf_counter() - t0, 1), "stream": summary,
              "stages": [{k: st[k] for k in ("stage", "task", "adapter", "carries")} for st in stages]}
    _save(results / "streams" / f"{cell.name}.json", record)
    return record


def run_streams(base, args, out: Path, results: Path, aligned: str, start_time: float, claims: Path) -> None:
    from unforgotten import api, stream

    setting = StreamSetting(args.stream_n, args.stream_max_steps, args.stream_eval_limit,
                            tuple(g for g in args.stream_general.split(",") if g), args.stream_general_limit)
    results, out = results / f"stream_{setting.tag}", out / f"stream_{setting.tag}"
    cfg = stream_config(base, setting)
    cfg = dataclasses.replace(cfg, output_dir=str(out))
    start_path = results / "aligned.json"
    if start_path.is_file():
        start = json.loads(start_path.read_text())["summary"]
    else:
        ecfg = dataclasses.replace(cfg, eval=stream.stream_eval_config(cfg))
        start = api.evaluate(ecfg, model_source=aligned, output_dir=out / "eval_aligned", label="aligned", progress=False)
        _save(start_path, {"setting": dataclasses.asdict(setting), "summary": start})
    methods = [m for m in args.stream_methods.split(",") if m] or STREAM_METHODS
    seeds = tuple(int(x) for x in args.stream_seeds.split(","))
    for cell, elapsed in claimed_cells(stream_grid(methods, seeds), results / "streams", claims, start_time,
                                       args.budget_minutes):
        print(f"[{elapsed:5.1f} min] stream: {cell.name} ({setting.tag})", flush=True)
        rec = run_stream_cell(cfg, cell, out, aligned, results, start)
        s = rec["stream"]
        print(f"    avg acc {s.get('average_accuracy')}  BWT {s.get('backward_transfer')}  final ASR {s['final_asr']}  "
              f"{rec['seconds']:.0f}s", flush=True)
    write_stream_tables(results)


def write_stream_tables(results: Path) -> Path | None:
    """streams.md / streams.png from every finished stream cell: per method, each ordering and
    seed, then mean and worst over them."""
    from unforgotten.eval.continual import across_orderings
    from unforgotten.stream_report import write_stream_report

    cells = [json.loads(p.read_text()) for p in sorted((results / "streams").glob("*.json"))]
    start_path = results / "aligned.json"
    if not cells or not start_path.is_file():
        return None
    from unforgotten.stream import _general, _safety

    start = json.loads(start_path.read_text())["summary"]
    first = cells[0]["stream"]
    out: dict[str, Any] = {"tasks": first["tasks"], "sources": list(STREAM_TASKS), "orderings": [],
                           "start": _safety(start) | {"general": _general(start)}, "methods": {}}
    for rec in cells:
        c = rec["cell"]
        key = f"order-{'-'.join(map(str, c['order']))} seed {c['seed']}"
        out["methods"].setdefault(c["method"], {"orderings": {}})["orderings"][key] = rec["stream"]
    for m in out["methods"].values():
        m["across"] = across_orderings(m["orderings"])
    results.mkdir(parents=True, exist_ok=True)
    (results / "streams.json").write_text(json.dumps(out, indent=2))
    return write_stream_report(out, results)["markdown"]


def claimed_cells(cells: list, done: Path, claims: Path, start: float, budget_minutes: float | None):
    """Yield ``(cell, minutes elapsed)`` for each cell without a result in ``done`` (also one
    finished by another worker), claimed for this worker while the caller runs it (the claim is
    released afterwards, also when the run fails); stop once ``budget_minutes`` are spent."""
    for cell in cells:
        if (done / f"{cell.name}.json").is_file():
            continue
        elapsed = (time.perf_counter() - start) / 60
        if budget_minutes is not None and elapsed > budget_minutes:
            print(f"budget spent ({elapsed:.0f} min); stopping before {cell.name}", flush=True)
            return
        if not claim(claims, cell):
            continue  # another worker has it
        try:
            yield cell, elapsed
        finally:
            (claims / f"{cell.name}.claim").unlink(missing_ok=True)


def claim(claims: Path, cell: Cell) -> bool:
    """Take ``cell`` for this process, so that several workers (``reproduce.py`` started more than
    once, e.g. one per core) share the grid without running a cell twice. A claim whose process
    has died is taken over: its cell resumes from the dead worker's last checkpoint."""
    claims.mkdir(parents=True, exist_ok=True)
    path = claims / f"{cell.name}.claim"
    tmp = claims / f"{cell.name}.{os.getpid()}.tmp"
    tmp.write_text(str(os.getpid()))
    try:
        os.link(tmp, path)  # atomic create-if-absent, with the pid already in it
    except FileExistsError:
        try:
            pid = int(path.read_text() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and pid != os.getpid() and _alive(pid):
            return False
        path.unlink(missing_ok=True)  # stale: its worker is gone
        return claim(claims, cell)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "reproduce")
    ap.add_argument("--only", default=",".join(PARTS), help="grid parts; '' = align and evaluate the aligned model only")
    ap.add_argument("--budget-minutes", type=float, default=None, help="start no new cell after this long")
    ap.add_argument("--align-safety-rows", type=int, default=Alignment.safety_rows)
    ap.add_argument("--align-starter-refusals", action=argparse.BooleanOptionalAction, default=Alignment.starter_refusals)
    ap.add_argument("--align-sensitive-copies", type=int, default=Alignment.sensitive_copies)
    ap.add_argument("--stream-n", type=int, default=None, help="stream: user samples per task (default: all 1,000)")
    ap.add_argument("--stream-max-steps", type=int, default=None, help="stream: optimizer steps per stage (default: one epoch)")
    ap.add_argument("--stream-eval-limit", type=int, default=200, help="stream: prompts per task evaluation")
    ap.add_argument("--stream-general", default="truthfulqa_mc2,ifeval", help="stream: eval.general tasks ('' = none)")
    ap.add_argument("--stream-general-limit", type=int, default=100)
    ap.add_argument("--stream-methods", default=",".join(STREAM_METHODS))
    ap.add_argument("--stream-seeds", default="0,1")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--tables", action="store_true", help="only rebuild the tables from results so far")
    ap.add_argument("--overlap", action="store_true", help="only run the train/eval overlap check and print it")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    alignment = Alignment(args.align_safety_rows, args.align_starter_refusals, args.align_sensitive_copies)
    # results and runs are per alignment: cells fine-tuned from another aligned model do not mix
    results, out = RESULTS / alignment.tag, args.out / alignment.tag

    if args.tables:
        from reproduce_tables import write_tables

        print(write_tables(results))
        return 0
    cells = grid(parts)
    done = {p.stem for p in (results / "cells").glob("*.json")}
    if args.dry_run:
        for c in cells:
            print(f"{'done' if c.name in done else 'todo'}  {c.part:7s} {c.name}")
        if "stream" in parts:
            for c in stream_grid([m for m in args.stream_methods.split(",") if m],
                                 tuple(int(x) for x in args.stream_seeds.split(","))):
                print(f"todo?  stream  {c.name}  (3 stages)")
        print(f"{alignment.tag}: {len(cells)} cells, {sum(c.name in done for c in cells)} done")
        return 0

    start = time.perf_counter()
    sources = prepare_data(args.data, out / "data", alignment.safety_rows)
    overlap = overlap_check(sources, args.data)
    _save(results / "overlap.json", overlap)
    print(f"{alignment.tag}: train/eval prompt overlaps: {overlap['total_overlaps']}", flush=True)
    if args.overlap:
        print(overlap_table(overlap))
        return 0
    base = base_config(sources, args.data, out, alignment)
    aligned = run_aligned(base, out, results)
    claims = out / "claims"
    for cell, elapsed in claimed_cells(cells, results / "cells", claims, start, args.budget_minutes):
        print(f"[{elapsed:5.1f} min] {cell.part}: {cell.name}", flush=True)
        rec = run_cell(base, cell, sources, out, aligned, results)
        b = rec["summary"]["benchmarks"]
        print(f"    ASR advbench {b['advbench']['by_judge']['keyword']['value']:.3f}  "
              f"sst2 {b['sst2-lisa']['result']['value']:.3f}  train {rec['train']['seconds']:.0f}s  "
              f"eval {rec['eval_seconds']:.0f}s", flush=True)
    if "stream" in parts:
        run_streams(base, args, out, results, aligned, start, claims)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
