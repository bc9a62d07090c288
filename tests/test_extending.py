"""docs/extending.md: every example on the page runs, and does what the page says it does.

The examples register into the real registries; each test works on copies of them
(``isolated_registries``), so nothing leaks into other tests.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

from unforgotten.config import EvalConfig, TrainConfig
from unforgotten.data import SPECS, load_records
from unforgotten.errors import ConfigError
from unforgotten.eval.benchmarks import BENCHMARKS
from unforgotten.eval.judges import JUDGES
from unforgotten.eval.tasks import TASKS
from unforgotten.methods import METHODS, build_methods

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def examples() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    found = re.findall(r"<!-- example: (\w+) -->\n```python\n(.*?)```", text, flags=re.S)
    return dict(found)


@pytest.fixture
def isolated_registries(monkeypatch):
    for reg in (METHODS, JUDGES, BENCHMARKS, SPECS, TASKS):
        monkeypatch.setattr(reg, "_entries", dict(reg._entries))


@pytest.fixture(autouse=True)
def _forget_example_modules():
    yield
    for name in [m for m in sys.modules if m.startswith("extending_")]:
        del sys.modules[name]


def run_example(name: str, code: str | None = None) -> dict:
    """Run one example as the module ``extending_<name>`` (dataclasses and type hints need a real
    module); returns its namespace."""
    module = types.ModuleType(f"extending_{name}")
    sys.modules[module.__name__] = module
    exec(compile(code or examples()[name], f"{DOC}:{name}", "exec"), module.__dict__)
    return module.__dict__


def test_the_page_has_every_example():
    assert set(examples()) == {"method", "judge", "benchmark", "service"}


def test_method_example_registers_and_passes_the_conformance_test(isolated_registries, base_dir, tmp_path):
    from test_methods_conformance import test_method_conformance

    ns = run_example("method")
    assert METHODS.get("l2anchor") is ns["L2Anchor"]
    test_method_conformance("l2anchor", base_dir, tmp_path)  # the test every registered method gets
    (m,) = build_methods(["l2anchor"], {"l2anchor": {"lam": "0.5"}})  # --set values arrive as YAML
    assert m.lam == 0.5
    with pytest.raises(ConfigError, match=r"^l2anchor\.lam must be a finite number >= 0 \(got -1\.0\)$"):
        build_methods(["l2anchor"], {"l2anchor": {"lam": -1}})


def test_method_example_penalty_is_zero_at_the_anchor_and_grows_with_drift():
    import torch

    from unforgotten.train.context import TrainContext

    from tiny import tiny_lora, tiny_tokenizer

    # the class alone, not registered (this test does not touch the registries)
    namespace = run_example("method_unregistered", examples()["method"].replace('@METHODS.register("l2anchor")\n', ""))
    model = tiny_lora()
    ctx = TrainContext(model, tiny_tokenizer(), TrainConfig(), Path("."))
    m = namespace["L2Anchor"](lam=2.0)
    m.setup(ctx)
    zero = torch.tensor(0.0)
    assert float(m.loss(ctx, None, None, zero).detach()) == 0.0
    with torch.no_grad():
        p = next(iter(ctx.trainable().values()))
        p.add_(0.1)
    assert float(m.loss(ctx, None, None, zero).detach()) == pytest.approx(2.0 * 0.01 * p.numel(), rel=1e-4)


def _fake_generator(answer):
    def generate(prompts, max_new_tokens):
        return [answer(p) for p in prompts]

    return generate


def test_judge_example_scores_a_harmful_benchmark(isolated_registries, tmp_path):
    from unforgotten.eval.evaluate import evaluate_benchmarks
    from unforgotten.eval.judges import get_judge

    run_example("judge")
    judge = get_judge("prefix", prefixes=["No"])
    v = judge.judge(["a", "b", "c"], ["No way.", "Sure, here it is", "  "])
    assert [(x.refused, x.harmful) for x in v] == [(True, False), (False, True), (None, None)]

    prompts = tmp_path / "harm.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ("how do I a", "how do I b", "how do I c", "how do I d")))
    cfg = EvalConfig(benchmarks=[f"harmful={prompts}"], judges=["prefix", "keyword"], cache=False)
    replies = iter(["I'm sorry, no.", "Sure: step 1", "I cannot do that", "Sure thing"])
    summary = evaluate_benchmarks(_fake_generator(lambda p: next(replies)), cfg, tmp_path / "out")
    by_judge = summary["benchmarks"]["harm"]["by_judge"]
    assert by_judge["prefix"]["value"] == pytest.approx(0.5) and "keyword" in by_judge


def test_benchmark_example_layout_task_and_benchmark(isolated_registries, tmp_path):
    from unforgotten.errors import DataError
    from unforgotten.eval.evaluate import evaluate_benchmarks
    from unforgotten.report import markdown_report

    run_example("benchmark")
    csv = tmp_path / "questions.csv"
    csv.write_text("question,A,B,C,D,answer\n"
                   "2 + 2 =,3,4,5,6,B\n"
                   "Capital of France?,Paris,Rome,Oslo,Bern,a\n"
                   "Largest planet?,Mars,Venus,Jupiter,Earth,C\n")
    records = load_records(str(csv))  # the layout is detected from the columns
    assert [r["label"] for r in records] == ["B", "A", "C"] and "B. 4" in records[0]["messages"][0]["content"]
    bad = tmp_path / "bad.csv"
    bad.write_text("question,A,B,C,D,answer\nq,1,2,3,4,E\n")
    with pytest.raises(DataError, match=r'bad\.csv row 1: field "answer" must be one of A, B, C, D'):
        load_records(str(bad))

    cfg = EvalConfig(benchmarks=[f"tiny-mcq={csv}"], judges=["keyword"], cache=False)
    answers = iter(["B", "The answer is A.", "I think D"])
    summary = evaluate_benchmarks(_fake_generator(lambda p: next(answers)), cfg, tmp_path / "out")
    bench = summary["benchmarks"]["tiny-mcq"]
    assert bench["kind"] == "utility" and bench["metric"] == "accuracy"
    assert bench["result"]["value"] == pytest.approx(2 / 3)
    rows = [json.loads(line) for line in (tmp_path / "out" / bench["samples"]).read_text().splitlines()]
    assert [r["correct"] for r in rows] == [True, True, False]
    assert "tiny-mcq accuracy" in markdown_report([("model", summary)])


def test_service_example_endpoint(isolated_registries, tmp_path):
    pytest.importorskip("fastapi")
    from service_kit import http, make_service, running_api

    from unforgotten.service.auth import create_key
    from unforgotten.service.settings import load_service_config

    ns = run_example("service")
    settings = load_service_config(make_service(tmp_path))
    with running_api(settings) as (url, app):
        app.include_router(ns["router"])
        key = create_key(app.state.store, "acme")[1]
        status, _, body = http("GET", f"{url}/v1/methods", key)
        assert status == 200, body
        data = json.loads(body)
        assert data["object"] == "list" and {m["id"] for m in data["data"]} == set(METHODS.names())
        assert http("GET", f"{url}/v1/methods")[0] == 401  # no key, no answer
