"""A study's trials as its runner tracks them, and how far the study's budget goes.

Pure bookkeeping (no storage, no executor): the seed a trial trains from, the run record the
runner keeps for each started trial, how many epochs its next segment trains, and whether the
budget lets the study ask another trial.
"""

from __future__ import annotations

from dataclasses import dataclass


def trial_seed(study_seed: int, number: int) -> int:
    """The seed of a trial's initial weights and shuffling: distinct per trial, reproducible."""
    import numpy as np

    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0])


@dataclass
class TrialRun:
    """What the runner tracks for one started, unfinished trial."""

    id: int
    number: int
    state: str
    epochs_done: int
    target: int
    deaths: int
    model: dict
    config: dict
    seed: int
    seconds_per_epoch: float | None = None


def segment_epochs(run: TrialRun, scheduler, segment_seconds: float,
                   cap: int | None = None) -> int:
    """Epochs for the run's next segment: about ``segment_seconds`` of its measured epoch time
    (1 before it is measured), at most ``cap``, never past the scheduler's next milestone."""
    milestone = scheduler.next_milestone(run.number, run.epochs_done, run.target)
    n = 1
    if run.seconds_per_epoch:
        n = max(1, int(segment_seconds / max(run.seconds_per_epoch, 1e-6)))
    if cap:
        n = min(n, cap)
    return min(n, milestone - run.epochs_done)


def epochs_committed(history, scheduler) -> int:
    """Epochs trained, plus those reserved by pending trials up to their next milestone."""
    total = 0
    for t in history.trials:
        if t.pending and t.epochs < t.target_epochs:
            total += scheduler.next_milestone(t.number, t.epochs, t.target_epochs)
        else:
            total += t.epochs
    return total


def budget_left(history, scheduler, n_trials: int | None, epoch_budget: int | None) -> bool:
    """Whether a study with this history may ask another trial: fewer than ``n_trials`` asked,
    and fewer than ``epoch_budget`` epochs trained or reserved (``epochs_committed``)."""
    if n_trials is not None and history.number >= n_trials:
        return False
    return epoch_budget is None or epochs_committed(history, scheduler) < epoch_budget
