"""What a study optimises, stated once: which metric, and whether higher or lower is better.

Every part of a study that compares scores (samplers, schedulers, the zoom box, population-based
training, the best-so-far curves) reads the study's :class:`Objective`, so an error-like metric
can never be maximised by accident. A trial's score at an epoch is that epoch's value of the
metric (``val_error`` is ``1 - val_acc``); :meth:`Objective.loss` turns a score into a number
where lower is always better, which is what samplers model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

from engine.search.scales import SpaceError

#: metric -> True when higher is better
METRICS: dict[str, bool] = {
    "val_acc": True,
    "val_loss": False,
    "val_error": False,
    "train_acc": True,
    "train_loss": False,
}


def finite(value: Any) -> bool:
    """A real, finite number (not a bool, not None, not NaN or infinite)."""
    if type(value) is float:  # the common case, without the ABC check (10x faster: histories
        return math.isfinite(value)  # call this for every score of every trial per ask)
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Objective:
    """The study's metric; ``maximize`` follows from it (accuracies up, losses and errors down)."""

    metric: str = "val_acc"

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise SpaceError(
                f"objective metric must be one of {', '.join(METRICS)}, got metric={self.metric!r}"
            )

    @property
    def maximize(self) -> bool:
        return METRICS[self.metric]

    @property
    def label(self) -> str:
        """Plain words for the UI, e.g. ``"maximise val_acc"``."""
        return f"{'maximise' if self.maximize else 'minimise'} {self.metric}"

    def score(self, epoch_metrics: Mapping[str, Any]) -> float | None:
        """The metric's value in one epoch's metrics dict (None when absent or not finite)."""
        if self.metric == "val_error":
            acc = epoch_metrics.get("val_acc")
            value = None if acc is None else 1.0 - acc
        else:
            value = epoch_metrics.get(self.metric)
        return float(value) if finite(value) else None

    def loss(self, score: float | None) -> float:
        """``score`` as a number to minimise (``inf`` for a missing or non-finite score)."""
        if not finite(score):
            return math.inf
        return -float(score) if self.maximize else float(score)

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether score ``a`` is strictly better than score ``b`` (a missing one is worst)."""
        return self.loss(a) < self.loss(b)

    def best(self, scores: list[float | None]) -> float | None:
        """The best finite score of ``scores``, or None."""
        good = [s for s in scores if finite(s)]
        if not good:
            return None
        return max(good) if self.maximize else min(good)

    def to_dict(self) -> dict:
        return {"metric": self.metric}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Objective:
        """``None`` or ``{}`` is the default (maximise val_acc); unknown keys are an error."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise SpaceError(f"objective must be a dict like {{'metric': 'val_acc'}}, got {d!r}")
        unknown = sorted(set(d) - {"metric"})
        if unknown:
            raise SpaceError(f"unknown keys {unknown} for an objective; valid keys: ['metric']")
        return cls(**dict(d))
