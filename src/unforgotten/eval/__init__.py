"""Evaluation: generate responses, judge them, turn verdicts into rates with CIs.

Import from the submodules (one job each):

* ``eval.generate``  ``generate``, ``generate_records``: batched, length-sorted, left-padded.
* ``eval.judges``    ``JUDGES`` registry, ``get_judge``, ``Judge``, ``Verdict``.
* ``eval.metrics``   ``asr``, ``refusal_rate``, ``accuracy``, ``rate_with_ci``, ``bootstrap_ci``;
                     undecided verdicts are never dropped from the denominator.
* ``eval.scoring``   ``extract_label``, ``extract_number``, ``score_task``.

Nothing is re-exported here: a function ``generate`` on this package would shadow the
``generate`` module, and ``import unforgotten.eval.metrics`` stays free of torch.
"""
