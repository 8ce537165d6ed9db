"""Schedulers: how many epochs a trial gets, as pure decisions (no storage, no training).

One contract. A scheduler has ``rungs``: the epochs at which a trial reports its score, the last
being the full budget. The study trains a trial up to ``next_milestone(epochs_done)`` (in as many
segments as it likes), reports the score at that epoch, and asks

    decide(trial_id, epoch, score, all_scores_at_rung) -> "continue" | "prune" | "complete"

``all_scores_at_rung`` maps trial id -> score for every trial that has reported at this rung so
far (the asking trial is added if absent). ``"complete"``: the trial reached the budget;
``"prune"``: stop it here; ``"continue"``: train on to the next milestone. At an epoch that is not
a rung the answer is always ``"continue"``. ``maximize=True`` means a higher score (validation
accuracy) is better.

- :class:`FullBudget` ``(n_epochs)``: one rung, nobody is pruned. When a space searches
  ``n_epochs``, build one per trial from that trial's budget.
- :class:`SuccessiveHalving` ``(min_epochs, max_epochs, eta)``, asynchronous (ASHA): rungs at
  ``min_epochs * eta**k`` below ``max_epochs``, then ``max_epochs``. A trial is promoted past a
  rung if its score is among the top ``max(1, n // eta)`` of the ``n`` trials that reached that
  rung so far (so the first trial at a rung goes on, as in Optuna's ASHA: nothing waits).
- :class:`PopulationBased` ``(interval, n_rounds)``, synchronous (PBT): rungs every ``interval``
  epochs up to ``interval * n_rounds``; ``decide`` never prunes. At each rung below the budget
  the runner waits for the whole population and asks ``exploit_explore`` who copies whom
  (``engine.search.pbt``).
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from numbers import Real
from typing import Any, ClassVar

from engine.search import pbt
from engine.search.scales import SpaceError

DECISIONS = ("continue", "prune", "complete")


class SchedulerError(SpaceError):
    """An invalid scheduler setting or call; the message names the field and the value.

    A :class:`SpaceError` (so a ``ValueError``): one exception type covers a study's setup."""


def _integer(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SchedulerError(f"{field} must be an integer >= {minimum}, got {field}={value!r}")
    return value


def _finite(score: Any) -> bool:
    return isinstance(score, Real) and not isinstance(score, bool) and math.isfinite(score)


class Scheduler(ABC):
    """Base class: subclasses set ``kind``, ``rungs``, ``maximize`` and implement ``_decide_at``."""

    kind: ClassVar[str]
    rungs: tuple[int, ...]
    maximize: bool

    @property
    def max_epochs(self) -> int:
        """The full budget: the last rung."""
        return self.rungs[-1]

    def next_milestone(self, epochs_done: int) -> int:
        """The epoch at which a trial that has trained ``epochs_done`` epochs must next report."""
        epochs_done = _integer(epochs_done, "epochs_done", 0)
        for rung in self.rungs:
            if rung > epochs_done:
                return rung
        raise SchedulerError(
            f"epochs_done={epochs_done} already reached max_epochs={self.max_epochs}: "
            "the trial is complete"
        )

    def decide(
        self,
        trial_id: Hashable,
        epoch: int,
        score: float,
        all_scores_at_rung: Mapping[Hashable, float] | None = None,
    ) -> str:
        """``"continue"``, ``"prune"`` or ``"complete"`` for a trial reporting ``score`` after
        ``epoch`` epochs (see the module docstring)."""
        epoch = _integer(epoch, "epoch", 1)
        if epoch >= self.max_epochs:
            return "complete"
        if epoch not in self.rungs:
            return "continue"
        others = {} if all_scores_at_rung is None else all_scores_at_rung
        if not isinstance(others, Mapping):
            raise SchedulerError(
                f"all_scores_at_rung must map trial id -> score, got {type(others).__name__}"
            )
        return self._decide_at(trial_id, score, others)

    @abstractmethod
    def _decide_at(self, trial_id: Hashable, score: float, scores: Mapping) -> str:
        """The decision at a rung below the budget."""

    @abstractmethod
    def to_dict(self) -> dict:
        """JSON-ready settings including ``"kind"``."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scheduler):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "kind")
        return f"{type(self).__name__}({settings})"


class FullBudget(Scheduler):
    """Every trial trains ``n_epochs`` epochs."""

    kind = "full_budget"

    def __init__(self, n_epochs: int, maximize: bool = True):
        self.rungs = (_integer(n_epochs, "n_epochs", 1),)
        self.maximize = bool(maximize)

    def _decide_at(self, trial_id: Hashable, score: float, scores: Mapping) -> str:
        return "continue"  # unreachable: the only rung is the budget

    def to_dict(self) -> dict:
        return {"kind": self.kind, "n_epochs": self.max_epochs, "maximize": self.maximize}


class SuccessiveHalving(Scheduler):
    """Asynchronous successive halving (ASHA): keep the top ``1/eta`` at each rung."""

    kind = "successive_halving"

    def __init__(
        self, min_epochs: int = 1, max_epochs: int = 27, eta: int = 3, maximize: bool = True
    ):
        self.min_epochs = _integer(min_epochs, "min_epochs", 1)
        max_epochs = _integer(max_epochs, "max_epochs", 1)
        if max_epochs < self.min_epochs:
            raise SchedulerError(
                f"max_epochs must be >= min_epochs, got min_epochs={min_epochs}, "
                f"max_epochs={max_epochs}"
            )
        self.eta = _integer(eta, "eta", 2)
        self.maximize = bool(maximize)
        rungs, rung = [], self.min_epochs
        while rung < max_epochs:
            rungs.append(rung)
            rung *= self.eta
        self.rungs = (*rungs, max_epochs)

    def _decide_at(self, trial_id: Hashable, score: float, scores: Mapping) -> str:
        if not _finite(score):
            return "prune"
        competing = {tid: float(s) for tid, s in scores.items() if _finite(s)}
        competing[trial_id] = float(score)
        n_promoted = max(1, len(competing) // self.eta)
        ranked = sorted(competing.values(), reverse=self.maximize)
        threshold = ranked[n_promoted - 1]
        promoted = score >= threshold if self.maximize else score <= threshold
        return "continue" if promoted else "prune"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "min_epochs": self.min_epochs,
            "max_epochs": self.max_epochs,
            "eta": self.eta,
            "maximize": self.maximize,
        }


ASHA = SuccessiveHalving


def _probability(value: Any, field: str, low_open: bool, high: float) -> float:
    ok = _finite(value) and (value > 0 if low_open else value >= 0) and value <= high
    if not ok:
        valid = f"{'(' if low_open else '['}0, {high:g}]"
        raise SchedulerError(f"{field} must be a number in {valid}, got {field}={value!r}")
    return float(value)


class PopulationBased(Scheduler):
    """Population-based training: rounds of ``interval`` epochs; between rounds the bottom
    ``quantile`` copies a top-``quantile`` trial's checkpoint and perturbs its training knobs by
    a factor from ``perturb`` (or resamples one with ``resample_probability``)."""

    kind = "pbt"

    def __init__(
        self,
        interval: int,
        n_rounds: int,
        quantile: float = 0.25,
        perturb: tuple[float, ...] | list[float] = (0.8, 1.2),
        resample_probability: float = 0.25,
        maximize: bool = True,
    ):
        self.interval = _integer(interval, "interval", 1)
        self.n_rounds = _integer(n_rounds, "n_rounds", 1)
        self.quantile = _probability(quantile, "quantile", True, 0.5)
        self.resample_probability = _probability(
            resample_probability, "resample_probability", False, 1.0
        )
        if isinstance(perturb, str) or not isinstance(perturb, tuple | list) or not perturb or \
                not all(_finite(f) and f > 0 for f in perturb):
            raise SchedulerError(
                f"perturb must be a non-empty list of positive factors, got perturb={perturb!r}"
            )
        self.perturb = tuple(float(f) for f in perturb)
        self.maximize = bool(maximize)
        self.rungs = tuple(self.interval * k for k in range(1, self.n_rounds + 1))

    def _decide_at(self, trial_id: Hashable, score: float, scores: Mapping) -> str:
        return "continue"  # the population is judged at once, by exploit_explore

    def exploit_explore(self, scores: Mapping, params: Mapping, space, rng) -> dict:
        """``{recipient_id: (donor_id, new_params)}`` at a round boundary (see
        ``engine.search.pbt.exploit_explore``); ``space`` is a ``Space`` or its dict."""
        return pbt.exploit_explore(
            scores, params, space, rng, quantile=self.quantile, perturb=self.perturb,
            resample_probability=self.resample_probability, maximize=self.maximize,
        )

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "interval": self.interval,
            "n_rounds": self.n_rounds,
            "quantile": self.quantile,
            "perturb": list(self.perturb),
            "resample_probability": self.resample_probability,
            "maximize": self.maximize,
        }


SCHEDULERS: dict[str, type[Scheduler]] = {
    cls.kind: cls for cls in (FullBudget, SuccessiveHalving, PopulationBased)
}


def scheduler_from_dict(d: Mapping[str, Any]) -> Scheduler:
    """Rebuild a scheduler from its ``to_dict()``; unknown kinds or keys are a SchedulerError."""
    kind = d.get("kind") if isinstance(d, Mapping) else None
    if kind not in SCHEDULERS:
        raise SchedulerError(
            f"unknown scheduler kind {kind!r}; valid kinds: {', '.join(SCHEDULERS)}"
        )
    cls = SCHEDULERS[kind]
    signature = inspect.signature(cls).parameters
    valid = list(signature)
    unknown = sorted(set(d) - set(valid) - {"kind"})
    if unknown:
        raise SchedulerError(f"unknown keys {unknown} for a {kind} scheduler; valid keys: {valid}")
    missing = [k for k, p in signature.items() if p.default is p.empty and k not in d]
    if missing:
        raise SchedulerError(f"missing keys {missing} for a {kind} scheduler; valid keys: {valid}")
    return cls(**{k: v for k, v in d.items() if k != "kind"})
