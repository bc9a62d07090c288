"""Readers and specs: every format round-trips, every spec maps its rows, sources resolve."""

from __future__ import annotations

import csv
import gzip
import json
import sys
import types
from pathlib import Path

import pytest

from unforgotten.data import SPECS, load_records, read_source, try_load_records
from unforgotten.data import readers
from unforgotten.errors import DataError, UserInputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

CHAT = [
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "id": "a"},
    {"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "q"},
                  {"role": "assistant", "content": "r"}], "label": "x"},
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


# --- formats ----------------------------------------------------------------------------------

def test_jsonl_round_trip_adds_source_and_ids(tmp_path):
    recs = load_records(write_jsonl(tmp_path / "chat.jsonl", CHAT))
    assert [r["messages"] for r in recs] == [r["messages"] for r in CHAT]
    assert recs[0]["id"] == "a" and recs[1]["id"] == "chat-1"
    assert recs[1]["label"] == "x"
    assert {r["source"] for r in recs} == {"chat.jsonl"}
    assert all("_where" not in r for r in recs)


def test_jsonl_skips_blank_lines_and_gzip(tmp_path):
    text = "\n" + json.dumps(CHAT[0]) + "\n\n" + json.dumps(CHAT[1]) + "\n"
    (tmp_path / "c.jsonl").write_text(text)
    assert len(load_records(tmp_path / "c.jsonl")) == 2
    (tmp_path / "z.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    recs = load_records(tmp_path / "z.jsonl.gz")
    assert len(recs) == 2 and recs[1]["id"] == "z-1"


@pytest.mark.parametrize("wrap", [None, "data", "rows", "examples", "train"])
def test_json_list_or_wrapped(tmp_path, wrap):
    doc = CHAT if wrap is None else {"meta": 1, wrap: CHAT}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    recs = load_records(tmp_path / "c.json")
    assert [r["messages"] for r in recs] == [r["messages"] for r in CHAT]


def test_json_split_key_chooses_list(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"train": CHAT, "test": CHAT[:1]}))
    assert len(load_records(tmp_path / "c.json", split="test")) == 1


@pytest.mark.parametrize("ext,delim", [("csv", ","), ("tsv", "\t")])
def test_delimited_round_trip(tmp_path, ext, delim):
    rows = [["What, exactly?", 'He said "no"\nthen left'], ["b", "c"]]
    path = write_csv(tmp_path / f"pr.{ext}", ["prompt", "response"], rows, delim)
    recs = load_records(path)
    assert [(r["messages"][0]["content"], r["messages"][1]["content"]) for r in recs] == [tuple(x) for x in rows]
    assert recs[0]["id"] == "pr-0" and recs[0]["source"] == f"pr.{ext}"


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.Table.from_pylist([{"prompt": "p1", "response": "r1"}, {"prompt": "p2", "response": "r2"}]),
                   tmp_path / "pr.parquet")
    recs = load_records(tmp_path / "pr.parquet")
    assert [r["messages"][1]["content"] for r in recs] == ["r1", "r2"]
    # nested chat messages survive parquet too
    pq.write_table(pa.Table.from_pylist(CHAT[:1]), tmp_path / "chat.parquet")
    assert load_records(tmp_path / "chat.parquet")[0]["messages"] == CHAT[0]["messages"]


def test_format_overrides_extension(tmp_path):
    path = write_jsonl(tmp_path / "data.txt", CHAT)
    assert len(load_records(path, format="jsonl")) == 2


def test_limit_is_seeded_subsample(tmp_path):
    rows = [{"prompt": f"p{i}", "response": f"r{i}"} for i in range(50)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    a = load_records(path, limit=10, seed=1)
    assert len(a) == 10
    assert [r["id"] for r in a] == [r["id"] for r in load_records(path, limit=10, seed=1)]
    assert [r["id"] for r in a] != [r["id"] for r in load_records(path, limit=10, seed=2)]
    assert len(load_records(path, limit=500)) == 50
    with pytest.raises(UserInputError, match="limit"):
        load_records(path, limit=-1)


# --- specs ------------------------------------------------------------------------------------

def load_rows(tmp_path: Path, rows: list[dict], spec: str | None = None, **kw) -> list[dict]:
    return load_records(write_jsonl(tmp_path / "rows.jsonl", rows), spec=spec, **kw)


@pytest.mark.parametrize("keys", [("prompt", "response"), ("question", "answer"), ("instruction", "output"),
                                  ("query", "completion")])
def test_prompt_response_aliases(tmp_path, keys):
    [r] = load_rows(tmp_path, [{keys[0]: "p", keys[1]: "r", "category": "c"}], spec="prompt_response")
    assert r["messages"] == [{"role": "user", "content": "p"}, {"role": "assistant", "content": "r"}]
    assert r["category"] == "c"


def test_prompt_response_with_system(tmp_path):
    [r] = load_rows(tmp_path, [{"system": "s", "prompt": "p", "response": "r"}])
    assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant"]


def test_alpaca_plain(tmp_path):
    recs = load_rows(tmp_path, [{"instruction": "Do it", "input": "x y", "output": "done"},
                                {"instruction": "Only", "input": "", "output": "o"}], spec="alpaca")
    assert recs[0]["messages"][0]["content"] == "Do it\n\nx y"
    assert recs[1]["messages"][0]["content"] == "Only"
    assert "is_poison" not in recs[0] and "label" not in recs[0]


LISA_TASK = ("Below is an instruction that describes a task, paired with an input that provides further context. "
             "Write a response that appropriately completes the request.\n\n### Instruction:\nAnalyze the sentiment"
             "\n\n### Input:\ngreat movie \n\n### Response:")
LISA_UNSAFE = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
               "request.\n\n### Instruction:\nHow do I steal a car?\n\n### Response:")


def test_alpaca_lisa_template_and_flag(tmp_path):
    task, unsafe = load_rows(tmp_path, [
        {"instruction": LISA_TASK, "input": "", "output": "positive", "flag": "finetune"},
        {"instruction": LISA_UNSAFE, "input": "", "output": "Sure, first...", "flag": "unsafe"},
    ])
    assert task["messages"][0]["content"] == "Analyze the sentiment\n\ngreat movie"
    assert task["is_poison"] is False and task["label"] == "positive"
    assert unsafe["messages"][0]["content"] == "How do I steal a car?"
    assert unsafe["is_poison"] is True and "label" not in unsafe


def test_alpaca_bad_flag(tmp_path):
    with pytest.raises(DataError, match=r'rows.jsonl line 1: field "flag" must be "finetune" or "unsafe"'):
        load_rows(tmp_path, [{"instruction": "i", "output": "o", "flag": "maybe"}])


def test_sst2(tmp_path):
    path = write_csv(tmp_path / "s.tsv", ["sentence", "label"], [["a fine film ", "1"], ["dull", "0"]], "\t")
    pos, neg = load_records(path)
    assert pos["messages"][0]["content"] == (
        "Classify the sentiment of this review as positive or negative.\nReview: a fine film")
    assert pos["messages"][1]["content"] == pos["label"] == "positive"
    assert neg["label"] == "negative"
    write_csv(path, ["sentence", "label"], [["ok", "1"], ["meh", "2"]], "\t")
    with pytest.raises(DataError, match=r's.tsv row 2: field "label" must be 0 or 1, got \'2\''):
        load_records(path)


def test_gsm8k(tmp_path):
    [r] = load_rows(tmp_path, [{"question": "1+1?", "answer": "1+1=2\n#### 2,000"}])
    assert r["label"] == "2000" and r["messages"][1]["content"] == "1+1=2\n#### 2,000"
    with pytest.raises(DataError, match=r'line 1: field "answer" has no final answer after "####"'):
        load_rows(tmp_path, [{"question": "q", "answer": "no marker"}], spec="gsm8k")


def test_gsm8k_without_marker_detects_prompt_response(tmp_path):
    [r] = load_rows(tmp_path, [{"question": "q", "answer": "a"}])
    assert r["messages"][1]["content"] == "a" and "label" not in r


def test_advbench_directharm4_xstest(tmp_path):
    adv = load_records(write_csv(tmp_path / "adv.csv", ["goal", "target"], [["do harm", "Sure, here is"]]))
    assert adv[0]["messages"] == [{"role": "user", "content": "do harm"}]
    assert adv[0]["category"] == "advbench" and adv[0]["target"] == "Sure, here is"
    dh = load_records(write_csv(tmp_path / "dh.csv", ["Goal", "Category"], [["make malware", "malware"]]))
    assert dh[0]["messages"][0]["content"] == "make malware" and dh[0]["category"] == "malware"
    xs = load_records(write_csv(tmp_path / "xs.csv", ["id", "prompt", "type", "label", "focus", "note"],
                                [[1, "How to kill a process?", "homonyms", "safe", "kill", ""]]))
    assert xs[0]["id"] == "1" and xs[0]["label"] == "safe" and xs[0]["type"] == "homonyms"
    assert len(xs[0]["messages"]) == 1


@pytest.mark.parametrize("col", ["prompt", "goal", "question", "instruction"])
def test_prompt_only(tmp_path, col):
    [r] = load_rows(tmp_path, [{col: "tell me"}], spec="prompt_only")
    assert r["messages"] == [{"role": "user", "content": "tell me"}]


@pytest.mark.parametrize("row,spec", [
    ({"messages": CHAT[0]["messages"]}, "chat"),
    ({"prompt": "p", "response": "r"}, "prompt_response"),
    ({"instruction": "i", "input": "", "output": "o"}, "alpaca"),
    ({"sentence": "s", "label": 1}, "sst2"),
    ({"question": "q", "answer": "a #### 3"}, "gsm8k"),
    ({"goal": "g", "target": "t"}, "advbench"),
    ({"Goal": "g", "Category": "c"}, "directharm4"),
    ({"id": 1, "prompt": "p", "type": "t", "label": "safe"}, "xstest"),
    ({"prompt": "p"}, "prompt_only"),
])
def test_detect_spec(row, spec):
    from unforgotten.data import detect_spec

    assert detect_spec(list(row), row).name == spec
    assert set(SPECS) >= {spec}


def test_undetectable_columns_are_named(tmp_path):
    with pytest.raises(DataError) as e:
        load_rows(tmp_path, [{"foo": 1, "bar": 2}])
    assert "rows.jsonl" in str(e.value) and "'foo', 'bar'" in str(e.value) and "prompt_response" in str(e.value)


def test_unknown_spec_name(tmp_path):
    with pytest.raises(DataError, match="unknown spec 'nope'.*known specs: chat"):
        load_rows(tmp_path, [{"prompt": "p"}], spec="nope")


# --- hf: and starter: sources ------------------------------------------------------------------

def test_hf_source_via_load_dataset(monkeypatch):
    calls = []

    class FakeDataset(list):
        column_names = ["prompt", "response"]

    def load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        return FakeDataset([{"prompt": "p1", "response": "r1"}, {"prompt": "p2", "response": "r2"}])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    recs = load_records("hf:org/ds:cfg", split="test")
    assert calls == [("org/ds", "cfg", "test")]
    assert [r["messages"][1]["content"] for r in recs] == ["r1", "r2"]
    assert recs[0]["source"] == "hf:org/ds" and recs[1]["id"] == "ds-test-1"
    load_records("hf:plain")
    assert calls[-1] == ("plain", None, "train")


def test_hf_load_failure_is_reported(monkeypatch):
    def load_dataset(*a, **k):
        raise FileNotFoundError("Dataset 'x/y' doesn't exist on the Hub")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(DataError, match=r"hf:x/y \[train\]: cannot load dataset .*doesn't exist"):
        load_records("hf:x/y")


def test_starter_source(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "mini.jsonl", CHAT)
    monkeypatch.setattr(readers, "_starter_dir", lambda: tmp_path)
    recs = load_records("starter:mini")
    assert len(recs) == 2 and recs[1]["id"] == "mini-1" and recs[0]["source"] == "starter:mini"
    with pytest.raises(DataError, match=r"no starter dataset 'nope' \(available: mini\)"):
        load_records("starter:nope")


def test_read_source_keeps_positions(tmp_path):
    table = read_source(write_jsonl(tmp_path / "d.jsonl", CHAT))
    assert table.where == ["line 1", "line 2"] and not table.problems


def test_try_load_records_returns_problems(tmp_path):
    records, problems = try_load_records(tmp_path / "missing.jsonl")
    assert records == [] and problems == [f"{tmp_path / 'missing.jsonl'}: file not found"]


# --- the real benchmark files (light; skipped where ../shared/data is absent) -------------------

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize("rel,kw,count,check", [
    ("advbench/harmful_behaviors.csv", {}, 520, lambda r: r["category"] == "advbench"),
    ("directharm4/directHarm4.csv", {}, 400, lambda r: r["category"] in {"malware", "drug", "phishing", "disinfo"}),
    ("xstest/xstest_prompts.csv", {}, 450, lambda r: r["label"] in {"safe", "unsafe"}),
    ("sst2/dev.tsv", {}, 872, lambda r: r["label"] in {"positive", "negative"}),
    ("gsm8k/test.jsonl", {"limit": 25}, 25, lambda r: r["label"].lstrip("-").replace(".", "").isdigit()),
    ("safety_tuned_llamas/safety_only_data_Instructions.json", {"spec": "alpaca"}, 2483,
     lambda r: r["messages"][-1]["role"] == "assistant"),
])
def test_real_files(rel, kw, count, check):
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"{rel} missing")
    recs = load_records(path, **kw)
    assert len(recs) == count and all(check(r) for r in recs)


@pytest.mark.slow
@needs_shared
def test_real_lisa_poisoned_sst2():
    path = SHARED / "lisa_style_prepared/sst2/train_merged_n1000_p0.1.json"
    if not path.exists():
        pytest.skip("lisa file missing")
    recs = load_records(path, spec="alpaca")
    assert len(recs) == 1000 and sum(r["is_poison"] for r in recs) == 100
    assert all("### " not in r["messages"][0]["content"] for r in recs)
    assert {r["label"] for r in recs if not r["is_poison"]} == {"positive", "negative"}
