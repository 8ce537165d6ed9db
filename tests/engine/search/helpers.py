"""An in-process ask -> evaluate -> tell loop over the sampler contract, for sampler tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.search import History, Objective, Sampler, Space, TrialRecord, ask_rng


def record(history: History, space: Space, u: np.ndarray, scores: dict | None = None,
           state: str | None = None) -> History:
    """``history`` with trial ``history.number`` at ``u``: pending without scores, else
    complete (or ``state``)."""
    scores = scores or {}
    state = state or ("complete" if scores else "running")
    epochs = max(scores, default=1)
    trial = TrialRecord(history.number, tuple(np.asarray(u, float).tolist()),
                        space.params_from_unit(u), state, scores, epochs)
    return history.with_trial(trial)


def run(sampler: Sampler, space: Space, loss: Callable[[np.ndarray], float], n: int,
        seed: int = 0, history: History | None = None) -> History:
    """Ask ``n`` trials one at a time, each finished with ``{1: loss(u)}`` before the next
    (objective val_loss: lower is better)."""
    history = history or History(objective=Objective("val_loss"), seed=seed)
    for _ in range(n):
        u = sampler.ask(space, history, ask_rng(history.seed, history.number))
        history = record(history, space, u, {1: float(loss(u))})
    return history


def best_loss(history: History) -> float:
    return min(t.scores[1] for t in history.trials if 1 in t.scores)
