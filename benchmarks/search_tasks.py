"""The tasks of `search_quality.py`: objectives with learning curves, for our samplers and Optuna's.

Each task has a search space (ours, `engine.search.Space`), the same space spelt for Optuna
(`optuna_params(trial)`), the axes that matter, and `curve(params, seed)`: a curve of the
validation error after each epoch (lower is better), 27 epochs, the same for the same params and
training seed whoever asks, computed in chunks (`take(n)`: up to `n` more epochs). Error is what
every method minimises.

- `digits`: our engine's MLP on the 8x8 digits (1 hidden layer, Adam): learning rate log
  1e-5..1, beta1 on the `1 - beta` log scale 0.8..0.999, hidden units int log 8..256, L2 log
  1e-7..0.1, batch size {16, 32, 64, 128, 256}, batch norm on/off. Real training, one segment
  per chunk: a method asks for the epochs up to its trial's next rung at once (a pruned trial
  still costs only the epochs it ran; the errors are those of one epoch at a time, as a resumed
  segment is bitwise the same). A diverged run stops there.
- `crossing`: 8 numbers in [0, 1]; 2 matter much and 1 a little. The axis that sets the final error
  also sets the speed: fast learners plateau high, so early epochs rank trials wrongly.
- `mixed`: 5 numbers (one on a log scale), an int and a 3-way choice; 2 numbers and the choice
  matter; the choice that wins at the end starts slowest.
The synthetic curves carry seeded noise (sd 0.004 per epoch, from the training seed).

A curve depends only on (task, params, training seed), and methods of one run share trials:
every learning sampler starts on the same Sobol rows, ``random`` and ``random+asha`` ask the
same points, and a pruned trial is a prefix of a full one. :class:`Curves` keeps what was
computed (the errors so far, and the live curve to extend them), so a digits epoch is
trained once per run seed however many methods ask for it.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from engine.search import Choice, Float, Int, Space

N_EPOCHS = 27


class Curve(Protocol):
    def take(self, n: int) -> list[float]:
        """The errors of up to ``n`` more epochs (fewer at the end or when the run diverged;
        none after that)."""
        ...


class Generated:
    """A curve from an iterator of errors (the synthetic tasks: each epoch costs nothing)."""

    def __init__(self, errors: Iterator[float]):
        self.errors = errors

    def take(self, n: int) -> list[float]:
        return list(itertools.islice(self.errors, max(0, n)))


@dataclass(frozen=True)
class Task:
    name: str
    space: Space
    important: tuple[str, ...]
    optuna_params: Callable  # optuna.Trial -> params dict (our names and values)
    curve: Callable[[dict, int], Curve]
    known_best: float | None = None  # the optimum's final error (synthetic tasks)


# -- digits ----------------------------------------------------------------------------------
DIGITS_SPACE = Space(
    {
        "learning_rate": Float(1e-5, 1.0, "log"),
        "beta1": Float(0.8, 0.999, "one_minus_log"),
        "hidden_units": Int(8, 256, "log"),
        "l2": Float(1e-7, 0.1, "log"),
        "batch_size": Choice([16, 32, 64, 128, 256]),
        "batch_norm": Choice([True, False]),
    },
    {"hidden_layers": 1, "optimizer": "adam", "n_epochs": N_EPOCHS},
)


def _digits_optuna(trial) -> dict:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1.0, log=True),
        "beta1": 1.0 - trial.suggest_float("one_minus_beta1", 0.001, 0.2, log=True),
        "hidden_units": trial.suggest_int("hidden_units", 8, 256, log=True),
        "l2": trial.suggest_float("l2", 1e-7, 0.1, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 128, 256]),
        "batch_norm": trial.suggest_categorical("batch_norm", [True, False]),
    }


_DATA: list = []


class DigitsCurve:
    """Real training of one digits trial, a segment per :meth:`take`."""

    segments = 0  # train_segment calls made, all curves together (the tests count them)

    def __init__(self, params: dict, seed: int):
        from engine.data import DatasetSpec, build_dataset
        from engine.nn import ModelSpec, TrainConfig, new_state
        from engine.search import trial_config

        if not _DATA:
            _DATA.append(build_dataset(DatasetSpec(kind="digits")))
        self.data = _DATA[0]
        full = {**DIGITS_SPACE.fixed, **params}
        model, config, _ = trial_config(full, self.data.X_train.shape[1], self.data.n_classes)
        self.state, self.config = new_state(ModelSpec(**model), seed), TrainConfig(**config)
        self.ended = False

    def take(self, n: int) -> list[float]:
        from engine.nn import train_segment

        n = min(n, N_EPOCHS - self.state.epoch)
        if self.ended or n <= 0:
            return []
        result = train_segment(self.state, self.config, self.data, n)
        DigitsCurve.segments += 1
        errors = [1.0 - float(m["val_acc"]) for m in result.metrics]
        if result.status != "ok" or len(errors) < n:
            self.ended = True  # diverged: the trial ends after its last good epoch
        self.state = result.state
        return errors


def _digits_curve(params: dict, seed: int) -> Curve:
    return DigitsCurve(params, seed)


# -- synthetic -------------------------------------------------------------------------------
def free_space(params: dict, fixed: dict | None = None) -> Space:
    """A Space over made-up names: `Space()` accepts only the engine's knobs, and a synthetic
    objective has none; samplers only use the dimensions and the unit maps."""
    space = Space.__new__(Space)
    space.params, space.fixed = dict(params), dict(fixed or {})
    return space


def _noisy(final: float, speed: float, start: float, seed: int) -> Iterator[float]:
    rng = np.random.default_rng([seed, 0xC0FFEE])
    for epoch in range(1, N_EPOCHS + 1):
        clean = final + (start - final) * math.exp(-speed * epoch)
        yield float(clean + 0.004 * rng.standard_normal())


CROSSING_SPACE = free_space({f"x{i}": Float(0.0, 1.0) for i in range(8)}, {"n_epochs": N_EPOCHS})


def _crossing_optuna(trial) -> dict:
    return {f"x{i}": trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(8)}


def _crossing_curve(params: dict, seed: int) -> Curve:
    x = [params[f"x{i}"] for i in range(8)]
    final = 0.05 + 0.8 * (x[0] - 0.31) ** 2 + 0.5 * (x[1] - 0.73) ** 2 + 0.06 * (x[2] - 0.5) ** 2
    final += 0.004 * sum(x[3:])  # five axes that barely matter
    speed = 0.04 * math.exp(4.0 * x[0])  # x0 high: quick start, poor end (curves cross)
    return Generated(_noisy(final, speed, 0.9, seed))


MIXED_SPACE = free_space(
    {
        "rate": Float(1e-4, 1.0, "log"),
        "width": Float(0.0, 1.0),
        "a": Float(0.0, 1.0),
        "b": Float(0.0, 1.0),
        "c": Float(0.0, 1.0),
        "depth": Int(1, 8),
        "kind": Choice(["plain", "fancy", "odd"]),
    },
    {"n_epochs": N_EPOCHS},
)


def _mixed_optuna(trial) -> dict:
    return {
        "rate": trial.suggest_float("rate", 1e-4, 1.0, log=True),
        "width": trial.suggest_float("width", 0.0, 1.0),
        "a": trial.suggest_float("a", 0.0, 1.0),
        "b": trial.suggest_float("b", 0.0, 1.0),
        "c": trial.suggest_float("c", 0.0, 1.0),
        "depth": trial.suggest_int("depth", 1, 8),
        "kind": trial.suggest_categorical("kind", ["plain", "fancy", "odd"]),
    }


def _mixed_curve(params: dict, seed: int) -> Curve:
    r = (math.log10(params["rate"]) + 4.0) / 4.0  # 0..1 on the log scale
    w = params["width"]
    final = 0.04 + 0.6 * (r - 0.62) ** 2 + 0.3 * (w - 0.2) ** 2 + 0.3 * (r - 0.62) * (w - 0.2)
    final += {"plain": 0.03, "fancy": 0.0, "odd": 0.08}[params["kind"]]
    final += 0.003 * (params["depth"] - 4) ** 2 / 16 + 0.004 * (params["a"] + params["b"])
    speed = 0.05 * math.exp(3.0 * r) * {"plain": 1.0, "fancy": 0.35, "odd": 2.0}[params["kind"]]
    return Generated(_noisy(final, speed, 0.9, seed))


TASKS: dict[str, Task] = {
    "crossing": Task("crossing", CROSSING_SPACE, ("x0", "x1"), _crossing_optuna, _crossing_curve,
                     0.05),
    "mixed": Task("mixed", MIXED_SPACE, ("rate", "width", "kind"), _mixed_optuna, _mixed_curve,
                  0.04),
    "digits": Task("digits", DIGITS_SPACE, ("learning_rate", "hidden_units", "batch_size"),
                   _digits_optuna, _digits_curve),
}


class Curves:
    """Memoised curves of one run seed: ``curve(task, params, seed)`` yields the same errors
    as ``task.curve(params, seed)``, computing each epoch once. ``ahead(done)``: how many
    epochs to compute at once when epoch ``done + 1`` is needed (the caller's next rung; 1 by
    default). At most ``live`` unfinished curves are kept (a digits one holds a model); one
    dropped is rebuilt and replayed."""

    def __init__(self, live: int = 256):
        self.live = live
        self.errors: dict[tuple, list[float]] = {}
        self.ended: set[tuple] = set()
        self.live_curves: OrderedDict[tuple, Curve] = OrderedDict()
        self.computed = 0  # epochs actually trained or evaluated
        self.served = 0  # epochs handed out

    def curve(self, task: Task, params: dict, seed: int,
              ahead: Callable[[int], int] | None = None) -> Iterator[float]:
        key = (task.name, seed, tuple(sorted((k, repr(v)) for k, v in params.items())))
        errors = self.errors.setdefault(key, [])
        epoch = 0
        while True:
            if epoch < len(errors):
                self.served += 1
                yield errors[epoch]
                epoch += 1
                continue
            if key in self.ended:
                return
            live = self.live_curves.pop(key, None)
            if live is None:  # new, or dropped: replay up to where we are
                live = task.curve(params, seed)
                if errors:
                    live.take(len(errors))
                self.computed += len(errors)
            chunk = live.take(max(1, ahead(len(errors)) if ahead else 1))
            if not chunk:
                self.ended.add(key)
                return
            self.computed += len(chunk)
            errors.extend(chunk)
            self.live_curves[key] = live
            while len(self.live_curves) > self.live:
                self.live_curves.popitem(last=False)
