"""General capability through lm-evaluation-harness (``pip install 'unforgotten[general]'``).

``eval.general`` lists lm-eval tasks. Each entry is

* an lm-eval task name (``hellaswag``, ``arc_easy``, ``mmlu``, ...): lm-eval loads it from the
  Hugging Face hub, so it needs internet the first time;
* a path to an lm-eval task YAML of your own (``my_task.yaml``, e.g. ``dataset_path: json`` with
  ``dataset_kwargs: {data_files: ...}`` pointing at local files): lm-eval loads and scores it;
* one of the names in :data:`LOCAL_TASKS` (``truthfulqa_mc1``, ``truthfulqa_mc2``, ``ifeval``)
  when its data file is found, as ``name=PATH`` or under ``eval.data_dir`` /
  ``$UNFORGOTTEN_DATA`` in the upstream layout (``truthfulqa/TruthfulQA.csv``,
  ``ifeval/input_data.jsonl``): then lm-eval runs the task *offline* from that file. The task's
  own YAML from the installed lm-eval is loaded (prompt, metrics, ``process_results``: the IFEval
  instruction checkers are lm-eval's) and only its dataset is swapped for the local file.

Nothing here scores by itself: lm-eval's ``simple_evaluate`` runs on an already loaded model
(a peft adapter on top is fine) through its ``HFLM`` wrapper (log-likelihoods through
``lm_eval_lm.SharedPrefixHFLM``, HFLM computing the shared few-shot prefix once), on whatever device the model is
on, in batches of ``eval.batch_size``. Per-document scores come back with the results, and each
task's headline metric gets a bootstrap 95% interval from ``eval.metrics.bootstrap_ci``.

Loglikelihood results are cached per model fingerprint (lm-eval's ``CachingLM``): TruthfulQA
MC1's requests are a subset of MC2's, and re-evaluating a model costs nothing.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import UserInputError
from .metrics import bootstrap_ci

INSTALL_HINT = "pip install 'unforgotten[general]'"
# Headline metric per task, in order of preference, when a task has several.
PREFERRED_METRICS = ("prompt_level_strict_acc", "acc_norm", "acc", "exact_match", "f1")


# --------------------------------------------------------------------------- local data


def truthfulqa_docs(path: str | Path) -> list[dict[str, Any]]:
    """TruthfulQA.csv -> lm-eval's ``truthful_qa/multiple_choice`` document shape.

    MC1: the best answer (first, label 1) against every incorrect answer; MC2: every correct
    answer (label 1, the best answer included once) against every incorrect answer. The hub's
    multiple-choice split was built from the same questions by TruthfulQA's authors
    (``mc_task.json``); its answer lists are close to, not identical with, the CSV's columns, so
    numbers from this file and from the hub task are not interchangeable.
    """
    docs = []
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                q, best = row["Question"].strip(), row["Best Answer"].strip()
                correct = [a.strip() for a in row["Correct Answers"].split(";") if a.strip()]
                incorrect = [a.strip() for a in row["Incorrect Answers"].split(";") if a.strip()]
            except (KeyError, AttributeError):
                raise UserInputError(f"{path}, line {i}: TruthfulQA needs the columns Question, Best Answer, "
                                     "Correct Answers, Incorrect Answers") from None
            if not q or not best or not incorrect:
                continue
            mc2_true = [best] + [a for a in correct if a != best]
            docs.append({
                "question": q,
                "mc1_targets": {"choices": [best] + incorrect, "labels": [1] + [0] * len(incorrect)},
                "mc2_targets": {"choices": mc2_true + incorrect, "labels": [1] * len(mc2_true) + [0] * len(incorrect)},
            })
    if not docs:
        raise UserInputError(f"{path}: no TruthfulQA questions with answers found")
    return docs


def ifeval_docs(path: str | Path) -> list[dict[str, Any]]:
    """IFEval's ``input_data.jsonl`` is already lm-eval's document shape (key, prompt,
    instruction_id_list, kwargs); this only checks the fields, naming the line."""
    docs = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserInputError(f"{path}, line {i}: not valid JSON ({e.msg})") from None
            missing = [k for k in ("key", "prompt", "instruction_id_list", "kwargs") if k not in d]
            if missing:
                raise UserInputError(f"{path}, line {i}: IFEval rows need {', '.join(missing)}")
            docs.append(d)
    if not docs:
        raise UserInputError(f"{path}: no IFEval prompts")
    return docs


@dataclass(frozen=True)
class LocalTask:
    """An lm-eval task whose data can come from a local file in its upstream layout."""

    yaml: str  # the task's YAML inside lm_eval/tasks
    local: str  # path under a data dir
    split: str  # the split lm-eval's YAML evaluates
    docs: Callable[[str | Path], list[dict[str, Any]]]


LOCAL_TASKS: dict[str, LocalTask] = {
    "truthfulqa_mc1": LocalTask("truthfulqa/truthfulqa_mc1.yaml", "truthfulqa/TruthfulQA.csv", "validation", truthfulqa_docs),
    "truthfulqa_mc2": LocalTask("truthfulqa/truthfulqa_mc2.yaml", "truthfulqa/TruthfulQA.csv", "validation", truthfulqa_docs),
    "ifeval": LocalTask("ifeval/ifeval.yaml", "ifeval/input_data.jsonl", "train", ifeval_docs),
}


def resolve_entry(entry: str, data_dir: str | None) -> tuple[str, Path | None]:
    """``"name"`` or ``"name=PATH"`` -> (task name, local file or None for lm-eval's own loader)."""
    name, eq, path = (s.strip() for s in entry.partition("="))
    if name.endswith((".yaml", ".yml")) and not eq:
        if not Path(name).is_file():
            raise UserInputError(f"eval.general entry {entry!r}: no such task YAML")
        return name, None
    if not name:
        raise UserInputError(f"eval.general entry {entry!r}: expected an lm-eval task name or name=PATH")
    if eq:
        if name not in LOCAL_TASKS:
            raise UserInputError(f"eval.general entry {entry!r}: a local file works for {', '.join(LOCAL_TASKS)}; "
                                 "other lm-eval tasks load by name")
        if not Path(path).is_file():
            raise UserInputError(f"eval.general entry {entry!r}: no such file {path}")
        return name, Path(path)
    root = data_dir or os.environ.get("UNFORGOTTEN_DATA")
    if name in LOCAL_TASKS and root:
        local = Path(root) / LOCAL_TASKS[name].local
        if not local.is_file():  # a data dir is the offline promise: never fall back to the hub silently
            raise UserInputError(f"eval.general: {name} looks for {local} under the data dir {root}, and it is not there")
        return name, local
    return name, None


# --------------------------------------------------------------------------- lm-eval glue


def require_lm_eval():
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise UserInputError(f"eval.general needs lm-evaluation-harness: {INSTALL_HINT}") from None
    import lm_eval

    return lm_eval


def punkt_available() -> bool:
    try:
        import nltk

        nltk.data.find("tokenizers/punkt_tab/english")
        nltk.data.find("tokenizers/punkt/english.pickle")
        return True
    except (LookupError, ImportError):
        return False


def _prepare_ifeval_offline() -> str:
    """Import lm-eval's IFEval checkers without network; returns how sentences are split.

    Two of its 25 checkers (``length_constraints:number_sentences`` and
    ``change_case:capital_word_frequency``) use NLTK's *trained* Punkt data, which lm-eval
    downloads on import and no package index ships. Without it (offline) we keep every checker
    as lm-eval wrote it and give those two NLTK's untrained Punkt sentence splitter and
    ``word_tokenize(preserve_line=True)``: the same algorithms without the learned English
    abbreviation list, so a sentence ending in "Dr." may be split differently. The mode is
    recorded in the summary.
    """
    import nltk

    if punkt_available():
        from lm_eval.tasks.ifeval import instructions_util  # noqa: F401

        return "nltk punkt (trained)"
    real_download = nltk.download
    nltk.download = lambda *a, **k: False  # no network attempt from lm-eval's import
    try:
        from lm_eval.tasks.ifeval import instructions_util
    finally:
        nltk.download = real_download
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    class _Nltk:  # lm-eval's checkers call instructions_util.nltk.word_tokenize
        def __getattr__(self, item):
            return getattr(nltk, item)

        @staticmethod
        def word_tokenize(text, *a, **k):
            return nltk.word_tokenize(text, preserve_line=True)

    untrained = PunktSentenceTokenizer()
    instructions_util._get_sentence_tokenizer = lambda: untrained
    instructions_util.nltk = _Nltk()
    from lm_eval.tasks.ifeval import instructions

    instructions.instructions_util = instructions_util
    return "nltk punkt untrained (offline fallback; see eval/general.py)"


def local_task(name: str, path: Path, max_gen_toks: int | None = None):
    """lm-eval's own task ``name`` with its dataset replaced by the documents of ``path``."""
    import datasets
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    lm_eval = require_lm_eval()
    spec = LOCAL_TASKS[name]
    cfg = load_yaml(Path(lm_eval.__file__).parent / "tasks" / spec.yaml)
    docs = spec.docs(path)
    cfg.pop("tag", None)  # not part of lm-eval's groups: this is a one-off task object
    cfg["dataset_path"] = str(path)
    cfg["dataset_name"] = None
    cfg["dataset_kwargs"] = None
    cfg["custom_dataset"] = lambda **_: datasets.DatasetDict({spec.split: datasets.Dataset.from_list(docs)})
    if max_gen_toks is not None and cfg.get("output_type") == "generate_until":
        cfg["generation_kwargs"] = {**(cfg.get("generation_kwargs") or {}), "max_gen_toks": max_gen_toks}
    return ConfigurableTask(config=cfg)


def _headline(metrics: dict[str, Any]) -> str | None:
    names = [k.split(",")[0] for k in metrics if "," in k and not k.split(",")[0].endswith("_stderr")]
    for m in PREFERRED_METRICS:
        if m in names:
            return m
    return names[0] if names else None


def _per_doc(samples: list[dict[str, Any]], metric: str) -> list[float]:
    values: list[float] = []
    for s in samples:
        v = s.get(metric)
        if isinstance(v, list):  # instruction-level: one entry per instruction
            values += [float(x) for x in v]
        elif v is not None:
            values.append(float(v))
    return values


def _write_samples(path: Path, samples: list[dict[str, Any]], metrics: list[str]) -> None:
    """One line per document: its id, what the model answered (generation tasks) and its scores."""
    with open(path, "w") as f:
        for s in samples:
            row = {"doc_id": s.get("doc_id"), **{m: s.get(m) for m in metrics if m in s}}
            resps = s.get("filtered_resps")
            if resps and isinstance(resps[0], str):
                row["response"] = resps[0]
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def summarize(results: dict[str, Any], sources: dict[str, str], output_dir: Path | None = None) -> dict[str, Any]:
    """lm-eval's results -> ``{task: {metric, value, ci_low, ci_high, n, metrics, source, samples}}``
    (per-document rows go to ``general_<task>.jsonl`` in ``output_dir`` when given)."""
    out: dict[str, Any] = {}
    for task, metrics in (results.get("results") or {}).items():
        head = _headline(metrics)
        samples = (results.get("samples") or {}).get(task) or []
        all_metrics = {k.split(",")[0]: v for k, v in metrics.items() if "," in k and isinstance(v, (int, float))}
        values = _per_doc(samples, head) if head else []
        lo, hi = bootstrap_ci(values) if values else (float("nan"), float("nan"))
        out[task] = {
            "metric": head, "value": all_metrics.get(head) if head else None, "ci_low": lo, "ci_high": hi,
            # a group (mmlu) reports itself and each subtask; they share the group's source
            "n": len(samples), "metrics": all_metrics, "source": sources.get(task, "lm-eval"),
        }
        if output_dir is not None and samples:
            _write_samples(output_dir / f"general_{task}.jsonl", samples, list(all_metrics))
            out[task]["samples"] = f"general_{task}.jsonl"
    return out


def evaluate_general(model: Any, tokenizer: Any, entries: list[str], *, data_dir: str | None = None,
                     batch_size: int = 16, limit: int | None = None, max_gen_toks: int | None = None,
                     cache_path: str | Path | None = None, seed: int = 0,
                     output_dir: str | Path | None = None, shared_prefix: bool = True) -> dict[str, Any]:
    """Run lm-eval on ``model`` (+ adapter) for ``entries``; returns the ``general`` summary block.

    Multiple-choice tasks are scored by log-likelihood without a chat template (as lm-eval
    reports them; ``shared_prefix`` computes them with ``lm_eval_lm.SharedPrefixHFLM``, else with
    lm-eval's plain ``HFLM``); generation tasks (IFEval) are prompted through the tokenizer's chat template
    when it has one, since an instruction-tuned model answers instructions in its own format.
    """
    require_lm_eval()
    import logging

    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    resolved = [resolve_entry(e, data_dir) for e in entries]
    sentence_split = None
    if any(n == "ifeval" for n, _ in resolved):
        sentence_split = _prepare_ifeval_offline()
    tasks: dict[bool, list[Any]] = {False: [], True: []}  # by "prompt with the chat template"
    sources: dict[str, str] = {}
    from lm_eval.tasks import TaskManager

    # indexing lm-eval's thousands of task YAMLs takes ~15 s: only when a task is named from it
    yamls = [Path(n) for n, p in resolved if p is None and n.endswith((".yaml", ".yml"))]
    manager = TaskManager(include_defaults=any(p is None and Path(n) not in yamls for n, p in resolved),
                          include_path=sorted({str(y.parent.resolve()) for y in yamls}) or None)
    for name, path in resolved:
        if path is not None:
            task = local_task(name, path, max_gen_toks)
            sources[name] = f"local:{path}"
        elif Path(name) in yamls:
            from lm_eval.tasks._yaml_loader import load_yaml

            task_name = load_yaml(name, resolve_func=False).get("task")
            if not isinstance(task_name, str):
                raise UserInputError(f"eval.general: {name} names no `task:`")
            task = task_name
            sources[task_name] = f"yaml:{name}"
        else:
            if name not in manager.all_tasks:
                raise UserInputError(f"eval.general: {name!r} is not an lm-eval task; local tasks: {', '.join(LOCAL_TASKS)}")
            task = name
            sources[name] = "lm-eval (hub)"
        # tasks given by name run as lm-eval's CLI runs them by default (no chat template)
        generative = not isinstance(task, str) and task.config.output_type == "generate_until"
        tasks[generative and bool(getattr(tokenizer, "chat_template", None))].append(task)

    if shared_prefix:  # same numbers as HFLM's, several times faster on few-shot multiple choice
        from .lm_eval_lm import SharedPrefixHFLM as HFLM  # noqa: N814
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    if cache_path is not None:
        Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    block: dict[str, Any] = {"tasks": {}, "seconds": {}}
    try:
        for chat, group in tasks.items():
            if not group:
                continue
            t0 = time.perf_counter()
            results = simple_evaluate(
                model=lm, tasks=group, limit=limit, log_samples=True, apply_chat_template=chat,
                use_cache=str(cache_path) if cache_path is not None else None,
                task_manager=manager, bootstrap_iters=0, random_seed=seed, numpy_random_seed=seed,
                torch_random_seed=seed, fewshot_random_seed=seed, verbosity="WARNING",
                gen_kwargs={"max_gen_toks": max_gen_toks} if max_gen_toks else None,
            )
            names = [t if isinstance(t, str) else t.config.task for t in group]
            block["tasks"].update(summarize(results, {n: sources[n] for n in names},
                                            Path(output_dir) if output_dir is not None else None))
            block["seconds"][",".join(names)] = round(time.perf_counter() - t0, 2)
    finally:
        model.train(was_training)
    if sentence_split:
        block["ifeval_sentence_split"] = sentence_split
    from importlib.metadata import version

    block["lm_eval_version"] = version("lm_eval")
    block["limit"] = limit
    block["max_gen_toks"] = max_gen_toks
    return block


def add_general(summary: dict[str, Any], model: Any, tokenizer: Any, cfg: Any, output_dir: str | Path,
                fingerprint: str | None = None) -> dict[str, Any]:
    """Evaluate ``cfg.general`` (an ``EvalConfig``) and add it to ``summary`` as ``general``,
    rewriting ``summary.json``. Loglikelihoods and generations are cached per ``fingerprint``."""
    from ..paths import cache_dir

    out = Path(output_dir)
    cache = cache_dir() / "lm_eval" / fingerprint if (cfg.cache and fingerprint) else None
    summary["general"] = evaluate_general(
        model, tokenizer, list(cfg.general), data_dir=cfg.data_dir, batch_size=cfg.batch_size,
        limit=cfg.general_limit, max_gen_toks=cfg.general_max_new_tokens, cache_path=cache, seed=cfg.seed,
        output_dir=out,
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
