"""Where the stacked step spends its time, and what its matrix products alone cost.

Used by `stacked.py`. Two tools over the engine's internal modules (`engine.nn.stacked_step`,
`engine.nn.stacked_optim`; they follow those modules and say so when they change):

- `stack_gemm_seconds(specs, configs, data, n_steps)`: the products one stacked step makes,
  recorded from a real step (every `np.matmul` it calls, with its own operands and `out=`
  buffers), then replayed back to back `n_steps` times: the stacked run's GEMM-only bound, in
  CPU seconds.
- `step_allocation(specs, configs, data, n_steps)`: what the steady stacked step allocates, from
  a real step: minor page faults per step (fresh memory touched), the largest transient
  allocation NumPy made inside a step (tracemalloc peak over the steps: iterator buffers) and
  what the steps kept (tracemalloc net: 0 when nothing leaks).
- `op_profile(fn)`: runs fn with every NumPy call of the stacked step timed (thread CPU time)
  and keyed by the calling function and line; returns rows (key, seconds, calls). The wrapper
  adds about a microsecond a call, so the rows are for finding the heavy lines, not for adding
  up to the step.
"""

from __future__ import annotations

import collections
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np


def _stack_step(specs, configs, data):
    """A ready StackWorkspace with its first batch: (workspace, args for ws.step)."""
    from engine.nn import new_state
    from engine.nn.stacked import StackTrainer
    from engine.nn.stacked_optim import Hyper

    p = len(specs)
    trainer = StackTrainer(specs, configs[0].optimizer, configs[0].batch_size, data)
    for j, spec in enumerate(specs):
        state = new_state(spec, j)
        trainer.arena.load(j, state.params, state.buffers, state.opt_state)
    rngs = [np.random.default_rng(j) for j in range(p)]
    hyper = Hyper(configs, specs[0].dtype)
    hyper.set_lr(np.array([c.learning_rate for c in configs]))
    dropout = np.array([c.dropout for c in configs])
    bn = np.array([c.bn_momentum for c in configs])
    for ws in trainer.workspaces.values():
        ws.configure(hyper, dropout, bn, rngs)
    trainer.shuffle(rngs, [True] * p)
    ws, rows, target, before, mark = trainer.batches[0]
    return ws, (ws.gather(trainer.X_train, rows), target, before, mark)


def stack_gemm_seconds(specs, configs, data, n_steps: int) -> float:
    """CPU seconds of n_steps replays of the matrix products one stacked step makes."""
    import engine.nn.stacked_step as stacked_step

    ws, args = _stack_step(specs, configs, data)
    ops: list[tuple] = []
    real = stacked_step.matmul

    def record(a, b, out):
        ops.append((a, b, out))
        return real(a, b, out)

    stacked_step.matmul = record
    try:
        ws.step(*args)
    finally:
        stacked_step.matmul = real
    for a, b, out in ops:  # warm up
        np.matmul(a, b, out=out)
    c0 = time.process_time()
    for _ in range(n_steps):
        for a, b, out in ops:
            np.matmul(a, b, out=out)
    return time.process_time() - c0


def step_allocation(specs, configs, data, n_steps: int = 50) -> dict:
    """{"faults": minor page faults per steady step, "transient": the largest bytes allocated
    and freed within the steps, "kept": bytes the steps left allocated} of a ready stack."""
    ws, args = _stack_step(specs, configs, data)
    with np.errstate(all="ignore"):
        for _ in range(5):  # warm up: NumPy's and malloc's caches settle
            ws.step(*args)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(n_steps):
            ws.step(*args)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            for _ in range(n_steps):
                ws.step(*args)
            kept, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return {"faults": faults / n_steps, "transient": peak - base, "kept": kept - base}


class _TimedCall:
    """One NumPy callable timed per calling line; its attributes (a ufunc's ``reduce``, say)
    are the real ones, untimed."""

    def __init__(self, f, name: str, acc, calls) -> None:
        self._f, self._name, self._acc, self._calls = f, name, acc, calls

    def __call__(self, *args, **kwargs):
        t0 = time.thread_time()
        out = self._f(*args, **kwargs)
        frame = sys._getframe(1)
        key = f"{self._name} {frame.f_code.co_name}:{frame.f_lineno}"
        self._acc[key] += time.thread_time() - t0
        self._calls[key] += 1
        return out

    def __getattr__(self, name: str):
        return getattr(self._f, name)


class _Timed:
    """Stands in for the `np` module: every callable comes back wrapped in a timer."""

    def __init__(self, real, acc, calls) -> None:
        self._real, self._acc, self._calls, self._cache = real, acc, calls, {}

    def __getattr__(self, name: str):
        f = getattr(self._real, name)
        if not callable(f) or isinstance(f, type):
            return f
        if name not in self._cache:
            self._cache[name] = _TimedCall(f, name, self._acc, self._calls)
        return self._cache[name]


def op_profile(fn: Callable[[], object]) -> list[tuple[str, float, int]]:
    """(op function:line, CPU seconds, calls) of every NumPy call the stacked step made in fn,
    heaviest first."""
    import engine.nn.stacked as stacked
    import engine.nn.stacked_optim as stacked_optim
    import engine.nn.stacked_step as stacked_step

    acc: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter = collections.Counter()
    proxy = _Timed(np, acc, calls)
    names = ("matmul", "multiply", "add", "subtract")
    saved = [(m, m.np) for m in (stacked, stacked_optim, stacked_step)]
    saved_names = {n: getattr(stacked_step, n) for n in names}
    for module, _ in saved:
        module.np = proxy
    for n in names:
        setattr(stacked_step, n, getattr(proxy, n))
    try:
        fn()
    finally:
        for module, real in saved:
            module.np = real
        for n, f in saved_names.items():
            setattr(stacked_step, n, f)
    return sorted(((k, acc[k], calls[k]) for k in acc), key=lambda row: -row[1])
