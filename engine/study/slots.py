"""The study runner's worker slots: its executor and the work units in flight.

A runner keeps at most ``workers`` work units in flight on one executor (a local process pool or
a Dask cluster, ``engine.run.execution``). A local pool whose worker died is broken for good: it
is replaced by a new one (a new *generation*), so a death reported by a unit of an older
generation does not replace the new pool again. Each unit carries the trial run it trains, so
the runner knows whose result (or whose worker's death) it is.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from engine.run.execution import close_executor, make_executor


def default_executor(study: dict) -> Executor:
    """Local processes, or the Dask scheduler the study names."""
    if study["executor_address"]:
        return make_executor("dask", address=study["executor_address"])
    return make_executor("local", workers=study["workers"])


def warm_up(dataset: dict, csv_text: str | None) -> None:
    """A worker's first task: import the engine and build the study's dataset into its cache."""
    from engine.run.work import dataset_for

    dataset_for(dataset, csv_text)


class Slots:
    """``workers`` slots on an executor made by ``factory(study)``; a unit is ``fn(task)``."""

    def __init__(self, study: dict, factory: Callable[[dict], Executor] = default_executor):
        self.study, self.factory = study, factory
        self.capacity = study["workers"]
        self.generation = 0
        self.executor: Executor | None = None
        self.inflight: dict[Future, tuple[Any, int]] = {}

    def open(self) -> Slots:
        """Make the executor (local workers start importing NumPy at once, on another core)."""
        self.executor = self.factory(self.study)
        return self

    def close(self) -> None:
        if self.executor is not None:
            close_executor(self.executor)
            self.executor = None

    def __len__(self) -> int:
        return len(self.inflight)

    @property
    def free(self) -> bool:
        return len(self.inflight) < self.capacity

    def warm_up(self, dataset: dict, csv_text: str | None) -> None:
        """Every worker imports the engine and builds the data while the runner does too."""
        for _ in range(self.capacity):
            self.executor.submit(warm_up, dataset, csv_text)

    def submit(self, fn: Callable[[dict], dict], task: dict, run: Any) -> None:
        """Start ``fn(task)`` for ``run``; a pool broken since the last look is replaced."""
        try:
            future = self.executor.submit(fn, task)
        except BrokenProcessPool:  # a worker died since the last look: the pool takes no more
            self.renew()
            future = self.executor.submit(fn, task)
        self.inflight[future] = (run, self.generation)

    def renew(self) -> None:
        """Replace the executor (a new generation)."""
        close_executor(self.executor)
        self.generation += 1
        self.executor = self.factory(self.study)

    def died(self, exc: BaseException, generation: int) -> None:
        """A unit of ``generation`` lost its worker: replace a broken local pool, once."""
        if isinstance(exc, BrokenProcessPool) and generation == self.generation:
            self.renew()

    def wait(self, timeout: float) -> list[tuple[Future, Any, int]]:
        """The units finished within ``timeout`` seconds: ``(future, run, generation)``."""
        done, _ = wait(list(self.inflight), timeout=timeout, return_when=FIRST_COMPLETED)
        return [(future, *self.inflight.pop(future)) for future in done]
