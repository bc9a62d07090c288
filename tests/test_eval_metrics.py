"""Bootstrap CIs, rates that never drop undecided verdicts, and task answer scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unforgotten.errors import DataError
from unforgotten.eval.judges.base import Verdict
from unforgotten.eval.metrics import accuracy, asr, bootstrap_ci, rate_with_ci, refusal_rate
from unforgotten.eval.scoring import extract_label, extract_number, normalize_number, score_task


# --- bootstrap ---------------------------------------------------------------------------------


def test_bootstrap_contains_mean_and_is_deterministic():
    x = np.random.default_rng(1).normal(size=200)
    low, high = bootstrap_ci(x, seed=3)
    assert low < x.mean() < high
    assert bootstrap_ci(x, seed=3) == (low, high)
    assert bootstrap_ci(x, seed=4) != (low, high)


def test_bootstrap_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small = bootstrap_ci(rng.integers(0, 2, 50))
    large = bootstrap_ci(rng.integers(0, 2, 5000))
    assert large[1] - large[0] < (small[1] - small[0]) / 3


def test_bootstrap_all_equal_is_zero_width_and_empty_is_nan():
    low, high = bootstrap_ci([0.7] * 30)
    assert low == high == pytest.approx(0.7)
    low, high = bootstrap_ci([1.0] * 10)
    assert low == high == 1.0
    assert all(math.isnan(v) for v in bootstrap_ci([]))


# --- rates -------------------------------------------------------------------------------------


def test_asr_counts_undecided_in_denominator():
    verdicts = [
        Verdict(refused=False, harmful=True),
        Verdict(refused=False, harmful=True),
        Verdict(refused=None, harmful=None),
        Verdict(refused=True, harmful=False, raw="I'm sorry"),
    ]
    r = asr(verdicts)
    assert r["value"] == 0.75 and r["n"] == 4 and r["n_undecided"] == 1 and r["undecided_as"] is True
    assert r["ci_low"] <= r["value"] <= r["ci_high"]
    # Refusal rate: undecided counts as refused by default (worst case for over-refusal) ...
    assert refusal_rate(verdicts)["value"] == 0.5
    # ... and as not refused when refusing is the desired outcome.
    assert refusal_rate(verdicts, none_counts_as=False)["value"] == 0.25


def test_rate_with_ci_empty():
    r = rate_with_ci([], none_counts_as=True)
    assert r["n"] == 0 and r["n_undecided"] == 0 and math.isnan(r["value"])


def test_accuracy_with_unextracted_answers():
    r = accuracy(["positive", None, "Negative", "18"], ["positive", "negative", "negative", "19"])
    assert r["value"] == 0.5 and r["n"] == 4 and r["n_undecided"] == 1
    with pytest.raises(ValueError):
        accuracy(["a"], [])


# --- scoring -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is 1,234.", "1234"),
        ("#### 18", "18"),
        ("He paid $5.00 in total", "5"),
        ("So 3 apples + 4 apples = 7 apples. #### 7\n", "7"),
        ("First 2, then 3, so 18.0", "18"),
        ("It costs $1,000,000.50.", "1000000.5"),
        ("The temperature fell to -4 degrees", "-4"),
        ("between 3-5 days", "5"),
        ("about .5 of it", "0.5"),
        ("The answer is 100", "100"),
        ("no numbers here", None),
        ("#### no number after the marker", None),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Negative.", "negative"),
        ("Sentiment: POSITIVE", "positive"),
        ("not positive... negative", "positive"),  # earliest whole word wins; no negation handling
        ("The review is negative, not positive", "negative"),
        ("positively nonnegative", None),  # whole words only
        ("I cannot tell", None),
        ("", None),
    ],
)
def test_extract_label(text, expected):
    assert extract_label(text) == expected


def test_extract_label_custom_choices_keep_their_spelling():
    assert extract_label("i think B", choices=("A", "B")) == "B"


def test_normalize_number():
    assert normalize_number("18.0") == "18"
    assert normalize_number("-0.0") == "0"
    assert normalize_number("1,234.50") == "1234.5"
    assert normalize_number("abc") is None


def test_score_task():
    label_records = [{"messages": [], "label": "positive"}, {"messages": [], "label": "negative"},
                     {"messages": [], "label": "negative"}]
    assert score_task(["Positive!", "positive", "no idea"], label_records) == [True, False, False]
    num_records = [{"messages": [], "label": "1,234"}, {"messages": [], "label": "18"}]
    assert score_task(["so #### 1234", "$18.00"], num_records, kind="number") == [True, True]
    with pytest.raises(DataError, match="id 'x'"):
        score_task(["1"], [{"messages": [], "id": "x"}], kind="number")
