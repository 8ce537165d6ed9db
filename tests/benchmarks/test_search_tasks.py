"""The search-quality benchmark's tasks: a digits trial trains one segment per rung (not one per
epoch), with the same errors as one epoch at a time."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))

import search_quality  # noqa: E402
from search_tasks import TASKS, Curves, DigitsCurve  # noqa: E402

SMALL = {"learning_rate": 3e-3, "beta1": 0.9, "hidden_units": 8, "l2": 1e-5, "batch_size": 256,
         "batch_norm": False}
RUNGS = (1, 3, 9, 27)


def test_a_digits_curve_in_chunks_is_the_curve_one_epoch_at_a_time() -> None:
    digits = TASKS["digits"]
    before = DigitsCurve.segments
    one_by_one = list(Curves().curve(digits, SMALL, 5))
    assert len(one_by_one) == 27 and DigitsCurve.segments - before == 27

    def to_next_rung(done: int) -> int:
        return min((r for r in RUNGS if r > done), default=done + 1) - done

    before = DigitsCurve.segments
    chunked = Curves()
    assert list(chunked.curve(digits, SMALL, 5, to_next_rung)) == one_by_one
    assert DigitsCurve.segments - before == 4  # epochs 1, 2-3, 4-9, 10-27
    assert chunked.computed == 27


@pytest.mark.parametrize("method", ["random", "optuna-random"])
def test_a_full_budget_digits_trial_is_one_segment(method) -> None:
    if method.startswith("optuna"):
        pytest.importorskip("optuna")
    task = TASKS["digits"]
    before = DigitsCurve.segments
    if method in search_quality.OURS:
        trace, tried = search_quality.run_ours(task, *search_quality.OURS[method], 0, 2 * 27,
                                               Curves())
    else:
        trace, tried = search_quality.run_optuna(task, method, 0, 2 * 27, Curves())
    assert len(tried) == 2 and len(trace.results) == 2
    assert DigitsCurve.segments - before == 2


def test_nothing_run_is_not_judged(capsys) -> None:
    from search_report import verdicts

    verdicts({}, list(search_quality.OURS), [], 1728)
    out = capsys.readouterr().out
    assert "not judged" in out and "PASS" not in out.replace("PASS/FAIL", "")
    with pytest.raises(ValueError, match="a count of seeds must be at least 1, got '0'"):
        search_quality.parse_seeds("0", 0)
    assert search_quality.parse_seeds("0-0", 0) == [0]


def test_a_tie_of_medians_is_told_apart_seed_by_seed(capsys) -> None:
    """Errors in steps tie at the median; the verdict line adds the means and the seeds on
    which our best is lower or higher than Optuna's TPE."""
    from search_report import Trace, report, verdicts

    step = 1 / 360
    ours = [3, 3, 3, 2, 3]  # best errors in steps, seed by seed
    tpe = [3, 3, 4, 3, 5]
    methods = {name: {seed: Trace([(27, e * step)]) for seed, e in enumerate(errors)}
               for name, errors in (("gp", ours), ("optuna-tpe", tpe), ("random", [6] * 5))}
    summary = report("digits", methods, 27, (), None)
    verdicts({"digits": summary}, ["random", "gp"], [], 27)
    out = capsys.readouterr().out
    assert (f"digits: our best gp 0.0083 vs optuna-tpe 0.0083 (median; mean "
            f"{2.8 * step:.4f} vs {3.6 * step:.4f}; lower on 3, higher on 0 of 5 seeds)") in out
    assert "FAIL: one of our methods beats Optuna's TPE" in out  # the verdict is the medians'
