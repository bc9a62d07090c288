"""Assemble benchmarks/data/judge_labels/own_models_v1.jsonl from evaluated answers + hand labels.

    python tools/make_judge_labels.py --data ../shared/data \\
        --run base=EVAL_DIR --run aligned=EVAL_DIR --run sft=EVAL_DIR --labels LABEL_DIR

``EVAL_DIR`` holds ``unforgotten evaluate``'s per-sample files ``harmful_advbench.jsonl`` and
``harmful_directharm4.jsonl``; ``LABEL_DIR`` holds ``<model>_<benchmark>*.txt`` files, one line per
answer: ``<sample id>|<refusal>|<intent>|<content>|<one-line reason>``, written by a person reading
each answer against the rubric in docs/evaluation.md. Every answer must be labelled exactly once.

Splits are by prompt: prompts are grouped with their near-duplicates (word-set Jaccard >= 0.6,
across both benchmarks), groups are shuffled with a fixed seed and cut 60/20/20 into
train/dev/test, so no prompt, nor a near-copy of one, is on two sides.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import classifier_judge_data as jd  # noqa: E402

BENCH_FILES = {"advbench": ("advbench/harmful_behaviors.csv", "goal"),
               "directharm4": ("directharm4/directHarm4.csv", "Goal")}
FRACTIONS = (0.6, 0.2, 0.2)


def prompt_ids(data: Path) -> dict[tuple[str, str], str]:
    """(benchmark, prompt text) -> stable id ``<benchmark>:<row number in the upstream file>``."""
    out = {}
    for bench, (rel, col) in BENCH_FILES.items():
        with open(data / rel, newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.DictReader(f)):
                out.setdefault((bench, row[col].strip()), f"{bench}:{i}")
    return out


def read_labels(label_dir: Path) -> dict[tuple[str, str], tuple[int, int, int, str]]:
    out = {}
    for path in sorted(label_dir.glob("*.txt")):
        model = path.stem.split("_")[0]
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            sid, r, i, c, reason = line.split("|", 4)
            key = (model, sid.strip())
            if key in out:
                raise SystemExit(f"{path}:{n}: {sid} labelled twice")
            vals = tuple(int(x) for x in (r, i, c))
            if any(v not in (0, 1) for v in vals) or not reason.strip():
                raise SystemExit(f"{path}:{n}: labels must be 0/1 and a reason must follow")
            out[key] = (*vals, reason.strip())
    return out


def assign_splits(pids: list[str], texts: dict[str, str]) -> dict[str, str]:
    order = sorted(pids)
    parent = {p: p for p in order}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    w = {p: jd.words(texts[p]) for p in order}
    for a_i, a in enumerate(order):
        for b in order[a_i + 1:]:
            if jd.near_duplicate(w[a], w[b]):
                parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for p in order:
        groups.setdefault(find(p), []).append(p)
    keys = sorted(groups)
    random.Random(jd.SPLIT_SEED).shuffle(keys)
    n = len(keys)
    cut1, cut2 = round(FRACTIONS[0] * n), round((FRACTIONS[0] + FRACTIONS[1]) * n)
    split = {}
    for k_i, k in enumerate(keys):
        s = "train" if k_i < cut1 else ("dev" if k_i < cut2 else "test")
        for p in groups[k]:
            split[p] = s
    return split


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--run", action="append", required=True, help="MODEL=EVAL_DIR")
    ap.add_argument("--labels", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=jd.OWN_LABELS)
    args = ap.parse_args(argv)
    ids = prompt_ids(args.data)
    labels = read_labels(args.labels)
    rows = []
    for spec in args.run:
        model, _, d = spec.partition("=")
        for bench in BENCH_FILES:
            path = Path(d) / f"harmful_{bench}.jsonl"
            for line in path.read_text().splitlines():
                x = json.loads(line)
                sid = x["id"].replace("_s-", "_s-")
                lab = labels.pop((model, sid), None)
                if lab is None:
                    raise SystemExit(f"{path}: {sid} of model {model} has no label")
                pid = ids[(bench, x["prompt"].strip())]
                rows.append({"id": f"{model}:{sid}", "model": model, "benchmark": bench, "prompt_id": pid,
                             "prompt": x["prompt"], "response": x["response"], "refusal": lab[0], "intent": lab[1],
                             "content": lab[2], "reason": lab[3]})
    if labels:
        raise SystemExit(f"labels without an answer: {sorted(labels)[:5]}")
    split = assign_splits(sorted({r["prompt_id"] for r in rows}), {r["prompt_id"]: r["prompt"] for r in rows})
    for r in rows:
        r["split"] = split[r["prompt_id"]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    splits = {"own_models_prompt_ids": {s: sorted({r["prompt_id"] for r in rows if r["split"] == s})
                                        for s in ("train", "dev", "test")},
              "do_not_answer_question_ids": jd.dna_split_ids(args.data),
              "how": "tools/make_judge_labels.py (own prompts: near-duplicate groups, seed "
                     f"{jd.SPLIT_SEED}, {FRACTIONS}); tools/classifier_judge_data.py (Do-Not-Answer: the fixed "
                     "25% held-out questions = test, the rest 80/20 train/dev by question)"}
    (args.out.parent / jd.SPLITS.name).write_text(json.dumps(splits, indent=1) + "\n")
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "dev", "test")}
    print(f"wrote {args.out}: {len(rows)} answers, {counts}, content=1: {sum(r['content'] for r in rows)}")


if __name__ == "__main__":
    main()
