"""Executors that run work units: local worker processes or a Dask distributed cluster.

Both are plain ``concurrent.futures.Executor`` objects, so the runner does not care which one
it drives. Parallelism is across trials, one BLAS thread per worker: measured here, two
single-thread trials side by side ran ~2x one, while one trial on two BLAS threads gained at
most 1.3-1.5x and collapsed when the other core was busy.

Local workers are started with the ``spawn`` method (no inherited locks or threads from the
runner) and an initializer that limits BLAS to one thread with threadpoolctl, which works even
when NumPy was imported before it ran, and sets the ``*_NUM_THREADS`` variables for anything
the worker starts. A watchdog thread in each worker exits when the runner that owns it is gone
(a runner killed with SIGKILL leaves no orphan workers behind).

A worker process that dies takes the local pool down with it (``BrokenProcessPool`` for every
future in flight) and, on Dask, surfaces as ``KilledWorker`` once the scheduler gives up on a
task. ``is_worker_death`` recognises both, so the runner can retry from the last checkpoint.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
EXECUTOR_KINDS = ("local", "dask")

ORPHAN_CHECK_SECONDS = 1.0
_limiter = None  # kept alive in each worker: threadpoolctl limits last as long as the object


class WorkerDiedError(RuntimeError):
    """The process running a work unit died (killed, out of memory, crashed)."""


def limit_blas_threads() -> None:
    """One BLAS/OpenMP thread in this process."""
    global _limiter
    for name in BLAS_VARIABLES:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    _limiter = threadpool_limits(limits=1)


def _exit_with_parent(parent: int) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(0)


def init_local_worker(parent: int) -> None:
    """Local worker initializer: one BLAS thread, and exit when the runner (``parent``) dies.

    A runner killed with SIGKILL cannot shut its pool down, and its workers would wait forever
    on a queue whose write end they hold themselves; a watchdog thread ends them instead."""
    import threading

    limit_blas_threads()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def blas_threads() -> list[int]:
    """The thread count of every BLAS/OpenMP pool loaded in this process (for checks)."""
    import numpy  # noqa: F401  (make sure NumPy's BLAS is loaded before asking)
    from threadpoolctl import threadpool_info

    return [int(pool["num_threads"]) for pool in threadpool_info()]


def default_workers() -> int:
    """One worker per CPU."""
    return os.cpu_count() or 1


def make_executor(
    kind: str, *, workers: int | None = None, address: str = "", timeout: float = 10.0
) -> Executor:
    """A ``local`` process pool of ``workers`` (default: one per CPU) or a ``dask`` executor on
    the scheduler at ``address`` (e.g. ``tcp://127.0.0.1:8786``; ``timeout`` s to connect)."""
    if kind == "local":
        workers = default_workers() if workers is None else workers
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got workers={workers!r}")
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_local_worker,
            initargs=(os.getpid(),),
        )
    if kind == "dask":
        if not address:
            raise ValueError(
                "a dask executor needs the scheduler address, e.g. address='tcp://host:8786';"
                " got address=''"
            )
        from distributed import Client

        try:
            client = Client(address, timeout=f"{timeout}s", set_as_default=False)
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {address!r}: {exc}"
            ) from exc
        executor = client.get_executor(pure=False)
        executor._panda_client = client  # so close_executor can close the connection
        return executor
    raise ValueError(f"executor kind must be one of {EXECUTOR_KINDS}, got kind={kind!r}")


def close_executor(executor: Executor, *, cancel: bool = True) -> None:
    """Shut the executor down without waiting for running work (pending work cancelled)."""
    try:
        executor.shutdown(wait=False, cancel_futures=cancel)
    except TypeError:  # executors without cancel_futures
        executor.shutdown(wait=False)
    client = getattr(executor, "_panda_client", None)
    if client is not None:
        client.close()


def dask_worker_scheduler_info(executor: Executor) -> dict:
    """The Dask client's scheduler info (workers and their addresses); {} for a local pool."""
    client = getattr(executor, "_panda_client", None)
    return client.scheduler_info() if client is not None else {}


def is_worker_death(exc: BaseException) -> bool:
    """Whether ``exc`` means the worker process died rather than the work unit failing."""
    if isinstance(exc, (BrokenProcessPool, WorkerDiedError)):
        return True
    name = type(exc).__name__
    if name in ("KilledWorker", "CommClosedError", "FutureCancelledError"):
        return True
    return isinstance(exc, ConnectionError) and "scheduler" in str(exc).lower()


def describe_worker_death(exc: BaseException) -> str:
    """A readable one-line account of a worker death."""
    if isinstance(exc, BrokenProcessPool):
        return "worker died: a local worker process was terminated abruptly"
    if type(exc).__name__ == "KilledWorker":
        return f"worker died: Dask gave up on the task after its workers died ({exc})"
    return f"worker died: {type(exc).__name__}: {exc}"
