"""Schedulers: how many epochs a trial gets, as pure decisions (no storage, no training).

One contract, stated once. A scheduler answers the study runner, for trial number ``number``:

- ``target_epochs(n_epochs) -> int``: the trial's budget (``n_epochs``: what its params say;
  a full-budget study that searches ``n_epochs`` gives each trial its own);
- ``next_milestone(number, epochs_done, target) -> int``: the epoch at which the trial must next
  report (the runner trains up to it, in as many segments as it likes);
- ``decide(number, epoch, history) -> CONTINUE | PAUSE | PRUNE | COMPLETE`` when the trial has
  reported at a milestone (its score at ``epoch`` is in ``history``, and so is every other
  trial's; which way is better comes from ``history.objective``): ``COMPLETE`` at the budget,
  ``PRUNE`` to stop it here (its curve is kept), ``CONTINUE`` to train on, ``PAUSE`` to hold it
  until the runner calls ``on_pause``;
- ``on_pause(paused, history, space, rng) -> {recipient: (donor, params)}``: called once every
  trial still running is paused and nothing else can run (a population-based round boundary).
  A recipient takes over the donor's checkpoint and goes on with ``params``; then every paused
  trial trains on. The default changes nothing.

So the runner never branches on a scheduler's kind.

- :class:`FullBudget` ``(n_epochs)``: one milestone, the budget; nobody is pruned.
- :class:`SuccessiveHalving` ``(min_epochs, max_epochs, eta)``, asynchronous (ASHA): rungs at
  ``min_epochs * eta**k`` below ``max_epochs``, then ``max_epochs``. A trial goes on past a rung
  if its score is among the top ``max(1, n // eta)`` of the ``n`` trials that reached that rung
  so far (so the first trial at a rung goes on, as in Optuna's ASHA: nothing waits).
- :class:`Hyperband` ``(min_epochs, max_epochs, eta)``: several brackets of ASHA, from the most
  aggressive (first rung ``min_epochs``) to one that trains every trial to the budget; each
  trial belongs to one bracket by its number, and competes only with its bracket.
- :class:`PopulationBased` ``(interval, n_rounds)``, synchronous (PBT): every trial pauses at
  each round boundary below the budget; ``on_pause`` lets the bottom of the population copy the
  top and perturb its training knobs (``engine.search.pbt``).

Every kind registers itself in :data:`SCHEDULERS` when its class is defined.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from engine.search import pbt
from engine.search.history import History
from engine.search.objective import finite
from engine.search.scales import SpaceError

CONTINUE, PAUSE, PRUNE, COMPLETE = "continue", "pause", "prune", "complete"
DECISIONS = (CONTINUE, PAUSE, PRUNE, COMPLETE)
SCHEDULERS: dict[str, type[Scheduler]] = {}


class SchedulerError(SpaceError):
    """An invalid scheduler setting or call; the message names the field and the value.

    A :class:`SpaceError` (so a ``ValueError``): one exception type covers a study's setup."""


def _integer(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise SchedulerError(f"{field} must be an integer >= {minimum}, got {field}={value!r}")
    return int(value)


class Scheduler(ABC):
    """Base class: subclasses set ``kind`` and ``rungs`` and implement ``_decide_at`` and
    ``to_dict``; ``rungs`` end with the full budget ``max_epochs``."""

    kind: ClassVar[str]
    rungs: tuple[int, ...]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str):
            if kind in SCHEDULERS and SCHEDULERS[kind].__qualname__ != cls.__qualname__:
                raise TypeError(f"scheduler kind {kind!r} is registered twice")
            SCHEDULERS[kind] = cls

    @property
    def max_epochs(self) -> int:
        """The full budget: the last rung."""
        return self.rungs[-1]

    def target_epochs(self, n_epochs: int) -> int:
        """The budget of a trial whose params say ``n_epochs`` (most schedulers: their own)."""
        return self.max_epochs

    def rungs_for(self, number: int, target: int) -> tuple[int, ...]:
        """The epochs at which trial ``number`` (budget ``target``) reports, the last = target."""
        return (*[r for r in self.rungs if r < target], target)

    def next_milestone(self, number: int, epochs_done: int, target: int) -> int:
        """The epoch at which a trial that has trained ``epochs_done`` epochs must next report."""
        epochs_done = _integer(epochs_done, "epochs_done", 0)
        for rung in self.rungs_for(number, target):
            if rung > epochs_done:
                return rung
        raise SchedulerError(
            f"epochs_done={epochs_done} already reached the trial's budget of {target} epochs: "
            "the trial is complete"
        )

    def decide(self, number: int, epoch: int, history: History) -> str:
        """What trial ``number`` does after reporting at ``epoch`` (see the module docstring)."""
        epoch = _integer(epoch, "epoch", 1)
        trial = history.by_number(number)
        target = trial.target_epochs or self.max_epochs
        if epoch >= target:
            return COMPLETE
        if epoch not in self.rungs_for(number, target):
            return CONTINUE
        return self._decide_at(number, epoch, history)

    def on_pause(
        self, paused: list[int], history: History, space, rng: np.random.Generator
    ) -> dict[int, tuple[int, dict]]:
        """``{recipient: (donor, params)}`` once every running trial is paused; none here."""
        return {}

    @abstractmethod
    def _decide_at(self, number: int, epoch: int, history: History) -> str:
        """The decision at a rung below the trial's budget."""

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
    """Every trial trains its whole budget: ``n_epochs``, or its own when the space searches
    ``n_epochs``."""

    kind = "full_budget"

    def __init__(self, n_epochs: int):
        self.rungs = (_integer(n_epochs, "n_epochs", 1),)

    def target_epochs(self, n_epochs: int) -> int:
        return _integer(n_epochs, "n_epochs", 1)

    def rungs_for(self, number: int, target: int) -> tuple[int, ...]:
        return (target,)

    def _decide_at(self, number: int, epoch: int, history: History) -> str:
        return CONTINUE  # unreachable: the only rung is the budget

    def to_dict(self) -> dict:
        return {"kind": self.kind, "n_epochs": self.max_epochs}


class SuccessiveHalving(Scheduler):
    """Asynchronous successive halving (ASHA): keep the top ``1/eta`` at each rung."""

    kind = "successive_halving"

    def __init__(self, min_epochs: int = 1, max_epochs: int = 27, eta: int = 3):
        self.min_epochs = _integer(min_epochs, "min_epochs", 1)
        max_epochs = _integer(max_epochs, "max_epochs", 1)
        if max_epochs < self.min_epochs:
            raise SchedulerError(
                f"max_epochs must be >= min_epochs, got min_epochs={min_epochs}, "
                f"max_epochs={max_epochs}"
            )
        self.eta = _integer(eta, "eta", 2)
        rungs, rung = [], self.min_epochs
        while rung < max_epochs:
            rungs.append(rung)
            rung *= self.eta
        self.rungs = (*rungs, max_epochs)

    def _decide_at(self, number: int, epoch: int, history: History) -> str:
        return _promote(number, epoch, history, self.eta)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "min_epochs": self.min_epochs,
                "max_epochs": self.max_epochs, "eta": self.eta}


ASHA = SuccessiveHalving


def _promote(number: int, epoch: int, history: History, eta: int,
             peers: Callable[[int], bool] | None = None) -> str:
    """ASHA's rule at a rung: CONTINUE if trial ``number``'s score at ``epoch`` is among the top
    ``max(1, n // eta)`` of the ``n`` scores there so far (of the trials ``peers`` accepts)."""
    score = history.by_number(number).scores.get(epoch)
    if not finite(score):
        return PRUNE
    loss = history.objective.loss
    competing = {n: loss(s) for n, s in history.scores_at(epoch).items()
                 if peers is None or peers(n)}
    competing[number] = loss(score)
    n_promoted = max(1, len(competing) // eta)
    threshold = sorted(competing.values())[n_promoted - 1]
    return CONTINUE if loss(score) <= threshold else PRUNE


class Hyperband(Scheduler):
    """Hyperband as several brackets of ASHA: bracket ``b`` has its first rung at
    ``min_epochs * eta**b`` (the last bracket trains every trial to the budget), and each trial
    belongs to one bracket, by its number.

    Trials are dealt to brackets in a fixed cycle in which bracket ``b`` gets ``ceil(B / (s + 1)
    * eta**s)`` places (``B`` brackets, ``s = B - 1 - b`` halvings: Hyperband's counts, so that
    every bracket spends about the same epochs), spread evenly through the cycle. Within a
    bracket it is ASHA: at a rung, a trial goes on if it is among the top ``max(1, n // eta)``
    of the ``n`` trials *of its bracket* that reached that rung so far.
    """

    kind = "hyperband"

    def __init__(self, min_epochs: int = 1, max_epochs: int = 27, eta: int = 3):
        first = SuccessiveHalving(min_epochs, max_epochs, eta)
        self.min_epochs, self.eta = first.min_epochs, first.eta
        self.rungs = first.rungs
        self.brackets = tuple(first.rungs[b:] for b in range(len(first.rungs)))
        n = len(self.brackets)
        self.cycle = _interleave([math.ceil(n / (n - b) * self.eta ** (n - 1 - b))
                                  for b in range(n)])

    def bracket(self, number: int) -> int:
        """Trial ``number``'s bracket (0: the most aggressive, first rung ``min_epochs``)."""
        return self.cycle[number % len(self.cycle)]

    def rungs_for(self, number: int, target: int) -> tuple[int, ...]:
        return (*[r for r in self.brackets[self.bracket(number)] if r < target], target)

    def _decide_at(self, number: int, epoch: int, history: History) -> str:
        bracket = self.bracket(number)
        return _promote(number, epoch, history, self.eta, lambda n: self.bracket(n) == bracket)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "min_epochs": self.min_epochs,
                "max_epochs": self.max_epochs, "eta": self.eta}


def _interleave(counts: list[int]) -> tuple[int, ...]:
    """A cycle holding ``counts[b]`` copies of each ``b``, spread evenly (smooth weighted round
    robin: at each step every entry gains its count, the largest (ties: the lower index) is
    taken and loses the total)."""
    total, credit, out = sum(counts), [0] * len(counts), []
    for _ in range(total):
        credit = [c + w for c, w in zip(credit, counts)]
        b = max(range(len(counts)), key=lambda i: (credit[i], -i))
        credit[b] -= total
        out.append(b)
    return tuple(out)


def _probability(value: Any, field: str, low_open: bool, high: float) -> float:
    ok = finite(value) and (value > 0 if low_open else value >= 0) and value <= high
    if not ok:
        valid = f"{'(' if low_open else '['}0, {high:g}]"
        raise SchedulerError(f"{field} must be a number in {valid}, got {field}={value!r}")
    return float(value)


class PopulationBased(Scheduler):
    """Population-based training: rounds of ``interval`` epochs; at each boundary the bottom
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
    ):
        self.interval = _integer(interval, "interval", 1)
        self.n_rounds = _integer(n_rounds, "n_rounds", 1)
        self.quantile = _probability(quantile, "quantile", True, 0.5)
        self.resample_probability = _probability(
            resample_probability, "resample_probability", False, 1.0
        )
        if isinstance(perturb, str) or not isinstance(perturb, tuple | list) or not perturb or \
                not all(finite(f) and f > 0 for f in perturb):
            raise SchedulerError(
                f"perturb must be a non-empty list of positive factors, got perturb={perturb!r}"
            )
        self.perturb = tuple(float(f) for f in perturb)
        self.rungs = tuple(self.interval * k for k in range(1, self.n_rounds + 1))

    def _decide_at(self, number: int, epoch: int, history: History) -> str:
        return PAUSE  # the population is judged at once, in on_pause

    def on_pause(
        self, paused: list[int], history: History, space, rng: np.random.Generator
    ) -> dict[int, tuple[int, dict]]:
        epochs = {history.by_number(n).epochs for n in paused}
        if len(epochs) > 1:
            raise SchedulerError(f"the population is not at one round boundary: epochs {epochs}")
        epoch = epochs.pop() if epochs else 0
        scores = {n: history.by_number(n).scores.get(epoch) for n in paused}
        params = {n: dict(history.by_number(n).params) for n in paused}
        return self.exploit_explore(scores, params, space, rng,
                                    maximize=history.objective.maximize)

    def exploit_explore(self, scores: Mapping, params: Mapping, space, rng, *,
                        maximize: bool = True) -> dict:
        """``{recipient: (donor, new_params)}`` at a round boundary (see
        ``engine.search.pbt.exploit_explore``); ``space`` is a ``Space`` or its dict."""
        return pbt.exploit_explore(
            scores, params, space, rng, quantile=self.quantile, perturb=self.perturb,
            resample_probability=self.resample_probability, maximize=maximize,
        )

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "interval": self.interval,
            "n_rounds": self.n_rounds,
            "quantile": self.quantile,
            "perturb": list(self.perturb),
            "resample_probability": self.resample_probability,
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
    if "maximize" in d:
        raise SchedulerError(
            "maximize is not a scheduler setting: the study's objective says what is maximised"
            " (objective={'metric': 'val_acc'} or 'val_loss', 'val_error', ...)"
        )
    unknown = sorted(set(d) - set(valid) - {"kind"})
    if unknown:
        raise SchedulerError(f"unknown keys {unknown} for a {kind} scheduler; valid keys: {valid}")
    missing = [k for k, p in signature.items() if p.default is p.empty and k not in d]
    if missing:
        raise SchedulerError(f"missing keys {missing} for a {kind} scheduler; valid keys: {valid}")
    return cls(**{k: v for k, v in d.items() if k != "kind"})
