"""What a sampler or a scheduler sees of a study when it is asked: every trial asked so far.

A :class:`History` is plain data built by the study runner from the database (the one writer
keeps it in step with what it commits), so a sampler can learn from it and a restarted runner
rebuilds exactly the same one. Each :class:`TrialRecord` holds the trial's unit-cube point, its
params, its state and its score at every epoch it has reported (the study's
:class:`~engine.search.objective.Objective` applied to that epoch's metrics).

*Finished* trials (complete, pruned, diverged, failed) will not report again; *pending* ones
(waiting, running, stopped: asked, not finished) may. A pending trial's point still matters:
a sampler asked while four trials train should not propose a fifth copy of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.search.objective import Objective, finite

FINISHED_STATES = ("complete", "pruned", "diverged", "failed", "cancelled")
PENDING_STATES = ("waiting", "running", "stopped")


@dataclass(frozen=True)
class TrialRecord:
    """One asked trial. ``scores`` maps an epoch (1-based) to the objective's score there."""

    number: int
    unit: tuple[float, ...]
    params: Mapping[str, Any]
    state: str = "waiting"
    scores: Mapping[int, float] = field(default_factory=dict)
    target_epochs: int = 0
    origin: str = "sampler"  # sampler | user (added by hand) | ...

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def pending(self) -> bool:
        return not self.finished

    @property
    def epochs(self) -> int:
        """The last epoch with a score (0 before any)."""
        return max(self.scores, default=0)

    @property
    def final_score(self) -> float | None:
        """The score at the last epoch reported, or None."""
        return self.scores.get(self.epochs) if self.scores else None

    def score_at(self, epoch: int) -> float | None:
        return self.scores.get(epoch)

    def point(self) -> np.ndarray:
        return np.asarray(self.unit, dtype=np.float64)


@dataclass(frozen=True)
class History:
    """The trials of a study in number order, its objective, seed and trial budget."""

    trials: tuple[TrialRecord, ...] = ()
    objective: Objective = Objective()
    seed: int = 0
    n_trials: int | None = None  # the study's trial budget, if it has one

    @property
    def number(self) -> int:
        """The number the next asked trial gets (trials are numbered 0, 1, 2, ...)."""
        return len(self.trials)

    def finished(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.finished]

    def pending(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.pending]

    def by_number(self, number: int) -> TrialRecord:
        return self.trials[number]

    def scores_at(self, epoch: int) -> dict[int, float]:
        """``{trial number: score}`` of every trial that reported a finite score at ``epoch``."""
        out = {}
        for t in self.trials:
            score = t.scores.get(epoch)
            if finite(score):
                out[t.number] = float(score)
        return out

    def observations(
        self, *, epoch: int | None = None, min_count: int = 1
    ) -> tuple[np.ndarray, np.ndarray, int | None]:
        """Points and losses (lower is better) to learn from: ``(units (n, d), losses (n,),
        epoch)``.

        With ``epoch=None``: the highest epoch at which at least ``min_count`` trials have a
        score (a multi-fidelity study learns from its highest rung with enough results, as BOHB
        does), each trial's score at that epoch; a diverged trial that never got there counts
        as the worst loss seen (its region is bad, not unknown). ``epoch`` is None in the
        result when nothing qualifies.
        """
        _, units, losses, epoch = self.observed_trials(epoch=epoch, min_count=min_count)
        return units, losses, epoch

    def observed_trials(
        self, *, epoch: int | None = None, min_count: int = 1
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int | None]:
        """:meth:`observations` with the trial number of each row first: ``(numbers (n,),
        units (n, d), losses (n,), epoch)`` (rows: the trials with a score, in number order,
        then the diverged ones)."""
        empty = (np.zeros(0, dtype=int), np.zeros((0, self._dims())), np.zeros(0))
        if epoch is None:
            counts: dict[int, int] = {}
            for t in self.trials:
                for e, s in t.scores.items():
                    if finite(s):
                        counts[e] = counts.get(e, 0) + 1
            qualified = [e for e, n in counts.items() if n >= min_count]
            if not qualified:
                return (*empty, None)
            epoch = max(qualified)
        rows, losses, diverged = [], [], []
        for t in self.trials:
            score = t.scores.get(epoch)
            if finite(score):
                rows.append(t)
                losses.append(self.objective.loss(score))
            elif t.state == "diverged":
                diverged.append(t)
        if diverged and losses:
            worst = max(losses)
            rows.extend(diverged)
            losses.extend([worst] * len(diverged))
        if not rows:
            return (*empty, epoch)
        return (np.array([t.number for t in rows], dtype=int), np.stack([t.point() for t in rows]),
                np.asarray(losses, dtype=np.float64), epoch)

    def pending_points(self) -> np.ndarray:
        """The unit points of the pending trials, shape ``(p, d)``."""
        points = [t.point() for t in self.pending()]
        return np.stack(points) if points else np.zeros((0, self._dims()))

    def best(self) -> TrialRecord | None:
        """The trial with the best final score (ties: the lower number), or None."""
        scored = [t for t in self.trials if finite(t.final_score)]
        if not scored:
            return None
        return min(scored, key=lambda t: (self.objective.loss(t.final_score), t.number))

    def with_trial(self, trial: TrialRecord) -> History:
        """A copy with ``trial`` appended (numbers must follow on) or replaced (same number)."""
        trials = list(self.trials)
        if trial.number == len(trials):
            trials.append(trial)
        elif 0 <= trial.number < len(trials):
            trials[trial.number] = trial
        else:
            raise ValueError(
                f"trial number {trial.number} does not follow the history's {len(trials)} trials"
            )
        return History(tuple(trials), self.objective, self.seed, self.n_trials)

    def _dims(self) -> int:
        return len(self.trials[0].unit) if self.trials else 0


def ask_rng(seed: int, number: int) -> np.random.Generator:
    """The generator a learning sampler gets for asking trial ``number`` of a study: a pure
    function of the study's seed and that number, so a restarted runner asks the same point."""
    return np.random.default_rng([int(seed), int(number), 0x5A17])


def history_from_rows(
    trials: Iterable[Mapping[str, Any]],
    metrics: Mapping[int, Iterable[Mapping[str, Any]]],
    objective: Objective,
    *,
    seed: int = 0,
    n_trials: int | None = None,
) -> History:
    """Build a History from trial dicts (``engine.storage`` rows: ``number``, ``unit``,
    ``params``, ``state``, ``target_epochs``, optional ``origin``) and each trial id's epoch
    metrics dicts."""
    records = []
    for t in sorted(trials, key=lambda t: t["number"]):
        scores = {}
        for m in metrics.get(t["id"], ()):
            score = objective.score(m)
            if score is not None and not math.isnan(score):
                scores[int(m["epoch"])] = score
        records.append(TrialRecord(
            number=int(t["number"]), unit=tuple(float(u) for u in t["unit"]),
            params=dict(t["params"]), state=t["state"], scores=scores,
            target_epochs=int(t.get("target_epochs") or 0), origin=t.get("origin") or "sampler",
        ))
    for i, r in enumerate(records):
        if r.number != i:
            raise ValueError(f"trial numbers must be 0..n-1 without gaps, got {r.number} at {i}")
    return History(tuple(records), objective, int(seed), n_trials)
