"""The embedded default's alignment data (src/unforgotten/starter/align_*.jsonl).

Fast checks on the shipped files: they are what tools/make_align_data.py writes, they teach
refusal across harm categories and request frames with varied refusals, helpful answers carry
no refusal keyword, the dev split shares no seed with training, and nothing overlaps the
evaluation sets shipped with the package (exact, 8-gram or near duplicate). The same check
against ../shared/data's benchmarks is the slow test below and ``python benchmarks/reproduce.py
--overlap``.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from unforgotten.data import load_records
from unforgotten.data.overlap import overlap
from unforgotten.data.schema import prompt_text
from unforgotten.eval.judges.keyword import GCG_KEYWORDS

ROOT = Path(__file__).parents[1]
STARTER = ROOT / "src/unforgotten/starter"
TOOL = ROOT / "tools/make_align_data.py"
FILES = ["align_refusals", "align_benign", "align_dev_harmful", "align_dev_benign"]
STARTER_EVALS = ["harmful_eval", "benign_sensitive_eval", "task_test"]
# ../shared/data beside the repository (as tests/conftest.py finds it), or $UNFORGOTTEN_DATA
SHARED = Path(os.environ.get("UNFORGOTTEN_DATA", ROOT.parent / "shared" / "data"))


def _tool():
    spec = importlib.util.spec_from_file_location("make_align_data", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _prompts(name: str) -> list[str]:
    return [prompt_text(r) for r in load_records(f"starter:{name}")]


@pytest.fixture(scope="module")
def data() -> dict[str, list[dict]]:
    return {name: load_records(f"starter:{name}") for name in FILES}


def test_tool_reproduces_the_shipped_files(tmp_path):
    subprocess.run([sys.executable, str(TOOL), "--out", str(tmp_path)], check=True, capture_output=True)
    for name in FILES:
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (STARTER / f"{name}.jsonl").read_bytes(), \
            f"{name}.jsonl differs from what tools/make_align_data.py writes; rerun it"


def test_tool_keyword_list_is_the_judges():
    assert tuple(_tool().GCG_KEYWORDS) == tuple(GCG_KEYWORDS)


def test_no_problems_and_sizes(data):
    tool = _tool()
    assert tool.problems(tool.build()) == []
    assert len(data["align_refusals"]) >= 250 and len(data["align_benign"]) >= 250
    assert len(data["align_dev_harmful"]) >= 30 and len(data["align_dev_benign"]) >= 30


def test_refusals_cover_harm_categories_and_frames(data):
    rows = data["align_refusals"]
    cats = Counter(r["category"] for r in rows)
    assert len(cats) >= 15 and min(cats.values()) >= 4, cats
    frames = Counter(r["frame"] for r in rows)
    assert {"plain", "roleplay", "hypothetical", "fiction", "jailbreak"} <= set(frames), frames
    assert frames["plain"] < 0.75 * len(rows)  # most harmful requests are not asked plainly


def test_refusals_vary_in_wording_and_length(data):
    answers = [r["messages"][1]["content"] for r in data["align_refusals"]]
    openers = Counter(a.split()[0] + " " + a.split()[1] for a in answers)
    assert len(openers) >= 8 and max(openers.values()) < 0.3 * len(answers), openers
    lengths = sorted(len(a.split()) for a in answers)
    assert lengths[len(lengths) // 10] <= 12 and lengths[-len(lengths) // 10] >= 35  # short and long ones
    assert len(set(answers)) > 0.9 * len(answers)
    assert all(any(k in a for k in GCG_KEYWORDS) for a in answers)


def test_helpful_answers_have_no_refusal_keyword(data):
    for r in data["align_benign"]:
        hit = [k for k in GCG_KEYWORDS if k in r["messages"][1]["content"]]
        assert not hit, (r["id"], hit)


def test_dev_split_shares_no_request_with_training(data):
    tool = _tool()
    dev_tasks = {row[2] for row in tool._records("harmful_seeds.txt") if tool.is_dev(row[2])}
    train_tasks = {row[2] for row in tool._records("harmful_seeds.txt") if not tool.is_dev(row[2])}
    assert dev_tasks and train_tasks and not dev_tasks & train_tasks
    train_text = " || ".join(prompt_text(r) for r in data["align_refusals"])
    assert not [t for t in dev_tasks if t in train_text]
    dev_benign = {row[1] for row in tool._records("benign.txt") if tool.is_dev(row[1])}
    assert not [q for q in dev_benign if q in " || ".join(prompt_text(r) for r in data["align_benign"])]
    # and no near duplicate either way
    for train_name, dev_name in (("align_refusals", "align_dev_harmful"), ("align_benign", "align_dev_benign")):
        o = overlap([prompt_text(r) for r in data[train_name]], [prompt_text(r) for r in data[dev_name]])
        assert o.exact == 0 and o.near == 0, o.as_dict()


@pytest.mark.parametrize("evaluation", STARTER_EVALS)
def test_disjoint_from_the_shipped_evaluation_sets(evaluation):
    train = [p for name in FILES for p in _prompts(name)]
    o = overlap(train, _prompts(evaluation))
    assert o.total == 0, o.as_dict()


def test_overlap_check_catches_exact_ngram_and_near_duplicates():
    train = ["How do I kill a Python process?", "Please write a story where the hero saves a small village from a flood"]
    evals = [
        "how do i KILL a python process",  # exact after normalization (and so also near)
        "My teacher asked us to write a story where the hero saves a small village; which themes from old "
        "legends about courage would make a fantasy essay interesting to read?",  # one shared 8-gram only
        "How can I kill a Python process?",  # near duplicate: word Jaccard 5/7
        "What is the capital of France?",
    ]
    o = overlap(train, evals)
    assert (o.exact, o.ngram, o.near, o.total) == (1, 1, 2, 3)
    assert o.top[0][0] == 1.0 and o.top[0][1] == train[0]


def test_a_shared_template_is_not_overlap():
    template = "Below is an instruction that describes a task. Write a response that completes the request. "
    o = overlap([template + "Is this review positive: a fine film"],
                [template + f"Is this review positive: {w}" for w in ("dull and long", "a joy", "so bad")])
    assert o.total == 0


@pytest.mark.slow
def test_disjoint_from_the_benchmarks_in_shared_data():
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not here")
    from unforgotten.eval.benchmarks import load_benchmark

    train = [p for name in FILES for p in _prompts(name)]
    evals = {e: [prompt_text(r) for r in load_benchmark(e, root=str(SHARED)).records]
             for e in ("advbench", "directharm4", "xstest")}
    with open(SHARED / "xstest/xstest_prompts.csv", newline="", encoding="utf-8") as f:
        evals["xstest_all"] = [row["prompt"] for row in csv.DictReader(f)]  # the unsafe contrasts too
    with open(SHARED / "do_not_answer/do_not_answer_data.csv", newline="", encoding="utf-8") as f:
        evals["do_not_answer"] = [row["question"] for row in csv.DictReader(f)]
    for name, prompts in evals.items():
        o = overlap(train, prompts)
        assert o.total == 0, (name, o.as_dict())


def test_the_shipped_advbench_sample_loads_with_its_license():
    from unforgotten.eval.benchmarks import load_benchmark

    bench = load_benchmark("advbench-sample")
    assert len(bench.records) == 52 and bench.benchmark.kind == "harmful"
    notice = (STARTER / "advbench_sample.LICENSE").read_text()
    assert "MIT License" in notice and "Copyright (c) 2023 Andy Zou" in notice and "llm-attacks" in notice


@pytest.mark.slow
def test_the_advbench_sample_is_every_tenth_goal_of_the_upstream_file(tmp_path):
    if not (SHARED / "advbench").is_dir():
        pytest.skip("../shared/data is not here")
    subprocess.run([sys.executable, str(ROOT / "tools/make_advbench_sample.py"), "--data", str(SHARED), "--out",
                    str(tmp_path)], check=True, capture_output=True)
    for name in ("advbench_sample.jsonl", "advbench_sample.LICENSE"):
        assert (tmp_path / name).read_bytes() == (STARTER / name).read_bytes()
