"""The study runner's worker slots: its executor and the work units in flight.

A runner keeps at most ``workers`` work units in flight on one executor (a local process pool or
a Dask cluster, ``engine.run.execution``). A local pool whose worker died is broken for good: it
is replaced by a new one (a new *generation*), so a death reported by a unit of an older
generation does not replace the new pool again. Each unit carries the trial run it trains, so
the runner knows whose result (or whose worker's death) it is.

When one local worker dies, the pool fails *every* unit in flight with ``BrokenProcessPool``, not
only the dead worker's. So each local unit first writes its worker's pid to a claim file, and the
moment the pool breaks (a done-callback, run before the pool terminates its other workers) the
slots note which workers had exited: ``charged(future)`` then says whether that unit's worker was
the one that died. Units that were still waiting, or ran on a live worker, are not charged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from functools import partial
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


SNAPSHOT_WAIT = 5.0  # seconds to wait for the broken pool's note of its exited workers


def claimed(fn: Callable[[dict], dict], task: dict, claim: str) -> dict:
    """Run ``fn(task)`` in a local worker after writing the worker's pid to ``claim``."""
    with open(claim, "w", encoding="ascii") as handle:
        handle.write(str(os.getpid()))
    return fn(task)


def _exited_pids(executor: Executor) -> set[int] | None:
    """Pids of the pool's workers that have exited (None if the pool does not say)."""
    processes = getattr(executor, "_processes", None)
    if processes is None:
        return None
    try:
        return {pid for pid, proc in dict(processes).items() if proc.exitcode is not None}
    except (OSError, ValueError, AttributeError):
        return None


class Slots:
    """``workers`` slots on an executor made by ``factory(study)``; a unit is ``fn(task)``."""

    def __init__(self, study: dict, factory: Callable[[dict], Executor] = default_executor):
        self.study, self.factory = study, factory
        self.capacity = study["workers"]
        self.generation = 0
        self.executor: Executor | None = None
        self.inflight: dict[Future, tuple[Any, int]] = {}
        self.claims: dict[Future, str] = {}
        self.exited: dict[int, set[int] | None] = {}  # generation -> pids gone when it broke
        self._claim_dir: str | None = None
        self._serial = 0
        self._warming: threading.Thread | None = None

    def open(self) -> Slots:
        """Make the executor (local workers start importing NumPy at once, on another core)."""
        self.executor = self.factory(self.study)
        return self

    def close(self) -> None:
        if self.executor is not None:
            close_executor(self.executor)
            self.executor = None
        if self._claim_dir is not None:
            shutil.rmtree(self._claim_dir, ignore_errors=True)
            self._claim_dir = None

    def __len__(self) -> int:
        return len(self.inflight)

    @property
    def free(self) -> bool:
        return len(self.inflight) < self.capacity

    def warm_up(self, dataset: dict, csv_text: str | None) -> None:
        """Every worker imports the engine and builds the data while the runner does too. The
        warm-ups are submitted from a thread: a local pool's first submit waits for its fork
        server to import NumPy, SciPy and the engine (~0.3 s), which the runner spends on its
        own imports and data instead; ``submit`` waits for that thread first."""
        def submit_all() -> None:
            try:
                for _ in range(self.capacity):
                    self.executor.submit(warm_up, dataset, csv_text)
            except Exception:  # a pool broken or shut down: the first real submit says so
                return

        self._warming = threading.Thread(target=submit_all, name="warm-up", daemon=True)
        self._warming.start()

    def _submit(self, fn: Callable[[dict], dict], task: dict) -> Future:
        if not isinstance(self.executor, ProcessPoolExecutor):
            return self.executor.submit(fn, task)
        if self._claim_dir is None:
            self._claim_dir = tempfile.mkdtemp(prefix="panda-caviar-claims-")
        self._serial += 1
        claim = os.path.join(self._claim_dir, str(self._serial))
        future = self.executor.submit(claimed, fn, task, claim)
        self.claims[future] = claim
        future.add_done_callback(partial(self._on_done, self.executor, self.generation))
        return future

    def _on_done(self, executor: Executor, generation: int, future: Future) -> None:
        # Runs in the pool's management thread when it breaks, before it ends the other workers.
        if generation not in self.exited and not future.cancelled() and isinstance(
                future.exception(), BrokenProcessPool):
            self.exited[generation] = _exited_pids(executor)

    def submit(self, fn: Callable[[dict], dict], task: dict, run: Any) -> None:
        """Start ``fn(task)`` for ``run``; a pool broken since the last look is replaced."""
        if self._warming is not None:  # the warm-ups go first
            self._warming.join()
            self._warming = None
        try:
            future = self._submit(fn, task)
        except BrokenProcessPool:  # a worker died since the last look: the pool takes no more
            self.renew()
            future = self._submit(fn, task)
        self.inflight[future] = (run, self.generation)

    def charged(self, future: Future, generation: int) -> bool:
        """Whether a unit that failed with a worker death is to blame: True unless it is known
        that it never started, or that its worker was alive when the local pool broke."""
        claim = self.claims.pop(future, None)
        if claim is None:  # not a local pool (Dask reports each task's own deaths)
            return True
        try:
            with open(claim, encoding="ascii") as handle:
                pid = int(handle.read() or 0)
        except FileNotFoundError:
            return False  # it was still waiting for a worker: it cannot have killed one
        except (OSError, ValueError):
            return True
        finally:
            try:
                os.unlink(claim)
            except OSError:
                pass
        # The pool's thread notes the exited workers just after it fails the futures: wait for it.
        deadline = time.monotonic() + SNAPSHOT_WAIT
        while generation not in self.exited and time.monotonic() < deadline:
            time.sleep(0.005)
        exited = self.exited.get(generation)
        return exited is None or pid in exited

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
        out = [(future, *self.inflight.pop(future)) for future in done]
        for future, _, _ in out:
            if future.cancelled() or not isinstance(future.exception(), BrokenProcessPool):
                self._drop_claim(future)
        return out

    def _drop_claim(self, future: Future) -> None:
        claim = self.claims.pop(future, None)
        if claim is not None:
            try:
                os.unlink(claim)
            except OSError:
                pass
