"""train_stacked: a population of P small models trained as one stacked computation.

``train_stacked(states, configs, data, n_epochs)`` is ``train_segment`` for P members at once:
each member's state, config and generator are its own, and the result is one
``train.SegmentResult`` per member, in the solo format (its ``TrainState`` checkpoints as any
other, so adopt/babysit, resume, export and PBT exploit need nothing new). The members share
the dataset, the optimizer kind and the batch size (the steps of an epoch line up); everything
else is per member: learning rate and decay schedule, momentum, betas, epsilon, L2, dropout
rate, batch-norm momentum, shuffling, dropout masks, and even the hidden widths (a narrower
member is padded with units kept exactly zero, ``stacked_step``).

Divergence is per member: a member whose loss, weights or validation loss goes non-finite
leaves the stack with status ``"diverged"`` and the solo message; its returned state is its
last good epoch's, and the others go on. The step losses are checked once an epoch (a record
of the epoch's steps): such a member trains on in its own row to the epoch's end, nothing mixes
members, and its message names its first non-finite step as alone. A stop (``should_stop``)
ends every member's segment.

A member's weights after N epochs equal training it alone up to rounding (tests: float64 within
1e-10; float32 within 1e-4 relative to 1 + |value|), and a stacked run split into segments is
bitwise the same as one segment (the stacked Adam never defers decays). A member's epoch
``seconds`` is its share of the stack's epoch time (the time divided by the members training).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.nn.config import TrainConfig, as_int
from engine.nn.fast import make_targets
from engine.nn.health import AUTO, HEALTH_ROWS, Cadence, check_every, epoch_health
from engine.nn.model import ModelSpec
from engine.nn.optim import learning_rate_at
from engine.nn.stacked_arena import StackArena
from engine.nn.stacked_budget import (  # noqa: F401 (the sizes of a stack, re-exported)
    CACHE_BUDGET,
    CACHE_FLOOR,
    EVAL_ELEMENTS,
    EVAL_ROWS,
    MEMORY_BOUND,
    cache_members,
    max_members,
    stack_bytes,
    step_bytes,
)
from engine.nn.stacked_optim import Hyper
from engine.nn.stacked_step import StackWorkspace, before_table
from engine.nn.state import TrainState, copy_state
from engine.nn.train import SegmentResult, _check_data, _spans, one_blas_thread


class StackTrainer:
    """Everything a stacked segment allocates for its members, batch size and dataset."""

    def __init__(self, specs: list[ModelSpec], optimizer: str, batch_size: int, data: Any):
        self.arena = arena = StackArena(specs, optimizer)
        spec = arena.spec
        X_train, y_train, X_val, y_val = _check_data(data, spec)
        self.X_train = X_train
        p, n = arena.p, len(X_train)
        self.p, self.n = p, n
        spans = _spans(n, min(batch_size, n))
        self.workspaces = {
            size: StackWorkspace(arena, size, training=True) for size in {e - s for s, e in spans}
        }
        self.targets = make_targets(spec.n_classes, y_train, spec.dtype)
        # each member shuffles its own row of perm; the batches read rows of its transpose
        self.order, self.perm = np.arange(n), np.empty((p, n), np.intp)
        self.perm_T = np.empty((n, p), np.intp)
        self.T_epoch = np.empty((n, p, self.targets.shape[1]), spec.dtype)
        self.marks = np.empty((n, p), bool)
        self.before = before_table(spec.n_classes, y_train, spec.dtype)
        self.B_epoch = None if self.before is None else np.empty_like(self.T_epoch)
        B = self.B_epoch
        self.batches = [(self.workspaces[e - s], self.perm_T[s:e], self.T_epoch[s:e],
                         None if B is None else B[s:e], self.marks[s:e]) for s, e in spans]
        # each step's members' mean losses (K, P), checked and summed once an epoch
        self.losses = np.empty((len(spans), p), spec.dtype)
        self.batch_rows = np.array([e - s for s, e in spans], spec.dtype).reshape(-1, 1)
        self.n_val = len(X_val)
        widest = max((*spec.hidden, spec.n_outputs))
        rows = max(1, min(self.n_val, EVAL_ROWS, EVAL_ELEMENTS // (p * widest)))
        val_targets = make_targets(spec.n_classes, y_val, spec.dtype)[:, None, :]
        val_before = before_table(spec.n_classes, y_val, spec.dtype)
        val_before = None if val_before is None else val_before[:, None, :]
        val_spans = _spans(self.n_val, rows)
        evals = {size: StackWorkspace(arena, size) for size in {e - s for s, e in val_spans}}
        self.val_marks = {size: np.empty((size, p), bool) for size in evals}
        self.val_chunks = [(evals[e - s], X_val[s:e], val_targets[s:e],
                            None if val_before is None else val_before[s:e])
                           for s, e in val_spans]
        self.health_batch = (X_val[:HEALTH_ROWS], y_val[:HEALTH_ROWS])

    def shuffle(self, rngs: list, alive: list[bool]) -> None:
        """Each member's epoch order from its own generator, then its targets and labels."""
        for j, rng in enumerate(rngs):
            if alive[j]:
                np.copyto(self.perm[j], self.order)
                rng.shuffle(self.perm[j])
        np.copyto(self.perm_T, self.perm.T)
        np.take(self.targets, self.perm_T, axis=0, out=self.T_epoch, mode="clip")
        if self.before is not None:
            np.take(self.before, self.perm_T, axis=0, out=self.B_epoch, mode="clip")

    def evaluate(self) -> tuple[np.ndarray, np.ndarray]:
        """Evaluation-mode (validation losses (P,), validation accuracies (P,))."""
        total = np.zeros(self.p)
        correct = np.zeros(self.p, np.int64)
        for ws, X, T, B in self.val_chunks:
            mark = self.val_marks[len(X)]
            total += ws.evaluate(X, T, B, mark)
            correct += np.count_nonzero(mark, axis=0)
        return total / self.n_val, correct / self.n_val


def _check(states: list[TrainState], configs: list[TrainConfig]) -> None:
    if not states or len(states) != len(configs):
        raise ValueError(f"train_stacked needs one config per state, got {len(states)} states "
                         f"and {len(configs)} configs")
    for c in configs:
        if not isinstance(c, TrainConfig):
            raise ValueError(f"configs must be TrainConfigs, got {type(c).__name__}")
    kinds = {(c.optimizer, c.batch_size) for c in configs}
    if len(kinds) > 1:
        raise ValueError(f"the members of a stack share the optimizer and the batch size; got "
                         f"{sorted(kinds)}")


def train_stacked(
    states: list[TrainState],
    configs: list[TrainConfig],
    data: Any,
    n_epochs: int,
    *,
    should_stop: Callable[[], bool] | None = None,
    health_every: int | str = 0,
    health_last: bool | list[bool] = False,
) -> list[SegmentResult]:
    """Train every member ``n_epochs`` epochs from its state; one ``SegmentResult`` each.

    The arguments are ``train_segment``'s, one state and one config per member (see the module
    docstring for what members must share); ``health_last`` may also be one flag per member
    (under ``"auto"``, measure that member's last epoch of the segment). The states passed in
    are never touched."""
    _check(states, configs)
    n_epochs = as_int("n_epochs", n_epochs, minimum=0)
    cadence = Cadence(check_every("health_every", health_every), n_epochs)  # one for the stack
    lasts = ([bool(health_last)] * len(states) if isinstance(health_last, bool)
             else [bool(x) for x in health_last])
    if len(lasts) != len(states):
        raise ValueError(f"health_last needs one flag per state, got {len(lasts)} flags for "
                         f"{len(states)} states")
    specs = [s.spec for s in states]
    trainer = StackTrainer(specs, configs[0].optimizer, configs[0].batch_size, data)
    arena, p = trainer.arena, trainer.p
    for j, s in enumerate(states):
        arena.load(j, s.params, s.buffers, s.opt_state)
    rngs = []
    for s in states:
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = s.rng_state
        rngs.append(rng)
    hyper = Hyper(configs, arena.spec.dtype)
    dropout = np.array([c.dropout for c in configs])
    bn_momentum = np.array([c.bn_momentum for c in configs])

    def configure() -> None:
        for ws in trainer.workspaces.values():
            ws.configure(hyper, dropout, bn_momentum, rngs)

    configure()
    alive = [True] * p
    epochs = [s.epoch for s in states]
    metrics: list[list[dict]] = [[] for _ in range(p)]
    status, message = ["ok"] * p, [""] * p
    snap = (arena.w.copy(), arena.running.copy(), tuple(s.copy() for s in arena.slots),
            arena.step.copy())
    snap_rng: list[dict | None] = [None] * p  # None: no good epoch yet (the input state)
    lrs = np.zeros(p)

    def leave(j: int, why: str) -> None:
        alive[j], status[j], message[j] = False, "diverged", why
        arena.clear(j)
        lrs[j] = 0.0
        hyper.set_lr(lrs)
        if dropout[j] > 0:
            dropout[j] = 0.0
            configure()

    with np.errstate(all="ignore"), one_blas_thread():
        for done in range(n_epochs):
            if not any(alive):
                break
            if done and should_stop is not None and should_stop():
                for j in range(p):
                    if alive[j]:
                        status[j], message[j] = "stopped", f"stopped after epoch {epochs[j]}"
                break
            t0 = time.perf_counter()
            cadence.start()
            for j in range(p):
                lrs[j] = learning_rate_at(configs[j], epochs[j]) if alive[j] else 0.0
            hyper.set_lr(lrs)
            hyper.plan(arena.step, len(trainer.batches))
            epoch_lr = lrs.copy()
            last = done == n_epochs - 1 and cadence.every == AUTO
            due = [alive[j] and (cadence.due(done, epochs[j] + 1) or (last and lasts[j]))
                   for j in range(p)]
            prev = {j: _member(arena, j, _rows(arena))[0] for j in range(p) if due[j]}
            trainer.shuffle(rngs, alive)
            losses = trainer.losses
            for k, (ws, rows, target, before, mark) in enumerate(trainer.batches):
                np.copyto(losses[k], ws.step(ws.gather(trainer.X_train, rows), target, before,
                                             mark))
            k = len(losses)
            # a member whose loss went non-finite trained on to the epoch's end in its own row
            # (nothing mixes members), then leaves with the solo message: its first such step
            bad = ~np.isfinite(losses)
            for j in np.flatnonzero(bad.any(axis=0)):
                if alive[j]:
                    first = int(np.argmax(bad[:, j]))
                    leave(j, f"loss became {float(losses[first, j])} at epoch {epochs[j] + 1}, "
                             f"step {first + 1} (learning rate {epoch_lr[j]:g})")
            # the float64 sum over the steps in step order, as a running total would add
            total = np.add.reduce((losses * trainer.batch_rows).astype(np.float64), axis=0)
            finite = arena.finite_rows()
            for j in range(p):
                if alive[j] and not finite[j]:
                    leave(j, f"weights became non-finite at epoch {epochs[j] + 1}, step {k} "
                             f"(learning rate {epoch_lr[j]:g})")
            val_loss, val_acc = trainer.evaluate()
            for j in range(p):
                if alive[j] and not math.isfinite(val_loss[j]):
                    leave(j, f"validation loss became {float(val_loss[j])} at epoch "
                             f"{epochs[j] + 1} (learning rate {epoch_lr[j]:g})")
            train_acc = np.count_nonzero(trainer.marks, axis=0) / trainer.n
            # each member is charged its share of the epoch (a study's training time adds up)
            trained = time.perf_counter() - t0
            cadence.trained()  # CPU seconds: the wall clock stretches under load
            seconds = trained / max(1, sum(alive))
            _take_alive(arena, snap, alive)
            for j in range(p):
                if not alive[j]:
                    continue
                epochs[j] += 1
                snap_rng[j] = rngs[j].bit_generator.state
                row = {"epoch": epochs[j], "train_loss": float(total[j] / trainer.n),
                       "train_acc": float(train_acc[j]), "val_loss": float(val_loss[j]),
                       "val_acc": float(val_acc[j]), "learning_rate": float(epoch_lr[j])}
                if due[j]:
                    params, buffers, _ = _member(arena, j, _rows(arena))
                    row["health"] = epoch_health(specs[j], params, buffers,
                                                 *trainer.health_batch, prev_params=prev[j])
                row["seconds"] = seconds
                metrics[j].append(row)
            if any(due):
                cadence.measured()

    results = []
    for j, state in enumerate(states):
        if snap_rng[j] is None:
            final = copy_state(state)
        else:
            params, buffers, opt_state = _member(arena, j, snap)
            history = [dict(r) for r in state.history] + [dict(r) for r in metrics[j]]
            final = TrainState(specs[j], params, buffers, opt_state, epochs[j], snap_rng[j],
                               history)
        results.append(SegmentResult(final, metrics[j], status[j], message[j]))
    return results


def _rows(arena: StackArena) -> tuple:
    return arena.w, arena.running, arena.slots, arena.step


def _take_alive(arena: StackArena, snap: tuple, alive: list[bool]) -> None:
    """Copy the rows of the members still training into the snapshot (their last good epoch):
    whole arrays when every member is, else row by row."""
    w, running, slots, step = snap
    pairs = ((w, arena.w), (running, arena.running), *zip(slots, arena.slots), (step, arena.step))
    if all(alive):
        for dst, src in pairs:
            np.copyto(dst, src)
        return
    for j in np.flatnonzero(alive):
        for dst, src in pairs:
            dst[j] = src[j]


def _member(arena: StackArena, j: int, rows: tuple) -> tuple[dict, dict, dict]:
    w, running, slots, step = rows
    return arena.member_state(j, w[j], running[j], tuple(s[j] for s in slots), int(step[j]))
