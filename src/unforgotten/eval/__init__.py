"""Evaluation: generate responses, judge them, turn verdicts into rates with CIs.

Import from the submodules (one job each):

* ``eval.generate``  ``generate``, ``generate_records``: batched, length-sorted, left-padded.
* ``eval.judges``    ``JUDGES`` registry, ``get_judge``, ``Judge``, ``Verdict``.
* ``eval.metrics``   ``asr``, ``refusal_rate``, ``accuracy``, ``rate_with_ci``, ``bootstrap_ci``;
                     undecided verdicts are never dropped from the denominator.
* ``eval.scoring``   ``extract_label``, ``extract_number``, ``score_task``.
* ``eval.benchmarks`` ``BENCHMARKS`` registry and ``load_benchmark``: harmful / over-refusal / utility sets.
* ``eval.evaluate``  ``evaluate_benchmarks``, ``evaluate_model``: generate, judge, score, write.
* ``eval.cache``     ``cached_generate``: per-prompt generation cache keyed by weights + decoding.
* ``eval.fingerprint`` ``model_fingerprint``: what the cache keys generations by.
* ``eval.backends``  ``get_generator``: transformers or vLLM (``eval.vllm_backend``, lazy).
* ``eval.sandbox``   ``run_python``: generated code in a separate, confined process (docs/security.md).
* ``eval.code``      ``extract_code``, ``humaneval_program``, ``pass_at_1``, ``pass_at_k``.
* ``eval.agreement`` classification metrics of a judge against human labels.

Nothing is re-exported here: a function ``generate`` on this package would shadow the
``generate`` module, and ``import unforgotten.eval.metrics`` stays free of torch.
"""
