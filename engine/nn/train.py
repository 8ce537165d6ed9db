"""train_segment: run a few epochs from a TrainState and return the new state and metrics.

A segment copies the state into a ``Trainer`` (an ``Arena`` plus one training ``Workspace``
for full mini-batches and one for the last partial batch), so the state passed in is never
touched, and runs epochs: reshuffle with the state's own generator, one allocation-free step
per mini-batch, then evaluation-mode validation metrics. At each epoch boundary it copies the
arena out (the checkpoint). A non-finite loss, weight or validation loss ends the segment with
status ``"diverged"``; the returned state is then the last good epoch's and the bad epoch
records no metrics.

Reported losses are the data loss (cross-entropy, without the L2 term) so that training and
validation curves compare; the training loss and accuracy are those of the epoch's mini-batches
in training mode, averaged over the examples.

Steps run with BLAS limited to one thread: parallelism comes from trials side by side (a
second BLAS thread gave at most 1.3-1.5x here, and small products collapsed when the other
core was busy).

The last few ``Trainer``s are kept per thread and reused when a segment has the same model,
optimizer, batch size and dataset object (a runner or a babysitting session runs many short
segments): then a segment allocates little more than the state it returns. Dataset
arrays must not be modified in place while in use (``engine.data`` makes them read-only).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.nn.arena import Arena, Snapshot
from engine.nn.config import TrainConfig, as_int
from engine.nn.fast import Workspace, count_correct, make_targets
from engine.nn.health import HEALTH_ROWS, Cadence, check_every, epoch_health
from engine.nn.model import ModelSpec
from engine.nn.optim import learning_rate_at
from engine.nn.state import TrainState, copy_state

EVAL_ROWS = 1024  # validation is evaluated in chunks of at most this many rows
CACHED_TRAINERS = 3  # per thread: segments of a few trials interleave on a worker


@dataclass
class SegmentResult:
    state: TrainState  # after the last *good* epoch (a diverged epoch is not applied)
    metrics: list[dict]  # one EpochMetrics dict per completed epoch of this segment
    status: str  # "ok" | "diverged" | "stopped"
    message: str  # "" or why the segment ended early


def _spans(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _check_data(data: Any, spec: ModelSpec) -> tuple[np.ndarray, ...]:
    """The dataset's arrays (X in the model's dtype), checked against the spec."""
    X_train = np.ascontiguousarray(data.X_train, dtype=spec.dtype)
    X_val = np.ascontiguousarray(data.X_val, dtype=spec.dtype)
    y_train, y_val = np.asarray(data.y_train), np.asarray(data.y_val)
    if int(data.n_classes) != spec.n_classes:
        raise ValueError(
            f"the model has n_classes={spec.n_classes} but the dataset has {data.n_classes}"
        )
    for name, X, y in (("train", X_train, y_train), ("val", X_val, y_val)):
        if X.ndim != 2 or X.shape[1] != spec.n_inputs:
            raise ValueError(
                f"X_{name} must have shape (N, {spec.n_inputs}) for this model, got {X.shape}"
            )
        if y.shape != (X.shape[0],):
            raise ValueError(f"y_{name} must have shape ({X.shape[0]},), got {y.shape}")
        if len(y) == 0:
            raise ValueError(f"the dataset has no {name} rows")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= spec.n_classes:
            raise ValueError(f"y_{name} must be integer labels in 0..{spec.n_classes - 1}")
    return X_train, y_train, X_val, y_val


class Trainer:
    """Everything a segment allocates for one model, optimizer, batch size and dataset."""

    def __init__(self, spec: ModelSpec, optimizer: str, batch_size: int, data: Any) -> None:
        self.key = (spec, optimizer, batch_size, id(data))
        self.data = data  # keeps id(data) from being reused while cached
        X_train, y_train, X_val, y_val = _check_data(data, spec)
        self.spec, self.X_train = spec, X_train
        self.arena = arena = Arena(spec, optimizer)
        n = self.n = len(X_train)
        spans = _spans(n, min(batch_size, n))
        self.workspaces = {
            size: Workspace(arena, size, training=True) for size in {e - s for s, e in spans}
        }
        # Each step gathers its rows of X into its workspace (hot in cache for the first
        # product); the small per-example targets are gathered once an epoch.
        self.targets = make_targets(spec.n_classes, y_train, spec.dtype)
        self.T_epoch = np.empty_like(self.targets)
        self.marks = np.empty((n, 1), spec.dtype)  # 1.0 where the loss saw a right prediction
        self.order, self.perm = np.arange(n), np.empty(n, np.intp)
        self.batches = [
            (self.workspaces[e - s], self.perm[s:e], self.T_epoch[s:e], self.marks[s:e])
            for s, e in spans
        ]
        self.n_val = len(X_val)
        val_targets = make_targets(spec.n_classes, y_val, spec.dtype)
        val_spans = _spans(self.n_val, EVAL_ROWS)
        evals = {size: Workspace(arena, size) for size in {e - s for s, e in val_spans}}
        self.val_chunks = [(evals[e - s], X_val[s:e], val_targets[s:e]) for s, e in val_spans]
        self.health_batch = (X_val[:HEALTH_ROWS], y_val[:HEALTH_ROWS])

    def run_epoch(self, rng: np.random.Generator, lr: float) -> tuple[float, float, str, int]:
        """One epoch of steps: (mean training loss, training accuracy, problem, step), the
        problem being "" or what went wrong at that step (1-based, within the epoch)."""
        np.copyto(self.perm, self.order)
        rng.shuffle(self.perm)
        np.take(self.targets, self.perm, axis=0, out=self.T_epoch, mode="clip")  # unbuffered
        X, total, k = self.X_train, 0.0, 0
        for k, (ws, rows, target, mark) in enumerate(self.batches, start=1):
            loss = ws.step(ws.gather(X, rows), target, mark, lr)
            if not math.isfinite(loss):
                return 0.0, 0.0, f"loss became {loss}", k
            total += loss * len(rows)
        ws.settle()  # at every epoch end: a resumed run then rounds as an uninterrupted one
        if not self.arena.all_finite():
            return 0.0, 0.0, "weights became non-finite", k  # in the last update
        return total / self.n, count_correct(self.marks) / self.n, "", k

    def evaluate(self) -> tuple[float, float]:
        """Evaluation-mode (validation loss, validation accuracy)."""
        total, correct = 0.0, 0
        for ws, X, T in self.val_chunks:
            loss, right = ws.evaluate(X, T)
            total += loss
            correct += right
        return total / self.n_val, correct / self.n_val


_cache = threading.local()


_blas_controller = None


def one_blas_thread() -> Any:
    """A context manager limiting every loaded BLAS to one thread (the inspection of the loaded
    libraries is done once; entering the limit then costs microseconds)."""
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def clear_cache() -> None:
    """Drop this thread's cached Trainers (and the memory they hold)."""
    _cache.trainers = OrderedDict()


def _trainer(spec: ModelSpec, config: TrainConfig, data: Any) -> Trainer:
    """This thread's Trainer for the key, reused if cached (the last CACHED_TRAINERS kept)."""
    if not hasattr(_cache, "trainers"):
        clear_cache()
    trainers: OrderedDict = _cache.trainers
    key = (spec, config.optimizer, config.batch_size, id(data))
    trainer = trainers.get(key)
    if trainer is not None and trainer.data is data:
        trainers.move_to_end(key)
        return trainer
    trainers.pop(key, None)
    while len(trainers) >= CACHED_TRAINERS:  # let old buffers go before allocating new ones
        trainers.popitem(last=False)
    trainer = trainers[key] = Trainer(spec, config.optimizer, config.batch_size, data)
    return trainer


def train_segment(
    state: TrainState,
    config: TrainConfig,
    data: Any,
    n_epochs: int,
    *,
    should_stop: Callable[[], bool] | None = None,
    health_every: int | str = 0,
    health_last: bool = False,
) -> SegmentResult:
    """Train ``n_epochs`` epochs from ``state`` on ``data`` (an ``engine.data.Dataset``, or
    any object with ``X_train``, ``y_train``, ``X_val``, ``y_val`` and ``n_classes``).

    ``should_stop()`` is polled between epochs; when it returns true the segment ends with
    status ``"stopped"``. Slots of an optimizer other than ``config.optimizer`` in the state
    are not carried over: the new optimizer starts from zero.

    ``health_every`` k > 0 adds ``"health"`` (``engine.nn.health.epoch_health`` on the first
    ``HEALTH_ROWS`` validation rows) to the metrics of every epoch whose number is a multiple
    of k (0: never), or ``"auto"``: epoch 1, and every epoch whose number is a multiple of a
    power of two picked so that health takes at most ``HEALTH_SHARE`` of the training time,
    and with ``health_last`` the segment's last epoch (``engine.nn.health.Cadence``). It is
    computed at the epoch boundary, outside the steps, and its time counts in the epoch's
    ``seconds``; training itself is the same with or without it.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    n_epochs = as_int("n_epochs", n_epochs, minimum=0)
    spec = state.spec
    cadence = Cadence(check_every("health_every", health_every), n_epochs,
                      key=(spec, config.batch_size, len(data.y_train)), last=health_last)
    trainer = _trainer(spec, config, data)
    arena = trainer.arena
    arena.load(state.params, state.buffers, state.opt_state)
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = state.rng_state
    for ws in trainer.workspaces.values():
        ws.configure(config, rng)

    epoch, history = state.epoch, list(state.history)
    metrics: list[dict] = []
    status, message = "ok", ""
    good: tuple[Snapshot, dict] | None = None  # (arena copy, rng state) of the last good epoch
    # divergence is detected from the values, not from warnings
    with np.errstate(all="ignore"), one_blas_thread():
        for done in range(n_epochs):
            if done and should_stop is not None and should_stop():
                status, message = "stopped", f"stopped after epoch {epoch}"
                break
            t0 = time.perf_counter()
            cadence.start()
            lr = learning_rate_at(config, epoch)
            due = cadence.due(done, epoch + 1)
            prev = {name: w.copy() for name, w in arena.params.items()} if due else None
            train_loss, train_acc, problem, step = trainer.run_epoch(rng, lr)
            where = f"epoch {epoch + 1}, step {step}"
            if not problem:
                val_loss, val_acc = trainer.evaluate()
                if not math.isfinite(val_loss):
                    problem, where = f"validation loss became {val_loss}", f"epoch {epoch + 1}"
            if problem:
                status, message = "diverged", f"{problem} at {where} (learning rate {lr:g})"
                break
            epoch += 1
            good = (arena.snapshot(None if good is None else good[0]), rng.bit_generator.state)
            row = {
                "epoch": epoch,
                "train_loss": float(train_loss),
                "train_acc": float(train_acc),
                "val_loss": float(val_loss),
                "val_acc": float(val_acc),
                "learning_rate": float(lr),
            }
            cadence.trained()  # CPU seconds: the wall clock stretches under load
            if due:
                row["health"] = epoch_health(
                    spec, arena.params, arena.buffers, *trainer.health_batch, prev_params=prev
                )
                cadence.measured()
            row["seconds"] = time.perf_counter() - t0
            metrics.append(row)
            history.append(row)

    if good is None:
        final = copy_state(state)
    else:
        params, buffers, opt_state = arena.unpack(good[0])
        final = TrainState(spec, params, buffers, opt_state, epoch, good[1],
                           [dict(r) for r in history])
    return SegmentResult(final, metrics, status, message)
