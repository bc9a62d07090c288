"""benchmarks/reproduce.py: the grid, the per-cell configs, the data split and the tables."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import reproduce  # noqa: E402
import reproduce_tables  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_grid_runs_the_main_table_first_and_has_no_duplicates():
    cells = reproduce.grid(["main", "psweep", "seeds", "msweep"])
    names = [c.name for c in cells]
    assert len(names) == len(set(names))
    assert [c.method for c in cells[:13]] == reproduce.ALL_METHODS and {c.p for c in cells[:13]} == {0.1}
    assert {(c.method, c.p) for c in cells if c.part == "psweep"} == {
        (m, p) for m in ("sft", "der", "lwf", "lisa") for p in (0.0, 0.2)}
    assert {c.seed for c in cells if c.part == "seeds"} == {1}
    assert {c.m for c in cells if c.part == "msweep"} == {150, 250}
    assert all(c.m == 50 for c in cells if c.part != "msweep")  # 5% of n = 1000
    # follow-up trials come after everything the issue asks for
    with_trials = reproduce.grid(["main", "psweep", "seeds", "msweep", "trials"])
    assert with_trials[:len(cells)] == cells
    assert [c.method for c in with_trials[len(cells):]] == reproduce.TRIAL_SPECS


def test_alignment_settings_name_their_results_and_data():
    a = reproduce.Alignment(600, True, 2)
    assert a.tag == "align_s600_starter_sens2"
    assert a.benign == ["starter:safety_refusals", "starter:benign_sensitive", "starter:benign_sensitive",
                        "starter:general_helpful"]
    assert reproduce.Alignment(500, False, 1).benign == ["starter:benign_sensitive", "starter:general_helpful"]


def test_cell_config_sets_data_seed_and_method(tmp_path):
    sources = {"align_safety": "starter:safety_refusals", "buffer_pool": "starter:safety_refusals",
               **{f"user_p{p:g}": f"user_{p:g}.json" for p in (0, 0.1, 0.2)}}
    base = reproduce.base_config(sources, tmp_path, tmp_path / "out")
    cell = reproduce.Cell("msweep", "der", 0.2, 150, 1)
    cfg = reproduce.cell_config(base, cell, sources, tmp_path / "out")
    assert cfg.train.methods == ["der"] and cfg.train.seed == 1 and cfg.data.seed == 1
    assert cfg.data.user == "user_0.2.json" and cfg.data.safety_size == 150 and cfg.data.poison_ratio == 0
    assert cfg.output_dir == str(tmp_path / "out" / "cells" / "der_p0.2_m150_s1")
    assert cfg.eval.benchmarks == ["advbench", "directharm4", "xstest", "sst2-lisa"]
    assert cfg.eval.judges == ["keyword", "learned"]
    lisa = reproduce.cell_config(base, reproduce.Cell("main", "lisa", 0.1, 50, 0), sources, tmp_path / "out")
    # the paper's 100 + 900 split would leave a 125-step run 25 user steps: cycles of 1 + 9 instead
    assert lisa.train.methods == ["lisa"] and lisa.train.method_args["lisa"] == {"cycle_steps": 10}
    assert lisa.output_dir == str(tmp_path / "out" / "cells" / "lisa_p0.1_m50_s0")
    trial = reproduce.cell_config(base, reproduce.Cell("trials", "safelora:select=number", 0.1, 50, 0), sources,
                                  tmp_path / "out")
    assert trial.train.methods == ["safelora"] and trial.train.method_args["safelora"] == {"select": "number"}
    assert trial.output_dir == str(tmp_path / "out" / "cells" / "safelora-selectnumber_p0.1_m50_s0")


@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data")
def test_buffer_pool_is_disjoint_from_alignment_data(tmp_path):
    sources = reproduce.prepare_data(DATA, tmp_path, 1000)
    rows = {k: [json.loads(line) for line in Path(sources[k]).read_text().splitlines()] for k in ("align_safety", "buffer_pool")}
    assert len(rows["align_safety"]) == 1000
    prompts = {k: {reproduce._norm(r["messages"][0]["content"]) for r in v} for k, v in rows.items()}
    assert not prompts["align_safety"] & prompts["buffer_pool"]


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data")
def test_overlap_check_covers_the_shipped_training_data_and_finds_the_align_data_disjoint(tmp_path):
    report = reproduce.overlap_check(reproduce.prepare_data(DATA, tmp_path, 1000), DATA)
    assert {f"starter_{n}" for n in reproduce.SHIPPED_TRAINING} <= set(report)
    for name in ("starter_align_refusals", "starter_align_benign", "starter_align_dev_harmful", "starter_align_dev_benign"):
        assert set(report[name]) == {*reproduce.OVERLAP_EVALS, "do_not_answer"}
        assert all(cell["any"] == 0 for cell in report[name].values()), report[name]
    assert "| starter_align_refusals | 0/0/0" in reproduce.overlap_table(report)


def _summary(asr_kw, asr_learned, acc, refusal):
    def m(v):
        return {"value": v, "ci_low": v, "ci_high": v, "n": 100, "n_undecided": 0, "undecided_as": True}

    return {"judges": ["keyword", "learned"], "benchmarks": {
        "advbench": {"kind": "harmful", "metric": "asr", "n": 100, "by_judge": {"keyword": m(asr_kw), "learned": m(asr_learned)}},
        "directharm4": {"kind": "harmful", "metric": "asr", "n": 100, "by_judge": {"keyword": m(asr_kw), "learned": m(asr_learned)}},
        "xstest": {"kind": "overrefusal", "metric": "refusal_rate", "n": 100, "by_judge": {"keyword": m(refusal), "learned": m(refusal)}},
        "sst2-lisa": {"kind": "utility", "metric": "accuracy", "n": 872, "result": m(acc)},
    }}


def test_tables_average_seeds_and_show_missing_cells(tmp_path):
    (tmp_path / "cells").mkdir()
    (tmp_path / "aligned.json").write_text(json.dumps({"summary": _summary(0.1, 0.05, 0.8, 0.2)}))
    for method, seed, asr, secs in (("sft", 0, 0.6, 100.0), ("sft", 1, 0.8, 120.0), ("der", 0, 0.2, 250.0)):
        cell = {"part": "main", "method": method, "p": 0.1, "m": 50, "seed": seed}
        (tmp_path / "cells" / f"{method}_{seed}.json").write_text(json.dumps({
            "cell": cell, "train": {"seconds": secs, "resumed_from": 0}, "summary": _summary(asr, asr / 2, 0.9, 0.05)}))
    cost = tmp_path / "method_cost.json"
    cost.write_text(json.dumps({"sft_step_s": [1.0, 1.2], "rows": [
        {"method": "sft", "step_s": 1.0, "setup_s": 0.1, "peak_rss_mib": 3000.0},
        {"method": "der", "step_s": 2.2, "setup_s": 4.0, "peak_rss_mib": 2500.0, "der_buffer_bytes_per_example": 2048},
        {"method": "sft", "step_s": 1.2, "setup_s": 0.1, "peak_rss_mib": 2000.0}]}))
    text = reproduce_tables.write_tables(tmp_path, cost=cost)
    assert "| aligned (before fine-tuning) | 10.0 | 10.0 | 5.0 | 5.0 | 80.0 | — |" in text
    assert "| sft | 70.0 ±10.0 | 70.0 ±10.0 | 35.0 ±5.0 | 35.0 ±5.0 | 90.0 ±0.0 | 2 |" in text
    assert text.index("| sft | 70.0") < text.index("| der | 20.0")  # grid order, not file order
    assert "| sft | — / — | 70.0 ±10.0 / 90.0 ±0.0 | — / — |" in text  # p sweep: only p = 0.1 exists
    assert "| der | 20.0 / 90.0 / 5.0 | — / — / — | — / — / — |" in text  # m sweep: ASR / acc / over-refusal
    # cost: step time over the mean of the bracketing sft runs (1.1 s); both sft runs shown
    assert "| der | 2.20 | 2.00 | 4.0 | 2500 | 2.0 KiB |" in text
    assert "| sft (first run) | 1.00 | 0.91 |" in text and "| sft (last run) | 1.20 | 1.09 |" in text
    assert (tmp_path / "tables.md").read_text() == text
    assert (tmp_path / "safety_utility.png").is_file()


def test_workers_claim_cells_once_and_take_over_a_dead_workers_claim(tmp_path):
    import subprocess

    cell = reproduce.Cell("main", "sft", 0.1, 50, 0)
    claims = tmp_path / "claims"
    assert reproduce.claim(claims, cell)
    assert (claims / f"{cell.name}.claim").read_text() == str(__import__("os").getpid())
    assert reproduce.claim(claims, cell)  # our own claim: still ours (a rerun in this process)

    # a live other worker's claim is respected
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (claims / f"{cell.name}.claim").write_text(str(live.pid))
        assert not reproduce.claim(claims, cell)
    finally:
        live.kill()
        live.wait()
    # once that worker is gone, its claim is stale and is taken over
    assert reproduce.claim(claims, cell)
    assert (claims / f"{cell.name}.claim").read_text() == str(__import__("os").getpid())
    # an unreadable claim (a worker killed between create and write) is stale too
    (claims / f"{cell.name}.claim").write_text("")
    assert reproduce.claim(claims, cell)


def test_results_doc_blocks_are_refreshed_and_hand_written_text_kept(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("# Results\nreading by hand\n<!-- generated:tables -->\nold\n<!-- /generated:tables -->\nmore text\n")
    assert reproduce_tables.fill_doc(doc, {"tables": "| new |\n"})
    assert doc.read_text() == ("# Results\nreading by hand\n<!-- generated:tables -->\n| new |\n"
                               "<!-- /generated:tables -->\nmore text\n")
    assert reproduce_tables.fill_doc(doc, {"tables": "| newer |"})  # idempotent markers
    assert "| newer |" in doc.read_text() and "| new |\n" not in doc.read_text()
    with pytest.raises(ValueError, match="generated:plot"):
        reproduce_tables.fill_doc(doc, {"plot": "x"})
    assert not reproduce_tables.fill_doc(tmp_path / "missing.md", {"tables": "x"})


def test_throughput_table_reads_the_speed_results(tmp_path):
    speed, shared = tmp_path / "speed.json", tmp_path / "shared.json"
    speed.write_text(json.dumps({"tok_per_s": {"one_at_a_time": 10.0, "batched_bs8": 25.0, "batched_bs16": 40.0},
                                 "speedup_vs_one_at_a_time": {"batched_bs8": 2.5, "batched_bs16": 4.0}}))
    shared.write_text(json.dumps({"wall_seconds": {"first_run_empty_generation_cache": 500.0,
                                                   "second_run_same_settings": 10.0}}))
    text = reproduce_tables.throughput_table(speed, shared)
    assert "| generation, batch 16 | 40.0 tokens/s | 4.00x |" in text
    assert "| the same, second run (cache warm) | 10.0 s | 50x |" in text
    assert reproduce_tables.throughput_table(tmp_path / "none.json", shared) is None


def test_grid_status_lists_what_is_left_per_part(tmp_path):
    (tmp_path / "cells").mkdir()
    for name in ("sft_p0.1_m50_s0", "der_p0_m50_s0"):
        (tmp_path / "cells" / f"{name}.json").write_text("{}")
    text = reproduce_tables.grid_status(tmp_path)
    assert "| main | 1 / 13 | safeinstr, ewc," in text
    assert "| psweep | 1 / 8 | sft p=0, lwf p=0, lisa p=0, sft p=0.2," in text
    assert "| msweep | 0 / 6 | safeinstr m=150," in text


def test_stream_grid_and_config(tmp_path):
    cells = reproduce.stream_grid()
    assert len(cells) == 5 * 2 * 2 and len({c.name for c in cells}) == 20
    assert {c.seed for c in cells[:10]} == {0}  # every method and ordering once before the second seed
    assert {c.method for c in cells} == {"sft", "der", "ewc", "gradselect", "ogpsa"}
    assert {c.order for c in cells} == {(0, 1, 2), (2, 1, 0)}
    sources = {"align_safety": "starter:safety_refusals", "buffer_pool": "starter:safety_refusals",
               **{f"user_p{p:g}": f"user_{p:g}.json" for p in (0, 0.1, 0.2)}}
    base = reproduce.base_config(sources, tmp_path, tmp_path / "out")
    setting = reproduce.StreamSetting(n=40, max_steps=5, eval_limit=20, general=("truthfulqa_mc2",), general_limit=10)
    cfg = reproduce.stream_config(base, setting)
    assert [Path(u).parent.name for u in cfg.data.user] == ["sst2", "ag_news", "gsm8k"]
    assert cfg.data.user_eval == ["sst2-lisa", "agnews-lisa", "gsm8k-lisa"] and cfg.data.n == 40
    assert cfg.train.max_steps == 5 and cfg.eval.limits["gsm8k-lisa"] == 20 and cfg.eval.limits["advbench"] == 100
    assert cfg.eval.general == ["truthfulqa_mc2"] and cfg.eval.general_limit == 10
    assert setting.tag == "n40_steps5_eval20"


def test_stream_tables_show_mean_and_worst_ordering(tmp_path):
    start = {"judges": ["keyword"], "benchmarks": {
        "advbench": {"kind": "harmful", "metric": "asr", "by_judge": {"keyword": {"value": 0.0}}}}}
    reproduce._save(tmp_path / "aligned.json", {"summary": start})
    for order, acc, asr in (((0, 1, 2), 0.6, 0.1), ((2, 1, 0), 0.4, 0.3)):
        stream = {"tasks": ["sst2-lisa", "agnews-lisa", "gsm8k-lisa"], "order": list(order), "matrix": [[acc] * 3] * 3,
                  "start": [0.5] * 3, "safety": [{"asr": asr, "over_refusal": 0.1}] * 3,
                  "safety_start": {"asr": 0.0, "over_refusal": 0.1}, "asr_forgetting": [asr] * 3,
                  "over_refusal_change": [0.0] * 3, "general": [{}] * 3, "general_start": {}, "final_asr": asr,
                  "average_accuracy": acc, "backward_transfer": 0.0, "forgetting": {}, "mean_forgetting": 0.0}
        cell = reproduce.StreamCell("ewc", order, 0)
        reproduce._save(tmp_path / "streams" / f"{cell.name}.json", {"cell": {"method": "ewc", "order": list(order), "seed": 0},
                                                                     "stream": stream})
    md = reproduce.write_stream_tables(tmp_path).read_text()
    assert "| ewc | 50.0 | 40.0 (order-2-1-0 seed 0) |" in md
    data = json.loads((tmp_path / "streams.json").read_text())
    assert data["methods"]["ewc"]["across"]["worst"]["final_asr"] == {"value": 0.3, "ordering": "order-2-1-0 seed 0"}


def test_number_task_gold_label_is_the_solution_s_final_number(tmp_path):
    from unforgotten.eval.benchmarks import load_benchmark

    p = tmp_path / "gsm.json"
    p.write_text(json.dumps([{"instruction": "how many eggs?", "output": "16 - 3 = <<16-3=13>>13.\nThe final answer is:  13"}]))
    (rec,) = load_benchmark(f"math={p}").records
    assert rec["label"] == "13"


@pytest.mark.skipif(not (DATA / "lisa_style_prepared" / "gsm8k").is_dir(), reason="needs ../shared/data")
def test_lisa_stream_task_benchmarks_load():
    from unforgotten.eval.benchmarks import load_benchmark

    for name, n in (("agnews-lisa", 7600), ("gsm8k-lisa", 1319)):
        b = load_benchmark(name, root=str(DATA), limit=5)
        assert len(b.records) == 5 and all(r["label"] for r in b.records)
    assert load_benchmark("gsm8k-lisa", root=str(DATA), limit=1).records[0]["label"] == "18"
