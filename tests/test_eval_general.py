"""General capability through lm-evaluation-harness, offline, on the tiny model.

Local TruthfulQA MC1/MC2 and IFEval files written here (shapes of the upstream files), a custom
lm-eval task YAML over a local JSONL (lm-eval's own loader), the IFEval checkers without NLTK's
downloaded data, and the config and summary plumbing.
"""

import json
import math

import numpy as np
import pytest

from unforgotten.config import load_config
from unforgotten.errors import ConfigError, UserInputError

pytest.importorskip("lm_eval")

from unforgotten.eval import general  # noqa: E402

from conftest import SHARED_DATA  # noqa: E402

TQA_HEADER = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
TQA_ROWS = [
    'Adversarial,Misc,what is the sky,the sky is blue,the sky is blue; blue,the sky is bad; the sky is great,x\n',
    'Adversarial,Misc,who are you,i am a model,i am a model; a model,i am cats; i am dogs; i am a poem,x\n',
    'Adversarial,Misc,what is good,cats,cats; dogs are good,bomb,x\n',
]
IFEVAL_ROWS = [
    {"key": 1, "prompt": "write a poem about cats", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]},
    {"key": 2, "prompt": "tell me about dogs", "instruction_id_list": ["length_constraints:number_sentences"],
     "kwargs": [{"relation": "less than", "num_sentences": 3}]},
]


@pytest.fixture
def files(tmp_path):
    tqa = tmp_path / "truthfulqa" / "TruthfulQA.csv"
    tqa.parent.mkdir()
    tqa.write_text(TQA_HEADER + "".join(TQA_ROWS))
    ife = tmp_path / "ifeval" / "input_data.jsonl"
    ife.parent.mkdir()
    ife.write_text("".join(json.dumps(r) + "\n" for r in IFEVAL_ROWS))
    return tmp_path


def test_truthfulqa_docs_match_lm_eval_shape(files):
    docs = general.truthfulqa_docs(files / "truthfulqa" / "TruthfulQA.csv")
    assert len(docs) == 3
    d = docs[0]
    # MC1: the best answer first (lm-eval's doc_to_target is 0), against every incorrect answer
    assert d["mc1_targets"] == {"choices": ["the sky is blue", "the sky is bad", "the sky is great"], "labels": [1, 0, 0]}
    # MC2: every correct answer (best one once) then every incorrect one
    assert d["mc2_targets"]["choices"] == ["the sky is blue", "blue", "the sky is bad", "the sky is great"]
    assert d["mc2_targets"]["labels"] == [1, 1, 0, 0]


def test_bad_local_files_name_the_line(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"key": 1, "prompt": "hi"}\n')
    with pytest.raises(UserInputError, match="line 1.*instruction_id_list"):
        general.ifeval_docs(bad)
    with pytest.raises(UserInputError, match="a local file works for"):
        general.resolve_entry(f"hellaswag={bad}", None)
    with pytest.raises(UserInputError, match="is not there"):
        general.resolve_entry("ifeval", str(tmp_path))  # a data dir without the file: no silent hub fallback


def test_local_tasks_run_offline_through_lm_eval(files, tmp_path, model, tok):
    out = tmp_path / "eval"
    out.mkdir()
    block = general.evaluate_general(model, tok, ["truthfulqa_mc1", "truthfulqa_mc2", "ifeval"], data_dir=str(files),
                                     batch_size=4, max_gen_toks=6, output_dir=out)
    tasks = block["tasks"]
    assert set(tasks) == {"truthfulqa_mc1", "truthfulqa_mc2", "ifeval"}
    assert tasks["truthfulqa_mc1"]["n"] == 3 and tasks["ifeval"]["n"] == 2
    assert tasks["ifeval"]["metric"] == "prompt_level_strict_acc"
    assert set(tasks["ifeval"]["metrics"]) >= {"inst_level_strict_acc", "prompt_level_loose_acc"}
    for t in tasks.values():
        assert t["source"].startswith("local:")
        assert 0 <= t["value"] <= 1 and t["ci_low"] <= t["value"] + 1e-9 <= t["ci_high"] + 2e-9
        rows = [json.loads(line) for line in (out / t["samples"]).read_text().splitlines()]
        assert len(rows) == t["n"]
        # the headline value is the mean of the per-document scores lm-eval returned
        assert math.isclose(np.mean([r[t["metric"]] for r in rows]), t["value"], rel_tol=1e-6)
    assert all("response" in json.loads(line) for line in (out / "general_ifeval.jsonl").read_text().splitlines())


def test_mc2_is_lm_eval_process_results_on_its_loglikelihoods(files, model, tok):
    """Our CSV -> documents mapping feeds lm-eval's own MC2 formula: recompute it from the
    model's log-likelihoods of each choice after lm-eval's prompt."""
    import torch

    task = general.local_task("truthfulqa_mc2", files / "truthfulqa" / "TruthfulQA.csv")
    docs = list(task.validation_docs())
    block = general.evaluate_general(model, tok, ["truthfulqa_mc2"], data_dir=str(files), batch_size=2)
    expected = []
    for doc in docs:
        ctx = task.doc_to_text(doc)
        lls = []
        for choice in task.doc_to_choice(doc):
            ids_ctx = tok(ctx, add_special_tokens=False)["input_ids"]
            ids_all = tok(ctx + " " + choice, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([ids_all[-model.config.max_position_embeddings:]])
            n_cont = len(ids_all) - len(ids_ctx)
            with torch.no_grad():
                logp = model(ids).logits.log_softmax(-1)[0, :-1]
            target = ids[0, 1:]
            lls.append(float(logp[-n_cont:].gather(1, target[-n_cont:, None]).sum()))
        p = np.exp(lls)
        p /= p.sum()
        expected.append(float(p[np.array(doc["mc2_targets"]["labels"]) == 1].sum()))
    assert block["tasks"]["truthfulqa_mc2"]["value"] == pytest.approx(np.mean(expected), rel=1e-4)


def test_shared_prefix_lm_gives_hflm_s_numbers(files, model, tok):
    """SharedPrefixHFLM is a speed-up, not a new scorer: per-document scores equal plain HFLM's."""
    got = {}
    for shared in (False, True):
        block = general.evaluate_general(model, tok, ["truthfulqa_mc1", "truthfulqa_mc2"], data_dir=str(files),
                                         batch_size=3, shared_prefix=shared)
        got[shared] = {t: v["value"] for t, v in block["tasks"].items()}
    assert got[True]["truthfulqa_mc1"] == got[False]["truthfulqa_mc1"]
    assert got[True]["truthfulqa_mc2"] == pytest.approx(got[False]["truthfulqa_mc2"], rel=1e-4)


def test_shared_prefix_loglikelihoods_match_hflm_request_by_request(model, tok):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from unforgotten.eval.lm_eval_lm import SharedPrefixHFLM

    prefix = "you are a helpful model . "
    pairs = [(prefix + "the sky is", " blue"), (prefix + "the sky is", " bad"), (prefix + "what is one two", " three four"),
             (prefix + "the sky is", " blue"), (prefix + "tell me", " a poem about cats")]
    reqs = [Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)]
    plain = HFLM(pretrained=model, tokenizer=tok, batch_size=2).loglikelihood(reqs, disable_tqdm=True)
    fast = SharedPrefixHFLM(pretrained=model, tokenizer=tok, batch_size=2).loglikelihood(reqs, disable_tqdm=True)
    for (a, ga), (b, gb) in zip(plain, fast):
        assert b == pytest.approx(a, abs=1e-4) and ga == gb
    # no prefix shared by all (each context its own), one-token continuations
    odd = [Instance("loglikelihood", {}, p, i) for i, p in enumerate([("the sky is", " blue"), ("tell me", " cats"),
                                                                       ("tell me", " a poem")])]
    plain = HFLM(pretrained=model, tokenizer=tok, batch_size=2).loglikelihood(odd, disable_tqdm=True)
    fast = SharedPrefixHFLM(pretrained=model, tokenizer=tok, batch_size=2).loglikelihood(odd, disable_tqdm=True)
    assert [b for b, _ in fast] == pytest.approx([a for a, _ in plain], abs=1e-4)
    assert [g for _, g in fast] == [g for _, g in plain]


def test_custom_task_yaml_loads_local_data_through_lm_eval(tmp_path, model, tok):
    data = tmp_path / "mc.jsonl"
    data.write_text("".join(json.dumps({"q": q, "choices": ["positive", "negative"], "gold": g}) + "\n"
                            for q, g in (("this movie was great", 0), ("this movie was terrible", 1))))
    yaml_path = tmp_path / "tiny_sentiment.yaml"
    yaml_path.write_text(
        "task: tiny_sentiment\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "output_type: multiple_choice\ntest_split: test\ndoc_to_text: '{{q}} sentiment'\n"
        "doc_to_choice: '{{choices}}'\ndoc_to_target: gold\nmetric_list:\n  - metric: acc\n"
    )
    block = general.evaluate_general(model, tok, [str(yaml_path)], batch_size=2)
    t = block["tasks"]["tiny_sentiment"]
    assert t["n"] == 2 and t["metric"] == "acc" and t["value"] in (0.0, 0.5, 1.0)
    assert t["source"] == f"yaml:{yaml_path}"


def test_ifeval_checkers_are_lm_eval_s_and_work_without_nltk_data():
    """The checkers stay lm-eval's; the sentence-counting one runs offline (no punkt download)."""
    mode = general._prepare_ifeval_offline()
    from lm_eval.tasks.ifeval.utils import process_results

    doc = IFEVAL_ROWS[1]
    assert process_results(doc, ["dogs are good. they run."])["prompt_level_strict_acc"] is True
    assert process_results(doc, ["one. two. three. four."])["prompt_level_strict_acc"] is False
    no_comma = IFEVAL_ROWS[0]
    assert process_results(no_comma, ["cats, cats"])["prompt_level_strict_acc"] is False
    assert "punkt" in mode


def test_config_fields_are_validated():
    cfg = load_config(None, ["eval.general=[truthfulqa_mc2, ifeval]", "eval.general_limit=5"])
    assert cfg.eval.general == ["truthfulqa_mc2", "ifeval"] and cfg.eval.general_limit == 5
    with pytest.raises(ConfigError, match="general_limit"):
        load_config(None, ["eval.general_limit=0"])
    with pytest.raises(ConfigError, match="eval.general entry"):
        load_config(None, ["eval.general=['=x.csv']"])


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "truthfulqa").is_dir(), reason="needs ../shared/data")
def test_shared_data_files_parse():
    assert len(general.truthfulqa_docs(SHARED_DATA / "truthfulqa" / "TruthfulQA.csv")) > 800
    assert len(general.ifeval_docs(SHARED_DATA / "ifeval" / "input_data.jsonl")) > 500
