"""The alignment tax and general capability in `run` reports, on the tiny pipeline (offline)."""

import json

import pytest
from typer.testing import CliRunner

from unforgotten import api
from unforgotten.config import load_config

from test_pipeline import setup  # noqa: F401  (the tiny pipeline fixture)

pytest.importorskip("lm_eval")


@pytest.fixture
def tqa(tmp_path):
    p = tmp_path / "TruthfulQA.csv"
    p.write_text("Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
                 "A,B,what is the sky,blue,blue; the sky is blue,bad; great,x\n"
                 "A,B,who are you,a model,a model; i am a model,cats; dogs,x\n")
    return p


def test_align_tax_reports_base_to_aligned(setup, tqa):  # noqa: F811
    from unforgotten.cli import app

    path, tmp = setup
    res = CliRunner().invoke(app, ["align", "-c", str(path), "--tax", "--quiet",
                                   "--set", f"eval.general=['truthfulqa_mc2={tqa}']"])
    assert res.exit_code == 0, res.output
    assert "truthfulqa_mc2:" in res.output and "points" in res.output
    tax = json.loads((tmp / "run" / "align_tax" / "tax.json").read_text())
    for k in ("asr", "over_refusal", "utility", "truthfulqa_mc2"):
        assert tax["change"][k] == pytest.approx(tax["aligned"][k] - tax["base"][k])
    report = (tmp / "run" / "align_tax" / "report.md").read_text()
    assert "General capability" in report and "Δ truthfulqa_mc2" in report


def test_alignment_tax_with_ogpsa_at_the_align_step(setup, tqa):  # noqa: F811
    path, tmp = setup
    plain = load_config(path, [f"eval.general=['truthfulqa_mc2={tqa}']"])
    ogpsa = load_config(path, [f"eval.general=['truthfulqa_mc2={tqa}']", "align.train.methods=[ogpsa]",
                               f"align.train.method_args={{ogpsa: {{reference: {plain.align.benign[0]}}}}}",
                               f"output_dir={tmp / 'ogpsa'}"])
    a, b = api.alignment_tax(plain, progress=False), api.alignment_tax(ogpsa, progress=False)
    assert a["aligned_model"] != b["aligned_model"] and b["align_methods"] == ["ogpsa"]
    assert a["base"] == b["base"]  # the same base model, evaluated alike


def test_run_table_and_report_show_general_capability(setup, tqa):  # noqa: F811
    from unforgotten.report import rich_table

    path, tmp = setup
    cfg = load_config(path, [f"eval.general=['truthfulqa_mc1={tqa}']"])
    rows = api.run(cfg, include_base=True, progress=False)
    assert all("truthfulqa_mc1" in s["general"]["tasks"] for _, s in rows)
    report = (tmp / "run" / "report.md").read_text()
    assert "## General capability" in report and "Δ truthfulqa_mc1" in report
    table = rich_table(rows)
    assert any("general" in str(c.header) for c in table.columns)
    summary = json.loads((tmp / "run" / "eval_finetuned" / "summary.json").read_text())
    g = summary["general"]["tasks"]["truthfulqa_mc1"]
    assert g["n"] == 2 and g["ci_low"] <= g["value"] <= g["ci_high"]
