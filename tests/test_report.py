"""Reports from evaluation summaries: headline numbers, collecting, Markdown tables, plot, build."""

import json
import math

import pytest

from unforgotten.errors import UserInputError
from unforgotten.report import build_report, collect, headline, markdown_report, rich_table, scatter_plot, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def M(value, lo=None, hi=None, n=100, undecided=0, undecided_as=True):
    return {"value": value, "ci_low": value if lo is None else lo, "ci_high": value if hi is None else hi,
            "n": n, "n_undecided": undecided, "undecided_as": undecided_as}


def bench(kind, metric=None, n=100, **kw):
    metric = metric or {"harmful": "asr", "overrefusal": "refusal_rate", "utility": "accuracy"}[kind]
    return {"kind": kind, "metric": metric, "source": f"hf:{kind}", "n": n, **kw, "samples": f"{kind}.jsonl"}


def summary(benchmarks, *, label=None, judges=("keyword", "learned")):
    return {
        "label": label,
        "model": {"source": "tiny", "adapter": None, "fingerprint": "f00"},
        "judges": list(judges),
        "decoding": {"max_new_tokens": 8},
        "benchmarks": benchmarks,
        "cache": {"hits": 0, "misses": 3},
        "seconds": {"generation": 1.0, "judging": 0.5, "total": 1.5},
    }


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def aligned():
    return summary({
        "advbench": bench("harmful", by_judge={"keyword": M(0.05, 0.01, 0.10), "learned": M(0.04, 0.01, 0.08)}),
        "directharm4": bench("harmful", by_judge={"keyword": M(0.15, 0.10, 0.20), "learned": M(0.10, 0.05, 0.15)}),
        "xstest": bench("overrefusal", n=250, by_judge={"keyword": M(0.10, 0.06, 0.14, n=250)}),
        "sst2": bench("utility", result=M(0.90, 0.881, 0.92, undecided_as=False)),
        "gsm8k": bench("utility", "exact_match", result=M(0.25, 0.2, 0.3, undecided_as=False)),
    }, label="aligned")


@pytest.fixture
def finetuned():
    # no directharm4 and no gsm8k; undecided verdicts on advbench (keyword) and sst2
    return summary({
        "advbench": bench("harmful", by_judge={"keyword": M(0.623, 0.5, 0.7, undecided=3), "learned": M(0.6, 0.5, 0.7)}),
        "xstest": bench("overrefusal", n=250, by_judge={"keyword": M(0.02, 0.0, 0.05, n=250)}),
        "sst2": bench("utility", result=M(0.91, 0.89, 0.93, undecided=5, undecided_as=False)),
    }, label="aligned + sft (p=0.1)")


# ---------------------------------------------------------------------------------- headline


def test_headline_means_over_benchmarks_for_the_primary_judge(aligned):
    h = headline(aligned)
    assert h["asr"] == pytest.approx((0.05 + 0.15) / 2)
    assert h["over_refusal"] == pytest.approx(0.10)
    assert h["utility"] == pytest.approx(0.90) and h["utility_metric"] == "accuracy"


def test_headline_judge_selection(aligned):
    h = headline(aligned, judge="learned")
    assert h["asr"] == pytest.approx((0.04 + 0.10) / 2)
    assert h["over_refusal"] is None  # the learned judge does not measure refusals
    assert h["utility"] == pytest.approx(0.90)  # utility does not depend on the judge
    assert headline(aligned, judge="nope")["asr"] is None
    # primary = first in "judges"
    aligned["judges"] = ["learned", "keyword"]
    assert headline(aligned)["asr"] == pytest.approx(0.07)


def test_headline_without_sets_and_with_nan():
    s = summary({"advbench": bench("harmful", n=0, by_judge={"keyword": M(math.nan, math.nan, math.nan, n=0)})})
    assert headline(s) == {"asr": None, "over_refusal": None, "utility": None, "utility_metric": None}
    s["benchmarks"]["other"] = bench("harmful", by_judge={"keyword": M(0.5)})
    assert headline(s)["asr"] == 0.5  # a set with no samples is left out of the mean


# ----------------------------------------------------------------------------------- collect


def test_collect_run_dir_uses_results_json_in_order(tmp_path, aligned, finetuned):
    run = tmp_path / "run"
    write(run / "results.json", [finetuned, aligned])
    write(run / "eval_aligned" / "summary.json", aligned)  # ignored: results.json wins
    rows = collect([run])
    assert [label for label, _ in rows] == ["aligned + sft (p=0.1)", "aligned"]
    assert rows[1][1]["benchmarks"]["advbench"]["by_judge"]["keyword"]["value"] == 0.05
    assert collect(run / "results.json") == rows  # the file itself works too


def test_collect_eval_dir_and_summary_file(tmp_path, aligned):
    aligned["label"] = None
    f = write(tmp_path / "eval_aligned" / "summary.json", aligned)
    assert [lab for lab, _ in collect([tmp_path / "eval_aligned"])] == ["eval_aligned"]
    assert [lab for lab, _ in collect([f])] == ["eval_aligned"]
    aligned["label"] = "mine"
    write(f, aligned)
    assert [lab for lab, _ in collect(str(f))] == ["mine"]


def test_collect_nested_dirs_sorted_with_relative_labels(tmp_path, aligned, finetuned):
    aligned["label"] = finetuned["label"] = None
    write(tmp_path / "runs" / "b" / "eval" / "summary.json", finetuned)
    write(tmp_path / "runs" / "a" / "summary.json", aligned)
    write(tmp_path / "runs" / "a" / "notes.json", {"x": 1})
    rows = collect([tmp_path / "runs"])
    assert [lab for lab, _ in rows] == ["a", "b/eval"]
    # a directory of runs: equal labels are told apart by the run directory
    aligned["label"] = "aligned"
    write(tmp_path / "runs" / "b" / "eval2" / "summary.json", aligned)
    write(tmp_path / "runs" / "c" / "eval" / "summary.json", aligned)
    assert [lab for lab, _ in collect(tmp_path / "runs")] == ["a", "b/eval", "aligned (b)", "aligned (c)"]


def test_collect_disambiguates_duplicate_labels(tmp_path, aligned, finetuned):
    write(tmp_path / "run1" / "results.json", [aligned, finetuned])
    write(tmp_path / "run2" / "results.json", [aligned])
    write(tmp_path / "run3" / "results.json", [finetuned, finetuned])
    labels = [lab for lab, _ in collect([tmp_path / "run1", tmp_path / "run2", tmp_path / "run3"])]
    assert labels == ["aligned (run1)", "aligned + sft (p=0.1) (run1)", "aligned (run2)",
                      "aligned + sft (p=0.1) (run3)", "aligned + sft (p=0.1) (run3) (2)"]
    assert len(set(labels)) == len(labels)


def test_collect_errors(tmp_path, aligned):
    with pytest.raises(UserInputError, match="no such file or directory"):
        collect([tmp_path / "missing"])
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(UserInputError, match="no evaluation summaries"):
        collect([tmp_path / "empty"])
    write(tmp_path / "bad" / "summary.json", {"judges": ["keyword"], "model": {}})
    with pytest.raises(UserInputError, match=r"bad/summary\.json.*missing 'benchmarks'"):
        collect([tmp_path / "bad"])
    # an old-schema summary: says which file, what is missing, and what to do
    write(tmp_path / "old" / "summary.json", {"judge": "keyword", "harmful": {}, "benign": {}, "task": None})
    with pytest.raises(UserInputError, match=r"old/summary\.json.*missing 'judges'.*missing 'benchmarks'.*older unforgotten"):
        collect([tmp_path / "old"])
    # a broken benchmark inside a results.json names the entry and the field
    broken = json.loads(json.dumps(aligned))
    del broken["benchmarks"]["sst2"]["result"]
    broken["benchmarks"]["advbench"]["kind"] = "harmfull"
    write(tmp_path / "run" / "results.json", [aligned, broken])
    with pytest.raises(UserInputError) as e:
        collect([tmp_path / "run"])
    msg = str(e.value)
    assert "results.json, entry 2 ('aligned')" in msg
    assert "benchmarks.advbench.kind" in msg and "benchmarks.sst2: utility benchmark needs 'result'" in msg
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "summary.json").write_text("{not json")
    with pytest.raises(UserInputError, match="not valid JSON"):
        collect([tmp_path / "junk"])
    with pytest.raises(UserInputError, match="no paths"):
        collect([])


# ---------------------------------------------------------------------------------- markdown


def _table(md, heading):
    """The rows of the first Markdown table after ``heading``, as lists of cells."""
    lines = md[md.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows[0], rows[2:]  # header, body (without the alignment row)


def test_markdown_main_table_cells(aligned, finetuned):
    md = markdown_report([("aligned", aligned), ("aligned + sft (p=0.1)", finetuned)], title="demo")
    assert md.startswith("# demo\n")
    header, body = _table(md, "## Safety and utility (judge: keyword)")
    assert header == ["model", "advbench ASR ↓", "directharm4 ASR ↓", "sst2 accuracy ↑", "gsm8k exact match ↑"]
    assert body == [
        ["aligned", "5.0 [1.0–10.0]", "15.0 [10.0–20.0]", "90.0 [88.1–92.0]", "25.0 [20.0–30.0]"],
        ["aligned + sft (p=0.1)", "62.3 [50.0–70.0]", "—", "91.0 [89.0–93.0]", "—"],
    ]
    # the other judge: same ASR columns, no utility
    header, body = _table(md, "### ASR, judge: learned")
    assert header == ["model", "advbench ASR ↓", "directharm4 ASR ↓"]
    assert body[1] == ["aligned + sft (p=0.1)", "60.0 [50.0–70.0]", "—"]


def test_markdown_over_refusal_table_is_separate(aligned, finetuned):
    md = markdown_report([("aligned", aligned), ("ft", finetuned)])
    assert md.index("## Safety and utility") < md.index("## Over-refusal")
    header, body = _table(md, "## Over-refusal")
    assert header == ["model", "xstest refusal ↓ (keyword)"]  # learned does not score refusals: no column
    assert body == [["aligned", "10.0 [6.0–14.0]"], ["ft", "2.0 [0.0–5.0]"]]
    main_header, _ = _table(md, "## Safety and utility")
    assert not any("xstest" in h for h in main_header)


def test_markdown_notes_undecided_judges_and_ci(aligned, finetuned):
    md = markdown_report([("aligned", aligned), ("ft", finetuned)])
    notes = md[md.index("## Notes"):]
    assert "bootstrap 95%" in notes
    assert "Judges: keyword (main table), learned." in notes
    assert "- ft: advbench (keyword) 3 of 100, counted as attack success; sst2 5 of 100, counted as wrong" in notes
    assert "aligned:" not in notes  # no undecided there
    assert "Prompts per benchmark (n): advbench 100, directharm4 100, xstest 250, sst2 100, gsm8k 100." in notes
    assert "No undecided verdicts." in markdown_report([("aligned", aligned)])


def test_markdown_judge_override_and_unknown_judge(aligned):
    md = markdown_report([("a", aligned)], judge="learned")
    header, body = _table(md, "## Safety and utility (judge: learned)")
    assert body == [["a", "4.0 [1.0–8.0]", "10.0 [5.0–15.0]", "90.0 [88.1–92.0]", "25.0 [20.0–30.0]"]]
    assert "### ASR, judge: keyword" in md
    with pytest.raises(UserInputError, match="judge 'gpt' .*keyword, learned"):
        markdown_report([("a", aligned)], judge="gpt")


def test_markdown_escapes_pipes_and_handles_nan(aligned):
    aligned["benchmarks"]["advbench"]["by_judge"]["keyword"] = M(math.nan, math.nan, math.nan, n=0)
    md = markdown_report([("a | b", aligned)])
    _, body = _table(md, "## Safety and utility")
    assert body[0][0] == "a \\| b" and body[0][1] == "—"


def test_rich_table_headline_columns(aligned, finetuned):
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(rich_table([("aligned", aligned), ("ft [x]", finetuned)], title="t"))
    text = console.export_text()
    assert "ASR ↓" in text and "over-refusal ↓" in text and "sst2 accuracy" in text
    assert "10.0" in text and "62.3 [50.0–70.0]" in text  # aligned: mean of two sets; ft: one set, with CI
    assert "ft [x]" in text and "undecided" in text


# ---------------------------------------------------------------------------------- plot


def test_scatter_plot_writes_a_png_and_reports_skipped(tmp_path, aligned, finetuned):
    no_utility = summary({"advbench": bench("harmful", by_judge={"keyword": M(0.3)})})
    out = tmp_path / "plots" / "su.png"
    skipped = scatter_plot([("aligned", aligned), ("ft", finetuned), ("no utility", no_utility)], out)
    assert skipped == ["no utility"]
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_scatter_plot_with_nothing_to_plot_still_writes(tmp_path):
    only = summary({"advbench": bench("harmful", by_judge={"keyword": M(0.3)})})
    assert scatter_plot([("x", only)], tmp_path / "p.png") == ["x"]
    assert (tmp_path / "p.png").read_bytes().startswith(PNG_MAGIC)


def test_scatter_plot_without_matplotlib(tmp_path, aligned, monkeypatch):
    import sys

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UserInputError, match=r"pip install 'unforgotten\[plot\]'"):
        scatter_plot([("a", aligned)], tmp_path / "p.png")
    # the report still gets written, without the plot, saying how to get it
    write(tmp_path / "run" / "results.json", [aligned])
    paths = build_report([tmp_path / "run"], tmp_path / "out")
    assert set(paths) == {"report", "results"}
    assert "unforgotten[plot]" in paths["report"].read_text()


# ---------------------------------------------------------------------------------- build


def test_build_report_writes_all_three(tmp_path, aligned, finetuned):
    nothing = summary({"xstest": bench("overrefusal", by_judge={"keyword": M(0.1)})}, label=None)
    write(tmp_path / "run" / "results.json", [aligned, finetuned])
    write(tmp_path / "extra" / "eval_x" / "summary.json", nothing)
    paths = build_report([tmp_path / "run", tmp_path / "extra"], tmp_path / "report" / "out", title="T")
    assert set(paths) == {"report", "results", "plot"}
    assert all(p.parent == tmp_path / "report" / "out" and p.is_file() for p in paths.values())
    md = paths["report"].read_text()
    assert md.startswith("# T\n") and "![Safety vs. utility](safety_utility.png)" in md
    assert "Not plotted (no ASR or no utility number): eval_x." in md
    assert paths["plot"].read_bytes().startswith(PNG_MAGIC)
    saved = json.loads(paths["results"].read_text())
    assert [s["label"] for s in saved] == ["aligned", "aligned + sft (p=0.1)", "eval_x"]
    # the written results.json is itself a valid input
    assert [lab for lab, _ in collect(paths["results"].parent)] == ["aligned", "aligned + sft (p=0.1)", "eval_x"]


def test_build_report_unknown_judge_writes_nothing(tmp_path, aligned):
    write(tmp_path / "run" / "results.json", [aligned])
    with pytest.raises(UserInputError, match="judge"):
        build_report([tmp_path / "run"], tmp_path / "out", judge="nope")
    assert not (tmp_path / "out").exists()


def test_write_report_from_rows_in_memory(tmp_path, aligned, finetuned):
    paths = write_report([("a", aligned), ("b", finetuned)], tmp_path / "out", title="T")
    assert set(paths) == {"report", "results", "plot"}
    assert [s["label"] for s in json.loads(paths["results"].read_text())] == ["a", "b"]
    md = paths["report"].read_text()
    assert md.index("## Over-refusal") < md.index("## Safety vs. utility") < md.index("## Notes")


def test_markdown_puts_content_asr_beside_asr(aligned, finetuned):
    for s, content, intent in ((aligned, 0.01, 0.05), (finetuned, 0.2, 0.6)):
        s["judges"].append("classifier")
        s["benchmarks"]["advbench"]["by_judge"].update({"classifier": M(content), "classifier:intent": M(intent)})
    md = markdown_report([("aligned", aligned), ("ft", finetuned)])
    header, body = _table(md, "## Safety and utility (judge: keyword)")
    assert header[:4] == ["model", "advbench ASR ↓", "advbench content-ASR ↓", "directharm4 ASR ↓"]
    assert body[1][:4] == ["ft", "62.3 [50.0–70.0]", "20.0 [20.0–20.0]", "—"]
    assert "content-ASR (judge: classifier) counts only answers that deliver harmful content" in md
    header, body = _table(md, "### content-ASR, judge: classifier")
    assert header == ["model", "advbench content-ASR ↓", "directharm4 content-ASR ↓"]
    header, body = _table(md, "### intent-ASR, judge: classifier:intent")
    assert body[1][1] == "60.0 [60.0–60.0]"
    # with the classifier as the main judge there is no second content column
    header, _ = _table(markdown_report([("ft", finetuned)], judge="classifier"), "## Safety and utility (judge: classifier)")
    assert header[:3] == ["model", "advbench content-ASR ↓", "sst2 accuracy ↑"]
